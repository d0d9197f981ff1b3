"""A task's Marathon-style app id (`/group/app`), the id DC/OS's task permissions name.

In order:

1. the task label `DCOS_SPACE` (set by DC/OS EE Marathon and the SDK schedulers), then
   `MARATHON_APP_ID`, when its value is an absolute path of plain segments;
2. for tasks of a Marathon framework (named `marathon`, or `marathon-…`/`marathon_…` for
   Marathon on Marathon), the run spec id Marathon encodes in its task ids, parsed with
   Marathon's own patterns (`Task.Id.runSpecId`): `group_app.instance-<uuid>.<container>`,
   `group_app.marathon-<uuid>.<container>`, their resident `….<attempt>` forms, Marathon
   1.8's `group_app.instance-<uuid>._app.<incarnation>`, and the legacy
   `group_app.<uuid>` / `group_app_<uuid>`; `_` in the prefix separates path segments
   (`PathId.fromSafePath`), so `group_app.<uuid>` is `/group/app`;
3. otherwise none: other frameworks name their tasks as they please (Metronome's
   `job_run.<uuid>` is no app), and a made-up id would be a made-up permission.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

APP_ID_LABELS = ("DCOS_SPACE", "MARATHON_APP_ID")

_MARATHON_FRAMEWORK = re.compile(r"marathon(?:[-_].*)?")
_LABEL_APP_ID = re.compile(r"(?:/[A-Za-z0-9][A-Za-z0-9._-]*)+")
# Marathon `Task.Id`, tried in Marathon's order; group 1 is the run spec's safe path.
_TASK_ID_PATTERNS = tuple(
    re.compile(p)
    for p in (
        r"(.+)\.instance-[^_.]+\._app(?:\.\d+)?",  # Marathon 1.8+: `._app.<incarnation>`
        r"(.+)\.(?:instance-|marathon-)[^_.]+[._][^_.]+\.\d+",
        r"(.+)\.(?:instance-|marathon-)[^_.]+[._][^_.]+",
        r"(.+)[._][^_.]+\.\d+",
        r"(.+)[._][^_.]+",
    )
)


def is_marathon(framework_name: str) -> bool:
    return _MARATHON_FRAMEWORK.fullmatch(framework_name) is not None


def app_id_from_labels(labels: Iterable[Mapping[str, object]]) -> str | None:
    values = {label.get("key"): label.get("value") for label in labels}
    for key in APP_ID_LABELS:
        value = values.get(key)
        if isinstance(value, str) and _LABEL_APP_ID.fullmatch(value):
            return value.rstrip("/") or None
    return None


def app_id_from_task_id(task_id: str) -> str | None:
    """The run spec id Marathon reads back from one of its task ids, or None."""
    for pattern in _TASK_ID_PATTERNS:
        match = pattern.fullmatch(task_id)
        if match:
            # Java's String.split drops trailing empty strings; keep that.
            segments = match.group(1).split("_")
            while segments and not segments[-1]:
                segments.pop()
            return "/" + "/".join(segments) if segments else None
    return None


def app_id(task_id: str, labels: Iterable[Mapping[str, object]], framework_name: str) -> str | None:
    from_labels = app_id_from_labels(labels)
    if from_labels is not None:
        return from_labels
    return app_id_from_task_id(task_id) if is_marathon(framework_name) else None
