"""Importers for foreign redirect configurations: nginx, Apache and Netlify `_redirects`.

Pure (no I/O): text in, `(RuleSet, list[Problem])` out, and never raises on any input. Each
importer converts what it can into rule mappings and runs them through the same field checks
as a rule file (`parsing.rule_from_mapping`); what it cannot convert is skipped with a warning
that names the line and says what would work instead. Checks across rules (loops, overlaps,
allowed hosts) are the validator's, as for any rule file (`rulefile.read_rule_file`).

Every importer:
- turns a 302 into a 307 (temporary, same method and body) with a warning per rule
  (code `status.302-converted`): 302 is refused by redirectory; use 303 instead when the
  original redirect sent a client from a POST to its result;
- keeps 301, 303, 307 and 308, and skips 410 and any other status with a warning;
- turns `$1`..`$9` in a target into named groups: the regex's capturing groups are rewritten
  as `(?P<g1>...)`, `(?P<g2>...)` (named groups keep their names) and `$N` becomes `{gN}`.

nginx (`load_nginx`):
- `server { server_name a.example; ... }` with exactly one plain name makes its rules
  host-specific (`//a.example/...`); otherwise they answer any host;
- `location = /exact { return CODE URL; }` → an exact rule;
- `location /prefix { return CODE URL; }` → `/prefix/{rest:path}` → URL (a static URL: nginx's
  prefix also matches `/prefixes`, which a rule cannot express); `$request_uri` in URL becomes
  the request path (`/prefix/{rest}`, query kept), `$uri` the same with the query dropped;
  a `return` directly in `server { }` is the prefix `/`;
- `location ~ REGEX` / `location ~* REGEX` (case-insensitive) with `return CODE URL` → a regex rule;
- `rewrite REGEX REPLACEMENT permanent|redirect;` → a regex rule (301 / 302→307); a replacement
  starting with http(s):// and no flag is a 302; `last`/`break` rewrites are internal (skipped
  with a warning); a replacement ending in `?` drops the request's query;
- `map $uri $var { /a /b; ~regex /c/$1; }` used by `return CODE $var;` (usually inside
  `if ($var) { ... }`) → one rule per entry (`default` and `hostnames` are ignored);
- the maps of our own export (`rules export --format nginx`) → the exported rules again, methods
  included: each distinct entry of a precedence step is one rule, whose methods are those of the
  classes of methods whose maps hold it (see `_read_own_export`); what does not read back exactly
  is skipped with a warning;
- other variables (`$host`, `$scheme`, `$args`...) in a target, `return` inside other `if`
  blocks, named locations, and `return`s with a non-redirect status: skipped (a warning for
  those that redirect). Other directives are ignored silently.

Apache (`load_apache`): `Redirect [status] /path URL` (a prefix match: exact `/path` → URL plus
`/path/{rest:path}` → `URL/{rest}`; status permanent|temp|seeother|gone or a number, default
302), `RedirectPermanent`, `RedirectTemp`, `RedirectMatch [status] REGEX URL`, and `RewriteRule
PATTERN SUBSTITUTION [R=CODE,...]` (only with `R`; `R` alone is 302; `NC` → case-insensitive;
`QSD` → query dropped; a per-directory pattern such as `^old/` gets its leading slash, `^/old/`,
and a relative substitution goes under `RewriteBase`, `/` by default). `Redirect` URLs are literal.
A RewriteRule that follows `RewriteCond` lines is skipped with a warning (conditions cannot be
expressed). `<VirtualHost>` with one `ServerName` and no `ServerAlias` makes rules host-specific;
rules inside `<Location>`, `<Directory>`, `<If>`... are skipped with a warning.

Netlify (`load_netlify`): `FROM TO [STATUS][!]` per line; `*` at the end of FROM →
`{rest:path}`, `:splat` → `{rest}`, `:name` → `{name}`; a FROM that is a full URL makes the rule
host-specific; default status 301; `!` (force) is accepted (redirectory always redirects);
200 (rewrite), 404 (custom page) and query or condition parameters are skipped with a warning.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import quote

from redirectory.rules.matcher import compile_rule
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.parsing import loads, rule_from_mapping
from redirectory.rules.patterns import PatternError, parse_source, valid_host
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, TABLE

IMPORT_FORMATS: tuple[str, ...] = ("yaml", "json", "csv", "nginx", "apache", "netlify")
FOREIGN_FORMATS: tuple[str, ...] = ("nginx", "apache", "netlify")

_KEPT = frozenset({301, 303, 307, 308})
_GROUP_REF = re.compile(r"\$(?:\{([0-9])\}|([0-9]))")
_VARIABLE = re.compile(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# -- public API ----------------------------------------------------------------------------------
def load_any(text: str, fmt: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Parse `text` in any import format: yaml/json/csv (rule files) or nginx/apache/netlify."""
    if fmt == "yaml":
        return loads(text, "yaml", source)
    if fmt == "json":
        return loads(text, "json", source)
    if fmt == "csv":
        return loads(text, "csv", source)
    loader = _LOADERS.get(fmt)
    if loader is None:
        return RuleSet(), [
            Problem(
                "error",
                "file",
                f"unknown import format {fmt!r}: use one of {', '.join(IMPORT_FORMATS)}",
                code="format",
                source=source,
            )
        ]
    return loader(text, source)


def load_nginx(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in an nginx configuration (see the module docstring for what maps)."""
    return _guarded(_load_nginx, text, source)


def load_apache(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in an Apache configuration or `.htaccess` file."""
    return _guarded(_load_apache, text, source)


def load_netlify(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a Netlify `_redirects` file."""
    return _guarded(_load_netlify, text, source)


def detect_import_format(name: str) -> str | None:
    """The foreign format a file name implies (`_redirects`, `.htaccess`), else None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base == "_redirects":
        return "netlify"
    if base == ".htaccess" or base.endswith(".htaccess"):
        return "apache"
    return None


# -- shared --------------------------------------------------------------------------------------
_Loader = Callable[[str, str], tuple[RuleSet, list[Problem]]]


def _guarded(loader: Callable[[_Builder, str], None], text: str, source: str) -> tuple[RuleSet, list[Problem]]:
    builder = _Builder(source)
    try:
        if text.startswith("\ufeff"):
            text = text[1:]
        loader(builder, text)
    except Exception as exc:  # noqa: BLE001 - last resort: an importer bug must not crash the caller
        builder.problems.append(
            Problem(
                "error",
                "file",
                f"cannot read the file: internal error {type(exc).__name__}: {exc}",
                code="internal",
                source=source,
            )
        )
    return builder.result()


@dataclass
class _Builder:
    source: str
    rules: list[Rule] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    count: int = 0
    order: list[tuple[int, ...]] = field(default_factory=list)  # where each rule goes in the result

    def warn(self, line: int | None, code: str, message: str, name: str = "rules") -> None:
        self.problems.append(
            Problem("warning", name, f"line {line}: {message}", line=line, code=code, source=self.source)
        )

    def status(self, code: int, line: int, what: str, post_hint: bool = True) -> int | None:
        """The rule status for a foreign status (302 → 307 with a warning), None to skip."""
        if code in _KEPT:
            return code
        if code == 302:
            hint = (
                "; if it sent a client from a POST to its result, use 303 instead"
                if post_hint
                else ""
            )
            self.warn(
                line,
                "status.302-converted",
                f"{what}: 302 became 307 (temporary, the client repeats the same method and body); "
                f"redirectory never sends 302{hint}",
                name="status",
            )
            return 307
        if code == 410:
            self.warn(
                line,
                "import.status-skipped",
                f"{what}: 410 Gone is not a redirect: skipped "
                "(redirectory answers 404 for paths no rule matches)",
                name="status",
            )
            return None
        self.warn(
            line,
            "import.status-skipped",
            f"{what}: status {code} is not a redirect redirectory can send: skipped "
            "(use 301 or 308 for a permanent move, 303 or 307 for a temporary one)",
            name="status",
        )
        return None

    def add(self, line: int, data: dict[str, Any], order: tuple[int, ...] | None = None) -> None:
        """Check and add one rule; it goes in file order (`line`), or by `order` when given."""
        clean = {k: v for k, v in data.items() if v is not None}
        index = self.count
        self.count += 1
        rule, found = rule_from_mapping(
            clean,
            line=line,
            field_lines=dict.fromkeys(clean, line),
            index=index,
            source=self.source,
            position=index,
        )
        self.problems.extend(found)
        if rule is not None:
            self.rules.append(rule)
            self.order.append((*(order or (line,)), index))

    def result(self) -> tuple[RuleSet, list[Problem]]:
        # in file order (map entries where the map is written), as a rule file would give them
        ordered = [rule for _order, rule in sorted(zip(self.order, self.rules, strict=True), key=lambda o: o[0])]
        rules = tuple(replace(r, position=i) for i, r in enumerate(ordered))
        self.problems.sort(key=lambda p: p.line if p.line is not None else 0)
        return RuleSet(rules), self.problems


def _named_groups(regex: str) -> tuple[str, list[str]] | None:
    """`regex` with unnamed capturing groups named g1, g2..., and the name of each group by
    number. None when the regex cannot be scanned (unbalanced brackets)."""
    out: list[str] = []
    names: list[str] = []
    i = 0
    n = len(regex)
    in_class = False
    while i < n:
        c = regex[i]
        if c == "\\":
            out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if c == "]":
                in_class = False
            out.append(c)
            i += 1
            continue
        if c == "[":
            in_class = True
            out.append(c)
            i += 1
            # a ']' first in a class (or after '^') is literal
            if regex.startswith("^", i):
                out.append("^")
                i += 1
            if regex.startswith("]", i):
                out.append("]")
                i += 1
            continue
        if c == "(":
            if regex.startswith("(?P<", i) or (regex.startswith("(?<", i) and not regex.startswith("(?<=", i)
                                              and not regex.startswith("(?<!", i)):
                start = i + (4 if regex.startswith("(?P<", i) else 3)
                end = regex.find(">", start)
                if end == -1:
                    return None
                name = regex[start:end]
                names.append(name)
                out.append(f"(?P<{name}>")
                i = end + 1
                continue
            if regex.startswith("(?'", i):
                end = regex.find("'", i + 3)
                if end == -1:
                    return None
                name = regex[i + 3 : end]
                names.append(name)
                out.append(f"(?P<{name}>")
                i = end + 1
                continue
            if regex.startswith("(?", i):
                out.append(c)
                i += 1
                continue
            names.append(f"g{len(names) + 1}")
            out.append(f"(?P<{names[-1]}>")
            i += 1
            continue
        out.append(c)
        i += 1
    if in_class:
        return None
    return "".join(out), names


def _regex_rule(
    b: _Builder, line: int, what: str, regex: str, target: str, status: int, *, case_insensitive: bool = False,
    query: str | None = None,
) -> None:
    """Add a regex rule whose target may use $1..$9; warn and skip what cannot be converted."""
    scanned = _named_groups(regex)
    if scanned is None:
        b.warn(line, "import.regex", f"{what}: cannot read the regex {regex!r} (unbalanced brackets): skipped",
               name="from_regex")
        return
    converted, names = scanned
    problem: list[str] = []

    def group(m: re.Match[str]) -> str:
        number = int(m.group(1) or m.group(2))
        if number == 0 or number > len(names):
            problem.append(m.group(0))
            return m.group(0)
        return "{" + names[number - 1] + "}"

    to = _GROUP_REF.sub(group, target)
    if problem:
        b.warn(line, "import.group", f"{what}: {problem[0]} in the target refers to no group of the regex "
               f"(it has {len(names)}): skipped", name="to")
        return
    b.add(line, {"from_regex": converted, "to": to, "status": status,
                 "case_insensitive": True if case_insensitive else None, "query": query})


def _path(text: str) -> str:
    """A literal path from a foreign file as a `from` path: characters a pattern cannot hold raw
    (space, braces, non-ASCII...) percent-encoded; existing escapes kept."""
    return quote(text, safe="/:@!$&'()*+,;=-._~%")


def _variables(text: str) -> list[str]:
    return [m.group(0) for m in _VARIABLE.finditer(text)]


# -- nginx ---------------------------------------------------------------------------------------
@dataclass
class _Directive:
    name: str
    args: list[str]
    line: int
    block: list[_Directive] | None = None


_NGINX_REDIRECT_CODES = frozenset({300, 301, 302, 303, 304, 305, 307, 308, 410})


def _nginx_tokens(text: str, b: _Builder) -> list[tuple[str, int, bool]]:
    """(token, line, quoted) for an nginx configuration; `{`, `}` and `;` are their own tokens."""
    tokens: list[tuple[str, int, bool]] = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v":
            i += 1
        elif c == "#":
            end = text.find("\n", i)
            i = n if end == -1 else end
        elif c in "{};":
            tokens.append((c, line, False))
            i += 1
        elif c in "\"'":
            start_line = line
            j = i + 1
            buf: list[str] = []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    buf.append(nxt if nxt in "\"'\\" else "\\" + nxt)
                    line += nxt == "\n"
                    j += 2
                    continue
                line += text[j] == "\n"
                buf.append(text[j])
                j += 1
            if j >= n:
                b.warn(start_line, "import.syntax", "a quote opened here is never closed: the rest of the file "
                       "is ignored", name="file")
                return tokens
            tokens.append(("".join(buf), start_line, True))
            i = j + 1
        else:
            j = i
            buf = []
            while j < n and text[j] not in " \t\r\n\f\v;{}\"'":
                if text[j] == "\\" and j + 1 < n:
                    buf.append(text[j : j + 2])
                    j += 2
                    continue
                if text[j] == "$" and j + 1 < n and text[j + 1] == "{":  # ${var}
                    close = text.find("}", j)
                    if close != -1 and re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", text[j : close + 1]):
                        buf.append(text[j : close + 1])
                        j = close + 1
                        continue
                buf.append(text[j])
                j += 1
            tokens.append(("".join(buf), line, False))
            i = j
    return tokens


def _nginx_parse(text: str, b: _Builder) -> list[_Directive]:
    tokens = _nginx_tokens(text, b)
    root: list[_Directive] = []
    stack: list[tuple[list[_Directive], int]] = [(root, 0)]
    current: list[str] = []
    start = 0
    for tok, line, quoted in tokens:
        if not quoted and tok == ";":
            if current:
                stack[-1][0].append(_Directive(current[0], current[1:], start))
            current = []
        elif not quoted and tok == "{":
            block: list[_Directive] = []
            if current:
                stack[-1][0].append(_Directive(current[0], current[1:], start, block))
            else:
                stack[-1][0].append(_Directive("", [], line, block))
            stack.append((block, line))
            current = []
        elif not quoted and tok == "}":
            if current:
                b.warn(start, "import.syntax", f"`{current[0]}` is not ended by `;`: ignored", name="file")
                current = []
            if len(stack) == 1:
                b.warn(line, "import.syntax", "`}` closes no block: ignored", name="file")
            else:
                stack.pop()
        else:
            if not current:
                start = line
            current.append(tok)
    if current:
        b.warn(start, "import.syntax", f"`{current[0]}` is not ended by `;`: ignored", name="file")
    for _block, opened in stack[1:]:
        b.warn(opened, "import.syntax", "the block opened here is never closed with `}`", name="file")
    return root


@dataclass
class _NginxMap:
    source: str
    entries: list[tuple[str, str, int]]
    line: int
    default: str | None = None


@dataclass
class _NginxContext:
    host: str | None = None
    location: tuple[str, str] | None = None  # (modifier, path or regex); modifier "" for prefix


def _load_nginx(b: _Builder, text: str) -> None:
    tree = _nginx_parse(text, b)
    maps: dict[str, _NginxMap] = {}
    _collect_maps(tree, maps)
    used: set[str] = set()
    if _read_own_export(b, maps):
        # the `return`s of our own export read maps chained on the route maps read above
        used.update(name for name in maps if name.startswith("$redirectory_"))
    _nginx_walk(b, tree, _NginxContext(), maps, used)


def _collect_maps(block: list[_Directive], maps: dict[str, _NginxMap]) -> None:
    for d in block:
        if d.name == "map" and d.block is not None and len(d.args) == 2:
            entries = []
            default = None
            for e in d.block:
                if e.name == "default" and len(e.args) == 1:
                    default = e.args[0]
                if e.name in ("default", "hostnames", "volatile", "include") or e.block is not None:
                    continue
                if len(e.args) == 1:
                    entries.append((e.name, e.args[0], e.line))
            maps[d.args[1]] = _NginxMap(d.args[0], entries, d.line, default)
        elif d.block is not None:
            _collect_maps(d.block, maps)


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


def _nginx_walk(
    b: _Builder, block: list[_Directive], ctx: _NginxContext, maps: dict[str, _NginxMap], used: set[str],
    in_if: bool = False,
) -> None:
    for d in block:
        if d.name == "server" and d.block is not None:
            names = [a for d2 in d.block if d2.name == "server_name" for a in d2.args]
            host = None
            if len(names) == 1 and valid_host(names[0].lower()):
                host = names[0].lower()
            _nginx_walk(b, d.block, _NginxContext(host=host), maps, used)
        elif d.name == "location" and d.block is not None:
            location = _nginx_location(b, d)
            if location is not None:
                _nginx_walk(b, d.block, _NginxContext(ctx.host, location), maps, used)
        elif d.name == "if" and d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, in_if=True)
        elif d.name in ("map", "upstream", "events", "types", "geo", "split_clients", "limit_except"):
            continue
        elif d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, in_if)
        elif d.name == "return":
            _nginx_return(b, d, ctx, maps, used, in_if)
        elif d.name == "rewrite":
            _nginx_rewrite(b, d, ctx, in_if)


def _nginx_location(b: _Builder, d: _Directive) -> tuple[str, str] | None:
    args = d.args
    if len(args) == 2 and args[0] in ("=", "~", "~*", "^~"):
        return args[0], args[1]
    if len(args) == 1:
        arg = args[0]
        if arg.startswith("@"):
            return None  # named location: reached only by internal redirects
        for mod in ("~*", "~", "^~", "="):
            if arg.startswith(mod) and len(arg) > len(mod):
                return mod, arg[len(mod):]
        return "", arg
    return None


def _nginx_return(
    b: _Builder, d: _Directive, ctx: _NginxContext, maps: dict[str, _NginxMap], used: set[str], in_if: bool
) -> None:
    args = d.args
    if len(args) == 1 and re.match(r"(?i)https?://|\$scheme", args[0]):
        code, url = 302, args[0]
    elif len(args) == 2 and args[0].isdigit() and len(args[0]) <= 4:
        code, url = int(args[0]), args[1]
    elif len(args) == 1 and args[0] == "410":
        b.status(410, d.line, "`return 410`")
        return
    else:
        if args and args[0].isdigit() and int(args[0][:4]) in _NGINX_REDIRECT_CODES:
            b.warn(d.line, "import.unsupported", f"`return {' '.join(args)}` has no target URL: skipped")
        return
    if code not in _NGINX_REDIRECT_CODES:
        return  # return 200 "text", 403, 404...: not a redirect
    what = f"return {code} {url}"
    keep_args = "$is_args$args" in url
    url = url.replace("$is_args$args", "")
    # `return CODE $var` with `map ... $var { ... }`: one rule per map entry
    if url in maps or (url.startswith("${") and url[2:-1] in maps):
        name = url if url in maps else "$" + url[2:-1]
        _nginx_map_rules(b, d, code, maps[name], ctx, used, name)
        return
    if re.fullmatch(r"\$redirectory_30[1378]", url):
        if _RETURN_FILE not in used:  # once per file
            used.add(_RETURN_FILE)
            b.warn(d.line, _EXPORT_CODE, f"`{what}` reads the maps of `rules export --format nginx`, which are in "
                   "its other file: import redirectory-map.conf (this file holds no rules)")
        return
    if in_if:
        b.warn(d.line, "import.conditional", f"`{what}` is inside `if (...)`: a condition cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    loc = ctx.location or ("", "/")
    mod, where = loc
    if mod in ("~", "~*"):
        if ctx.host:
            b.warn(d.line, "import.host", f"`{what}`: a regex rule answers every host, not only {ctx.host}: "
                   "check it", name="from_regex")
        if _unknown_variables(b, d.line, what, url, allow_groups=True):
            return
        _regex_rule(b, d.line, f"`{what}`", where, url, status, case_insensitive=mod == "~*")
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    if not where.startswith("/"):
        b.warn(d.line, "import.unsupported", f"`{what}`: location {where!r} is not a path: skipped", name="from")
        return
    query: str | None = None
    if mod == "=":
        exact = _nginx_uri_target(url, where, keep_args)
        if exact is None:
            _unknown_variables(b, d.line, what, url, allow_groups=False)
            return
        to, query = exact
        b.add(d.line, {"from": prefix + _path(where), "to": to, "status": status, "query": query})
        return
    # prefix location (also ^~ and the server level): everything under it
    base = where.rstrip("/")
    pattern = f"{prefix}{_path(base)}/{{rest:path}}"
    if "$request_uri" in url or "$uri" in url:
        converted = _nginx_uri_target(url, base + "/{rest}", keep_args)
        if converted is None:
            _unknown_variables(b, d.line, what, url, allow_groups=False)
            return
        to, query = converted
    else:
        if _unknown_variables(b, d.line, what, url, allow_groups=False):
            return
        to = url
    b.add(d.line, {"from": pattern, "to": to, "status": status, "query": query})


def _nginx_uri_target(url: str, path: str, keep_args: bool) -> tuple[str, str | None] | None:
    """`url` with $request_uri (query kept) or $uri (query dropped unless $is_args$args
    followed) replaced by `path`; None when another variable remains."""
    query: str | None = None
    out = url
    if "$request_uri" in out or "${request_uri}" in out:
        out = out.replace("${request_uri}", path).replace("$request_uri", path)
    if re.search(r"\$\{?uri\b", out):
        out = re.sub(r"\$\{uri\}|\$uri\b", path, out)
        if keep_args or "?$args" in out or "?$query_string" in out:
            out = out.replace("?$args", "").replace("?$query_string", "")
        else:
            query = "drop"
    if _variables(out):
        return None
    return out, query


def _unknown_variables(b: _Builder, line: int, what: str, url: str, *, allow_groups: bool) -> bool:
    found = [v for v in _variables(url)]
    if not allow_groups:
        found += [m.group(0) for m in _GROUP_REF.finditer(url)]
    if found:
        b.warn(line, "import.variable", f"`{what}`: the target uses {found[0]}, which a rule cannot express "
               "(rules know the path's placeholders and regex groups only): skipped", name="to")
        return True
    return False


def _nginx_map_rules(
    b: _Builder, d: _Directive, code: int, m: _NginxMap, ctx: _NginxContext, used: set[str], name: str
) -> None:
    if name in used:
        return
    used.add(name)
    if m.source not in ("$uri", "$request_uri", "$document_uri"):
        b.warn(m.line, "import.unsupported", f"`map {m.source} {name}` maps {m.source}, not the path ($uri): "
               "skipped")
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    for key, value, line in m.entries:
        what = f"map entry `{key} {value}`"
        status = b.status(code, line, what)
        if status is None:
            continue
        if key.startswith("~"):
            ci = key.startswith("~*")
            regex = key[2:] if ci else key[1:]
            if _unknown_variables(b, line, what, value, allow_groups=True):
                continue
            _regex_rule(b, line, what, regex, value, status, case_insensitive=ci)
            continue
        if key.startswith("\\"):
            key = key[1:]
        if not key.startswith("/") or (m.source == "$request_uri" and "?" in key):
            b.warn(line, "import.unsupported", f"{what}: the key is not a plain path: skipped", name="from")
            continue
        if _unknown_variables(b, line, what, value, allow_groups=False):
            continue
        b.add(line, {"from": prefix + _path(key), "to": value, "status": status})


def _nginx_rewrite(b: _Builder, d: _Directive, ctx: _NginxContext, in_if: bool) -> None:
    args = d.args
    if len(args) < 2 or len(args) > 3:
        b.warn(d.line, "import.unsupported", "`rewrite` needs REGEX REPLACEMENT [flag]: skipped")
        return
    regex, replacement = args[0], args[1]
    flag = args[2] if len(args) == 3 else None
    what = f"rewrite {' '.join(args)}"
    absolute = re.match(r"(?i)https?://", replacement) is not None
    if flag == "permanent":
        code = 301
    elif flag == "redirect" or (flag is None and absolute):
        code = 302
    else:
        b.warn(d.line, "import.rewrite", f"`{what}` is an internal rewrite, not a redirect: skipped "
               "(use `permanent` or `redirect` for a redirect)")
        return
    if in_if:
        b.warn(d.line, "import.conditional", f"`{what}` is inside `if (...)`: a condition cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    query = None
    if replacement.endswith("?"):
        replacement = replacement[:-1]
        query = "drop"
    if _unknown_variables(b, d.line, what, replacement, allow_groups=True):
        return
    if ctx.host:
        b.warn(d.line, "import.host", f"`{what}`: a regex rule answers every host, not only {ctx.host}: check it",
               name="from_regex")
    ci = False
    if regex.startswith("(?i)"):
        regex, ci = regex[4:], True
    _regex_rule(b, d.line, f"`{what}`", regex, replacement, status, case_insensitive=ci, query=query)


# -- Apache --------------------------------------------------------------------------------------
_APACHE_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_APACHE_SKIP_CONTAINERS = ("location", "locationmatch", "directory", "directorymatch", "files", "filesmatch",
                           "if", "elseif", "else", "proxy")


def _apache_lines(text: str) -> list[tuple[int, str]]:
    """Logical lines (continuations joined), with the first physical line's number."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(pending).strip()))
        pending = []
    if pending:
        out.append((start, " ".join(pending).strip()))
    return out


def _apache_args(text: str) -> list[str]:
    args: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', text):
        if m.group(1) is not None:
            args.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            args.append(m.group(2))
    return args


def _load_apache(b: _Builder, text: str) -> None:
    containers: list[tuple[str, int, list[str]]] = []  # (name, line, server names)
    conds: list[int] = []
    rewrite_base = "/"
    for line, content in _apache_lines(text):
        if not content or content.startswith("#"):
            continue
        opening = re.fullmatch(r"<\s*([A-Za-z]+)\b([^>]*)>", content)
        if opening:
            containers.append((opening.group(1).lower(), line, []))
            continue
        closing = re.fullmatch(r"</\s*([A-Za-z]+)\s*>", content)
        if closing:
            name = closing.group(1).lower()
            if containers and containers[-1][0] == name:
                containers.pop()
            else:
                b.warn(line, "import.syntax", f"</{closing.group(1)}> closes no open <{closing.group(1)}>: ignored",
                       name="file")
            conds.clear()
            continue
        args = _apache_args(content)
        if not args:
            continue
        directive = args[0].lower()
        args = args[1:]
        if directive in ("servername", "serveralias"):
            for c in reversed(containers):
                if c[0] == "virtualhost":
                    c[2].extend(a if directive == "servername" else "*" + a for a in args)
                    if directive == "serveralias":
                        c[2].append("*")
                    break
            continue
        if directive == "rewritecond":
            conds.append(line)
            continue
        if directive == "rewritebase":
            if len(args) == 1 and args[0].startswith("/"):
                rewrite_base = args[0] if args[0].endswith("/") else args[0] + "/"
            continue
        if directive not in ("redirect", "redirectpermanent", "redirecttemp", "redirectmatch", "rewriterule"):
            continue
        had_conds = bool(conds)
        conds.clear()
        inner = [c for c in containers if c[0] in _APACHE_SKIP_CONTAINERS]
        what = f"`{content}`"
        if inner:
            b.warn(line, "import.container", f"{what} is inside <{inner[-1][0]}> (from line {inner[-1][1]}): "
                   "its condition cannot be expressed as a rule: skipped")
            continue
        host = None
        for c in reversed(containers):
            if c[0] == "virtualhost":
                if len(c[2]) == 1 and valid_host(c[2][0].lower()):
                    host = c[2][0].lower()
                break
        if directive == "rewriterule":
            _apache_rewrite(b, line, what, args, host, had_conds, rewrite_base)
        elif directive == "redirectmatch":
            _apache_redirect_match(b, line, what, args, host)
        else:
            default = {"redirect": 302, "redirectpermanent": 301, "redirecttemp": 302}[directive]
            _apache_redirect(b, line, what, args, host, default, directive == "redirect")


def _apache_status(args: list[str], default: int, allow: bool) -> tuple[int | None, list[str]]:
    if allow and args:
        word = args[0].lower()
        if word in _APACHE_STATUS:
            return _APACHE_STATUS[word], args[1:]
        if word.isdigit() and len(word) == 3:
            return int(word), args[1:]
    return default, args


def _apache_redirect(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, default: int, status_arg: bool
) -> None:
    code, rest = _apache_status(args, default, status_arg)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] /path URL: skipped")
        return
    path, url = rest
    if not path.startswith("/"):
        b.warn(line, "import.unsupported", f"{what}: {path!r} is not a path starting with /: skipped", name="from")
        return
    status = b.status(code, line, what)
    if status is None:
        return
    prefix = f"//{host}" if host else ""  # the URL is literal: `$` is not a variable here
    base = _path(path.rstrip("/"))
    if not path.endswith("/"):
        b.add(line, {"from": prefix + _path(path), "to": url, "status": status})
    b.add(line, {"from": f"{prefix}{base}/{{rest:path}}", "to": url.rstrip("/") + "/{rest}", "status": status})


def _apache_redirect_match(b: _Builder, line: int, what: str, args: list[str], host: str | None) -> None:
    code, rest = _apache_status(args, 302, True)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] REGEX URL: skipped")
        return
    regex, url = rest
    status = b.status(code, line, what)
    if status is None:
        return
    if _unknown_variables(b, line, what, url, allow_groups=True):
        return
    if host:
        b.warn(line, "import.host", f"{what}: a regex rule answers every host, not only {host}: check it",
               name="from_regex")
    _regex_rule(b, line, what, regex, url, status)


def _apache_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, had_conds: bool, rewrite_base: str
) -> None:
    if len(args) < 2:
        b.warn(line, "import.unsupported", f"{what}: expected PATTERN SUBSTITUTION [flags]: skipped")
        return
    pattern, subst = args[0], args[1]
    flags: list[str] = []
    if len(args) >= 3:
        flags = [f.strip() for f in args[2].strip("[]").split(",") if f.strip()]
    code: int | None = None
    ci = False
    query: str | None = None
    for f in flags:
        name, _, value = f.partition("=")
        lname = name.lower()
        if lname in ("r", "redirect"):
            v = value.lower()
            code = _APACHE_STATUS.get(v) or (int(v) if v.isdigit() and len(v) == 3 else 302 if not v else None)
            if code is None:
                b.warn(line, "import.unsupported", f"{what}: R={value} is not a status: skipped", name="status")
                return
        elif lname in ("nc", "nocase"):
            ci = True
        elif lname in ("qsd", "qsdiscard"):
            query = "drop"
        elif lname in ("g", "gone"):
            code = 410
        elif lname in ("f", "forbidden"):
            return
    if code is None:
        if re.match(r"(?i)https?://", subst):
            b.warn(line, "import.rewrite", f"{what}: an absolute substitution without [R] is a 302 redirect in "
                   "Apache but was skipped: add [R=301] (or 307/308) to import it")
        return  # an internal rewrite, not a redirect
    if had_conds:
        b.warn(line, "import.conditional", f"{what} follows RewriteCond lines: conditions cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, line, what)
    if status is None:
        return
    if subst == "-":
        b.warn(line, "import.unsupported", f"{what}: `-` (no substitution) has no target: skipped", name="to")
        return
    if "%{" in subst or re.search(r"%[0-9]", subst):
        b.warn(line, "import.variable", f"{what}: the substitution uses a server variable or RewriteCond "
               "back-reference, which a rule cannot express: skipped", name="to")
        return
    if _unknown_variables(b, line, what, subst, allow_groups=True):
        return
    if subst.endswith("?"):
        subst, query = subst[:-1], "drop"
    if not subst.startswith("/") and not re.match(r"(?i)https?://", subst):
        subst = rewrite_base + subst  # a relative substitution (.htaccess): under RewriteBase
    if pattern.startswith("!"):
        b.warn(line, "import.unsupported", f"{what}: a negated pattern cannot be expressed as a rule: skipped",
               name="from_regex")
        return
    # per-directory (.htaccess) patterns see the path without its leading slash
    if pattern.startswith("^") and not pattern.startswith("^/"):
        pattern = "^/" + pattern[1:]
    if host:
        b.warn(line, "import.host", f"{what}: a regex rule answers every host, not only {host}: check it",
               name="from_regex")
    _regex_rule(b, line, what, pattern, subst, status, case_insensitive=ci, query=query)


# -- Netlify -------------------------------------------------------------------------------------
def _load_netlify(b: _Builder, text: str) -> None:
    for number, raw in enumerate(text.splitlines(), 1):
        content = raw.strip()
        if not content or content.startswith("#"):
            continue
        if " #" in content:
            content = content.split(" #", 1)[0].strip()
        parts = content.split()
        what = f"`{content}`"
        if len(parts) < 2:
            b.warn(number, "import.syntax", f"{what}: expected FROM TO [STATUS]: skipped")
            continue
        source = parts[0]
        index = 1
        while index < len(parts) and "=" in parts[index] and not parts[index].startswith(("/", "http")):
            index += 1
        if index > 1:
            b.warn(number, "import.conditional", f"{what}: query parameter matching ({parts[1]}) cannot be "
                   "expressed as a rule: skipped")
            continue
        if index >= len(parts):
            b.warn(number, "import.syntax", f"{what}: expected FROM TO [STATUS]: skipped")
            continue
        target = parts[index]
        rest = parts[index + 1 :]
        code = 301
        if rest and re.fullmatch(r"[0-9]{3}!?", rest[0]):
            code = int(rest[0][:3])
            rest = rest[1:]
        if rest:
            b.warn(number, "import.conditional", f"{what}: conditions ({' '.join(rest)}) cannot be expressed as a "
                   "rule: skipped")
            continue
        if code in (200, 404):
            kind = "a rewrite (the content is served from TO)" if code == 200 else "a custom 404 page"
            b.warn(number, "import.status-skipped", f"{what}: {code} is {kind}, not a redirect: skipped",
                   name="status")
            continue
        status = b.status(code, number, what)
        if status is None:
            continue
        host = ""
        m = re.match(r"(?i)https?://([^/]+)(/.*)?$", source)
        if m:
            name = m.group(1).lower()
            if not valid_host(name):
                b.warn(number, "import.unsupported", f"{what}: {m.group(1)!r} is not a host name: skipped",
                       name="from")
                continue
            host, source = "//" + name, m.group(2) or "/"
        if not source.startswith("/"):
            b.warn(number, "import.unsupported", f"{what}: FROM must be a path starting with / or a URL: skipped",
                   name="from")
            continue
        segments = source.split("/")
        names: list[str] = []
        converted: list[str] = []
        bad = False
        for i, seg in enumerate(segments):
            if seg == "*":
                if i != len(segments) - 1:
                    bad = True
                    break
                converted.append("{splat:path}")
                names.append("splat")
            elif seg.startswith(":") and _NAME.fullmatch(seg[1:]):
                converted.append("{" + seg[1:] + "}")
                names.append(seg[1:])
            elif "*" in seg:
                bad = True
                break
            else:
                converted.append(_path(seg))
        if bad:
            b.warn(number, "import.unsupported", f"{what}: `*` is only supported as the last segment (/path/*): "
                   "skipped", name="from")
            continue
        pattern = "/".join(converted).replace("{splat:path}", "{rest:path}")
        if ":splat" in target and "splat" not in names:
            b.warn(number, "import.unsupported", f"{what}: TO uses :splat but FROM has no `*` to fill it: skipped",
                   name="to")
            continue

        def placeholder(m: re.Match[str], names: list[str] = names) -> str:
            word = m.group(1)
            if word == "splat" and "splat" in names:
                return "{rest}"
            return "{" + word + "}" if word in names and word != "splat" else m.group(0)

        # only in the path, query and fragment: never in "https://host:port"
        split = re.match(r"(?i)(https?://[^/?#]*)?(.*)$", target, re.DOTALL)
        assert split is not None
        to = (split.group(1) or "") + re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", placeholder, split.group(2))
        b.add(number, {"from": host + pattern, "to": to, "status": status})


_LOADERS: dict[str, _Loader] = {"nginx": load_nginx, "apache": load_apache, "netlify": load_netlify}
