"""Reading back our own nginx export (`rules export --format nginx`): its route maps, method
classes and `return`s become the exported rules again, methods included."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass, field
from typing import Any

from redirectory.rules.importers._common import _Builder, _named_groups
from redirectory.rules.importers._nginx_syntax import _NginxMap
from redirectory.rules.matcher import compile_rule
from redirectory.rules.model import Rule
from redirectory.rules.patterns import PatternError, parse_source, valid_host
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, TABLE

# -- nginx: our own export -----------------------------------------------------------------------
#: What `rules export --format nginx` writes (see `export.nginx`): for each step of the
#: precedence, a route map `$redirectory_STEP_route` on $uri (or "$host$uri") whose values are
#: "CODE MAX-AGE TARGET"; or, when the step's rules differ between classes of request methods,
#: one route map per class (`..._route_N`) and a selector `map $redirectory_method
#: $redirectory_STEP_route { default ..._0; "N" ..._M; }`, with `map $request_method
#: $redirectory_method` giving each named method its class (class 0: the methods no rule names).
_ROUTE_MAP = re.compile(r"\$redirectory_([a-z]+)_route(?:_([0-9]+))?")
_ROUTE_SOURCES = ("$uri", "$host$uri")
_METHOD_CLASS = "$redirectory_method"
_ROUTE_VALUE = re.compile(r"(30[1378]) ([0-9]+|-) (.+)")
_PARAM_GROUP = "([^/]+)"  # `{name}`
_TAIL_GROUPS = "(/(.*))?"  # `{name:path}`: "/" + value, then the value
_KEY_TOKEN = re.compile(r"\\.|\(\[\^/\]\+\)|.", re.DOTALL)
_TARGET_TOKEN = re.compile(
    r"\$\{redirectory_dollar\}|\$is_args\$args|\$redirectory_and_args|\$([0-9])|\$\{?[A-Za-z0-9_]*\}?"
)
_QUERY_VARIABLES = ("$is_args$args", "$redirectory_and_args")
_EXPORT_CODE = "import.nginx-export"
_RETURN_FILE = " return file"  # in `used` once the return file of an export was named (no map is named so)


@dataclass(slots=True)
class _ExportPath:
    """A map key read as a `from` path: the text, and what each `$N` of the target stands for."""

    source: str
    groups: dict[int, str]
    rank: tuple[int, ...]  # the matcher's precedence class (see `matcher.compile_rule`)


@dataclass(slots=True)
class _ExportEntry:
    """One (key, value) of a precedence step, counted once however many class maps hold it."""

    key: str
    value: str
    line: int
    path: _ExportPath | None  # None: a `from_regex` rule
    regex: str | None  # the key as a regex; None for an exact key in the map's hash
    ci: set[bool]  # what `~` / `~*` say about case_insensitive (nothing for hash keys)
    order: tuple[tuple[int, ...], int]  # where it goes when the maps do not say
    classes: set[int] = field(default_factory=set)
    maps: int = 0  # how many maps hold it


def _read_own_export(b: _Builder, maps: dict[str, _NginxMap]) -> bool:
    """The rules in the route maps of our own nginx export; False when `maps` has none."""
    routes = sorted(((name, m) for name, m in maps.items() if _ROUTE_MAP.fullmatch(name)), key=lambda nm: nm[1].line)
    if not any(m.source in _ROUTE_SOURCES for _name, m in routes):
        return False
    classes = _export_classes(b, maps.get(_METHOD_CLASS))
    steps: list[dict[str, list[int]]] = []  # each step: route map -> the classes of methods that use it
    named: set[str] = set()  # the steps with a selector (whose route maps it names, or warned about)
    for name, m in routes:
        if name.endswith("_route") and m.source in _ROUTE_SOURCES:
            steps.append({name: sorted(classes)})
        elif name.endswith("_route") and m.source == _METHOD_CLASS:
            users = _export_selector(b, name, m, maps, classes)
            steps.append(users or {})
            named.add(name)
        elif name.endswith("_route"):
            b.warn(m.line, _EXPORT_CODE, f"`map {m.source} {name}`: expected a map on $uri, \"$host$uri\" or "
                   f"{_METHOD_CLASS}, as `rules export --format nginx` writes: skipped")
    selected = {name for users in steps for name in users}
    for name, m in routes:
        if not name.endswith("_route") and name not in selected and name.rsplit("_", 1)[0] not in named:
            b.warn(m.line, _EXPORT_CODE, f"`map {m.source} {name}`: no `map {_METHOD_CLASS} ...` selects it, so "
                   "which request methods its rules answer is unknown: skipped")
    for number, users in enumerate(steps):
        if users:
            _read_export_step(b, maps, users, classes, number)
    return True


def _export_classes(b: _Builder, m: _NginxMap | None) -> dict[int, tuple[str, ...]]:
    """Class number -> the methods in it, from `map $request_method $redirectory_method`."""
    named: dict[int, list[str]] = {0: []}
    if m is None:
        return {0: ()}
    if m.source != "$request_method" or m.default not in (None, "0"):
        b.warn(m.line, _EXPORT_CODE, f"`map {m.source} {_METHOD_CLASS}`: expected `map $request_method "
               f"{_METHOD_CLASS} {{ default \"0\"; ... }}`, as `rules export --format nginx` writes: its classes "
               "of methods may be read wrong")
    for method, value, line in m.entries:
        if not value.isdigit() or value == "0" or not re.fullmatch(r"[A-Z][A-Z0-9_-]*", method):
            b.warn(line, _EXPORT_CODE, f"`{method} {value}` in `map {m.source} {_METHOD_CLASS}`: expected an "
                   "upper-case method and the number of its class (1, 2, ...): ignored")
            continue
        named.setdefault(int(value), []).append(method)
    return {number: tuple(sorted(methods)) for number, methods in sorted(named.items())}


def _export_selector(
    b: _Builder, name: str, m: _NginxMap, maps: dict[str, _NginxMap], classes: dict[int, tuple[str, ...]]
) -> dict[str, list[int]] | None:
    """Route map -> the classes of methods that use it, from a selector map."""
    chosen = {key: (value, line) for key, value, line in m.entries}
    for key, (_value, line) in chosen.items():
        if not key.isdigit() or int(key) not in classes or key == "0":
            b.warn(line, _EXPORT_CODE, f"`map {_METHOD_CLASS} {name}`: `{key}` is not a class of methods that "
                   f"`map $request_method {_METHOD_CLASS}` names: ignored")
    users: dict[str, list[int]] = {}
    for number in classes:
        route, line = chosen.get(str(number), (m.default, m.line))
        target = maps.get(route or "")
        if route is None or target is None or target.source not in _ROUTE_SOURCES:
            b.warn(line, _EXPORT_CODE, f"`map {_METHOD_CLASS} {name}`: the map for class {number} ({route or 'none'}) "
                   "is not a route map of this file: the rules of this step are skipped")
            return None
        users.setdefault(route, []).append(number)
    return users


def _read_export_step(
    b: _Builder, maps: dict[str, _NginxMap], users: dict[str, list[int]], classes: dict[int, tuple[str, ...]],
    step: int,
) -> None:
    """One step of the precedence: each distinct (key, value) of its maps becomes one rule, whose
    methods are those of the classes whose maps hold it (none when class 0's map holds it)."""
    read: list[tuple[str, list[int], list[_ExportEntry]]] = []
    paths: dict[tuple[str, bool], _ExportPath | None] = {}  # the class maps repeat most keys
    for name, numbers in users.items():
        m = maps[name]
        if m.default not in (None, ""):
            b.warn(m.line, _EXPORT_CODE, f"`map {m.source} {name}`: its default {m.default!r} would answer every "
                   "other path, which no rule expresses: ignored")
        parsed = (_export_entry(b, name, m.source == "$host$uri", key, value, line, paths)
                  for key, value, line in m.entries)
        read.append((name, numbers, [entry for entry in parsed if entry is not None]))
    split: set[_Ident] = set()
    found, orders = _export_group(read, split)
    entries, tangled = _export_order(found, orders)
    while tangled:
        # An entry tried before another for some methods and after it for others stands for
        # several rules (the same from and to for different methods): one per map, then.
        several = [i for i in tangled if i not in split and found[i].maps > 1 and 0 not in found[i].classes]
        if not several:
            for entry in (found[ident] for ident in tangled):
                b.warn(entry.line, _EXPORT_CODE, f"`{entry.key} {entry.value}`: the maps of different request "
                       "methods try it in different orders, which rules cannot express: read in file order, check "
                       "its precedence")
            break
        split.add(min(several, key=lambda ident: found[ident].line))
        found, orders = _export_group(read, split)
        entries, tangled = _export_order(found, orders)
    everyone = set(classes)
    first_line = min(maps[name].line for name in users)
    for index, entry in enumerate(entries):
        what = f"`{entry.key} {entry.value}`"
        methods: list[str] | None = None
        if 0 not in entry.classes:
            methods = sorted({m for n in entry.classes for m in classes[n]})
        elif entry.classes != everyone:
            missing = sorted({m for n in everyone - entry.classes for m in classes[n]})
            b.warn(entry.line, _EXPORT_CODE, f"{what} is in the map for the methods no rule names (a rule "
                   f"without methods) but not in the map for {', '.join(missing)}, which no rule expresses: skipped")
            continue
        data = _export_rule(b, entry, what)
        if data is not None:
            data["methods"] = methods
            b.add(entry.line, data, order=(first_line, step, index))


_Ident = tuple[str, ...]


def _export_group(
    read: list[tuple[str, list[int], list[_ExportEntry]]], split: set[_Ident]
) -> tuple[dict[_Ident, _ExportEntry], list[list[_Ident]]]:
    """The distinct entries of a step (those in `split`: one per map), with the classes of methods
    whose maps hold each; and each map's regex entries in the order nginx tries them."""
    found: dict[_Ident, _ExportEntry] = {}
    orders: list[list[_Ident]] = []
    for name, numbers, entries in read:
        order: list[_Ident] = []
        seen: set[_Ident] = set()
        for entry in entries:
            # an exact path is the same entry as a hash key and as a regex (beside other letter cases)
            exact = entry.path is not None and not entry.path.groups
            ident: _Ident = ("=", entry.path.source, entry.value) if entry.path and exact else (entry.key, entry.value)
            if ident in split:
                ident += (name,)
            kept = found.get(ident)
            if kept is None:  # a copy: the entries of `read` stay as read, for another grouping
                kept = found[ident] = _ExportEntry(entry.key, entry.value, entry.line, entry.path, entry.regex, set(),
                                                   entry.order)
            kept.maps += kept.classes.isdisjoint(numbers)
            kept.classes.update(numbers)
            kept.ci |= entry.ci
            kept.regex = kept.regex or entry.regex
            if entry.regex is not None and ident not in seen:
                seen.add(ident)
                order.append(ident)
        orders.append(order)
    return found, orders


#: a host-specific `from_regex` as the export writes it on "$host$uri": `^a\.example(?=/)/x/(.*)$`
_HOST_KEYED_REGEX = re.compile(r"\^((?:[a-z0-9_-]|\\[.-])+)\(\?=/\)(.*)", re.S)


def _export_entry(
    b: _Builder, name: str, host_keyed: bool, key: str, value: str, line: int,
    paths: dict[tuple[str, bool], _ExportPath | None],
) -> _ExportEntry | None:
    """One route map entry, with what its key reads as (`paths`: keys read so far); None (with a
    warning) when it is not one the export writes."""
    what = f"`{key} {value}` in `map {name}`"
    if not _ROUTE_VALUE.fullmatch(value):
        b.warn(line, _EXPORT_CODE, f"{what}: expected the value \"CODE MAX-AGE TARGET\" (CODE 301, 303, 307 or 308, "
               "MAX-AGE a number or -) that `rules export --format nginx` writes: skipped")
        return None
    regex: str | None = None
    ci: set[bool] = set()
    if key.startswith("~"):
        ci.add(key.startswith("~*"))
        regex = key[2:] if key.startswith("~*") else key[1:]
    if (key, host_keyed) not in paths:
        read = _export_exact(key, host_keyed) if regex is None else _export_pattern(regex, host_keyed)
        paths[key, host_keyed] = read
    path = paths[key, host_keyed]
    if path is None and regex is not None and host_keyed:
        written = _HOST_KEYED_REGEX.fullmatch(regex)  # a host-specific regex (`^//host...`), as written
        if written is not None:
            regex, host_keyed = "^//" + written.group(1) + written.group(2), False
    if path is None and (regex is None or host_keyed):
        b.warn(line, _EXPORT_CODE, f"{what}: the key is not a path as `rules export --format nginx` writes "
               f"{'them on $host$uri (host/path)' if host_keyed else 'them'}: skipped", name="from")
        return None
    rank = path.rank if path is not None else _rank(Rule(to="/", source_regex=regex))
    return _ExportEntry(key, value, line, path, regex, ci, (rank or (9,), line))


def _rank(rule: Rule) -> tuple[int, ...] | None:
    """The rule's precedence class (`matcher.compile_rule`: host, kind, literals, tail); None
    when the rule does not compile."""
    try:
        return compile_rule(rule).rank[:4]
    except Exception:  # noqa: BLE001 - PatternError or re2.error: not a valid rule
        return None


def _export_exact(key: str, host_keyed: bool) -> _ExportPath | None:
    """An exact path key of the map's hash (`host/path` on "$host$uri")."""
    host, path = "", key
    if host_keyed:
        host, slash, rest = key.partition("/")
        if not slash or not valid_host(host):
            return None
        path = "/" + rest
    if not path.startswith("/"):
        return None
    source = f"//{host}{path}" if host else path
    try:
        pattern = parse_source(source)
    except PatternError:
        return None
    rank = _rank(Rule(to="/", source=source))
    if not pattern.is_exact or rank is None or pattern.segments != tuple(path[1:].split("/")):
        return None  # not an exact path as the matcher normalises it
    return _ExportPath(source, {}, rank)


def _export_pattern(regex: str, host_keyed: bool) -> _ExportPath | None:
    """The `from` pattern that the export writes as `regex` (`^/a/([^/]+)(/(.*))?$`), or None."""
    if not (regex.startswith("^") and regex.endswith("$")):
        return None
    body = regex[1:-1]
    tail = body.endswith(_TAIL_GROUPS)
    if tail:
        body = body[: -len(_TAIL_GROUPS)]
    parts: list[str | None] = [""]  # the host, then each segment (None: a placeholder)
    for m in _KEY_TOKEN.finditer(body):
        part = m.group()
        if part == "/":
            parts.append("")
        elif part == _PARAM_GROUP and parts[-1] == "" and len(parts) > 1:
            parts[-1] = None
        elif parts[-1] is None or part in ".^$*+?{}[]|()\\":
            return None
        else:
            parts[-1] += part[-1]
    host, segments = parts[0], parts[1:]
    assert host is not None
    if (not segments and not tail) or (host_keyed != bool(host)) or (host and not valid_host(host)):
        return None
    written = "^" + re.escape(host) + "".join("/" + (_PARAM_GROUP if s is None else re.escape(s)) for s in segments)
    if written + (_TAIL_GROUPS if tail else "") + "$" != regex:
        return None
    groups: dict[int, str] = {}
    texts: list[str] = []
    for segment in segments:
        if segment is None:
            groups[len(groups) + 1] = f"{{p{len(groups) + 1}}}"
            texts.append(groups[len(groups)])
        else:
            texts.append(segment)
    if tail:
        groups[len(groups) + 1] = "/{rest}"  # the export drops the '/' in front of the tail
        groups[len(groups) + 1] = "{rest}"
        texts.append("{rest:path}")
    source = ("//" + host if host else "") + "/" + "/".join(texts)
    try:
        shape = parse_source(source).shape()
    except PatternError:
        return None
    rank = _rank(Rule(to="/", source=source))
    if rank is None or shape != (tuple(segments), tail):
        return None
    return _ExportPath(source, groups, rank)


def _export_order(
    found: dict[_Ident, _ExportEntry], orders: list[list[_Ident]]
) -> tuple[list[_ExportEntry], list[_Ident]]:
    """The step's entries in one order that agrees with every map (nginx tries regex entries in
    file order), read as patterns or regexes so that the matcher's precedence keeps that order;
    and the entries that no such order has (in file order, at the end)."""
    after: dict[_Ident, list[_Ident]] = {ident: [] for ident in found}
    waiting = dict.fromkeys(found, 0)
    for order in orders:
        for first, second in zip(order, order[1:], strict=False):
            after[first].append(second)
            waiting[second] += 1
    numbers = {ident: n for n, ident in enumerate(found)}
    ready = [(found[ident].order, numbers[ident], ident) for ident in found if not waiting[ident]]
    heapq.heapify(ready)
    out: list[_ExportEntry] = []
    while ready:
        _order, _n, ident = heapq.heappop(ready)
        out.append(found[ident])
        for nxt in after[ident]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                heapq.heappush(ready, (found[nxt].order, numbers[nxt], nxt))
    tangled = sorted((ident for ident in found if waiting[ident]), key=lambda ident: found[ident].line)
    out.extend(found[ident] for ident in tangled)
    # Patterns come before regexes, in the matcher's order: a key that reads as a pattern but
    # comes after one it would precede was a from_regex rule.
    last: tuple[int, ...] = ()
    for entry in out:
        if entry.regex is None:
            continue
        if entry.path is not None and entry.path.rank < last and not entry.path.source.startswith("//"):
            entry.path = None
        last = (9,) if entry.path is None else max(last, entry.path.rank)
    return out, tangled


def _export_rule(b: _Builder, entry: _ExportEntry, what: str) -> dict[str, Any] | None:
    """The rule fields of one entry; None (with a warning) when they cannot be read back exactly."""
    match = _ROUTE_VALUE.fullmatch(entry.value)
    assert match is not None
    code, age, target = int(match.group(1)), match.group(2), match.group(3)
    permanent = TABLE[code].permanent
    if age == "-" and permanent:
        b.warn(entry.line, _EXPORT_CODE, f"{what}: a permanent redirect has a max-age in the export: skipped",
               name="cache")
        return None
    cache = None if age == "-" or (permanent and int(age) == DEFAULT_PERMANENT_MAX_AGE) else int(age)
    if len(entry.ci) > 1:
        b.warn(entry.line, _EXPORT_CODE, f"{what}: the maps of different request methods disagree on whether it "
               "ignores case: read as case-insensitive", name="case_insensitive")
    data: dict[str, Any] = {"status": code, "cache": cache, "case_insensitive": True if True in entry.ci else None}
    if entry.path is not None:
        data["from"] = entry.path.source
        groups = entry.path.groups
    else:
        assert entry.regex is not None
        scanned = _named_groups(entry.regex)
        if scanned is None:
            b.warn(entry.line, _EXPORT_CODE, f"{what}: cannot read the regex (unbalanced brackets): skipped",
                   name="from_regex")
            return None
        data["from_regex"], names = scanned
        groups = {n: "{" + name + "}" for n, name in enumerate(names, 1)}
    read = _export_target(target, groups)
    if isinstance(read, str):
        b.warn(entry.line, _EXPORT_CODE, f"{what}: {read}: skipped", name="to")
        return None
    data["to"], data["query"] = read
    return data


def _export_target(target: str, groups: dict[int, str]) -> tuple[str, str | None] | str:
    """(to, query) from an exported target (`$N` for captures, the query variables the export
    appends for `query: keep`), or why it cannot be read back."""
    pieces: list[str] = []
    query_at: int | None = None
    and_args = False
    pos = 0
    for m in _TARGET_TOKEN.finditer(target):
        pieces.append(target[pos : m.start()])
        pos = m.end()
        found = m.group()
        if found == "${redirectory_dollar}":
            pieces.append("$")
        elif found in _QUERY_VARIABLES:
            if query_at is not None:
                return "the request's query is appended twice"
            query_at, and_args = len(pieces), found == _QUERY_VARIABLES[1]
        elif m.group(1) is not None:
            if int(m.group(1)) not in groups:
                return f"{found} refers to no capture of the key"
            if query_at is not None:
                return f"{found} stands after the request's query"
            pieces.append(groups[int(m.group(1))])
        else:
            return f"{found or '$'} is not a variable that `rules export --format nginx` writes"
    pieces.append(target[pos:])
    if query_at is None:
        return "".join(pieces), "drop"
    before, rest = "".join(pieces[:query_at]), "".join(pieces[query_at:])
    if rest and not rest.startswith("#"):
        return "the request's query is appended in the middle of the target"
    if ("?" in before) != and_args:
        return "the request's query is not appended as the export appends it (`&` after a query, `?` without)"
    return before + rest, None
