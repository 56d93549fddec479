"""Exports of a rule table: rule files (YAML, JSON, CSV) and nginx configuration. Pure (no I/O).

`write` streams a rule file (YAML, JSON or CSV) to a text stream rule by rule, whatever the size
of the table; `dumps` returns the same text. `parsing.loads` reads it back to an equal RuleSet
(rule equality ignores id, line and position). CSV cannot hold a tag or method that contains
whitespace or `|` (they separate items in a cell): a CSV export raises ValueError naming the rule
instead of losing data.

`nginx` writes two files for a plain nginx to serve the same redirects:
- `map_conf`, to `include` inside `http { }`: the rule table as `map` blocks;
- `return_conf`, to `include` inside a `server { }` block: one `if (...) { return CODE ...; }`
  per status code, plus the Cache-Control header.

How the maps work. Each step of redirectory's precedence (see `matcher`) is one `map`, and the
first step that yields a route wins: host-specific rules (`from: //host/...`, keyed on
"$host$uri"), then exact paths (a hashed `map` on $uri: one lookup whatever the size of the
table), then patterns and `from_regex` rules (anchored regex entries, which nginx tries in file
order, written in precedence order). Each entry's value is "CODE MAX-AGE TARGET" (MAX-AGE "-" for
none); small maps split it into `$redirectory_CODE` (the Location) and `$redirectory_cache`.

Rules with `methods`: the request methods fall into classes that every rule accepts whole or not
at all (the guide's GET, HEAD -> 301 and POST, PUT, ... -> 308 pair makes three: GET HEAD, the
others it names, and every method no rule names). `map $request_method $redirectory_method`
picks the class, and a step whose rules differ between classes has one map per class, each
holding the rules that accept that class, so a rule that does not take the method is skipped and
the next one in precedence answers, as in the gateway. Steps equal for all classes stay one map.

Only rules nginx can express exactly enough are exported; each one left out is reported as a
warning in `skipped` that names it (from, methods, status, to, and its id or #position), says why
and what would make it exportable: rules with a time window (`starts`/`ends`), a placeholder in
the target's query or fragment (nginx cannot percent-encode it), a literal `%XX` in `from` (nginx
matches the decoded path), or a regex whose groups nginx cannot reference ($1..$9).
Disabled rules are left out silently. Other differences are listed in the map file's header.

The other server exports are `export_apache` (a mod_rewrite snippet) and `export_netlify` (a
`_redirects` file); the warning for a rule left out is made the same way for all (`export_skip`).
"""

from __future__ import annotations

import csv
import gc
import io
import json
import operator
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import compress
from json.encoder import encode_basestring as _json_str
from typing import Any, Literal, Protocol

import yaml
from yaml.nodes import ScalarNode

from redirectory.rules.export_skip import (
    FIX_RULE,
    Skip,
    check_lifecycle,
    check_query_conditions,
    check_redirects,
    check_window,
    compiled_or_skip,
    gateway_only,
    group_reference,
    pattern_regex,
    skip_problem,
)
from redirectory.rules.matcher import CompiledRule, compile_regex, compile_rule
from redirectory.rules.model import FIELDS, RULE_FIELDS, Problem, Rule, RuleSet, format_timestamp
from redirectory.rules.normalise import PATH_SAFE
from redirectory.rules.patterns import Hole, Target, is_host_regex, simple_exact_pattern, split_host_regex
from redirectory.rules.querymatch import as_mapping
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, TABLE

DumpFormat = Literal["yaml", "json", "csv"]

_TAG_SEPARATORS = re.compile(r"[\s|]")


# -- rule files -----------------------------------------------------------------------------------
class TextSink(Protocol):
    """Where `write` puts the text: an open text file, `sys.stdout`, an `io.StringIO`..."""

    def write(self, text: str, /) -> object: ...


#: Rules formatted between two writes to the stream: big enough that the per-write cost vanishes,
#: small enough that the text held at once stays a few MB whatever the table's size.
_CHUNK = 4096


def dumps(ruleset: RuleSet, fmt: DumpFormat) -> str:
    """The table as a rule file in `fmt`; `parsing.loads` reads it back to an equal RuleSet."""
    out = io.StringIO()
    write(ruleset, fmt, out)
    return out.getvalue()


def write(
    table: RuleSet | Iterable[Rule],
    fmt: DumpFormat,
    stream: TextSink,
    *,
    allowed_hosts: Sequence[str] = (),
) -> int:
    """Write the table to `stream` as a rule file in `fmt`, rule by rule; returns how many rules.

    `table` is a RuleSet, or the rules alone in order (any iterable, e.g. read from the store in
    batches) with `allowed_hosts` given apart. The text is what `dumps` returns, written a few
    thousand rules at a time: memory stays flat whatever the size of the table. Open a file with
    `newline=""` (CSV ends its lines with CRLF itself) and `encoding="utf-8"`.

    CSV cannot hold a tag or method with whitespace or `|`: ValueError naming the rule, raised before
    anything is written when `table` is a RuleSet or a sequence, else when the rule is reached.
    """
    if fmt not in ("yaml", "json", "csv"):
        raise ValueError(f"unknown format {fmt!r}: use yaml, json or csv")
    if isinstance(table, RuleSet):
        rules: Iterable[Rule] = table.rules
        hosts: Sequence[str] = table.allowed_hosts
    else:
        rules, hosts = table, allowed_hosts
    if fmt == "csv" and isinstance(rules, Sequence):
        for index, rule in enumerate(rules):
            if rule.tags or rule.methods:
                _check_csv_lists(rule, index)
    with _gc_paused():
        if fmt == "yaml":
            return _write_yaml(rules, hosts, stream)
        if fmt == "json":
            return _write_json(rules, hosts, stream)
        return _write_csv(rules, hosts, stream)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic collector paused: it would rescan the (million) rules held by the caller many
    times over while an export makes its short-lived objects (15-30% of the time); an export
    makes no cycles. As in `parsing`."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


# What each format writes comes from the field table (`model.FIELDS`): a rule holds a field when
# `Rule.to_dict` would write it (always, or when it differs from its default and is not empty).
# `_present` finds those with one attrgetter call and one C-level comparison of all the values
# with the defaults: the formats then format only the fields a rule has (three for most rules).
_NEVER_EQUAL = object()  # the "default" of the fields written always
_VALUES = operator.attrgetter(*(f.attr for f in FIELDS))
_DEFAULTS = tuple(_NEVER_EQUAL if f.always else f.default for f in FIELDS)
_INDEXES = tuple(range(len(FIELDS)))
_OMIT_EMPTY = tuple(f.kind in ("note", "tags") and not f.always for f in FIELDS)
#: The fields after the last one written always: a rule that has them all at their defaults
#: (most rules) is decided by one tuple comparison.
_TAIL = max(i for i, f in enumerate(FIELDS) if f.always) + 1
_TAIL_DEFAULTS = _DEFAULTS[_TAIL:]
_HEAD = _INDEXES[:_TAIL]


def _present(rule: Rule) -> list[tuple[int, Any]]:
    """(field index, value) of each field `rule.to_dict()` writes, in `FIELDS` order (raw values:
    tuples for lists, datetimes for timestamps)."""
    values = _VALUES(rule)
    if values[_TAIL:] == _TAIL_DEFAULTS:  # most rules: one C-level comparison for the tail
        return [
            (i, values[i])
            for i in compress(_HEAD, map(operator.ne, values, _DEFAULTS))
            if values[i] or not _OMIT_EMPTY[i]
        ]
    return [
        (i, values[i])
        for i in compress(_INDEXES, map(operator.ne, values, _DEFAULTS))
        if values[i] or not _OMIT_EMPTY[i]
    ]


def _formatters(by_kind: dict[str, Callable[[Any], str]]) -> tuple[Callable[[Any], str], ...]:
    """One formatter a field, by its kind (a kind without one is an error at import)."""
    return tuple(by_kind["list" if f.is_list else f.kind] for f in FIELDS)


def _bool_text(value: Any) -> str:
    return "true" if value else "false"


def _timestamp_text(value: Any) -> str:
    return format_timestamp(value)


def _int_text(value: Any) -> str:
    return str(int(value))


def _seconds_text(value: Any) -> str:
    return value if value == "ramp" else str(int(value))  # `cache: ramp`


# -- YAML: one `key: value` line a field, in the shape `parsing` reads line by line (`_yaml_fast`).
# A string is written plain when that is certainly the same string for any YAML reader (no
# indicator first, no `: ` or ` #`, no space at either end, only printable characters, and the
# YAML 1.1 resolver takes it as a string), else double-quoted: JSON's escaping is valid YAML,
# plus the characters YAML has no raw place for (DEL, C1 controls, NEL, LS, PS, BOM...), which
# `_yaml_escape` escapes over each written chunk (they never occur outside quotes).
#: What a plain scalar may not start with (YAML's indicators, and space).
_YAML_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@` ")
#: First characters of the strings YAML 1.1 (or 1.2) might read as another type.
_YAML_RESOLVED_FIRST = frozenset("yYnNtTfFoO~<=")
_YAML_NUMBER_FIRST = frozenset("+-.0123456789")
_YAML_RESOLVER = yaml.resolver.Resolver()
_YAML_STR_TAG = "tag:yaml.org,2002:str"
_YAML_RAW_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
_YAML_NAMED = {"\x85": "\\N", "\u2028": "\\L", "\u2029": "\\P"}
_YAML_FLOW_PLAIN = re.compile(r"[A-Za-z0-9_.~/+=][A-Za-z0-9_.~/+=\-]*")  # as parsing's _FLOW_ITEM


def _yaml_str(text: str) -> str:
    if (
        text
        and text.isprintable()  # no control, separator (but space) or format character
        and text[0] not in _YAML_INDICATORS
        and text[-1] not in " :"
        and ": " not in text
        and " #" not in text
    ):
        first = text[0]
        if first not in _YAML_RESOLVED_FIRST and first not in _YAML_NUMBER_FIRST:
            return text
        if first not in _YAML_NUMBER_FIRST and _yaml_is_str(text):
            return text
    return _json_str(text)


def _yaml_is_str(text: str) -> bool:
    tag: str = _YAML_RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return tag == _YAML_STR_TAG


def _yaml_flow_item(text: str) -> str:
    if _YAML_FLOW_PLAIN.fullmatch(text) and text[0] not in _YAML_NUMBER_FIRST and (
        text[0] not in _YAML_RESOLVED_FIRST or _yaml_is_str(text)
    ):
        return text
    return _json_str(text)


def _yaml_flow(items: Any) -> str:
    return "[" + ", ".join(map(_yaml_flow_item, items)) + "]"


def _yaml_timestamp(value: Any) -> str:
    return '"' + format_timestamp(value) + '"'


def _yaml_escape(text: str) -> str:
    """`text` with the characters YAML cannot hold raw escaped (they are only ever inside quotes)."""
    if not _YAML_RAW_UNSAFE.search(text):
        return text
    return _YAML_RAW_UNSAFE.sub(lambda m: _YAML_NAMED.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


def _yaml_json_text(text: Any) -> str:
    return str(text)  # a structured field's canonical JSON (links, phases, a query policy): YAML flow


def _yaml_query(text: Any) -> str:
    return _yaml_str(text) if text in ("keep", "drop") else _yaml_json_text(text)


def _yaml_query_match(text: Any) -> str:
    return "{" + ", ".join(_json_str(k) + ": " + _json_str(v) for k, v in as_mapping(text).items()) + "}"


_YAML_KEYS = tuple(f.name + ": " for f in FIELDS)
_YAML_FORMAT = _formatters({
    "pattern": _yaml_str, "regex": _yaml_str, "target": _yaml_str, "query": _yaml_query, "note": _yaml_str,
    "scheme": _yaml_str,
    "querymatch": _yaml_query_match, "links": _yaml_json_text, "phases": _yaml_json_text,
    "status": _int_text, "seconds": _seconds_text, "integer": _int_text, "flag": _bool_text,
    "timestamp": _yaml_timestamp, "list": _yaml_flow,
})


def _write_yaml(rules: Iterable[Rule], hosts: Sequence[str], stream: TextSink) -> int:
    head = (f"allowed_hosts: {_yaml_flow(hosts)}\n" if hosts else "") + "rules:\n"
    keys, formats, present = _YAML_KEYS, _YAML_FORMAT, _present
    parts: list[str] = []
    count = 0
    for rule in rules:
        parts.append("- " + "\n  ".join([keys[i] + formats[i](value) for i, value in present(rule)]) + "\n")
        if len(parts) == _CHUNK:
            count += _CHUNK
            stream.write(_yaml_escape(head + "".join(parts)))
            head = ""
            parts.clear()
    count += len(parts)
    if not count:
        head = head[:-1] + " []\n"  # `rules: []`
    stream.write(_yaml_escape(head + "".join(parts)))
    return count


# -- JSON: as `json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False)` writes it.
def _json_int(value: Any) -> str:
    return str(int(value))


def _json_seconds(value: Any) -> str:
    return '"ramp"' if value == "ramp" else str(int(value))


def _json_timestamp(value: Any) -> str:
    return _json_str(format_timestamp(value))


def _json_list(items: Any, indent: str = "      ") -> str:
    if not items:
        return "[]"
    inner = indent + "  "
    return "[\n" + inner + (",\n" + inner).join(map(_json_str, items)) + "\n" + indent + "]"


def _json_reindented(text: Any) -> str:
    """A structured field's canonical JSON as `json.dumps(..., indent=2)` writes it inside a rule."""
    return json.dumps(json.loads(text), indent=2, ensure_ascii=False).replace("\n", "\n      ")


def _json_query(text: Any) -> str:
    return _json_str(text) if text in ("keep", "drop") else _json_reindented(text)


def _json_query_match(text: Any, indent: str = "      ") -> str:
    inner = indent + "  "
    items = [_json_str(k) + ": " + _json_str(v) for k, v in as_mapping(text).items()]
    return "{\n" + inner + (",\n" + inner).join(items) + "\n" + indent + "}"


_JSON_KEYS = tuple(_json_str(f.name) + ": " for f in FIELDS)
_JSON_FORMAT = _formatters({
    "pattern": _json_str, "regex": _json_str, "target": _json_str, "query": _json_query, "note": _json_str,
    "scheme": _json_str,
    "querymatch": _json_query_match, "links": _json_reindented, "phases": _json_reindented,
    "status": _json_int, "seconds": _json_seconds, "integer": _json_int, "flag": _bool_text,
    "timestamp": _json_timestamp, "list": _json_list,
})


def _write_json(rules: Iterable[Rule], hosts: Sequence[str], stream: TextSink) -> int:
    head = "{\n"
    if hosts:
        head += f'  "allowed_hosts": {_json_list(hosts, "  ")},\n'
    head += '  "rules": [\n'
    keys, formats, present = _JSON_KEYS, _JSON_FORMAT, _present
    parts: list[str] = []
    count = 0
    for rule in rules:
        parts.append(
            "    {\n      "
            + ",\n      ".join([keys[i] + formats[i](value) for i, value in present(rule)])
            + "\n    }"
        )
        if len(parts) == _CHUNK:
            count += _CHUNK
            stream.write(head + ",\n".join(parts))
            head = ",\n"
            parts.clear()
    count += len(parts)
    if not count:
        stream.write(head[: -len('[\n')] + "[]\n}\n")
    else:
        stream.write((head + ",\n".join(parts) if parts else "") + "\n  ]\n}\n")
    return count


# -- CSV: a header row, one row a rule (every column, empty when the field is unset).
_LIST_FIELDS = tuple((f.name, operator.attrgetter(f.attr)) for f in FIELDS if f.is_list)


def _check_csv_lists(rule: Rule, index: int) -> None:
    """A CSV cell separates list items (methods, tags) by whitespace or `|`: an item holding one
    cannot be written."""
    for name, get in _LIST_FIELDS:
        bad = [item for item in get(rule) or () if _TAG_SEPARATORS.search(item)]
        if bad:
            what = "tag" if name == "tags" else name.rstrip("s")
            raise ValueError(
                f"rule {index} ({rule.from_text}): {what} {bad[0]!r} contains whitespace or '|', "
                f"which separate {name} in CSV; export as YAML or JSON instead"
            )


def _csv_list(items: Any) -> str:
    return " ".join(items)


_CSV_FORMAT = _formatters({
    "pattern": str, "regex": str, "target": str, "query": str, "note": str, "querymatch": str, "links": str,
    "phases": str, "scheme": str,
    "status": _int_text, "seconds": _seconds_text, "integer": _int_text, "flag": _bool_text,
    "timestamp": _timestamp_text, "list": _csv_list,
})


def _write_csv(rules: Iterable[Rule], hosts: Sequence[str], stream: TextSink) -> int:
    buffer = io.StringIO()  # the csv writer writes a row at a time: a chunk of rows is one write
    if hosts:
        buffer.write(f"# allowed_hosts: {', '.join(hosts)}\r\n")
    # RFC 4180 line ends: the writer quotes every cell holding a character of the terminator,
    # so a note with a lone CR survives (with "\n" alone it would be written bare).
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(RULE_FIELDS)
    formats, present, empty = _CSV_FORMAT, _present, [""] * len(FIELDS)
    rows: list[list[str]] = []
    count = 0
    for index, rule in enumerate(rules):
        if rule.tags or rule.methods:
            _check_csv_lists(rule, index)
        row = empty.copy()
        for i, value in present(rule):
            row[i] = formats[i](value)
        rows.append(row)
        if len(rows) == _CHUNK:
            count += _CHUNK
            writer.writerows(rows)
            rows.clear()
            stream.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    count += len(rows)
    writer.writerows(rows)
    stream.write(buffer.getvalue())
    return count


# -- nginx ----------------------------------------------------------------------------------------
#: The file names of an nginx export written to a directory (`rules export --format nginx -o DIR`).
MAP_FILE = "redirectory-map.conf"
RETURN_FILE = "redirectory-return.conf"


@dataclass(frozen=True)
class NginxExport:
    """`map_conf` goes inside `http { }`, `return_conf` inside `server { }`; written to a directory
    they are MAP_FILE and RETURN_FILE (what `rules import DIR --format nginx` reads back)."""

    map_conf: str
    return_conf: str
    skipped: list[Problem] = field(default_factory=list)


#: $uri characters that redirectory would percent-encode in a Location (or that would change its
#: meaning: `?`, `#`, `%`, `\`), and `//`: nginx would insert them raw, so such paths are never
#: redirected by the exported maps (no CR/LF injection, no `/\host` open redirect).
_UNSAFE_URI = r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/]|//"
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_MAX_KEY = 30000  # nginx refuses a map_hash_bucket_size near 64k
_ESCAPE = re.compile("%[0-9A-F]{2}")


#: What makes any rule work when nginx cannot answer it, and what makes an invalid rule exportable.
_GATEWAY_ONLY = gateway_only("nginx")
_FIX_RULE = FIX_RULE


class _Skip(Skip):
    """`export_skip.Skip` with nginx's default fix (let the gateway answer)."""

    def __init__(self, fld: str, code: str, message: str, fix: str = _GATEWAY_ONLY):
        super().__init__(fld, code, message, fix)


@dataclass(slots=True)
class _Entry:
    key: str  # an exact key, or a regex (without the leading ~)
    value: str  # nginx complex value "CODE MAX-AGE TARGET"
    rule: Rule
    regex: bool = False
    ci: bool = False
    host: str | None = None  # `from: //host/...`
    precedence: tuple[int, ...] | None = None  # the matcher's rank (regex entries; else `rank()`)

    def rank(self) -> tuple[int, ...]:
        """The matcher's rank of the rule (kept for regex entries only: a million exact keys
        would hold a million tuples that only keys clashing in letter case use)."""
        if self.precedence is not None:
            return self.precedence
        return compile_rule(self.rule, memoised=False).rank

    def accepts(self, methods: tuple[str, ...]) -> bool:
        """Whether the rule answers the methods of one class (() = the methods no rule names)."""
        return self.rule.methods is None or (bool(methods) and methods[0] in self.rule.methods)


@dataclass(frozen=True, slots=True)
class _Stage:
    """One step of redirectory's precedence, written as one `map` (or one per class of methods)."""

    name: str
    source: str
    comment: str


#: The precedence steps in order (see `matcher`): the first that yields a route wins.
_STAGES = (
    _Stage("host", '"$host$uri"', "Host-specific rules (from: //host/...) come first."),
    _Stage("exact", "$uri", "Exact paths: one hash lookup."),
    _Stage("pattern", "$uri", "Patterns, then from_regex rules, in redirectory's precedence order."),
)


def nginx(ruleset: RuleSet) -> NginxExport:
    """nginx `map` and `return` configuration for the rules nginx can express (see module doc)."""
    out = io.StringIO()
    return_conf, skipped = write_nginx(ruleset, out)
    return NginxExport(out.getvalue(), return_conf, skipped)


def write_nginx(table: RuleSet | Iterable[Rule], stream: TextSink) -> tuple[str, list[Problem]]:
    """Write the map file of `nginx(table)` (MAP_FILE) to `stream` a few thousand lines at a time;
    returns the return file's text (RETURN_FILE, a few lines) and the warnings for the rules left
    out. The table is read once (`table` may be any iterable of rules, in order); what is held
    meanwhile is one short entry per exported rule (its key and nginx value), not the text."""
    with _gc_paused():
        return _write_nginx(table.rules if isinstance(table, RuleSet) else table, stream)


@dataclass(slots=True)
class _Block:
    """One `map` of exact keys (the hash) and regex entries (tried in order)."""

    source: str
    name: str
    exact: list[_Entry]
    regexes: list[tuple[str, _Entry]]  # (regex without ~, entry) in precedence order


def _write_nginx(rules: Iterable[Rule], stream: TextSink) -> tuple[str, list[Problem]]:
    skipped: list[Problem] = []
    entries: list[_Entry] = []
    needs = _Needs()
    total = 0
    for rule in rules:
        total += 1
        if not rule.enabled:
            continue
        try:
            entries.append(_entry(rule, needs))
        except Skip as skip:
            skipped.append(_skip_problem(rule, skip))
    classes = _method_classes(entries)
    staged: dict[str, list[_Entry]] = {stage.name: [] for stage in _STAGES}
    for entry in entries:
        staged["host" if entry.host is not None else "pattern" if entry.regex else "exact"].append(entry)

    # The file as lines and `_Block`s (written entry by entry at the end): the hash sizes at its
    # top depend on every map.
    lines: list[str | _Block] = [*_HEADER, f"# {len(entries)} of {total} rules exported.", ""]
    sizes_at = len(lines)
    lines.append("")
    if needs.dollar:
        lines.append("# A literal '$' in a target (nginx has no escape for it in values).")
        lines.append('geo $redirectory_dollar { default "$"; }')
    if needs.and_args:
        lines.append("# query: keep on a target that has a query of its own.")
        lines.append('map $args $redirectory_and_args { default "&$args"; "" ""; }')
    lines.append("# Paths with characters that redirectory would percent-encode are not redirected here.")
    lines.append("map $uri $redirectory_safe_uri {")
    lines.append('    default "1";')
    lines.append(f'    {_quote("~" + _UNSAFE_URI)} "";')
    lines.append("}")
    lines.append("")
    if len(classes) > 1:
        lines.append("# Rules with `methods`: the request method picks a class of methods (rules accept all")
        lines.append("# methods of a class or none of them); each class has its own maps below.")
        lines.append("map $request_method $redirectory_method {")
        lines.append('    default "0";')
        for number, methods in enumerate(classes):
            lines.extend(f"    {_quote(method)} {_quote(str(number))};" for method in methods)
        lines.append("}")
        lines.append("")
    routes: list[tuple[str, str]] = []
    for stage in _STAGES:
        if staged[stage.name] or (stage.name == "exact" and not entries):
            routes.append((stage.name, _stage_maps(stage, staged[stage.name], classes, lines)))
    del staged
    route = routes[-1][1]
    for stage_name, stage_route in reversed(routes[:-1]):
        combined = f"$redirectory_from_{stage_name}"  # the first route found from this stage on
        lines.append(f"map {stage_route} {combined} {{")
        lines.append(f"    default {route};")
        lines.append(f'    "~." {stage_route};')
        lines.append("}")
        route = combined
    lines.append("map $redirectory_safe_uri $redirectory_route {")
    lines.append('    default "";')
    lines.append(f'    "1" {route};')
    lines.append("}")
    lines.append("")
    statuses = sorted({e.rule.status for e in entries})
    del entries
    for status in statuses:
        lines.append(f"map $redirectory_route $redirectory_{status} {{")
        lines.append('    default "";')
        lines.append(f'    "~^{status} \\\\S+ (.*)$" $1;')
        lines.append("}")
    lines.append("map $redirectory_route $redirectory_cache {")
    lines.append('    default "";')
    lines.append('    "~^[0-9]+ ([0-9]+) " "max-age=$1";')
    lines.append("}")
    blocks = [line for line in lines if isinstance(line, _Block)]
    hash_keys = max((len(block.exact) for block in blocks), default=0)
    longest = max((len(e.key) for block in blocks for e in block.exact), default=0)
    lines[sizes_at:sizes_at] = [
        f"map_hash_max_size {_pow2(max(2048, 2 * hash_keys))};",
        f"map_hash_bucket_size {max(256, _pow2(_aligned(longest + 2) + 16))};",
    ]
    _write_lines(lines, stream)

    ret: list[str] = [
        "# redirectory rules for nginx: include this file inside `server { }`, before any `location`;",
        "# the `map` blocks it reads are in the other file (include that one inside `http { }`).",
        "add_header Cache-Control $redirectory_cache always;",
    ]
    for status in statuses:
        ret.append(f"if ($redirectory_{status}) {{ return {status} $redirectory_{status}; }}")
    return "\n".join(ret) + "\n", skipped


def _write_lines(lines: list[str | _Block], stream: TextSink) -> None:
    """The lines, each `_Block` as its `map { ... }`, in writes of a few thousand lines."""
    out: list[str] = []
    quote = _quote
    for line in lines:
        if not isinstance(line, _Block):
            out.append(line)
            continue
        out.append(f"map {line.source} {line.name} {{")
        out.append('    default "";')
        exact = line.exact
        for start in range(0, len(exact), _CHUNK):
            out.extend([f"    {quote(e.key)} {quote(e.value)};" for e in exact[start : start + _CHUNK]])
            stream.write("\n".join(out) + "\n")
            out.clear()
        out.extend(f"    {quote(('~*' if e.ci else '~') + key)} {quote(e.value)};" for key, e in line.regexes)
        out.append("}")
    stream.write("\n".join(out) + "\n")


def _method_classes(entries: list[_Entry]) -> list[tuple[str, ...]]:
    """The request methods split into classes that every rule accepts whole or not at all.

    Class 0, (), is every method no rule names (only rules without `methods` answer it); the
    others group the named methods by the set of rules that accept them: the guide's pair
    (GET, HEAD -> 301; POST, PUT, PATCH, DELETE, OPTIONS -> 308) makes three classes.
    """
    limited = [e.rule.methods for e in entries if e.rule.methods is not None]
    by_signature: dict[tuple[bool, ...], list[str]] = defaultdict(list)
    for method in sorted({m for methods in limited for m in methods}):
        by_signature[tuple(method in methods for methods in limited)].append(method)
    return [(), *(tuple(methods) for methods in by_signature.values())]


def _stage_maps(stage: _Stage, entries: list[_Entry], classes: list[tuple[str, ...]], lines: list[str | _Block]) -> str:
    """Add the stage's map (one per distinct class of methods) to `lines`; returns its route variable."""
    name = f"$redirectory_{stage.name}_route"
    # Two classes have the same map when they accept the same rules with `methods` (all the
    # others answer every class).
    limited = [e for e in entries if e.rule.methods is not None]
    users: dict[tuple[bool, ...], list[int]] = {}  # the limited rules a class accepts -> the classes
    for number, methods in enumerate(classes):
        users.setdefault(tuple(e.accepts(methods) for e in limited), []).append(number)
    lines.append(f"# {stage.comment}")
    if len(users) == 1:
        lines.append(_map_block(stage.source, name, entries))
        lines.append("")
        return name
    first = {number: numbers[0] for numbers in users.values() for number in numbers}
    for numbers in users.values():
        named = " ".join(m for number in numbers for m in classes[number])
        label = " and ".join(filter(None, ["methods no rule names" if numbers[0] == 0 else "", named]))
        lines.append(f"# for {label}:")
        methods = classes[numbers[0]]
        chosen = [e for e in entries if e.accepts(methods)]
        lines.append(_map_block(stage.source, f"{name}_{numbers[0]}", chosen))
    lines.append(f"map $redirectory_method {name} {{")
    lines.append(f"    default {name}_{first[0]};")
    lines.extend(f"    {_quote(str(n))} {name}_{first[n]};" for n in range(1, len(classes)) if first[n] != first[0])
    lines.append("}")
    lines.append("")
    return name


def _map_block(source: str, name: str, entries: list[_Entry]) -> _Block:
    """One `map`: exact keys in the hash, then regex entries in precedence order."""
    # nginx compares map strings ignoring case: exact keys equal but for case cannot share the
    # hash (nginx refuses the duplicate), so they become anchored, case-exact regex entries.
    first: dict[str, _Entry] = {}  # lower-cased key -> its first entry
    clashes: dict[str, list[_Entry]] = {}  # lower-cased key -> every entry, for keys met twice
    for entry in entries:
        if entry.regex:
            continue
        key = entry.key
        lowered = key.lower()
        if lowered == key:
            lowered = key  # the same string, not a copy, for the (many) keys without capitals
        seen = first.setdefault(lowered, entry)
        if seen is not entry:
            clashes.setdefault(lowered, [seen]).append(entry)
    if clashes:
        exact = [entry for lowered, entry in first.items() if lowered not in clashes]
        ranked = [(e.rank(), "^" + re.escape(e.key) + "$", e) for lowered in first if lowered in clashes
                  for e in clashes[lowered]]
    else:
        exact = list(first.values())
        ranked = []
    del first
    ranked += [(e.rank(), e.key, e) for e in entries if e.regex]
    ranked.sort(key=lambda item: item[0])
    return _Block(source, name, exact, [(key, e) for _, key, e in ranked])


def _skip_problem(rule: Rule, skip: Skip) -> Problem:
    """The warning for a rule left out (see `export_skip.skip_problem`)."""
    return skip_problem(rule, skip, "nginx")


_HEADER = (
    "# redirectory rules for nginx: include this file inside `http { }`, and the return file inside",
    "# the `server { }` that answers for the old URLs. Generated: edit the rules, not this file.",
    "#",
    "# Where nginx behaves differently from the redirectory gateway:",
    "# - nginx compares map strings ignoring case: an exact `from` also matches the same path in",
    "#   other letter cases (patterns and regexes keep redirectory's case rules);",
    "# - nginx matches the decoded path ($uri); paths holding characters redirectory would",
    "#   percent-encode (space, quotes, non-ASCII, %, ?, #, \\ ...) are not redirected at all;",
    "# - query: keep appends the request's query to the target's as it is; redirectory also drops",
    "#   request parameters that the target sets itself and empty ones (&&), and re-encodes the query;",
    "# - from_regex rules run on PCRE (byte-wise) instead of RE2, and a group whose value starts",
    "#   with '/' right after a '/' of the target keeps both slashes (redirectory sends one);",
    "# - nginx answers redirects with a short HTML body; redirectory sends none;",
    "# - nginx answers TRACE requests itself (405);",
    "# - rules with a time window (and the few nginx cannot express) are not exported: the export",
    "#   names each one, with why and what would make it exportable.",
    "# The two map_hash_* lines are sized for this table: drop them if http { } sets them already.",
)


@dataclass(slots=True)
class _Needs:
    dollar: bool = False
    and_args: bool = False


#: A `to` that is a plain path: no origin, placeholder, escape, query or fragment (its nginx value
#: is itself, `$` aside).
_PLAIN_TARGET = re.compile(r"/(?![/\\])[^\x00-\x20\x7f{}%?#]*")


def _entry(rule: Rule, needs: _Needs) -> _Entry:
    """The rule's map entry; raises _Skip for a rule nginx cannot express."""
    source = rule.source
    if (  # most rules of a large table: an exact path to a plain path, no window
        source is not None
        and rule.starts is None
        and rule.ends is None
        and not rule.has_query_conditions
        and rule.scheme is None
        and rule.query in ("keep", "drop")
        and not rule.has_lifecycle
        and rule.cache != "ramp"
        and len(source) <= _MAX_KEY
        and _PLAIN_TARGET.fullmatch(rule.to)
        and simple_exact_pattern(source) is not None
    ):
        entry = _plain_entry(rule, source, needs)
        if entry is not None:
            return entry
    return _compiled_entry(rule, needs)


def _plain_entry(rule: Rule, source: str, needs: _Needs) -> _Entry | None:
    """What `_compiled_entry` makes of a plain rule (see `_entry`), without compiling it; None
    for a status that is not a redirect's (the full path says why it is skipped)."""
    semantics = TABLE.get(rule.status)
    if semantics is None:
        return None
    max_age = rule.cache
    if max_age is None and semantics.permanent:  # as the matcher's Cache-Control
        max_age = DEFAULT_PERMANENT_MAX_AGE
    value = f"{rule.status} {'-' if max_age is None else max_age} {_value_text(rule.to, needs)}"
    if rule.query == "keep":
        value += "$is_args$args"
    return _Entry(source, value, rule, ci=rule.case_insensitive)


def _compiled_entry(rule: Rule, needs: _Needs) -> _Entry:
    check_window(rule, "nginx")
    check_query_conditions(rule, "nginx")
    check_redirects(rule, "nginx")
    check_lifecycle(rule, "nginx")
    compiled = compiled_or_skip(rule, "nginx")
    cache = compiled.cache_control.split("=", 1)[1] if compiled.cache_control else "-"
    prefix = f"{rule.status} {cache} "
    pattern = compiled.pattern
    if pattern is None:
        key, group_refs = _regex_key(compiled)
        target = _target_value(compiled.target, group_refs, rule, needs, slash_groups=False)
        split = split_host_regex(rule.source_regex or "")
        return _Entry(key, prefix + target, rule, regex=True, ci=rule.case_insensitive,
                      host=split[0] if split is not None else None, precedence=compiled.rank)
    for seg in pattern.segments:
        escape = _ESCAPE.search(seg) if isinstance(seg, str) else None
        if escape:
            char = chr(int(escape.group()[1:], 16))
            raise _Skip(
                "from",
                "nginx.encoded",
                f"'{seg}' holds the escape {escape.group()}, and nginx matches the decoded path, where "
                f"{escape.group()} and {char!r} cannot be told apart",
                f"write {char!r} instead if clients send it unescaped; or {_GATEWAY_ONLY}"
                if char in PATH_SAFE
                else _GATEWAY_ONLY,
            )
    host_prefix = pattern.host or ""
    if pattern.is_exact:
        key = host_prefix + pattern.exact_path
        if len(key) > _MAX_KEY:
            raise _Skip(
                "from",
                "nginx.long",
                f"the path is longer than {_MAX_KEY} characters (nginx cannot size a map hash for it)",
                "shorten it; or " + _GATEWAY_ONLY,
            )
        target = _target_value(compiled.target, {}, rule, needs, slash_groups=True)
        return _Entry(key, prefix + target, rule, ci=rule.case_insensitive, host=pattern.host)
    key, refs = pattern_regex(pattern, re.escape(host_prefix), re.escape)
    target = _target_value(compiled.target, refs, rule, needs, slash_groups=True)
    return _Entry(
        key, prefix + target, rule, regex=True, ci=rule.case_insensitive, host=pattern.host,
        precedence=compiled.rank,
    )


def _regex_key(compiled: CompiledRule) -> tuple[str, dict[str, tuple[int, int | None]]]:
    """The rule's RE2 regex for PCRE: named groups become plain groups (nginx would turn each name
    into a variable, clashing with its own such as $uri), referenced by number."""
    source = compiled.rule.source_regex or ""
    if is_host_regex(source):
        split = split_host_regex(source)
        if split is None:
            raise _Skip(
                "from_regex",
                "nginx.host-regex",
                "its host is written as a regex, and the export keys host rules on one literal host",
                "write one rule per host (`^//a\\.example/...`); or " + _GATEWAY_ONLY,
            )
        source = split[1]
    plain = _strip_group_names(source)
    try:
        same = compile_regex(plain).groups == compiled.regex.groups
    except Exception:  # noqa: BLE001 - re2.error
        same = False
    if same and source is not compiled.rule.source_regex:
        # on "$host$uri" (`a.example/path`): the literal host, then a `/` (PCRE look-ahead) that ends it
        host = split_host_regex(compiled.rule.source_regex or "")
        assert host is not None
        plain = "^" + re.escape(host[0]) + "(?=/)" + plain[1:]
    if not same:
        raise _Skip(
            "from_regex",
            "nginx.regex",
            "its named groups could not be rewritten as the numbered groups nginx needs",
            "write it with plain groups, (...), referenced by number; or " + _GATEWAY_ONLY,
        )
    refs: dict[str, tuple[int, int | None]] = {
        name: (number, None) for name, number in compiled.regex.groupindex.items()
    }
    return plain, refs


def _strip_group_names(regex: str) -> str:
    """`(?P<name>...)` and `(?<name>...)` become `(...)`, outside character classes and \\Q..\\E."""
    out: list[str] = []
    i, n = 0, len(regex)
    in_class = False
    while i < n:
        c = regex[i]
        if c == "\\":
            if regex.startswith("\\Q", i):
                end = regex.find("\\E", i + 2)
                end = n if end == -1 else end + 2
                out.append(regex[i:end])
                i = end
            else:
                out.append(regex[i : i + 2])
                i += 2
            continue
        if in_class:
            if regex.startswith("[:", i):
                end = regex.find(":]", i + 2)
                if end != -1:
                    out.append(regex[i : end + 2])
                    i = end + 2
                    continue
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            if i < n and regex[i] == "^":
                out.append("^")
                i += 1
            if i < n and regex[i] == "]":
                out.append("]")
                i += 1
            continue
        if c == "(":
            m = _NAMED_GROUP.match(regex, i)
            if m:
                out.append("(")
                i = m.end()
                continue
        out.append(c)
        i += 1
    return "".join(out)


def _target_value(
    target: Target,
    refs: dict[str, tuple[int, int | None]],
    rule: Rule,
    needs: _Needs,
    *,
    slash_groups: bool,
) -> str:
    """The target as an nginx complex value ($N for captures, the query appended for keep)."""
    out: list[str] = []
    previous_literal = False
    if target.origin:
        out.append(_value_text(target.origin, needs))
        previous_literal = True
    context = "path"
    has_query = False
    query_added = rule.query != "keep"

    def add_query() -> None:
        nonlocal query_added
        if query_added:
            return
        query_added = True
        if has_query:
            needs.and_args = True
            out.append("$redirectory_and_args")
        else:
            out.append("$is_args$args")

    for part in target.parts:
        if isinstance(part, Hole):
            out.append(group_reference(part, refs, out, previous_literal, slash_groups, target.origin, "nginx"))
            previous_literal = False
            continue
        text = part
        previous_literal = True
        if "?" not in text and "#" not in text:  # most literals: one piece, the context unchanged
            out.append(_value_text(text, needs))
            continue
        pieces: list[str] = []
        for ch in text:
            if ch == "?" and context == "path":
                context = "query"
                has_query = True
            elif ch == "#" and context != "fragment":
                if pieces:
                    out.append(_value_text("".join(pieces), needs))
                    pieces = []
                add_query()
                context = "fragment"
            pieces.append(ch)
        if pieces:
            out.append(_value_text("".join(pieces), needs))
    add_query()
    return "".join(out)


def _value_text(text: str, needs: _Needs) -> str:
    """Literal text for an nginx value: `$` has no escape there, so it comes from a variable."""
    if "$" in text:
        needs.dollar = True
        text = text.replace("$", "${redirectory_dollar}")
    return text


def _quote(text: str) -> str:
    """A double-quoted nginx string: nginx un-escapes \\\\ and \\" (and \\t \\r \\n) inside one."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pow2(n: int) -> int:
    size = 1
    while size < n:
        size <<= 1
    return size


def _aligned(n: int) -> int:
    return (n + 7) & ~7
