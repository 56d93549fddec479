"""The web console on the admin listener: `/console/`, a page that manages the rule table in a browser.

The console is static files shipped inside the package (`admin/console/`: index.html, plain ES
modules, one style sheet; no build step, no CDN) and it talks to the admin REST API only, with
the API key the user pastes: whatever the console does, a script can do with the same key.

Security model (docs/console.md):
- the key lives in the tab's `sessionStorage` and goes out in `Authorization: Bearer` on API
  calls; never in a URL (the API refuses those) and never in a cookie, so there is no ambient
  credential and no CSRF surface. Signing out (or closing the tab) forgets it;
- every response here carries a strict Content-Security-Policy (scripts and styles from this
  listener only, no inline script or style, no framing, no `<base>`, forms post here only),
  `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`;
- the scripts write data into the page as text (`textContent`), never as HTML.

Only GET and HEAD are served; an unknown name is a 404 in the API's error format. `/console`
without the slash is a 404 like every non-canonical path of the listener (never redirected).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

#: Where the console is served.
PREFIX = "/console"
#: The package directory holding index.html, the modules and the style sheet.
ASSETS_PACKAGE = ("redirectory.admin", "console")
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",  # for browsers without CSP frame-ancestors
    "cross-origin-opener-policy": "same-origin",
}

router = APIRouter(include_in_schema=False)
_assets = StaticFiles(packages=[ASSETS_PACKAGE])


async def _serve(name: str, request: Request) -> Response:
    response = await _assets.get_response(name, request.scope)  # ETag, 304; unknown name: 404 (errors.install)
    response.headers.update(SECURITY_HEADERS)
    response.headers["cache-control"] = "no-cache"  # revalidate (ETag): a new version shows at once
    return response


@router.api_route(PREFIX + "/", methods=["GET", "HEAD"])
async def console_page(request: Request) -> Response:
    return await _serve("index.html", request)


@router.api_route(PREFIX + "/{name}", methods=["GET", "HEAD"])
async def console_asset(name: str, request: Request) -> Response:
    return await _serve(name, request)
