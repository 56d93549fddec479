"""The one table of 3xx semantics every part of redirectory reads.

Pure data, no I/O. Sources: RFC 9110 §15.4 (per-code rules), §15.1 (heuristic
cacheability), RFC 7538 (308) and the REST design guide's redirection page
("302 MUST NOT be used", "303 ... no body", "304 ... empty body").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from http import HTTPStatus


class MethodChange(StrEnum):
    """What a client may do to the request method when it follows the redirect."""

    MAY_CHANGE_TO_GET = "may-change-to-get"  # 301, 302: POST -> GET allowed for historical reasons
    MUST_CHANGE_TO_GET = "must-change-to-get"  # 303: the follow-up is a GET (HEAD stays HEAD)
    MUST_NOT_CHANGE = "must-not-change"  # 307, 308: same method, same body
    NOT_A_REDIRECT = "not-a-redirect"  # 304: nothing to follow


class BodyPolicy(StrEnum):
    """What redirectory puts in (or accepts in) the body of this status."""

    EMPTY = "empty"  # we send Content-Length: 0 (a short note is allowed by the RFC, not by us)
    NONE = "none"  # no body at all: the guide says 303 has no body content
    FORBIDDEN = "forbidden"  # 304: framing ends at the headers (RFC 9110 §15.4.5, RFC 9112 §6.3)


@dataclass(frozen=True, slots=True)
class StatusSemantics:
    code: int
    reason: str
    permanent: bool | None  # None: neither (303 points elsewhere, 304 is not a move)
    method_change: MethodChange
    location_required: bool  # our rule for what we emit (the RFC says SHOULD, the guide says SHOULD)
    body: BodyPolicy
    heuristically_cacheable: bool  # RFC 9110 §15.1
    emittable: bool  # may redirectory emit it?
    rfc: str
    note: str

    @property
    def is_redirect(self) -> bool:
        """True for codes that send the client elsewhere (all but 304)."""
        return self.method_change is not MethodChange.NOT_A_REDIRECT

    @property
    def preserves_method(self) -> bool:
        return self.method_change is MethodChange.MUST_NOT_CHANGE


TABLE: dict[int, StatusSemantics] = {
    s.code: s
    for s in (
        StatusSemantics(
            code=301,
            reason="Moved Permanently",
            permanent=True,
            method_change=MethodChange.MAY_CHANGE_TO_GET,
            location_required=True,
            body=BodyPolicy.EMPTY,
            heuristically_cacheable=True,
            emittable=True,
            rfc="RFC 9110 §15.4.2",
            note="Permanent move; clients may turn POST into GET, so use 308 for non-GET endpoints.",
        ),
        StatusSemantics(
            code=302,
            reason="Found",
            permanent=False,
            method_change=MethodChange.MAY_CHANGE_TO_GET,
            location_required=True,
            body=BodyPolicy.EMPTY,
            heuristically_cacheable=False,
            emittable=False,
            rfc="RFC 9110 §15.4.3",
            note="MUST NOT be used (guide): use 303 or 307 for temporary, 301 or 308 for permanent.",
        ),
        StatusSemantics(
            code=303,
            reason="See Other",
            permanent=None,
            method_change=MethodChange.MUST_CHANGE_TO_GET,
            location_required=True,
            body=BodyPolicy.NONE,
            heuristically_cacheable=False,
            emittable=True,
            rfc="RFC 9110 §15.4.4",
            note="The work is done; GET the result at Location. No body (guide).",
        ),
        StatusSemantics(
            code=304,
            reason="Not Modified",
            permanent=None,
            method_change=MethodChange.NOT_A_REDIRECT,
            location_required=False,
            body=BodyPolicy.FORBIDDEN,
            heuristically_cacheable=False,
            emittable=True,
            rfc="RFC 9110 §15.4.5",
            note="The client's copy is current (conditional GET/HEAD only). Empty body.",
        ),
        StatusSemantics(
            code=307,
            reason="Temporary Redirect",
            permanent=False,
            method_change=MethodChange.MUST_NOT_CHANGE,
            location_required=True,
            body=BodyPolicy.EMPTY,
            heuristically_cacheable=False,
            emittable=True,
            rfc="RFC 9110 §15.4.8",
            note="Temporary; re-send the same method and body to Location.",
        ),
        StatusSemantics(
            code=308,
            reason="Permanent Redirect",
            permanent=True,
            method_change=MethodChange.MUST_NOT_CHANGE,
            location_required=True,
            body=BodyPolicy.EMPTY,
            heuristically_cacheable=True,
            emittable=True,
            rfc="RFC 9110 §15.4.9, RFC 7538",
            note="Permanent move that keeps the method and body.",
        ),
    )
}

#: Codes a redirect may use: every emittable code that sends the client elsewhere.
REDIRECT_STATUSES: tuple[int, ...] = tuple(
    code for code, s in sorted(TABLE.items()) if s.emittable and s.is_redirect
)
#: The status of a rule that redirects nothing: its requests are answered as if no rule matched
#: (the gateway's 404; the toolkit passes them to the application), whatever rule of lower
#: precedence would have redirected them. An exclusion, and what a migrated server's paths that
#: serve content become.
NOT_REDIRECTED = 404
#: Codes a rule may use.
RULE_STATUSES: tuple[int, ...] = (*REDIRECT_STATUSES, NOT_REDIRECTED)

#: Methods that a 301 may safely be used for (clients may switch others to GET).
SAFE_FOR_301: frozenset[str] = frozenset({"GET", "HEAD"})

#: Default Cache-Control max-age for permanent redirects whose rule sets no `cache`:
#: heuristic caching of 301/308 could otherwise keep a mistake in clients for a long time.
DEFAULT_PERMANENT_MAX_AGE = 3600

#: `cache: ramp` (a bake-in period for permanent moves): a new or changed 301/308 starts at
#: RAMP_START seconds of max-age and doubles it for each whole day the rule stays unchanged, up to
#: RAMP_CAP. A mistaken 301 cached for a year cannot be taken back; one cached for five minutes can.
RAMP = "ramp"
RAMP_START = 300
RAMP_CAP = 31_536_000
#: The day a ramp reaches its cap (300 * 2**17 > a year).
RAMP_DAYS = next(d for d in range(64) if RAMP_START << d >= RAMP_CAP)


def ramp_max_age(days: int) -> int:
    """The max-age of a ramped permanent redirect `days` whole days after its rule last changed."""
    if days <= 0:
        return RAMP_START
    return RAMP_CAP if days >= RAMP_DAYS else RAMP_START << days


def semantics(code: int) -> StatusSemantics:
    """The table entry for `code`; KeyError for codes outside the table."""
    return TABLE[code]


def alternatives_to_302() -> str:
    """The wording every part uses when refusing 302."""
    return "302 must not be used: use 303 or 307 for a temporary redirect, 301 or 308 for a permanent one"


#: RFC 9110 §15 names where Python's `http.HTTPStatus` still has the RFC 7231 ones.
_RFC9110_NAMES: dict[int, str] = {413: "Content Too Large"}


def reason_phrase(code: int) -> str:
    """The reason phrase of any status code: the table's for 3xx, else RFC 9110's (via
    `http.HTTPStatus`); "Unknown" for a code neither knows. Every part takes phrases from here."""
    entry = TABLE.get(code)
    if entry is not None:
        return entry.reason
    if code in _RFC9110_NAMES:
        return _RFC9110_NAMES[code]
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"
