"""The guide's redirect cases inside a Flask app, with redirectory.toolkit.

Run (from the checkout, after `make dev` or `.venv/bin/pip install -e '.[flask]' gunicorn`):
    .venv/bin/gunicorn --chdir examples flask_app:app -b 127.0.0.1:8082
Environment: as examples/fastapi_app.py (REDIRECTORY_RULES, REDIRECTORY_DATABASE, REDIRECTORY_JOBS_DB).

The same routes as the FastAPI example, plus GET /legacy/login, which uses Flask's own
`redirect()` (a 302): the guard rewrites it to 307 (GET) / 303 (other methods).
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, abort, redirect, request

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
from redirectory.toolkit.flask import conditional
from redirectory.toolkit.ruletable import RuleTable
from redirectory.toolkit.wsgi import ConditionalMiddleware, GuardMiddleware, RedirectMiddleware

RULES = os.environ.get("REDIRECTORY_RULES", str(Path(__file__).with_name("redirects.yaml")))
DATABASE = os.environ.get("REDIRECTORY_DATABASE")
JOBS_DB = os.environ.get("REDIRECTORY_JOBS_DB")

app = Flask(__name__)
table = RuleTable(store=DATABASE, poll_interval=0.2) if DATABASE else RuleTable(RULES)
# Outermost first: guard -> rule table -> conditional -> Flask.
app.wsgi_app = GuardMiddleware(RedirectMiddleware(ConditionalMiddleware(app.wsgi_app), table),  # type: ignore[method-assign]
                               mode="rewrite")

operations = Operations(SqlAlchemyJobStore(JOBS_DB) if JOBS_DB else InMemoryJobStore())
_lock = threading.Lock()
USERS: dict[int, dict[str, Any]] = {
    42: {"uuid": "7c0e2b3a-0f5e-4a57-9d1b-3f1b2c4d5e6f", "firstName": "Ada", "lastName": "Lovelace",
         "active": False, "version": 1, "updatedAt": datetime(2026, 1, 5, 10, 0, tzinfo=UTC)},
}
REPORTS: dict[str, dict[str, Any]] = {}


def user_validators(user_id: int) -> Validators:
    user = USERS.get(user_id)
    if user is None:
        abort(404)
    return Validators.of(version=user["version"], updated_at=user["updatedAt"])


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in ("version", "updatedAt")}


@app.get("/api/v2/users/<int:user_id>")
@conditional(user_validators)
def read_user(user_id: int) -> Any:
    return _public(USERS[user_id])


@app.put("/api/v2/users/<int:user_id>")
@conditional(user_validators, require_if_match=True)
def replace_user(user_id: int) -> Any:
    body = request.get_json(force=True, silent=True) or {}
    with _lock:
        user = USERS[user_id]
        user.update(firstName=body.get("firstName", user["firstName"]), lastName=body.get("lastName", user["lastName"]),
                    version=user["version"] + 1, updatedAt=datetime.now(UTC))
    return _public(user), user_validators(user_id).headers()  # with the new validators


@app.post("/api/v2/users/<int:user_id>/activate")
def activate_user(user_id: int) -> Any:
    with _lock:
        user = USERS.get(user_id)
        if user is None:
            abort(404)
        user.update(active=True, version=user["version"] + 1, updatedAt=datetime.now(UTC))
    return see_other(request, f"/api/v2/users/{user_id}")


@app.post("/api/v2/reports")
def generate_report() -> Any:
    def work() -> str:
        for step in range(1, 4):
            time.sleep(0.1)
            report_progress(step / 4)
        report_id = f"r{len(REPORTS) + 1}"
        REPORTS[report_id] = {"id": report_id, "lines": 3}
        return f"/api/v2/reports/{report_id}"

    return accepted(request, operations, work)


@app.get("/operations/<job_id>")
def read_operation(job_id: str) -> Any:
    return operation_status(request, operations, job_id)


@app.get("/api/v2/reports/<report_id>")
def read_report(report_id: str) -> Any:
    if report_id not in REPORTS:
        abort(404)
    return REPORTS[report_id]


@app.get("/api/v2/countries")
def list_countries() -> Any:
    items = [{"code": "BE", "name": "Belgium"}, {"code": "NL", "name": "Netherlands"}]
    return {"items": items, "metadata": {"pagination": {"limit": 10, "offset": 0,
                                                          "previousOffset": None, "nextOffset": None}}}


@app.route("/legacy/login", methods=["GET", "POST"])
def legacy_login() -> Any:
    return redirect("/api/v2/users/42")  # Flask 3.1 answers 302: the guard fixes it
