"""Query conditions: `query_match` (parameters a request must carry, `*` any value) and
`query_exact` (no other parameter; alone: no query at all). docs/rules.md, "Query conditions"."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules import querymatch
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.parsing import loads, rule_from_mapping
from redirectory.rules.validation import validate

TABLE = """
rules:
  - from: /page
    to: /plain
  - from: /page
    to: /by-id
    query_match: {page_id: "1"}
    query: drop
  - from: /page
    to: /tagged
    query_match: {ref: "*"}
    query_exact: true
    priority: 5
  - from: /page
    to: /bare
    query_exact: true
  - from: /items/{id}
    to: /v2/items/{id}
    query_match: "view=full"
  - from_regex: ^/old/(?P<rest>.*)$
    to: /new/{rest}
    query_exact: true
"""


def engine() -> Engine:
    ruleset, problems = loads(TABLE, "yaml", "t.yaml")
    assert not [p for p in problems + validate(ruleset, "t.yaml") if p.is_error]
    return Engine(ruleset)


def location(e: Engine, target: str) -> str | None:
    path, _, query = target.partition("?")
    return e.decide(Request("GET", path, query=query)).location


def test_conditions_choose_among_rules_of_one_path() -> None:
    e = engine()
    assert location(e, "/page") == "/bare"
    assert location(e, "/page?page_id=1") == "/by-id"  # query: drop
    assert location(e, "/page?x=2&page_id=1") == "/by-id"  # order and other parameters do not matter
    assert location(e, "/page?page_id=2") == "/plain?page_id=2"
    assert location(e, "/page?ref=") == "/tagged?ref="  # `*`: present, any value, the empty one too
    assert location(e, "/page?ref=a&b=1") == "/plain?ref=a&b=1"  # exact: no other parameter
    assert location(e, "/page?page%5Fid=%31") == "/by-id"  # names and values compared decoded
    assert location(e, "/items/7?view=full") == "/v2/items/7?view=full"
    assert location(e, "/items/7")  is None
    assert location(e, "/old/a/b") == "/new/a/b"
    assert location(e, "/old/a/b?utm=1") is None


def test_explain_says_why_a_rule_was_skipped() -> None:
    explained = engine().explain(Request("GET", "/page", query="other=1"))
    verdicts = [(c.rule.to, c.verdict) for c in explained.considered]
    assert verdicts[0] == ("/tagged", "skipped: the query does not meet its query conditions "
                                      "(ref present, no other parameter)")
    assert ("/bare", "skipped: the query does not meet its query conditions (no query)") in verdicts
    assert verdicts[-1] == ("/plain", "chosen")


def test_both_forms_read_the_same_and_errors_name_the_field() -> None:
    a, _ = rule_from_mapping({"from": "/a", "to": "/b", "query_match": {"b": "*", "a": 1}})
    b, _ = rule_from_mapping({"from": "/a", "to": "/b", "query_match": "a=1&b"})
    assert a is not None and a == b and a.query_match == "a=1&b=*"
    for bad, said in (({}, "names no parameter"), ("=1", "no parameter name"), ([1], "must be a mapping"),
                      ({"a": None}, "must be text"), ("a=1&a=2", "twice")):
        rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "query_match": bad})
        assert rule is None and problems[0].field == "query_match" and said in problems[0].message, problems
    _rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "query_exact": "yes"})
    assert problems[0].field == "query_exact"


def test_validation_duplicates_ambiguity_and_loops() -> None:
    def codes(text: str) -> list[str]:
        ruleset, problems = loads(text, "yaml", "v.yaml")
        return sorted(p.code for p in problems + validate(ruleset, "v.yaml") if p.is_error)

    same = "rules:\n" + "  - {from: /a, to: /b, query_match: {x: '1'}}\n" * 2
    assert codes(same) == ["duplicate"]
    assert codes("rules:\n  - {from: /a, to: /b, query_match: {x: '1'}}\n"
                 "  - {from: /a, to: /c, query_match: {x: '2'}}\n") == []  # never both
    assert codes("rules:\n  - {from: /a, to: /b, query_match: {x: '1'}}\n"
                 "  - {from: /a, to: /c, query_match: {y: '*'}}\n") == ["ambiguous"]  # ?x=1&y=2
    assert codes("rules:\n  - {from: /a, to: /b, query_match: {x: '1'}, query_exact: true}\n"
                 "  - {from: /a, to: /c, query_match: {y: '*'}}\n") == []
    # the request keeps x=1 and comes back: a loop; dropping the query ends it
    assert codes("rules:\n  - {from: /a, to: /a, query_match: {x: '1'}}\n") == ["loop"]
    assert codes("rules:\n  - {from: /a, to: /a, query_match: {x: '1'}, query: drop}\n") == []
    assert codes("rules:\n  - {from: /a, to: '/a?x=1', query_exact: true}\n"
                 "  - {from: /a, to: /b, query_match: {x: '1'}}\n") == []  # a chain, not a loop


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    again, problems = loads(dumps(ruleset, fmt), fmt, f"t.{fmt}")
    assert not problems
    assert [(r.query_match, r.query_exact) for r in again.rules] == [
        (r.query_match, r.query_exact) for r in ruleset.rules]


def test_the_nginx_export_names_the_rules_it_leaves_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    export = nginx(ruleset)
    skipped = [p for p in export.skipped if p.code == "nginx.query_match"]
    assert len(skipped) == 5 and "matches paths only" in skipped[0].message


# -- the satisfied() reference ------------------------------------------------------------------
NAMES = st.sampled_from(["a", "b", "c", "a b", "é"])
VALUES = st.sampled_from(["", "1", "2", "x&y", "*", "é"])


def naive(conditions: dict[str, str], exact: bool, params: list[tuple[str, str]]) -> bool:
    for name, wanted in conditions.items():
        values = [v for n, v in params if n == name]
        if not values or (wanted != querymatch.ANY and wanted not in values):
            return False
    return not (exact and any(n not in conditions for n, _ in params))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(NAMES, VALUES, min_size=1, max_size=3), st.booleans(),
       st.lists(st.tuples(NAMES, VALUES), max_size=4))
def test_satisfied_agrees_with_a_naive_reference(conditions: dict[str, str], exact: bool,
                                                 params: list[tuple[str, str]]) -> None:
    text = querymatch.canonical(querymatch.parse_mapping(conditions))
    raw = "&".join(quote_plus(n) + "=" + quote_plus(v) for n, v in params)
    assert querymatch.satisfied(querymatch.parse_text(text), exact, raw) == naive(conditions, exact, params)
    assert querymatch.as_mapping(text) == conditions  # the canonical text keeps every value


# -- the real gateway and admin API ---------------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("query-match")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def test_the_gateway_answers_by_the_query(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        assert client.get("/page").headers["location"] == "/bare"
        assert client.get("/page?page_id=1").headers["location"] == "/by-id"
        assert client.get("/page?page_id=1&utm=x").headers["location"] == "/by-id"
        assert client.get("/page?page_id=9").headers["location"] == "/plain?page_id=9"
        assert client.get("/old/x?utm=1").status_code == 404
        assert client.get("/old/x").headers["location"] == "/new/x"


def test_the_admin_api_takes_and_shows_a_mapping(served: ServeProcess, tmp_path: Path) -> None:
    done = cli("keys", "create", "query-match", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}) as admin:
        made = admin.post("/api/v1/rules", json={"from": "/promo", "to": "/sale", "status": 307,
                                                 "queryMatch": {"campaign": "*"}, "queryExact": True})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["queryMatch"] == {"campaign": "*"} and body["queryExact"] is True
        policy = admin.post("/api/v1/rules", json={"from": "/legacy", "to": "/new", "status": 308,
                                                   "queryMatch": {"id": "*"},
                                                   "query": {"strip": ["utm_*"], "pass": "unmatched"}})
        assert policy.status_code == 201, policy.text
        assert policy.json()["query"] == {"pass": "unmatched", "strip": ["utm_*"]}
        bad = admin.post("/api/v1/rules", json={"from": "/promo2", "to": "/sale", "queryMatch": {"a": ["x"]}})
        assert bad.status_code == 400 and "queryMatch" in bad.text, bad.text
        schema = admin.get("/api/v1/openapi.json").json()
        props = json.dumps(schema)
        assert '"queryMatch"' in props and '"queryExact"' in props
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        def promo() -> int:
            return client.get("/promo?campaign=x").status_code
        deadline = time.monotonic() + 20  # the gateway syncs with the store within a second or so
        while promo() != 307 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert promo() == 307
        assert client.get("/promo?campaign=x&y=1").status_code == 404
        moved = client.get("/legacy?utm_source=a&id=7&lang=en")
        assert moved.status_code == 308 and moved.headers["location"] == "/new?lang=en"


# -- query policies: strip, pass ------------------------------------------------------------------
POLICIES = """
rules:
  - from: /index.php
    to: /about
    query_match: {page_id: "12"}
    query_exact: true
    query: {strip: [utm_*, gclid], pass: unmatched}
  - from: /search
    to: /find?v=2
    query: {pass: [q, page]}
  - from: /x
    to: /y
    query: {strip: [utm_*]}
"""


def test_policies_strip_before_matching_and_pass_what_they_say() -> None:
    ruleset, problems = loads(POLICIES, "yaml", "p.yaml")
    assert not problems and not [p for p in validate(ruleset, "p.yaml") if p.is_error]
    e = Engine(ruleset)
    assert location(e, "/index.php?page_id=12") == "/about"
    # a tracking parameter does not keep an exact rule from answering, and is not passed on
    assert location(e, "/index.php?utm_source=x&page_id=12&gclid=1") == "/about"
    assert location(e, "/index.php?page_id=12&lang=en") is None  # exact: lang is not stripped
    assert location(e, "/search?q=a&x=1&page=2&v=9") == "/find?v=2&q=a&page=2"  # an allow-list; the target's v wins
    assert location(e, "/x?utm_a=1&b=2") == "/y?b=2"


def test_policy_errors_name_the_field_and_the_valid_values() -> None:
    for bad, said in (("sometimes", "must be keep"), ({"pass": "some"}, "all, none, unmatched"),
                      ({"strip": "utm_*", "extra": 1}, "unknown key 'extra'"), ({"strip": ["a b"]}, "not a parameter name"),
                      ({"pass": []}, "list of parameter names")):
        rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "query": bad})
        assert rule is None and problems[0].field == "query" and said in problems[0].message, (bad, problems)
    keep, _ = rule_from_mapping({"from": "/a", "to": "/b", "query": {"pass": "all"}})
    drop, _ = rule_from_mapping({"from": "/a", "to": "/b", "query": {"pass": "none"}})
    assert keep is not None and keep.query == "keep" and drop is not None and drop.query == "drop"


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_policies_round_trip_and_json_is_what_to_dict_gives(fmt: str) -> None:
    ruleset, _ = loads(POLICIES, "yaml", "p.yaml")
    text = dumps(ruleset, fmt)
    again, problems = loads(text, fmt, f"p.{fmt}")
    assert not problems and [r.query for r in again.rules] == [r.query for r in ruleset.rules]
    if fmt == "json":
        assert text == json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False) + "\n"


def naive_passed(params: list[tuple[str, str]], strip: list[str], passes: str | list[str],
                 matched: list[str]) -> list[tuple[str, str]]:
    def stripped(name: str) -> bool:
        return any(name.startswith(s[:-1]) if s.endswith("*") else name == s for s in strip)
    out = []
    for name, value in params:
        if stripped(name) or passes == "none" or (passes == "unmatched" and name in matched):
            continue
        if isinstance(passes, list) and name not in passes:
            continue
        out.append((name, value))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "utm_x", "utm_", "c d", "é"]), VALUES), max_size=5),
       st.lists(st.sampled_from(["utm_*", "a", "b*", "é"]), max_size=2, unique=True),
       st.sampled_from(["all", "none", "unmatched", ["a"], ["b", "é"]]),
       st.lists(st.sampled_from(["a", "b"]), max_size=2, unique=True))
def test_passed_agrees_with_a_naive_reference(params: list[tuple[str, str]], strip: list[str],
                                              passes: str | list[str], matched: list[str]) -> None:
    from redirectory.rules import querypolicy

    raw = "&".join(quote_plus(n) + "=" + quote_plus(v) for n, v in params)
    p = querypolicy.policy(querypolicy.parse({"strip": strip or None, "pass": passes}))
    got = querypolicy.passed(raw, p, [(name, "*") for name in matched])
    expected = naive_passed(params, strip, passes, matched)
    assert got == "&".join(quote_plus(n) + "=" + quote_plus(v) for n, v in expected)
