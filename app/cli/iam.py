"""`logway iam …`: users, service accounts, groups and grants over the IAM HTTP API."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from app.authz.resource import rid_path
from app.cli.http import CliError, check, fail, session

API = "/acs/api/v1"


def add_parser(commands: Any) -> None:
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument(
        "--url",
        default=argparse.SUPPRESS,
        help="the gateway (default: the one you logged in to)",
    )
    iam: argparse.ArgumentParser = commands.add_parser(
        "iam", help="manage identities and grants", parents=[url]
    )
    kinds = iam.add_subparsers(dest="iam_command", required=True, metavar="COMMAND")

    for kind, help_text in (
        ("user", "people who log in with a password"),
        ("service-account", "machines that log in with a private key"),
    ):
        k = kinds.add_parser(kind, help=help_text).add_subparsers(dest="verb", required=True)
        add = k.add_parser("add", parents=[url])
        add.add_argument("uid")
        add.add_argument("--description", default="")
        if kind == "user":
            add.add_argument("--password-stdin", action="store_true")
        else:
            add.add_argument("--public-key", type=Path, required=True, metavar="PEM")
        add.set_defaults(run=_add_user, kind=kind)
        k.add_parser("list", parents=[url]).set_defaults(run=_list_users, kind=kind)
        delete = k.add_parser("delete", parents=[url])
        delete.add_argument("uid")
        delete.set_defaults(run=_delete_user)

    group = kinds.add_parser("group", help="groups of users").add_subparsers(
        dest="verb", required=True
    )
    add = group.add_parser("add", parents=[url])
    add.add_argument("gid")
    add.add_argument("--description", default="")
    add.set_defaults(run=_add_group)
    group.add_parser("list", parents=[url]).set_defaults(run=_list_groups)
    delete = group.add_parser("delete", parents=[url])
    delete.add_argument("gid")
    delete.set_defaults(run=_delete_group)
    for verb in ("add-user", "remove-user"):
        member = group.add_parser(verb, parents=[url])
        member.add_argument("gid")
        member.add_argument("uid")
        member.set_defaults(run=_membership, verb_name=verb)

    for verb in ("grant", "revoke"):
        g = kinds.add_parser(verb, help=f"{verb} an action on a resource id", parents=[url])
        g.add_argument("principal", help="UID, user:UID or group:GID")
        g.add_argument("rid", help="resource id, e.g. dcos:adminrouter:ops:system-logs")
        g.add_argument("action", choices=("create", "read", "update", "delete", "full"))
        g.set_defaults(run=_grant, verb_name=verb)
    perms = kinds.add_parser(
        "permissions", help="what a uid may do, directly and via groups", parents=[url]
    )
    perms.add_argument("uid")
    perms.set_defaults(run=_permissions)
    kinds.add_parser("rotate-keys", help="new token signing key", parents=[url]).set_defaults(
        run=_rotate
    )
    iam.set_defaults(run=None)


def run(args: argparse.Namespace) -> int:
    try:
        _, client = session(getattr(args, "url", None))
        with client:
            args.run(client, args)
    except (CliError, httpx.HTTPError) as exc:
        return fail(exc)
    except OSError as exc:
        return fail(CliError(str(exc)))
    return 0


def _rows(answer: Any) -> list[dict[str, Any]]:
    rows = answer.get("array", answer) if isinstance(answer, dict) else answer
    return list(rows or [])


def _add_user(client: httpx.Client, args: argparse.Namespace) -> None:
    body: dict[str, str] = {"description": args.description}
    if args.kind == "user":
        if args.password_stdin:
            body["password"] = sys.stdin.readline().rstrip("\n")
    else:
        body["public_key"] = args.public_key.read_text()
    check(client.put(f"{API}/users/{quote(args.uid, safe='')}", json=body))
    print(f"created {args.kind} {args.uid}")


def _list_users(client: httpx.Client, args: argparse.Namespace) -> None:
    params = {"type": "service"} if args.kind == "service-account" else {}
    for row in _rows(check(client.get(f"{API}/users", params=params))):
        service = bool(row.get("is_service") or row.get("public_key"))
        if service == (args.kind == "service-account"):
            print(f"{row.get('uid')}\t{row.get('description', '')}")


def _delete_user(client: httpx.Client, args: argparse.Namespace) -> None:
    check(client.delete(f"{API}/users/{quote(args.uid, safe='')}"))
    print(f"deleted {args.uid}")


def _add_group(client: httpx.Client, args: argparse.Namespace) -> None:
    check(
        client.put(
            f"{API}/groups/{quote(args.gid, safe='')}", json={"description": args.description}
        )
    )
    print(f"created group {args.gid}")


def _list_groups(client: httpx.Client, args: argparse.Namespace) -> None:
    for row in _rows(check(client.get(f"{API}/groups"))):
        print(f"{row.get('gid')}\t{row.get('description', '')}")


def _delete_group(client: httpx.Client, args: argparse.Namespace) -> None:
    check(client.delete(f"{API}/groups/{quote(args.gid, safe='')}"))
    print(f"deleted group {args.gid}")


def _membership(client: httpx.Client, args: argparse.Namespace) -> None:
    path = f"{API}/groups/{quote(args.gid, safe='')}/users/{quote(args.uid, safe='')}"
    if args.verb_name == "add-user":
        check(client.put(path))
        print(f"added {args.uid} to {args.gid}")
    else:
        check(client.delete(path))
        print(f"removed {args.uid} from {args.gid}")


def _grant(client: httpx.Client, args: argparse.Namespace) -> None:
    kind, _, name = args.principal.rpartition(":")
    kind = {"": "users", "user": "users", "group": "groups"}.get(kind)
    if kind is None or not name:
        raise CliError("PRINCIPAL is UID, user:UID or group:GID", 2)
    rid = rid_path(args.rid)
    path = f"{API}/acls/{rid}/{kind}/{quote(name, safe='')}/{args.action}"
    if args.verb_name == "grant":
        created = client.put(f"{API}/acls/{rid}", json={"description": args.rid})
        if created.status_code != 409:  # the ACL may exist already
            check(created)
        check(client.put(path))
        print(f"granted {args.action} on {args.rid} to {args.principal}")
    else:
        check(client.delete(path))
        print(f"revoked {args.action} on {args.rid} from {args.principal}")


def _permissions(client: httpx.Client, args: argparse.Namespace) -> None:
    answer = check(client.get(f"{API}/users/{quote(args.uid, safe='')}/permissions"))
    if isinstance(answer, dict):
        for source, rows in answer.items():
            for row in rows or []:
                actions = row.get("actions") or [row.get("action")]
                names = ",".join(a["name"] if isinstance(a, dict) else str(a) for a in actions)
                via = f" (via {row['gid']})" if row.get("gid") else ""
                print(f"{row.get('rid')}\t{names}\t{source}{via}")


def _rotate(client: httpx.Client, args: argparse.Namespace) -> None:
    check(client.post(f"{API}/auth/rotate-keys"))
    print("rotated the token signing key")
