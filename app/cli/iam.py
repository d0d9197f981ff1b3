"""`logway iam …`: users, service accounts, groups and grants over the IAM HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from app.cli.http import CliError, fail, refused, session
from app.core.errors import LogwayError
from app.iam.client import IamCallFailed, IamClient


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
    recover = kinds.add_parser(
        "recover-superuser",
        help="give a user dcos:superuser full directly in the IAM store (run on the gateway's "
        "host, with access to its data directory; no login needed)",
    )
    recover.add_argument("--data-dir", type=Path, required=True, help="the gateway's data dir")
    recover.add_argument("--uid", default="admin", help="the user to make superuser (admin)")
    recover.add_argument(
        "--keep-password",
        action="store_true",
        help="keep an existing user's password (default: a new generated one, written to "
        "DATA_DIR/superuser-password, mode 0600)",
    )
    recover.set_defaults(run=None, offline=_recover_superuser)
    iam.set_defaults(run=None)


def run(args: argparse.Namespace) -> int:
    offline = getattr(args, "offline", None)
    if offline is not None:
        code: int = offline(args)
        return code
    try:
        _, client = session(getattr(args, "url", None))
        with client:
            args.run(IamClient(client), args)
    except IamCallFailed as exc:
        return fail(refused(exc.status, exc.text))
    except (CliError, httpx.HTTPError) as exc:
        return fail(exc)
    except OSError as exc:
        return fail(CliError(str(exc)))
    return 0


def _add_user(iam: IamClient, args: argparse.Namespace) -> None:
    body: dict[str, str] = {"description": args.description}
    if args.kind == "user":
        if args.password_stdin:
            body["password"] = sys.stdin.readline().rstrip("\n")
    else:
        body["public_key"] = args.public_key.read_text()
    if not iam.put_user(args.uid, body):
        raise refused(409, f"{args.kind} {args.uid} exists")
    print(f"created {args.kind} {args.uid}")


def _list_users(iam: IamClient, args: argparse.Namespace) -> None:
    for row in iam.users(services=args.kind == "service-account"):
        print(f"{row.get('uid')}\t{row.get('description', '')}")


def _delete_user(iam: IamClient, args: argparse.Namespace) -> None:
    iam.delete_user(args.uid)
    print(f"deleted {args.uid}")


def _add_group(iam: IamClient, args: argparse.Namespace) -> None:
    iam.put_group(args.gid, args.description)
    print(f"created group {args.gid}")


def _list_groups(iam: IamClient, args: argparse.Namespace) -> None:
    for row in iam.groups():
        print(f"{row.get('gid')}\t{row.get('description', '')}")


def _delete_group(iam: IamClient, args: argparse.Namespace) -> None:
    iam.delete_group(args.gid)
    print(f"deleted group {args.gid}")


def _membership(iam: IamClient, args: argparse.Namespace) -> None:
    if args.verb_name == "add-user":
        iam.add_member(args.gid, args.uid)
        print(f"added {args.uid} to {args.gid}")
    else:
        iam.remove_member(args.gid, args.uid)
        print(f"removed {args.uid} from {args.gid}")


def _grant(iam: IamClient, args: argparse.Namespace) -> None:
    kind, _, name = args.principal.rpartition(":")
    to = {"": "users", "user": "users", "group": "groups"}.get(kind)
    if to is None or not name:
        raise CliError("PRINCIPAL is UID, user:UID or group:GID", 2)
    if args.verb_name == "grant":
        iam.grant(args.rid, name, args.action, to=to)
        print(f"granted {args.action} on {args.rid} to {args.principal}")
    else:
        iam.revoke(args.rid, name, args.action, to=to)
        print(f"revoked {args.action} on {args.rid} from {args.principal}")


def _permissions(iam: IamClient, args: argparse.Namespace) -> None:
    for source, rows in iam.permissions(args.uid).items():
        for row in rows or []:
            actions = row.get("actions") or [row.get("action")]
            names = ",".join(a["name"] if isinstance(a, dict) else str(a) for a in actions)
            via = f" (via {row['gid']})" if row.get("gid") else ""
            print(f"{row.get('rid')}\t{names}\t{source}{via}")


def _rotate(iam: IamClient, args: argparse.Namespace) -> None:
    iam.rotate_keys()
    print("rotated the token signing key")


def _recover_superuser(args: argparse.Namespace) -> int:
    from app.core.config import GatewaySettings
    from app.gateway.app import SUPERUSER_PASSWORD_FILE, iam_settings
    from app.iam import Iam
    from app.iam.recover import recover_superuser

    data_dir: Path = args.data_dir
    if not (data_dir / "iam.sqlite3").is_file():
        return fail(CliError(f"no IAM store in {data_dir} (expected {data_dir / 'iam.sqlite3'})"))

    async def recover() -> int:
        async with Iam(iam_settings(GatewaySettings(data_dir=data_dir))) as iam:
            done = await recover_superuser(iam, args.uid, new_password=not args.keep_password)
        state = "created" if done.created else "restored"
        print(f"{state} {done.uid}: holds dcos:superuser full")
        if done.password is not None:
            path = data_dir / SUPERUSER_PASSWORD_FILE
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(done.password + "\n")
            print(f"its new password is in {path} (0600): read it, change it, delete the file")
        return 0

    try:
        return asyncio.run(recover())
    except (ValueError, LogwayError) as exc:
        return fail(CliError(str(exc)))
