"""Starlette (and FastAPI) adapter: native requests in, native responses out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response as StarletteResponse

from redirectory.rules.engine import Response
from redirectory.toolkit import asgi
from redirectory.toolkit.redirects import RequestInfo


def request_info(request: Request) -> RequestInfo:
    return asgi.request_info(request.scope)


def to_response(response: Response) -> StarletteResponse:
    """A Starlette Response with exactly these status, headers and body."""
    native = StarletteResponse(status_code=response.status)
    native.body = response.body
    native.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    return native
