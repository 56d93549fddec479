"""Query conditions of a rule: `query_match` and `query_exact`. Pure functions, no I/O.

Rules of this module:
- `query_match` names query parameters the request must carry: a value each, or `*` for "present,
  with any value (an empty one included)". Order does not matter, nor do other parameters;
- `query_exact: true` adds "and no other parameter": with no `query_match`, the request must carry
  no query parameter at all (nginx's `$request_uri` compared with a path, Apache's
  `RewriteCond %{QUERY_STRING} ^$`);
- a request's query is read as browsers and servers write it: `&`-separated `name=value` pairs,
  `+` a space, percent-escapes decoded (a parameter without `=` has the empty value; empty
  pieces, `a&&b`, are no parameter);
- a rule's conditions are held as one canonical text, `name=value&...`, names sorted, `%`, `&`,
  `=`, `+`, `#` and bytes outside printable ASCII percent-encoded, `*` standing for "any value"
  (a literal `*` value is written `%2A`). Files and the admin API may give a mapping instead:
  `{page_id: "1", ref: "*"}`. The canonical text is what the store, CSV and equality use;
- conditions are checked after the path lookup, on the few rules the path found: a rule with
  conditions costs a query parse on the requests whose path it matches, and no rule without any
  costs anything (`matcher`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_plus

#: The value that means "present, with any value".
ANY = "*"
#: Most conditions one rule may hold (a rule is not a query-string database), and the most
#: characters of one name or value.
MAX_CONDITIONS = 32
MAX_TEXT = 256
#: Query parameters a request is read for at most (the rest are ignored, as servers cap them).
MAX_REQUEST_PARAMETERS = 256

#: Characters left as they are in a canonical name or value.
_SAFE = "!$'()*,-./:;<>?@[\\]^_`{|}~"

Conditions = tuple[tuple[str, str], ...]


class QueryMatchError(ValueError):
    """A `query_match` that cannot be read; the message says what would be valid."""


def _encode(text: str) -> str:
    return quote(text, safe=_SAFE)


def canonical(conditions: Conditions) -> str:
    """The canonical text of parsed conditions (names sorted)."""
    parts = []
    for name, value in sorted(conditions):
        parts.append(_encode(name) + "=" + (ANY if value == ANY else _encode(value).replace("*", "%2A")))
    return "&".join(parts)


@functools.lru_cache(maxsize=4096)
def parse_text(text: str) -> Conditions:
    """Conditions from their text form `name=value&name=*` (a name alone is `name=*`)."""
    if len(text) > 3 * MAX_CONDITIONS * (2 * MAX_TEXT + 2):  # percent-encoded at most: no more to read
        raise QueryMatchError(f"is too long: at most {MAX_CONDITIONS} parameters of {MAX_TEXT} characters")
    pairs: list[tuple[str, str]] = []
    for piece in text.split("&"):
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        if not name:
            raise QueryMatchError(f"{piece!r} has no parameter name: write name=value or name=*")
        pairs.append((unquote_plus(name), ANY if not eq or value == ANY else unquote_plus(value)))
    return _checked(pairs)


def parse_mapping(mapping: Mapping[Any, Any]) -> Conditions:
    """Conditions from a mapping {name: value}; a value is text or an integer, `*` any value."""
    pairs: list[tuple[str, str]] = []
    for name, value in mapping.items():
        if not isinstance(name, str) or not name:
            raise QueryMatchError(f"a parameter name must be non-empty text, got {name!r}")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise QueryMatchError(
                f"the value of {name!r} must be text (or {ANY!r} for any value), got {type(value).__name__}"
            )
        pairs.append((name, str(value)))
    return _checked(pairs)


def parse(value: Any) -> Conditions:
    """Conditions from a file's or the API's value: a mapping or the text form."""
    if isinstance(value, Mapping):
        return parse_mapping(value)
    if isinstance(value, str):
        return parse_text(value)
    raise QueryMatchError(
        f"must be a mapping of query parameters such as {{page_id: '1', ref: '*'}} "
        f"or the text page_id=1&ref=*, got {type(value).__name__}"
    )


def _checked(pairs: list[tuple[str, str]]) -> Conditions:
    if not pairs:
        raise QueryMatchError(
            "names no parameter: give at least one (page_id=1, ref=*), or leave query_match out "
            "(query_exact: true alone matches requests without a query)"
        )
    if len(pairs) > MAX_CONDITIONS:
        raise QueryMatchError(f"names {len(pairs)} parameters; at most {MAX_CONDITIONS}")
    for name, value in pairs:
        if len(name) > MAX_TEXT or len(value) > MAX_TEXT:
            raise QueryMatchError(f"a parameter name or value is longer than {MAX_TEXT} characters")
    seen: set[str] = set()
    for name, _value in pairs:
        if name in seen:
            raise QueryMatchError(f"names the parameter {name!r} twice: give each parameter once")
        seen.add(name)
    return tuple(sorted(pairs))


def as_mapping(text: str) -> dict[str, str]:
    """The canonical text as the mapping files and the API show."""
    return dict(parse_text(text))


def request_parameters(query: str) -> list[tuple[str, str]]:
    """A request's query as (name, value) pairs, in order (at most MAX_REQUEST_PARAMETERS)."""
    pairs = []
    for piece in query.split("&", MAX_REQUEST_PARAMETERS)[:MAX_REQUEST_PARAMETERS]:
        if piece:
            name, _eq, value = piece.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def satisfied(conditions: Conditions, exact: bool, query: str) -> bool:
    """Whether a request's raw query (without `?`) meets the conditions."""
    if not query:
        return not conditions
    params = request_parameters(query)
    if exact:
        names = {name for name, _ in conditions}
        if any(name not in names for name, _ in params):
            return False
    for name, wanted in conditions:
        if wanted == ANY:
            if not any(n == name for n, _ in params):
                return False
        elif not any(n == name and v == wanted for n, v in params):
            return False
    return True


def may_meet(a: str | None, a_exact: bool, b: str | None, b_exact: bool) -> bool:
    """Whether one request's query can meet two rules' conditions (canonical texts, exact flags)."""
    ca = dict(parse_text(a)) if a else {}
    cb = dict(parse_text(b)) if b else {}
    for name in ca.keys() & cb.keys():
        if ANY not in (ca[name], cb[name]) and ca[name] != cb[name]:
            return False
    if a_exact and any(name not in ca for name in cb):
        return False
    return not (b_exact and any(name not in cb for name in ca))


def describe(conditions: Conditions, exact: bool) -> str:
    """A short text for explanations: `page_id=1, ref present (no other parameter)`."""
    said = [f"{n} present" if v == ANY else f"{n}={v}" for n, v in conditions]
    if exact:
        said.append("no other parameter" if conditions else "no query")
    return ", ".join(said)
