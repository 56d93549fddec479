"""Conditional requests (RFC 9110 §13): one pure function decides 304, 412, 428 or "go on".

`evaluate(method, preconditions, validators)` follows §13.2.2 step by step:

1. If-Match (strong comparison; `*` is true when a current representation exists) → 412;
2. otherwise If-Unmodified-Since (ignored with If-Match, when the date is invalid, or when the
   resource has no modification date) → 412;
3. If-None-Match (weak comparison; `*` is false when a representation exists) → 304 for
   GET/HEAD, 412 for other methods;
4. otherwise If-Modified-Since (GET/HEAD only; ignored with If-None-Match, when the date is
   invalid, or when there is no modification date) → 304.

Preconditions are ignored altogether for CONNECT, OPTIONS and TRACE, and when the response
without them would not be 2xx or 412 (§13.2.1: a redirect or a 404 wins over 304/412). With
`require_if_match`, an unsafe method without If-Match gets 428 (RFC 6585 §3).

An If-Match value that is not a valid list fails (412): the client asked for a guarded write we
cannot verify. An invalid If-None-Match is ignored, and so still hides If-Modified-Since.
Dates compare at one-second resolution, the resolution of HTTP-date.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redirectory.rules.engine import Response, error_body
from redirectory.validators import (
    EntityTag,
    etag_of_version,
    format_http_date,
    parse_etag_list,
    parse_http_date,
    strong_match,
    weak_match,
)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Methods whose preconditions are ignored (RFC 9110 §13.2.1).
UNCONDITIONAL_METHODS = frozenset({"CONNECT", "OPTIONS", "TRACE"})
#: What a 304 keeps of the 200's header fields (§15.4.5), plus cookies. Nothing else: not even
#: Last-Modified, which §15.4.5 would allow without an ETag (the issue asks for exactly this set).
KEPT_ON_304 = frozenset({"cache-control", "content-location", "date", "etag", "expires", "vary", "set-cookie"})

_HEADERS = {
    "if-match": "if_match",
    "if-unmodified-since": "if_unmodified_since",
    "if-none-match": "if_none_match",
    "if-modified-since": "if_modified_since",
}


@dataclass(frozen=True, slots=True)
class Preconditions:
    """The request's conditional header fields, as received (None when absent)."""

    if_match: str | None = None
    if_unmodified_since: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> Preconditions:
        """From header (name, value) pairs in any case; repeated field lines are joined with ", "."""
        items = headers.items() if isinstance(headers, Mapping) else headers
        found: dict[str, str] = {}
        for name, value in items:
            key = _HEADERS.get(name.lower())
            if key is not None:
                found[key] = f"{found[key]}, {value}" if key in found else value
        return cls(**found)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.if_match, self.if_unmodified_since,
                                           self.if_none_match, self.if_modified_since))


@dataclass(frozen=True, slots=True)
class Validators:
    """What the server knows of the selected representation."""

    etag: EntityTag | None = None
    last_modified: datetime | None = None
    exists: bool = True  # a current representation exists (what `*` tests)

    @classmethod
    def of(
        cls,
        *,
        etag: EntityTag | str | None = None,
        version: int | str | None = None,
        updated_at: datetime | None = None,
        weak: bool = False,
        exists: bool = True,
    ) -> Validators:
        """Validators from an ETag (`"x"` / `W/"x"` or an EntityTag), a version, an update time."""
        if etag is not None and version is not None:
            raise ValueError("pass either etag or version, not both")
        tag = EntityTag.parse(etag) if isinstance(etag, str) else etag
        if version is not None:
            tag = etag_of_version(version, weak=weak)
        if updated_at is not None and updated_at.tzinfo is None:
            raise ValueError("updated_at must be timezone-aware (e.g. datetime.now(UTC))")
        return cls(tag, updated_at, exists)

    def headers(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """ETag and Last-Modified header fields for these validators.

        Last-Modified is never later than one second before `now`: it must not be later than
        the response's Date (RFC 9110 §8.8.2.1), and servers such as uvicorn refresh Date once
        a second. A just-modified resource then gets one more 200, never a false 304.
        """
        out: list[tuple[str, str]] = []
        if self.etag is not None:
            out.append(("etag", str(self.etag)))
        if self.last_modified is not None:
            latest = (now or datetime.now(UTC)).replace(microsecond=0) - timedelta(seconds=1)
            out.append(("last-modified", format_http_date(min(_seconds(self.last_modified), latest))))
        return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """`status` is None to go on with the request, or 304, 412 or 428."""

    status: int | None
    decided_by: str | None = None  # the header field (or policy) that decided
    detail: str = ""

    @property
    def proceed(self) -> bool:
        return self.status is None


PROCEED = Outcome(None)


def _seconds(when: datetime) -> datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.replace(microsecond=0)


def evaluate(
    method: str,
    preconditions: Preconditions,
    validators: Validators,
    *,
    unconditional_status: int = 200,
    require_if_match: bool = False,
) -> Outcome:
    """The outcome of the request's preconditions (RFC 9110 §13.2.2), see the module docstring."""
    method = method.upper()
    if method in UNCONDITIONAL_METHODS:
        return PROCEED
    if not (200 <= unconditional_status < 300 or unconditional_status == 412):
        return PROCEED
    p, v = preconditions, validators
    if require_if_match and method not in SAFE_METHODS and p.if_match is None:
        return Outcome(428, "If-Match", f"{method} needs an If-Match header with the resource's current ETag")
    last_modified = _seconds(v.last_modified) if v.last_modified is not None else None
    # Step 1: If-Match
    if p.if_match is not None:
        tags = parse_etag_list(p.if_match)
        if tags is None:
            return Outcome(412, "If-Match", "If-Match is not '*' or a list of entity-tags")
        if isinstance(tags, str):  # ANY
            ok = v.exists
        else:
            ok = v.etag is not None and any(strong_match(v.etag, t) for t in tags)
        if not ok:
            return Outcome(412, "If-Match", "the resource's current ETag does not match If-Match")
    # Step 2: If-Unmodified-Since
    elif p.if_unmodified_since is not None and last_modified is not None:
        date = parse_http_date(p.if_unmodified_since)
        if date is not None and last_modified > date:
            return Outcome(412, "If-Unmodified-Since", "the resource was modified after If-Unmodified-Since")
    # Step 3: If-None-Match
    if p.if_none_match is not None:
        tags = parse_etag_list(p.if_none_match)
        if isinstance(tags, str):  # ANY
            matched = v.exists
        elif tags is None:
            matched = False
        else:
            matched = v.etag is not None and any(weak_match(v.etag, t) for t in tags)
        if matched:
            if method in ("GET", "HEAD"):
                return Outcome(304, "If-None-Match", "the client's copy is current")
            return Outcome(412, "If-None-Match", "If-None-Match matches the resource's current ETag")
    # Step 4: If-Modified-Since
    elif p.if_modified_since is not None and method in ("GET", "HEAD") and last_modified is not None:
        date = parse_http_date(p.if_modified_since)
        if date is not None and last_modified <= date:
            return Outcome(304, "If-Modified-Since", "not modified since If-Modified-Since")
    return PROCEED


def not_modified_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The header fields a 304 keeps of the 200's (§15.4.5), in their order, names lower-cased."""
    return [(k.lower(), v) for k, v in headers if k.lower() in KEPT_ON_304]


def outcome_response(outcome: Outcome, headers: Iterable[tuple[str, str]] = ()) -> Response:
    """The response for a 304, 412 or 428 outcome; `headers` are those the 200 would have had."""
    if outcome.status == 304:
        return Response(304, tuple(not_modified_headers(headers)))
    if outcome.status in (412, 428):
        title = "Precondition Failed" if outcome.status == 412 else "Precondition Required"
        key = "preconditionFailed" if outcome.status == 412 else "preconditionRequired"
        body = error_body("urn:redirectory:error:", outcome.status, title, key, outcome.detail)
        return Response(outcome.status, (("content-type", "application/json"), ("content-language", "en"),
                                         ("content-length", str(len(body))), ("cache-control", "no-store")), body)
    raise ValueError(f"no response for outcome {outcome.status}: only 304, 412 and 428 have one")


def response_validators(headers: Iterable[tuple[str, str]]) -> Validators:
    """Validators read from a response's ETag and Last-Modified (invalid values are ignored)."""
    etag = last_modified = None
    for name, value in headers:
        name = name.lower()
        if name == "etag":
            try:
                etag = EntityTag.parse(value)
            except ValueError:
                etag = None
        elif name == "last-modified":
            last_modified = parse_http_date(value)
    return Validators(etag, last_modified)
