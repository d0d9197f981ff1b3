"""Contract test (issue 12 §7): schemathesis, a real peer tool, against a live gateway and node
reader over real journald and the Mesos simulator. Every non-streaming operation of both
OpenAPI documents, as the superuser and as a restricted user, with a few generated cases each:
no server error, every answer as documented (status, headers, content type, schema).

Follows are left out: schemathesis reads a body to its end, and a follow has none; their own
tests cover them (tests/node/test_follow.py, tests/gateway, tests/merge).

`positive_data_acceptance`: a request valid by the document is not refused as invalid (400),
so the documents declare every constraint the servers enforce (issue 12 §6). Two formats JSON
Schema has no word for get a strategy here (an RE2 pattern, a merged read's composite cursor).
Rules no schema can state, said in the documents' words, are left out of that check: a service
account's `public_key` is a PEM key, a login carries exactly one of `password` and `token`
(a top-level `oneOf` would cost the SDKs their login model), a merged read's `cursor` is not
combinable with skips (a rule between parameters), and a journald cursor must name an entry of
that node's journal that the read's filters match (a well-formed one that does not is the
node's 400 saying so)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from app.merge.cursor import encode_cursor
from app.openapi.readings import JOURNAL_CURSOR, MERGED_CURSOR_FORMAT, RE2_FORMAT
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import (
    GATEWAY_UID,
    add_user,
    gateway,
    grant,
    login,
    node_headers,
    node_readers,
    port_free_on,
)
from tests.support.journal import Sender
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
PASSWORD = "contract test admin password"
AGENT_HOST, GATEWAY_HOST = "127.0.0.142", "127.0.0.143"
MASTER_ID = "c0417ac7-0000-4000-8000-000000000142"
AGENT = f"{MASTER_ID}-S0"
MARATHON = f"{MASTER_ID}-0000"
EXAMPLES = 4  # per operation and caller: ~1,000 requests in all
STREAMING = ("/stream",)
# A body field whose validity no schema can state (a PEM public key).
UNSTATED = ("public_key",)
MERGED_CURSOR_PREFIXES = ("m1.", "m2.")
# app/journal/handle.py: a well-formed cursor that names no entry here (or none the filters match).
NOT_IN_JOURNAL = re.compile(r"^Cursor in `[^`]+` not found in this journal")


def valid_data_accepted(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """`positive_data_acceptance`, but for the node's 400 on a cursor its journal lacks."""
    if response.status_code == 400 and NOT_IN_JOURNAL.match(response.text):
        return None
    return positive_data_acceptance(ctx, response, case)


# No server error, every answer as documented, and no valid request refused as invalid.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    valid_data_accepted,
]


schemathesis.openapi.format(
    RE2_FORMAT,
    st.one_of(
        st.from_regex(r"\A[A-Za-z0-9 ]{1,24}\Z"),
        st.sampled_from(["(?i)web", "line [0-9]+", "^web", "1$", "a|b", "\\d+", "[[:alpha:]]"]),
    ),
)
schemathesis.openapi.format(
    MERGED_CURSOR_FORMAT,
    st.builds(
        lambda origin, positions: encode_cursor(origin, positions),
        st.one_of(st.none(), st.integers(0, 2**63)),
        st.dictionaries(
            st.from_regex(r"\A[0-9a-zA-Z-]{1,40}\Z"),
            st.from_regex(f"\\A{JOURNAL_CURSOR}\\Z"),
            max_size=3,
        ),
    ),
)


@dataclass
class Live:
    gateway: str
    reader: str
    data_dir: Path
    callers: dict[str, dict[str, str]]  # gateway credentials by name


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, AGENT_HOST)]
    # Marathon registered from the one node, so its leader route resolves (issue 18).
    cluster.frameworks = [SimFramework(MARATHON, "marathon", scheduler_host=AGENT_HOST)]
    cluster.tasks = [
        SimTask(
            "web.instance-1",
            "web",
            MARATHON,
            AGENT,
            executor_id="web.exec",
            containers=("c-web-1",),
            labels={"DCOS_SPACE": "/prod/web"},
        )
    ]
    port = port_free_on((AGENT_HOST,))
    data_dir = tmp_path_factory.mktemp("contract-gw")
    with (
        JournaldNamespace(new_namespace_name()) as ns,
        MesosSimulator(cluster, masters=[(AGENT_HOST, 0)]) as sim,  # its reader: the agent's
        gateway(
            data_dir, password=PASSWORD, mesos=sim.urls[0], reader_port=port, host=GATEWAY_HOST
        ) as base,
        node_readers({AGENT_HOST: ns.name}, port, f"{base}/acs/api/v1/auth/jwks") as readers,
    ):
        sender = Sender(ns)
        for n in range(5):
            sender.send(
                {
                    "MESSAGE": f"web line {n}",
                    "FRAMEWORK_ID": MARATHON,
                    "EXECUTOR_ID": "web.exec",
                    "CONTAINER_ID": "c-web-1",
                    "STREAM": "STDOUT",
                }
            )
        sender.sync()
        sender.close()
        admin = login(base, "admin", PASSWORD)
        add_user(base, admin, GATEWAY_UID, "gateway contract password")
        restricted = add_user(base, admin, "restricted", "restricted password")
        grant(base, admin, "dcos:mesos:agent:task:app_id:/prod", "restricted")
        reader = readers[AGENT_HOST]
        wait_for("the reader", lambda: True)
        yield Live(base, reader, data_dir, {"superuser": admin, "restricted": restricted})


def operations(document: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_path(OPENAPI / document)
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if not any(mark in op.path for mark in STREAMING)]


def stated(case: schemathesis.Case) -> bool:
    """Whether the document can say everything that makes `case` valid (see the docstring)."""
    body = case.body if isinstance(case.body, dict) else {}
    if any(name in body for name in UNSTATED):
        return False
    if case.path.endswith("/auth/login") and ("password" in body) == ("token" in body):
        return False  # exactly one of the two: said in words (app/openapi/iam.py body_schemas)
    query = case.query or {}
    merged_cursor = str(query.get("cursor", "")).startswith(MERGED_CURSOR_PREFIXES)
    return not (merged_cursor and (query.get("skip_prev") or query.get("skip_next")))


def failures_of(op: schemathesis.APIOperation, base: str, headers: dict[str, str]) -> list[str]:
    failed: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy())
    def check(case: schemathesis.Case) -> None:
        # `*/*`: never an event stream (a follow), whatever Accept the case would send.
        sent = {**(case.headers or {}), **headers, "Accept": "*/*"}
        checks = CHECKS
        if not stated(case):
            checks = [check for check in CHECKS if check is not valid_data_accepted]
        try:
            case.call_and_validate(base_url=base, headers=sent, timeout=20, checks=checks)
        except (Exception, BaseExceptionGroup) as exc:  # collected, reported together below
            failed.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")

    started = time.monotonic()
    try:
        check()
    except Unsatisfiable:
        # schemathesis rejected every generated case before sending it (nothing was sent).
        print(f"no sendable case: {op.method.upper()} {op.path}")
    print(f"{time.monotonic() - started:6.2f} s  {op.method.upper()} {op.path}")
    return failed


@pytest.mark.parametrize("caller", ["superuser", "restricted"])
def test_the_gateway_answers_as_its_document_says(live: Live, caller: str) -> None:
    failed = [
        failure
        for op in operations("gateway.json")
        for failure in failures_of(op, live.gateway, live.callers[caller])
    ]
    assert not failed, "\n\n".join(failed)


def test_the_node_reader_answers_as_its_document_says(live: Live) -> None:
    credential = node_headers(live.data_dir, live.reader)
    failed = [
        failure
        for op in operations("node.json")
        for failure in failures_of(op, live.reader, credential)
    ]
    assert not failed, "\n\n".join(failed)
