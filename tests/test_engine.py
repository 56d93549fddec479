"""Decision engine cases that the property tests do not pin down."""

from __future__ import annotations

from datetime import UTC, datetime

from redirectory.rules.engine import Engine, Request
from redirectory.rules.model import Rule


def test_many_regex_rules_use_a_set_and_a_miss_is_a_404() -> None:
    rules = [Rule(source_regex=rf"^/r{i}/(?P<id>[0-9]+)$", to=f"/n{i}/{{id}}", status=308) for i in range(20)]
    engine = Engine(rules)
    assert engine.decide(Request("GET", "/r13/42")).location == "/n13/42"
    assert engine.decide(Request("GET", "/nothing")).response.status == 404
    assert engine.decide(Request("GET", "/r13/x")).response.status == 404


def test_regex_rules_run_in_file_order_after_everything_else() -> None:
    rules = [
        Rule(source_regex="^/a/.*$", to="/first", status=308, position=0),
        Rule(source_regex="^/a/b$", to="/second", status=308, position=1),
        Rule(source="/a/{x}", to="/pattern", status=308, position=2, methods=("POST",)),
    ]
    engine = Engine(rules)
    assert engine.decide(Request("GET", "/a/b")).location == "/first"
    assert engine.decide(Request("POST", "/a/b")).location == "/pattern"


def test_precedence_exact_then_specific_patterns_then_tail() -> None:
    rules = [
        Rule(source="/a/{rest:path}", to="/tail", status=308),
        Rule(source="/a/{x}", to="/param", status=308),
        Rule(source="/a/b", to="/exact", status=308),
        Rule(source="/{y}/b", to="/other-param", status=308, priority=5),
    ]
    engine = Engine(rules)
    assert engine.decide(Request("GET", "/a/b")).location == "/exact"
    assert engine.decide(Request("GET", "/a/c")).location == "/param"
    assert engine.decide(Request("GET", "/a/c/d")).location == "/tail"
    assert engine.decide(Request("GET", "/z/b")).location == "/other-param"


def test_windows_and_case_insensitive_rules() -> None:
    rules = [
        Rule(source="/sale", to="/black-friday", status=307,
             starts=datetime(2026, 11, 27, tzinfo=UTC), ends=datetime(2026, 11, 28, tzinfo=UTC)),
        Rule(source="/sale", to="/shop", status=307, priority=-1),
        Rule(source="/Docs/{rest:path}", to="/docs/{rest}", status=301, case_insensitive=True, methods=("GET",)),
    ]
    engine = Engine(rules)
    during = datetime(2026, 11, 27, 12, tzinfo=UTC)
    after = datetime(2026, 11, 28, tzinfo=UTC)
    assert engine.decide(Request("GET", "/sale"), during).location == "/black-friday"
    assert engine.decide(Request("GET", "/sale"), after).location == "/shop"
    assert engine.decide(Request("GET", "/DOCS/Intro")).location == "/docs/Intro"


def test_target_query_wins_and_request_query_follows() -> None:
    engine = Engine([Rule(source="/a", to="/b?lang=en&x=1#top", status=308)])
    assert engine.decide(Request("GET", "/a", "lang=fr&y=2")).location == "/b?lang=en&x=1&y=2#top"


def test_default_cache_only_for_permanent_codes() -> None:
    engine = Engine([
        Rule(source="/p", to="/q", status=308),
        Rule(source="/t", to="/u", status=307),
        Rule(source="/s", to="/v", status=303, cache=60),
    ])
    headers = {path: dict(engine.decide(Request("GET", path)).response.headers) for path in ("/p", "/t", "/s")}
    assert headers["/p"]["cache-control"] == "max-age=3600"
    assert "cache-control" not in headers["/t"]
    assert headers["/s"]["cache-control"] == "max-age=60"
