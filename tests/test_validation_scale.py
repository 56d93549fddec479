"""The fast validator (issue 14) finds what the naive one (`validation_reference`) finds.

`validate` recognises plain paths without parsing them, follows exact rules through one dict and
pattern/regex rules through a matcher of their own; the reference parses every rule and follows
every target through one `Matcher` of the whole table. Same problems, same messages, same order.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import validation_reference
from redirectory.rules.model import Rule, RuleSet
from redirectory.rules.validation import validate
from test_validation_incremental import HOSTS, rule_bodies


def _table(bodies: list[Rule], with_ids: bool, with_lines: bool) -> tuple[Rule, ...]:
    return tuple(
        replace(body, position=i, id=f"id{i}" if with_ids else None, line=2 * i + 1 if with_lines else None)
        for i, body in enumerate(bodies)
    )


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(rule_bodies(), max_size=25), st.sampled_from(HOSTS), st.booleans(), st.booleans())
def test_validate_finds_what_the_reference_finds(
    bodies: list[Rule], hosts: tuple[str, ...], with_ids: bool, with_lines: bool
) -> None:
    ruleset = RuleSet(_table(bodies, with_ids, with_lines), hosts)
    found = validate(ruleset, "rules.yaml")
    expected = validation_reference.validate(ruleset, "rules.yaml")
    assert sorted(map(repr, found)) == sorted(map(repr, expected))
    order = [(p.line or 0, p.index or 0, p.field) for p in found]
    assert order == sorted(order)


def test_the_same_order_on_a_table_of_exact_rules() -> None:
    rules = []
    for i in range(3000):
        rules.append(Rule(to=f"/v2/{i}", source=f"/old/{i}", line=i + 1, position=i))
    rules.append(Rule(to="/old/7", source="/x", status=308, line=9000, position=3000))  # a chain
    rules.append(Rule(to="/x", source="/old/7", status=308, line=9001, position=3001))  # a duplicate
    rules.append(Rule(to="/Old/9", source="/OLD/9", case_insensitive=True, line=9002, position=3002))
    ruleset = RuleSet(tuple(rules))
    assert validate(ruleset) == validation_reference.validate(ruleset)


def test_plain_paths_are_what_the_parser_makes_of_them() -> None:
    from redirectory.rules.patterns import parse_source, parse_target
    from redirectory.rules.validation import plain_path

    for text in ["/", "/a", "/a/", "/a/b.c", "/~x/-_.!$&'()*+,;=:@", "/A/B"]:
        assert plain_path(text)
        pattern = parse_source(text)
        assert pattern.is_exact and pattern.host is None and pattern.exact_path == text
        target = parse_target(text)
        assert target.origin is None and target.parts == (text,)
    for text in ["//h/a", "/a//b", "/./a", "/a/..", "/a%41", "/a b", "/{x}", "/a?b", "a", "/a#b", "/é"]:
        assert not plain_path(text)
