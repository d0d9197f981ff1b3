"""Which route needs which permission: the one table (ARCHITECTURE §3, step 2).

Choices, against Admin Router (reference/dcos-logs-api.md §4.2):

* Whole-node journals need `dcos:adminrouter:ops:system-logs` **read**. Admin Router asked IAM
  for `full`; logs are read-only, so we ask for the action the caller actually performs. A
  holder of `full` still passes (`full` implies `read`); a holder of only `read` now passes too.
* A task's logs are also open to holders of the task's own Mesos ids, which DC/OS checked in
  dcos-log through the Mesos sandbox (§1.9). An app id or role that is not a canonical rid
  component simply contributes no check, so the system-logs check is always left.
* `/dcos-metadata/*` needs a token, though Admin Router served `ui-config.json` without one
  (§7); the dcos CLI sends its token there anyway. Login and the JWKS stay public.
* Paths with `.`, `..` or empty segments match no rule (404): the gateway never has to
  decide what an upstream would make of `framework/../../v1/range/`.
* Every HTTP method is checked the same way; rules are tried in order, first match wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.authz.model import SUPERUSER_RID, Action, Authorizer, Decision
from app.authz.resource import is_canonical
from app.core.errors import Unavailable

SYSTEM_LOGS_RID = "dcos:adminrouter:ops:system-logs"
TASK_APP_RID = "dcos:mesos:agent:task:app_id"
FRAMEWORK_ROLE_RID = "dcos:mesos:agent:framework:role"
SANDBOX_APP_RID = "dcos:mesos:agent:sandbox:app_id"
METRICS_RID = "dcos:adminrouter:ops:metrics"
# Answers questions about anyone's permissions, changes nothing (the gateway's service account).
POLICYQUERY_RID = "dcos:iam:policyquery"


@dataclass(frozen=True, slots=True)
class ResourceCheck:
    rid: str
    action: Action

    def describe(self) -> str:
        return f"`{self.rid}` {self.action.value}"


SYSTEM_LOGS = ResourceCheck(SYSTEM_LOGS_RID, Action.READ)
METRICS = ResourceCheck(METRICS_RID, Action.READ)
SUPERUSER = ResourceCheck(SUPERUSER_RID, Action.FULL)
POLICYQUERY = ResourceCheck(POLICYQUERY_RID, Action.READ)


@dataclass(frozen=True, slots=True)
class Public:
    """No credentials needed (the login and key endpoints)."""

    def describe(self) -> str:
        return "anyone, no token"


@dataclass(frozen=True, slots=True)
class Authenticated:
    """Any verified identity; no permission is checked."""

    def describe(self) -> str:
        return "any authenticated caller"


@dataclass(frozen=True, slots=True)
class AnyOf:
    """Allowed when any check allows (`authorize_any`)."""

    checks: tuple[ResourceCheck, ...]

    def describe(self) -> str:
        return " or ".join(check.describe() for check in self.checks)


@dataclass(frozen=True, slots=True)
class TaskAccess:
    """`requirements_for_task(app_id, role)` of the task the route names, once resolved.

    A task that cannot be resolved has no app id or role, which leaves the system-logs check
    alone: callers without it get 403 whether or not the task exists (no existence oracle).
    """

    def describe(self) -> str:
        return (
            f"{SYSTEM_LOGS.describe()}, or the task's own "
            f"`{TASK_APP_RID}:<app>`, `{FRAMEWORK_ROLE_RID}:<role>` or "
            f"`{SANDBOX_APP_RID}:<app>` read"
        )


@dataclass(frozen=True, slots=True)
class MergedTasks:
    """A merged role or app read: `TaskAccess` decided per task of the role or app; the
    tasks the caller may not read are left out, and none at all is 403 (app/gateway/merged.py).
    """

    def describe(self) -> str:
        return (
            f"per task, as on the task routes ({TaskAccess().describe()}); the tasks the caller "
            "may not read are left out, none at all is 403"
        )


Requirement = Public | Authenticated | AnyOf | TaskAccess | MergedTasks

# `{name}`: one path segment; `{name:path}`: the rest of the path, empty or starting with '/'.
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(:path)?\}")


def _compile(pattern: str) -> re.Pattern[str]:
    parts, pos = [], 0
    for m in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        parts.append(f"(?P<{m[1]}>(?:/[^/]*)*)" if m[2] else f"(?P<{m[1]}>[^/]+)")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("".join(parts))


@dataclass(frozen=True, slots=True)
class RouteRule:
    pattern: str
    description: str
    requirement: Requirement
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))


@dataclass(frozen=True, slots=True)
class RouteMatch:
    rule: RouteRule
    params: Mapping[str, str]


_TASK = TaskAccess()
_MERGED = MergedTasks()
_WHOLE_NODE = AnyOf((SYSTEM_LOGS,))
_IAM_ADMIN = AnyOf((SUPERUSER,))
_AUTHN = Authenticated()
_V1_TASK = "/framework/{framework_id}/executor/{executor_id}/container/{container_id}"
_V2_TASK_RUN = "/v2/task/frameworks/{framework_id}/executors/{executor_id}/runs/{container_id}"
_AGENT_LOGS = "/system/v1/agent/{agent_id}/logs"
_MASTER_LOGS = "/system/v1/logs"
_FILTERED = "filtered by the gateway to what the caller may read"

ROUTES: tuple[RouteRule, ...] = (
    RouteRule(f"{_AGENT_LOGS}/v1/range{_V1_TASK}", "A task's journal on an agent", _TASK),
    RouteRule(f"{_AGENT_LOGS}/v1/range{_V1_TASK}/download", "The same, as a gzip download", _TASK),
    RouteRule(f"{_AGENT_LOGS}/v1/stream{_V1_TASK}", "The same, followed", _TASK),
    RouteRule(
        f"{_AGENT_LOGS}/v1/count{_V1_TASK}",
        'The same range\'s size, `{"entries": N}` (with `grep=`: its matches)',
        _TASK,
    ),
    RouteRule(
        f"{_AGENT_LOGS}{_V2_TASK_RUN}{{file:path}}",
        "A task's stdout or stderr, v2 form, from the journal",
        _TASK,
    ),
    RouteRule(f"{_MASTER_LOGS}/v1/range{_V1_TASK}", "A task's journal on the master", _TASK),
    RouteRule(f"{_MASTER_LOGS}/v1/range{_V1_TASK}/download", "The same, as a gzip download", _TASK),
    RouteRule(f"{_MASTER_LOGS}/v1/stream{_V1_TASK}", "The same, followed", _TASK),
    RouteRule(
        f"{_MASTER_LOGS}/v1/count{_V1_TASK}",
        'The same range\'s size, `{"entries": N}` (with `grep=`: its matches)',
        _TASK,
    ),
    RouteRule(
        f"{_MASTER_LOGS}{_V2_TASK_RUN}{{file:path}}",
        "A task's stdout or stderr, v2 form, from the journal",
        _TASK,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v2/task/{{task_id}}/file/{{file}}/count",
        "A task's `file/stdout` or `file/stderr` range's size, `{\"entries\": N}` (with "
        "`grep=`: its matches)",
        _TASK,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v2/task/{{task_id}}{{file:path}}",
        "A task's `file/stdout` or `file/stderr` by id or name, from its agent's journal",
        _TASK,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/role/{{role}}/range/",
        "A Mesos role's tasks on every agent, merged in time order",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/role/{{role}}/stream/",
        "The same, followed; resumable by the composite cursor in each event's `id`",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/app{{app_id:path}}/range/",
        "A Marathon app's tasks and its descendants' (`/prod` covers `/prod/web`), merged",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/app{{app_id:path}}/stream/",
        "The same, followed; resumable by the composite cursor in each event's `id`",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/role/{{role}}/range/download",
        "A role's merged range, as a gzip download",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/app{{app_id:path}}/range/download",
        "An app's merged range, as a gzip download",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/role/{{role}}/count/",
        "A role's merged range's size, `{\"entries\": N}` (with `grep=`: its matches)",
        _MERGED,
    ),
    RouteRule(
        f"{_MASTER_LOGS}/v1/app{{app_id:path}}/count/",
        "An app's merged range's size, `{\"entries\": N}` (with `grep=`: its matches)",
        _MERGED,
    ),
    RouteRule(
        f"{_AGENT_LOGS}{{path:path}}",
        "An agent's whole journal: v1 range, stream, fields; v2 component",
        _WHOLE_NODE,
    ),
    RouteRule(f"{_MASTER_LOGS}{{path:path}}", "The master's whole journal", _WHOLE_NODE),
    RouteRule(
        "/system/v1/leader/mesos/logs{path:path}",
        "The leading master's whole journal (`dcos node log --leader`)",
        _WHOLE_NODE,
    ),
    RouteRule(
        "/system/v1/leader/marathon/logs{path:path}",
        "The Marathon leader's whole journal: the node of the active `marathon` framework's "
        "scheduler in the Mesos state (`dcos node log --leader --component=dcos-marathon`)",
        _WHOLE_NODE,
    ),
    RouteRule("/acs/api/v1/auth/login", "Log in: password or service login token", Public()),
    RouteRule("/acs/api/v1/auth/jwks", "The IAM's token verification keys", Public()),
    RouteRule("/acs/api/v1/auth/logout", "Log out: clears the auth cookie", Public()),
    RouteRule("/acs/api/v1/auth/rotate-keys", "A new token signing key", _IAM_ADMIN),
    RouteRule(
        "/acs/api/v1/internal/policyquery",
        "May `uid` do `action` on `rid`? (Admin Router's question, the gateway's)",
        AnyOf((SUPERUSER, POLICYQUERY)),
    ),
    RouteRule(
        "/acs/api/v1/users{path:path}",
        "Users and service accounts, their groups and permissions",
        _IAM_ADMIN,
    ),
    RouteRule("/acs/api/v1/groups{path:path}", "Groups, members, permissions", _IAM_ADMIN),
    RouteRule("/acs/api/v1/acls{path:path}", "ACLs and their grants", _IAM_ADMIN),
    RouteRule("/metrics", "The gateway's Prometheus metrics", AnyOf((METRICS,))),
    RouteRule("/healthz", "The process answers", Public()),
    RouteRule("/readyz", "Ready: usable cluster state and IAM store (else 503 why)", Public()),
    RouteRule("/capabilities", "Cosmos capabilities (`LOGGING`, `LOGGING_V2`)", _AUTHN),
    RouteRule("/dcos-metadata{path:path}", "Cluster metadata, e.g. ui-config.json", _AUTHN),
    RouteRule("/mesos/master/state", f"Mesos master state, {_FILTERED}", _AUTHN),
    RouteRule("/mesos/master/state.json", f"The same, {_FILTERED}", _AUTHN),
    RouteRule("/mesos/master/state-summary", f"Agents and frameworks, {_FILTERED}", _AUTHN),
    RouteRule("/mesos_dns/v1/hosts/{host}", "Mesos-DNS records of the masters", _AUTHN),
    RouteRule("/slave/{agent_id}/state.json", f"An agent's state, {_FILTERED}", _AUTHN),
    RouteRule("/agent/{agent_id}/state.json", f"The same (alias), {_FILTERED}", _AUTHN),
    RouteRule(
        "/console/api/catalog",
        f"The console's nodes, apps, roles and tasks, {_FILTERED} (nodes: system-logs only)",
        _AUTHN,
    ),
    RouteRule(
        "/console{path:path}",
        "The browser console: its page, static files and sign-out; no log data",
        Public(),
    ),
)


def match_route(path: str) -> RouteMatch | None:
    """The first rule matching a decoded request path; None (404) for no rule or odd paths."""
    if not path.startswith("/") or "//" in path:
        return None
    if any(segment in (".", "..") for segment in path.split("/")):
        return None
    for rule in ROUTES:
        m = rule.regex.fullmatch(path)
        if m is not None:
            return RouteMatch(rule, m.groupdict())
    return None


def requirements_for_task(app_id: str | None, role: str | None) -> tuple[ResourceCheck, ...]:
    """The checks, any one of which opens a task's logs.

    `app_id` is Marathon's absolute app id (`/prod/web`). A value that would not be exactly one
    canonical last segment adds no check: empty, `/`, relative, upper-case, encoded, dotted, or
    holding a `:` (Mesos allows `:` in role names; `role:dev:x` would sit below `role:dev`).
    System-logs always counts.
    """
    app = app_id if app_id and app_id.startswith("/") else None
    task_rid, sandbox_rid = _child(TASK_APP_RID, app), _child(SANDBOX_APP_RID, app)
    role_rid = _child(FRAMEWORK_ROLE_RID, role)
    rids = (SYSTEM_LOGS_RID, task_rid, role_rid, sandbox_rid)
    return tuple(ResourceCheck(rid, Action.READ) for rid in rids if rid is not None)


def _child(parent: str, value: str | None) -> str | None:
    if not value or ":" in value:
        return None
    rid = f"{parent}:{value}"
    return rid if is_canonical(rid) else None


async def authorize_any(
    authorizer: Authorizer, uid: str, checks: Iterable[ResourceCheck]
) -> Decision:
    """Allow if any check allows, trying them in order; no checks: deny.

    A check that cannot be decided does not stop the others, since one real allow is enough;
    but if none allows, the first failure is raised (503), never turned into a deny or allow.
    """
    failure: Unavailable | None = None
    for check in checks:
        try:
            if (await authorizer.authorize(uid, check.rid, check.action)).allowed:
                return Decision.ALLOW
        except Unavailable as exc:
            failure = failure or exc
    if failure is not None:
        raise failure
    return Decision.DENY


def routes_markdown() -> str:
    """The table for the README."""
    lines = [
        "| Route | Who may call it | What |",
        "|---|---|---|",
        *(f"| `{r.pattern}` | {r.requirement.describe()} | {r.description} |" for r in ROUTES),
        "",
        "`{name}` is one path segment and `{name:path}` the rest of the path, possibly empty.",
        "Rules are tried top to bottom and the first match decides, for every HTTP method; a",
        "path no rule matches, or one with `.`, `..` or empty segments, is 404. `full` satisfies",
        "every `read` check and `dcos:superuser` `full` satisfies every check. A grant covers the",
        "rids below it on `:` and `/` boundaries (`app_id:/dev` covers `/dev/api`, not `/devops`).",
    ]
    return "\n".join(lines) + "\n"
