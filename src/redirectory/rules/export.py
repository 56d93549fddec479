"""Exports of a rule table: rule files (YAML, JSON, CSV) and nginx configuration. Pure (no I/O).

`dumps` writes a file that `parsing.loads` reads back to an equal RuleSet (rule equality ignores
id, line and position). CSV cannot hold a tag that contains whitespace or `|` (they separate
tags in a cell): `dumps(..., "csv")` raises ValueError naming the rule instead of losing data.

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
from redirectory.rules.normalise import PATH_SAFE
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


#: What makes any rule work when nginx cannot answer it, and what makes an invalid rule exportable.
_GATEWAY_ONLY = "let the redirectory gateway answer these paths (nginx can proxy them to it)"
_FIX_RULE = "fix the rule (`redirectory rules validate` says how)"


class _Skip(Exception):
    """Why a rule cannot be exported (`message`) and what would make it exportable (`fix`)."""

    def __init__(self, fld: str, code: str, message: str, fix: str = _GATEWAY_ONLY):
        super().__init__(message)
        self.field = fld
        self.code = code
        self.message = message
        self.fix = fix


@dataclass(slots=True)
class _Entry:
    key: str  # an exact key, or a regex (without the leading ~)
    value: str  # nginx complex value "CODE MAX-AGE TARGET"
    rank: tuple[int, ...]
    rule: Rule
    regex: bool = False
    ci: bool = False
    host: str | None = None  # `from: //host/...`

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
    skipped: list[Problem] = []
    entries: list[_Entry] = []
    needs = _Needs()
    for rule in ruleset.rules:
        if not rule.enabled:
            continue
        try:
            entries.append(_entry(rule, needs))
        except _Skip as skip:
            skipped.append(_skip_problem(rule, skip))
    classes = _method_classes(entries)
    staged: dict[str, list[_Entry]] = {stage.name: [] for stage in _STAGES}
    for entry in entries:
        staged["host" if entry.host is not None else "pattern" if entry.regex else "exact"].append(entry)

    lines: list[str] = [*_HEADER, f"# {len(entries)} of {len(ruleset.rules)} rules exported.", ""]
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
    hashed: list[list[_Entry]] = []
    routes: list[tuple[str, str]] = []
    for stage in _STAGES:
        if staged[stage.name] or (stage.name == "exact" and not entries):
            routes.append((stage.name, _stage_maps(stage, staged[stage.name], classes, lines, hashed)))
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
    for status in statuses:
        lines.append(f"map $redirectory_route $redirectory_{status} {{")
        lines.append('    default "";')
        lines.append(f'    "~^{status} \\\\S+ (.*)$" $1;')
        lines.append("}")
    lines.append("map $redirectory_route $redirectory_cache {")
    lines.append('    default "";')
    lines.append('    "~^[0-9]+ ([0-9]+) " "max-age=$1";')
    lines.append("}")
    hash_keys = max((len(keys) for keys in hashed), default=0)
    longest = max((len(e.key) for keys in hashed for e in keys), default=0)
    lines[sizes_at:sizes_at] = [
        f"map_hash_max_size {_pow2(max(2048, 2 * hash_keys))};",
        f"map_hash_bucket_size {max(256, _pow2(_aligned(longest + 2) + 16))};",
    ]
    map_conf = "\n".join(lines) + "\n"

    ret: list[str] = [
        "# redirectory rules for nginx: include this file inside `server { }`, before any `location`;",
        "# the `map` blocks it reads are in the other file (include that one inside `http { }`).",
        "add_header Cache-Control $redirectory_cache always;",
    ]
    for status in statuses:
        ret.append(f"if ($redirectory_{status}) {{ return {status} $redirectory_{status}; }}")
    return NginxExport(map_conf, "\n".join(ret) + "\n", skipped)


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


def _stage_maps(
    stage: _Stage, entries: list[_Entry], classes: list[tuple[str, ...]], lines: list[str], hashed: list[list[_Entry]]
) -> str:
    """Write the stage's map (one per distinct class of methods); returns its route variable."""
    name = f"$redirectory_{stage.name}_route"
    per_class = [[e for e in entries if e.accepts(methods)] for methods in classes]
    users: dict[tuple[int, ...], list[int]] = {}  # the entries (by identity) -> the classes they answer
    for number, chosen in enumerate(per_class):
        users.setdefault(tuple(id(e) for e in chosen), []).append(number)
    lines.append(f"# {stage.comment}")
    if len(users) == 1:
        lines.extend(_map_block(stage.source, name, entries, hashed))
        lines.append("")
        return name
    first = {number: numbers[0] for numbers in users.values() for number in numbers}
    for numbers in users.values():
        named = " ".join(m for number in numbers for m in classes[number])
        label = " and ".join(filter(None, ["methods no rule names" if numbers[0] == 0 else "", named]))
        lines.append(f"# for {label}:")
        lines.extend(_map_block(stage.source, f"{name}_{numbers[0]}", per_class[numbers[0]], hashed))
    lines.append(f"map $redirectory_method {name} {{")
    lines.append(f"    default {name}_{first[0]};")
    lines.extend(f"    {_quote(str(n))} {name}_{first[n]};" for n in range(1, len(classes)) if first[n] != first[0])
    lines.append("}")
    lines.append("")
    return name


def _map_block(source: str, name: str, entries: list[_Entry], hashed: list[list[_Entry]]) -> list[str]:
    """One `map`: exact keys in the hash, then regex entries in precedence order."""
    # nginx compares map strings ignoring case: exact keys equal but for case cannot share the
    # hash (nginx refuses the duplicate), so they become anchored, case-exact regex entries.
    groups: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        if not entry.regex:
            groups[entry.key.lower()].append(entry)
    exact = [group[0] for group in groups.values() if len(group) == 1]
    regexes = [(e.rank, "^" + re.escape(e.key) + "$", e) for g in groups.values() if len(g) > 1 for e in g]
    regexes += [(e.rank, e.key, e) for e in entries if e.regex]
    regexes.sort(key=lambda item: item[0])
    hashed.append(exact)
    lines = [f"map {source} {name} {{", '    default "";']
    lines.extend(f"    {_quote(e.key)} {_quote(e.value)};" for e in exact)
    lines.extend(f"    {_quote(('~*' if e.ci else '~') + key)} {_quote(e.value)};" for _, key, e in regexes)
    lines.append("}")
    return lines


def _skip_problem(rule: Rule, skip: _Skip) -> Problem:
    """The warning for a rule left out: which rule (from, methods, status, to; id or position),
    why nginx cannot express it, and what would make it exportable."""
    methods = f" [{', '.join(rule.methods)}]" if rule.methods else ""
    which = f"rule {rule.id}" if rule.id else f"rule #{rule.position + 1}"
    return Problem(
        "warning",
        skip.field,
        f"{rule.from_text}{methods} -> {rule.status} {rule.to} ({which}) is not exported to nginx: "
        f"{skip.message}; {skip.fix}",
        line=rule.line_of(skip.field),
        index=rule.position,
        code=skip.code,
    )


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
    "# - from_regex rules run on PCRE (byte-wise) instead of RE2, and a group that matched nothing",
    "#   leaves the '/' in front of it in the target;",
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


def _entry(rule: Rule, needs: _Needs) -> _Entry:
    if rule.starts is not None or rule.ends is not None:
        raise _Skip(
            "starts" if rule.starts is not None else "ends",
            "nginx.window",
            "nginx has no clock for its time window (starts/ends)",
            "apply it without starts/ends when the window opens (and remove it when it closes), then "
            "export again; or " + _GATEWAY_ONLY,
        )
    try:
        compiled = compile_rule(rule)
    except Exception as exc:  # noqa: BLE001 - PatternError or re2.error: an invalid rule
        try:
            parse_target(rule.to)
            fld = "from_regex" if rule.is_regex else "from"
        except PatternError:
            fld = "to"
        raise _Skip(fld, "nginx.invalid", f"the rule is not valid: {exc}", _FIX_RULE) from None
    cache = compiled.cache_control.split("=", 1)[1] if compiled.cache_control else "-"
    prefix = f"{rule.status} {cache} "
    pattern = compiled.pattern
    if pattern is None:
        key, group_refs = _regex_key(compiled)
        target = _target_value(compiled.target, group_refs, rule, needs, slash_groups=False)
        return _Entry(key, prefix + target, compiled.rank, rule, regex=True, ci=rule.case_insensitive)
    for seg in pattern.segments:
        escape = re.search("%[0-9A-F]{2}", seg) if isinstance(seg, str) else None
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
        return _Entry(key, prefix + target, compiled.rank, rule, ci=rule.case_insensitive, host=pattern.host)
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
    return _Entry(
        "".join(parts), prefix + target, compiled.rank, rule, regex=True, ci=rule.case_insensitive, host=pattern.host
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
            if part.context != "path":
                raise _Skip(
                    "to",
                    "nginx.placeholder",
                    f"{{{part.name}}} stands in the target's {part.context}, where redirectory "
                    "percent-encodes its value and nginx cannot",
                    "move it into the target's path; or " + _GATEWAY_ONLY,
                )
            ref = refs.get(part.name)
            if ref is None:
                raise _Skip("to", "nginx.placeholder", f"{{{part.name}}} is not defined by `from`", _FIX_RULE)
            number, with_slash = ref
            if with_slash is not None and not previous_literal and out:
                raise _Skip(
                    "to",
                    "nginx.placeholder",
                    f"the path tail {{{part.name}}} follows another placeholder, and nginx cannot drop "
                    "the '/' between them when the tail is empty",
                    "put literal text between them in `to`; or " + _GATEWAY_ONLY,
                )
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
                raise _Skip(
                    "to",
                    "nginx.groups",
                    f"{{{part.name}}} is capture group {number}, and nginx has only $1..$9",
                    "make groups before it non-capturing, (?:...), or use fewer placeholders in `from`; or "
                    + _GATEWAY_ONLY,
                )
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
