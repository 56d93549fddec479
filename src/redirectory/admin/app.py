"""The admin listener (off the redirect port). For now: `GET /healthz`.

The full admin REST API (rules, imports, history, keys) grows here; it reads and writes the same
store as `rules apply`, so a change made through it reaches the gateway the same way.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from redirectory.store import Store

log = logging.getLogger("redirectory.admin")


def create_admin_app(database: str, status: dict[str, Any] | None = None) -> FastAPI:
    """`status` is a live dict the serving process keeps current (server, workers, ...)."""
    app = FastAPI(title="redirectory admin", docs_url=None, redoc_url=None, openapi_url=None)
    store = Store.open(database)
    shared = status if status is not None else {}

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        headers = {"cache-control": "no-store", "server": "redirectory"}
        try:
            body = {
                "status": "ok",
                "revision": store.revision(),
                "rules": store.rule_count(),
                **shared,
            }
            return JSONResponse(body, headers=headers)
        except Exception as exc:  # noqa: BLE001 - reported as unavailable, no details
            log.warning("health check cannot read the store: %s", exc)
            return JSONResponse(
                {"status": "unavailable", "database": "unreachable", **shared},
                status_code=503,
                headers=headers,
            )

    return app
