"""`/api/v1/stats`: what the gateway answered — hits per rule, unmatched paths, hits over time.

The gateway counts in memory and flushes about once a second, so these numbers trail the
traffic by a second or so (see `redirectory.store.hits`). Every route needs scope `read`.

- `GET /api/v1/stats`: totals, with the five most hit rules and unmatched paths;
- `GET /api/v1/stats/rules`: every current rule with `hits` and `lastHit` (collection; default
  sort `hits+DESC`; `unused=true` lists the rules never hit, the candidates for removal);
- `GET /api/v1/stats/unmatched-paths`: the most requested paths no rule matched (collection);
- `GET /api/v1/stats/timeline?interval=minute|hour|day&since=&until=&ruleUuid=`: hits per
  bucket, empty buckets included, at most `MAX_BUCKETS` per response.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from redirectory.admin.auth import require
from redirectory.admin.errors import NO_STORE, ApiError, ErrorItem
from redirectory.admin.openapi import COMMON
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
from redirectory.admin.representation import timestamp
from redirectory.admin.rules import etag_of
from redirectory.store.hits import INTERVALS, RULE_STATS_SORT, oldest_kept

router = APIRouter(prefix="/api/v1", tags=["stats"], responses=COMMON)

READ_METHODS = "GET, HEAD, OPTIONS"
TOP = 5
MAX_BUCKETS = 1440
#: Buckets shown when `since` is not given, per interval.
DEFAULT_SPAN = {"minute": 60, "hour": 24, "day": 30}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")



def _rule_item(row: tuple[str, str, str, int, int, datetime | None]) -> dict[str, Any]:
    rid, source, to, status, hits, last = row
    return {"uuid": rid, "from": source, "to": to, "status": status, "hits": hits, "lastHit": timestamp(last)}


def _path_item(row: tuple[str, int, datetime]) -> dict[str, Any]:
    path, hits, last = row
    return {"path": path, "hits": hits, "lastHit": timestamp(last)}


def _options() -> Response:
    return Response(status_code=200, headers={"allow": READ_METHODS, **NO_STORE})


@router.api_route("/stats", methods=["GET", "HEAD"], summary="Hit totals and the most hit rules and paths",
                  dependencies=[Depends(require("read"))])
def get_stats(request: Request) -> JSONResponse:
    store = request.app.state.store
    summary = store.stats_summary()
    _, top_rules = store.rule_stats_page(0, TOP, [("hits", "DESC")], unused=False)
    _, top_paths = store.unmatched_page(0, TOP)
    body = {
        "rules": summary.rules,
        "rulesHit": summary.rules_hit,
        "rulesNeverHit": summary.rules - summary.rules_hit,
        "hits": summary.hits,
        "lastHit": timestamp(summary.last_hit),
        "unmatchedPaths": summary.unmatched_paths,
        "unmatchedHits": summary.unmatched_hits,
        "lastUnmatched": timestamp(summary.last_unmatched),
        "topRules": [_rule_item(r) for r in top_rules],
        "topUnmatchedPaths": [_path_item(p) for p in top_paths],
    }
    return JSONResponse(body, headers=NO_STORE)


@router.options("/stats", response_class=Response, summary="Methods allowed on the stats")
def options_stats() -> Response:
    return _options()


@router.api_route("/stats/rules", methods=["GET", "HEAD"], summary="Hits and last hit of every rule",
                  dependencies=[Depends(require("read"))])
def list_rule_stats(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    sort: Annotated[str | None, sort_param(RULE_STATS_SORT, "hits+DESC")] = None,
    unused: Annotated[str | None, flag_param("true: only rules never hit; false: only rules hit.")] = None,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    limit = page_limit(limit, offset)
    order = parse_sort(sort, RULE_STATS_SORT) or [("hits", "DESC")]
    total, rows = request.app.state.store.rule_stats_page(offset, limit, order, query_flag(unused, "unused"))
    items = [_rule_item(r) for r in rows]
    body = collection_body(items, offset=offset, limit=limit, total=total, sorted_by=order,
                           exclude_metadata=exclude_metadata, etags={i["uuid"]: etag_of(i) for i in items})
    return JSONResponse(body, headers=NO_STORE)


@router.options("/stats/rules", response_class=Response, summary="Methods allowed on rule stats")
def options_rule_stats() -> Response:
    return _options()


@router.api_route("/stats/unmatched-paths", methods=["GET", "HEAD"],
                  summary="The most requested paths no rule matched", dependencies=[Depends(require("read"))])
def list_unmatched(
    request: Request,
    limit: Limit = 10,
    offset: Offset = 0,
    exclude_metadata: ExcludeMetadata = None,
) -> JSONResponse:
    limit = page_limit(limit, offset)
    total, rows = request.app.state.store.unmatched_page(offset, limit)
    body = collection_body([_path_item(r) for r in rows], offset=offset, limit=limit, total=total,
                           sorted_by=[("hits", "DESC"), ("lastHit", "DESC")], exclude_metadata=exclude_metadata)
    return JSONResponse(body, headers=NO_STORE)


@router.options("/stats/unmatched-paths", response_class=Response, summary="Methods allowed on unmatched paths")
def options_unmatched() -> Response:
    return _options()


def _instant(text: str | None, name: str, problems: list[ErrorItem]) -> datetime | None:
    """An RFC 3339 timestamp (`2026-11-24T10:00:00Z` or with an offset), in UTC."""
    if text is None:
        return None
    value = None
    if _RFC3339.fullmatch(text):
        try:
            value = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
        except ValueError:
            value = None
    if value is None:
        problems.append(ErrorItem(f"'{name}' must be a timestamp such as 2026-11-24T10:00:00Z",
                                  "invalidTimestamp", fields=[name]))
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:  # year 1 with a negative offset, year 9999 with a positive one
        return datetime.min.replace(tzinfo=UTC) if value.year == 1 else datetime.max.replace(tzinfo=UTC)


@router.api_route("/stats/timeline", methods=["GET", "HEAD"], summary="Hits over time, in buckets",
                  dependencies=[Depends(require("read"))])
def get_timeline(
    request: Request,
    interval: Annotated[str, Query(description="Bucket size: minute (kept 2 days), hour or day (kept 90 days).",
                                   json_schema_extra={"enum": list(INTERVALS)})] = "hour",
    since: Annotated[str | None, Query(description="First instant (RFC 3339; default: 60 minutes, 24 hours "
                                                   "or 30 days before `until`).",
                                       json_schema_extra={"format": "date-time"})] = None,
    until: Annotated[str | None, Query(description="End, exclusive (RFC 3339; default: now).",
                                       json_schema_extra={"format": "date-time"})] = None,
    rule_uuid: Annotated[str | None, Query(alias="ruleUuid", description="Only this rule's hits.",
                                           json_schema_extra={"format": "uuid"})] = None,
) -> JSONResponse:
    problems: list[ErrorItem] = []
    if interval not in INTERVALS:
        problems.append(ErrorItem(f"interval must be one of {', '.join(INTERVALS)}", "invalidInterval",
                                  fields=["interval"]))
    start = _instant(since, "since", problems)
    end = _instant(until, "until", problems)
    rule_id = None
    if rule_uuid is not None:
        if _UUID.fullmatch(rule_uuid):
            rule_id = rule_uuid.lower()
        else:
            problems.append(ErrorItem("ruleUuid must be a rule's UUID", "invalidField", fields=["ruleUuid"]))
    if problems:
        raise ApiError(400, "invalidTimeline", problems)
    step = timedelta(seconds=INTERVALS[interval][1])
    now = datetime.now(UTC)
    kept = oldest_kept(interval, now)
    # Clamp to what can hold data: nothing is kept before `kept`, nothing is counted after now,
    # and one answer holds at most MAX_BUCKETS buckets (the latest ones).
    end = min(end or now, now + step)
    if end <= kept - step:  # entirely before what is kept (and far enough from year 1 to subtract)
        start = end
    else:
        start = start or end - DEFAULT_SPAN[interval] * step
        start = max(start, kept - step, end - MAX_BUCKETS * step)
    buckets = request.app.state.store.timeline(interval, start, end, rule_id) if start < end else []
    body = {
        "interval": interval,
        "since": timestamp(buckets[0].start if buckets else start),
        "until": timestamp(end),
        "ruleUuid": rule_id,
        "keptSince": timestamp(kept),
        "hits": sum(b.hits for b in buckets),
        "unmatchedHits": sum(b.unmatched for b in buckets) if rule_id is None else None,
        "buckets": [
            {"start": timestamp(b.start), "hits": b.hits, "unmatchedHits": b.unmatched if rule_id is None else None}
            for b in buckets
        ],
    }
    return JSONResponse(body, headers=NO_STORE)


@router.options("/stats/timeline", response_class=Response, summary="Methods allowed on the timeline")
def options_timeline() -> Response:
    return _options()
