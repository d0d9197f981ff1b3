"""Response bodies in the DC/OS IAM's shapes (`{"array": [...]}` lists, `*url` links)."""

from __future__ import annotations

from typing import Any

from app.authz.resource import rid_path
from app.iam.records import Ace, Acl, Group, HeldPermission, User

PREFIX = "/acs/api/v1"


def user_url(uid: str) -> str:
    return f"{PREFIX}/users/{uid}"


def group_url(gid: str) -> str:
    return f"{PREFIX}/groups/{gid}"


def acl_url(rid: str) -> str:
    return f"{PREFIX}/acls/{rid_path(rid)}"


def user(u: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "uid": u.uid,
        "description": u.description,
        "url": user_url(u.uid),
        "is_remote": False,
        "is_service": u.is_service,
        "provider_type": "internal",
        "provider_id": "",
    }
    if u.public_key is not None:
        view["public_key"] = u.public_key
    return view


def group(g: Group) -> dict[str, Any]:
    return {"gid": g.gid, "description": g.description, "url": group_url(g.gid)}


def acl(a: Acl) -> dict[str, Any]:
    return {"rid": a.rid, "description": a.description, "url": acl_url(a.rid)}


def listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"array": items}


def members(gid: str, users: list[User]) -> dict[str, Any]:
    return listing(
        [{"membershipurl": f"{group_url(gid)}/users/{u.uid}", "user": user(u)} for u in users]
    )


def memberships(uid: str, groups: list[Group]) -> dict[str, Any]:
    return listing(
        [{"membershipurl": f"{group_url(g.gid)}/users/{uid}", "group": group(g)} for g in groups]
    )


def permissions(uid: str, held: list[HeldPermission]) -> dict[str, Any]:
    """`{"direct": [...], "groups": [...]}`: one entry per (rid[, gid]) with its actions."""
    direct: dict[str, dict[str, Any]] = {}
    via_groups: dict[tuple[str, str], dict[str, Any]] = {}
    for p in held:
        if p.gid is None:
            entry = direct.setdefault(p.rid, _held(p.rid, p.acl_description))
            url = f"{acl_url(p.rid)}/users/{uid}/{p.action}"
        else:
            entry = via_groups.setdefault((p.rid, p.gid), _held(p.rid, p.acl_description))
            entry |= {"gid": p.gid, "groupurl": group_url(p.gid)}
            url = f"{acl_url(p.rid)}/groups/{p.gid}/{p.action}"
        entry["actions"].append({"name": p.action.value, "url": url})
    return {"direct": list(direct.values()), "groups": list(via_groups.values())}


def group_permissions(gid: str, held: list[HeldPermission]) -> dict[str, Any]:
    by_rid: dict[str, dict[str, Any]] = {}
    for p in held:
        entry = by_rid.setdefault(p.rid, _held(p.rid, p.acl_description))
        url = f"{acl_url(p.rid)}/groups/{gid}/{p.action}"
        entry["actions"].append({"name": p.action.value, "url": url})
    return listing(list(by_rid.values()))


def acl_permissions(rid: str, entries: list[Ace]) -> dict[str, Any]:
    """`{"users": [{uid, userurl, actions}], "groups": [{gid, groupurl, actions}]}`."""
    users: dict[str, dict[str, Any]] = {}
    groups: dict[str, dict[str, Any]] = {}
    for e in entries:
        if e.kind == "user":
            entry = users.setdefault(
                e.principal, {"uid": e.principal, "userurl": user_url(e.principal), "actions": []}
            )
        else:
            entry = groups.setdefault(
                e.principal, {"gid": e.principal, "groupurl": group_url(e.principal), "actions": []}
            )
        url = f"{acl_url(rid)}/{e.kind}s/{e.principal}/{e.action}"
        entry["actions"].append({"name": e.action.value, "url": url})
    return {"users": list(users.values()), "groups": list(groups.values())}


def _held(rid: str, description: str) -> dict[str, Any]:
    return {"rid": rid, "description": description, "aclurl": acl_url(rid), "actions": []}
