"""`/api/v1/history`: the revisions of the rule table, and restoring an earlier one.

Collection: newest first, the guide's pagination (`limit`/`offset`, `metadata.pagination`,
`metadata.etags` keyed by revision number). Each item is `{"revision", "at", "actor",
"summary", "changeCount", "changes": [{"op", "ruleUuid", "before", "after"}]}`, `before`/`after`
being the rule as the rules resource shows it (or null; for `op: settings`, `{"allowedHosts"}`).
A revision lists at most `CHANGES_IN_COLLECTION` changes (`changeCount` says how many there are,
in the collection and in `GET /api/v1/history/{revision}`); `GET /api/v1/history/{revision}/changes`
pages through all of them, oldest first (an `apply` of a 100k-rule file is one revision).

`POST /api/v1/history/{revision}/restore` (scope `write`) makes the table what it was right after
that revision, as ONE new revision (the change log replayed up to it, then applied like
`rules apply`): 200 with `{"revision": <new>, "restoredFrom": N, "plan": {"added", "changed",
"removed"}}` (counts). Restoring the current state changes nothing and writes no revision.

The history keeps what the retention says (`store/retention.py`): a revision older than the oldest
kept is 410 `revisionPruned` on every route here (it existed; its changes are gone for good); a
revision that never existed is 404.
"""

from __future__ import annotations

from datetime import UTC
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import COMMON, CONDITIONAL_GET, CONDITIONAL_RESPONSES, errors
from redirectory.admin.paging import ExcludeMetadata, Limit, Offset, collection_body, page_limit
from redirectory.admin.representation import timestamp
from redirectory.admin.rules import STORED_FIRST, STORED_LAST, _actor, etag_of, not_modified
from redirectory.rules.model import FIELDS, STRUCTURED_KINDS
from redirectory.store import HistoryPruned
from redirectory.store.history import LoggedChange, Revision

router = APIRouter(prefix="/api/v1", tags=["history"], responses={**COMMON, **errors(410, 412, 422, 428)})

CHANGES_IN_COLLECTION = 100
COLLECTION_METHODS = "GET, HEAD, OPTIONS"
ITEM_METHODS = "GET, HEAD, OPTIONS"
RESTORE_METHODS = "POST, OPTIONS"

#: The rules resource's field -> the change-log record's (its column: `Field.attr` for the rule's own).
RECORD_FIELDS: dict[str, str] = {**STORED_FIRST, **{f.api: f.attr for f in FIELDS}, **STORED_LAST}
_FLAGS = tuple(f.api for f in FIELDS if f.kind == "flag")
#: Lists a rule always holds (`[]` when empty), unlike those where null means "every" (`methods`).
_LISTS = tuple(f.api for f in FIELDS if f.is_list and f.default is not None)
_STRUCTURED = tuple(f for f in FIELDS if f.kind in STRUCTURED_KINDS)


def _record_dto(op: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    if op == "settings":
        return {"allowedHosts": record.get("allowed_hosts", [])}
    out = {public: record.get(name) for public, name in RECORD_FIELDS.items()}
    for public in _FLAGS:
        out[public] = bool(out[public])
    for public in _LISTS:
        out[public] = out[public] or []
    for f in _STRUCTURED:
        text = out[f.api]
        if isinstance(text, str):
            out[f.api] = f.shown(text)
    return out


def change_dto(change: LoggedChange) -> dict[str, Any]:
    return {"op": change.op, "ruleUuid": change.rule_id, "before": _record_dto(change.op, change.before),
            "after": _record_dto(change.op, change.after)}


def revision_dto(rev: Revision) -> dict[str, Any]:
    return {
        "revision": rev.revision,
        "at": timestamp(rev.at),
        "actor": rev.actor,
        "summary": rev.summary,
        "changeCount": rev.change_count,
        "changes": [change_dto(c) for c in rev.changes],
    }


def _number(text: str) -> int:
    """A revision number from the path; anything else names nothing (404)."""
    if not text.isascii() or not text.isdigit() or len(text) > 12 or int(text) < 1:
        raise ApiError.one(404, "revisionNotFound", f"No revision {text[:64]}", fields=["revision"])
    return int(text)


def _not_found(number: int) -> ApiError:
    """404 for a revision that never existed."""
    return ApiError.one(404, "revisionNotFound", f"No revision {number}", fields=["revision"])


def _pruned(exc: HistoryPruned) -> ApiError:
    """410 for a revision older than the history kept."""
    return ApiError.one(410, "revisionPruned",
                        f"Revision {exc.revision} is older than the history kept, which starts at revision "
                        f"{exc.oldest} (the retention is in /healthz, under history)", fields=["revision"])


def _check_exists(store: Any, number: int) -> None:
    """404 above the newest revision, 410 below the oldest kept."""
    oldest = store.oldest_revision()
    if oldest is None or number > store.revision():
        raise _not_found(number)
    if number < oldest:
        raise _pruned(HistoryPruned(number, oldest))


@router.api_route("/history", methods=["GET", "HEAD"], summary="List revisions (newest first)",
                  dependencies=[Depends(require("read"))])
def list_history(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    limit = page_limit(limit, offset)
    total, revisions = request.app.state.store.history(offset, limit, CHANGES_IN_COLLECTION)
    items = [revision_dto(r) for r in revisions]
    body = collection_body(items, offset=offset, limit=limit, total=total, sorted_by=[("revision", "DESC")],
                           exclude_metadata=exclude_metadata,
                           etags={str(item["revision"]): etag_of(item) for item in items})
    return JSONResponse(body, headers=NO_STORE)


@router.options("/history", response_class=Response, summary="Methods allowed on the history")
def options_history() -> Response:
    return Response(status_code=200, headers={"allow": COLLECTION_METHODS, **NO_STORE})


def _revision_page(store: Any, number: int, offset: int, limit: int) -> Revision:
    """Revision `number` with `limit` of its changes from `offset` (oldest first); 404 if none,
    410 if pruned."""
    try:
        rev: Revision | None = store.revision_page(number, offset, limit)
    except HistoryPruned as exc:
        raise _pruned(exc) from None
    if rev is None:
        raise _not_found(number)
    return rev


@router.api_route("/history/{revision}", methods=["GET", "HEAD"],
                  summary=f"Get one revision (its first {CHANGES_IN_COLLECTION} changes; all of them under /changes)",
                  dependencies=[Depends(require("read"))], responses=CONDITIONAL_RESPONSES,
                  openapi_extra=CONDITIONAL_GET)
def get_revision(revision: str, request: Request) -> Response:
    number = _number(revision)
    rev = _revision_page(request.app.state.store, number, 0, CHANGES_IN_COLLECTION)
    dto = revision_dto(rev)
    modified = rev.at.astimezone(UTC).replace(microsecond=0)
    headers = {"etag": etag_of(dto), "last-modified": format_datetime(modified, usegmt=True), **NO_STORE,
               "content-location": f"/api/v1/history/{number}"}
    if not_modified(request, headers["etag"], modified):
        return Response(status_code=304, headers=headers)
    return JSONResponse(dto, headers=headers)


@router.options("/history/{revision}", response_class=Response, summary="Methods allowed on a revision",
                dependencies=[Depends(require("read"))])
def options_revision(revision: str, request: Request) -> Response:
    _check_exists(request.app.state.store, _number(revision))
    return Response(status_code=200, headers={"allow": ITEM_METHODS, **NO_STORE})


@router.api_route("/history/{revision}/changes", methods=["GET", "HEAD"],
                  summary="Every change of one revision (paginated, oldest first)",
                  dependencies=[Depends(require("read"))])
def list_changes(
    revision: str,
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    number = _number(revision)
    limit = page_limit(limit, offset)
    rev = _revision_page(request.app.state.store, number, offset, limit)
    body = collection_body([change_dto(c) for c in rev.changes], offset=offset, limit=limit,
                           total=rev.change_count, sorted_by=[("seq", "ASC")], exclude_metadata=exclude_metadata)
    return JSONResponse(body, headers=NO_STORE)


@router.options("/history/{revision}/changes", response_class=Response, summary="Methods allowed on changes",
                dependencies=[Depends(require("read"))])
def options_changes(revision: str, request: Request) -> Response:
    _check_exists(request.app.state.store, _number(revision))
    return Response(status_code=200, headers={"allow": ITEM_METHODS, **NO_STORE})


@router.post("/history/{revision}/restore", summary="Make the table what it was at this revision (a new revision)",
             dependencies=[Depends(require("write"))])
def restore(revision: str, request: Request) -> JSONResponse:
    from redirectory.rules.validation import validate

    number = _number(revision)
    store = request.app.state.store
    try:
        ruleset = store.ruleset_at(number)
    except HistoryPruned as exc:
        raise _pruned(exc) from None
    except LookupError:
        raise _not_found(number) from None
    errors = [p for p in validate(ruleset) if p.is_error]
    if errors:
        raise ApiError(422, "restoreInvalid", [
            ErrorItem(p.message, p.code, fields=[p.field], index=p.index) for p in errors])
    plan, new_revision = store.apply(ruleset, actor=_actor(request))
    body = {"revision": new_revision, "restoredFrom": number,
            "plan": {"added": len(plan.added), "changed": len(plan.changed), "removed": len(plan.removed)}}
    return JSONResponse(body, headers=NO_STORE)


@router.options("/history/{revision}/restore", response_class=Response, summary="Methods allowed on restore")
def options_restore(revision: str) -> Response:
    return Response(status_code=200, headers={"allow": RESTORE_METHODS, **NO_STORE})
