"""The `redirectory check` fixture: an ASGI app with one route per violation (/v/...) and clean
routes (/clean/...). Served by uvicorn (httptools, --no-date-header) so that a route can omit
Date or send content after a 304: the app writes every header itself.

Clean routes use redirectory's own conditional-request toolkit (`evaluate`, `not_modified_headers`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from redirectory.conditional import Preconditions, Validators, evaluate, not_modified_headers
from redirectory.validators import EntityTag

Headers = list[tuple[str, str]]
Reply = tuple[int, Headers, bytes]

LAST_MODIFIED = "Mon, 02 Nov 2026 10:00:00 GMT"
BODY = b'{"id": 42, "name": "Ada"}'
ETAG = '"v1"'
_counter = itertools.count()


class Req:
    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host, port = scope["server"]
        self.base = f"{scope.get('scheme', 'http')}://{host}:{port}"
        self.port = port
        self.body = body

    def url(self, path: str) -> str:
        return self.base + path


def _date() -> Headers:
    return [("Date", format_datetime(datetime.now(UTC), usegmt=True))]


def redirect(status: int, location: str | None, *extra: tuple[str, str], date: bool = True) -> Reply:
    headers = [*(_date() if date else []), *([("Location", location)] if location is not None else []), *extra,
               ("Content-Length", "0")]
    return status, headers, b""


def ok(body: bytes = BODY, *extra: tuple[str, str]) -> Reply:
    return 200, [*_date(), ("Content-Type", "application/json"), *extra, ("Content-Length", str(len(body)))], body


def conditional(req: Req, etag: str | None = ETAG, last_modified: str | None = LAST_MODIFIED,
                body: bytes = BODY) -> Reply:
    """A correct resource: 200 with validators, 304 (toolkit) when a precondition says so."""
    validators = [("ETag", etag)] if etag else []
    if last_modified:
        validators.append(("Last-Modified", last_modified))
    status, headers, content = ok(body, ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"), *validators)
    if req.method not in ("GET", "HEAD"):
        return 405, [*_date(), ("Allow", "GET, HEAD"), ("Content-Length", "0")], b""
    from redirectory.validators import parse_http_date

    outcome = evaluate(req.method, Preconditions.from_headers(req.headers),
                       Validators(EntityTag.parse(etag) if etag else None,
                                  parse_http_date(last_modified) if last_modified else None))
    if outcome.status == 304:
        return 304, not_modified_headers(headers), b""
    return status, headers, content if req.method == "GET" else b""


def matches(req: Req, etag: str = ETAG) -> bool:
    inm = req.headers.get("if-none-match", "")
    return inm == "*" or etag.strip('"') in inm.replace("W/", "").replace('"', " ").split()


# -- violations ----------------------------------------------------------------------------------
def v_304_body(req: Req) -> Reply:
    if matches(req):
        return 304, [*_date(), ("ETag", ETAG), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"),
                     ("Content-Length", str(len(BODY)))], BODY
    return conditional(req, last_modified=None)


def v_304_length(req: Req) -> Reply:
    if matches(req):
        return 304, [*_date(), ("ETag", ETAG), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"),
                     ("Content-Length", "0")], b""
    return conditional(req, last_modified=None)


def v_304_missing(req: Req) -> Reply:
    if matches(req):
        return 304, _date(), b""
    return conditional(req, last_modified=None)


def v_304_extra(req: Req) -> Reply:
    status, headers, body = conditional(req, last_modified=None)
    if status == 304:
        headers.append(("Content-Type", "application/json"))
    return status, headers, body


def v_304_always(req: Req) -> Reply:
    return 304, [*_date(), ("ETag", ETAG)], b""


def v_304_post(req: Req) -> Reply:
    if req.method == "POST":
        return 304, [*_date(), ("ETag", ETAG)], b""
    return conditional(req)


def v_304_wrong_etag(req: Req) -> Reply:
    if matches(req):
        return 304, [*_date(), ("ETag", '"v2"'), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")], b""
    return conditional(req, last_modified=None)


def v_inm_ignored(req: Req) -> Reply:
    return ok(BODY, ("ETag", ETAG))


def v_ims_ignored(req: Req) -> Reply:
    return ok(BODY, ("Last-Modified", LAST_MODIFIED))


def v_strong_compare(req: Req) -> Reply:
    if req.headers.get("if-none-match") == ETAG:  # byte-for-byte: no weak twin, no list
        return 304, [*_date(), ("ETag", ETAG)], b""
    return ok(BODY, ("ETag", ETAG))


def v_no_star(req: Req) -> Reply:
    if req.headers.get("if-none-match") != "*":
        return conditional(req, last_modified=None)
    return ok(BODY, ("ETag", ETAG), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding"))


def v_ims_first(req: Req) -> Reply:
    if req.headers.get("if-modified-since") == LAST_MODIFIED or matches(req):
        return 304, [*_date(), ("ETag", ETAG), ("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")], b""
    return ok(BODY, ("ETag", ETAG), ("Last-Modified", LAST_MODIFIED), ("Cache-Control", "max-age=60"),
              ("Vary", "Accept-Encoding"))


def v_redirect_304(req: Req) -> Reply:
    if "if-none-match" in req.headers or "if-modified-since" in req.headers:
        return 304, _date(), b""
    return redirect(307, req.url("/clean/ok"))


def v_strong_reuse(req: Req) -> Reply:
    body = b'{"served": %d}' % next(_counter)
    return ok(body, ("ETag", '"same"'), ("Cache-Control", "no-cache"))


def v_chain(req: Req) -> Reply:
    n = int(req.path.rsplit("/", 1)[1])
    return redirect(307, req.url(f"/v/chain/{n - 1}")) if n > 0 else conditional(req)


def v_loop(req: Req) -> Reply:
    return redirect(307, req.url("/v/loop-b" if req.path.endswith("-a") else "/v/loop-a"))


def v_controller(req: Req) -> Reply:
    """POST -> 303 to the result (clean for POST); used by the HAR recordings."""
    if req.method == "POST":
        return redirect(303, req.url("/clean/ok"))
    return 405, [*_date(), ("Allow", "POST"), ("Content-Length", "0")], b""


def v_post_only(req: Req) -> Reply:
    """A 307 target that only accepts GET."""
    return conditional(req)


# -- deprecation and sunset (RFC 9745, RFC 8594, RFC 8288) ------------------------------------------
DAY = 86400


def _epoch(days: int) -> int:
    """Midnight UTC, `days` from today: dates that stay in the past or the future whenever it runs."""
    now = int(datetime.now(UTC).timestamp())
    return now - now % DAY + days * DAY


def lifecycle(deprecation: str | None = None, sunset: str | None = None, link: str | None = None) -> Headers:
    """Deprecation (default: 30 days ago), Sunset (default: in a year) and Link fields."""
    return [("Deprecation", deprecation or f"@{_epoch(-30)}"),
            ("Sunset", sunset or format_datetime(datetime.fromtimestamp(_epoch(365), UTC), usegmt=True)),
            *([("Link", link)] if link else [])]


def deprecated(req: Req, *fields: tuple[str, str]) -> Reply:
    """A correct resource (200, conditional requests) that announces its end with `fields`."""
    status, headers, content = conditional(req)
    return status, [*headers, *fields], content


def v_get_only(req: Req) -> Reply:
    """A successor that answers HEAD with 405 (the checker falls back to GET)."""
    if req.method == "HEAD":
        return 405, [*_date(), ("Allow", "GET"), ("Content-Length", "0")], b""
    return ok()


DOCS_LINK = '</clean/other>; rel="deprecation"'
PAST_SUNSET = "Thu, 01 Jan 2026 00:00:00 GMT"


ROUTES: dict[str, Callable[[Req], Reply]] = {
    # A. Location and redirect mechanics
    "/v/loc-missing": lambda r: redirect(301, None, ("Cache-Control", "max-age=60")),
    "/v/loc-invalid": lambda r: redirect(307, "/clean/ok with space"),
    "/v/loc-multiple": lambda r: (307, [*_date(), ("Location", r.url("/clean/ok")), ("Location", r.url("/clean/other")),
                                        ("Content-Length", "0")], b""),
    "/v/loc-relative": lambda r: redirect(307, "/clean/ok"),
    "/v/loc-undefined": lambda r: ok(BODY, ("Location", r.url("/clean/ok"))),
    "/v/loc-fragment": lambda r: redirect(307, r.url("/clean/ok#top")),
    "/v/self-loop": lambda r: redirect(307, r.url("/v/self-loop")),
    "/v/loop-a": v_loop,
    "/v/loop-b": v_loop,
    "/v/unreachable": lambda r: redirect(307, r.url("/v/gone")),
    "/v/cross-origin": lambda r: redirect(307, f"http://localhost:{r.port}/clean/ok"),
    "/v/305": lambda r: redirect(305, r.url("/clean/ok")),
    "/v/no-date": lambda r: redirect(307, r.url("/clean/ok"), date=False),
    "/v/downgrade": lambda r: redirect(307, f"http://127.0.0.1:{r.port}/clean/ok"),  # served over TLS
    # B. per-code rules
    "/v/302": lambda r: redirect(302, r.url("/clean/ok")),
    "/v/301": lambda r: redirect(301, r.url("/clean/ok"), ("Cache-Control", "max-age=60")),
    "/v/301-no-cache": lambda r: redirect(301, r.url("/clean/ok")),
    "/v/308": lambda r: redirect(308, r.url("/clean/ok"), ("Cache-Control", "max-age=60")),
    "/v/303-body": lambda r: (303, [*_date(), ("Location", r.url("/clean/ok")), ("Content-Type", "text/plain"),
                                    ("Content-Length", "9")], b"see other"),
    "/v/303-get": lambda r: redirect(303, r.url("/clean/ok")),
    "/v/307-to-get-only": lambda r: redirect(307, r.url("/v/post-only")),
    "/v/post-only": v_post_only,
    "/v/307-cached": lambda r: redirect(307, r.url("/clean/ok"), ("Cache-Control", "max-age=604800")),
    "/v/controller": v_controller,
    # C. 304 and conditional requests
    "/v/304-body": v_304_body,
    "/v/304-length": v_304_length,
    "/v/304-missing": v_304_missing,
    "/v/304-extra": v_304_extra,
    "/v/304-always": v_304_always,
    "/v/304-post": v_304_post,
    "/v/304-wrong-etag": v_304_wrong_etag,
    "/v/inm-ignored": v_inm_ignored,
    "/v/ims-ignored": v_ims_ignored,
    "/v/strong-compare": v_strong_compare,
    "/v/no-star": v_no_star,
    "/v/ims-first": v_ims_first,
    "/v/redirect-304": v_redirect_304,
    "/v/strong-reuse": v_strong_reuse,
    # E. deprecation and sunset
    "/v/deprecation-malformed": lambda r: deprecated(r, *lifecycle(deprecation="true", link=DOCS_LINK)),
    "/v/deprecation-http-date": lambda r: deprecated(r, *lifecycle(deprecation=PAST_SUNSET, link=DOCS_LINK)),
    "/v/sunset-malformed": lambda r: deprecated(r, *lifecycle(sunset="2027-01-01T00:00:00Z", link=DOCS_LINK)),
    "/v/sunset-before-deprecation": lambda r: deprecated(r, *lifecycle(deprecation=f"@{_epoch(400)}",
                                                                       link=DOCS_LINK)),
    "/v/sunset-passed": lambda r: deprecated(r, *lifecycle(deprecation="@1735689600", sunset=PAST_SUNSET,
                                                           link=DOCS_LINK)),
    "/v/sunset-passed-redirect": lambda r: redirect(308, r.url("/clean/ok"), ("Cache-Control", "max-age=60"),
                                                    *lifecycle(deprecation="@1735689600", sunset=PAST_SUNSET,
                                                               link='</clean/ok>; rel="successor-version"')),
    "/v/deprecation-no-link": lambda r: deprecated(r, *lifecycle(link='</clean/other>; rel="alternate"')),
    "/v/successor-moved": lambda r: deprecated(r, *lifecycle(link='</clean/moved>; rel="successor-version"')),
    "/v/successor-broken": lambda r: deprecated(r, *lifecycle(link='</v/gone>; rel="successor-version"')),
    "/v/successor-get-only": lambda r: deprecated(r, *lifecycle(link='</v/get-only>; rel="successor-version"')),
    "/v/get-only": v_get_only,
    # clean
    "/clean/deprecated": lambda r: deprecated(r, *lifecycle(link=f'</clean/ok>; rel="successor-version", {DOCS_LINK}')),
    "/clean/deprecated-moved": lambda r: redirect(301, r.url("/clean/ok"), ("Cache-Control", "max-age=3600"),
                                                  *lifecycle(link='</clean/ok>; rel="successor-version"')),
    "/clean/ok": conditional,
    "/clean/other": conditional,
    "/clean/weak": lambda r: conditional(r, etag='W/"w1"'),
    "/clean/moved": lambda r: redirect(301, r.url("/clean/ok"), ("Cache-Control", "max-age=3600")),
    "/clean/temporary": lambda r: redirect(307, r.url("/clean/ok")),
    "/clean/controller": v_controller,
    "/clean/relay": lambda r: redirect(307, r.url("/clean/moved")),
    "/clean/temporary-echo": lambda r: redirect(307, r.url("/clean/echo")),
    "/clean/echo": lambda r: ok(json.dumps({"method": r.method, "received": len(r.body),
                                            "headers": r.headers}).encode(), ("Cache-Control", "no-store")),
}


def route(req: Req) -> Reply:
    if req.path.startswith("/v/chain/"):
        return v_chain(req)
    handler = ROUTES.get(req.path)
    if handler is None:
        return 404, [*_date(), ("Content-Type", "text/plain"), ("Content-Length", "9")], b"not found"
    return handler(req)


async def app(scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]],
              send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    req = Req(scope, body)
    status, headers, content = route(req)
    if req.method == "HEAD":
        content = b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
    await send({"type": "http.response.body", "body": content})
