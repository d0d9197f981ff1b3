"""The route table from the attacker's side: a rule's literal text matches only itself, so a
path that differs in one character from a rule (a `.` is no wildcard) matches no rule (404)
and never borrows that rule's requirement. The table's own regexes are compiled at import, out
of reach of the mutation tool: the tests that build a rule here reach its compiler
(docs/mutation-report.md)."""

from __future__ import annotations

import pytest

from app.authz.route_table import ROUTES, Public, RouteRule, match_route


@pytest.mark.parametrize(
    "path",
    ["/mesos/master/stateXjson", "/slave/S0/stateXjson", "/agent/S0/state_json"],
)
def test_a_dot_in_a_rule_is_literal(path: str) -> None:
    assert match_route(path) is None


def test_every_rule_matches_only_its_own_literal_text() -> None:
    for rule in ROUTES:
        literal = rule.pattern.split("{", 1)[0]
        if "." in literal:
            assert (
                rule.regex.fullmatch(literal.replace(".", "X") + rule.pattern[len(literal) :])
                is None
            )


@pytest.mark.parametrize(
    ("pattern", "path"),
    [("/state.json/{agent_id}", "/stateXjson/S0"), ("/a.b{path:path}", "/aXb/c")],
)
def test_literal_text_before_a_placeholder_is_literal_too(pattern: str, path: str) -> None:
    # No rule of today's table has a regex character before a placeholder; a rule added
    # tomorrow must not make `.` a wildcard there either (hand mutant R2).
    rule = RouteRule(pattern, "test rule", Public())
    assert rule.regex.fullmatch(path.replace("X", ".")) is not None
    assert rule.regex.fullmatch(path) is None


def test_a_rule_names_each_placeholder_and_a_segment_never_spans_a_slash() -> None:
    # Built here, so that the mutation tool reaches the compiler: admission reads the agent,
    # framework, executor and container ids by these names (a wrong name reads as "none").
    rule = RouteRule("/agent/{agent_id}/x/{container_id}/logs{rest:path}", "test rule", Public())
    matched = rule.regex.fullmatch("/agent/S0/x/c-1/logs/v1/range/")
    assert matched is not None
    assert matched.groupdict() == {"agent_id": "S0", "container_id": "c-1", "rest": "/v1/range/"}
    assert rule.regex.fullmatch("/agent/S0/S1/x/c-1/logs") is None
