"""Apache's order as rules (docs/migrating.md, Apache: Order): mod_rewrite before mod_alias, each in
file order, the first `Redirect` that matches winning, exclusions (`- [L]`) keeping their paths
from the RewriteRules after them only (an internal rewrite that ends the rules, `_Internal`, from
mod_alias too in server context); and redirectory's precedence (path patterns before regexes,
host-specific before any-host, rules with conditions before rules without) kept to that order by
regex priorities, copies per scheme and per host, and `Redirect`s made regex rules where a rule
Apache tries first may match under them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from redirectory.rules.importers._common import _Builder, _host_form


@dataclass
class _Redirect:
    """A `Redirect` whose form (path pattern or regex) waits for the rules Apache tries before it."""

    line: int
    what: str
    path: str  # as a `from` path (percent-encoded)
    url: str
    status: int
    host: str | None
    scheme: str | None = None


#: the key under which a held RewriteRule's data carries its `_Internal` (taken out before it is added)
_INTERNAL = "_internal"


@dataclass(frozen=True)
class _Internal:
    """An internal rewrite that ends the rules (`RewriteRule . /index.php [L]`, `_internal_rewrite`)."""

    what: str
    target: str | None  # the path Apache serves instead (literal; None: not known)
    end: bool  # [END]: in .htaccess the rewrite rules do not run again for it
    per_directory: bool  # .htaccess: the new path goes through the rules again, and mod_alias still answers
    files: list[int]  # the lines of the `%{REQUEST_FILENAME} !-f`/`!-d` conditions read as true
    restricted: bool  # it has conditions of host, query, method or scheme


@dataclass
class _Regex:
    """A regex rule held until the priorities are known; `prefix` is the literal text every path it
    matches starts with (None: any path)."""

    line: int
    data: dict[str, Any]
    prefix: str | None
    case_insensitive: bool
    stops: bool = False  # `RewriteRule PATTERN - [L]`: a rule that redirects nothing (`_exclusion`)
    internal: _Internal | None = None  # an internal rewrite that ends the rules (`stops` too)

    @property
    def final(self) -> bool:
        """A rule after which mod_alias does not run either (an internal rewrite in server context)."""
        return self.internal is not None and not self.internal.per_directory


def _place(item: _Regex) -> tuple[str | None, str | None]:
    """The host a host-specific regex (`^//host...`) answers (None: any) and the literal start of its
    paths (`_literal_prefix`; "" when it is not known past the host)."""
    m = re.match(r"\^//((?:[A-Za-z0-9-]|\\\.)+)", str(item.data.get("from_regex") or ""))
    if m is None:
        return None, item.prefix
    host = m.group(1).replace("\\.", ".")
    rest = (item.prefix or "")[2 + len(host):]
    return host, rest if rest.startswith("/") else ""


def _emit(b: _Builder, rewrites: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
          aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]]) -> None:
    """Add the rules so that the one Apache uses wins: mod_rewrite before mod_alias, each in file order."""
    rewrites = _internal_rewrites(b, rewrites, rewrite_patterns, aliases, stoppers)
    # an exclusion keeps paths from the RewriteRules after it, not from mod_alias: not a reason to
    # make a `Redirect` a regex rule (its path pattern comes before every regex rule)
    # (the host of a host-specific regex or None, the literal start of its paths, case-insensitive)
    earlier: list[tuple[str | None, str | None, bool]] = [(*_place(r), r.case_insensitive) for r in rewrites
                                                          if not r.stops or r.final]
    # a host's path pattern RewriteRule (`//host/{rest:path}`) too, for the Redirects of that host (or any)
    earlier += [(str(d["from"])[2:].partition("/")[0], "/" + str(d["from"])[2:].partition("/")[2].split("{")[0],
                 False) for _, d in rewrite_patterns]
    alias_regexes: list[_Regex] = []
    redirects: list[_Redirect] = []  # those already placed, for the first-match check
    for item in aliases:
        if isinstance(item, _Regex):
            earlier.append((*_place(item), False))
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
        if any((None in (host, item.host) or host == item.host) and _may_overlap(prefix, ci, item.path)
               for host, prefix, ci in earlier):
            if item.host:
                b.warn(item.line, "import.host", f"{item.what}: became a regex rule (a regex rule Apache tries "
                       f"first may match under {item.path}), which answers every host, not only {item.host}: "
                       "check it", name="from_regex")
            query = "drop" if "?" in item.url else None
            regex = "^" + re.escape(item.path)
            if not item.path.endswith("/"):
                alias_regexes.append(_Regex(item.line, {"from_regex": regex + "$", "to": item.url,
                                                        "status": item.status, "query": query,
                                                        "scheme": item.scheme}, item.path, False))
                regex += "/"
                url = item.url + "/"
            else:  # Apache pastes the rest right after URL; a placeholder may not touch the host
                url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
            alias_regexes.append(_Regex(item.line, {"from_regex": regex + "(?P<rest>.*)$", "to": url + "{rest}",
                                                    "status": item.status, "query": query, "scheme": item.scheme},
                                        item.path, False))
            earlier.append((None, item.path, False))
            continue
        _redirect_patterns(b, item)
    for at, data in rewrite_patterns:
        b.add(at, data)
    if any(r.stops for r in rewrites):
        for item, priority in _prioritised(_in_apache_order(b, rewrites, alias_regexes)):
            b.add(item.line, {**item.data, "priority": priority or None})
        return
    overlap = any(_meet(a, r) for a in alias_regexes for r in rewrites)
    for r in _per_scheme(_for_hosts(rewrites)):
        b.add(r.line, {**r.data, "priority": 1} if overlap else r.data)
    for a in alias_regexes:
        b.add(a.line, a.data)


def _meet(first: _Regex, second: _Regex) -> bool:
    """Whether two regex rules may match one request (by their hosts and the literal text their
    paths start with)."""
    (host, prefix), (other_host, other_prefix) = _place(first), _place(second)
    if host is not None and other_host is not None and host != other_host:
        return False
    return _compatible(prefix, other_prefix, first.case_insensitive or second.case_insensitive)


def _for_hosts(ordered: list[_Regex]) -> list[_Regex]:
    """The regex rules in this order, each any-host rule that comes before a host-specific one it may
    meet followed by a copy for that host (`^//host...`): a host-specific regex comes before every
    any-host one (docs/rules.md, Precedence), and the copy keeps the rule's place for that host."""
    out: list[_Regex] = []
    for k, item in enumerate(ordered):
        out.append(item)
        if _place(item)[0] is not None:
            continue
        hosts = dict.fromkeys(h for later in ordered[k + 1:] if (h := _place(later)[0]) and _meet(item, later))
        for host in hosts:
            regex = _host_form(str(item.data["from_regex"]), host, None)
            if regex is not None:
                out.append(replace(item, data={**item.data, "from_regex": regex}))
    return out


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
        if i < len(rewrites) and not (rewrites[i].stops and not rewrites[i].final
                                      and any(_meet(a, rewrites[i]) for a in pending)):
            out.append(rewrites[i])
            i += 1
            continue
        ready = next((k for k, a in enumerate(pending) if free(k)
                      and not any((not r.stops or r.final) and _meet(r, a) for r in rewrites[i:])), None)
        if ready is None:  # the RewriteRules after an exclusion never see its paths
            ready = next((k for k, a in enumerate(pending) if free(k) and _within(a, rewrites[i])), None)
        if ready is not None:
            out.append(pending.pop(ready))
            continue
        stop = rewrites[i]
        alias = next(a for a in pending if _meet(a, stop))
        later = next((r for r in rewrites[i:] if (not r.stops or r.final) and _meet(r, alias)), stop)
        b.warn(alias.line, "import.order", "this mod_alias rule may match paths that the exclusion at "
               f"line {stop.line} (`- [L]`) keeps from the RewriteRules after it, and so may the RewriteRule at "
               f"line {later.line}: a rule order cannot say both; the exclusion goes first (for the paths both "
               "match, Apache redirects by mod_alias, the import does not): check them", name="from_regex")
        out.append(stop)
        i += 1
    return _per_scheme(_for_hosts(out))


_PREFIX_ONLY = re.compile(r"\^(?:\\[^A-Za-z0-9]|[A-Za-z0-9/_~%=,;:@&!'-])*(?:\.\*)?")


def _within(alias: _Regex, stop: _Regex) -> bool:
    """Whether every path the mod_alias rule matches is one the exclusion matches: an exclusion of a
    literal start (`^/static/`, any host, any query; or `^/.`, the start and one more character) and
    a rule whose matches all start with it (and more)."""
    if alias.prefix is None or stop.prefix is None or _conditional(stop) or stop.data.get("methods"):
        return False
    regex = str(stop.data["from_regex"])
    more = regex.endswith(".") and not regex.endswith("\\.") and bool(_PREFIX_ONLY.fullmatch(regex[:-1]))
    if not more and not _PREFIX_ONLY.fullmatch(regex):
        return False
    prefix, start = (alias.prefix.lower(), stop.prefix.lower()) if stop.case_insensitive else (alias.prefix,
                                                                                               stop.prefix)
    return prefix.startswith(start) and (not more or len(prefix) > len(start))


def _internal_rewrites(b: _Builder, rewrites: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
                       aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]]) -> list[_Regex]:
    """The RewriteRules with each internal rewrite that ends the rules kept (a warning says how it is
    read) or, in .htaccess where Apache's second pass over the rewritten path may redirect it (a rule
    before it, mod_alias, or the rules after it when it does not match that path itself), left out
    with a warning naming what redirects it."""
    out: list[_Regex] = []
    said: set[int] = set()
    for k, item in enumerate(rewrites):
        internal = item.internal
        if internal is None:
            out.append(item)
            continue
        why = _second_pass(item, rewrites[:k], rewrite_patterns, aliases, stoppers) \
            if internal.per_directory else None
        if why is None and not _shadows(item, rewrites[k + 1:], rewrite_patterns, aliases):
            if item.line not in said:
                b.warn(item.line, "import.internal", f"{internal.what}: no R flag, an internal rewrite (Apache "
                       "serves another path): not a redirect, and no redirect after it may match its paths: not "
                       "imported", name="from_regex")
            said.add(item.line)
            continue
        if item.line in said:
            if why is None:
                out.append(item)
            continue
        said.add(item.line)
        if why is not None:
            b.warn(item.line, "import.internal", f"{internal.what}: no R flag, an internal rewrite to "
                   f"{internal.target}, which Apache runs through the rules again: {why}, which a rule cannot "
                   "say: not imported; check the redirects after it with `rules test`", name="from_regex")
            continue
        files = (f"; the `%{{REQUEST_FILENAME}} !-f`/`!-d` conditions (line{'s' if len(internal.files) > 1 else ''} "
                 f"{', '.join(str(n) for n in internal.files)}) are read as true (no such file or directory: the "
                 "paths of existing files and directories are not modelled)") if internal.files else ""
        after = ("the RewriteRules after it never redirect them (mod_alias still does)" if internal.per_directory
                 else "neither the RewriteRules after it nor mod_alias redirect them (in server context the "
                 "rewrite ends the mapping)")
        b.warn(item.line, "import.internal", f"{internal.what}: no R flag, an internal rewrite that ends the "
               f"rules: Apache serves {internal.target or 'another path'} for the paths it matches, and {after}: "
               f"imported as a rule that redirects nothing (status 404) for those paths{files}", name="from_regex")
        out.append(item)
    return out


def _shadows(item: _Regex, after: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
             aliases: list[_Redirect | _Regex]) -> bool:
    """Whether an internal rewrite may keep a redirect from a path: a RewriteRule after it (or in
    server context a mod_alias rule) may match a path it matches."""
    if any(not r.stops and r.line > item.line and _meet(item, r) for r in after):
        return True
    host, prefix = _place(item)
    if any(at > item.line and _compatible(prefix, "/" + str(d["from"])[2:].partition("/")[2].split("{")[0], True)
           and host in (None, str(d["from"])[2:].partition("/")[0]) for at, d in rewrite_patterns):
        return True
    if not item.final:
        return False
    return any(_meet(item, a) if isinstance(a, _Regex) else
               host in (None, a.host) and _may_overlap(prefix, item.case_insensitive, a.path) for a in aliases)


def _second_pass(item: _Regex, before: list[_Regex], rewrite_patterns: list[tuple[int, dict[str, Any]]],
                 aliases: list[_Redirect | _Regex], stoppers: list[tuple[str, str | None, int]]) -> str | None:
    """Why Apache's second pass over the path an .htaccess internal rewrite serves may redirect it
    (None: it redirects nothing): the rules before it run again (an exclusion of that path ends
    them), then itself; mod_alias answers the new path too."""
    assert item.internal is not None
    target = item.internal.target or ""

    def matches(rule: _Regex) -> bool:
        host = _place(rule)[0]
        try:
            return re.search(str(rule.data["from_regex"]), target if host is None else f"//{host}{target}",
                             re.IGNORECASE if rule.case_insensitive else 0) is not None
        except re.error:
            return True

    for other in (a for a in aliases if isinstance(a, _Regex)):
        if matches(other):
            return f"the mod_alias rule at line {other.line} redirects it"
    for path, _host, line in stoppers:
        if _covers(path, target):
            return f"the `Redirect` at line {line} answers it"
    for redirect in (a for a in aliases if isinstance(a, _Redirect)):
        if _covers(redirect.path, target):
            return f"the `Redirect` at line {redirect.line} redirects it"
    if not item.internal.end:
        starts = [(at, "/" + str(d["from"])[2:].partition("/")[2].split("{")[0]) for at, d in rewrite_patterns]
        pattern = next((at for at, start in starts if at < item.line and _may_overlap(start, False, target)), None)
        if pattern is not None:
            return f"the RewriteRule at line {pattern} may redirect it"
        for other in before:
            if not matches(other):
                continue
            if not other.stops or other.internal is not None:
                return f"the RewriteRule at line {other.line} {'redirects' if not other.stops else 'rewrites'} it"
            if _place(other)[0] is None and not _conditional(other) and not other.data.get("methods"):
                return None  # an exclusion of that path: the rules end there
        if item.internal.restricted or not matches(item):
            return "the RewriteRules after it may redirect it"
    return None


def _per_scheme(ordered: list[_Regex]) -> list[_Regex]:
    """The regex rules in this order, each rule without conditions that comes before one with query or
    scheme conditions it may meet written once per scheme: among regex rules one with conditions
    comes before one without, whatever their priorities (docs/rules.md, Precedence), and a rule for
    http plus one for https answer what the rule did while keeping its place by priority."""
    out: list[_Regex] = []
    for k, item in enumerate(ordered):
        if not _conditional(item) and any(_conditional(later) and _meet(item, later)
                                          and not (item.stops and later.stops) for later in ordered[k + 1:]):
            out += [replace(item, data={**item.data, "scheme": scheme}) for scheme in ("http", "https")]
        else:
            out.append(item)
    return out


def _conditional(item: _Regex) -> bool:
    return item.data.get("query_match") is not None or bool(item.data.get("query_exact")) \
        or item.data.get("scheme") is not None


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
        b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query,
                          "scheme": item.scheme})
        # Apache pastes the rest right after URL; with no path there, a placeholder may not touch the host
        url = item.url + "/" if re.fullmatch(r"(?i)[a-z][a-z0-9+.-]*://[^/?#]*", item.url) else item.url
        b.add(item.line, {"from": f"{prefix}{item.path}{{seg}}/{{rest:path}}", "to": url + "{seg}/{rest}",
                          "status": item.status, "query": query, "scheme": item.scheme})
        return
    b.add(item.line, {"from": prefix + item.path, "to": item.url, "status": item.status, "query": query,
                      "scheme": item.scheme})
    b.add(item.line, {"from": f"{prefix}{item.path}/{{rest:path}}", "to": item.url + "/{rest}",
                      "status": item.status, "query": query, "scheme": item.scheme})


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
