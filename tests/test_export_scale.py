"""Rule-file exports at scale: `export.write` streams the table rule by rule, and what it writes
reads back to the same table whatever the rules hold (odd characters, YAML look-alikes of other
types, unicode line breaks, ...), in YAML, JSON and CSV."""

from __future__ import annotations

import io
import json
import os
import re
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redirectory.rules import export
from redirectory.rules.export import dumps, write
from redirectory.rules.export_skip import Skip
from redirectory.rules.model import FIELDS, Rule, RuleSet, new_rule
from redirectory.rules.parsing import Format, _yaml_fast, loads
from redirectory.rules.patterns import PatternError, parse_source, valid_host
from redirectory.semantics import REDIRECT_STATUSES, RULE_STATUSES

FORMATS: tuple[Format, ...] = ("yaml", "json", "csv")
SETTINGS = settings(
    max_examples=int(os.environ.get("REDIRECTORY_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def roundtrip(ruleset: RuleSet, fmt: Format) -> RuleSet:
    text = dumps(ruleset, fmt)
    parsed, problems = loads(text, fmt, "export." + fmt)
    assert problems == [], (text, [p.format() for p in problems])
    return parsed


# -- strategies: every field, and text that is hard to write --------------------------------------
#: Texts YAML would read as something else, or that open with an indicator, or hold `: ` / ` #`.
TRICKY = [
    "yes", "no", "No", "on", "OFF", "y", "n", "true", "False", "null", "Null", "~", "", "0", "-1", "1.5",
    "1e3", ".inf", ".NaN", "0x1F", "0o17", "1_000", "1:30", "12:30:00", "2026-01-01", "2026-01-01T00:00:00Z",
    "<<", "=", "- a", "-a", "--", "---", "...", "* b", "&x", "*x", "!tag", "!!str", "%YAML", "@at", "`b`",
    "|", ">", "? q", ":", "a:", "a: b", "a :b", "a #b", "#c", "a#b", "[x]", "{y}", "a,b", "'s'", '"d"',
    "x'y", 'x"y', "\\", "\\n", "a\\", "{rest}", "é", "日本", "🙂", "\x85", "\u2028", "\u2029", "\ufeff",
    "\xa0", "\x80", "\x9f", "\ufffe", "a\u2028b", " lead", "trail ", "two  spaces", "\t", "\r\n", "\n",
]
#: What a `to` or `note` may not hold: control characters (a note may hold tabs and line breaks).
CONTROLS = re.compile(r"[\x00-\x1f\x7f]")
any_text = st.one_of(
    st.sampled_from(TRICKY),
    st.lists(st.sampled_from(TRICKY), min_size=2, max_size=4).map("".join),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
)


def no_controls(text: str) -> str:
    return CONTROLS.sub("", text)


def valid_source(text: str) -> bool:
    try:
        parse_source(text)
    except PatternError:
        return False
    return True


sources = (
    any_text.map(lambda t: "/" + re.sub(r"[\x00-\x20\x7f?#{}/]", "", t))
    | st.lists(any_text, max_size=3).map(lambda ts: "/" + "/".join(re.sub(r"[\x00-\x20\x7f?#{}/]", "", t) for t in ts))
    | st.sampled_from(["/api/v1/users/{rest:path}", "/a/{id}/b", "//h.example/x", "//yes/no"])
).filter(valid_source)
regexes = any_text.map(lambda t: "^/" + re.escape(no_controls(t)) + "$") | st.sampled_from(
    ["^/legacy/(?P<id>[0-9]+)$", "(?i)^/a: b #c$", "^[-*&]x", "^/\"q\"/'s'$", r"\.php$"]
)
targets = any_text.map(no_controls).filter(lambda t: bool(t.strip()))
#: HTTP method tokens as `loads` keeps them (upper-case, sorted, unique).
method_names = st.text(st.sampled_from("GETPOSNULYA!#$%&'*+-.^_`|~0123456789"), min_size=1, max_size=6).map(str.upper)
methods = st.none() | st.lists(method_names, min_size=1, max_size=4, unique=True).map(lambda m: tuple(sorted(m)))
tag_text = any_text.map(no_controls).filter(lambda t: bool(t.strip()) and len(t.encode()) <= 64)
notes = st.none() | st.one_of(any_text, st.lists(any_text, min_size=1, max_size=3).map("\n".join)).map(
    lambda t: re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", t)  # a note may hold tabs and line breaks
).filter(lambda t: bool(t.strip()))
timestamps = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


@st.composite
def rules(draw: st.DrawFn, csv: bool = False) -> Rule:
    regex = draw(st.booleans())
    starts, ends = draw(timestamps), draw(timestamps)
    window = draw(st.sampled_from(["none", "starts", "ends", "both"]))
    if window == "both":
        starts, ends = min(starts, ends), max(starts, ends) + timedelta(microseconds=1)
    tags = draw(st.lists(tag_text, max_size=3))
    method_list = draw(methods)
    if csv:  # CSV separates list items by whitespace or `|` (test_csv_refuses_what_it_cannot_hold)
        tags = [t for t in tags if not re.search(r"[\s|]", t)]
        method_list = method_list and tuple(m for m in method_list if "|" not in m) or None
    return Rule(
        to=draw(targets),
        source=None if regex else draw(sources),
        source_regex=draw(regexes) if regex else None,
        status=draw(st.sampled_from(REDIRECT_STATUSES)),
        methods=method_list,
        query=draw(st.sampled_from(["keep", "drop"])),
        starts=starts if window in ("starts", "both") else None,
        ends=ends if window in ("ends", "both") else None,
        cache=draw(st.none() | st.integers(0, 2**31 - 1)),
        priority=draw(st.integers(-(2**31), 2**31 - 1)),
        case_insensitive=draw(st.booleans()),
        enabled=draw(st.booleans()),
        tags=tuple(tags),
        note=draw(notes),
    )


host_names = st.sampled_from(["null", "yes", "no", "on", "true", "1e3", "0x1f", "a-b.example", "xn--bcher-kva.example"]) | (
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\.[a-z]([a-z0-9-]{0,8}[a-z0-9])?){0,2}", fullmatch=True)
)


def rulesets(csv: bool = False) -> st.SearchStrategy[RuleSet]:
    return st.builds(
        RuleSet,
        rules=st.lists(rules(csv), max_size=6).map(tuple),
        allowed_hosts=st.lists(host_names.filter(valid_host), max_size=3, unique=True).map(tuple),
    )


@SETTINGS
@given(ruleset=rulesets(), fmt=st.sampled_from(("yaml", "json")))
def test_roundtrip_odd_text(ruleset: RuleSet, fmt: Format) -> None:
    assert roundtrip(ruleset, fmt) == ruleset


@SETTINGS
@given(ruleset=rulesets(csv=True))
def test_roundtrip_odd_text_csv(ruleset: RuleSet) -> None:
    assert roundtrip(ruleset, "csv") == ruleset


@SETTINGS
@given(ruleset=rulesets())
def test_yaml_export_is_yaml_for_any_reader(ruleset: RuleSet) -> None:
    """PyYAML's own loader reads the export to the same data (`Rule.to_dict`): the plain scalars
    written are strings for any YAML 1.1 reader, the escapes are YAML's."""
    data = yaml.load(dumps(ruleset, "yaml"), Loader=yaml.SafeLoader)  # noqa: S506 - SafeLoader
    assert data == {
        **({"allowed_hosts": list(ruleset.allowed_hosts)} if ruleset.allowed_hosts else {}),
        "rules": [r.to_dict() for r in ruleset.rules],  # timestamps are written as (quoted) strings
    }


@SETTINGS
@given(ruleset=rulesets())
def test_json_export_is_json_dumps(ruleset: RuleSet) -> None:
    assert dumps(ruleset, "json") == json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False) + "\n"


def test_csv_refuses_what_it_cannot_hold() -> None:
    for rule in (Rule(to="/b", source="/a", tags=("two words",)), Rule(to="/b", source="/a", tags=("a|b",)),
                 Rule(to="/b", source="/a", methods=("A|B",))):
        ruleset = RuleSet((Rule(to="/y", source="/x"), rule))
        out = io.StringIO()
        with pytest.raises(ValueError, match=r"rule 1 \(/a\).*export as YAML or JSON"):
            write(ruleset, "csv", out)
        assert out.getvalue() == ""  # a table is checked before anything is written
        assert roundtrip(ruleset, "yaml") == ruleset


def test_field_table_is_what_to_dict_writes() -> None:
    """`write` derives what a rule holds from `model.FIELDS` as `Rule.to_dict` does."""
    rule = Rule(to="/b", source="/a", note="", tags=())
    assert export._present(rule) == [(0, "/a"), (2, "/b"), (3, 301)]
    assert [FIELDS[i].name for i, _ in export._present(rule)] == list(rule.to_dict())


# -- streaming --------------------------------------------------------------------------------------
def table(count: int, start: int = 0) -> Iterator[Rule]:
    for i in range(start, start + count):
        yield new_rule(f"/v2/svc{i % 100}/items/{i}", f"/svc{i % 100}/items/{i}", position=i)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("count", [0, 1, export._CHUNK - 1, export._CHUNK, export._CHUNK + 1, 2 * export._CHUNK])
def test_write_streams_what_dumps_returns(fmt: Format, count: int) -> None:
    """Any number of rules around the chunk size: the iterable form writes what `dumps` returns for
    the same table, in several writes, and it reads back (YAML by the fast line reader)."""
    hosts = ("a.example", "yes")  # "yes" is written quoted ("yes" in YAML 1.1 is true)
    ruleset = RuleSet(tuple(table(count)), hosts)
    writes: list[str] = []

    class Sink:
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    assert write(table(count), fmt, Sink(), allowed_hosts=hosts) == count
    text = "".join(writes)
    assert text == dumps(ruleset, fmt)
    assert len(writes) <= 2 + count // export._CHUNK
    if fmt == "json":
        assert text == json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        assert text.startswith('allowed_hosts: [a.example, "yes"]\nrules:')
        assert _yaml_fast(text.replace('"yes"', "b.example")) is not None  # one regex match a line
    assert roundtrip(ruleset, fmt) == ruleset


def test_yaml_export_of_plain_rules_takes_the_fast_reader() -> None:
    ruleset = RuleSet((
        Rule(to="https://new.example/x?a=1#f", source="/old/{rest:path}", status=308, methods=("GET", "HEAD"),
             starts=datetime(2026, 1, 1, tzinfo=UTC), cache=60, priority=-3, tags=("a", "b-c"),
             note='moved: see "docs"\nsecond line'),
        Rule(to="/b", source_regex="^/legacy/(?P<id>[0-9]+)$", query="drop", case_insensitive=True, enabled=False),
    ), ("a.example",))
    text = dumps(ruleset, "yaml")
    assert _yaml_fast(text) is not None, text
    assert 'note: "moved: see \\"docs\\"\\nsecond line"' in text
    assert "from: /old/{rest:path}" in text and "methods: [GET, HEAD]" in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_write_holds_no_more_than_a_chunk(fmt: Format) -> None:
    """Memory stays flat: writing 40,000 rules from a generator allocates at most a few chunks'
    worth at once (the text of the whole table would be ~3 MB, its rules ~20 MB)."""
    sizes: list[int] = []

    class Sink:
        def write(self, text: str) -> None:
            sizes.append(len(text))

    tracemalloc.start()
    try:
        write(table(40_000), fmt, Sink())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(sizes) > 2_000_000
    assert peak < 4_000_000, peak  # a few chunks of 4,096 rules; the rules alone would take ~20 MB


# -- nginx --------------------------------------------------------------------------------------------
plain_rules = st.builds(
    Rule,
    to=st.sampled_from(["/a", "/b$c", "/x/y/", "/é", "/a?b", "/a#f", "//h", "/\\h", "/p%20", "/{x}", "https://h.example/a"]),
    source=st.sampled_from(["/s", "/s/t", "/S", "/s/", "/é", "/a%20b", "/a/./b", "/A/b", "//h.example/x", "/"]),
    status=st.sampled_from([*RULE_STATUSES, 302, 304, 200, 999]),
    cache=st.none() | st.integers(0, 2**31 - 1),
    query=st.sampled_from(["keep", "drop"]),
    case_insensitive=st.booleans(),
    methods=st.none() | st.sampled_from([("GET",), ("GET", "HEAD"), ("POST",)]),
)


@SETTINGS
@given(rule=plain_rules)
def test_nginx_plain_entry_is_the_compiled_one(rule: Rule) -> None:
    """The shortcut for plain exact rules (no compiling) makes the entry the full path makes."""
    made: list[tuple[export._Entry | str, export._Needs]] = []
    for make in (export._entry, export._compiled_entry):
        needs = export._Needs()
        try:
            made.append((make(rule, needs), needs))
        except Skip as skip:
            made.append((skip.code, needs))
    assert made[0] == made[1]


def test_nginx_plain_entry_is_taken() -> None:
    needs = export._Needs()
    rule = Rule(to="/b$c", source="/a", status=308, query="keep")
    assert export._plain_entry(rule, "/a", needs) == export._entry(rule, export._Needs()) == export._Entry(
        "/a", "308 3600 /b${redirectory_dollar}c$is_args$args", rule
    )
    assert needs.dollar


def test_write_nginx_streams_the_map_file() -> None:
    """`write_nginx` writes what `nginx()` holds as `map_conf`, a chunk of entries a write."""
    rules = [*table(2 * export._CHUNK + 5), Rule(to="/x", source="/t", starts=datetime(2030, 1, 1, tzinfo=UTC))]
    writes: list[str] = []

    class Sink:
        def write(self, text: str) -> None:
            writes.append(text)

    return_conf, skipped = export.write_nginx(iter(rules), Sink())
    whole = export.nginx(RuleSet(tuple(rules)))
    assert "".join(writes) == whole.map_conf and return_conf == whole.return_conf and skipped == whole.skipped
    assert [p.code for p in skipped] == ["nginx.window"]
    assert 3 <= len(writes) <= 4
    assert f"# {len(rules) - 1} of {len(rules)} rules exported." in whole.map_conf
