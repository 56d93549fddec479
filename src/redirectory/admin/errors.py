"""Errors in the guide's format, for every admin API response that is not a success.

    {"type": "urn:redirectory:error:<key>", "title": "...", "titleKey": "redirectory.errors.<key>",
     "instance": "<uuid>", "timestamp": "...Z", "errors": [{"detail": ..., "detailKey": ...,
     "fields": [...], "status": N, "index": N}]}

Every error response carries `Content-Language: en` and `Cache-Control: no-store`; a 5xx body
never holds details (no exception text, SQL or versions). The `instance` id is logged with the
error so support can find it.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from redirectory.semantics import reason_phrase
from redirectory.store import DatabaseLocked

log = logging.getLogger("redirectory.admin")

TYPE_BASE = "urn:redirectory:error:"
#: Headers on every admin response that may carry sensitive data (guide checklist 40).
NO_STORE = {"cache-control": "no-cache, no-store, must-revalidate", "pragma": "no-cache", "expires": "0"}


@dataclass
class ErrorItem:
    detail: str
    key: str
    fields: list[str] | None = None
    params: list[str] | None = None
    index: int | None = None
    status: int | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"detail": self.detail, "detailKey": f"redirectory.errors.{self.key}"}
        if self.params:
            out["detailKeyParameters"] = self.params
        if self.fields:
            out["fields"] = self.fields
        if self.index is not None:
            out["index"] = self.index
        if self.status is not None:
            out["status"] = self.status
        return out


@dataclass
class ApiError(Exception):
    """Raise to answer with an error in the guide's format."""

    status: int
    key: str
    errors: list[ErrorItem]
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def one(cls, status: int, key: str, detail: str, fields: list[str] | None = None,
            headers: dict[str, str] | None = None) -> ApiError:
        return cls(status, key, [ErrorItem(detail, key, fields=fields)], headers or {})


def error_response(status: int, key: str, errors: list[ErrorItem], headers: dict[str, str] | None = None,
                   body: bool = True) -> JSONResponse:
    instance = str(uuid.uuid4())
    if status >= 500:  # no details, ever
        errors = [ErrorItem("The server could not complete the request", "internal")]
    doc = {
        "type": TYPE_BASE + key,
        "title": reason_phrase(status),
        "titleKey": f"redirectory.errors.{key}",
        "instance": instance,
        "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "errors": [e.to_json() for e in errors],
    }
    log.info("error %s %s instance=%s", status, key, instance)
    response = JSONResponse(doc, status_code=status,
                            headers={"content-language": "en", **NO_STORE, **(headers or {})})
    return response


def allowed_methods(request: Request) -> str:
    """Every method some route accepts at this path (for `Allow`)."""
    from starlette.routing import Match

    methods: set[str] = set()

    def walk(routes: Any, scope: Any) -> None:
        for route in routes:
            match, child = route.matches(scope)
            if match is Match.NONE:
                continue
            inner = getattr(route, "routes", None) or getattr(getattr(route, "original_router", None), "routes", None)
            if inner:  # an included router: look inside
                walk(inner, {**scope, **child})
            methods.update(getattr(route, "methods", None) or ())

    walk(request.app.router.routes, request.scope)
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return ", ".join(sorted(methods, key=lambda m: order.index(m) if m in order else len(order)))


def install(app: FastAPI) -> None:
    """Route every error through the guide's format."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.key, exc.errors, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        if status == 404:
            return error_response(404, "notFound", [ErrorItem(f"Nothing at {request.url.path}", "notFound")])
        if status == 405:
            allow = allowed_methods(request)
            return error_response(
                405, "methodNotAllowed",
                [ErrorItem(f"{request.method} is not allowed here; allowed: {allow}", "methodNotAllowed")],
                {"allow": allow},
            )
        key = {401: "unauthorized", 403: "forbidden"}.get(status, "httpError")
        return error_response(status, key, [ErrorItem(str(exc.detail), key)], dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        items = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            items.append(ErrorItem(str(err.get("msg", "invalid value")), "invalidField",
                                   fields=[".".join(loc)] if loc else None))
        return error_response(400, "validation", items or [ErrorItem("The request is not valid", "validation")])

    @app.exception_handler(DBAPIError)
    async def _database(_request: Request, exc: DBAPIError) -> JSONResponse:
        if database_unavailable(exc):
            return unavailable(exc)
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal", [])

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        if database_unavailable(exc):  # raised in a middleware (rate limit's key lookup)
            return unavailable(exc)
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal", [])


class DatabaseUnavailableMiddleware:
    """503 for a database outage met in a middleware (e.g. the rate limiter's key lookup).

    Route errors reach the exception handlers above; an exception raised by a middleware only
    reaches Starlette's outermost error middleware, which answers but also re-raises it (a
    traceback in the log for every request while the database is down). Add it last (outermost).
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started or not database_unavailable(exc):
                raise
            await unavailable(exc)(scope, receive, send)


#: Seconds a client is told to wait when the database cannot be reached.
RETRY_AFTER = 5


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` means the database cannot be reached (down, restarting, locked, pool full)."""
    if isinstance(exc, (OperationalError, InterfaceError, SATimeoutError, DatabaseLocked)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def unavailable(exc: BaseException) -> JSONResponse:
    """503 in the guide's format with Retry-After; the cause is logged, never sent."""
    log.warning("database unavailable: %s", type(exc).__name__)
    return error_response(503, "databaseUnavailable", [], {"retry-after": str(RETRY_AFTER)})
