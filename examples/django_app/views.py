"""The same routes as examples/fastapi_app.py, as Django views.

GET /legacy/login uses Django's own `redirect()` (a 302): the guard rewrites it to 307 / 303.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

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
from redirectory.toolkit.django import conditional

JOBS_DB = os.environ.get("REDIRECTORY_JOBS_DB")
operations = Operations(SqlAlchemyJobStore(JOBS_DB) if JOBS_DB else InMemoryJobStore())
_lock = threading.Lock()
USERS: dict[int, dict[str, Any]] = {
    42: {"uuid": "7c0e2b3a-0f5e-4a57-9d1b-3f1b2c4d5e6f", "firstName": "Ada", "lastName": "Lovelace",
         "active": False, "version": 1, "updatedAt": datetime(2026, 1, 5, 10, 0, tzinfo=UTC)},
}
REPORTS: dict[str, dict[str, Any]] = {}


def user_validators(request: HttpRequest, user_id: int) -> Validators:
    user = USERS.get(user_id)
    if user is None:
        raise Http404(f"No user {user_id}")
    return Validators.of(version=user["version"], updated_at=user["updatedAt"])


def _public(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in ("version", "updatedAt")}


@csrf_exempt
@require_http_methods(["GET", "HEAD", "PUT"])
@conditional(user_validators, require_if_match=True)
def user(request: HttpRequest, user_id: int) -> HttpResponse:
    if request.method == "PUT":
        body = json.loads(request.body or b"{}")
        with _lock:
            current = USERS[user_id]
            current.update(firstName=body.get("firstName", current["firstName"]),
                           lastName=body.get("lastName", current["lastName"]),
                           version=current["version"] + 1, updatedAt=datetime.now(UTC))
        response = JsonResponse(_public(USERS[user_id]))
        for name, value in user_validators(request, user_id).headers():  # the new validators
            response[name] = value
        return response
    return JsonResponse(_public(USERS[user_id]))


@csrf_exempt
@require_http_methods(["POST"])
def activate_user(request: HttpRequest, user_id: int) -> HttpResponse:
    with _lock:
        current = USERS.get(user_id)
        if current is None:
            raise Http404(f"No user {user_id}")
        current.update(active=True, version=current["version"] + 1, updatedAt=datetime.now(UTC))
    return see_other(request, f"/api/v2/users/{user_id}")  # type: ignore[no-any-return]


@csrf_exempt
@require_http_methods(["POST"])
def generate_report(request: HttpRequest) -> HttpResponse:
    def work() -> str:
        for step in range(1, 4):
            time.sleep(0.1)
            report_progress(step / 4)
        report_id = f"r{len(REPORTS) + 1}"
        REPORTS[report_id] = {"id": report_id, "lines": 3}
        return f"/api/v2/reports/{report_id}"

    return accepted(request, operations, work)  # type: ignore[no-any-return]


@require_http_methods(["GET", "HEAD"])
def read_operation(request: HttpRequest, job_id: str) -> HttpResponse:
    return operation_status(request, operations, job_id)  # type: ignore[no-any-return]


@require_http_methods(["GET", "HEAD"])
def read_report(request: HttpRequest, report_id: str) -> HttpResponse:
    if report_id not in REPORTS:
        raise Http404(f"No report {report_id}")
    return JsonResponse(REPORTS[report_id])


@require_http_methods(["GET", "HEAD"])
def list_countries(request: HttpRequest) -> HttpResponse:
    items = [{"code": "BE", "name": "Belgium"}, {"code": "NL", "name": "Netherlands"}]
    return JsonResponse({"items": items, "metadata": {"pagination": {"limit": 10, "offset": 0,
                                                                     "previousOffset": None, "nextOffset": None}}})


@csrf_exempt
def legacy_login(request: HttpRequest) -> HttpResponse:
    return redirect("/api/v2/users/42")  # Django answers 302: the guard fixes it
