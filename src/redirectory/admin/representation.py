"""Representation styles and field selection (guide "Filtering": `style` and `fields`).

- `style=compact` (or another style a resource defines) answers a reduced representation;
  `style=full` (the default) the whole one.
- `fields=a,b` answers only those fields; on a collection they name item fields (no `items.`).
- Both keep `uuid`, and combine: `fields` picks from the style's fields.
- ETags (and `metadata.etags`) are always those of the full representation, so one read in any
  shape gives the ETag an update's `If-Match` needs.

Unknown styles and fields are a 400 naming the valid ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query

from redirectory.admin.errors import ApiError, ErrorItem

KEY = "uuid"


def timestamp(value: datetime | None) -> str | None:
    """A body timestamp as the guide writes them (`2026-11-24T10:00:00Z`, UTC, seconds); null stays null."""
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Shape:
    """Which fields to answer (None: all of them)."""

    fields: tuple[str, ...] | None = None

    def apply(self, dto: Mapping[str, Any]) -> dict[str, Any]:
        if self.fields is None:
            return dict(dto)
        return {name: dto[name] for name in self.fields if name in dto}


def style_param(styles: Mapping[str, Sequence[str]]) -> Any:
    return Query(description=f"Representation: full (default) or {', '.join(styles)}; always keeps uuid.",
                 json_schema_extra={"enum": ["full", *styles, ""]})


FIELDS_PATTERN = r"^[A-Za-z]+(,[A-Za-z]+)*$|^$"
Fields = Annotated[str | None, Query(description="Comma-separated field names to answer (uuid is always kept).",
                                     json_schema_extra={"pattern": FIELDS_PATTERN})]


def shape(style: str | None, fields: str | None, all_fields: Sequence[str],
          styles: Mapping[str, Sequence[str]]) -> Shape:
    """The shape asked for, or 400 listing every unknown style or field."""
    problems: list[ErrorItem] = []
    chosen: Sequence[str] | None = None
    if style not in (None, "", "full"):
        if style in styles:
            chosen = styles[style]
        else:
            problems.append(ErrorItem(f"unknown style '{style[:64]}': use full or {', '.join(styles)}",
                                      "invalidStyle", fields=["style"]))
    picked: list[str] | None = None
    if fields:
        names = fields.split(",")
        valid = list(chosen) if chosen is not None else list(all_fields)
        unknown = [n for n in names if n not in all_fields]
        if unknown:
            problems.append(ErrorItem(f"unknown field(s) {', '.join(u[:64] for u in unknown)}: valid fields are "
                                      f"{', '.join(all_fields)}", "invalidFields", fields=["fields"]))
        picked = [n for n in names if n in valid]
    if problems:
        raise ApiError(400, "invalidRepresentation", problems)
    if picked is not None:
        return Shape((KEY, *dict.fromkeys(n for n in picked if n != KEY)))
    if chosen is not None:
        return Shape((KEY, *(n for n in chosen if n != KEY)))
    return Shape()
