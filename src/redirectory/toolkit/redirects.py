"""Redirect responses by the guide, framework-neutral: status checks, safe Location, headers.

`redirect_response(status, location, request, options)` builds the engine's `Response`:
- only 301, 303, 307 and 308 (from `redirectory.semantics`); 302 raises `ForbiddenStatus`;
- `Location` is checked (`resolve_location`): no control characters (CR, LF...), no backslash,
  no scheme-relative `//host`, only http(s) absolute URLs without user information, and an
  absolute target's host must be in `allowed_hosts` when that list is set (no open redirects);
- a path becomes absolute when the public origin is known (`public_url`, or X-Forwarded-Proto/
  Host sent by a trusted proxy); a relative reference is resolved against the request path;
- an empty body with `Content-Length: 0` and no Content-Type; permanent codes get
  `Cache-Control: max-age=3600` unless the caller sets Cache-Control (the gateway's default).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from redirectory.forwarded import TrustedProxies, forwarded_origin, forwarded_scheme, origin_of
from redirectory.rules.engine import Response
from redirectory.rules.normalise import SUB_DELIMS, UNRESERVED, encode_component
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, REDIRECT_STATUSES, TABLE, alternatives_to_302

_URI_SAFE = UNRESERVED | SUB_DELIMS | frozenset(":/?#[]@")


class ForbiddenStatus(ValueError):
    """A status the guide does not allow for this helper (302, or not a redirect at all)."""


class InvalidLocation(ValueError):
    """A Location that is unsafe or malformed; the message says what was wrong and what is valid."""


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the toolkit reads of a request, whatever the framework."""

    method: str
    path: str  # as received (percent-encoded), starting with "/"
    query: str = ""
    host: str | None = None
    client_ip: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # lower-cased names
    scheme: str | None = None  # "http" or "https", as the server received the request

    def header(self, name: str) -> str | None:
        name = name.lower()
        values = [v for k, v in self.headers if k == name]
        return ", ".join(values) if values else None


@dataclass(frozen=True, slots=True)
class RedirectOptions:
    """Where a Location may point and how to make it absolute.

    public_url: the API's public origin (`https://api.example.com`): Locations become absolute.
    trusted_proxies: addresses or CIDR networks (`*` = any) whose X-Forwarded-Proto/Host are
        believed, as the gateway's `--forwarded-allow-ips`.
    allowed_hosts: hosts an absolute Location may name (None: any host; the public origin's host
        is always allowed).
    """

    public_url: str | None = None
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None
    _proxies: TrustedProxies = field(init=False, repr=False, compare=False)
    _public_origin: str | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            public = origin_of(self.public_url) if self.public_url else None
        except ValueError as exc:
            raise ValueError(f"public_url: {exc}") from None
        try:
            proxies = TrustedProxies(list(self.trusted_proxies))
        except ValueError as exc:
            raise ValueError(f"trusted_proxies: {exc}; use addresses, CIDR networks or '*'") from None
        object.__setattr__(self, "_proxies", proxies)
        object.__setattr__(self, "_public_origin", public)
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts", tuple(h.lower() for h in self.allowed_hosts))

    def origin(self, request: RequestInfo | None) -> str | None:
        """The origin the client used, when it is known for sure."""
        if self._public_origin is not None:
            return self._public_origin
        if request is None or not self._proxies or not self._proxies.trusts(request.client_ip):
            return None
        return forwarded_origin(request.header("x-forwarded-proto"), request.header("x-forwarded-host"))

    def scheme(self, request: RequestInfo) -> str | None:
        """The scheme the client used, as the gateway reads it: a trusted proxy's X-Forwarded-Proto,
        else the public origin's, else the server's own."""
        if self._proxies and self._proxies.trusts(request.client_ip):
            forwarded = forwarded_scheme(request.header("x-forwarded-proto"))
            if forwarded is not None:
                return forwarded
        if self._public_origin is not None:
            return self._public_origin.partition(":")[0]
        return request.scheme


DEFAULT_OPTIONS = RedirectOptions()


def resolve_location(location: str, request: RequestInfo | None = None,
                     options: RedirectOptions = DEFAULT_OPTIONS) -> str:
    """A safe, percent-encoded Location for `location`; InvalidLocation says why not."""
    if not isinstance(location, str) or not location:
        raise InvalidLocation(f"Location must be a non-empty string, got {location!r}")
    bad = next((ch for ch in location if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise InvalidLocation(f"Location must not contain control characters such as CR or LF (found {bad!r})")
    if "\\" in location:
        raise InvalidLocation("Location must not contain a backslash: use '/' in paths")
    if location.startswith("//"):
        raise InvalidLocation(f"scheme-relative Location {location[:60]!r} is not allowed: "
                              "use https://host/path or a path starting with a single '/'")
    parts = urlsplit(location)
    origin = options.origin(request)
    if parts.scheme:
        if parts.scheme.lower() not in ("http", "https"):
            raise InvalidLocation(f"Location scheme {parts.scheme!r} is not allowed: use http or https")
        if not parts.hostname:
            raise InvalidLocation(f"absolute Location {location[:60]!r} has no host")
        if parts.username is not None or parts.password is not None:
            raise InvalidLocation("Location must not carry user information (user:password@)")
        host = parts.hostname.lower()
        allowed = options.allowed_hosts
        own = urlsplit(origin).hostname if origin else None
        if allowed is not None and host != own and host not in allowed:
            shown = ", ".join(allowed) if allowed else "none"
            raise InvalidLocation(f"Location host {host!r} is not in the allowed hosts ({shown})")
        try:
            ascii_host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise InvalidLocation(f"Location host {host!r} is not a valid host name") from None
        netloc = ascii_host if parts.port is None else f"{ascii_host}:{parts.port}"
        rest = location.split(parts.netloc, 1)[1] if parts.netloc else ""
        return f"{parts.scheme.lower()}://{netloc}{encode_component(rest, _URI_SAFE)}"
    if not location.startswith("/"):
        base = request.path if request is not None else "/"
        location = urljoin(base, location)
    location = encode_component(location, _URI_SAFE)
    return origin + location if origin else location


def redirect_response(
    status: int,
    location: str,
    request: RequestInfo | None = None,
    options: RedirectOptions = DEFAULT_OPTIONS,
    headers: Iterable[tuple[str, str]] = (),
) -> Response:
    """The response of a redirect helper (see the module docstring)."""
    if status == 302:
        raise ForbiddenStatus(alternatives_to_302())
    if status not in REDIRECT_STATUSES:
        codes = ", ".join(map(str, REDIRECT_STATUSES))
        raise ForbiddenStatus(f"{status} is not a redirect status the guide allows: use one of {codes}")
    extra = checked_headers(headers)
    out: list[tuple[str, str]] = [("location", resolve_location(location, request, options))]
    out.extend((k, v) for k, v in extra if k not in ("location", "content-length", "content-type"))
    if TABLE[status].permanent and not any(k == "cache-control" for k, _ in extra):
        out.append(("cache-control", f"max-age={DEFAULT_PERMANENT_MAX_AGE}"))
    out.append(("content-length", "0"))
    return Response(status, tuple(out))


def checked_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header pairs with lower-cased names; ValueError for CR, LF or NUL in a name or value."""
    out: list[tuple[str, str]] = []
    for name, value in headers:
        for part in (name, value):
            if any(ch in part for ch in "\r\n\0"):
                raise ValueError(f"header {name!r} must not contain CR, LF or NUL")
        out.append((name.lower(), value))
    return out
