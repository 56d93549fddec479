"""Apache: `Redirect*`, `RedirectMatch` and `RewriteRule ... [R]` as rules (docs/migrating.md).

Apache's order is reproduced: mod_rewrite runs before mod_alias (in server and per-directory
context alike), RewriteRules apply in file order, and the first `Redirect`/`RedirectMatch` that
matches wins. A `Redirect` stays a path pattern unless a regex rule Apache tries first might
match under its path; then it becomes a regex rule, and regex rules go by `priority` (RewriteRules
above mod_alias when they overlap), then file order.

Where Apache's behaviour needs saying (each checked against a real apache2):
- `RewriteMap NAME int:tolower` (defined anywhere in the file: Apache reads maps before any request)
  with `${NAME:$N}` in a substitution: a rule cannot lower-case, so the rule is imported for the
  paths without a capital letter A-Z only (for those Apache sends the same redirect) with a warning;
  it needs a pattern anchored at both ends with no capital, class of capitals, inline flag or [NC]
  of its own, else it is skipped with a warning. Other maps, and maps not defined in the file (one
  defined in a file that `Include`s it), are skipped with a warning naming the map.
- `RewriteCond %{REQUEST_FILENAME}|%{REQUEST_URI} REGEX` (server context) that every match of the
  rule's pattern satisfies (literal parts joined by `.*`, in order: `^/a.*html$`, `.*minutes-.*`,
  or the same regex text first, `^/c++-sig`) is dropped; one narrower than the pattern (`^/peps/+$`
  before `^/peps`) becomes the rule's regex when the substitution uses no `$N`.
- `RewriteRule PATTERN - [L]` (or `[END]`) is an exclusion: its paths are served as they are and the
  RewriteRules after it do not run for them; mod_alias still does (it runs after mod_rewrite whatever
  that did). It becomes a rule that redirects nothing (status 404), ordered by `_in_apache_order`.
- PCRE's possessive `c++` (RE2 has none) is read as `c+` where that changes no match (a literal
  character followed by another one or the end). The regex readings are in `_apache_regex.py`.
- `Include` and `IncludeOptional` (with `read`, see `load_apache_included`; `_apache_syntax.py`) are read in place, as
  Apache reads one configuration: the `Define`s and `RewriteMap`s before them apply to the lines
  they include, and those included define for the lines after. A missing `Include` (Apache refuses
  to start) is a warning naming it and the rest imports; a missing `IncludeOptional` is nothing, as
  in Apache. Without `read`, an `Include` is a warning naming the file (import it too).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from redirectory.rules.importers._apache_regex import (
    _as_pattern,
    _capital_free,
    _implied,
    _literal_prefix,
    _lowered,
    _possessive_as_greedy,
)
from redirectory.rules.importers._apache_syntax import (
    _INCLUDES,
    _apache_args,
    _apache_lines,
    _defined,
    _included_lines,
    _rewrite_maps,
)
from redirectory.rules.importers._common import (
    _KEPT,
    _Builder,
    _guarded,
    _named_groups,
    _path,
    _regex_rule,
    _unknown_variables,
)
from redirectory.rules.importers._nginx_syntax import IncludeReader
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.patterns import valid_host
from redirectory.semantics import NOT_REDIRECTED

# -- Apache --------------------------------------------------------------------------------------
_APACHE_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_APACHE_SKIP_CONTAINERS = ("location", "locationmatch", "directory", "directorymatch", "files", "filesmatch",
                           "if", "elseif", "else", "proxy")


@dataclass
class _Deferred(_Builder):
    """A builder that holds the rules `_regex_rule` adds (warnings go to the real builder's list),
    so they are added once Apache's order between the modules is known."""

    held: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def add(self, line: int, data: dict[str, Any], order: tuple[int, ...] | None = None) -> None:
        self.held.append((line, data))


@dataclass
class _Redirect:
    """A `Redirect` whose form (path pattern or regex) waits for the rules Apache tries before it."""

    line: int
    what: str
    path: str  # as a `from` path (percent-encoded)
    url: str
    status: int
    host: str | None


@dataclass
class _Regex:
    """A regex rule held until the priorities are known; `prefix` is the literal text every path it
    matches starts with (None: any path)."""

    line: int
    data: dict[str, Any]
    prefix: str | None
    case_insensitive: bool
    stops: bool = False  # `RewriteRule PATTERN - [L]`: a rule that redirects nothing (`_exclusion`)


def load_apache_included(
    text: str, source: str, read: IncludeReader, origins: list[str] | None = None
) -> tuple[RuleSet, list[Problem]]:
    """`load_apache` that reads the files `Include`d (`read`: see `IncludeReader`; a name that
    matches nothing is an `IncludeMissing`), in place as Apache does. Problems in an included file
    name that file and its line; `origins` receives the file of each rule."""
    return _guarded(lambda b, t: _load_apache(b, t, read), text, source, origins)


def _load_apache(b: _Builder, text: str, read: IncludeReader | None = None) -> None:
    containers: list[tuple[str, int, list[str]]] = []  # (name, line, server names)
    conds: list[tuple[int, list[str]]] = []
    rewrite_base = "/"
    per_directory = b.source.replace("\\", "/").rsplit("/", 1)[-1].lower().endswith("htaccess")
    rewrites: list[_Regex] = []
    rewrite_patterns: list[tuple[int, dict[str, Any]]] = []  # host-specific RewriteRules (patterns)
    aliases: list[_Redirect | _Regex] = []  # mod_alias, in file order
    stoppers: list[tuple[str, str | None, int]] = []  # `Redirect gone /x` and co.: Apache answers, no rule
    lines = _apache_lines(text)
    # Apache refuses `Include` in .htaccess (500 for every request under it): not read there
    included = read is not None and not per_directory
    if included and read is not None and any(c.lower().startswith(_INCLUDES) for _, c in lines):
        lines = _included_lines(b, lines, read)
    maps = _rewrite_maps(lines)
    defines: dict[str, str] = {}  # `Define NAME VALUE`: `${NAME}` on the lines after it
    for line, content in lines:
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
        content = _defined(b, line, content, defines)
        args = _apache_args(content)
        if not args:
            continue
        directive = args[0].lower()
        args = args[1:]
        if directive == "define" and args:
            defines[args[0]] = args[1] if len(args) > 1 else ""
            continue
        if directive == "undefine" and args:
            defines.pop(args[0], None)
            continue
        if directive in ("servername", "serveralias"):
            for c in reversed(containers):
                if c[0] == "virtualhost":
                    c[2].extend(a if directive == "servername" else "*" + a for a in args)
                    if directive == "serveralias":
                        c[2].append("*")
                    break
            continue
        if directive == "rewritecond":
            conds.append((line, args))
            continue
        if directive == "rewritebase":
            if len(args) == 1 and args[0].startswith("/"):
                rewrite_base = args[0] if args[0].endswith("/") else args[0] + "/"
            continue
        if directive in _INCLUDES and included:
            continue  # read in place (`_included_lines`)
        if directive in _INCLUDES and args:
            b.warn(line, "import.include", f"`{content}`: the included file is not read: import it too (in "
                   "Apache its rules come here, before the lines after this one)", name="file")
            continue
        if directive not in ("redirect", "redirectpermanent", "redirecttemp", "redirectmatch", "rewriterule"):
            continue
        rule_conds = list(conds)
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
        held = _Deferred(b.source, problems=b.problems)
        if directive == "rewriterule":
            _apache_rewrite(held, line, what, args, host, rule_conds, rewrite_base, per_directory, maps,
                            any(r.stops for r in rewrites))
            for at, data in held.held:
                if "from" in data:
                    rewrite_patterns.append((at, data))
                else:
                    rewrites.append(_Regex(at, data, _literal_prefix(data["from_regex"]),
                                           bool(data.get("case_insensitive")), data["status"] == NOT_REDIRECTED))
        elif directive == "redirectmatch":
            _apache_redirect_match(held, line, what, args, host)
            aliases.extend(_Regex(at, data, _literal_prefix(data["from_regex"]), False) for at, data in held.held)
        else:
            default = {"redirect": 302, "redirectpermanent": 301, "redirecttemp": 302}[directive]
            found = _apache_redirect(b, line, what, args, host, default, directive == "redirect")
            if isinstance(found, _Redirect):
                aliases.append(found)
            elif found is not None:
                stoppers.append((found, host, line))
    _emit(b, rewrites, rewrite_patterns, aliases, stoppers)


def _emit(b: _Builder, rewrites: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
          aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]]) -> None:
    """Add the rules so that the one Apache uses wins: mod_rewrite before mod_alias, each in file order."""
    # an exclusion keeps paths from the RewriteRules after it, not from mod_alias: not a reason to
    # make a `Redirect` a regex rule (its path pattern comes before every regex rule)
    earlier: list[tuple[str | None, bool]] = [(r.prefix, r.case_insensitive) for r in rewrites if not r.stops]
    alias_regexes: list[_Regex] = []
    redirects: list[_Redirect] = []  # those already placed, for the first-match check
    for item in aliases:
        if isinstance(item, _Regex):
            earlier.append((item.prefix, False))
            alias_regexes.append(item)
            continue
        shadow = next((r for r in redirects if r.host == item.host and _covers(r.path, item.path)
                       and r.path != item.path), None)
        stop = next((s for s in stoppers if s[1] == item.host and s[2] < item.line and _covers(s[0], item.path)),
                    None)
        if shadow is not None or stop is not None:
            other = shadow.line if shadow is not None else stop[2] if stop is not None else 0
            b.warn(item.line, "import.shadowed", f"{item.what}: never used: the `Redirect` at line {other} "
                   "matches every path this one does and Apache uses the first that matches: skipped")
            continue
        redirects.append(item)
        if any(_may_overlap(prefix, ci, item.path) for prefix, ci in earlier):
            if item.host:
                b.warn(item.line, "import.host", f"{item.what}: became a regex rule (a regex rule Apache tries "
                       f"first may match under {item.path}), which answers every host, not only {item.host}: "
                       "check it", name="from_regex")
            query = "drop" if "?" in item.url else None
            regex = "^" + re.escape(item.path)
            if not item.path.endswith("/"):
                alias_regexes.append(_Regex(item.line, {"from_regex": regex + "$", "to": item.url,
                                                        "status": item.status, "query": query}, item.path, False))
                regex += "/"
                url = item.url + "/"
            else:  # Apache pastes the rest right after URL; a placeholder may not touch the host
                url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
            alias_regexes.append(_Regex(item.line, {"from_regex": regex + "(?P<rest>.*)$", "to": url + "{rest}",
                                                    "status": item.status, "query": query}, item.path, False))
            earlier.append((item.path, False))
            continue
        _redirect_patterns(b, item)
    for at, data in rewrite_patterns:
        b.add(at, data)
    if any(r.stops for r in rewrites):
        for item, priority in _prioritised(_in_apache_order(b, rewrites, alias_regexes)):
            b.add(item.line, {**item.data, "priority": priority or None})
        return
    overlap = any(_meet(a, r) for a in alias_regexes for r in rewrites)
    for r in rewrites:
        b.add(r.line, {**r.data, "priority": 1} if overlap else r.data)
    for a in alias_regexes:
        b.add(a.line, a.data)


def _meet(first: _Regex, second: _Regex) -> bool:
    """Whether two regex rules may match one path (by the literal text their matches start with)."""
    return _compatible(first.prefix, second.prefix, first.case_insensitive or second.case_insensitive)


def _in_apache_order(b: _Builder, rewrites: list[_Regex], aliases: list[_Regex]) -> list[_Regex]:
    """The regex rules of mod_rewrite (exclusions among them) and of mod_alias in the order the
    import must try them: each module's in file order; a RewriteRule redirect before every mod_alias
    rule it may meet (mod_rewrite runs first), a mod_alias rule before every exclusion it may meet
    (an exclusion stops the RewriteRules after it, not mod_alias). Where both cannot hold (a mod_alias
    rule that meets an exclusion and a RewriteRule after it), the exclusion goes first, with a warning."""
    out: list[_Regex] = []
    pending = list(aliases)
    i = 0

    def free(k: int) -> bool:  # no mod_alias rule before it that it must follow is still waiting
        return not any(_meet(a, pending[k]) for a in pending[:k])

    while i < len(rewrites) or pending:
        if i < len(rewrites) and not (rewrites[i].stops and any(_meet(a, rewrites[i]) for a in pending)):
            out.append(rewrites[i])
            i += 1
            continue
        ready = next((k for k, a in enumerate(pending) if free(k)
                      and not any(not r.stops and _meet(r, a) for r in rewrites[i:])), None)
        if ready is None:  # the RewriteRules after an exclusion never see its paths
            ready = next((k for k, a in enumerate(pending) if free(k) and _within(a, rewrites[i])), None)
        if ready is not None:
            out.append(pending.pop(ready))
            continue
        stop = rewrites[i]
        alias = next(a for a in pending if _meet(a, stop))
        later = next((r for r in rewrites[i:] if not r.stops and _meet(r, alias)), stop)
        b.warn(alias.line, "import.order", "this mod_alias rule may match paths that the exclusion at "
               f"line {stop.line} (`- [L]`) keeps from the RewriteRules after it, and so may the RewriteRule at "
               f"line {later.line}: a rule order cannot say both; the exclusion goes first (for the paths both "
               "match, Apache redirects by mod_alias, the import does not): check them", name="from_regex")
        out.append(stop)
        i += 1
    _conditional_inversions(b, out)
    return out


_PREFIX_ONLY = re.compile(r"\^(?:\\[^A-Za-z0-9]|[A-Za-z0-9/_~%=,;:@&!'-])*(?:\.\*)?")


def _within(alias: _Regex, stop: _Regex) -> bool:
    """Whether every path the mod_alias rule matches is one the exclusion matches: an exclusion of a
    literal start (`^/static/`, any host, any query) and a rule whose matches all start with it."""
    if alias.prefix is None or stop.prefix is None or _query_conditional(stop) or stop.data.get("methods") \
            or not _PREFIX_ONLY.fullmatch(stop.data["from_regex"]):
        return False
    if stop.case_insensitive:
        return alias.prefix.lower().startswith(stop.prefix.lower())
    return alias.prefix.startswith(stop.prefix)


def _conditional_inversions(b: _Builder, ordered: list[_Regex]) -> None:
    """Warn where the import cannot keep an exclusion's place: among regex rules, one with query
    conditions comes before one without whatever their priorities (docs/rules.md, Precedence)."""
    for k, stop in enumerate(ordered):
        if not stop.stops:
            continue
        conditional = _query_conditional(stop)
        for other in ordered[:k] if conditional else ordered[k + 1:]:
            if _query_conditional(other) != conditional and _meet(stop, other) and not other.stops:
                first, then = (stop, other) if conditional else (other, stop)
                b.warn(stop.line, "import.order", f"this exclusion (`- [L]`) and line {other.line} may match one "
                       f"path: the import tries line {first.line} first for the requests the query conditions "
                       f"match (a rule with query conditions comes before one without), Apache line "
                       f"{then.line}: check them", name="from_regex")
                break


def _query_conditional(item: _Regex) -> bool:
    return item.data.get("query_match") is not None or bool(item.data.get("query_exact"))


def _prioritised(ordered: list[_Regex]) -> list[tuple[_Regex, int]]:
    """Each rule with the `priority` that makes the import try them in this order (regex rules go by
    priority, then file order): the lowest that keeps file order within each priority."""
    out: list[tuple[_Regex, int]] = []
    priority = 0
    for item in reversed(ordered):
        if out and item.line > out[-1][0].line:
            priority += 1
        out.append((item, priority))
    return out[::-1]


def _redirect_patterns(b: _Builder, item: _Redirect) -> None:
    """`Redirect /p URL` as Apache matches it: `/p` and `/p/...` (whole segments), the rest of the path
    appended to URL as it stands (after a query too); `/p/` matches `/p/` and below, not `/p`."""
    prefix = f"//{item.host}" if item.host else ""
    query = "drop" if "?" in item.url else None  # mod_alias adds the request's query only to a URL without one
    if item.path.endswith("/"):
        b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query})
        # Apache pastes the rest right after URL; with no path there, a placeholder may not touch the host
        url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
        b.add(item.line, {"from": f"{prefix}{item.path}{{seg}}/{{rest:path}}", "to": url + "{seg}/{rest}",
                          "status": item.status, "query": query})
        return
    b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query})
    b.add(item.line, {"from": f"{prefix}{item.path}/{{rest:path}}", "to": item.url + "/{rest}",
                      "status": item.status, "query": query})


def _covers(first: str, later: str) -> bool:
    """Whether every path `Redirect {later}` matches is matched by `Redirect {first}`."""
    if first.endswith("/"):
        return later.startswith(first)
    return later == first or later.startswith(first + "/")


def _may_overlap(prefix: str | None, case_insensitive: bool, path: str) -> bool:
    """Whether a regex whose matches all start with `prefix` (None: unknown) may match a path that
    `Redirect {path}` matches."""
    if prefix is None:
        return True
    if case_insensitive:
        prefix, path = prefix.lower(), path.lower()
    if path.startswith(prefix):
        return True
    if prefix.startswith(path):
        return path.endswith("/") or len(prefix) == len(path) or prefix[len(path)] == "/"
    return False


def _compatible(first: str | None, second: str | None, case_insensitive: bool) -> bool:
    """Whether two regexes whose matches start with these literal prefixes may match one path."""
    if first is None or second is None:
        return True
    if case_insensitive:
        first, second = first.lower(), second.lower()
    return first.startswith(second) or second.startswith(first)


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
) -> _Redirect | str | None:
    """The `Redirect` to place, or the path Apache answers without redirecting (`gone`), or None."""
    code, rest = _apache_status(args, default, status_arg)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return _path(rest[0]) if len(rest) == 1 and rest[0].startswith("/") else None
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] /path URL: skipped")
        return None
    path, url = rest
    if not path.startswith("/"):
        b.warn(line, "import.unsupported", f"{what}: {path!r} is not a path starting with /: skipped", name="from")
        return None
    status = b.status(code, line, what)
    if status is None:
        return _path(path)
    # the URL is literal: `$` is not a variable here
    return _Redirect(line, what, _path(path), url, status, host)


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
    # mod_alias adds the request's query only to a URL that has none of its own
    _regex_rule(b, line, what, regex, url, status, query="drop" if "?" in url else None, host=host)


_HOST_COND = re.compile(r"\^((?:[A-Za-z0-9-]|\\\.)+)\$")
#: A literal query parameter name or value in a condition (`\.` for a dot).
_QUERY_WORD = r"(?:[A-Za-z0-9_~%+-]|\\[.\-_~])+"
#: `^a=1&b=2$` (the whole query, literally), `^$` (none).
_QUERY_WHOLE = re.compile(rf"\^((?:{_QUERY_WORD}={_QUERY_WORD}(?:&{_QUERY_WORD}={_QUERY_WORD})*)?)\$")
#: `(^|&)a=1(&|$)`: one parameter with that value; `(^|&)a=` or `(^|&)a=[^&]*` or `(^|&)a=([^&]*)`: present.
_QUERY_PARAM = re.compile(rf"\((?:\?:)?\^\|&\)({_QUERY_WORD})=(?:({_QUERY_WORD})\((?:\?:)?&\|\$\)|\(?\[\^&\]\*\)?|)")
_METHOD_COND = re.compile(r"\^\(?([A-Z]+(?:\|[A-Z]+)*)\)?\$")


def _unescaped(word: str) -> str:
    return re.sub(r"\\(.)", r"\1", word)


def _query_condition(cond: str, query: dict[str, str], exact: list[bool]) -> bool:
    """Read a `RewriteCond %{QUERY_STRING}` pattern into query conditions; False when it is not one
    of the idioms: `^$` (no query), `^a=1&b=2$` (exactly those parameters, in any order here),
    `(^|&)a=1(&|$)` (that parameter with that value), `(^|&)a=` / `(^|&)a=([^&]*)` (that parameter)."""
    if m := _QUERY_WHOLE.fullmatch(cond):
        for pair in filter(None, m.group(1).split("&")):
            name, _eq, value = pair.partition("=")
            query[_unescaped(name)] = _unescaped(value)
        exact.append(True)
        return True
    if m := _QUERY_PARAM.fullmatch(cond):
        query[_unescaped(m.group(1))] = _unescaped(m.group(2)) if m.group(2) else "*"
        return True
    return False


def _conditions(
    b: _Builder, line: int, what: str, conds: list[tuple[int, list[str]]], pattern: str, per_directory: bool,
    subst: str = "",
) -> tuple[str | None, list[str] | None, str, dict[str, str], bool] | None:
    """The host, methods and query conditions the RewriteConds before a rule restrict it to, and the
    rule's regex (a path condition narrower than the pattern takes its place when the substitution
    uses no `$N`); None to skip the rule."""
    host: str | None = None
    methods: list[str] | None = None
    query: dict[str, str] = {}
    exact: list[bool] = []
    for at, args in conds:
        flags = [f.strip().lower() for f in args[2].strip("[]").split(",")] if len(args) >= 3 else []
        if len(args) < 2 or any(f in ("or", "ornext") for f in flags):
            break
        test, cond = args[0], args[1]
        variable = test.upper()
        if variable == "%{HTTP_HOST}" and (m := _HOST_COND.fullmatch(cond)) and host is None:
            host = m.group(1).replace("\\.", ".").lower()
            if valid_host(host):
                continue
        elif variable == "%{REQUEST_METHOD}" and (m := _METHOD_COND.fullmatch(cond)) and methods is None:
            methods = m.group(1).split("|")
            continue
        elif variable == "%{QUERY_STRING}" and not flags and _query_condition(cond, query, exact):
            continue
        elif variable == "%{REQUEST_FILENAME}" and cond in ("!-f", "!-d", "!-l", "!-s"):
            b.warn(at, "import.conditional", f"{what}: `RewriteCond {test} {cond}` (no such file or directory) "
                   "cannot be checked by a rule: imported as if it held, check that no file is served at "
                   "the paths it matches", name="from_regex")
            continue
        elif (variable == "%{REQUEST_URI}" or (variable == "%{REQUEST_FILENAME}" and not per_directory)) \
                and not flags and _implied(cond, pattern):
            continue  # the rule's own pattern already says it (a request's path, before any mapping)
        elif (variable == "%{REQUEST_URI}" or (variable == "%{REQUEST_FILENAME}" and not per_directory)) \
                and not flags and not re.search(r"\$\{?[0-9]", subst) and _implied(pattern, cond) \
                and not cond.startswith("!"):
            pattern = cond  # every path the condition matches, the pattern matches: the condition decides
            continue
        b.warn(line, "import.conditional", f"{what} follows `RewriteCond {' '.join(args)}` (line {at}): "
               "the condition cannot be expressed as a rule: skipped")
        return None
    else:
        if exact and len(exact) > 1:
            b.warn(line, "import.conditional", f"{what} follows two RewriteConds on the whole query: skipped")
            return None
        return host, methods, pattern, query, bool(exact)
    b.warn(line, "import.conditional", f"{what} follows RewriteCond lines joined with [OR] (or a RewriteCond "
           "without a pattern): conditions cannot be expressed as a rule: skipped")
    return None


def _apache_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    rewrite_base: str, per_directory: bool = False, maps: dict[str, str] | None = None,
    after_exclusion: bool = False,
) -> None:
    """A RewriteRule as a rule: a redirect, or an exclusion (`_exclusion`); `after_exclusion`: an
    exclusion comes before it in the file (its rule must then be a regex, ordered after it)."""
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
    qsa = False
    escape = True
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
        elif lname in ("qsa", "qsappend"):
            qsa = True
        elif lname in ("ne", "noescape"):
            escape = False
        elif lname in ("g", "gone"):
            code = 410
        elif lname in ("f", "forbidden"):
            return
        elif lname in ("p", "proxy"):
            return  # proxied: not a redirect
    absolute = re.match(r"(?i)https?://([^/?#]*)", subst)
    if code is None:
        if absolute is None or (host is not None and absolute.group(1).lower() == host):
            # an internal rewrite (an absolute URL on the server's own host too), not a redirect
            names = {f.partition("=")[0].lower(): f.partition("=")[2] for f in flags}
            if subst == "-" and names.keys() & {"l", "last", "end"} and not names.keys() & {"s", "skip"}:
                _exclusion(b, line, what, args, host, conds, per_directory, ci)
                return
            if subst != "-":
                why = "an internal rewrite: Apache serves another path, and the rules after it see that path"
            elif "s" in names or "skip" in names:
                why = f"`-` with [S={names.get('s') or names.get('skip')}]: the rules it skips do not run for its paths"
            elif names.keys() & {"l", "last", "end"}:
                why = "`-` with [L]: the rules after it do not run for its paths"
            else:
                why = "`-` (the path stays): it redirects nothing"
            b.warn(line, "import.internal", f"{what}: no R flag, {why}: not a redirect, not imported; check the "
                   "redirects after it with `rules test`", name="from_regex")
            return
        code = 302  # an absolute substitution to another host: Apache redirects with 302
    status = b.status(code, line, what)
    if status is None:
        return
    if subst == "-":
        b.warn(line, "import.unsupported", f"{what}: `-` (no substitution) has no target: skipped", name="to")
        return
    if subst.endswith("?%{QUERY_STRING}"):
        subst = subst[: -len("?%{QUERY_STRING}")]  # the request's query again: as if kept
        qsa = True
    subst, lowered = _lowered(subst, maps or {})
    mapped = re.search(r"\$\{([A-Za-z0-9_]+):", subst)
    if mapped:
        name = mapped.group(1)
        kind = (maps or {}).get(name)
        why = (f"`{kind}`, whose values a rule cannot compute (only `int:tolower` of a `$N` is imported)"
               if kind else "not defined in this file (a map defined in a file that `Include`s this one is not "
               "known here: import that file, whose `Include`s are read, or add its `RewriteMap` line)")
        b.warn(line, "import.variable", f"{what}: the substitution calls RewriteMap `{name}` (`${{map:key}}`), "
               f"which is {why}: skipped", name="to")
        return
    if "%{" in subst or re.search(r"%[0-9]", subst):
        b.warn(line, "import.variable", f"{what}: the substitution uses a server variable or RewriteCond "
               "back-reference, which a rule cannot express: skipped", name="to")
        return
    if _unknown_variables(b, line, what, subst, allow_groups=True):
        return
    if subst.endswith("?"):
        subst, query = subst[:-1], "drop"
    elif "?" in subst and not qsa:
        query = "drop"  # a query of its own replaces the request's, unless [QSA]
    if escape and "#" in subst:
        subst = subst.replace("#", "%23")  # without [NE] Apache escapes it: not a fragment
    if not subst.startswith("/") and absolute is None:
        subst = rewrite_base + subst  # a relative substitution (.htaccess): under RewriteBase
    found = _matched(b, line, what, args, conds, per_directory, subst)
    if found is None:
        return
    cond_host, methods, pattern, query_match, query_exact = found
    query_fields: dict[str, Any] = {"query_match": dict(query_match) or None,
                                    "query_exact": True if query_exact else None}
    if cond_host is not None:
        host = cond_host
    subst = _past_the_groups(pattern, subst)
    if lowered:
        restricted = None if ci else _capital_free(pattern)
        calls = ", ".join(f"${n}" for n in sorted(lowered))
        if restricted is None:
            reason = ("with [NC] every letter matches either case" if ci else
                      "the pattern cannot be limited to paths without capitals (it must be anchored, "
                      "`^...$`, with no capital letter, letter class or inline flag of its own)")
            b.warn(line, "import.lowercase", f"{what}: `int:tolower` lower-cases {calls}, which a rule cannot "
                   f"do, and {reason}: skipped", name="to")
            return
        b.warn(line, "import.lowercase", f"{what}: `int:tolower` lower-cases {calls}, which a rule cannot do: "
               "imported for the paths without a capital letter A-Z (Apache sends the same redirect for "
               "those); a path with a capital (a percent-escape such as %C3 included) is not answered by "
               "this rule", name="from_regex")
        pattern = restricted
    if host and not after_exclusion:  # a path pattern would come before the exclusion's regex
        converted = None if ci else _as_pattern(pattern, subst)
        if converted is not None:
            source, to = converted
            b.add(line, {"from": f"//{host}{source}", "to": to, "status": status, "query": query,
                         "methods": methods, **query_fields})
            return
    before = len(getattr(b, "held", []))
    _regex_rule(b, line, what, pattern, subst, status, case_insensitive=ci, query=query, host=host or None,
                host_required=cond_host is not None, query_match=dict(query_match) or None,
                query_exact=query_exact)
    held = getattr(b, "held", None)
    if methods and held is not None and len(held) > before:
        held[-1] = (held[-1][0], {**held[-1][1], "methods": methods})


def _matched(
    b: _Builder, line: int, what: str, args: list[str], conds: list[tuple[int, list[str]]], per_directory: bool,
    subst: str,
) -> tuple[str | None, list[str] | None, str, dict[str, str], bool] | None:
    """A RewriteRule's pattern as a regex over the full path, with what its RewriteConds restrict it
    to (`_conditions`); None to skip the rule (a warning says why)."""
    pattern = args[0]
    if pattern.startswith("!"):
        b.warn(line, "import.unsupported", f"{what}: a negated pattern cannot be expressed as a rule: skipped",
               name="from_regex")
        return None
    if per_directory and pattern.startswith("^/"):
        b.warn(line, "import.unsupported", f"{what}: in .htaccess Apache matches the pattern against the path "
               "without its leading slash, so `^/` never matches: the rule does nothing: skipped",
               name="from_regex")
        return None
    # per-directory (.htaccess) patterns see the path without its leading slash
    if pattern.startswith("^") and not pattern.startswith("^/") and (per_directory or not pattern.startswith("^(")):
        pattern = "^/" + pattern[1:]
    # REQUEST_FILENAME is the request's path only in server context: a file not named .htaccess
    # whose pattern starts with a slash (per-directory patterns never do)
    found = _conditions(b, line, what, conds, pattern, per_directory or not args[0].startswith("^/"), subst)
    if found is None:
        return None
    cond_host, methods, pattern, query_match, query_exact = found
    return cond_host, methods, _possessive_as_greedy(pattern), query_match, query_exact


def _exclusion(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, conds: list[tuple[int, list[str]]],
    per_directory: bool, ci: bool,
) -> None:
    """`RewriteRule PATTERN - [L]` (or `[END]`): the paths it matches are served as they are and the
    RewriteRules after it do not run for them (mod_alias still does): a rule that redirects nothing
    (status 404), which `_emit` orders after the RewriteRules before it and the mod_alias rules that
    may match its paths, and before the RewriteRules after it."""
    found = _matched(b, line, what, args, conds, per_directory, "-")
    if found is None:
        return
    cond_host, methods, pattern, query_match, query_exact = found
    before = len(getattr(b, "held", []))
    _regex_rule(b, line, what, pattern, "", NOT_REDIRECTED, case_insensitive=ci, host=cond_host or host,
                host_required=cond_host is not None, query_match=dict(query_match) or None, query_exact=query_exact)
    held = getattr(b, "held", None)
    if methods and held is not None and len(held) > before:
        held[-1] = (held[-1][0], {**held[-1][1], "methods": methods})


def _past_the_groups(pattern: str, subst: str) -> str:
    """The substitution with each `$N` beyond the pattern's groups removed: Apache pastes nothing
    for it (`RewriteRule ^tutorials.php help/tutorials$1` redirects to `/help/tutorials`)."""
    scanned = _named_groups(pattern)
    if scanned is None:
        return subst
    count = len(scanned[1])
    return re.sub(r"\$(?:\{([0-9])\}|([0-9]))", lambda m: "" if int(m.group(1) or m.group(2)) > count else m.group(0),
                  subst)
