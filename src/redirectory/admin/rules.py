"""`/api/v1/rules` and `/api/v1/rules/{uuid}`: reading the rule table.

Collection: the guide's `{"items": [...], "metadata": {"pagination": {...}, "etags": {...},
"sortedBy": [...]}}` with `limit`/`offset` (default 10/0, `limit=0` means 10, at most 1000),
filters `status`, `host`, `method`, `enabled`, `tag`, free text `q` over from/to/note, and
`sort=field+ASC|DESC,...`. Out-of-range pages are 200 with no items (guide "Pagination Out of
range"). Items: `ETag` and `Last-Modified`, `If-None-Match`/`If-Modified-Since` -> 304.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.limits import nesting_exceeds, nul_error, nul_fields, too_deep
from redirectory.admin.openapi import COMMON, CONDITIONAL_GET, CONDITIONAL_RESPONSES, RULE_INPUT, errors, with_if_match
from redirectory.admin.openapi import json_body as body_schema
from redirectory.admin.paging import (
    ExcludeMetadata,
    Limit,
    Offset,
    collection_body,
    flag_param,
    page_limit,
    parse_sort,
    query_flag,
    sort_param,
)
from redirectory.admin.representation import Fields, shape, style_param, timestamp
from redirectory.admin.url_guard import text_query
from redirectory.rules.model import FIELDS, Field, Problem, Rule, RuleSet
from redirectory.rules.validation import TABLE_CODES, validate
from redirectory.semantics import RULE_STATUSES
from redirectory.store import ChangeRefused, RuleFilter, StoredRule
from redirectory.store.listing import SORT_KEYS

router = APIRouter(prefix="/api/v1", responses=COMMON)

SORT_FIELDS: tuple[str, ...] = tuple(SORT_KEYS)
#: The fields of a stored rule's representation besides the rule's own (`rules.model.FIELDS`, by
#: `Field.api`): read-only, the server assigns them. API name -> `StoredRule` attribute, which is
#: also the column's key in the change log's records (`admin.history`). `STORED_FIRST` come before
#: the rule's fields, `STORED_LAST` after them.
STORED_FIRST: dict[str, str] = {"uuid": "id"}
STORED_LAST: dict[str, str] = {"position": "position", "revision": "revision", "createdAt": "created_at",
                               "updatedAt": "updated_at"}
#: Every field of a rule's representation, and the reduced styles (`?style=`).
RULE_FIELDS: tuple[str, ...] = (*STORED_FIRST, *(f.api for f in FIELDS), *STORED_LAST)
STYLES = {"compact": ("uuid", "from", "fromRegex", "to", "status", "enabled")}
ITEM_METHODS = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"
COLLECTION_METHODS = "GET, HEAD, POST, OPTIONS"


def api_value(f: Field, value: Any) -> Any:
    """A rule field's value as the API writes it: lists as lists (null kept), timestamps by `timestamp`,
    structured fields as structures (`Field.shown`)."""
    if f.is_list:
        return None if value is None else list(value)
    if f.kind == "timestamp":
        return timestamp(value)
    return f.shown(value)


def _stored_value(value: Any) -> Any:
    return timestamp(value) if isinstance(value, datetime) else value


def rule_dto(stored: StoredRule) -> dict[str, Any]:
    """The public representation of a stored rule (explicit fields; nulls kept as null)."""
    rule = stored.rule
    return {
        **{name: _stored_value(getattr(stored, attr)) for name, attr in STORED_FIRST.items()},
        **{f.api: api_value(f, getattr(rule, f.attr)) for f in FIELDS},
        **{name: _stored_value(getattr(stored, attr)) for name, attr in STORED_LAST.items()},
    }


def etag_of(dto: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(dto, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return f'"{digest[:32]}"'






@router.api_route("/rules", methods=["GET", "HEAD"], summary="List rules",
                  dependencies=[Depends(require("read"))])
def list_rules(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    status: Annotated[int | None, Query(description="Only rules with this status.",
                                        json_schema_extra={"enum": list(RULE_STATUSES)})] = None,
    host: Annotated[str | None, text_query("Only rules for this host (from: //host/...).")] = None,
    method: Annotated[str | None, text_query("Only rules that answer this method.")] = None,
    enabled: Annotated[str | None, flag_param("true: only enabled rules; false: only disabled ones.")] = None,
    tag: Annotated[str | None, text_query("Only rules with this tag.")] = None,
    q: Annotated[str | None, text_query("Text to find in from, to or note.")] = None,
    sort: Annotated[str | None, sort_param(SORT_FIELDS)] = None,
    style: Annotated[str | None, style_param(STYLES)] = None,
    fields: Fields = None,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    limit = page_limit(limit, offset)
    order = parse_sort(sort, SORT_FIELDS)
    wanted = shape(style, fields, RULE_FIELDS, STYLES)
    if status is not None and status not in RULE_STATUSES:
        raise ApiError.one(400, "invalidField", f"status must be one of {', '.join(map(str, RULE_STATUSES))}",
                           fields=["status"])
    filters = RuleFilter(status=status, host=host or None, method=method or None,
                         enabled=query_flag(enabled, "enabled"), tag=tag or None, text=q or None)
    page = request.app.state.store.list_page(filters, order, offset, limit)
    total, rows = page.total, page.items
    items = [rule_dto(r) for r in rows]
    body = collection_body([wanted.apply(item) for item in items], offset=offset, limit=limit, total=total,
                           sorted_by=order, exclude_metadata=exclude_metadata,
                           etags={item["uuid"]: etag_of(item) for item in items})
    return JSONResponse(body, headers=NO_STORE)


@router.options("/rules", response_class=Response, summary="Methods allowed on the collection")
def options_rules() -> Response:
    return Response(status_code=200, headers={"allow": COLLECTION_METHODS, **NO_STORE})


@router.api_route("/rules/{rule_id}", methods=["GET", "HEAD"], summary="Get a rule",
                  dependencies=[Depends(require("read"))], responses=CONDITIONAL_RESPONSES,
                  openapi_extra=CONDITIONAL_GET)
def get_rule(rule_id: str, request: Request, style: Annotated[str | None, style_param(STYLES)] = None,
             fields: Fields = None) -> Response:
    wanted = shape(style, fields, RULE_FIELDS, STYLES)
    row = request.app.state.store.get_rule(rule_id)
    if row is None:
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    dto = rule_dto(row)
    etag = etag_of(dto)
    modified = row.updated_at.astimezone(UTC).replace(microsecond=0)
    headers = {"etag": etag, "last-modified": format_datetime(modified, usegmt=True),
               "cache-control": "no-cache", "content-location": f"/api/v1/rules/{row.id}"}
    if not_modified(request, etag, modified):
        return Response(status_code=304, headers=headers)
    return JSONResponse(wanted.apply(dto), headers={**headers, "pragma": "no-cache", "expires": "0"})


@router.options("/rules/{rule_id}", response_class=Response, summary="Methods allowed on a rule",
                dependencies=[Depends(require("read"))])
def options_rule(rule_id: str, request: Request) -> Response:
    if request.app.state.store.get_rule(rule_id) is None:
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    return Response(status_code=200, headers={"allow": ITEM_METHODS, **NO_STORE})


def not_modified(request: Request, etag: str, modified: datetime) -> bool:
    """RFC 9110 §13.1.2-13.1.3 for GET/HEAD: If-None-Match (weak comparison), else If-Modified-Since."""
    inm = request.headers.get("if-none-match")
    if inm is not None:
        if inm.strip() == "*":
            return True
        opaque = etag.removeprefix("W/")
        return any(tag.strip().removeprefix("W/") == opaque for tag in inm.split(","))
    ims = request.headers.get("if-modified-since")
    if ims is not None:
        try:
            since = parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
        if since.tzinfo is None:
            return False
        return modified <= since
    return False


# -- writes ----------------------------------------------------------------------------------------
#: Body field (camelCase, as in the representation) -> rule file field.
BODY_FIELDS: dict[str, str] = {f.api: f.name for f in FIELDS}
READ_ONLY = frozenset({*STORED_FIRST, *STORED_LAST, "metadata"})
FILE_TO_BODY: dict[str, str] = {v: k for k, v in BODY_FIELDS.items()}


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; 400 if it is not one, nests too deep (`limits.MAX_JSON_DEPTH`)
    or holds U+0000 anywhere. Its size was bounded while it was read (`limits`)."""
    raw = await request.body()
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        if nesting_exceeds(text):
            raise too_deep()
        data = json.loads(text) if raw else None
    except RecursionError:  # malformed and deep: refused all the same
        raise too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError.one(400, "malformedJson", f"The body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError.one(400, "malformedJson", "The body must be a JSON object")
    if "\\u0000" in text and (nul := nul_fields(data)):
        raise nul_error(nul)
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError.one(400, "malformedJson", "The body holds an unpaired UTF-16 surrogate "
                           "(\\ud800-\\udfff): not valid Unicode text") from None
    return data


def problem_item(p: Problem, index: int | None = None, detail: str | None = None) -> ErrorItem:
    """A parser's or validator's problem as an error item, with the status its kind answers.

    An error with the rule's own fields is `invalidField` (400); a conflict with the table keeps
    its code (422, `validation.TABLE_CODES`), as does a warning (no status).
    """
    table = p.code in TABLE_CODES
    key = p.code if table or not p.is_error else "invalidField"
    status = None if not p.is_error else 422 if table else 400
    return ErrorItem(detail or p.message, key, fields=[FILE_TO_BODY.get(p.field, p.field)], index=index,
                     status=status)


_FROM = frozenset(f.name for f in FIELDS if f.kind in ("pattern", "regex"))


def rule_from_body(data: dict[str, Any], allowed_hosts: tuple[str, ...], position: int = 0,
                   problems: list[ErrorItem] | None = None) -> Rule:
    """Body -> Rule with valid fields, or ApiError 400 listing every problem with them at once.

    `problems` are the request's own (a missing field, a read-only one); a field they name is not
    reported again. The rule is checked on its own here, against the table by `check_table`.
    """
    from redirectory.rules.parsing import rule_from_mapping

    items = list(problems or [])
    named = {f for item in items for f in item.fields or ()}
    mapped: dict[str, Any] = {}
    for name, value in data.items():
        if name in READ_ONLY or name in named:
            continue
        target = BODY_FIELDS.get(name)
        if target is None:
            items.append(ErrorItem(f"unknown field '{name}'; valid fields: {', '.join(BODY_FIELDS)}",
                                   "unknownField", fields=[name]))
            continue
        mapped[target] = value
    rule, found = rule_from_mapping(mapped, position=position)
    reported = {p.field for p in found}
    if reported & _FROM:
        reported |= _FROM  # said once: the validator's "" stand-in for `from` is not a problem of its own
    alone = rule if rule is not None else _stand_in(mapped, reported)
    if alone is not None:
        found += [p for p in validate(RuleSet((alone,), allowed_hosts))
                  if p.is_error and p.code not in TABLE_CODES and p.field not in reported]
    items += [problem_item(p) for p in found if FILE_TO_BODY.get(p.field, p.field) not in named]
    if items or rule is None:
        key = "incompleteRepresentation" if any(i.key == "missingField" for i in items) else "validation"
        for item in items:
            item.status = None  # one request, one status: 400
        raise ApiError(400, key, items or [ErrorItem("The rule is not valid", "validation")])
    return rule


def _stand_in(mapped: dict[str, Any], reported: set[str]) -> Rule | None:
    """The rule's target with its `from`, to check `to` when another field is invalid.

    The validator checks `to` against `from` only when `from` is valid, so an invalid or missing
    `from` (given to it as "") hides no problem with `to` and invents none.
    """
    to = mapped.get("to")
    if not isinstance(to, str) or "to" in reported:
        return None
    if reported & _FROM:
        return Rule(to=to, source="")
    source, regex = mapped.get("from"), mapped.get("from_regex")
    return Rule(to=to, source=source) if isinstance(source, str) else Rule(to=to, source_regex=str(regex))


def table_conflict(problems: list[Problem], index_of: Callable[[Problem], int | None] | None = None) -> ApiError:
    """The 422 for a write the store refused (`ChangeRefused`): every error it found, one item each."""
    items = [problem_item(p, index=index_of(p) if index_of else None) for p in problems if p.is_error]
    for item in items:
        item.status = None  # one request, one status
    return ApiError(422, "ruleConflict", items or [ErrorItem("The rule conflicts with the table", "ruleConflict")])


def warning_items(problems: list[Problem], index_of: Callable[[Problem], int | None] | None = None) -> list[ErrorItem]:
    """The warnings of a write, for `metadata.warnings`."""
    return [problem_item(p, index=index_of(p) if index_of else None) for p in problems if not p.is_error]


def _row_headers(row: StoredRule) -> tuple[dict[str, Any], dict[str, str]]:
    dto = rule_dto(row)
    modified = row.updated_at.astimezone(UTC).replace(microsecond=0)
    return dto, {"etag": etag_of(dto), "last-modified": format_datetime(modified, usegmt=True)}


def precondition(request: Request) -> Any:
    """The If-Match check, run inside the write transaction against the rule as stored."""
    if_match = request.headers.get("if-match")
    if if_match is None:
        raise ApiError.one(428, "preconditionRequired",
                           "Send If-Match with the rule's current ETag (GET it first) to change it",
                           fields=["If-Match"])

    def check(row: StoredRule) -> None:
        if if_match.strip() == "*":
            return
        current = etag_of(rule_dto(row))
        tags = [t.strip() for t in if_match.split(",")]
        if current not in tags:  # strong comparison (RFC 9110 §13.1.1)
            raise ApiError.one(412, "preconditionFailed",
                               "The rule changed since you read it: GET it again and retry",
                               fields=["If-Match"])

    return check


def _actor(request: Request) -> str:
    key = getattr(request.state, "api_key", None)
    return f"api:{key.name}" if key is not None else "api"


@router.post("/rules", status_code=201, summary="Create a rule", dependencies=[Depends(require("write"))],
             openapi_extra=body_schema(RULE_INPUT), responses=errors(422))
async def create_rule(request: Request) -> JSONResponse:
    data = await json_body(request)
    problems = [ErrorItem("uuid is assigned by the server; leave it out", "readOnlyField", fields=["uuid"])
                ] if "uuid" in data else []
    store = request.app.state.store
    hosts = await run_in_threadpool(store.allowed_hosts)
    rule = rule_from_body(data, hosts, 1 << 30, problems)
    found: list[Problem] = []
    try:  # validated with the table inside the write (store/guard.py), off the event loop
        row = await run_in_threadpool(functools.partial(store.insert_rule, rule, actor=_actor(request),
                                                        problems=found))
    except ChangeRefused as exc:
        raise table_conflict(exc.problems) from None
    dto, headers = _row_headers(row)
    body = {**dto, "metadata": {"warnings": [w.to_json() for w in warning_items(found)]}}
    return JSONResponse(body, status_code=201,
                        headers={**headers, **NO_STORE, "location": f"/api/v1/rules/{row.id}"})


@router.put("/rules/{rule_id}", summary="Replace a rule", dependencies=[Depends(require("write"))],
            openapi_extra=with_if_match(body_schema(RULE_INPUT)), responses=errors(412, 422, 428))
async def replace_rule(rule_id: str, request: Request) -> JSONResponse:
    check = precondition(request)
    data = await json_body(request)
    problems = [ErrorItem("The uuid in the body differs from the one in the URL", "uuidMismatch", fields=["uuid"])
                ] if "uuid" in data and data["uuid"] != rule_id else []
    missing = [] if "to" in data else ["to"]
    if "from" not in data and "fromRegex" not in data:
        missing.append("from")
    problems += [ErrorItem(f"PUT takes the whole rule: '{m}' is missing (use PATCH to change part of it)",
                           "missingField", fields=[m]) for m in missing]
    return await _replace(request, rule_id, data, check, problems)


@router.patch("/rules/{rule_id}", summary="Change part of a rule (JSON Merge Patch)",
              dependencies=[Depends(require("write"))],
              openapi_extra=with_if_match(body_schema({**RULE_INPUT, "required": []}, "application/merge-patch+json")),
              responses=errors(412, 422, 428))
async def patch_rule(rule_id: str, request: Request) -> JSONResponse:
    check = precondition(request)
    patch = await json_body(request)
    store = request.app.state.store
    row = await run_in_threadpool(store.get_rule, rule_id)
    if row is None:
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    current = {k: v for k, v in rule_dto(row).items() if k not in READ_ONLY}
    merged = merge_patch(current, patch)
    return await _replace(request, rule_id, merged, check)


async def _replace(request: Request, rule_id: str, data: dict[str, Any], check: Any,
                   problems: list[ErrorItem] | None = None) -> JSONResponse:
    store = request.app.state.store
    exists = await run_in_threadpool(store.get_rule, rule_id)
    if exists is None:
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    hosts = await run_in_threadpool(store.allowed_hosts)
    rule = rule_from_body(data, hosts, exists.position, problems)
    found: list[Problem] = []
    try:  # validated with the table inside the write (store/guard.py), off the event loop
        row = await run_in_threadpool(functools.partial(store.replace_rule, rule_id, rule, actor=_actor(request),
                                                        check=check, problems=found))
    except ChangeRefused as exc:
        raise table_conflict(exc.problems) from None
    if row is None:
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    dto, headers = _row_headers(row)
    body = {**dto, "metadata": {"warnings": [w.to_json() for w in warning_items(found)]}}
    return JSONResponse(body, headers={**headers, **NO_STORE})


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete a rule",
               dependencies=[Depends(require("write"))], responses=errors(412, 428), openapi_extra=with_if_match())
def delete_rule(rule_id: str, request: Request) -> Response:
    check = precondition(request)
    if not request.app.state.store.delete_rule(rule_id, actor=_actor(request), check=check):
        raise ApiError.one(404, "ruleNotFound", f"No rule has uuid {rule_id[:64]}", fields=["uuid"])
    return Response(status_code=204, headers=NO_STORE)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch."""
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out
