"""`GET /metrics` on the admin listener: Prometheus text (or OpenMetrics, when asked) for the
whole `serve` process group, and the admin API's own requests counted by route template.

No API key: like Envoy's admin `/stats/prometheus` and Traefik's `/metrics` on its internal
entry point, the endpoint lives on the admin listener, which is never the redirect port and is
bound to loopback unless told otherwise; scrapers there usually hold no credentials. It shows no
secret, no path, host or rule id, nothing a request chose (docs/deploy.md, "Metrics").

What it shows comes from `redirectory.metrics` (the workers' totals, summed) plus the database's
figures read here at scrape time: the newest revision, and the rules by kind (counted again only
when the revision moved: a count of a million rows is not free).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from sqlalchemy import case, func, select
from starlette.routing import Match

from redirectory.metrics import ProcessGroupMetrics
from redirectory.store import Store
from redirectory.store.schema import rules as rules_table

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]

PATH = "/metrics"
#: The `method` label's values; any other method is counted as `other` (labels stay bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The `route` label of a request no route took (404 from the router, a refusal before routing).
NO_ROUTE = "none"


class TableFigures:
    """The database's newest revision and its rules by kind, for one scrape."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._kinds: tuple[int, dict[str, int]] | None = None  # (revision, counts) last read

    def __call__(self) -> tuple[int, Mapping[str, int]]:
        revision = self.store.revision()
        with self._lock:
            known = self._kinds
            if known is None or known[0] != revision:
                known = self._kinds = (revision, self._count())
        return revision, known[1]

    def _count(self) -> dict[str, int]:
        c = rules_table.c
        # A `from` with a brace has a placeholder (rules/patterns.py refuses any other brace).
        kind = case((c.source_regex.is_not(None), "regex"), (c.source.like("%{%"), "pattern"), else_="exact")
        counts: dict[str, int] = {}
        with self.store.read_connection() as conn:
            for name, enabled, n in conn.execute(select(kind, c.enabled, func.count()).group_by(kind, c.enabled)):
                key = name if enabled else "disabled"
                counts[key] = counts.get(key, 0) + int(n)
        return counts


def _route(scope: Scope) -> str:
    """The template of the route that took the request (`/api/v1/rules/{rule_id}`), never the path."""
    route = scope.get("route")
    if route is None:  # refused before routing (406, 415, 429, 503...): which route it was for
        app = scope.get("app")
        for candidate in getattr(getattr(app, "router", None), "routes", ()):
            if candidate.matches(scope)[0] != Match.NONE:
                route = candidate
                break
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else NO_ROUTE


class RequestMetrics:
    """Counts every admin response by route template, method and status (outermost but Date)."""

    def __init__(self, app: ASGIApp, metrics: ProcessGroupMetrics):
        self.app = app
        self.count = metrics.serving.admin_request

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before any answer: the server answers 500

        async def noting(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            method = scope.get("method", "GET")
            self.count(_route(scope), method if method in METHODS else "other", status)


def install(app: FastAPI, metrics: ProcessGroupMetrics, store: Store) -> None:
    """`GET /metrics` on `app`, its requests counted, the database's figures read from `store`."""
    from prometheus_client.exposition import choose_encoder

    metrics.workers.database = TableFigures(store)
    app.request_metrics = lambda inner: RequestMetrics(inner, metrics)  # type: ignore[attr-defined]

    @app.api_route(PATH, methods=["GET", "HEAD"], include_in_schema=False)
    def scrape(request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        body = encoder(metrics.registry)
        return Response(body, media_type=content_type,
                        headers={"cache-control": "no-store", "server": "redirectory"})
