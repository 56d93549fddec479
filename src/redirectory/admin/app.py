"""The admin listener (off the redirect port): `GET /healthz` and the admin REST API under /api/v1.

The admin API reads and writes the same store as `rules apply`, so a change made through it reaches
the gateway the same way (the change log). It follows the REST design guide: errors in the guide's
format, 406/415 for media types, 405 with `Allow`, API keys in headers only, no 302 anywhere and
no trailing-slash redirects (a non-canonical path is a 404).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from redirectory.admin import errors
from redirectory.admin.dates import DateMiddleware
from redirectory.admin.limits import BodyLimitMiddleware
from redirectory.admin.negotiation import NegotiationMiddleware
from redirectory.store import Store

if TYPE_CHECKING:
    from redirectory.metrics import ProcessGroupMetrics

log = logging.getLogger("redirectory.admin")

API_DESCRIPTION = """The redirectory admin API: manage the redirect rule table over HTTP.

Authentication: an API key in `Authorization: Bearer <key>` or `X-API-Key: <key>` (create the first
one with `redirectory keys create NAME --scope admin`). Errors use the REST design guide's format.
"""


class AdminApp(FastAPI):
    """The admin API, with `Date` stamped outside everything else (`admin.dates`) and body sizes
    bounded before anything reads them (`admin.limits`); with /metrics, every response is counted
    just inside `Date` (`admin.metrics`)."""

    request_metrics: Callable[[Any], Any] | None = None

    def build_middleware_stack(self) -> Any:
        stack = BodyLimitMiddleware(super().build_middleware_stack())
        if self.request_metrics is not None:
            stack = self.request_metrics(stack)
        return DateMiddleware(stack)


def create_admin_app(database: str, status: dict[str, Any] | None = None,
                     metrics: ProcessGroupMetrics | None = None) -> FastAPI:
    """`status` is a live dict the serving process keeps current (ready, workers, ...); `metrics`
    the process group's, served at /metrics (admin/metrics.py; None: no /metrics)."""
    app = AdminApp(
        title="redirectory admin API",
        description=API_DESCRIPTION,
        version="1",
        docs_url=None,  # docs_ui serves the page with its assets from the package, not a CDN
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        redirect_slashes=False,
    )
    from redirectory.admin import docs_ui

    docs_ui.install(app, docs_url="/api/v1/docs", openapi_url="/api/v1/openapi.json")
    from redirectory.admin.console import router as console_router  # the web console, /console/

    app.include_router(console_router)
    store = Store.open(database)
    app.state.store = store
    shared = status if status is not None else {}
    errors.install(app)
    app.add_middleware(NegotiationMiddleware)
    from redirectory.admin.ratelimit import RateLimitMiddleware

    app.add_middleware(RateLimitMiddleware, store=store)
    app.add_middleware(errors.DatabaseUnavailableMiddleware)  # outermost: 503 while the database is down

    from redirectory.admin.history import router as history_router
    from redirectory.admin.keys_api import router as keys_router
    from redirectory.admin.resolutions import router as resolutions_router
    from redirectory.admin.stats import router as stats_router

    app.include_router(keys_router)
    app.include_router(history_router)
    app.include_router(resolutions_router)
    app.include_router(stats_router)

    from redirectory.admin.health import Health

    health = Health(store, shared)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        code, body = health.read()
        return JSONResponse(body, status_code=code, headers={"cache-control": "no-store", "server": "redirectory"})

    @app.api_route("/api/v1", methods=["GET", "HEAD"], include_in_schema=False)
    def api_root() -> Response:
        return Response(status_code=204, headers=errors.NO_STORE)

    from redirectory.admin.rules import router as rules_router

    app.include_router(rules_router)
    from redirectory.admin.bulk import router as bulk_router

    app.include_router(bulk_router)
    from redirectory.admin.imports import router as imports_router

    app.include_router(imports_router)
    if metrics is not None:
        from redirectory.admin.metrics import install as install_metrics

        install_metrics(app, metrics, store)
    return app
