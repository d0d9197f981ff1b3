"""`logway login`: a password or a service account key → a token stored for later calls."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

import httpx

from app.authn.sign import TokenSigner
from app.cli.credentials import Credentials
from app.cli.http import CliError, fail, refused
from app.iam.client import IamCallFailed, IamClient


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser("login", help="log in to a gateway")
    p.add_argument("--url", required=True, help="the gateway, e.g. http://127.0.0.1:8000")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", metavar="UID")
    who.add_argument("--service-account", metavar="UID")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.add_argument("--private-key", type=Path, metavar="PEM", help="the service account's key")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        url = args.url.rstrip("/")
        with httpx.Client(timeout=30.0) as client:
            iam = IamClient(client, url)
            if args.service_account:
                if args.private_key is None:
                    raise CliError("--service-account needs --private-key", 2)
                uid = args.service_account
                try:
                    signer = TokenSigner.from_file(args.private_key)
                except ValueError as exc:
                    raise CliError(str(exc)) from None
                token = iam.service_login(uid, signer)
            else:
                uid = args.username
                if args.password_stdin:
                    password = sys.stdin.readline().rstrip("\n")
                else:
                    password = getpass.getpass(f"password for {uid}: ")
                token = iam.login(uid, password)
        path = Credentials(url=url, uid=uid, token=token).save()
    except IamCallFailed as exc:
        return fail(refused(exc.status, exc.text))
    except (CliError, httpx.HTTPError) as exc:
        return fail(exc)
    except OSError as exc:
        return fail(CliError(str(exc)))
    print(f"logged in to {url} as {uid} (token stored in {path})")
    return 0
