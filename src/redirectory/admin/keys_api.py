"""`/api/v1/api-keys` and `/api/v1/api-keys/{uuid}`: managing API keys (scope `admin`).

Create: `POST {"name": ..., "scope": "read"|"write"|"admin"}` -> 201, `Location`, the key and,
this once only, its `secret`. Collection: newest first, the guide's pagination (`limit`/`offset`,
`metadata.pagination`, `metadata.etags`). Never a secret or a hash in any other response.
`DELETE` revokes (204; the key answers 401 from then on); like every admin write it needs
`If-Match` (the key's ETag, or `*`). A revoked key is gone from the API (404, not listed); the
database keeps it for the audit trail (`redirectory keys list` shows it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import COMMON, CONDITIONAL_GET, CONDITIONAL_RESPONSES, errors, with_if_match
from redirectory.admin.paging import ExcludeMetadata, Limit, Offset, collection_body, page_limit
from redirectory.admin.representation import timestamp
from redirectory.admin.rules import etag_of, json_body, not_modified
from redirectory.store.keys import MAX_NAME_LENGTH, NAME_PATTERN, SCOPES, ApiKey, validate_name, validate_scope

router = APIRouter(prefix="/api/v1", tags=["api-keys"], responses={**COMMON, **errors(412, 422, 428)})

COLLECTION_METHODS = "GET, HEAD, POST, OPTIONS"
ITEM_METHODS = "GET, HEAD, DELETE, OPTIONS"
BODY_FIELDS = ("name", "scope")



def key_dto(key: ApiKey) -> dict[str, Any]:
    """The public representation of a key: never its secret or hash."""
    return {
        "uuid": key.id,
        "name": key.name,
        "scope": key.scope,
        "prefix": key.prefix,
        "createdAt": timestamp(key.created_at),
        "lastUsedAt": timestamp(key.last_used_at),
    }


def _modified(key: ApiKey) -> datetime:
    """When the key's representation last changed: its creation (use is not a change)."""
    return key.created_at.astimezone(UTC).replace(microsecond=0)


def _item_headers(key: ApiKey, dto: dict[str, Any]) -> dict[str, str]:
    return {"etag": etag_of(dto), "last-modified": format_datetime(_modified(key), usegmt=True)}


def _not_found(key_id: str) -> ApiError:
    return ApiError.one(404, "apiKeyNotFound", f"No API key has uuid {key_id[:64]}", fields=["uuid"])


def _live_key(request: Request, key_id: str) -> ApiKey:
    """The key, unless it is unknown or revoked (both 404)."""
    key: ApiKey | None = request.app.state.store.get_key(key_id)
    if key is None or key.revoked:
        raise _not_found(key_id)
    return key




@router.api_route("/api-keys", methods=["GET", "HEAD"], summary="List API keys",
                  dependencies=[Depends(require("admin"))])
def list_keys(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    limit = page_limit(limit, offset)
    keys = request.app.state.store.list_keys(include_revoked=False)
    items = [key_dto(k) for k in keys[offset:offset + limit]]
    body = collection_body(items, offset=offset, limit=limit, total=len(keys), sorted_by=[("createdAt", "DESC")],
                           exclude_metadata=exclude_metadata, etags={i["uuid"]: etag_of(i) for i in items})
    return JSONResponse(body, headers=NO_STORE)


CREATE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {
        "type": "object", "required": ["name", "scope"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH,
                                "pattern": NAME_PATTERN},
                       "scope": {"type": "string", "enum": list(SCOPES)}},
    }}},
}


@router.post("/api-keys", status_code=201, summary="Create an API key (its secret is shown once)",
             dependencies=[Depends(require("admin"))], openapi_extra={"requestBody": CREATE_BODY})
async def create_key(request: Request) -> JSONResponse:
    data = await json_body(request)
    problems: list[ErrorItem] = []
    for name in data:
        if name not in BODY_FIELDS:
            problems.append(ErrorItem(f"unknown field '{name}'; valid fields: {', '.join(BODY_FIELDS)}",
                                      "unknownField", fields=[name]))
    if "name" not in data:
        problems.append(ErrorItem("'name' is required", "missingField", fields=["name"]))
    else:
        try:
            validate_name(data["name"])
        except ValueError as exc:
            problems.append(ErrorItem(str(exc), "invalidField", fields=["name"]))
    if "scope" not in data:
        problems.append(ErrorItem(f"'scope' is required: one of {', '.join(SCOPES)}", "missingField",
                                  fields=["scope"]))
    else:
        try:
            validate_scope(data["scope"])
        except ValueError as exc:
            problems.append(ErrorItem(str(exc), "invalidField", fields=["scope"]))
    if problems:
        raise ApiError(400, "validation", problems)
    key, secret = request.app.state.store.create_key(data["name"], data["scope"])
    dto = key_dto(key)
    headers = {**_item_headers(key, dto), **NO_STORE, "location": f"/api/v1/api-keys/{key.id}"}
    return JSONResponse({**dto, "secret": secret}, status_code=201, headers=headers)


@router.options("/api-keys", response_class=Response, summary="Methods allowed on the collection")
def options_keys() -> Response:
    return Response(status_code=200, headers={"allow": COLLECTION_METHODS, **NO_STORE})


@router.api_route("/api-keys/{key_id}", methods=["GET", "HEAD"], summary="Get an API key",
                  dependencies=[Depends(require("admin"))], responses=CONDITIONAL_RESPONSES,
                  openapi_extra=CONDITIONAL_GET)
def get_key(key_id: str, request: Request) -> Response:
    key = _live_key(request, key_id)
    dto = key_dto(key)
    headers = {**_item_headers(key, dto), **NO_STORE, "content-location": f"/api/v1/api-keys/{key.id}"}
    if not_modified(request, headers["etag"], _modified(key)):
        return Response(status_code=304, headers=headers)
    return JSONResponse(dto, headers=headers)


@router.delete("/api-keys/{key_id}", status_code=204, summary="Revoke an API key",
               dependencies=[Depends(require("admin"))], openapi_extra=with_if_match())
def revoke_key(key_id: str, request: Request) -> Response:
    store = request.app.state.store
    if_match = request.headers.get("if-match")
    if if_match is None:
        raise ApiError.one(428, "preconditionRequired",
                           "Send If-Match with the key's current ETag (or *) to revoke it", fields=["If-Match"])
    key = _live_key(request, key_id)
    if if_match.strip() != "*" and etag_of(key_dto(key)) not in [t.strip() for t in if_match.split(",")]:
        raise ApiError.one(412, "preconditionFailed", "The key changed since you read it: GET it again and retry",
                           fields=["If-Match"])
    if store.revoke_key(key_id) is None:
        raise _not_found(key_id)
    return Response(status_code=204, headers=NO_STORE)


@router.options("/api-keys/{key_id}", response_class=Response, summary="Methods allowed on a key",
                dependencies=[Depends(require("admin"))])
def options_key(key_id: str, request: Request) -> Response:
    _live_key(request, key_id)
    return Response(status_code=200, headers={"allow": ITEM_METHODS, **NO_STORE})
