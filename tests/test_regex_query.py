"""Regexes on the path and query (`regex_query: true`): the `from_regex` reads `/a?x=1` as one
text, as nginx's `$request_uri` does (docs/rules.md, "Regexes on the path and query")."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import dumps, nginx
from redirectory.rules.export_apache import apache
from redirectory.rules.model import Rule
from redirectory.rules.parsing import loads
from redirectory.rules.validation import validate

TABLE = r"""
rules:
  - from_regex: ^/legacy/(?P<rest>.*)$
    regex_query: true
    to: /new/{rest}-copy
    query: drop
  - from_regex: ^/search\?q=(?P<q>[^&]*)$
    regex_query: true
    to: /find/{q}
    query: drop
  - from_regex: ^/videos/.+$
    regex_query: true
    to: /learn
    query: drop
  - from_regex: ^/videos/(?P<id>.+)$
    to: /watch/{id}
  - from_regex: ^//old\.example/p\?id=(?P<id>[0-9]+)
    regex_query: true
    to: https://new.example/posts/{id}
    query: drop
"""


def engine(text: str = TABLE) -> Engine:
    ruleset, problems = loads(text, "yaml", "t.yaml")
    assert not [p for p in problems + validate(ruleset, "t.yaml") if p.is_error], problems
    return Engine(ruleset)


def answer(e: Engine, target: str, host: str | None = None) -> tuple[int, str | None]:
    path, _, query = target.partition("?")
    decision = e.decide(Request("GET", path, query=query, host=host))
    return decision.response.status, decision.location


def test_the_regex_reads_path_and_query_and_groups_keep_what_they_took() -> None:
    e = engine()
    assert answer(e, "/legacy/a") == (301, "/new/a-copy")
    # the group took the query: pasted as received, `?` and all (nginx's `$1` of `$request_uri`)
    assert answer(e, "/legacy/a?x=1&y=%20") == (301, "/new/a?x=1&y=%20-copy")
    assert answer(e, "/search?q=cats") == (301, "/find/cats")
    assert answer(e, "/search?q=cats&page=2")[0] == 404  # `$` after the parameter
    assert answer(e, "/search")[0] == 404
    # `.+` matches through the query: the first (regex_query) rule answers `/videos/?a=1`, which
    # the path-only regex after it cannot match (its `.+` finds nothing after `/videos/`)
    assert answer(e, "/videos/?a=1") == (301, "/learn")
    assert answer(e, "/videos/") == (404, None)
    assert answer(e, "/videos/x") == (301, "/learn")
    assert answer(e, "/old.example/p?id=1")[0] == 404
    assert answer(e, "/p?id=42", host="old.example") == (301, "https://new.example/posts/42")
    assert answer(e, "/p?id=42", host="other.example")[0] == 404


def test_a_value_never_carries_a_control_character_or_a_space() -> None:
    e = engine()
    status, location = answer(e, "/legacy/a?x=%0D%0Aset-cookie:1&b=%20c")
    assert status == 301 and location is not None
    assert "\r" not in location and "\n" not in location and " " not in location


def test_it_keeps_its_place_among_the_regexes_by_file_order() -> None:
    # two regexes match `/a/b?x=1`: the first in file order wins, whichever text each reads
    first_on_path = ("rules:\n  - {from_regex: '^/a/', to: /by-path}\n"
                     "  - {from_regex: '^/a/.*x=1', regex_query: true, to: /by-uri}\n")
    first_on_uri = ("rules:\n  - {from_regex: '^/a/.*x=1', regex_query: true, to: /by-uri}\n"
                    "  - {from_regex: '^/a/', to: /by-path}\n")
    assert answer(engine(first_on_path), "/a/b?x=1") == (301, "/by-path?x=1")
    assert answer(engine(first_on_uri), "/a/b?x=1") == (301, "/by-uri?x=1")
    assert answer(engine(first_on_uri), "/a/b?x=2") == (301, "/by-path?x=2")
    # priority first, then file order, as for every regex
    prioritised = first_on_path.replace("regex_query: true,", "regex_query: true, priority: 1,")
    assert answer(engine(prioritised), "/a/b?x=1") == (301, "/by-uri?x=1")


def test_errors_name_the_field() -> None:
    _ruleset, problems = loads("rules:\n  - {from: /a, to: /b, regex_query: true}\n", "yaml", "e.yaml")
    assert [p.field for p in problems if p.is_error] == ["regex_query"], problems
    assert "from_regex" in problems[0].message and problems[0].line == 2
    _ruleset, problems = loads("rules:\n  - {from_regex: ^/a, to: /b, regex_query: maybe}\n", "yaml", "e.yaml")
    assert [p.field for p in problems if p.is_error] == ["regex_query"], problems


def test_a_loop_through_the_query_is_found() -> None:
    looping = "rules:\n  - {from_regex: '^/a\\?x=1$', regex_query: true, to: '/a?x=1', query: drop}\n"
    ruleset, problems = loads(looping, "yaml", "l.yaml")
    assert len(ruleset.rules) == 1 and not problems
    assert [p.code for p in validate(ruleset, "l.yaml") if p.is_error] == ["loop"]
    ruleset, _ = loads(looping.replace("to: '/a?x=1'", "to: '/a?x=2'"), "yaml", "l.yaml")
    assert len(ruleset.rules) == 1 and not [p for p in validate(ruleset, "l.yaml") if p.is_error]


@pytest.mark.parametrize("fmt", ["yaml", "json", "csv"])
def test_every_file_format_round_trips(fmt: str) -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    again, problems = loads(dumps(ruleset, fmt), fmt, f"t.{fmt}")
    assert not problems
    assert [r.regex_query for r in again.rules] == [r.regex_query for r in ruleset.rules] == [
        True, True, True, False, True]


def test_server_exports_name_the_rules_they_leave_out() -> None:
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    skipped = [p for p in nginx(ruleset).skipped if p.code == "nginx.regex_query"]
    assert len(skipped) == 4 and "path and query" in skipped[0].message and skipped[0].field == "regex_query"
    assert len([p for p in apache(ruleset).skipped if p.code == "apache.regex_query"]) == 4


# -- against a reference: Python's re on `path?query`, first match by priority and file order ------
PATHS = st.sampled_from(["/a", "/a/", "/a/b", "/b/a", "/a/b/c", "/x"])
QUERIES = st.sampled_from(["", "x=1", "x=2&y=1", "y=1&x=1", "q=a%2Fb", "x"])
REGEXES = st.sampled_from([r"^/a/(?P<v>.*)$", r"^/a/?(?P<v>[^?]*)$", r"x=(?P<v>[0-9])", r"^/(?P<v>.+)\?",
                           r"^/a/b$", r"(?P<v>y=1)$", r"^/b/"])
RULES = st.lists(st.tuples(REGEXES, st.booleans(), st.integers(0, 1)), min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(RULES, PATHS, QUERIES)
def test_the_winner_agrees_with_a_naive_reference(rules: list[tuple[str, bool, int]], path: str, query: str) -> None:
    table = [Rule(to="/r" + str(i), source_regex=rx, regex_query=on_uri, priority=prio, position=i, query="drop")
             for i, (rx, on_uri, prio) in enumerate(rules)]
    expected = None
    for rule in sorted(table, key=lambda r: (-r.priority, r.position)):
        text = path + "?" + query if rule.regex_query and query else path
        if re.search(rule.source_regex or "", text):
            expected = rule.to
            break
    assert Engine(table).decide(Request("GET", path, query=query)).location == expected


# -- the real gateway, store and admin API --------------------------------------------------------
@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("regex-query")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def test_the_gateway_answers_from_path_and_query(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        assert client.get("/legacy/a?x=1").headers["location"] == "/new/a?x=1-copy"
        assert client.get("/search?q=cats").headers["location"] == "/find/cats"
        # the answer cache keys on the query too: a second request with another query is answered anew
        assert client.get("/search?q=dogs").headers["location"] == "/find/dogs"
        assert client.get("/videos/?a=1").headers["location"] == "/learn"
        assert client.get("/videos/").status_code == 404
        moved = client.get("/p?id=7", headers={"host": "old.example"})
        assert moved.headers["location"] == "https://new.example/posts/7"


def test_the_admin_api_takes_it_and_the_store_keeps_it(served: ServeProcess, tmp_path: Path) -> None:
    done = cli("keys", "create", "regex-query", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}) as admin:
        made = admin.post("/api/v1/rules", json={"fromRegex": r"^/shop\?item=(?P<id>[0-9]+)$", "regexQuery": True,
                                                 "to": "/items/{id}", "status": 308, "query": "drop"})
        assert made.status_code == 201, made.text
        assert made.json()["regexQuery"] is True
        bad = admin.post("/api/v1/rules", json={"from": "/x", "to": "/y", "regexQuery": True})
        assert bad.status_code == 400 and "regexQuery" in bad.text, bad.text
        assert '"regexQuery"' in admin.get("/api/v1/openapi.json").text
    with httpx.Client(base_url=served.base, follow_redirects=False) as client:
        def shop() -> int:
            return client.get("/shop?item=12").status_code
        deadline = time.monotonic() + 20  # the gateway syncs with the store within a second or so
        while shop() != 308 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert shop() == 308 and client.get("/shop?item=12").headers["location"] == "/items/12"
    exported = cli("rules", "export", "--database", served.database, "--format", "yaml")
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.count("regex_query: true") == 5, exported.stdout
