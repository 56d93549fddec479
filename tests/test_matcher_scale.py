"""The matcher at scale: regex rules at any count (a sharded RE2 set), compact exact rules.

The 100,000-regex table is measured by `bench/regex_matcher.py`; the suite keeps to 20,000.
"""

from __future__ import annotations

import re
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from redirectory.rules.engine import Engine, EngineOptions, Request
from redirectory.rules.model import Rule
from redirectory.rules.regexset import RegexSet

PATTERNS = [r"^/a/[0-9]+$", r"b", r"^/(a|b)/c", r"c$", r"^/$", r"(?i)^/A", r"[0-9]{2}", r"^/b/.*/c$"]
TEXTS = ["/", "/a/1", "/a/12", "/b/c", "/B/c", "/a/c", "/b/x/c", "/abc", "/A/x", "/99"]


@settings(max_examples=200)
@given(
    st.integers(1, 4),
    st.lists(st.tuples(st.booleans(), st.integers(0, 30), st.sampled_from(PATTERNS)), max_size=40),
)
def test_regex_set_agrees_with_trying_each_pattern_whatever_the_shard_size(shard, ops):
    rset: RegexSet[int] = RegexSet(shard_patterns=shard)
    table: dict[int, str] = {}
    for add, key, pattern in ops:
        if add and key not in table:
            table[key] = pattern
            rset.add(key, pattern, key)
        elif not add and key in table:
            del table[key]
            assert rset.remove(key) == key
        for text in TEXTS[:3]:
            assert rset.match(text) == sorted(k for k, p in table.items() if re.search(p, text))
    assert len(rset) == len(table)
    assert list(rset.values()) == sorted(table)
    for text in TEXTS:
        assert rset.match(text) == sorted(k for k, p in table.items() if re.search(p, text))


def test_a_set_re2_refuses_is_split_and_a_pattern_too_big_alone_is_tried_on_its_own():
    # A budget so small that RE2 compiles no set of many patterns: the shard is cut down until it does.
    rset: RegexSet[int] = RegexSet(max_mem=1 << 15)
    for i in range(200):
        rset.add(i, rf"^/r{i}/items/([0-9]+)$", i)
    assert rset.match("/r150/items/7") == [150]
    assert rset.match("/r150/items/x") == []
    # A pattern no set can hold within the budget is still matched (by itself).
    big = "^/big/" + "(a|b)" * 3000 + "$"
    rset.add(1000, big, 1000)
    text = "/big/" + "ab" * 1500
    expected = [1000] if re.search(big, text) else []
    assert rset.match(text) == expected == [1000]
    assert rset.match("/r7/items/1") == [7]


def test_an_invalid_pattern_matches_nothing_and_does_not_break_the_others():
    rset: RegexSet[int] = RegexSet(shard_patterns=4)
    for i, pattern in enumerate(["^/a", "(unclosed", "^/b", "a"]):
        rset.add(i, pattern, i)
    assert rset.match("/a") == [0, 3]
    assert rset.match("/b") == [2]


def test_twenty_thousand_regex_rules_load_fast_and_answer_in_precedence_order():
    count = 20_000
    rules = [
        Rule(source_regex=rf"^/r{i}/items/(?P<id>[0-9]+)$", to=f"/n{i}/{{id}}", status=308, position=i)
        for i in range(count)
    ]
    rules.append(Rule(source_regex=r"^/r1(?P<rest>.*)$", to="/late/{rest}", status=308, position=count))
    rules.append(Rule(source_regex=r"^/r5/items/1$", to="/prio", status=308, priority=1, position=count + 1))
    started = time.perf_counter()
    engine = Engine(rules)
    loaded = time.perf_counter() - started
    assert engine.decide(Request("GET", "/r19999/items/42")).location == "/n19999/42"  # compiles the set
    first = time.perf_counter() - started
    assert engine.decide(Request("GET", "/r5/items/1")).location == "/prio"
    assert engine.decide(Request("GET", "/r12/items/3")).location == "/n12/3"
    assert engine.decide(Request("GET", "/r12/other")).location == "/late/2/other"
    assert engine.decide(Request("GET", "/nothing")).response.status == 404
    # a change recompiles one shard only
    engine.remove(engine.decide(Request("GET", "/r12/items/3")).rule_id or "")
    assert engine.decide(Request("GET", "/r12/items/3")).location == "/late/2/items/3"
    assert loaded < 10 and first < 20, (loaded, first)  # seconds, with room for a busy machine
    started = time.perf_counter()
    for i in range(0, count, 20):
        assert engine.matcher.match(f"/r{i}/items/7") is not None
    per_match = (time.perf_counter() - started) / (count / 20)
    assert per_match < 0.005, per_match


def test_compact_exact_rules_answer_like_full_ones_and_keep_what_the_gateway_needs():
    rules = [
        Rule(source=f"/svc{i}/items/{i}", to=f"/v2/svc{i}/items/{i}", status=301,
             id=f"{i:08x}-0000-4000-8000-000000000000", position=i)
        for i in range(2000)
    ]
    rules += [
        Rule(source="/Old//Page", to="https://example.com/new?x=1", status=308, case_insensitive=True,
             id="ci", position=5000),
        Rule(source="//h1.test/svc1/items/1", to="/host", status=307, id="host", position=5001),
        Rule(source="/svc2/items/2", to="/post-only", status=308, methods=("POST",), id="post", position=5002),
        Rule(source="/off", to="/x", enabled=False, id="off", position=5003),
    ]
    full = Engine(rules)
    compact = Engine(rules, EngineOptions(compact=True))
    for method, path, host in [
        ("GET", "/svc7/items/7", None), ("GET", "/old/page", None), ("GET", "/OLD/PAGE", None),
        ("GET", "/svc1/items/1", "h1.test"), ("GET", "/svc1/items/1", "h2.test"), ("POST", "/svc2/items/2", None),
        ("GET", "/svc2/items/2", None), ("GET", "/off", None), ("GET", "/svc1/items/2", None),
    ]:
        a = full.decide(Request(method, path, "q=1", host))
        b = compact.decide(Request(method, path, "q=1", host))
        assert (a.outcome, a.rule_id, a.rule, a.values) == (b.outcome, b.rule_id, b.rule, b.values)
        if a.outcome == "redirect":
            assert a.response == b.response
    matcher = compact.matcher
    assert len(matcher) == len(rules)
    assert [r.id for r in matcher.rules()] == [r.id for r in rules]
    got = matcher.get("00000003-0000-4000-8000-000000000000")
    assert got is not None and got.rule == rules[3] and got.pattern == full.matcher.get(got.id).pattern  # type: ignore[union-attr]
    removed = matcher.remove("00000003-0000-4000-8000-000000000000")
    assert removed == rules[3]
    assert compact.decide(Request("GET", "/svc3/items/3")).response.status == 404
    assert matcher.add(rules[3]) is None  # kept compact again
    assert compact.decide(Request("GET", "/svc3/items/3")).location == "/v2/svc3/items/3"
