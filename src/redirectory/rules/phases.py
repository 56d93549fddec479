"""Scheduled phases of a rule: "307 until 2027-03-01, then 308". Pure.

Rules of this module:
- `phases` lists what changes later, each from its `starts` on:

      status: 307
      phases:
        - starts: 2027-03-01T00:00:00Z
          status: 308
          cache: 86400          # optional; without it, a permanent status gets the default max-age

  Before the first phase the rule answers with its own `status` (and `cache`); from a phase's
  `starts` on, with that phase's. A migration window thus becomes permanent on a date with no one
  awake, and no restart: the gateway decides with the clock of each request;
- a phase's `status` is a redirect status (301, 303, 307, 308); its `starts` are in increasing order,
  at most `MAX_PHASES` of them;
- phases are held as canonical JSON text (`[{"cache":86400,"starts":"2027-03-01T00:00:00Z","status":308}]`);
  files and the admin API show the list.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from redirectory.semantics import REDIRECT_STATUSES, alternatives_to_302

MAX_PHASES = 8
_INT32_MAX = 2**31 - 1

#: (starts, status, cache) of each phase, in order.
Phase = tuple[datetime, int, int | None]


class PhasesError(ValueError):
    """`phases` that cannot be read; the message says what would be valid."""


def _when(value: Any, index: int) -> datetime:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
        except ValueError:
            raise PhasesError(f"phase {index + 1}: `starts` must be an ISO 8601 time such as "
                              f"2027-03-01T00:00:00Z, got {value!r}") from None
    else:
        raise PhasesError(f"phase {index + 1}: `starts` is required: an ISO 8601 time such as 2027-03-01T00:00:00Z")
    try:
        return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise PhasesError(f"phase {index + 1}: `starts` is out of range: a time such as 2027-03-01T00:00:00Z") from None


def parse(value: Any) -> str:
    """The canonical text of a file's or the API's `phases` (a list, or its JSON text in CSV)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise PhasesError("must be a list of phases such as [{starts: 2027-03-01T00:00:00Z, status: 308}] "
                              "(in CSV, its JSON text)") from None
    if not isinstance(value, Sequence) or isinstance(value, str | bytes) or not value:
        raise PhasesError("must be a list of phases such as [{starts: 2027-03-01T00:00:00Z, status: 308}]")
    if len(value) > MAX_PHASES:
        raise PhasesError(f"lists {len(value)} phases; at most {MAX_PHASES}")
    out: list[dict[str, Any]] = []
    last: datetime | None = None
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise PhasesError(f"phase {i + 1} must be a mapping with `starts` and `status`")
        unknown = [k for k in item if k not in ("starts", "status", "cache")]
        if unknown:
            raise PhasesError(f"phase {i + 1}: unknown key {unknown[0]!r}: a phase has starts, status and cache")
        when = _when(item.get("starts"), i)
        if last is not None and when <= last:
            raise PhasesError(f"phase {i + 1} starts at {_iso(when)}, not after phase {i} ({_iso(last)}): "
                              "list the phases in time order")
        last = when
        status = item.get("status")
        if status == 302:
            raise PhasesError(f"phase {i + 1}: {alternatives_to_302()}")
        if isinstance(status, bool) or status not in REDIRECT_STATUSES:
            raise PhasesError(f"phase {i + 1}: `status` must be {', '.join(map(str, REDIRECT_STATUSES))}, "
                              f"got {status!r}")
        phase: dict[str, Any] = {"starts": _iso(when), "status": status}
        cache = item.get("cache")
        if cache is not None:
            if isinstance(cache, bool) or not isinstance(cache, int) or not 0 <= cache <= _INT32_MAX:
                raise PhasesError(f"phase {i + 1}: `cache` must be a number of seconds from 0 to {_INT32_MAX}")
            phase["cache"] = cache
        out.append(phase)
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def _iso(when: datetime) -> str:
    # isoformat pads the year to four digits (strftime's %Y does not for years before 1000)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


@functools.lru_cache(maxsize=1024)
def phases(text: str) -> tuple[Phase, ...]:
    """The parsed canonical text."""
    return tuple((_when(p["starts"], i), p["status"], p.get("cache")) for i, p in enumerate(json.loads(text)))


def shown(text: str) -> list[dict[str, Any]]:
    """The canonical text as files and the API show it."""
    data: list[dict[str, Any]] = json.loads(text)
    return data


def current(listed: tuple[Phase, ...], now: datetime | None) -> Phase | None:
    """The phase in force at `now` (None: none has started, or no clock)."""
    found = None
    if now is None:
        return None
    for phase in listed:
        if phase[0] <= now:
            found = phase
        else:
            break
    return found
