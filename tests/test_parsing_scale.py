"""Reading large rule files: the fast paths (YAML line reader, plain-rule checks, plain exact
patterns, `new_rule`) must give exactly what the full paths give.

- YAML: `_loads_yaml(text, fast=True)` against `fast=False` (PyYAML's composer) on generated
  rule files: every field, quoting styles, flow and block lists, comments, blank lines, null
  spellings, YAML 1.1 booleans, numbers and timestamps, plus constructs the fast path must leave
  to the full one (anchors, aliases, tags, nested blocks, duplicate keys, tabs, CR, odd indents);
- rule_from_mapping's fast path against the full checks on random field values;
- `simple_exact_pattern` against the full `from` parser; `new_rule` against `Rule(...)`;
- JSON: rules located whole (`_JSON_FLAT_RULE`) against the token-by-token scan;
- `rulefile.in_line_order` against one stable sort of all the problems.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redirectory.rulefile import in_line_order
from redirectory.rules import parsing
from redirectory.rules.model import FIELDS, RULE_FIELDS, Problem, Rule, new_rule
from redirectory.rules.parsing import rule_from_mapping
from redirectory.rules.patterns import PatternError, _parse_source_full, simple_exact_pattern


def outcome(text: str, fast: bool) -> tuple[Any, ...]:
    ruleset, problems = parsing._loads_yaml(text, "f.yaml", fast=fast)
    rules = [(r, r.line, dict(r.field_lines or {}), r.position) for r in ruleset.rules]
    return rules, ruleset.allowed_hosts, problems


# -- generated YAML -------------------------------------------------------------------------------
PLAIN_WORDS = ["/a", "/a/b", "/x/{id}", "/p/{rest:path}", "https://h.example/x", "GET", "HEAD", "post",
               "keep", "drop", "yes", "no", "on", "off", "true", "False", "null", "~", "Null", "301",
               "308", "0", "-1", "+5", "0x1F", "017", "1_000", "1:30", "3.5", ".inf", "2026-01-01",
               "2026-12-01T00:00:00Z", "2026-12-01 10:00:00", "users moved", "a#b", "a: b", "a #b",
               "-x", "- x", ":x", "?x", "&a x", "*a", "!foo x", "[a]", "{a: 1}", "|", ">", "'", "@x",
               "%x", "a,b", "é/ü", "users  moved", "=", "<<", "2026-13-01", "1e3", "0o7", "0b101"]
TEXTS = ["/a", "/b/c", "", "it's", 'say "hi"', "tab\there", "line\nbreak", "back\\slash", "/ü",
         "\x07bell", "a  b ", "#x", "/{id}", "/legacy/([0-9]+)$", "^/r/(?P<id>[0-9]+)$"]
KEYS = [*RULE_FIELDS, "source", "stauts", "yes", "<<"]


@st.composite
def scalar(draw: st.DrawFn) -> str:
    style = draw(st.sampled_from(["plain", "plain", "single", "double", "double-escaped", "empty"]))
    if style == "plain":
        return draw(st.sampled_from(PLAIN_WORDS))
    if style == "empty":
        return ""
    text = draw(st.sampled_from(TEXTS + PLAIN_WORDS))
    if style == "single":
        return "'" + text.replace("'", "''").replace("\n", " ") + "'"
    if style == "double":
        return '"' + text.replace("\\", "").replace('"', "").replace("\n", " ") + '"'
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
               .replace("\x07", draw(st.sampled_from(["\\a", "\\x07", "\\u0007"]))))
    return '"' + escaped + draw(st.sampled_from(["", "\\/", "\\ ", "\\e", "\\N", "\\q"])) + '"'


@st.composite
def value(draw: st.DrawFn, indent: int) -> str:
    kind = draw(st.sampled_from(["scalar"] * 6 + ["flow", "block", "anchor", "alias", "tag"]))
    if kind == "scalar":
        return " " + draw(scalar()) if True else ""
    if kind == "flow":
        items = draw(st.lists(st.sampled_from(["GET", "HEAD", "users", "v2", "~", "yes", "a b", "'q'",
                                               "x-y", "", "-z"]), max_size=3))
        return " [" + draw(st.sampled_from([", ", ",", " , "])).join(items) + "]"
    if kind == "block":
        items = draw(st.lists(st.sampled_from(["GET", "HEAD", "'x'"]), min_size=1, max_size=2))
        pad = " " * (indent + draw(st.sampled_from([0, 2])))
        return "".join(f"\n{pad}- {item}" for item in items)
    if kind == "anchor":
        return " &a " + draw(scalar())
    if kind == "alias":
        return " *a"
    return " !!str " + draw(scalar())


@st.composite
def yaml_file(draw: st.DrawFn, odd: bool) -> str:
    """A rule file; `odd`: with constructs the fast path must refuse or get right."""
    out: list[str] = []
    if draw(st.booleans()):
        out.append("# a comment")
    item_indent = draw(st.sampled_from([0, 2]))
    hosts_first = draw(st.booleans())
    hosts = draw(st.sampled_from([None, "[a.example, b.example]", "a.example", "[]", "[A.Example, 'x']",
                                  "[bad host]", "~"]))
    if hosts is not None and hosts_first:
        out.append(f"allowed_hosts: {hosts}")
    out.append("rules:" + draw(st.sampled_from(["", "  # the rules", " "])))
    for _ in range(draw(st.integers(0, 4))):
        keys = draw(st.lists(st.sampled_from(KEYS if odd else RULE_FIELDS), min_size=1, max_size=5,
                             unique=not odd))
        for n, key in enumerate(keys):
            pad = " " * item_indent + ("- " if n == 0 else "  ")
            if odd:
                val = draw(value(item_indent + 2))
            else:
                val = " " + draw(scalar())
            comment = draw(st.sampled_from(["", "", "  # note", " #x"]))
            out.append(f"{pad}{key}:{val}{comment}")
            if draw(st.integers(0, 9)) == 0:
                out.append(draw(st.sampled_from(["", "   # indented comment", "#"])))
    if hosts is not None and not hosts_first:
        out.append(f"allowed_hosts: {hosts}")
    if odd and draw(st.integers(0, 4)) == 0:
        out.append(draw(st.sampled_from(["extra: 1", "rules: []", "---", "\tx: 1", "  stray: 1"])))
    text = "\n".join(out) + draw(st.sampled_from(["\n", "", "\n\n"]))
    if odd and draw(st.integers(0, 9)) == 0:
        text = text.replace("\n", "\r\n")
    return text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_file(odd=False))
def test_yaml_fast_path_equals_the_full_path_on_plain_files(text: str) -> None:
    assert outcome(text, True) == outcome(text, False), text


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_file(odd=True))
def test_yaml_fast_path_equals_the_full_path_on_any_file(text: str) -> None:
    assert outcome(text, True) == outcome(text, False), text


def test_the_fast_path_reads_the_shape_exports_write() -> None:
    text = (
        "allowed_hosts: [a.example]\n"
        "rules:\n"
        "- from: /a\n  to: https://a.example/b\n  status: 308\n  methods: [GET, HEAD]\n"
        "  starts: '2026-12-01T00:00:00Z'\n  cache: 60\n  enabled: false\n  tags: [x, y]\n"
        "  note: users moved\n"
        "  - from: \"/c\"\n"  # not the shape: an item at another indent
    )
    assert parsing._yaml_fast(text) is None
    text = text.rsplit("  - from", 1)[0]
    read = parsing._yaml_fast(text)
    assert read is not None and read[1] == 1 and len(read[2]) == 1
    assert outcome(text, True) == outcome(text, False)
    rule = parsing.loads(text, "yaml")[0].rules[0]
    assert rule.methods == ("GET", "HEAD") and rule.starts == datetime(2026, 12, 1, tzinfo=UTC)
    assert rule.field_lines == {"from": 3, "to": 4, "status": 5, "methods": 6, "starts": 7, "cache": 8,
                                "enabled": 9, "tags": 10, "note": 11}


# -- rule_from_mapping ----------------------------------------------------------------------------
FIELD_VALUES: dict[str, Any] = {
    "from": st.sampled_from(["/a", "/a/b/", "/", "//h.example/a", "/x/{id}", "a", "/a?b", "/%41", "/.x",
                             "/a//b", "/\x00", "/" + "a" * 600, "", 5, None]),
    "to": st.sampled_from(["/b", "https://x.example/", " ", "", "/\x7f", "/" + "b" * 3000, 1, None]),
    "status": st.sampled_from([301, 302, 303, 307, 308, 200, True, "301", None]),
    "query": st.sampled_from(["keep", "drop", "x", 1, None]),
    "cache": st.sampled_from([0, 60, -1, 2**31, True, "1", None]),
    "priority": st.sampled_from([0, 5, -5, 2**31, -(2**31) - 1, False, None]),
    "case_insensitive": st.sampled_from([True, False, 1, "yes", None]),
    "enabled": st.sampled_from([True, False, 0, None]),
    "note": st.sampled_from(["hi", "", "  ", "a\nb", "a\x00b", "\ud800", "n" * 300, "n" * 1025, 3, None]),
    "methods": st.sampled_from([["GET"], [], "GET HEAD", None]),
    "from_regex": st.sampled_from(["^/a$", None]),
    "tags": st.sampled_from([["a"], "a", None]),
    "starts": st.sampled_from(["2026-01-01T00:00:00Z", None]),
    "bogus": st.just(1),
}


def full_path(data: dict[str, Any]) -> tuple[Rule | None, list[Any]]:
    """rule_from_mapping without its fast path (a Mapping that is not a dict takes the full one)."""

    class Plain(dict[str, Any]):
        pass

    return rule_from_mapping(Plain(data), line=7, field_lines={"from": 7}, index=2, source="s", position=2)


@settings(max_examples=1500, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_rule_from_mapping_fast_path_equals_the_full_checks(data: dict[str, Any]) -> None:
    fast = rule_from_mapping(data, line=7, field_lines={"from": 7}, index=2, source="s", position=2)
    full = full_path(data)
    assert fast == full
    if fast[0] is not None:
        assert full[0] is not None
        assert (fast[0].line, fast[0].position, fast[0].field_lines) == (7, 2, {"from": 7})


# -- patterns and new_rule ------------------------------------------------------------------------
@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(list("ab/.%{}~-_:@!$&'()*+,;=?# x1") + ["%41", "%2f", "ü"]), max_size=12)
       .map("".join))
def test_simple_exact_patterns_equal_the_full_parser(text: str) -> None:
    for candidate in (text, "/" + text):
        simple = simple_exact_pattern(candidate)
        try:
            full = _parse_source_full(candidate)
        except PatternError:
            assert simple is None
            continue
        if simple is not None:
            assert simple == full
            assert (simple.exact_path, simple.literal_count, simple.is_exact, simple.names) == (
                full.exact_path, full.literal_count, full.is_exact, full.names)


def test_new_rule_is_a_rule() -> None:
    values = {f.attr: f.default for f in FIELDS}
    values.update(to="/b", source="/a", note="n", tags=("t",), line=3, position=4, field_lines={"to": 3},
                  id="u")
    made, built = new_rule(**values), Rule(**values)
    assert type(made) is Rule and made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert (made.id, made.line, made.position, made.field_lines) == ("u", 3, 4, {"to": 3})
    try:
        made.to = "/c"  # type: ignore[misc]
    except AttributeError:
        pass
    else:  # pragma: no cover
        raise AssertionError("a Rule from new_rule must stay frozen")


# -- generated JSON -------------------------------------------------------------------------------
def json_outcome(text: str, fast: bool) -> tuple[Any, ...]:
    ruleset, problems = parsing._loads_json(text, "f.json", fast=fast)
    rules = [(r, r.line, dict(r.field_lines or {}), r.position) for r in ruleset.rules]
    return rules, ruleset.allowed_hosts, problems


JSON_KEYS = [*RULE_FIELDS, "fr\\u006fm", "\\u0074o", "stauts", "", "a\\\"b", "{", "to\\n"]
JSON_SCALARS = ['"/a"', '"/b/c"', '"https://h.example/x"', '"GET"', '"keep"', '"drop"', '""', '"a\\"b"',
                '"x\\": \\"y"', '"{[,]}"', '"\\u00e9/\\n"', '"\\\\"', "301", "308", "302", "-1", "0", "1.5",
                "1e3", "true", "false", "null", '"2026-12-01T00:00:00Z"', '"^/r/(?P<id>[0-9]+)$"', '"a\\u0000"']


@st.composite
def json_value(draw: st.DrawFn, pad: str, nl: str) -> str:
    kind = draw(st.sampled_from(["scalar"] * 8 + ["list", "lines", "empty", "object", "nested"]))
    if kind == "scalar":
        return draw(st.sampled_from(JSON_SCALARS))
    if kind == "empty":
        return draw(st.sampled_from(["[]", "{}", "[ ]", "[\n" + pad + "]"]))
    items = draw(st.lists(st.sampled_from(JSON_SCALARS), min_size=1, max_size=3))
    if kind == "list":
        return "[" + draw(st.sampled_from([", ", ",", " , "])).join(items) + "]"
    if kind == "lines":  # json.dumps(indent=...) writes lists one item a line
        return "[" + nl + "".join(f"{pad}  {item},{nl}" for item in items[:-1]) + f"{pad}  {items[-1]}{nl}{pad}]"
    if kind == "object":
        return "{" + draw(st.sampled_from(['"a": 1', '"from": "/x", "from": "/y"', '"to":\n"/z"'])) + "}"
    return "[" + draw(st.sampled_from(["[1]", '{"to": "/a"}', '["GET"], "HEAD"', '[\n"x"\n]'])) + "]"


@st.composite
def json_rule(draw: st.DrawFn, nl: str) -> str:
    if draw(st.integers(0, 19)) == 0:
        return draw(st.sampled_from(['"not a rule"', "42", "null", "[]", "{}", "{\n}", '["from", "/a"]']))
    pad = draw(st.sampled_from(["    ", "  ", "", "\t", " \r"]))
    if draw(st.booleans()):  # a good rule
        good = {"from": '"/a"', "to": '"/b"', "status": "308", "methods": '["GET"]', "tags": '["x", "y"]',
                "note": '"n"', "cache": "60"}
        keys = ["from", "to", *draw(st.lists(st.sampled_from(list(good)[2:]), unique=True, max_size=3))]
        values = [good[key] if key != "methods" or draw(st.booleans()) else
                  f'[{nl}{pad}  "GET",{nl}{pad}  "HEAD"{nl}{pad}]' for key in keys]
    else:
        keys = draw(st.lists(st.sampled_from(JSON_KEYS), min_size=1, max_size=5))
        values = [draw(json_value(pad, nl)) for _ in keys]
    pairs = [f'"{key}"' + draw(st.sampled_from([": ", ":", " : ", ":\t"])) + value
             for key, value in zip(keys, values, strict=True)]
    layout = draw(st.sampled_from(["flat", "flat", "flat", "one-line", "mixed"]))
    if layout == "flat":
        inner = ("," + nl).join(pad + "  " + pair for pair in pairs)
        return "{" + draw(st.sampled_from(["", " "])) + nl + inner + nl + pad + "}"
    if layout == "one-line":
        return "{" + ", ".join(pairs) + "}"
    out = "{"
    for n, pair in enumerate(pairs):
        out += draw(st.sampled_from(["", " ", nl, nl + nl, nl + pad])) + pair
        if n < len(pairs) - 1:
            out += draw(st.sampled_from([",", ", ", "," + nl, nl + ","]))
    return out + draw(st.sampled_from(["", nl, " "])) + "}"


@st.composite
def json_file(draw: st.DrawFn) -> str:
    nl = draw(st.sampled_from(["\n"] * 6 + ["\r\n"]))
    rules = [draw(json_rule(nl)) for _ in range(draw(st.integers(0, 5)))]
    parts = []
    for n, rule in enumerate(rules):
        parts.append(rule + ("" if n == len(rules) - 1 else draw(st.sampled_from([",", ", ", "," + nl + "  ",
                                                                                    nl + "," + nl]))))
    body = "[" + draw(st.sampled_from(["", nl, nl + "  ", " "])) + "".join(parts) + draw(st.sampled_from(["", nl, " "])) + "]"
    top = [f'"rules": {body}']
    hosts = draw(st.sampled_from([None, '["a.example"]', '"a.example"', "[1]", '["bad host"]', "{}"]))
    if hosts is not None:
        top.insert(draw(st.integers(0, 1)), f'"allowed_hosts": {hosts}')
    extra = draw(st.sampled_from([None, '"rules": []', '"rulez": 1', '"rules": [{"from": "/z", "to": "/y"}]']))
    if extra is not None:
        top.insert(draw(st.integers(0, len(top))), extra)
    text = "{" + nl + ("," + nl).join("  " + t for t in top) + nl + "}" + draw(st.sampled_from(["", nl]))
    return draw(st.sampled_from(["", "\ufeff"])) + text


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_file())
def test_json_flat_rules_equal_the_token_scan(text: str) -> None:
    text = text.removeprefix("\ufeff")  # as `loads` does
    assert json_outcome(text, True) == json_outcome(text, False), text


def test_json_dumps_rules_are_read_whole_and_share_a_layout() -> None:
    import json

    rules = [{"from": f"/a{n}", "to": "/b", "status": 308, "methods": ["GET", "HEAD"], "tags": ["x"]}
             for n in range(3)] + [{"from": "/c", "to": "/d"}, {"from": "/e", "to": "/f"}]
    for indent in (2, 4):
        text = json.dumps({"allowed_hosts": ["a.example"], "rules": rules}, indent=indent)
        where = parsing._json_locations(text)
        layouts = [item.layout for item in where.rules]
        assert layouts[0] is layouts[1] is layouts[2] and layouts[3] is layouts[4]
        assert json_outcome(text, True) == json_outcome(text, False)
        ruleset, problems = parsing.loads(text, "json")
        assert problems == []
        lines = text.splitlines()

        def line_of(fragment: str, lines: list[str] = lines) -> int:
            return next(n for n, line in enumerate(lines, 1) if fragment in line)

        first, last = ruleset.rules[0], ruleset.rules[4]
        start = line_of('"from": "/a0"') - 1
        assert first.line == start and first.field_lines == {
            "from": start + 1, "to": start + 2, "status": start + 3, "methods": start + 4, "tags": start + 8}
        assert dict(first.field_lines or {}) == first.field_lines
        assert (last.line, last.field_lines) == (line_of('"/e"') - 1, {"from": line_of('"/e"'), "to": line_of('"/f"')})


def test_json_rules_one_a_line_are_read_whole_and_share_a_layout() -> None:
    """The shape bench/gen_rules.py and many scripts write: `{"rules": [` then one rule a line."""
    import json

    rules = [{"from": f"/a{n}", "to": f"/b{n}", "status": 301} for n in range(3)] + [{"from": "/c", "to": "/d"}]
    text = '{"rules": [\n' + ",\n".join(json.dumps(rule) for rule in rules) + "\n]}\n"
    where = parsing._json_locations(text)
    layouts = [item.layout for item in where.rules]
    assert layouts[0] is layouts[1] is layouts[2] and layouts[3] is not layouts[0]
    assert json_outcome(text, True) == json_outcome(text, False)
    ruleset, problems = parsing.loads(text, "json")
    assert [(r.line, dict(r.field_lines or {})) for r in ruleset.rules] == [
        (n, {key: n for key in rule}) for n, rule in enumerate(rules, 2)]


# -- rulefile: problems in line order -------------------------------------------------------------
PROBLEM = st.builds(
    Problem,
    severity=st.sampled_from(["error", "warning"]),
    field=st.sampled_from(["from", "to", "status", "rules", "file"]),
    message=st.sampled_from(["a", "b", "c"]),
    line=st.one_of(st.none(), st.integers(0, 6)),
    index=st.one_of(st.none(), st.integers(0, 3)),
    code=st.sampled_from(["x", "y"]),
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(PROBLEM, max_size=8), st.lists(PROBLEM, max_size=12), st.booleans())
def test_problems_are_merged_as_one_stable_sort_orders_them(
    parsed: list[Problem], validated: list[Problem], distinct: bool
) -> None:
    if distinct:  # the common case: one problem a line
        validated = [replace(p, line=n + 1) for n, p in enumerate(validated)]
    validated.sort(key=lambda p: (p.line if p.line is not None else 0, p.index or 0, p.field))  # as validate
    expected = sorted(parsed + validated, key=lambda p: (p.line if p.line is not None else 0, p.field))
    got = in_line_order(list(parsed), list(validated))
    assert [id(p) for p in got] == [id(p) for p in expected]


def test_csv_field_lines_are_the_row_line_of_each_cell_given() -> None:
    text = "# c\nfrom,to,status,note\n/a,/b,308,\n/c,/d,,n\n\n/e,/f,301,\n\"/g\n\",/h,,\n"
    ruleset, problems = parsing.loads(text, "csv")
    assert [(r.line, r.field_lines) for r in ruleset.rules] == [
        (3, {"from": 3, "to": 3, "status": 3}), (4, {"from": 4, "to": 4, "note": 4}),
        (6, {"from": 6, "to": 6, "status": 6})]
    assert [(p.line, p.field) for p in problems] == [(7, "from")]
    assert ruleset.rules[0].field_lines._offsets is ruleset.rules[2].field_lines._offsets  # type: ignore[union-attr]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(yaml_file(odd=True), st.integers(1, 40))
def test_yaml_lines_read_a_block_at_a_time_are_the_lines(text: str, size: int) -> None:
    text = text if text.endswith("\n") else text + "\n"
    blocks = list(parsing._yaml_line_blocks(text, size))
    assert [m for block in blocks for m in block] == parsing._YAML_LINE.findall(text)


def test_yaml_rules_of_one_layout_share_their_offsets() -> None:
    text = "rules:\n" + "".join(f"- from: /a{n}\n  to: /b\n" for n in range(3)) + "- to: /c\n  from: /d\n"
    ruleset, problems = parsing.loads(text, "yaml")
    assert problems == []
    offsets = [r.field_lines._offsets for r in ruleset.rules]  # type: ignore[union-attr]
    assert offsets[0] is offsets[1] is offsets[2] and offsets[3] == {"to": 0, "from": 1}
    assert [r.field_lines for r in ruleset.rules] == [
        {"from": 2, "to": 3}, {"from": 4, "to": 5}, {"from": 6, "to": 7}, {"to": 8, "from": 9}]
