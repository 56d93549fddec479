"""Exports of a rule table: rule files (YAML, JSON, CSV) and nginx configuration. Pure (no I/O).

`dumps` writes a file that `parsing.loads` reads back to an equal RuleSet (rule equality ignores
id, line and position). CSV cannot hold a tag that contains whitespace or `|` (they separate
tags in a cell): `dumps(..., "csv")` raises ValueError naming the rule instead of losing data.

`nginx` writes two files for a plain nginx to serve the same redirects:
- `map_conf`, to `include` inside `http { }`: the rule table as `map` blocks;
- `return_conf`, to `include` inside a `server { }` block: one `if (...) { return CODE ...; }`
  per status code, plus the Cache-Control header.

How the maps work. Exact `from` paths go into a hashed `map` (one lookup whatever the size of the
table); patterns and `from_regex` rules become anchored regex entries, which nginx tries in file
order after the hashed strings, so they are written in redirectory's precedence order (see
`matcher`). Host-specific rules (`from: //host/...`) live in a second map keyed on "$host$uri"
that is consulted first. Each entry's value is "CODE MAX-AGE TARGET" (MAX-AGE "-" for none);
small maps split it into `$redirectory_CODE` (the Location) and `$redirectory_cache`.

Only rules nginx can express exactly enough are exported; the others are left out and reported
as warnings in `skipped`: rules with `methods`, a time window (`starts`/`ends`), a placeholder
in the target's query or fragment (nginx cannot percent-encode it), a literal `%XX` in `from`
(nginx matches the decoded path), or a regex whose groups nginx cannot reference ($1..$9).
Disabled rules are left out silently. Other differences are listed in the map file's header.
"""

from __future__ import annotations

import csv
import gc
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from redirectory.rules.matcher import CompiledRule, compile_regex, compile_rule
from redirectory.rules.model import RULE_FIELDS, Problem, Rule, RuleSet
from redirectory.rules.patterns import Hole, Param, PatternError, Target, parse_target

try:
    from yaml import CSafeDumper as _BaseDumper
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper as _BaseDumper  # type: ignore[assignment]

DumpFormat = Literal["yaml", "json", "csv"]

_TAG_SEPARATORS = re.compile(r"[\s|]")


# -- rule files -----------------------------------------------------------------------------------
def dumps(ruleset: RuleSet, fmt: DumpFormat) -> str:
    """The table as a rule file in `fmt`; `parsing.loads` reads it back to an equal RuleSet."""
    if fmt == "yaml":
        return _dump_yaml(ruleset)
    if fmt == "json":
        return json.dumps(ruleset.to_dict(), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        return _dump_csv(ruleset)
    raise ValueError(f"unknown format {fmt!r}: use yaml, json or csv")


class _FlowList(list[Any]):
    """A list written on one line: `methods: [GET, HEAD]`."""


class _Dumper(_BaseDumper):
    pass


def _represent_flow(dumper: _Dumper, data: _FlowList) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(_FlowList, _represent_flow)


def _dump_yaml(ruleset: RuleSet) -> str:
    doc: dict[str, Any] = {}
    if ruleset.allowed_hosts:
        doc["allowed_hosts"] = _FlowList(ruleset.allowed_hosts)
    rules = []
    for rule in ruleset.rules:
        data = rule.to_dict()
        for name in ("methods", "tags"):
            if name in data:
                data[name] = _FlowList(data[name])
        rules.append(data)
    doc["rules"] = rules
    # As in parsing: the representer builds a node tree the cyclic collector would keep
    # rescanning (2x slower on 100k rules); there are no cycles to collect.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        text: str = yaml.dump(
            doc,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=1 << 20,
        )
    finally:
        if paused:
            gc.enable()
    return text


def _dump_csv(ruleset: RuleSet) -> str:
    out = io.StringIO()
    if ruleset.allowed_hosts:
        out.write(f"# allowed_hosts: {', '.join(ruleset.allowed_hosts)}\r\n")
    # RFC 4180 line ends: the writer quotes every cell holding a character of the terminator,
    # so a note with a lone CR survives (with "\n" alone it would be written bare).
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(RULE_FIELDS)
    for index, rule in enumerate(ruleset.rules):
        bad = [t for t in rule.tags if _TAG_SEPARATORS.search(t)]
        if bad:
            raise ValueError(
                f"rule {index} ({rule.from_text}): tag {bad[0]!r} contains whitespace or '|', "
                "which separate tags in CSV; export as YAML or JSON instead"
            )
        data = rule.to_dict()
        row = []
        for name in RULE_FIELDS:
            value = data.get(name)
            if value is None:
                row.append("")
            elif isinstance(value, bool):
                row.append("true" if value else "false")
            elif isinstance(value, list):
                row.append(" ".join(value))
            else:
                row.append(str(value))
        writer.writerow(row)
    return out.getvalue()


# -- nginx ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NginxExport:
    """`map_conf` goes inside `http { }`, `return_conf` inside `server { }`."""

    map_conf: str
    return_conf: str
    skipped: list[Problem] = field(default_factory=list)


#: $uri characters that redirectory would percent-encode in a Location (or that would change its
#: meaning: `?`, `#`, `%`, `\`), and `//`: nginx would insert them raw, so such paths are never
#: redirected by the exported maps (no CR/LF injection, no `/\host` open redirect).
_UNSAFE_URI = r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/]|//"
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")
_MAX_KEY = 30000  # nginx refuses a map_hash_bucket_size near 64k


class _Skip(Exception):
    def __init__(self, fld: str, code: str, message: str):
        super().__init__(message)
        self.field = fld
        self.code = code
        self.message = message


@dataclass(slots=True)
class _Entry:
    key: str  # an exact key, or a regex (without the leading ~)
    value: str  # nginx complex value "CODE MAX-AGE TARGET"
    rank: tuple[int, ...]
    regex: bool = False
    ci: bool = False
    rule: Rule | None = None


def nginx(ruleset: RuleSet) -> NginxExport:
    """nginx `map` and `return` configuration for the rules nginx can express (see module doc)."""
    skipped: list[Problem] = []
    exact: dict[str | None, list[_Entry]] = defaultdict(list)  # scope (host or None) -> entries
    regexes: dict[str | None, list[_Entry]] = defaultdict(list)
    needs = _Needs()
    exported = 0
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        try:
            scope, entry = _entry(rule, needs)
        except _Skip as skip:
            skipped.append(
                Problem(
                    "warning",
                    skip.field,
                    f"not exported to nginx: {skip.message}",
                    line=rule.line_of(skip.field),
                    index=rule.position,
                    code=skip.code,
                )
            )
            continue
        exported += 1
        (regexes if entry.regex else exact)[scope].append(entry)

    # nginx compares map strings ignoring case: exact keys equal but for case cannot share the
    # hash (nginx refuses the duplicate), so they become anchored, case-exact regex entries.
    for scope, entries in list(exact.items()):
        groups: dict[str, list[_Entry]] = defaultdict(list)
        for entry in entries:
            groups[entry.key.lower()].append(entry)
        kept: list[_Entry] = []
        for group in groups.values():
            if len(group) == 1:
                kept.append(group[0])
                continue
            for entry in group:
                entry.key = "^" + re.escape(entry.key) + "$"
                entry.regex = True
                regexes[scope].append(entry)
        exact[scope] = kept
    for entries in regexes.values():
        entries.sort(key=lambda e: e.rank)

    statuses = sorted({int(e.value.split(" ", 1)[0]) for es in (*exact.values(), *regexes.values()) for e in es})
    hash_keys = max((len(es) for es in exact.values()), default=0)
    longest = max((len(e.key) for es in exact.values() for e in es), default=0)
    host_scopes = sorted(s for s in {*exact, *regexes} if s is not None and (exact.get(s) or regexes.get(s)))

    lines: list[str] = [*_HEADER, f"# {exported} of {len(ruleset.rules)} rules exported.", ""]
    lines.append(f"map_hash_max_size {_pow2(max(2048, 2 * hash_keys))};")
    lines.append(f"map_hash_bucket_size {max(256, _pow2(_aligned(longest + 2) + 16))};")
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
    hosts_used = bool(host_scopes)
    if hosts_used:
        lines.append("# Host-specific rules (from: //host/...) come first.")
        lines.append('map "$host$uri" $redirectory_host_route {')
        lines.append('    default "";')
        for scope in host_scopes:
            lines.extend(_map_entries(exact.get(scope, []), regexes.get(scope, []), scope))
        lines.append("}")
        lines.append("")
    lines.append("map $uri $redirectory_path_route {")
    lines.append('    default "";')
    lines.extend(_map_entries(exact.get(None, []), regexes.get(None, []), None))
    lines.append("}")
    lines.append("")
    if hosts_used:
        lines.append("map $redirectory_host_route $redirectory_any_route {")
        lines.append("    default $redirectory_path_route;")
        lines.append('    "~." $redirectory_host_route;')
        lines.append("}")
        route = "$redirectory_any_route"
    else:
        route = "$redirectory_path_route"
    lines.append("map $redirectory_safe_uri $redirectory_route {")
    lines.append('    default "";')
    lines.append(f'    "1" {route};')
    lines.append("}")
    lines.append("")
    for status in statuses:
        lines.append(f"map $redirectory_route $redirectory_{status} {{")
        lines.append('    default "";')
        lines.append(f'    "~^{status} \\\\S+ (.*)$" $1;')
        lines.append("}")
    lines.append("map $redirectory_route $redirectory_cache {")
    lines.append('    default "";')
    lines.append('    "~^[0-9]+ ([0-9]+) " "max-age=$1";')
    lines.append("}")
    map_conf = "\n".join(lines) + "\n"

    ret: list[str] = [
        "# redirectory rules for nginx: include this file inside `server { }`, before any `location`;",
        "# the `map` blocks it reads are in the other file (include that one inside `http { }`).",
        "add_header Cache-Control $redirectory_cache always;",
    ]
    for status in statuses:
        ret.append(f"if ($redirectory_{status}) {{ return {status} $redirectory_{status}; }}")
    return NginxExport(map_conf, "\n".join(ret) + "\n", skipped)


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
    "#   request parameters that the target sets itself, and re-encodes the query;",
    "# - from_regex rules run on PCRE (byte-wise) instead of RE2, and a group that matched nothing",
    "#   leaves the '/' in front of it in the target;",
    "# - nginx answers redirects with a short HTML body; redirectory sends none;",
    "# - rules with methods or a time window are not exported (the export prints each one).",
    "# The two map_hash_* lines are sized for this table: drop them if http { } sets them already.",
)


@dataclass(slots=True)
class _Needs:
    dollar: bool = False
    and_args: bool = False


def _entry(rule: Rule, needs: _Needs) -> tuple[str | None, _Entry]:
    if rule.methods is not None:
        raise _Skip("methods", "nginx.methods", "a map cannot depend on the request method")
    if rule.starts is not None or rule.ends is not None:
        name = "starts" if rule.starts is not None else "ends"
        raise _Skip(name, "nginx.window", "a map cannot depend on the time (starts/ends)")
    try:
        compiled = compile_rule(rule)
    except Exception as exc:  # noqa: BLE001 - PatternError or re2.error: an invalid rule
        try:
            parse_target(rule.to)
            fld = "from_regex" if rule.is_regex else "from"
        except PatternError:
            fld = "to"
        raise _Skip(fld, "nginx.invalid", f"the rule is not valid: {exc}") from None
    cache = compiled.cache_control.split("=", 1)[1] if compiled.cache_control else "-"
    prefix = f"{rule.status} {cache} "
    pattern = compiled.pattern
    if pattern is None:
        key, group_refs = _regex_key(compiled)
        target = _target_value(compiled.target, group_refs, rule, needs, slash_groups=False)
        return None, _Entry(key, prefix + target, compiled.rank, regex=True, ci=rule.case_insensitive, rule=rule)
    for seg in pattern.segments:
        if isinstance(seg, str) and "%" in seg:
            raise _Skip(
                "from",
                "nginx.encoded",
                f"'{seg}' holds a %XX escape; nginx matches the decoded path and cannot tell them apart",
            )
    host_prefix = pattern.host or ""
    if pattern.is_exact:
        key = host_prefix + pattern.exact_path
        if len(key) > _MAX_KEY:
            raise _Skip("from", "nginx.long", f"the path is longer than {_MAX_KEY} characters")
        target = _target_value(compiled.target, {}, rule, needs, slash_groups=True)
        return pattern.host, _Entry(key, prefix + target, compiled.rank, ci=rule.case_insensitive, rule=rule)
    parts = ["^", re.escape(host_prefix)]
    refs: dict[str, tuple[int, int | None]] = {}
    group = 0
    for seg in pattern.segments:
        parts.append("/")
        if isinstance(seg, Param):
            group += 1
            refs[seg.name] = (group, None)
            parts.append("([^/]+)")
        else:
            parts.append(re.escape(seg))
    if pattern.tail:
        refs[pattern.tail] = (group + 2, group + 1)  # (value, "/" + value)
        parts.append("(/(.*))?")
    parts.append("$")
    target = _target_value(compiled.target, refs, rule, needs, slash_groups=True)
    return pattern.host, _Entry(
        "".join(parts), prefix + target, compiled.rank, regex=True, ci=rule.case_insensitive, rule=rule
    )


def _regex_key(compiled: CompiledRule) -> tuple[str, dict[str, tuple[int, int | None]]]:
    """The rule's RE2 regex for PCRE: named groups become plain groups (nginx would turn each name
    into a variable, clashing with its own such as $uri), referenced by number."""
    source = compiled.rule.source_regex or ""
    plain = _strip_group_names(source)
    try:
        same = compile_regex(plain).groups == compiled.regex.groups
    except Exception:  # noqa: BLE001 - re2.error
        same = False
    if not same:
        raise _Skip("from_regex", "nginx.regex", "its named groups could not be rewritten for nginx")
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
            if part.context != "path":
                raise _Skip(
                    "to",
                    "nginx.placeholder",
                    f"{{{part.name}}} stands in the target's {part.context}, which nginx cannot percent-encode",
                )
            ref = refs.get(part.name)
            if ref is None:
                raise _Skip("to", "nginx.placeholder", f"{{{part.name}}} is not defined by `from`")
            number, with_slash = ref
            if with_slash is not None and not previous_literal and out:
                raise _Skip("to", "nginx.placeholder", f"{{{part.name}}} follows another placeholder")
            use_slash = (
                slash_groups
                and with_slash is not None
                and previous_literal
                and out[-1].endswith("/")
                and (target.origin is not None or "".join(out) != "/")
            )
            if use_slash:
                assert with_slash is not None
                out[-1] = out[-1][:-1]
                number = with_slash
            if number > 9:
                raise _Skip("to", "nginx.groups", f"{{{part.name}}} is capture group {number}; nginx has $1..$9")
            out.append(f"${number}")
            previous_literal = False
            continue
        text = part
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
        previous_literal = True
    add_query()
    return "".join(out)


def _value_text(text: str, needs: _Needs) -> str:
    """Literal text for an nginx value: `$` has no escape there, so it comes from a variable."""
    if "$" in text:
        needs.dollar = True
        text = text.replace("$", "${redirectory_dollar}")
    return text


def _map_entries(exact: Iterable[_Entry], regexes: Iterable[_Entry], scope: str | None) -> list[str]:
    lines: list[str] = []
    for entry in exact:
        lines.append(f"    {_quote(entry.key)} {_quote(entry.value)};")
    for entry in regexes:
        flag = "~*" if entry.ci else "~"
        lines.append(f"    {_quote(flag + entry.key)} {_quote(entry.value)};")
    return lines


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
