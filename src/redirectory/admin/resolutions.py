"""`POST /api/v1/resolutions`: which rule a request would match, why, and the exact response.

Body: `{"url": "http://host/path?q" or "/path", "method": "GET", "headers": {"Host": ...}}`
(`method` and `headers` optional; `Host` and `X-Forwarded-Proto/Host` count, as at the
gateway). Answers 200 with the same explanation as `redirectory rules test --json`, computed
against the table in the store right now. Nothing is stored (scope `read`).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import COMMON, errors
from redirectory.admin.rules import json_body
from redirectory.rules.engine import Engine
from redirectory.rules.model import RuleSet
from redirectory.rules.resolution import resolve

router = APIRouter(prefix="/api/v1", tags=["resolutions"], responses={**COMMON, **errors(412, 422, 428)})

METHODS = "POST, OPTIONS"
BODY_FIELDS = ("url", "method", "headers", "at")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})")
MAX_URL = 8192
#: The valid values, as regular expressions shared by the checks below and the OpenAPI schema:
#: an http(s) URL, or a path (anything without whitespace and without another `scheme://`).
URL_PATTERN = r"^(?:[hH][tT][tT][pP][sS]?://[^\s\x00]+|(?:[^\s\x00:]|:(?!//))+)$"
METHOD_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$"
HEADER_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$"
VALUE_PATTERN = r"^[^\r\n\x00]*$"
_URL, _TOKEN, _HEADER, _VALUE = (re.compile(p) for p in (URL_PATTERN, METHOD_PATTERN, HEADER_PATTERN, VALUE_PATTERN))


def _problems(data: dict[str, Any]) -> list[ErrorItem]:
    problems: list[ErrorItem] = []
    for name in data:
        if name not in BODY_FIELDS:
            problems.append(ErrorItem(f"unknown field '{name}'; valid fields: {', '.join(BODY_FIELDS)}",
                                      "unknownField", fields=[name]))
    url = data.get("url")
    if url is None:
        problems.append(ErrorItem("'url' is required (an absolute http(s) URL or a path)", "missingField",
                                  fields=["url"]))
    elif not isinstance(url, str) or len(url) > MAX_URL or not _URL.fullmatch(url):
        problems.append(ErrorItem(f"'url' must be an http(s) URL or a path, of 1-{MAX_URL} characters without "
                                  "spaces", "invalidField", fields=["url"]))
    method = data.get("method", "GET")
    if not isinstance(method, str) or not _TOKEN.fullmatch(method):
        problems.append(ErrorItem("'method' must be an HTTP method name such as GET", "invalidField",
                                  fields=["method"]))
    headers = data.get("headers", {})
    if not isinstance(headers, dict):
        problems.append(ErrorItem("'headers' must be an object of header names to text values", "invalidField",
                                  fields=["headers"]))
    else:
        for name, value in headers.items():
            if not _HEADER.fullmatch(name):
                problems.append(ErrorItem(f"'{name[:64]}' is not a header name", "invalidField",
                                          fields=[f"headers.{name[:64]}"]))
            elif not isinstance(value, str) or not _VALUE.fullmatch(value):
                problems.append(ErrorItem(f"header '{name}' must have a one-line text value", "invalidField",
                                          fields=[f"headers.{name}"]))
    at = data.get("at")
    if at is not None and _instant(at) is None:
        problems.append(ErrorItem("'at' must be an RFC 3339 time such as 2027-03-01T00:00:00Z", "invalidField",
                                  fields=["at"]))
    return problems


def _instant(value: Any) -> datetime | None:
    """An RFC 3339 time with its offset (`Z` or `+hh:mm`), as aware UTC; None when it is not one."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


REQUEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["url"], "additionalProperties": False,
        "properties": {
            "url": {"type": "string", "description": "http(s)://host/path?query or /path?query",
                    "minLength": 1, "maxLength": MAX_URL, "pattern": URL_PATTERN},
            "method": {"type": "string", "default": "GET", "pattern": METHOD_PATTERN},
            "headers": {"type": "object", "propertyNames": {"pattern": HEADER_PATTERN},
                        "additionalProperties": {"type": "string", "pattern": VALUE_PATTERN},
                        "description": "Request headers that count: Host, X-Forwarded-Proto, X-Forwarded-Host."},
            "at": {"type": ["string", "null"], "format": "date-time",
                   "description": "Answer as at this time (windows, phases); default: now"},
        },
    }}},
}


def _compiled(state: Any) -> tuple[RuleSet, Engine]:
    """The table and its compiled engine, rebuilt only when the table's revision moved on."""
    store = state.store
    cached = getattr(state, "resolution_engine", None)
    if cached is None or cached[0] != store.revision():
        revision, ruleset = store.load()
        cached = (revision, ruleset, Engine(ruleset))
        state.resolution_engine = cached
    return cached[1], cached[2]


@router.post("/resolutions", summary="Explain how a request would be redirected",
             dependencies=[Depends(require("read"))], openapi_extra={"requestBody": REQUEST_BODY})
async def create_resolution(request: Request) -> JSONResponse:
    data = await json_body(request)
    problems = _problems(data)
    if problems:
        raise ApiError(400, "validation", problems)
    ruleset, engine = await run_in_threadpool(_compiled, request.app.state)
    try:
        resolution = resolve(ruleset, data["url"], data.get("method", "GET"), data.get("headers") or {},
                             at=_instant(data.get("at")),
                             engine=engine)
    except ValueError as exc:
        raise ApiError.one(400, "invalidField", str(exc), fields=["url"]) from None
    return JSONResponse(resolution.to_json(), headers=NO_STORE)


@router.options("/resolutions", response_class=Response, summary="Methods allowed on resolutions")
def options_resolutions() -> Response:
    return Response(status_code=200, headers={"allow": METHODS, **NO_STORE})
