"""Incremental validation (issue 14, item 6): `validate_change` against a `TableIndex` finds exactly
the problems a change adds, as running `validate` on the whole table before and after would.

The reference is the naive one the admin API used before: validate the table before and after,
keep what is new (by code, rule and message), plus the problems with the upserted rules' own fields.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.tableindex import TableIndex, problems_by_rule, validate_change
from redirectory.rules.validation import MAX_REPORTED_OVERLAPS, TABLE_CODES, validate

Key = tuple[str, str, str, int | None]  # code, rule id, message, place in upserts


def _table(rules: dict[str, Rule]) -> tuple[Rule, ...]:
    return tuple(sorted(rules.values(), key=lambda r: r.position))


def _keyed(rules: tuple[Rule, ...], hosts: tuple[str, ...]) -> list[tuple[str, Problem]]:
    by_position = {r.position: r.id for r in rules}
    out = []
    for p in validate(RuleSet(rules, hosts)):
        assert p.index is not None
        rid = by_position[p.index]
        assert rid is not None
        out.append((rid, p))
    return out


def reference(
    before: dict[str, Rule],
    hosts_before: tuple[str, ...],
    upserts: list[Rule],
    removals: list[str],
    hosts_after: tuple[str, ...],
) -> set[Key]:
    """The full-validate difference: what validate(after) has and validate(before) lacked, plus the
    upserted rules' field problems."""
    after = dict(before)
    for rid in removals:
        after.pop(rid, None)
    for rule in upserts:
        assert rule.id is not None
        after[rule.id] = rule
    old = _keyed(_table(before), hosts_before)
    new = _keyed(_table(after), hosts_after)
    for found in (old, new):
        assume(sum(p.code == "ambiguous" for _r, p in found) < MAX_REPORTED_OVERLAPS)
    known = {(p.code, rid, p.message) for rid, p in old}
    place = {r.id: i for i, r in enumerate(upserts)}
    return {
        (p.code, rid, p.message, place.get(rid))
        for rid, p in new
        if (p.code, rid, p.message) not in known or (rid in place and p.code not in TABLE_CODES)
    }


def incremental(
    index: TableIndex, upserts: list[Rule], removals: list[str], hosts_after: tuple[str, ...]
) -> set[Key]:
    found = problems_by_rule(index, upserts, removals, allowed_hosts=hosts_after)
    out = {(p.code, rid, p.message, p.index) for rid, p in found}
    assert len(out) == len(found), "a problem reported twice"
    for rid, p in found:
        if p.index is not None:
            assert upserts[p.index].id == rid
    return out


# -- random tables ---------------------------------------------------------------------------
SOURCES = [
    "/a", "/b", "/c", "/A", "/a/", "/a/b", "/x%41", "/{x}", "/a/{x}", "/{x}/b", "/{x}/B", "/{x}/{y}",
    "/a/{rest:path}", "/{rest:path}", "/b/{rest:path}", "//h1/a", "//h1/b", "//h1/{x}", "//h2/b",
    "//h2/{rest:path}", "/bad/{", "/c/{x}",
]
REGEXES = ["^/a$", "^/(?P<x>[a-c])$", "^/b", "^/c/(?P<rest>.*)$", "(", "^/d", r"\A/(?i)C", "/a[^x]b"]
TARGETS = [
    "/a", "/b", "/c", "/A", "/a/b", "/d", "/{x}", "/a/{x}", "/b/{rest}", "/{y}", "https://h1/a",
    "https://h1/b", "https://h2/b", "https://ext.example/x", "/c/{x}", "/x%41", "/a?q=1", "/{rest}", "bad",
]
T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 6, 1, tzinfo=UTC)
WINDOWS = [(None, None), (None, None), (None, None), (T1, None), (None, T1), (T1, T2)]
METHODS: list[tuple[str, ...] | None] = [None, None, None, ("GET",), ("POST",), ("GET", "POST")]
HOSTS: list[tuple[str, ...]] = [(), (), ("h1",), ("h1", "h2"), ("ext.example", "h1", "h2")]


@st.composite
def rule_bodies(draw: st.DrawFn) -> Rule:
    window = draw(st.sampled_from(WINDOWS))
    regex = draw(st.integers(0, 9)) == 0
    return Rule(
        to=draw(st.sampled_from(TARGETS)),
        source=None if regex else draw(st.sampled_from(SOURCES)),
        source_regex=draw(st.sampled_from(REGEXES)) if regex else None,
        status=draw(st.sampled_from([301, 301, 302, 307, 308])),
        methods=draw(st.sampled_from(METHODS)),
        starts=window[0],
        ends=window[1],
        priority=draw(st.sampled_from([0, 0, 0, 1])),
        case_insensitive=draw(st.integers(0, 5)) == 0,
        enabled=draw(st.integers(0, 7)) != 0,
    )


Edit = tuple[str, int, Rule | None]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Rule], tuple[str, ...], list[tuple[list[Edit], tuple[str, ...]]]]:
    start = draw(st.lists(rule_bodies(), max_size=14))
    hosts = draw(st.sampled_from(HOSTS))
    changes = []
    for _ in range(draw(st.integers(1, 6))):
        edits: list[Edit] = []
        for _ in range(draw(st.integers(1, 3))):
            kind = draw(st.sampled_from(["add", "add", "replace", "replace", "remove"]))
            edits.append((kind, draw(st.integers(0, 1000)), draw(rule_bodies()) if kind != "remove" else None))
        new_hosts = draw(st.sampled_from(HOSTS)) if draw(st.integers(0, 4)) == 0 else hosts
        changes.append((edits, new_hosts))
        hosts = new_hosts
    return start, draw(st.sampled_from(HOSTS)), changes


def _change(table: dict[str, Rule], edits: list[Edit], counter: list[int]) -> tuple[list[Rule], list[str]]:
    upserts: dict[str, Rule] = {}
    removals: list[str] = []
    ids = sorted(table)
    for kind, pick, body in edits:
        if kind == "add" or not ids:
            if body is None:
                continue
            counter[0] += 1
            rid = f"r{counter[0]}"
            upserts[rid] = replace(body, id=rid, position=counter[0])
        elif kind == "replace":
            rid = ids[pick % len(ids)]
            if rid in removals or body is None:
                continue
            upserts[rid] = replace(body, id=rid, position=table[rid].position)
        else:
            rid = ids[pick % len(ids)]
            if rid not in upserts and rid not in removals:
                removals.append(rid)
    return list(upserts.values()), removals


def _same_index(index: TableIndex, table: dict[str, Rule], hosts: tuple[str, ...]) -> None:
    fresh = TableIndex(_table(table), hosts)
    assert index._edges == fresh._edges
    assert index._served == fresh._served
    assert set(index._rules) == set(fresh._rules)
    assert index._exact == fresh._exact or {k: sorted(v) if isinstance(v, list) else v
                                              for k, v in index._exact.items()} == \
        {k: sorted(v) if isinstance(v, list) else v for k, v in fresh._exact.items()}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scenarios())
def test_validate_change_is_the_full_validate_difference(
    scenario: tuple[list[Rule], tuple[str, ...], list[tuple[list[Edit], tuple[str, ...]]]],
) -> None:
    start, hosts, changes = scenario
    counter = [0]
    table: dict[str, Rule] = {}
    for body in start:
        counter[0] += 1
        rid = f"r{counter[0]}"
        table[rid] = replace(body, id=rid, position=counter[0])
    index = TableIndex(_table(table), hosts)
    for edits, new_hosts in changes:
        upserts, removals = _change(table, edits, counter)
        expected = reference(table, hosts, upserts, removals, new_hosts)
        found = incremental(index, upserts, removals, new_hosts)
        for code in sorted({k[0] for k in expected} & TABLE_CODES):
            event(f"a change adds a {code} problem")
        if any(k[3] is None for k in expected):
            event("a change adds a problem to a rule it does not touch")
        assert found == expected, (upserts, removals, hosts, new_hosts, _table(table), found ^ expected)
        # ... and validate_change did not touch the index; now record the change.
        if new_hosts != hosts:
            index.allowed_hosts = new_hosts
        index.apply(upserts, removals)
        for rid in removals:
            del table[rid]
        for rule in upserts:
            assert rule.id is not None
            table[rule.id] = rule
        hosts = new_hosts
        _same_index(index, table, hosts)


# -- loops and chains across a change ----------------------------------------------------------
def _index(*rules: Rule, hosts: tuple[str, ...] = ()) -> TableIndex:
    return TableIndex([replace(r, id=r.id or f"r{i}", position=i) for i, r in enumerate(rules)], hosts)


def test_a_change_that_closes_a_loop_is_an_error_naming_both_rules() -> None:
    index = _index(Rule(to="/b", source="/a", status=308, id="A"))
    problems = validate_change(index, [Rule(to="/a", source="/b", status=308, id="B", position=1)])
    loops = [p for p in problems if p.code == "loop"]
    assert len(loops) == 1
    assert loops[0].is_error
    assert loops[0].message == "redirect loop across rules: /a (rule A) -> /b (rule B) -> /a (rule A)"
    assert loops[0].index is None  # reported on A, the first of the loop in table order: not an upserted rule
    assert not [p for p in problems if p.code == "chain"]


def test_a_loop_through_a_pattern_and_a_replaced_rule() -> None:
    index = _index(
        Rule(to="/new/{x}", source="/old/{x}", status=308, id="P"),
        Rule(to="/elsewhere", source="/new/{y}", status=308, id="N"),
    )
    assert validate_change(index, [], ["N"]) == []
    # N now points back into P's pattern: /old/{x} -> /new/{x} -> /old/{x}
    problems = validate_change(index, [Rule(to="/old/{y}", source="/new/{y}", status=308, id="N", position=1)])
    assert [p.code for p in problems if p.is_error] == ["loop"]
    assert [(p.index, p.message) for p in problems if p.code == "loop"] == [
        (None, "redirect loop across rules: /old/{x} (rule P) -> /new/{y} (rule N) -> /old/{x} (rule P)")
    ]


def test_a_self_loop_is_reported_on_the_upserted_rule() -> None:
    index = _index(Rule(to="/x", source="/y", status=308, id="Y"))
    problems = validate_change(index, [Rule(to="/z/{p}", source="/z/{p}", status=308, id="Z", position=1)])
    assert [(p.code, p.index, p.message) for p in problems] == [
        ("loop", 0, "redirect loop: the target matches this rule again")
    ]


def test_removing_the_end_of_a_chain_reports_nothing_and_a_new_end_warns_every_rule_upstream() -> None:
    index = _index(
        Rule(to="/b", source="/a", status=308, id="A"),
        Rule(to="/c", source="/b", status=308, id="B"),
    )
    assert validate_change(index, [], ["B"]) == []
    problems = validate_change(index, [Rule(to="/d", source="/c", status=308, id="C", position=2)])
    chains = sorted((p.index, p.message) for p in problems if p.code == "chain")
    assert chains == [
        (None, "redirect chain of 2 hops: the target is redirected again by /c (rule C); point this rule at /d directly"),
        (None, "redirect chain of 3 hops: the target is redirected again by /b (rule B); point this rule at /d directly"),
    ]


def test_a_new_host_rule_makes_absolute_targets_on_that_host_followed() -> None:
    index = _index(Rule(to="https://shop.example/x", source="/a", status=308, id="A"))
    problems = validate_change(index, [Rule(to="https://shop.example/a", source="//shop.example/x", status=308,
                                            id="S", position=1)])
    assert {p.code for p in problems} == {"loop"}


def test_duplicate_of_an_existing_rule_and_its_index() -> None:
    index = _index(Rule(to="/b", source="/a", status=308, id="A"))
    problems = validate_change(index, [Rule(to="/c", source="/a", status=308, id="N", position=1)])
    assert [(p.code, p.index) for p in problems] == [("duplicate", 0)]
    assert "/a (rule A)" in problems[0].message


def test_warnings_of_an_upserted_rule_are_reported_even_when_unchanged() -> None:
    rule = Rule(to="/b", source="/a", id="A")
    index = _index(rule)
    problems = validate_change(index, [replace(rule, position=0)])
    assert [p.code for p in problems] == ["status.301-unsafe-method"]


def test_allowed_hosts_change_reports_the_rules_it_refuses() -> None:
    index = _index(Rule(to="https://a.example/", source="/a", status=308, id="A"),
                   Rule(to="https://b.example/", source="/b", status=308, id="B"))
    problems = validate_change(index, [], [], allowed_hosts=("a.example",))
    assert [(p.code, p.index) for p in problems] == [("to.host-not-allowed", None)]


def test_the_index_needs_ids() -> None:
    with pytest.raises(ValueError, match="needs an id"):
        TableIndex([Rule(to="/b", source="/a")])
