"""Vercel `vercel.json`: its `redirects` (and the legacy `routes` that redirect) as rules.

`source` is a path-to-regexp pattern: a literal path becomes an exact rule, `/:name` segments
placeholders (`{name}`), a last `/:name*` the rest of the path (`{name:path}`, zero or more
segments, as Vercel matches it); anything else (`:name?`, `:name+`, `:name(regex)`, `(.*)`) becomes
an RE2 regex with the same groups. In `destination`, `:name` (and `:name*`) are the matched values
and `$1`.. the numbered groups. `permanent` (default true) is 308, false 307; `statusCode` wins
when given (302 becomes 307 with a warning, like every importer). `has` / `missing` conditions
cannot be expressed: such a redirect is skipped with a warning. Legacy `routes` entries with a
redirect `status` and a `Location` header are regex rules (their `src` is anchored, as Vercel
anchors it). File-level `trailingSlash` and `cleanUrls` change which paths Vercel itself
redirects; they are not imported (a warning says so).
"""

from __future__ import annotations

import json
import re
from typing import Any

from redirectory.rules.importers._common import _Builder, _path, _regex_rule
from redirectory.rules.model import Problem

#: A path-to-regexp token: a named parameter (`:name`, its own regex, a modifier), a group, an
#: escaped character, or any other character.
_GROUP = r"\((?:\\.|[^()\\]|\([^()]*\))*\)"
_TOKEN = re.compile(rf":([A-Za-z_][A-Za-z0-9_]*)({_GROUP})?([?*+])?|({_GROUP})([?*+])?|\\(.)|(.)", re.DOTALL)
_STATUS_CODES = (301, 302, 303, 307, 308)
_FILE_OPTIONS = ("trailingSlash", "cleanUrls")


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
    lines = _entry_lines(text, "redirects", "source", len(redirects))
    for line, entry in zip(lines, redirects, strict=True):
        _redirect(b, line, entry)
    for line, route in zip(_entry_lines(text, "routes", "src", len(doc.get("routes") or [])),
                           doc.get("routes") or [], strict=True):
        if isinstance(route, dict) and _route_location(route) is not None:
            _route(b, line, route)


def _redirect(b: _Builder, line: int, entry: Any) -> None:
    if not isinstance(entry, dict):
        b.warn(line, "import.syntax", "a redirect must be an object with source and destination: skipped")
        return
    source, target = entry.get("source"), entry.get("destination")
    what = f"redirect {json.dumps(source)}"
    if not isinstance(source, str) or not isinstance(target, str):
        b.warn(line, "import.syntax", f"{what}: `source` and `destination` must both be strings: skipped")
        return
    conditions = [key for key in ("has", "missing") if entry.get(key)]
    if conditions:
        b.warn(line, "import.conditional", f"{what}: `{conditions[0]}` conditions cannot be expressed as a rule: "
               "skipped")
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
    _add(b, line, what, source, target, status)


def _add(b: _Builder, line: int, what: str, source: str, target: str, status: int) -> None:
    """`source` (path-to-regexp) → `target` as a path pattern when it can be one, else as a regex."""
    tokens = list(_TOKEN.finditer(source))
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
            if modifier in ("*", "+") and after_slash:
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
    to = _destination(target, names)
    if simple:
        b.add(line, {"from": "".join(pattern), "to": to, "status": status})
    else:
        _regex_rule(b, line, what, "^" + "".join(regex) + "$", to, status)


def _destination(target: str, names: list[str]) -> str:
    """`:name` (and `:name*`, `:name+`) in the destination's path, query and fragment → `{name}`."""

    def placeholder(m: re.Match[str]) -> str:
        return "{" + m.group(1) + "}" if m.group(1) in names else m.group(0)

    split = re.match(r"(?i)(https?://[^/?#]*)?(.*)$", target, re.DOTALL)
    assert split is not None
    return (split.group(1) or "") + re.sub(r":([A-Za-z_][A-Za-z0-9_]*)[*+?]?", placeholder, split.group(2))


def _route_location(route: dict[str, Any]) -> str | None:
    headers = route.get("headers")
    if route.get("status") not in _STATUS_CODES or not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == "location" and isinstance(value, str):
            return value
    return None


def _route(b: _Builder, line: int, route: dict[str, Any]) -> None:
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
    _regex_rule(b, line, what, regex, location, status)


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

