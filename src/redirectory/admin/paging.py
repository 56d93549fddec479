"""Collection query parameters shared by every admin collection (guide "Pagination")."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Query

from redirectory.admin.errors import ApiError, ErrorItem

MAX_LIMIT = 1000
DEFAULT_LIMIT = 10
#: Offsets beyond this are refused (no table is that large; the database's integers are not unbounded).
MAX_OFFSET = 10**12
FLAG_VALUES = ("true", "false")

#: The query parameters every collection takes (their OpenAPI schema states the valid ranges).
Limit = Annotated[int, Query(description=f"Page size, 0-{MAX_LIMIT} (0 means the default, {DEFAULT_LIMIT}).",
                             json_schema_extra={"minimum": 0, "maximum": MAX_LIMIT})]
Offset = Annotated[int, Query(description="Zero-based index of the first item.",
                              json_schema_extra={"minimum": 0, "maximum": MAX_OFFSET})]
ExcludeMetadata = Annotated[str | None, Query(alias="excludeMetadata", description="true: answer only `items`.",
                                              json_schema_extra={"enum": [*FLAG_VALUES, ""]})]


def flag_param(description: str) -> Any:
    """A true/false query parameter (empty means not given)."""
    return Query(description=description, json_schema_extra={"enum": [*FLAG_VALUES, ""]})


def sort_param(fields: Iterable[str], default: str | None = None) -> Any:
    """`sort=field+ASC|DESC,...` with a schema pattern that admits exactly what `parse_sort` does."""
    names = list(fields)
    text = f"field+ASC|DESC, comma-separated; fields: {', '.join(names)}."
    return Query(description=text + (f" Default {default}." if default else ""),
                 json_schema_extra={"pattern": _sort_pattern(names)})


def _sort_pattern(names: list[str]) -> str:
    one = f"(?:{'|'.join(re.escape(n) for n in names)})(?:[ +](?:ASC|DESC))?"
    return f"^(?:{one}(?:,{one})*)?$"


def page_limit(limit: int, offset: int) -> int:
    """The effective page size (`0` means the default), or 400 listing every bad parameter."""
    problems = []
    if limit < 0 or limit > MAX_LIMIT:
        problems.append(ErrorItem(f"limit must be between 0 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT})",
                                  "invalidLimit", fields=["limit"]))
    if offset < 0 or offset > MAX_OFFSET:
        problems.append(ErrorItem(f"offset must be between 0 and {MAX_OFFSET}", "invalidOffset", fields=["offset"]))
    if problems:
        raise ApiError(400, "invalidPagination", problems)
    return limit or DEFAULT_LIMIT


def pagination(offset: int, limit: int, total: int) -> dict[str, Any]:
    """The guide's metadata.pagination (zero-based offsets; out of range -> no current page)."""
    page_count = math.ceil(total / limit) if total else 0
    if offset < total:
        return {
            "offset": offset, "limit": limit,
            "previousOffset": max(offset - limit, 0) if offset > 0 else None,
            "nextOffset": offset + limit if offset + limit < total else None,
            "currentPage": offset // limit + 1, "pageCount": page_count, "totalCount": total,
        }
    return {
        "offset": offset, "limit": limit,
        "previousOffset": (page_count - 1) * limit if page_count else None,
        "nextOffset": None, "currentPage": None, "pageCount": page_count, "totalCount": total,
    }


def query_flag(value: str | None, name: str) -> bool | None:
    """A true/false query parameter; absent or empty means not given."""
    if value is None or value == "":
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    raise ApiError.one(400, "invalidField", f"'{name}' must be true or false", fields=[name])


def parse_sort(text: str | None, allowed: Iterable[str]) -> list[tuple[str, str]]:
    """The guide's `sort=field+ASC|DESC,...` (a decoded `+` is a space); 400 lists every bad part."""
    if not text:
        return []
    names = list(allowed)
    out: list[tuple[str, str]] = []
    problems: list[ErrorItem] = []
    for part in text.split(","):
        name, sep, order = part.replace("+", " ").partition(" ")
        order = order if sep else "ASC"
        if name not in names:
            problems.append(ErrorItem(f"cannot sort by '{name[:64]}': use one of {', '.join(names)}",
                                      "invalidSortField", fields=["sort"]))
        elif order not in ("ASC", "DESC"):
            problems.append(ErrorItem(f"sort order '{order[:64]}' is not ASC or DESC", "invalidSortOrder",
                                      fields=["sort"]))
        else:
            out.append((name, order))
    if problems:
        raise ApiError(400, "invalidSort", problems)
    return out


def collection_body(items: list[Any], *, offset: int, limit: int, total: int,
                    sorted_by: Iterable[tuple[str, str]], exclude_metadata: str | None,
                    etags: dict[str, str] | None = None) -> dict[str, Any]:
    """The guide's collection: `items`, and `metadata` (pagination, the items' ETags when given,
    sortedBy) unless `excludeMetadata=true`."""
    body: dict[str, Any] = {"items": items}
    if query_flag(exclude_metadata, "excludeMetadata") is not True:
        metadata: dict[str, Any] = {"pagination": pagination(offset, limit, total)}
        if etags is not None:
            metadata["etags"] = etags
        metadata["sortedBy"] = [{"field": f, "order": o} for f, o in sorted_by]
        body["metadata"] = metadata
    return body
