"""A `rewrite` regex for the paths of its location only.

nginx runs a location's `rewrite` only for the requests that selected that location, but a rule's
`from_regex` answers every path it matches: `location /docs { rewrite ^/(.*)\\.html$ /$1 permanent; }`
must not send `/blog/a.html`. `within(regex, prefix)` writes the regex for the paths that start
with the location's prefix (or a regex location's literal start), with the same matches and groups:

- the regex already requires the prefix (`^/docs/(.*)$` in `location /docs`): as it is;
- a regex that starts (after `^` and a literal part of the prefix) with `.*`/`.+`, captured or not,
  gets the rest of the prefix at the start of it: `^/(.*)\\.html$` -> `^/(docs.*)\\.html$`, exact
  when what follows cannot begin inside the prefix (nothing, `$`, literal text that no tail of the
  prefix starts); literal text before `$` that can (`^/(.*)/$` in `location /q/`: the path `/q/`)
  adds those few paths as alternatives, `^/(q/.*|q)/$`;
- NEVER: it matches no path of the location (`^/blog/` in `location /docs`): nginx never uses it;
- None: anything else (an alternation, a lazy `.*?`, another start): not written.
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

#: `within`'s answer for a regex that matches no path of the location
NEVER = "never"
#: one literal character of a regex as written: escaped, or plain
_LITERAL_TOKEN = re.compile(r"\\[^A-Za-z0-9]|[^\\.^$|?*+()\[\]{}]")
_ANY = re.compile(r"\((\.[*+])\)|\.[*+]")


def location_prefix(location: tuple[str, str]) -> str | None:
    """The literal start every path of a location has: a prefix location's path, or a `~` regex
    location that is `^` + literal text (then `.*`, `(.*)` or `$` at most); None otherwise."""
    mod, where = location
    if mod in ("", "^~"):
        return where if where.startswith("/") else None
    if mod != "~":
        return None  # `~*`: any letter case, where a prefix is compared as written
    items = _items(where)
    if items is None or not items or items[0] != (c.AT, c.AT_BEGINNING):
        return None
    literal, rest = _literals(items[1:])
    if rest and _any_repeat(rest[0]) is not None:
        rest = rest[1:]
    if rest in ([], [(c.AT, c.AT_END)]) and literal.startswith("/"):
        return literal
    return None


def within(regex: str, prefix: str) -> str | None:
    """`regex` (searched in the path, as nginx does) for the paths that start with `prefix` only
    (module docstring); NEVER when none does; None when it cannot be written."""
    if prefix == "/":
        return regex
    if regex.startswith((".*", "(.*)", ".+", "(.+)")):
        regex = "^" + regex  # searched: a `.*` at its start already starts at the path's first character
    items = _items(regex)
    if items is None or not items or items[0] != (c.AT, c.AT_BEGINNING):
        return None
    literal, rest = _literals(items[1:])
    if literal.startswith(prefix):
        return regex
    if not prefix.startswith(literal) or rest == [(c.AT, c.AT_END)]:
        return NEVER  # `^/blog/` or `^/do$` in `location /docs`
    if not rest:
        return "^" + _escaped(prefix)  # `^/d`: every path of `location /docs`
    if _any_repeat(rest[0]) is None:
        return None  # `^/d[a-z]`: unsure
    after = rest[1:]
    inside = _starts_inside(after, prefix, len(literal))
    if inside is None:
        return None
    # the written text: `^`, the literal tokens, then the `.*` (or `(.*)`), then the rest as written
    pos = 1
    for _ in literal:
        m = _LITERAL_TOKEN.match(regex, pos)
        if m is None:
            return None
        pos = m.end()
    m = _ANY.match(regex, pos)
    if m is None:
        return None
    # what the `.*` takes: the rest of the prefix and more, or (the longest first, as it is greedy) the
    # shorter texts after which the rest of the regex matches the path's end inside the prefix
    shorter = [prefix[len(literal):j] for j in sorted(inside, reverse=True)]
    options = "|".join([_escaped(prefix[len(literal):]) + ".*",
                        *(_escaped(g) for g in shorter if g or m.group(0).count("*"))])
    body = f"({options})" if m.group(1) else f"(?:{options})" if "|" in options else options
    return regex[:pos] + body + regex[m.end():]


def _escaped(text: str) -> str:
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


def _items(regex: str) -> list[tuple[Any, Any]] | None:
    try:
        parsed = sre_parse.parse(regex)
    except (re.error, OverflowError, RecursionError):
        return None
    if parsed.state.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    return list(parsed)


def _literals(items: list[tuple[Any, Any]]) -> tuple[str, list[tuple[Any, Any]]]:
    """The literal text the items start with, and the items after it."""
    text: list[str] = []
    for n, (op, av) in enumerate(items):
        if op is not c.LITERAL:
            return "".join(text), items[n:]
        text.append(chr(av))
    return "".join(text), []


def _any_repeat(item: tuple[Any, Any]) -> tuple[Any, Any] | None:
    """`.*` or `.+` (greedy), bare or as the whole of a capturing group; None for anything else."""
    op, av = item
    if op is c.SUBPATTERN and len(av[-1]) == 1:
        op, av = list(av[-1])[0]
    if op is c.MAX_REPEAT and av[0] in (0, 1) and av[1] == c.MAXREPEAT and list(av[2]) == [(c.ANY, None)]:
        return op, av
    return None


def _starts_inside(after: list[tuple[Any, Any]], prefix: str, start: int) -> list[int] | None:
    """Where inside the prefix (from `start` on) what follows the `.*` can begin in a path that
    starts with the prefix: [] for nothing or `$`, or literal text that no tail of the prefix begins;
    for literal text before a `$` (`/$`), the places where the path can end with it (`/q/`: `/q` then
    `/`); None when unsure."""
    if not after or after == [(c.AT, c.AT_END)]:
        return []
    head, rest = _literals(after)
    if not head:
        return None
    if rest == [(c.AT, c.AT_END)]:  # the path ends with exactly `head`: it may begin inside the prefix
        return [j for j in range(start, len(prefix)) if head.startswith(prefix[j:])]
    if any(prefix[j:][:len(head)] == head[:len(prefix) - j] for j in range(start, len(prefix))):
        return None
    return []


def literal_start(regex: str) -> str:
    """The literal text every path `regex` (a path regex anchored with `^`) matches starts with,
    looking into the groups it starts with: `^(?:/(?P<uri>all/.*)$)` -> `/all/`; "" when unsure."""
    items = _items(regex)
    if not items or items[0] != (c.AT, c.AT_BEGINNING):
        return ""
    return _start_of(items[1:])[0]


def _start_of(items: list[tuple[Any, Any]]) -> tuple[str, bool]:
    """(the literal text the items start with, whether that is all of them)."""
    text = ""
    for op, av in items:
        if op is c.LITERAL:
            text += chr(av)
        elif op is c.SUBPATTERN and not av[1] and not av[2]:  # a group without flags
            inner, whole = _start_of(list(av[-1]))
            text += inner
            if not whole:
                return text, False
        else:
            return text, False
    return text, True
