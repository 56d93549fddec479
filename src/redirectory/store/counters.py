"""Hit counts kept in memory and flushed in batches: never a database write per request."""

from __future__ import annotations

from datetime import UTC, datetime

from redirectory.store.schema import MAX_PATH_LENGTH

#: At most this many distinct unmatched paths are counted between two flushes (the store keeps
#: the top N overall); the rest are only counted in `unmatched_overflow`.
MAX_UNMATCHED_PER_FLUSH = 10_000


class HitCounters:
    """Per-rule hits and last-hit times, plus unmatched-path counts. Updated on the event loop."""

    __slots__ = ("hits", "last", "unmatched", "unmatched_last", "unmatched_overflow")

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.unmatched: dict[str, int] = {}
        self.unmatched_last: dict[str, float] = {}
        self.unmatched_overflow = 0

    def hit(self, rule_id: str, now: float) -> None:
        hits = self.hits
        hits[rule_id] = hits.get(rule_id, 0) + 1
        self.last[rule_id] = now

    def miss(self, path: str, now: float) -> None:
        if len(path) > MAX_PATH_LENGTH:  # the store keeps no more; in memory, 10,000 paths stay ~20 MiB
            path = path[:MAX_PATH_LENGTH]
        unmatched = self.unmatched
        if path in unmatched:
            unmatched[path] += 1
        elif len(unmatched) < MAX_UNMATCHED_PER_FLUSH:
            unmatched[path] = 1
        else:
            self.unmatched_overflow += 1
            return
        self.unmatched_last[path] = now

    def __bool__(self) -> bool:
        return bool(self.hits or self.unmatched)

    def batches(self) -> tuple[dict[str, tuple[int, datetime]], dict[str, tuple[int, datetime]]]:
        """The counts in the form `Store.record_hits` takes."""

        def ts(value: float) -> datetime:
            return datetime.fromtimestamp(value, UTC)

        rules = {k: (n, ts(self.last[k])) for k, n in self.hits.items()}
        paths = {k: (n, ts(self.unmatched_last[k])) for k, n in self.unmatched.items()}
        return rules, paths
