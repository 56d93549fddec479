"""What a regex on nginx's `$request_uri` (path and query, `?` between) says about the query.

A `map $request_uri` key (`~^/a/?$`) is matched against `/a?x=1` as one string, a rule's
`from_regex` against the path alone. Read with Python's regex parser (the PCRE subset such keys
use), a key is one of:

- QUERY_NONE: no part of it can match a `?` and it ends with `$`: it matches a request without a
  query only (`/a`, not `/a?x=1`): the rule gets `query_exact: true`;
- QUERY_ANY: no part of it can match a `?` and it does not end with `$`: it matches the path
  whatever the query (`~^/a/` matches `/a/b?x=1`), and its groups never hold the query: the rule
  as it is;
  A key whose parts that can match a `?` (`.`, `[^/]`, `\\W`...) are followed by text it needs
  before its final `$` (`^/(.*)/end/?$`) is read so too: it matches a query only when the query
  itself ends with that text (`/x?q=/end`), which no real request does by chance;
- QUERY_INSIDE: any other key with a part that can match a `?`: what it does with a query depends
  on the request (`^/a/(.*)$` takes `b?x=1` into its group); the rule's regex reads the path and
  query as nginx does (`regex_query`), its groups pasted into the target as they were received;
- None: the key cannot be read.
"""

from __future__ import annotations

import re
from re import _constants as c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any, Literal

QueryUse = Literal["none", "any", "inside"]
QUERY_NONE: QueryUse = "none"
QUERY_ANY: QueryUse = "any"
QUERY_INSIDE: QueryUse = "inside"

_QMARK = ord("?")
#: Class categories that hold `?`.
_CATEGORIES_WITH_QMARK = {c.CATEGORY_NOT_WORD, c.CATEGORY_NOT_DIGIT, c.CATEGORY_NOT_SPACE,
                          c.CATEGORY_UNI_NOT_WORD, c.CATEGORY_UNI_NOT_DIGIT, c.CATEGORY_UNI_NOT_SPACE}


def query_use(regex: str) -> QueryUse | None:
    """How a `$request_uri` regex (without nginx's `~`/`~*`) treats a request's query."""
    try:
        parsed = sre_parse.parse(regex)
    except (re.error, OverflowError, RecursionError):
        return None
    items = list(parsed)
    anchored = bool(items) and items[-1] == (c.AT, c.AT_END)
    capable = [i for i, item in enumerate(items) if _can_match_qmark([item])]
    if not capable:
        return QUERY_NONE if anchored else QUERY_ANY
    if anchored and not _names_qmark(items) and _needs_text(items[capable[-1] + 1 :]):
        return QUERY_NONE
    return QUERY_INSIDE


def _names_qmark(items: list[tuple[Any, Any]]) -> bool:
    """Whether a literal `?` (`\\?`, `[?]`) is written in it: a key that matches a query on purpose."""
    for op, av in items:
        if op is c.LITERAL and av == _QMARK:
            return True
        if op is c.IN and any(o is c.LITERAL and a == _QMARK for o, a in av):
            return True
        if op is c.SUBPATTERN and _names_qmark(list(av[-1])):
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and _names_qmark(list(av[2])):
            return True
        if op is c.BRANCH and any(_names_qmark(list(branch)) for branch in av[1]):
            return True
    return False


def _needs_text(items: list[tuple[Any, Any]]) -> bool:
    """Whether a sequence matches no empty string (some part of it always takes a character)."""
    for op, av in items:
        if op is c.LITERAL or op is c.NOT_LITERAL or op is c.ANY or op is c.IN:
            return True
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT) and av[0] >= 1 and _needs_text(list(av[2])):
            return True
        if op is c.SUBPATTERN and _needs_text(list(av[-1])):
            return True
        if op is c.BRANCH and all(_needs_text(list(branch)) for branch in av[1]):
            return True
    return False


def _class_has_qmark(items: list[tuple[Any, Any]]) -> bool:
    negate = False
    found = False
    for op, av in items:
        if op is c.NEGATE:
            negate = True
        elif op is c.LITERAL:
            found = found or av == _QMARK
        elif op is c.RANGE:
            found = found or av[0] <= _QMARK <= av[1]
        elif op is c.CATEGORY:
            found = found or av in _CATEGORIES_WITH_QMARK
        else:  # anything unusual: say it may
            found = True
    return found != negate


def _can_match_qmark(items: list[tuple[Any, Any]]) -> bool:
    for op, av in items:
        if op is c.LITERAL:
            if av == _QMARK:
                return True
        elif op is c.NOT_LITERAL or op is c.ANY:
            if op is c.ANY or av != _QMARK:
                return True
        elif op is c.IN:
            if _class_has_qmark(av):
                return True
        elif op is c.SUBPATTERN:
            if _can_match_qmark(list(av[-1])):
                return True
        elif op is c.BRANCH:
            if any(_can_match_qmark(list(branch)) for branch in av[1]):
                return True
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            if _can_match_qmark(list(av[2])):
                return True
        elif op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            continue  # anchors and look-arounds consume nothing
        elif op is c.GROUPREF or op is c.GROUPREF_EXISTS or op is c.ATOMIC_GROUP:
            return True  # rare: say it may
    return False
