"""The IAM's admission (app/iam/deps.py `admitted`) as one layer: what each caller is let
through to, decided on a request scope with a real ACL authorizer, no server. The same
properties end to end are in test_api.py and test_login.py; these are fast enough for the
mutation run (docs/mutation-report.md)."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import cast

import pytest
from starlette.requests import Request

from app.authn import Identity
from app.authz.acl import AclAuthorizer
from app.authz.audit import AUDIT_LOGGER
from app.authz.model import Action
from app.core.errors import Forbidden, LogwayError, Unauthenticated
from app.iam.deps import IamServices, _services, admitted
from app.iam.service import Iam
from tests.authz.conftest import FakeGrantSource

HOST = "127.0.72.9:8443"
CLIENT = "127.0.72.10"


class Authenticator:
    """Whoever the `x-test-uid` header names; no header: no credentials."""

    async def authenticate(self, request: Request) -> Identity | None:
        uid = request.headers.get("x-test-uid")
        return Identity(uid) if uid else None


def services() -> IamServices:
    source = FakeGrantSource()
    source.grant("root", "dcos:superuser", Action.FULL)
    source.grant("asker", "dcos:iam:policyquery", Action.READ)
    source.grant("reader", "dcos:superuser", Action.READ)  # read is not full
    iam = cast(Iam, SimpleNamespace(authenticator=Authenticator()))
    return IamServices(iam=iam, authorizer=AclAuthorizer(source))


def request(method: str, path: str, route: str | None, uid: str | None, **headers: str) -> Request:
    raw = {"host": HOST, **headers}
    if uid is not None:
        raw["x-test-uid"] = uid
    scope: dict[str, object] = {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in raw.items()],
        "client": (CLIENT, 50000) if method != "HEAD" else None,
    }
    if route is not None:
        scope["route"] = SimpleNamespace(path=route)  # as the router leaves it: declared
    return Request(scope)


def admit(method: str, path: str, route: str | None, uid: str | None, **headers: str) -> Identity:
    return asyncio.run(admitted(request(method, path, route, uid, **headers), services()))


USERS = ("/acs/api/v1/users", "/users")
USER = ("/acs/api/v1/users/alice", "/users/{uid}")
POLICYQUERY = ("/acs/api/v1/internal/policyquery", "/internal/policyquery")
ACL_GRANT = (
    "/acs/api/v1/acls/dcos:superuser/users/mallory/full",
    "/acls/{rid}/users/{uid}/{action}",
)


def test_no_credentials_is_401() -> None:
    with pytest.raises(Unauthenticated) as caught:
        admit("GET", *USERS, None)
    assert str(caught.value) == "Authentication required"


def test_the_services_are_the_ones_the_host_app_hands() -> None:
    handed = services()
    app = SimpleNamespace(state=SimpleNamespace(iam=handed))
    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "app": app}
    assert asyncio.run(_services(Request(scope))) is handed


def test_what_a_refusal_names() -> None:
    with pytest.raises(Forbidden) as caught:
        admit("GET", *POLICYQUERY, "nobody")
    assert str(caught.value) == (
        "`nobody` lacks the permission this route needs: "
        "`dcos:superuser` full or `dcos:iam:policyquery` read"
    )


@pytest.mark.parametrize(
    "where",
    [
        ("/capabilities", "/capabilities"),  # a gateway rule: any authenticated caller
        ("/system/v1/logs/v2/task/x/file/stdout", "/x"),  # a task route's
    ],
)
def test_an_iam_route_under_a_rule_that_is_no_permission_denies_everyone(
    where: tuple[str, str],
) -> None:
    # Only permission rules guard the IAM's routes; any other is a table mistake, and denies,
    # the superuser too.
    with pytest.raises(Forbidden) as caught:
        admit("GET", *where, "root")
    assert str(caught.value).endswith("needs: a rule that allows it")


def test_without_the_declared_route_no_user_lookup_is_opened() -> None:
    with pytest.raises(Forbidden):
        admit("GET", USER[0], None, "asker")
    assert admit("GET", USER[0], None, "root") == Identity("root")


@pytest.mark.parametrize(
    ("method", "where", "uid", "allowed"),
    [
        ("GET", USERS, "root", True),
        ("PUT", ACL_GRANT, "root", True),
        ("GET", USERS, "reader", False),  # read on dcos:superuser is not the full it needs
        ("PUT", ACL_GRANT, "reader", False),
        ("GET", USERS, "nobody", False),
        # The policy query's grant opens the policy query and one user's lookup, only.
        ("GET", POLICYQUERY, "asker", True),
        ("GET", USER, "asker", True),
        ("HEAD", USER, "asker", True),
        ("GET", USERS, "asker", False),
        ("PUT", USER, "asker", False),
        ("DELETE", USER, "asker", False),
        ("PATCH", USER, "asker", False),
        ("GET", ("/acs/api/v1/users/alice/groups", "/users/{uid}/groups"), "asker", False),
        ("PUT", ACL_GRANT, "asker", False),
        ("GET", POLICYQUERY, "nobody", False),
        ("GET", USER, "nobody", False),
    ],
)
def test_who_is_admitted_where(
    method: str, where: tuple[str, str], uid: str, allowed: bool
) -> None:
    if allowed:
        assert admit(method, *where, uid) == Identity(uid)
    else:
        with pytest.raises(Forbidden) as caught:
            admit(method, *where, uid)
        assert uid in str(caught.value)


def test_a_path_without_a_rule_is_404_before_any_decision() -> None:
    with pytest.raises(LogwayError) as caught:
        admit("GET", "/acs/api/v1/debug/keys", "/debug/keys", "root")
    assert caught.value.status == 404
    assert str(caught.value) == "no such route"


COOKIE = {"cookie": "dcos-acs-auth-cookie=t"}


@pytest.mark.parametrize(
    ("method", "headers", "allowed"),
    [
        # A change authenticated by the cookie alone needs an Origin naming this host.
        ("PUT", COOKIE, False),
        ("PUT", {**COOKIE, "origin": ""}, False),
        ("PUT", {**COOKIE, "origin": "null"}, False),
        ("PUT", {**COOKIE, "origin": "https://evil.example"}, False),
        ("PUT", {**COOKIE, "origin": f"https://{HOST}.evil.example"}, False),
        ("DELETE", {**COOKIE, "origin": "https://127.0.72.9:9999"}, False),
        ("POST", {**COOKIE, "origin": f"https://{HOST}"}, True),
        ("PUT", {**COOKIE, "origin": f"http://{HOST}"}, True),  # behind a TLS proxy
        # With a header the browser did not add by itself, or a safe method: not a CSRF.
        ("PUT", {**COOKIE, "authorization": "token=t"}, True),
        ("GET", COOKIE, True),
        ("HEAD", COOKIE, True),
        ("OPTIONS", COOKIE, True),
        ("PUT", {}, True),
        ("PUT", {"cookie": "other=1"}, True),
    ],
)
def test_a_cookie_change_needs_a_same_origin_origin(
    method: str, headers: dict[str, str], allowed: bool
) -> None:
    if allowed:
        assert admit(method, *ACL_GRANT, "root", **headers) == Identity("root")
    else:
        with pytest.raises(Forbidden) as caught:
            admit(method, *ACL_GRANT, "root", **headers)
        assert str(caught.value) == (
            "Forbidden: cookie-authenticated change without a same-origin Origin"
        )


def test_changes_and_refusals_are_audited_reads_are_not(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    admit("PUT", *ACL_GRANT, "root")
    with pytest.raises(Forbidden):
        admit("GET", *USERS, "nobody")
    admit("GET", *USERS, "root")
    admit("HEAD", *USERS, "root")
    with pytest.raises(Forbidden):
        admit("HEAD", *USERS, "nobody")  # a request without a peer address
    audits = [r.getMessage() for r in caplog.records if "action=iam-admin" in r.getMessage()]
    assert len(audits) == 3, audits
    assert audits[0] == (
        f"type=audit action=iam-admin result=allow uid=root srcip={CLIENT} method=PUT "
        "object=/acls/{rid}/users/{uid}/{action}"
    )
    assert audits[1] == (
        f"type=audit action=iam-admin result=deny uid=nobody srcip={CLIENT} method=GET "
        'object=/users reason="`nobody` lacks the permission this route needs: '
        '`dcos:superuser` full"'
    )
    assert "result=deny uid=nobody srcip=unknown method=HEAD" in audits[2]
