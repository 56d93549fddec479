"""`POST /api/v1/rules-bulk`: create and update many rules (guide "Bulk operations").

Body: `{"items": [rule, ...], "metadata": {"etags": {"<uuid>": "<etag>"}}}`. An item without
`uuid` is created; an item with `uuid` replaces that rule, and needs its current ETag in
`metadata.etags` (428 without, 412 when stale). Atomic by default: every item is checked, the
whole request is refused if any item has a problem (each error carries `index`, the item's
zero-based position, and `status`: 400 for its fields, 422 for a conflict with the table), and all
writes land as ONE revision. `?atomic=false` handles each item on
its own and answers with the items that succeeded and the errors of those that did not.
Success is 200 (never 201, guide "Bulk operations HTTP status codes").
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import BULK_INPUT, COMMON, errors
from redirectory.admin.openapi import json_body as json_body_schema
from redirectory.admin.rules import (
    _actor,
    etag_of,
    json_body,
    problem_item,
    rule_dto,
    rule_from_body,
)
from redirectory.rules.model import Problem, Rule
from redirectory.store import ChangeRefused
from redirectory.store.batch import MissingRule, write_rules

router = APIRouter(prefix="/api/v1", responses=COMMON)
MAX_ITEMS = 1000
NEW_POSITION = 1 << 30


def _etag_check(expected: str) -> Any:
    def check(row: Any) -> None:
        if expected.strip() != "*" and etag_of(rule_dto(row)) != expected.strip():
            raise _Stale(expected)

    return check


class _Stale(Exception):
    pass


@router.post("/rules-bulk", summary="Create and update many rules", dependencies=[Depends(require("write"))],
             openapi_extra=json_body_schema(BULK_INPUT), responses=errors(412, 422, 428))
async def bulk(
    request: Request,
    atomic: Annotated[bool, Query(description="All or nothing (default), or each item on its own.")] = True,
) -> JSONResponse:
    data = await json_body(request)
    items = data.get("items")
    if not isinstance(items, list) or not items:
        raise ApiError.one(400, "validation", "The body needs a non-empty 'items' array of rules", fields=["items"])
    if len(items) > MAX_ITEMS:
        raise ApiError.one(400, "tooManyItems", f"At most {MAX_ITEMS} items per request", fields=["items"])
    unknown = sorted(set(data) - {"items", "metadata"})
    if unknown:
        raise ApiError(400, "validation", [ErrorItem(f"unknown field '{name[:64]}'; valid fields: items, metadata",
                                                     "unknownField", fields=[name[:64]]) for name in unknown])
    metadata = data.get("metadata", {})
    if not isinstance(metadata, dict):
        raise ApiError.one(400, "validation", "metadata must be an object such as {\"etags\": {uuid: ETag}}",
                           fields=["metadata"])
    etags = metadata.get("etags", {})
    if not isinstance(etags, dict) or not all(isinstance(v, str) for v in etags.values()):
        raise ApiError.one(400, "validation", "metadata.etags must map uuid to ETag", fields=["metadata.etags"])
    store = request.app.state.store
    allowed_hosts = await run_in_threadpool(store.allowed_hosts)
    parsed: list[tuple[int, str | None, Rule | None]] = []
    errors: list[ErrorItem] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(ErrorItem("each item must be a rule object", "validation", index=index, status=400))
            parsed.append((index, None, None))
            continue
        rule_id = item.get("uuid")
        try:
            rule = rule_from_body(item, allowed_hosts, position=NEW_POSITION + index)
        except ApiError as exc:
            for e in exc.errors:
                e.index, e.status = index, exc.status
            errors.extend(exc.errors)
            parsed.append((index, rule_id, None))
            continue
        if rule_id is not None and str(rule_id) not in etags:
            errors.append(ErrorItem(f"item {index} updates {rule_id}: send its ETag in metadata.etags",
                                    "preconditionRequired", fields=["metadata.etags"], index=index, status=428))
            parsed.append((index, rule_id, None))
            continue
        parsed.append((index, rule_id, rule))
    # the writes validate with the table inside their transaction: off the event loop
    if atomic:
        return await run_in_threadpool(_atomic, request, store, parsed, errors, etags)
    return await run_in_threadpool(_one_by_one, request, store, parsed, errors, etags)


def _items(problems: list[Problem], alone: int | None) -> tuple[list[ErrorItem], list[ErrorItem]]:
    """(errors, warnings) of a write as items; a problem the store could not tie to one written rule
    (it names a stored rule) gets the index of the lone item, when there is one."""
    errs: list[ErrorItem] = []
    warns: list[ErrorItem] = []
    for p in problems:
        item = problem_item(p, index=p.index if p.index is not None else alone)
        (errs if p.is_error else warns).append(item)
    return errs, warns


def _atomic(request: Request, store: Any, parsed: list[tuple[int, str | None, Rule | None]],
            errors: list[ErrorItem], etags: dict[str, str]) -> JSONResponse:
    if errors:
        # one kind of problem keeps its precise status; a mix is 400 (guide: several errors -> 400)
        kinds = {e.status for e in errors}
        raise ApiError(kinds.pop() or 400 if len(kinds) == 1 else 400, "bulkRejected", errors)
    changes = [(i, rid, r) for i, rid, r in parsed if r is not None]
    creates = [(i, r) for i, rid, r in changes if not rid]
    updates = [(i, str(rid), r) for i, rid, r in changes if rid]
    checks = {str(rid): _etag_check(str(etags[str(rid)])) for _i, rid, _r in updates}
    alone = changes[0][0] if len(changes) == 1 else None
    found: list[Problem] = []
    try:
        rows = write_rules(store, creates, updates, actor=_actor(request), checks=checks, problems=found)
    except ChangeRefused as exc:
        raise ApiError(422, "bulkRejected", _items(exc.problems, alone)[0]) from None
    except MissingRule as exc:
        raise ApiError(404, "ruleNotFound", [ErrorItem(f"No rule has uuid {exc.rule_id[:64]}", "ruleNotFound",
                                                       fields=["uuid"], index=exc.index, status=404)]) from None
    except _Stale:
        raise ApiError.one(412, "preconditionFailed", "A rule changed since you read it: GET it again and retry",
                           fields=["metadata.etags"]) from None
    return _result([rows[i] for i in sorted(rows)], [], _items(found, alone)[1])


def _one_by_one(request: Request, store: Any, parsed: list[tuple[int, str | None, Rule | None]],
                errors: list[ErrorItem], etags: dict[str, str]) -> JSONResponse:
    rows = []
    warnings: list[ErrorItem] = []
    for index, rule_id, rule in parsed:
        if rule is None:
            continue
        found: list[Problem] = []
        try:
            written = write_rules(store, [] if rule_id else [(index, rule)],
                                  [(index, str(rule_id), rule)] if rule_id else [], actor=_actor(request),
                                  checks={str(rule_id): _etag_check(str(etags[str(rule_id)]))} if rule_id else None,
                                  problems=found)
        except ChangeRefused as exc:
            errors.extend(_items(exc.problems, index)[0])
            continue
        except MissingRule:
            errors.append(ErrorItem(f"No rule has uuid {str(rule_id)[:64]}", "ruleNotFound", fields=["uuid"],
                                    index=index, status=404))
            continue
        except _Stale:
            errors.append(ErrorItem("The rule changed since you read it", "preconditionFailed",
                                    fields=["metadata.etags"], index=index, status=412))
            continue
        rows.append(written[index])
        warnings.extend(_items(found, index)[1])
    if not rows and errors:
        raise ApiError(400, "bulkRejected", sorted(errors, key=lambda e: e.index or 0))
    return _result(rows, sorted(errors, key=lambda e: e.index or 0), warnings)


def _result(rows: list[Any], errors: list[ErrorItem], warnings: list[ErrorItem]) -> JSONResponse:
    items = [rule_dto(r) for r in rows]
    body: dict[str, Any] = {
        "items": items,
        "metadata": {"etags": {i["uuid"]: etag_of(i) for i in items}, "warnings": [w.to_json() for w in warnings]},
    }
    if errors:
        body["errors"] = [e.to_json() for e in errors]
    return JSONResponse(body, headers=NO_STORE)


@router.options("/rules-bulk", response_class=Response, summary="Methods allowed on bulk writes")
def options_bulk() -> Response:
    return Response(status_code=200, headers={"allow": "POST, OPTIONS", **NO_STORE})
