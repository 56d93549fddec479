"""The guide's redirect cases inside a FastAPI app, with redirectory.toolkit.

Run (from the checkout; port 8081 keeps clear of `make run`'s 8000 and 8001):
    .venv/bin/uvicorn --app-dir examples fastapi_app:app --port 8081
Environment: REDIRECTORY_RULES (a rule file, default examples/redirects.yaml) or
REDIRECTORY_DATABASE (a store URL, reloaded live); REDIRECTORY_JOBS_DB (a SQLAlchemy URL for
the operations' job store, default in memory).

- GET /api/v1/users/42            -> 301 to /api/v2/users/42 (rule table, the guide's example)
- GET /apiFoo/v1/something        -> 307 to https://bar.example.internal/apiBar/v1/something (rule)
- POST /api/v2/users/42/activate  -> 303 to /api/v2/users/42 (a controller, `see_other`)
- POST /api/v2/reports            -> 202 + Location /operations/ID; polling -> 202, then 303
- GET /api/v2/users/42 with If-None-Match -> 304 (validators from the version, before the handler)
- PUT /api/v2/users/42 without If-Match -> 428; with a stale one -> 412
- GET /api/v2/countries with If-None-Match -> 304 (ETag computed from the body by the middleware)
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, HTTPException, Request, Response

from redirectory.toolkit import (
    InMemoryJobStore,
    Operations,
    SqlAlchemyJobStore,
    Validators,
    accepted,
    operation_status,
    report_progress,
    see_other,
)
from redirectory.toolkit.asgi import ConditionalMiddleware, GuardMiddleware, RedirectMiddleware
from redirectory.toolkit.fastapi import conditional, install
from redirectory.toolkit.ruletable import RuleTable

RULES = os.environ.get("REDIRECTORY_RULES", str(Path(__file__).with_name("redirects.yaml")))
DATABASE = os.environ.get("REDIRECTORY_DATABASE")
JOBS_DB = os.environ.get("REDIRECTORY_JOBS_DB")

app = FastAPI(title="toolkit example")
install(app)  # exact 304 / 412 / 428 responses from the `conditional` dependency
# Starlette runs the last added middleware first: guard -> rule table -> conditional -> routes.
app.add_middleware(ConditionalMiddleware)
app.add_middleware(RedirectMiddleware,
                   table=RuleTable(store=DATABASE, poll_interval=0.2) if DATABASE else RuleTable(RULES))
app.add_middleware(GuardMiddleware, mode="rewrite")

operations = Operations(SqlAlchemyJobStore(JOBS_DB) if JOBS_DB else InMemoryJobStore())

_lock = threading.Lock()
USERS: dict[int, dict[str, Any]] = {
    42: {"uuid": "7c0e2b3a-0f5e-4a57-9d1b-3f1b2c4d5e6f", "firstName": "Ada", "lastName": "Lovelace",
         "active": False, "version": 1, "updatedAt": datetime(2026, 1, 5, 10, 0, tzinfo=UTC)},
}


def user_validators(user_id: int) -> Validators:
    """Cheap: reads the version and update time only, before the handler runs."""
    user = USERS.get(user_id)
    if user is None:
        raise HTTPException(404, f"No user {user_id}")
    return Validators.of(version=user["version"], updated_at=user["updatedAt"])


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in ("version", "updatedAt")}


@app.get("/api/v2/users/{user_id}")
def read_user(user_id: int, _: Annotated[Validators, Depends(conditional(user_validators))]) -> dict[str, Any]:
    return _public(USERS[user_id])


@app.put("/api/v2/users/{user_id}")
def replace_user(
    user_id: int,
    body: Annotated[dict[str, Any], Body()],
    response: Response,
    _: Annotated[Validators, Depends(conditional(user_validators, require_if_match=True))],
) -> dict[str, Any]:
    with _lock:
        user = USERS[user_id]
        user.update(firstName=body.get("firstName", user["firstName"]), lastName=body.get("lastName", user["lastName"]),
                    version=user["version"] + 1, updatedAt=datetime.now(UTC))
    response.headers.update(dict(user_validators(user_id).headers()))  # the new validators
    return _public(user)


@app.post("/api/v2/users/{user_id}/activate")
def activate_user(user_id: int, request: Request) -> Any:
    """A controller: it does its work, then points to the resource (303, no body)."""
    with _lock:
        user = USERS.get(user_id)
        if user is None:
            raise HTTPException(404, f"No user {user_id}")
        user.update(active=True, version=user["version"] + 1, updatedAt=datetime.now(UTC))
    return see_other(request, f"/api/v2/users/{user_id}")


REPORTS: dict[str, dict[str, Any]] = {}


@app.post("/api/v2/reports")
def generate_report(request: Request) -> Any:
    """Long-running: 202 now, the report later (poll the Location)."""

    def work() -> str:
        for step in range(1, 4):
            time.sleep(0.1)
            report_progress(step / 4)
        report_id = f"r{len(REPORTS) + 1}"
        REPORTS[report_id] = {"id": report_id, "lines": 3}
        return f"/api/v2/reports/{report_id}"

    return accepted(request, operations, work)


@app.get("/operations/{job_id}")
def read_operation(job_id: str, request: Request) -> Any:
    return operation_status(request, operations, job_id)


@app.get("/api/v2/reports/{report_id}")
def read_report(report_id: str) -> dict[str, Any]:
    if report_id not in REPORTS:
        raise HTTPException(404, f"No report {report_id}")
    return REPORTS[report_id]


@app.get("/api/v2/countries")
def list_countries() -> dict[str, Any]:
    """No validators here: the conditional middleware adds an ETag from the body."""
    items = [{"code": "BE", "name": "Belgium"}, {"code": "NL", "name": "Netherlands"}]
    return {"items": items, "metadata": {"pagination": {"limit": 10, "offset": 0,
                                                          "previousOffset": None, "nextOffset": None}}}
