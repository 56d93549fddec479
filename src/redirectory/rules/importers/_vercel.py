"""Vercel `vercel.json`: its `redirects` (and the legacy `routes` that redirect) as rules.

`source` is a path-to-regexp pattern: a literal path becomes an exact rule, `/:name` segments
placeholders (`{name}`); anything else (a last `/:name*` too) (`:name?`, `:name+`, `:name(regex)`, `(.*)`) becomes
an RE2 regex with the same groups. In `destination`, `:name` (and `:name*`) are the matched values
and `$1`.. the numbered groups. `permanent` (default true) is 308, false 307; `statusCode` wins
when given (302 becomes 307 with a warning, like every importer). `has` conditions (Next.js
`matchHas`: each item must hold; a `value` is a regex anchored at both ends) on the query become
`query_match` (no `value`: `"*"`; a literal value: that value), and one on the host a host-specific
rule (`//host/path`); a regex value, a `header` or `cookie` item and `missing` cannot be
expressed: such a redirect is skipped with a warning. Legacy `routes` entries with a
redirect `status` and a `Location` header are regex rules (their `src` is anchored, as Vercel
anchors it). File-level `trailingSlash` and `cleanUrls` change which paths Vercel itself
redirects; they are not imported (a warning says so).

Vercel matches `source` as path-to-regexp does in strict, case-sensitive mode (`sourceToRegex` in
`@vercel/routing-utils`): the trailing slash as written, so `/docs/:path*` matches `/docs` and
`/docs/a/b` but not `/docs/` or `/docs/a/`, which only a regex says (its group holds the slash, so
that `/docs` goes to `/d`, as Vercel sends `/d/:path*` without a value). Vercel tries redirects in
file order and uses the first that matches: `_first_match` keeps that order (a later redirect an
earlier one covers is skipped with a warning naming both lines; a partly overlapping one gets
`priority` or becomes a regex rule after the earlier one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Set as AbstractSet
from dataclasses import replace
from typing import Any

from redirectory.rules.importers._common import _Builder, _path
from redirectory.rules.importers._first_match import SOME, Candidate, Shape, regex_prefix, resolve
from redirectory.rules.model import Problem
from redirectory.rules.patterns import valid_host

#: A path-to-regexp token: a named parameter (`:name`, its own regex, a modifier), a group, an
#: escaped character, or any other character.
_GROUP = r"\((?:\\.|[^()\\]|\([^()]*\))*\)"
_TOKEN = re.compile(rf":([A-Za-z_][A-Za-z0-9_]*)({_GROUP})?([?*+])?|({_GROUP})([?*+])?|\\(.)|(.)", re.DOTALL)
_STATUS_CODES = (301, 302, 303, 307, 308)
_FILE_OPTIONS = ("trailingSlash", "cleanUrls")
#: Characters with a meaning in a (JavaScript) regex: a `has` value without them is a literal.
_REGEX_META = frozenset(".^$*+?()[]{}|\\")


def _load_vercel(b: _Builder, text: str) -> None:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 1)
        b.problems.append(Problem("error", "file", f"not valid JSON: {exc}", line=line, code="syntax", source=b.source))
        return
    if not isinstance(doc, dict):
        b.problems.append(Problem("error", "file", "a vercel.json holds an object", line=1, code="type",
                                  source=b.source))
        return
    redirects = doc.get("redirects") or []
    routes = [r for r in doc.get("routes") or [] if isinstance(r, dict) and _route_location(r) is not None]
    if not isinstance(redirects, list) or (not redirects and not routes):
        found = ", ".join(f'"{key}"' for key in doc) or "nothing"
        b.problems.append(Problem(
            "error", "file", f"no \"redirects\" in this vercel.json (found {found}): nothing to import",
            line=1, code="import.empty", source=b.source))
        return
    for option in _FILE_OPTIONS:
        if option in doc:
            b.warn(_key_line(text, option), "import.unsupported",
                   f'"{option}": {json.dumps(doc[option])} changes which paths Vercel redirects by itself: not '
                   "imported (add rules for those paths if clients rely on them)", name="file")
    candidates: list[Candidate] = []
    lines = _entry_lines(text, "redirects", "source", len(redirects))
    for line, entry in zip(lines, redirects, strict=True):
        _redirect(b, candidates, line, entry)
    resolve(b, candidates)
    candidates = []
    for line, route in zip(_entry_lines(text, "routes", "src", len(doc.get("routes") or [])),
                           doc.get("routes") or [], strict=True):
        if isinstance(route, dict) and _route_location(route) is not None:
            _route(b, candidates, line, route)
    resolve(b, candidates)


def _redirect(b: _Builder, found: list[Candidate], line: int, entry: Any) -> None:
    if not isinstance(entry, dict):
        b.warn(line, "import.syntax", "a redirect must be an object with source and destination: skipped")
        return
    source, target = entry.get("source"), entry.get("destination")
    what = f"redirect {json.dumps(source)}"
    if not isinstance(source, str) or not isinstance(target, str):
        b.warn(line, "import.syntax", f"{what}: `source` and `destination` must both be strings: skipped")
        return
    code = entry.get("statusCode")
    if code is None:
        permanent = entry.get("permanent", True)
        code = 308 if permanent is not False else 307
    if not isinstance(code, int) or isinstance(code, bool) or code not in _STATUS_CODES:
        b.warn(line, "import.status-skipped", f"{what}: statusCode {code!r} is not a redirect: skipped",
               name="status")
        return
    status = b.status(code, line, what)
    if status is None:
        return
    if not source.startswith("/"):
        b.warn(line, "import.unsupported", f"{what}: `source` must be a path starting with /: skipped", name="from")
        return
    conditions = _conditions(b, line, what, entry)
    if conditions is None:
        return
    host, query, values = conditions
    target = _condition_values(b, line, what, source, target, host, values)
    if target is not None:
        _add(found, line, what, source, target, status, host, query)


def _conditions(b: _Builder, line: int, what: str,
                entry: dict[str, Any]) -> tuple[str, dict[str, str], set[str]] | None:
    """`has` as (host, query conditions, parameters the destination may use: Next.js `matchHas`
    sets `:key` (letters only) to a query parameter checked without a value); None, with a warning,
    when a rule cannot express them."""
    if entry.get("missing"):
        b.warn(line, "import.conditional", f"{what}: `missing` conditions (the redirect applies when a header, "
               "cookie, query parameter or host is absent) cannot be expressed as a rule: skipped")
        return None
    has = entry.get("has") or []
    if not isinstance(has, list) or not all(isinstance(item, dict) for item in has):
        b.warn(line, "import.syntax", f"{what}: `has` must be a list of objects with a `type`: skipped")
        return None
    host = ""
    query: dict[str, str] = {}
    values: set[str] = set()
    for item in has:
        kind, key, value = item.get("type"), item.get("key"), item.get("value")
        if kind in ("header", "cookie"):
            b.warn(line, "import.conditional", f"{what}: a `has` {kind} condition ({json.dumps(key)}) cannot be "
                   "expressed as a rule: skipped")
            return None
        if kind not in ("query", "host") or (kind == "query" and (not isinstance(key, str) or not key)) \
                or not isinstance(value, str | None) or (kind == "host" and not value):
            b.warn(line, "import.syntax", f"{what}: `has` item {json.dumps(item)} is not a query (`key`, optional "
                   "`value`) or host (`value`) condition: skipped")
            return None
        literal = _literal(value, kind == "host") if value else "*"
        if literal is None or (kind == "query" and value and literal == "*"):
            b.warn(line, "import.conditional", f"{what}: the `has` {kind} value {json.dumps(value)} is a regex "
                   "(Vercel matches it anchored at both ends); a rule compares "
                   f"{'the host' if kind == 'host' else 'query values'} as text: skipped")
            return None
        if kind == "host":
            why = ("not a host name" if not valid_host(literal.lower()) else "never Vercel's lower-case Host"
                   if literal != literal.lower() else f"not {host}, which another item wants" if host
                   not in ("", literal) else "")
            if why:
                b.warn(line, "import.conditional", f"{what}: the `has` host {json.dumps(value)} is {why}: "
                       "the redirect never applies: skipped")
                return None
            host = literal
            continue
        assert isinstance(key, str)
        if query.get(key, "*") not in ("*", literal) and literal != "*":
            b.warn(line, "import.conditional", f"{what}: the `has` query parameter {json.dumps(key)} must be both "
                   f"{json.dumps(query[key])} and {json.dumps(literal)}: the redirect never applies: skipped")
            return None
        query[key] = literal if query.get(key, "*") == "*" else query[key]
        if not value:
            values.add(re.sub(r"[^A-Za-z]", "", key))
    return host, query, values - {""}


def _literal(value: str, host: bool) -> str | None:
    """The one text a `has` value (a regex, anchored at both ends) matches, None when it matches
    other texts too. A host's unescaped `.` is read as a dot (it also matches any character: a Host
    differing from the name there is another domain, which Vercel routes only if it is one of the
    project's)."""
    text = value[1:] if value.startswith("^") else value
    text = text[:-1] if text.endswith("$") and not text.endswith("\\$") else text
    out: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            if char.isalnum():  # `\d`, `\w`, `\b`...: a class or an assertion
                return None
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in _REGEX_META and not (host and char == "."):
            return None
        else:
            out.append(char)
    return None if escaped or not out else "".join(out)


def _condition_values(b: _Builder, line: int, what: str, source: str, target: str, host: str,
                      values: set[str]) -> str | None:
    """`target` with `:host` as the literal host a `has` host item matched (Next.js sets it); None,
    with a warning, when it uses a query parameter's value, which a rule cannot carry over."""
    sources = set(re.findall(r":([A-Za-z_][A-Za-z0-9_]*)", source))
    for name in sorted(values | ({"host"} if host else set())):
        if name in sources or not re.search(r":" + name + r"(?![A-Za-z0-9_])", target):
            continue
        if name == "host" and "host" not in values:
            target = re.sub(r":host(?![A-Za-z0-9_])", host, target)
            continue
        b.warn(line, "import.conditional", f"{what}: the destination uses `:{name}`, the value of a `has` query "
               "parameter, which a rule cannot carry over: skipped", name="to")
        return None
    return target


def _shape(source: str) -> Shape:
    """The paths `source` matches (Vercel matches strictly: the trailing slash as written)."""
    parts = source.split("/")[1:]
    segs: list[str | None] = []
    for i, part in enumerate(parts):
        if re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*", part):
            segs.append(None)
        elif i == len(parts) - 1 and re.fullmatch(r":[A-Za-z_][A-Za-z0-9_]*\*", part):
            return Shape(tuple(segs), SOME)
        elif re.search(r"[:()*+?{}\\]", part) or (part == "" and i < len(parts) - 1):
            literal = re.match(r"[^:()*+?{}\\]*", source)
            assert literal is not None
            return Shape(opaque=True, prefix=literal.group(0).rsplit("/", 1)[0] or "/")
        else:
            segs.append(_path(part))
    return Shape(tuple(segs))


def _add(found: list[Candidate], line: int, what: str, source: str, target: str, status: int, host: str = "",
         query: dict[str, str] | None = None) -> None:
    """`source` (path-to-regexp) → `target` as a path pattern when it can be one, else as a regex
    (`:name*`: a regex, as Vercel matches `/docs/:path*` strictly: `/docs`, `/docs/a`, not `/docs/`);
    for `host` alone (`//host/path`, a host's regex), with the `query` conditions."""
    tokens = list(_TOKEN.finditer(source))
    slashed = _slashed(target)
    pattern: list[str] = []
    regex: list[str] = []
    simple = True
    names: list[str] = []
    for n, t in enumerate(tokens):
        name, own, modifier, group, group_modifier, escaped, char = t.groups()
        last = n == len(tokens) - 1
        if name is not None:
            names.append(name)
            body = own[1:-1] if own else "[^/#?]+?"
            after_slash = bool(regex) and regex[-1] == "/"
            if own is None and modifier is None and after_slash:
                pattern.append("{" + name + "}")
            elif own is None and modifier == "*" and after_slash and last:
                pattern[-1:] = ["/{" + name + ":path}"]
            else:
                simple = False
            if modifier == "*" and after_slash and name in slashed:
                # the group holds the slash: an absent value drops it from the destination, as Vercel does
                regex[-1:] = [f"(?P<{name}>/{body}(?:/{body})*)?"]
            elif modifier in ("*", "+") and after_slash:
                regex[-1:] = [f"(?:/(?P<{name}>{body}(?:/{body})*)){'?' if modifier == '*' else ''}"]
            elif modifier == "?" and after_slash:
                regex[-1:] = [f"(?:/(?P<{name}>{body}))?"]
            else:
                regex.append(f"(?P<{name}>{body}){modifier or ''}")
        elif group is not None:
            simple = False
            regex.append(group + (group_modifier or ""))
        else:
            literal = escaped if escaped is not None else char
            pattern.append(_path(literal))
            regex.append(re.escape(literal) if literal != "/" else "/")
    star = any(t.group(3) == "*" for t in tokens)
    plain = [{"from": ("//" + host if host else "") + "".join(pattern), "to": _destination(target, names),
              "status": status}]
    form = ("^" + "".join(regex) + "$", _destination(target, names, slashed), status)
    found.append(Candidate(line, what, replace(_shape(source), host=host), plain if simple and not star else None,
                           form, source, query=query or None))


def _split(target: str) -> tuple[str, str]:
    split = re.match(r"(?i)(https?://[^/?#]*)?(.*)$", target, re.DOTALL)
    assert split is not None
    return split.group(1) or "", split.group(2)


def _slashed(target: str) -> set[str]:
    """The `:name*` whose every use in `target` is `/:name*` in its path (not right after the host):
    their regex group holds that slash, so that an absent value drops it as Vercel does."""
    origin, path = _split(target)
    head = re.match(r"[^?#]*", path)
    assert head is not None
    uses = re.findall(r"(/?):([A-Za-z_][A-Za-z0-9_]*)\*?", path)
    heads = re.findall(r"(/?):([A-Za-z_][A-Za-z0-9_]*)\*", head.group(0))
    out = {name for slash, name in heads if slash and not (origin and path.startswith("/:" + name))}
    return {name for name in out if all(slash for slash, used in uses if used == name)
            and sum(1 for _, used in uses if used == name) == sum(1 for _, used in heads if used == name)}


def _destination(target: str, names: list[str], slashed: AbstractSet[str] = frozenset()) -> str:
    """`:name` (and `:name*`, `:name+`) in the destination's path, query and fragment → `{name}`;
    `/:name*` → `{name}` for the `slashed` ones."""

    def placeholder(m: re.Match[str]) -> str:
        if m.group(2) not in names:
            return m.group(0)
        return m.group(1) * (m.group(2) not in slashed) + "{" + m.group(2) + "}"

    origin, path = _split(target)
    return origin + re.sub(r"(/?):([A-Za-z_][A-Za-z0-9_]*)[*+?]?", placeholder, path)


def _route_location(route: dict[str, Any]) -> str | None:
    headers = route.get("headers")
    if route.get("status") not in _STATUS_CODES or not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "location" and isinstance(value, str):
            return value
    return None


def _route(b: _Builder, found: list[Candidate], line: int, route: dict[str, Any]) -> None:
    src, location = route.get("src"), _route_location(route)
    what = f"route {json.dumps(src)}"
    if not isinstance(src, str) or location is None:
        b.warn(line, "import.syntax", f"{what}: `src` must be a string: skipped")
        return
    if route.get("has") or route.get("missing") or route.get("methods"):
        b.warn(line, "import.conditional", f"{what}: its conditions cannot be expressed as a rule: skipped")
        return
    status = b.status(route["status"], line, what)
    if status is None:
        return
    regex = src if src.startswith("^") else "^" + src
    regex = regex if regex.endswith("$") else regex + "$"
    found.append(Candidate(line, what, Shape(opaque=True, prefix=regex_prefix(regex)), None,
                           (regex, location, status), src))


def _key_line(text: str, key: str) -> int:
    m = re.search(r'"' + re.escape(key) + r'"\s*:', text)
    return text.count("\n", 0, m.start()) + 1 if m else 1


def _entry_lines(text: str, array: str, key: str, count: int) -> list[int]:
    """The line of each entry of the top-level `array`, read from the `"key":` of each (in order)."""
    start = re.search(r'"' + re.escape(array) + r'"\s*:\s*\[', text)
    if start is None:
        return [1] * count
    base = start.end()
    lines = [text.count("\n", 0, base + m.start()) + 1
             for m in re.finditer(r'"' + re.escape(key) + r'"\s*:', text[base:])][:count]
    first = text.count("\n", 0, start.start()) + 1
    return lines if len(lines) == count else [first] * count

