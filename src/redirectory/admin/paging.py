"""Collection query parameters shared by every admin collection (guide "Pagination")."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from redirectory.admin.errors import ApiError, ErrorItem

MAX_LIMIT = 1000
DEFAULT_LIMIT = 10


def page_limit(limit: int, offset: int) -> int:
    """The effective page size (`0` means the default), or 400 listing every bad parameter."""
    problems = []
    if limit < 0 or limit > MAX_LIMIT:
        problems.append(ErrorItem(f"limit must be between 0 and {MAX_LIMIT} (0 means {DEFAULT_LIMIT})",
                                  "invalidLimit", fields=["limit"]))
    if offset < 0:
        problems.append(ErrorItem("offset must be 0 or more", "invalidOffset", fields=["offset"]))
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
    lowered = value.lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
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
        name, _, order = part.replace("+", " ").strip().partition(" ")
        order = (order.strip() or "ASC").upper()
        if name not in names:
            problems.append(ErrorItem(f"cannot sort by '{name}': use one of {', '.join(names)}",
                                      "invalidSortField", fields=["sort"]))
        elif order not in ("ASC", "DESC"):
            problems.append(ErrorItem(f"sort order '{order}' is not ASC or DESC", "invalidSortOrder", fields=["sort"]))
        else:
            out.append((name, order))
    if problems:
        raise ApiError(400, "invalidSort", problems)
    return out
