"""Who sees what in a merged read: only the tasks the caller may read, never a hint of the
others; none at all is 403 with the same words whether the role or app exists or not."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.merge.support import DEV, DEVOPS, PREFIX, PRODUCTION, RUN, WEB, Env, new_run

JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def run(env: Env) -> str:
    run = new_run()
    for task in (*WEB, DEV, DEVOPS, PRODUCTION):
        env.write(task, run, 5)
    env.sync()
    return run


def containers(env: Env, path: str, headers: dict[str, str], run: str) -> set[str]:
    r = env.get(PREFIX + path, {**headers, **JSON}, filter=f"{RUN}:{run}")
    assert r.status_code == 200, (r.status_code, r.text)
    return {orjson.loads(line)["fields"]["CONTAINER_ID"] for line in r.content.splitlines()}


def test_a_dev_grant_sees_dev_and_never_devops(env: Env, run: str) -> None:
    dev = env.users["dev"]
    assert containers(env, "/app/dev/range/", dev, run) == {DEV.container}
    assert containers(env, "/app/dev/worker/range/", dev, run) == {DEV.container}
    # The role holds /dev/worker and /devops/api: only what the caller may read is merged.
    assert containers(env, "/role/dev/range/", dev, run) == {DEV.container}
    r = env.get(f"{PREFIX}/role/dev/range/", dev, filter=f"{RUN}:{run}")
    assert "devops" not in r.text
    assert DEVOPS.container not in r.text


def test_a_role_grant_covers_the_roles_tasks_by_either_route(env: Env, run: str) -> None:
    prodrole = env.users["prodrole"]
    web = {t.container for t in WEB}
    assert containers(env, "/role/prod/range/", prodrole, run) == {*web, PRODUCTION.container}
    assert containers(env, "/app/prod/range/", prodrole, run) == web
    assert env.get(f"{PREFIX}/app/dev/range/", prodrole).status_code == 403


@pytest.mark.parametrize(
    ("uid", "path"),
    [
        ("dev", "/app/devops/range/"),
        ("dev", "/app/devops/stream/"),
        ("dev", "/role/prod/range/"),
        ("nobody", "/app/prod/range/"),
        ("nobody", "/role/prod/stream/"),
        ("nobody", "/app/no/such/app/range/"),  # same answer as for an app that exists
        ("nobody", "/role/no-such-role/range/"),
    ],
)
def test_no_readable_task_is_403_revealing_nothing(env: Env, uid: str, path: str) -> None:
    r = env.get(PREFIX + path, env.users[uid])
    assert r.status_code == 403, r.text
    scope = path.split("/")[1]
    name = "/" + "/".join(path.split("/")[2:-2]) if scope == "app" else path.split("/")[2]
    assert r.text == (
        f"`{uid}` may read no task of {scope} `{name}`: each task needs "
        "`dcos:adminrouter:ops:system-logs` read, or the task's own "
        "`dcos:mesos:agent:task:app_id:<app>`, `dcos:mesos:agent:framework:role:<role>` or "
        "`dcos:mesos:agent:sandbox:app_id:<app>` read\n"
    )


def test_authentication_comes_first(env: Env) -> None:
    for path in ("/app/prod/range/", "/role/prod/stream/", "/app/Bad/range/"):
        r = env.get(PREFIX + path, {})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "acsjwt"


def test_a_grant_on_the_whole_scope_reads_an_empty_one(env: Env) -> None:
    # The superuser may read any app: an app without tasks is simply empty.
    assert env.get(f"{PREFIX}/app/nothing/here/range/", env.admin).status_code == 204
    assert (
        env.get(f"{PREFIX}/app/dev/worker/range/", env.users["dev"], filter="X:y").status_code
        == 204
    )


def test_other_methods_are_405(env: Env) -> None:
    for path in ("/app/prod/range/", "/role/prod/stream/"):
        r = httpx.head(env.base + PREFIX + path, headers=env.admin, timeout=10)
        assert r.status_code == 405
        assert r.headers["allow"] == "GET"
        assert httpx.post(env.base + PREFIX + path, headers=env.admin).status_code == 405
