"""Small helpers the checks share (pure)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from redirectory.check.model import Exchange
from redirectory.semantics import TABLE

#: Codes that send the client elsewhere (the semantics table, 304 excluded).
REDIRECTS = frozenset(code for code, s in TABLE.items() if s.is_redirect)
SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_URI_CHARS = re.compile(r"(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")


def status(ex: Exchange) -> int:
    return 0 if ex.response is None else ex.response.status


def is_redirect(ex: Exchange) -> bool:
    return status(ex) in REDIRECTS


def valid_uri_reference(value: str) -> str | None:
    """None when `value` is a URI-reference (RFC 3986), else why not."""
    if not value.strip():
        return "it is empty"
    if value != value.strip(" \t"):
        return "it has leading or trailing whitespace"
    bad = next((ch for ch in value if ord(ch) < 0x21 or ord(ch) == 0x7F), None)
    if bad is not None:
        return "it contains an unencoded space" if bad == " " else f"it contains the control character {bad!r}"
    if not _URI_CHARS.fullmatch(value):
        wrong = next((ch for ch in value if not _URI_CHARS.fullmatch(ch) and ch != "%"), "%")
        return f"it contains {wrong!r}, which must be percent-encoded"
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        return str(exc)
    return None


def is_relative(value: str) -> bool:
    return not urlsplit(value.strip()).scheme


def max_age(ex: Exchange) -> int | None:
    """The largest max-age / s-maxage of the response's Cache-Control (httplint's parse), or None."""
    ages = [v for k, v in ex.cache_control.items() if k in ("max-age", "s-maxage") and isinstance(v, int)]
    return max(ages) if ages else None


def path_matches(template: str, path: str) -> bool:
    """An OpenAPI path template (`/users/{id}`) against a concrete path."""
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None
