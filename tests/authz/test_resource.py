"""Resource ids: the canonical grammar and hierarchical coverage on segment boundaries."""

from __future__ import annotations

from urllib.parse import unquote

import pytest

from app.authz.resource import (
    MAX_RID_LENGTH,
    InvalidResourceId,
    canonical,
    covers,
    covers_canonical,
    is_canonical,
    rid_path,
)
from app.core.errors import BadRequest
from app.iam.names import rid as iam_rid

TASK = "dcos:mesos:agent:task:app_id"
ROLE = "dcos:mesos:agent:framework:role"

VALID = [
    "dcos",
    "dcos:superuser",
    "dcos:adminrouter:ops:system-logs",
    TASK,
    f"{TASK}:/dev",
    f"{TASK}:/dev/api",
    f"{TASK}:/dev/api.v2/web-1_a",
    f"{ROLE}:slave_public",
    f"{ROLE}:dev/backend",
    "dcos:mesos:agent:endpoint:path:/files/browse",
    "dcos:adminrouter:service:marathon-user",
    "dcos:x:..a:a..:.hidden",  # dots inside a name are fine; only '.' and '..' alone are not
]

INVALID = [
    ("", "empty resource id"),
    ("x" * (MAX_RID_LENGTH + 1), "longer than"),
    (f"{TASK}:/Dev", "lower-case"),
    ("DCOS:SUPERUSER", "lower-case"),
    ("dcos:Superuser", "lower-case"),
    (f"{TASK}:/d\u00c9v", "lower-case"),
    (f"{TASK}:%2Fdev", "percent-encoding"),
    (f"{TASK}:/dev%2Fapi", "percent-encoding"),
    (f"{TASK}:/dev/%2e%2e/prod", "percent-encoding"),
    ("dcos%3Asuperuser", "percent-encoding"),
    (f"{TASK}:/dev/", "empty segment"),
    (f"{TASK}:/dev//api", "empty segment"),
    (f"{TASK}:/", "empty segment"),
    (f"{TASK}://dev", "empty segment"),
    (f"{TASK}:", "empty segment"),
    (f"{TASK}::/dev", "empty segment"),
    (":dcos", "empty segment"),
    ("dcos:superuser:", "empty segment"),
    (f"{TASK}:/dev/../prod", "'..'"),
    (f"{TASK}:/dev/./api", "'..'"),
    (f"{TASK}:/..", "'..'"),
    ("dcos:..:superuser", "'..'"),
    (f"{TASK}:/dev:x", "only in the last segment"),
    ("dcos/mesos:agent", "only in the last segment"),
    (f"{TASK}:*", "'*'"),
    (f"{TASK}:/dev/*", "'*'"),
    (f"{TASK}:/dev api", "' '"),
    (f"{TASK}:/dev\napi", "'\\n'"),
    (f"{TASK}:/dev\x00", "'\\x00'"),
    (f"{TASK}:/dev?x=1", "'?'"),
    (f"{TASK}:/dev#x", "'#'"),
    (f"{TASK}:\\dev", "'\\\\'"),
    (f"{TASK}:/d\u0435v", "'\u0435'"),  # Cyrillic small ie, looks like e
    (" dcos:superuser", "' '"),
    ("dcos:superuser\n", "'\\n'"),
]


@pytest.mark.parametrize("rid", VALID)
def test_canonical_rids_come_back_unchanged(rid: str) -> None:
    assert canonical(rid) == rid
    assert is_canonical(rid)


@pytest.mark.parametrize(("rid", "message"), INVALID)
def test_malformed_rids_are_rejected_not_rewritten(rid: str, message: str) -> None:
    with pytest.raises(InvalidResourceId) as info:
        canonical(rid)
    assert message in info.value.message
    assert not is_canonical(rid)


def test_invalid_resource_id_is_both_value_error_and_bad_request() -> None:
    with pytest.raises(ValueError, match="lower-case"):
        canonical("DCOS")
    with pytest.raises(BadRequest) as info:
        canonical("dcos:%41")
    assert info.value.status == 400
    assert info.value.parameter == "rid"


def test_longest_allowed_rid() -> None:
    rid = "d" * MAX_RID_LENGTH
    assert canonical(rid) == rid


COVERS = [
    # the rid itself
    ("dcos:superuser", "dcos:superuser", True),
    (f"{TASK}:/dev", f"{TASK}:/dev", True),
    # descendants on ':' boundaries
    (TASK, f"{TASK}:/prod/web", True),
    ("dcos:mesos:agent", f"{TASK}:/prod/web", True),
    ("dcos", "dcos:adminrouter:ops:system-logs", True),
    ("dcos:adminrouter:ops", "dcos:adminrouter:ops:system-logs", True),
    # descendants on '/' boundaries
    (f"{TASK}:/dev", f"{TASK}:/dev/api", True),
    (f"{TASK}:/dev", f"{TASK}:/dev/api/v2", True),
    (f"{TASK}:/dev/api", f"{TASK}:/dev/api", True),
    (f"{ROLE}:dev", f"{ROLE}:dev/backend", True),
    # never a mere string prefix
    (f"{TASK}:/dev", f"{TASK}:/devops", False),
    (f"{TASK}:/dev", f"{TASK}:/dev-api", False),
    (f"{TASK}:/dev", f"{TASK}:/dev.api", False),
    (f"{TASK}:/dev", f"{TASK}:/dev_api", False),
    ("dcos:adminrouter:ops:system", "dcos:adminrouter:ops:system-logs", False),
    ("dcos:super", "dcos:superuser", False),
    (f"{ROLE}:dev", f"{ROLE}:devops", False),
    # never upwards or sideways
    (f"{TASK}:/dev/api", f"{TASK}:/dev", False),
    (f"{TASK}:/prod/web", TASK, False),
    (f"{TASK}:/dev", f"{TASK}:/prod", False),
    (f"{TASK}:/dev", "dcos:mesos:agent:sandbox:app_id:/dev", False),
    ("dcos:adminrouter:ops:system-logs", "dcos:adminrouter:ops:system-health", False),
    # an app-id path is a different resource from a same-named plain segment
    (f"{TASK}:dev", f"{TASK}:/dev", False),
    (f"{TASK}:/dev", f"{TASK}:dev", False),
    # trailing '/' on either side: malformed, covers nothing and is covered by nothing
    (f"{TASK}:/dev/", f"{TASK}:/dev/api", False),
    (f"{TASK}:/dev/", f"{TASK}:/dev", False),
    (f"{TASK}:/dev", f"{TASK}:/dev/", False),
    (f"{TASK}:/dev/", f"{TASK}:/dev/", False),
    # '..' and '.' never resolve, on either side
    (f"{TASK}:/dev", f"{TASK}:/dev/../prod", False),
    (f"{TASK}:/dev", f"{TASK}:/dev/./api", False),
    (f"{TASK}:/prod", f"{TASK}:/dev/../prod", False),
    (f"{TASK}:/dev/..", f"{TASK}:/prod", False),
    (f"{TASK}:/dev/..", f"{TASK}:/dev/x", False),
    # '//' never collapses
    (f"{TASK}:/dev", f"{TASK}:/dev//api", False),
    (f"{TASK}:/dev/api", f"{TASK}://dev/api", False),
    # percent-encoding is never decoded, on either side
    (f"{TASK}:/dev", f"{TASK}:/dev%2Fapi", False),
    (f"{TASK}:/dev", f"{TASK}:%2Fdev", False),
    (f"{TASK}:%2Fdev", f"{TASK}:/dev", False),
    (f"{TASK}:%2Fdev", f"{TASK}:%2Fdev", False),
    (f"{TASK}:/dev", f"{TASK}:/dev%2F..%2Fprod", False),
    (f"{TASK}:/prod", f"{TASK}:/dev%2F..%2Fprod", False),
    (TASK, f"{TASK}:%2Fprod", False),
    # case never folds, on either side
    (f"{TASK}:/dev", f"{TASK}:/DEV", False),
    (f"{TASK}:/dev", f"{TASK}:/Dev/api", False),
    (f"{TASK}:/Dev", f"{TASK}:/dev", False),
    (f"{TASK}:/Dev", f"{TASK}:/Dev", False),
    ("DCOS", "dcos:superuser", False),
    ("dcos:SUPERUSER", "dcos:superuser", False),
    (TASK.upper(), f"{TASK}:/dev", False),
    # wildcards are not wildcards
    (f"{TASK}:*", f"{TASK}:/dev", False),
    (f"{TASK}:/*", f"{TASK}:/dev", False),
    # empty and root app ids
    (f"{TASK}:", f"{TASK}:/dev", False),
    (f"{TASK}:/", f"{TASK}:/dev", False),
    ("", f"{TASK}:/dev", False),
    (TASK, "", False),
]


@pytest.mark.parametrize(("grant", "requested", "expected"), COVERS)
def test_covers(grant: str, requested: str, expected: bool) -> None:
    assert covers(grant, requested) is expected


@pytest.mark.parametrize(("grant", "requested", "expected"), COVERS)
def test_covers_canonical_agrees_on_canonical_pairs(
    grant: str, requested: str, expected: bool
) -> None:
    if is_canonical(grant) and is_canonical(requested):
        assert covers_canonical(grant, requested) is expected


@pytest.mark.parametrize("rid", VALID)
def test_every_rid_covers_itself_and_its_children(rid: str) -> None:
    assert covers(rid, rid)
    assert covers(rid, f"{rid}/child")
    is_path = "/" in rid.rsplit(":", 1)[-1]
    # Nothing follows a path but more path: `/dev:x` is malformed, so covered by nothing.
    assert covers(rid, f"{rid}:child") is not is_path


@pytest.mark.parametrize(
    ("rid", "segment"),
    [
        ("dcos:superuser", "dcos:superuser"),
        ("dcos:adminrouter:ops:system-logs", "dcos:adminrouter:ops:system-logs"),
        (f"{TASK}:/dev/api", f"{TASK}:%252Fdev%252Fapi"),
        (f"{ROLE}:dev/backend", f"{ROLE}:dev%252Fbackend"),
        (f"{TASK}:/dev/api.v2/web-1_a", f"{TASK}:%252Fdev%252Fapi.v2%252Fweb-1_a"),
    ],
)
def test_a_rid_in_an_acl_url_is_one_segment_that_names_the_same_rid(rid: str, segment: str) -> None:
    # The IAM client's and views' ACL URLs (`/acls/<rid>/users/<uid>/read`): a `/` left as
    # is, or decoded by the proxy, would split the rid into path segments, so a grant or a
    # revocation would address another route or another ACL. DC/OS encodes it twice.
    assert rid_path(rid) == segment
    assert "/" not in rid_path(rid)
    proxied = unquote(rid_path(rid))  # the one decoding a proxy or the router does
    assert "/" not in proxied
    assert iam_rid(proxied) == rid
