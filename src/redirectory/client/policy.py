"""The sans-IO core: given a request and a 3xx answer, decide the next request, or refuse, and say why.

No I/O here. The facts about each status (permanent or not, may the method change) come from
`redirectory.semantics`, the one table every part of redirectory reads; this module adds the
client's choices on top: the 302 and 301 policies, cross-origin credential stripping and the
https -> http refusal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import httpx

from redirectory.client.errors import Redirect302Refused, UnsafeRedirect
from redirectory.semantics import SAFE_FOR_301, TABLE, MethodChange, alternatives_to_302

__all__ = [
    "CONTENT_HEADERS",
    "DEFAULT_SENSITIVE_HEADERS",
    "Decision",
    "Policy",
    "Redirect301",
    "Redirect302",
    "credentials_follow",
    "decide",
    "follows",
    "memory_key",
    "origin",
    "resolve_location",
]

Redirect302 = Literal["historic", "preserve", "error"]
Redirect301 = Literal["historic", "preserve"]

#: Headers that describe the request body: dropped when the follow-up has no body (RFC 9110 §15.4, item 5).
CONTENT_HEADERS: tuple[str, ...] = (
    "content-type", "content-length", "content-encoding", "content-language", "content-location",
    "transfer-encoding", "digest", "content-digest", "repr-digest", "last-modified",
)

#: Credentials that never cross to another origin (RFC 9110 §15.4, items 2 and 3).
DEFAULT_SENSITIVE_HEADERS: frozenset[str] = frozenset({"authorization", "cookie", "proxy-authorization"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Policy:
    """The client's choices where the RFC leaves room.

    `redirect_302`: "historic" (POST becomes GET, as browsers do, with a warning: the guide says
    302 MUST NOT be used), "preserve" (same method and body, like 307) or "error" (refuse: strict
    mode for testing a service against the guide). `redirect_301`: "historic" (POST becomes GET,
    with a warning that the server should use 308) or "preserve". `allow_downgrade`: follow
    https -> http. `sensitive_headers`: dropped on every hop to another origin.
    """

    redirect_302: Redirect302 = "historic"
    redirect_301: Redirect301 = "historic"
    allow_downgrade: bool = False
    sensitive_headers: frozenset[str] = DEFAULT_SENSITIVE_HEADERS

    def __post_init__(self) -> None:
        if self.redirect_302 not in ("historic", "preserve", "error"):
            raise ValueError(f"redirect_302 must be 'historic', 'preserve' or 'error', not {self.redirect_302!r}")
        if self.redirect_301 not in ("historic", "preserve"):
            raise ValueError(f"redirect_301 must be 'historic' or 'preserve', not {self.redirect_301!r}")
        object.__setattr__(self, "sensitive_headers", frozenset(h.lower() for h in self.sensitive_headers))


@dataclass(frozen=True, slots=True)
class Decision:
    """What to send after a redirect, and why."""

    status: int
    method: str  # method of the next request
    url: httpx.URL  # absolute target, fragment inherited
    keep_body: bool  # re-send the same body (307, 308, preserved 301/302)
    drop_headers: tuple[str, ...]  # lower-case names to remove from the next request
    cross_origin: bool  # credentials do not follow (another origin, other than an http -> https upgrade)
    why: str
    changes: tuple[str, ...] = field(default=())
    warning: str | None = None


def follows(status: int) -> bool:
    """Is `status` a redirect the client follows (when a Location is present)? 301, 302, 303, 307, 308."""
    entry = TABLE.get(status)
    return entry is not None and entry.is_redirect


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in (RFC 6454)."""
    return url.scheme, url.host, url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)


def credentials_follow(source: httpx.URL, target: httpx.URL) -> bool:
    """May credentials meant for `source` go to `target`?

    Yes for the same origin, and for an http -> https upgrade of the same host on default
    ports (what httpx and requests allow: the credentials were already on the wire in clear).
    """
    if origin(source) == origin(target):
        return True
    return (
        source.scheme == "http" and target.scheme == "https" and source.host == target.host
        and source.port in (None, 80) and target.port in (None, 443)
    )


def memory_key(url: httpx.URL) -> str:
    """The URL as the redirect memory keys it: normalised by httpx, without fragment or user:password
    (a move belongs to the resource, and credentials must never reach the memory's file)."""
    if url.fragment or url.userinfo:
        url = url.copy_with(fragment=None, userinfo=b"")
    return str(url)


def resolve_location(url: httpx.URL, location: str) -> httpx.URL:
    """The absolute target of `location` received for `url` (RFC 9110 §10.2.2).

    Relative references resolve against the request URL; a Location without fragment inherits
    the request's. Raises UnsafeRedirect for a Location that is not an http(s) URL.
    """
    try:
        target = httpx.URL(location)
    except httpx.InvalidURL as exc:
        raise UnsafeRedirect(f"Location {location!r} is not a valid URL: {exc}") from None
    if target.scheme and not target.host and target.scheme in _DEFAULT_PORTS:
        target = target.copy_with(host=url.host)  # "http:/path", as httpx tolerates it
    if target.is_relative_url:
        target = url.join(target)
    if target.scheme not in _DEFAULT_PORTS:
        raise UnsafeRedirect(f"Location {location!r} is not an http or https URL; not followed")
    if url.fragment and not target.fragment:
        target = target.copy_with(fragment=url.fragment)
    return target


def _describe(status: int) -> str:
    entry = TABLE[status]
    return f"{status} {entry.reason}"


def decide(policy: Policy, method: str, url: httpx.URL, status: int, location: str) -> Decision:
    """The next request after `status` with `location`, for a `method url` request.

    Raises Redirect302Refused (302 in strict mode) or UnsafeRedirect (https -> http without
    `allow_downgrade`, or a Location that is not an http(s) URL). `status` must satisfy `follows`.
    """
    if not follows(status):
        raise ValueError(f"{status} is not a redirect the client follows")
    method = method.upper()
    semantics = TABLE[status]
    target = resolve_location(url, location)
    if url.scheme == "https" and target.scheme == "http" and not policy.allow_downgrade:
        raise UnsafeRedirect(
            f"{_describe(status)} from {url} points to {target}: following would downgrade https to http "
            "(pass allow_downgrade=True to follow it anyway)"
        )

    changes: list[str] = []
    warning: str | None = None
    next_method, keep_body = method, True

    if semantics.method_change is MethodChange.MUST_CHANGE_TO_GET:
        next_method, keep_body = ("HEAD" if method == "HEAD" else "GET"), False
        why = f"{_describe(status)}: the work is done, retrieve the result with {next_method} ({semantics.rfc})"
    elif semantics.method_change is MethodChange.MUST_NOT_CHANGE:
        kind = "permanent" if semantics.permanent else "temporary"
        why = f"{_describe(status)}: {kind} move, same method and body ({semantics.rfc})"
    elif status == 302:
        if policy.redirect_302 == "error":
            raise Redirect302Refused(
                f"302 Found from {method} {url} (Location: {location}): the guide says {alternatives_to_302()}"
            )
        if policy.redirect_302 == "historic" and method == "POST":
            next_method, keep_body = "GET", False
            how = "POST turned into GET, as browsers do"
        else:
            how = f"{method} kept"
        why = f"{_describe(status)}: temporary move, {how} (redirect_302={policy.redirect_302!r}; {semantics.rfc})"
        warning = f"302 Found from {method} {url}: the server breaks the guide ({alternatives_to_302()})"
    else:  # 301
        if method not in SAFE_FOR_301 and policy.redirect_301 == "historic" and method == "POST":
            next_method, keep_body = "GET", False
            how = "POST turned into GET, as browsers do"
        else:
            how = f"{method} kept"
        why = f"{_describe(status)}: permanent move, {how} ({semantics.rfc})"
        if method not in SAFE_FOR_301:
            warning = (
                f"301 Moved Permanently answered {method} {url}: clients may turn {method} into GET; "
                "the server should answer 308 for methods other than GET and HEAD"
            )

    drop: list[str] = []
    if next_method != method:
        changes.append(f"method {method} -> {next_method}")
    if not keep_body:
        drop.extend(CONTENT_HEADERS)
        if method not in ("GET", "HEAD"):
            changes.append("body and content headers dropped")
    cross = not credentials_follow(url, target)
    if cross:
        drop.extend(sorted(policy.sensitive_headers))
        changes.append(f"another origin: {', '.join(sorted(policy.sensitive_headers))} not sent")
    if url.scheme == "https" and target.scheme == "http":
        changes.append("https -> http downgrade allowed by allow_downgrade=True")
    return Decision(status, next_method, target, keep_body, tuple(drop), cross, why, tuple(changes), warning)
