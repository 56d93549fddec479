"""Rule files: every error path with its exact line, for YAML, JSON and CSV; never a crash."""

from __future__ import annotations

import json
import os
import textwrap
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redirectory.rules.model import RULE_FIELDS, Problem, Rule, RuleSet
from redirectory.rules.parsing import Format, _loads, detect_format, loads, rule_from_mapping
from redirectory.semantics import alternatives_to_302


def parse(text: str, fmt: Format = "yaml") -> tuple[RuleSet, list[Problem]]:
    return loads(textwrap.dedent(text).lstrip("\n"), fmt, "rules." + fmt)


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [p.format() for p in problems]
    return problems[0]


def where(problems: list[Problem]) -> list[tuple[int | None, str, str]]:
    return [(p.line, p.field, p.code) for p in problems]


# -- detect_format ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.yaml", "yaml"), ("a.YML", "yaml"), ("x/b.json", "json"), ("c.csv", "csv"), ("d.txt", None), ("yaml", None)],
)
def test_detect_format(name: str, fmt: str | None) -> None:
    assert detect_format(name) == fmt


# -- YAML: the good case ---------------------------------------------------------------------------
FULL_YAML = """
allowed_hosts: [Bar.Example.Internal]
rules:
  - from: /api/v1/users/{rest:path}
    to: /api/v2/users/{rest}
    status: 301
    methods: [get, HEAD, get]
    query: keep
    starts: 2026-12-01T00:00:00Z
    ends: "2026-12-08T01:00:00+01:00"
    cache: 86400
    priority: 3
    case_insensitive: false
    enabled: yes
    tags: [users]
    note: users moved to v2
  - from_regex: '^/legacy/(?P<id>[0-9]+)$'
    to: /items/{id}
    status: 308
"""


def test_yaml_full_example() -> None:
    ruleset, problems = parse(FULL_YAML)
    assert problems == []
    assert ruleset.allowed_hosts == ("bar.example.internal",)
    first, second = ruleset.rules
    assert first == Rule(
        to="/api/v2/users/{rest}",
        source="/api/v1/users/{rest:path}",
        status=301,
        methods=("GET", "HEAD"),
        query="keep",
        starts=datetime(2026, 12, 1, tzinfo=UTC),
        ends=datetime(2026, 12, 8, tzinfo=UTC),
        cache=86400,
        priority=3,
        enabled=True,
        tags=("users",),
        note="users moved to v2",
    )
    assert (first.line, first.position) == (3, 0)
    assert first.field_lines is not None
    assert first.field_lines["from"] == 3 and first.field_lines["note"] == 15
    assert first.line_of("cache") == 10
    assert second.source_regex == "^/legacy/(?P<id>[0-9]+)$" and second.status == 308
    assert (second.line, second.position) == (16, 1)
    assert second.methods is None and second.query == "keep" and second.enabled


def test_yaml_text_fields_keep_what_was_written() -> None:
    ruleset, problems = parse("""
        rules:
          - from: /a
            to: /b
            note: yes
            tags: [on, 2026-01-01, 12]
            methods: [get]
    """)
    assert problems == []
    (rule,) = ruleset.rules
    assert rule.note == "yes"
    assert rule.tags == ("on", "2026-01-01", "12")


def test_yaml_timestamps_string_date_and_naive() -> None:
    ruleset, problems = parse("""
        rules:
          - from: /a
            to: /b
            starts: 2026-12-01
            ends: 2026-12-02 10:00:00
          - from: /c
            to: /d
            starts: "2026-12-01T10:00:00"
    """)
    assert problems == []
    a, c = ruleset.rules
    assert a.starts == datetime(2026, 12, 1, tzinfo=UTC)
    assert a.ends == datetime(2026, 12, 2, 10, tzinfo=UTC)
    assert c.starts == datetime(2026, 12, 1, 10, tzinfo=UTC)


def test_yaml_single_method_string_and_propfind() -> None:
    ruleset, problems = parse("""
        rules:
          - {from: /a, to: /b, methods: propfind}
          - {from: /c, to: /d, methods: [PROPFIND, get, GET]}
    """)
    assert problems == []
    assert [r.methods for r in ruleset.rules] == [("PROPFIND",), ("GET", "PROPFIND")]


def test_yaml_explicit_empty_rules_is_fine() -> None:
    assert parse("rules: []\n") == (RuleSet(), [])
    ruleset, problems = parse("allowed_hosts: [a.example]\nrules: []\n")
    assert problems == [] and ruleset.allowed_hosts == ("a.example",)


def test_yaml_merge_keys() -> None:
    ruleset, problems = parse("""
        defaults: &d
          status: 308
          methods: [POST]
        rules:
          - <<: *d
            from: /a
            to: /b
          - <<: *d
            from: /c
            to: /d
            status: 307
    """)
    # `defaults` is not a known top-level key, but the merges still work
    assert where(problems) == [(1, "defaults", "unknown-field")]
    assert [(r.status, r.methods) for r in ruleset.rules] == [(308, ("POST",)), (307, ("POST",))]


# -- YAML: file-level errors -----------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_yaml_empty_file(text: str) -> None:
    ruleset, problems = loads(text, "yaml", "r.yaml")
    p = only(problems)
    assert (p.line, p.field, p.code, p.source) == (1, "rules", "required", "r.yaml")
    assert "rules: []" in p.message
    assert ruleset == RuleSet()


def test_yaml_no_rules_key() -> None:
    _, problems = parse("""
        allowed_hosts: [a.example]
    """)
    assert where(problems) == [(1, "rules", "required")]


def test_yaml_rules_null() -> None:
    _, problems = parse("""
        allowed_hosts: [a.example]
        rules:
    """)
    assert where(problems) == [(2, "rules", "required")]


def test_yaml_rules_not_a_list() -> None:
    _, problems = parse("""
        # comment
        rules:
          from: /a
          to: /b
    """)
    p = only(problems)
    assert (p.line, p.field, p.code) == (2, "rules", "type")
    assert "list of rules" in p.message


def test_yaml_top_level_list() -> None:
    _, problems = parse("""
        - from: /a
          to: /b
    """)
    p = only(problems)
    assert (p.line, p.field, p.code) == (1, "rules", "type")
    assert "got a list" in p.message


def test_yaml_unknown_top_level_key() -> None:
    _, problems = parse("""
        rules: []
        allowed_host: [a.example]
    """)
    p = only(problems)
    assert (p.line, p.field, p.code) == (2, "allowed_host", "unknown-field")
    assert "did you mean 'allowed_hosts'?" in p.message and "rules" in p.message


def test_yaml_syntax_error_line() -> None:
    _, problems = parse("""
        rules:
          - from: /a
            to: /b
           status: 301
    """)
    p = only(problems)
    assert (p.line, p.field, p.code) == (4, "file", "syntax")
    assert p.message.startswith("not valid YAML: ")


def test_yaml_unclosed_quote() -> None:
    _, problems = parse("""
        rules:
          - from: "/a
            to: /b
    """)
    p = only(problems)
    assert p.code == "syntax" and p.line is not None and p.line >= 2


def test_yaml_control_character() -> None:
    _, problems = loads("rules:\n  - from: /a\n    to: /b\x00\n", "yaml", "r.yaml")
    assert where(problems) == [(3, "file", "syntax")]


def test_yaml_two_documents() -> None:
    _, problems = loads("rules: []\n---\nrules: []\n", "yaml")
    assert where(problems) == [(2, "file", "syntax")]


def test_yaml_duplicate_top_level_key() -> None:
    _, problems = parse("""
        rules: []
        rules: []
    """)
    p = only(problems)
    assert (p.line, p.field, p.code, p.index) == (2, "rules", "duplicate-key", None)


def test_yaml_duplicate_key_in_rule() -> None:
    ruleset, problems = parse("""
        rules:
          - from: /a
            to: /b
            status: 301
            status: 308
          - from: /c
            to: /d
    """)
    p = only(problems)
    assert (p.line, p.field, p.code, p.index) == (5, "status", "duplicate-key", 0)
    assert "first on line 4" in p.message
    assert [r.source for r in ruleset.rules] == ["/c"]
    assert ruleset.rules[0].position == 1


def test_yaml_rule_not_a_mapping() -> None:
    _, problems = parse("""
        rules:
          - from: /a
            to: /b
          - just text
    """)
    p = only(problems)
    assert (p.line, p.field, p.code, p.index) == (4, "rules", "type", 1)


# -- YAML: field errors, each with its line --------------------------------------------------------
def field_error(body: str, fmt: Format = "yaml") -> Problem:
    """Parse one YAML rule (first line `rules:`, the rule from line 2) and return its one problem."""
    text = "rules:\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "  ") + "\n"
    ruleset, problems = loads(text, fmt, "r.yaml")
    assert ruleset.rules == ()
    return only(problems)


def test_unknown_field_suggests_closest() -> None:
    p = field_error("""
        - from: /a
          to: /b
          stauts: 301
    """)
    assert (p.line, p.field, p.code, p.index) == (4, "stauts", "unknown-field", 0)
    assert "did you mean 'status'?" in p.message
    for name in RULE_FIELDS:
        assert name in p.message
    assert p.format() == f"r.yaml:4: stauts: {p.message}"


def test_unknown_field_alias() -> None:
    p = field_error("""
        - from: /a
          target: /b
          to: /c
    """)
    assert (p.line, p.field) == (3, "target") and "did you mean 'to'?" in p.message


def test_from_and_from_regex_both() -> None:
    p = field_error("""
        - from: /a
          from_regex: ^/a$
          to: /b
    """)
    assert (p.line, p.field, p.code) == (3, "from_regex", "conflict")


def test_neither_from_nor_from_regex() -> None:
    p = field_error("""
        - to: /b
          status: 301
    """)
    assert (p.line, p.field, p.code) == (2, "from", "required")
    assert "from_regex" in p.message


def test_to_missing() -> None:
    p = field_error("""
        - status: 301
          from: /a
    """)
    assert (p.line, p.field, p.code) == (2, "to", "required")
    assert "absolute" in p.message


def test_to_empty_value() -> None:
    p = field_error("""
        - from: /a
          to:
    """)
    assert (p.line, p.field, p.code) == (3, "to", "required")


def test_to_not_a_string() -> None:
    p = field_error("""
        - from: /a
          to: [/b]
    """)
    assert (p.line, p.field, p.code) == (3, "to", "type")


def test_note_not_a_string() -> None:
    p = field_error("""
        - from: /a
          to: /b
          note: {a: 1}
    """)
    assert (p.line, p.field, p.code) == (4, "note", "type")


def test_from_pattern_error() -> None:
    p = field_error("""
        - from: api/v1
          to: /b
    """)
    assert (p.line, p.field, p.code) == (2, "from", "pattern")
    assert "must start with '/'" in p.message


def test_from_placeholder_error() -> None:
    p = field_error("""
        - to: /b
          from: /a/x{id}
    """)
    assert (p.line, p.field, p.code) == (3, "from", "pattern")
    assert "whole segment" in p.message


@pytest.mark.parametrize("regex", [r"'(a)\1'", "'(?=a)b'", "'(?<=a)b'", "'[a'"])
def test_from_regex_not_re2(regex: str) -> None:
    p = field_error(f"""
        - to: /b
          from_regex: {regex}
    """)
    assert (p.line, p.field, p.code) == (3, "from_regex", "regex")
    assert p.message.startswith("not valid RE2 syntax: ")
    assert "no backreferences" in p.message and "lookaround" in p.message


def test_status_302() -> None:
    p = field_error("""
        - from: /a
          to: /b
          status: 302
    """)
    assert (p.line, p.field, p.code) == (4, "status", "status.302")
    assert p.message == alternatives_to_302()


@pytest.mark.parametrize("code", [200, 300, 304, 305, 410])
def test_status_not_allowed(code: int) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          status: {code}
    """)
    assert (p.line, p.field, p.code) == (4, "status", "status.invalid")
    assert "301, 303, 307 or 308 to redirect, 404 for paths that are not redirected" in p.message


def test_a_404_rule_redirects_nothing_and_takes_no_target() -> None:
    p = field_error("""
        - from: /a
          to: /b
          status: 404
    """)
    assert (p.line, p.field, p.code) == (3, "to", "to.not-redirected") and "leave `to` out" in p.message


@pytest.mark.parametrize("value", ["true", "'301'", "301.0", "moved"])
def test_status_wrong_type(value: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          status: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "status", "type")
    assert "301, 303, 307 or 308" in p.message


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("[]", "methods.empty"),
        ("[GET, 'GE T']", "methods.invalid"),
        ("[GET, [POST]]", "type"),
        ("{GET: 1}", "type"),
        ("['G(ET']", "methods.invalid"),
    ],
)
def test_methods_errors(value: str, code: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          methods: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "methods", code)


def test_query_invalid() -> None:
    p = field_error("""
        - from: /a
          to: /b
          query: merge
    """)
    assert (p.line, p.field, p.code) == (4, "query", "query.invalid")
    assert "keep" in p.message and "drop" in p.message


@pytest.mark.parametrize("value", ["tomorrow", "'2026-13-01'", "2026-12-01T25:00:00Z"])
def test_starts_invalid(value: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          starts: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "starts", "time.invalid")
    assert "ISO 8601" in p.message


def test_ends_wrong_type() -> None:
    p = field_error("""
        - from: /a
          to: /b
          ends: 5
    """)
    assert (p.line, p.field, p.code) == (4, "ends", "type")


@pytest.mark.parametrize("ends", ["2026-12-01T00:00:00Z", "2026-11-30T23:00:00Z", "2026-12-01T01:00:00+01:00"])
def test_window_backwards(ends: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          starts: 2026-12-01T00:00:00Z
          ends: {ends}
    """)
    assert (p.line, p.field, p.code) == (5, "ends", "window")
    assert "after `starts`" in p.message


@pytest.mark.parametrize(
    ("value", "code"),
    [("-1", "cache.range"), ("true", "type"), ("1.5", "type"), ("'60'", "type"), ("9999999999", "cache.range")],
)
def test_cache_errors(value: str, code: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          cache: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "cache", code)


@pytest.mark.parametrize(("value", "code"), [("high", "type"), ("false", "type"), ("3000000000", "priority.range")])
def test_priority_errors(value: str, code: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          priority: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "priority", code)


@pytest.mark.parametrize("name", ["case_insensitive", "enabled"])
@pytest.mark.parametrize("value", ["'yes'", "1", "maybe"])
def test_booleans_must_be_booleans(name: str, value: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          {name}: {value}
    """)
    assert (p.line, p.field, p.code) == (4, name, "type")
    assert "true or false" in p.message


@pytest.mark.parametrize("value", ["['']", "[a, '  ']", "{a: b}", "[[a]]"])
def test_tags_errors(value: str) -> None:
    p = field_error(f"""
        - from: /a
          to: /b
          tags: {value}
    """)
    assert (p.line, p.field, p.code) == (4, "tags", "type")


def test_several_errors_in_one_rule_each_on_its_line() -> None:
    _, problems = parse("""
        rules:
          - from: /a
            to: /b
          - from: /c
            status: 302
            cache: -5
            query: both
          - from: /e
            to: /f
    """)
    assert sorted(where(problems)) == [
        (4, "to", "required"),
        (5, "status", "status.302"),
        (6, "cache", "cache.range"),
        (7, "query", "query.invalid"),
    ]
    assert {p.index for p in problems} == {1}


@pytest.mark.parametrize("hosts", ["[https://a.example]", "[a.example:8080]", "['*.a.example']", "[{a: b}]", "{a: b}"])
def test_allowed_hosts_invalid(hosts: str) -> None:
    _, problems = parse(f"""
        rules: []
        allowed_hosts: {hosts}
    """)
    p = only(problems)
    assert (p.line, p.field) == (2, "allowed_hosts")
    assert p.code in ("allowed_hosts.invalid", "type")


# -- JSON ------------------------------------------------------------------------------------------
def test_json_pretty_lines() -> None:
    text = json.dumps(
        {
            "allowed_hosts": ["a.example"],
            "rules": [
                {"from": "/a", "to": "/b"},
                {"from": "/c", "to": "/d", "status": 302},
                {"from": "/e", "to": 5, "methods": ["GET"], "stauts": 1},
                "not a rule",
                {"from_regex": "(?=x)", "to": "/z"},
            ],
        },
        indent=2,
    )
    ruleset, problems = loads(text, "json", "r.json")
    lines = text.splitlines()

    def line_of(fragment: str) -> int:
        return next(i for i, text_line in enumerate(lines, 1) if fragment in text_line)

    assert sorted(where(problems)) == sorted(
        [
            (line_of('"status": 302'), "status", "status.302"),
            (line_of('"to": 5'), "to", "type"),
            (line_of('"stauts"'), "stauts", "unknown-field"),
            (line_of('"not a rule"'), "rules", "type"),
            (line_of('"(?=x)"'), "from_regex", "regex"),
        ]
    )
    assert [p.index for p in sorted(problems, key=lambda p: p.line or 0)] == [1, 2, 2, 3, 4]
    (rule,) = ruleset.rules
    first = line_of('"from": "/a"')
    assert rule.line == first - 1 and rule.field_lines == {"from": first, "to": first + 1}
    assert ruleset.allowed_hosts == ("a.example",)


def test_json_one_line() -> None:
    text = '{"rules": [{"from": "/a", "to": "/b"}, {"from": "/c", "to": "/d", "status": 302}]}'
    ruleset, problems = loads(text, "json", "r.json")
    p = only(problems)
    assert (p.line, p.field, p.index) == (1, "status", 1)
    assert ruleset.rules[0].line == 1


def test_json_hand_written_layout() -> None:
    text = textwrap.dedent("""\
        {"rules": [
          {"from": "/a",
           "to": "/b", "status": 305},
          {"from": "/c \\"quoted\\" x", "to": "/d",
           "cache": true}, 42,
          {"fr\\u006fm": "/e", "to": "/f", "note": ["x"]}
        ]}
    """)
    _, problems = loads(text, "json", "r.json")
    assert sorted(where(problems)) == [
        (3, "status", "status.invalid"),
        (4, "from", "pattern"),
        (5, "cache", "type"),
        (5, "rules", "type"),
        (6, "note", "type"),
    ]


def test_json_syntax_error_line() -> None:
    text = '{\n  "rules": [\n    {"from": "/a", "to": "/b"},\n  ]\n}\n'
    _, problems = loads(text, "json", "r.json")
    p = only(problems)
    assert (p.line, p.field, p.code) == (4, "file", "syntax")
    assert p.message.startswith("not valid JSON: ")


def test_json_duplicate_keys() -> None:
    text = '{\n"rules": [\n  {"from": "/a",\n   "to": "/b",\n   "to": "/c"}\n],\n"rules": []\n}'
    ruleset, problems = loads(text, "json", "r.json")
    assert sorted(where(problems)) == [(7, "rules", "duplicate-key")]
    text = '{\n"rules": [\n  {"from": "/a",\n   "to": "/b",\n   "to": "/c"}\n]\n}'
    ruleset, problems = loads(text, "json", "r.json")
    assert where(problems) == [(5, "to", "duplicate-key")]
    assert ruleset.rules == ()


@pytest.mark.parametrize(
    ("text", "code"),
    [("[]", "type"), ("{}", "required"), ('{"rules": {}}', "type"), ('{"rules": null}', "required"), ("", "syntax")],
)
def test_json_document_errors(text: str, code: str) -> None:
    _, problems = loads(text, "json", "r.json")
    assert where(problems) == [(1, "file" if code == "syntax" else "rules", code)]


def test_json_types_are_strict() -> None:
    text = '{"rules": [{"from": "/a", "to": "/b", "status": "301", "note": true, "starts": 5}]}'
    _, problems = loads(text, "json")
    assert sorted(p.field for p in problems) == ["note", "starts", "status"]
    assert {p.code for p in problems} == {"type"}


def test_json_unknown_top_level_key() -> None:
    _, problems = loads('{\n "rules": [],\n "rulez": []\n}', "json")
    assert where(problems) == [(3, "rulez", "unknown-field")]


# -- CSV -------------------------------------------------------------------------------------------
CSV_GOOD = "".join(
    line + "\n"
    for line in (
        "# allowed_hosts: A.example, b.example",
        "# another comment",
        "from,from_regex,to,status,methods,query,starts,ends,cache,priority,case_insensitive,enabled,tags,note",
        "/api/v1/users/{rest:path},,/api/v2/users/{rest},301,GET|head,keep,2026-12-01T00:00:00Z,,"
        '86400,2,no,yes,users v2,"moved, see ""v2"""',
        ",^/legacy/(?P<id>[0-9]+)$,/items/{id},308,,drop,,,,,TRUE,1,,",
    )
)


def test_csv_good() -> None:
    ruleset, problems = loads(CSV_GOOD, "csv", "r.csv")
    assert problems == []
    assert ruleset.allowed_hosts == ("a.example", "b.example")
    a, b = ruleset.rules
    assert a == Rule(
        to="/api/v2/users/{rest}",
        source="/api/v1/users/{rest:path}",
        methods=("GET", "HEAD"),
        starts=datetime(2026, 12, 1, tzinfo=UTC),
        cache=86400,
        priority=2,
        tags=("users", "v2"),
        note='moved, see "v2"',
    )
    assert (a.line, a.position, b.line, b.position) == (4, 0, 5, 1)
    assert b.source_regex == "^/legacy/(?P<id>[0-9]+)$" and b.case_insensitive and b.query == "drop"


def test_csv_minimal_columns_any_order() -> None:
    ruleset, problems = loads("to,from\n/b,/a\n\n/d,/c\n", "csv")
    assert problems == []
    assert [(r.source, r.to, r.line) for r in ruleset.rules] == [("/a", "/b", 2), ("/c", "/d", 4)]


def test_csv_header_only_is_an_empty_table() -> None:
    assert loads("from,to\n", "csv") == (RuleSet(), [])


def test_csv_empty_file() -> None:
    _, problems = loads("", "csv", "r.csv")
    p = only(problems)
    assert (p.line, p.field, p.code) == (1, "rules", "required")
    _, problems = loads("# allowed_hosts: a.example\n", "csv", "r.csv")
    assert where(problems) == [(2, "rules", "required")]


def test_csv_unknown_column() -> None:
    ruleset, problems = loads("# c\nfrom,to,stauts\n/a,/b,301\n", "csv", "r.csv")
    p = only(problems)
    assert (p.line, p.field, p.code) == (2, "stauts", "unknown-field")
    assert "did you mean 'status'?" in p.message
    assert ", ".join(RULE_FIELDS) in p.message


def test_csv_missing_required_columns() -> None:
    _, problems = loads("from,status\n/a,301\n", "csv")
    p = only(problems)
    assert (p.line, p.field, p.code) == (1, "to", "required")
    _, problems = loads("to,status\n/a,301\n", "csv")
    p = only(problems)
    assert (p.line, p.field, p.code) == (1, "from", "required")
    assert "`from` or `from_regex`" in p.message


def test_csv_duplicate_column() -> None:
    _, problems = loads("from,to,to\n/a,/b,/c\n", "csv")
    assert where(problems) == [(1, "to", "duplicate-key")]


def test_csv_lines_count_multiline_cells() -> None:
    text = 'from,to,status,note\n/a,/b,301,"two\nlines"\n/c,/d,302,\n/e,/f,maybe,\n'
    _, problems = loads(text, "csv", "r.csv")
    assert sorted(where(problems)) == [(4, "status", "status.302"), (5, "status", "type")]
    assert [p.index for p in sorted(problems, key=lambda p: p.line or 0)] == [1, 2]


@pytest.mark.parametrize(
    ("column", "cell", "code"),
    [
        ("enabled", "maybe", "type"),
        ("case_insensitive", "2", "type"),
        ("cache", "3x", "type"),
        ("cache", "-1", "cache.range"),
        ("priority", "1.5", "type"),
        ("methods", "GET|G(T", "methods.invalid"),
        ("query", "merge", "query.invalid"),
        ("starts", "soon", "time.invalid"),
        ("from_regex", "(?=a)", "regex"),
    ],
)
def test_csv_cell_errors(column: str, cell: str, code: str) -> None:
    first = "from" if column != "from_regex" else "from_regex"
    header = f"{first},to" + ("" if column == first else f",{column}")
    row = (cell if column == first else "/a") + ",/b" + ("" if column == first else f",{cell}")
    _, problems = loads(f"# x\n{header}\n/z,/y\n{row}\n", "csv", "r.csv")
    p = only(problems)
    assert (p.line, p.field, p.code, p.index) == (4, column, code, 1)


def test_csv_row_too_long() -> None:
    _, problems = loads("from,to\n/a,/b,extra\n/c,/d,,\n", "csv")
    assert where(problems) == [(2, "rules", "columns")]


def test_csv_bad_allowed_hosts_comment() -> None:
    _, problems = loads("# allowed_hosts: a.example, http://b\nfrom,to\n", "csv", "r.csv")
    assert where(problems) == [(1, "allowed_hosts", "allowed_hosts.invalid")]


@pytest.mark.parametrize("text", ['from,to\n/a,/b\n/c,"/d\n', 'from,to\n/a,/b\n/c,"/d"x\n/e,/f\n'])
def test_csv_syntax_error(text: str) -> None:
    _, problems = loads(text, "csv", "r.csv")
    p = only(problems)
    assert (p.line, p.field, p.code) == (3, "file", "syntax")
    assert p.message.startswith("not valid CSV: ")


def test_csv_header_syntax_error() -> None:
    _, problems = loads('# allowed_hosts: a.example\n"from,to\n', "csv", "r.csv")
    assert where(problems) == [(2, "file", "syntax")]


# -- rule_from_mapping (the admin API reuses it for JSON bodies) -----------------------------------
def test_rule_from_mapping_direct() -> None:
    rule, problems = rule_from_mapping({"from": "/a", "to": "/b", "status": 307, "note": ""}, position=5)
    assert problems == [] and rule is not None
    assert (rule.status, rule.position, rule.note, rule.line) == (307, 5, None, None)
    rule, problems = rule_from_mapping(
        {"from": "/a", "to": "/b", "cache": None, "status": True},
        line=10,
        field_lines={"status": 12},
        index=3,
        source="api",
    )
    assert rule is None
    assert [(p.line, p.field, p.index, p.source) for p in problems] == [(12, "status", 3, "api")]
    rule, problems = rule_from_mapping(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert rule is None and where(problems) == [(None, "rules", "type")]
    rule, problems = rule_from_mapping({"from": "/a", "to": "/b", 5: 1})  # type: ignore[dict-item]
    assert rule is None and where(problems) == [(None, "5", "unknown-field")]


def test_rule_from_mapping_timestamps() -> None:
    rule, problems = rule_from_mapping(
        {"from": "/a", "to": "/b", "starts": datetime(2026, 1, 1), "ends": "2026-01-02T00:00:00+02:00"}
    )
    assert problems == [] and rule is not None
    assert rule.starts == datetime(2026, 1, 1, tzinfo=UTC)
    assert rule.ends == datetime(2026, 1, 1, 22, tzinfo=UTC)
    assert rule.ends.tzinfo is UTC


# -- never raises ----------------------------------------------------------------------------------
FORMATS: tuple[Format, ...] = ("yaml", "json", "csv")
#: REDIRECTORY_FUZZ_EXAMPLES raises the number of examples for a longer local run.
SETTINGS = settings(
    max_examples=int(os.environ.get("REDIRECTORY_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check_result(result: tuple[RuleSet, list[Problem]]) -> None:
    ruleset, problems = result
    assert isinstance(ruleset, RuleSet)
    assert all(isinstance(p, Problem) and p.code != "internal" for p in problems)
    for rule in ruleset.rules:
        assert isinstance(rule, Rule)


@SETTINGS
@given(text=st.text(), fmt=st.sampled_from(FORMATS))
def test_never_raises_on_text(text: str, fmt: Format) -> None:
    check_result(_loads(text, fmt, "fuzz"))  # _loads: without the last-resort guard in loads()


@SETTINGS
@given(data=st.binary(), fmt=st.sampled_from(FORMATS), errors=st.sampled_from(["replace", "surrogateescape"]))
def test_never_raises_on_decoded_bytes(data: bytes, fmt: Format, errors: str) -> None:
    check_result(_loads(data.decode("utf-8", errors), fmt, "fuzz"))


SYNTAX_PIECES = [
    "rules:",
    "\n",
    "  - ",
    "from: ",
    "to: ",
    "/a/{x}",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "'",
    "&a ",
    "*a",
    "<<: ",
    "status: ",
    "302",
    "yes",
    "~",
    "#",
    "\t",
    "- ",
    "!!int ",
    "!foo ",
    "---\n",
    "from,to\n",
    '{"rules": [',
    "]}",
    "2026-12-01",
    "methods: ",
    "null",
    "\\",
]


@SETTINGS
@given(pieces=st.lists(st.sampled_from(SYNTAX_PIECES), max_size=40), fmt=st.sampled_from(FORMATS))
def test_never_raises_on_near_miss_syntax(pieces: list[str], fmt: Format) -> None:
    check_result(_loads("".join(pieces), fmt, "fuzz"))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(
        [
            "/a",
            "/b/{x}",
            "/c/{r:path}",
            "https://h.example/{x}",
            "GET",
            "keep",
            "drop",
            "2026-12-01T00:00:00Z",
            "^/x/(?P<x>[0-9]+)$",
        ]
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from([*RULE_FIELDS, "stauts", ""])
rule_dicts = st.dictionaries(field_names, json_values, max_size=8)


@SETTINGS
@given(
    rules=st.lists(rule_dicts | json_values, max_size=5),
    hosts=json_values,
    fmt=st.sampled_from(["yaml", "json"]),
)
def test_never_raises_on_structured_documents(rules: list[Any], hosts: Any, fmt: str) -> None:
    doc = {"rules": rules, "allowed_hosts": hosts}
    text = json.dumps(doc) if fmt == "json" else yaml.safe_dump(doc)
    ruleset, problems = _loads(text, "json" if fmt == "json" else "yaml", "fuzz")
    check_result((ruleset, problems))
    for p in problems:
        assert p.line is not None and p.line >= 1, p


@SETTINGS
@given(rule=rule_dicts)
def test_rule_from_mapping_never_raises(rule: dict[str, Any]) -> None:
    result, problems = rule_from_mapping(rule)
    assert (result is None) == bool(problems)
