"""A gateway worker's metrics: counted in plain ints per request, published once a second.

Per request (`answered`, `failed`): for a redirect, one increment in its status's latency
histogram (a list: the bucket found by `bisect` over LATENCY_BUCKETS, and the sum in its last
slot), which also counts it; for any other answer, one dict increment by status: about 0.3 µs
next to the ~15 µs of CPU a redirect costs (bench/metrics_cost.py). Nothing else happens per
request: at the gateway's flush (`Gateway._flush_forever`, every `flush_interval`) and at
shutdown, `snapshot` gathers the cumulative totals with the worker's table state and `publish`
writes them to the process group's metrics directory, where the admin listener sums every
worker's file (`redirectory/metrics.py`).
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from typing import Any

from redirectory.gateway.config import READY_PROBE_PATH, GatewayConfig
from redirectory.metrics import DB_OPERATIONS, DIR_KEY, FLUSH_BUCKETS, LATENCY_BUCKETS, write_snapshot

_PROBE = READY_PROBE_PATH.encode("ascii")


class WorkerMetrics:
    """One worker's running totals (never reset: the files hold cumulative counts)."""

    __slots__ = ("directory", "pid", "name", "requests", "redirects", "db_errors", "flush_buckets", "flush_seconds")

    def __init__(self, directory: str):
        self.directory = directory
        self.pid = os.getpid()
        self.name = f"{self.pid}-{time.time_ns()}"  # its file: a pid used again never replaces it
        #: Statuses are b"301" from the default server (a slice of its status line), 301 from the ASGI ones.
        #: Answers other than redirects: status -> requests
        self.requests: dict[Any, int] = {}
        #: Redirects: status -> [requests per latency bucket (LATENCY_BUCKETS, then +Inf)..., seconds in all]
        self.redirects: dict[Any, list[Any]] = {}
        self.db_errors = dict.fromkeys(DB_OPERATIONS, 0)
        self.flush_buckets = [0] * (len(FLUSH_BUCKETS) + 1)
        self.flush_seconds = 0.0

    @classmethod
    def from_config(cls, config: GatewayConfig) -> WorkerMetrics | None:
        """The worker's metrics when `serve` gave the process group a metrics directory, else None."""
        directory = config.extra.get(DIR_KEY)
        return cls(directory) if directory else None

    # -- per request: keep these cheap -------------------------------------------------------
    def answered(self, status: Any, redirected: bool, path: bytes, started: float,
                 _now: Any = time.monotonic, _bucket: Any = bisect_left, _bounds: Any = LATENCY_BUCKETS) -> None:
        """A request the gateway answered: `status` as b"301" or 301, `started` a monotonic time."""
        if redirected:
            seconds = _now() - started
            histogram = self.redirects.get(status)
            if histogram is None:
                histogram = self.redirects[status] = [0] * (len(_bounds) + 1) + [0.0]
            histogram[_bucket(_bounds, seconds)] += 1
            histogram[-1] += seconds
            return
        if path == _PROBE:  # serve's own readiness probe is not traffic
            return
        requests = self.requests
        requests[status] = requests.get(status, 0) + 1

    def failed(self, status: int) -> None:
        """A request refused before the gateway could answer it (400, 414, 431, 505, 500)."""
        requests = self.requests
        requests[status] = requests.get(status, 0) + 1

    # -- once a second -----------------------------------------------------------------------
    def database_error(self, operation: str) -> None:
        self.db_errors[operation] += 1

    def flushed(self, seconds: float) -> None:
        self.flush_buckets[bisect_left(FLUSH_BUCKETS, seconds)] += 1
        self.flush_seconds += seconds

    def snapshot(self, revision: int, last_sync: float | None) -> dict[str, Any]:
        requests: dict[str, int] = {}
        for status, n in list(self.requests.items()):
            key = str(int(status))
            requests[key] = requests.get(key, 0) + n
        buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        seconds = 0.0
        for status, histogram in list(self.redirects.items()):
            counts = histogram[:-1]
            key = str(int(status))
            requests[key] = requests.get(key, 0) + sum(counts)
            buckets = [a + b for a, b in zip(buckets, counts, strict=True)]
            seconds += histogram[-1]
        return {
            "pid": self.pid,
            "at": time.time(),
            "requests": requests,
            "redirect_seconds": {"buckets": buckets, "sum": seconds},
            "db_errors": dict(self.db_errors),
            "flush_seconds": {"buckets": list(self.flush_buckets), "sum": self.flush_seconds},
            "revision": revision,
            "last_sync": last_sync,
        }

    def publish(self, data: dict[str, Any]) -> None:
        """Write a `snapshot` to the process group's directory (blocking: run it in a thread)."""
        write_snapshot(self.directory, self.name, data)
