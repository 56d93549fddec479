"""Prometheus metrics of one `redirectory serve` process group: names, the shared directory, the sum.

`GET /metrics` on the admin listener (docs/deploy.md, "Metrics") shows the whole process group:
the gateway workers (separate processes, one per `--workers`, under any `--server`) and the
serving process itself (the admin API, the worker supervisor). How the figures get there:

- each worker counts in plain Python ints and lists as it answers (`gateway/metrics.py`: a
  request costs a dict or list increment; no prometheus-client object is touched per request)
  and, at the gateway's one-second flush and at shutdown, writes its cumulative totals as one
  small JSON file, `<pid>-<start>.json` (a pid used again later never replaces an exited worker's
  counts), to the process group's private directory (`MetricsDir`: a temporary directory `serve`
  makes at start and removes at exit), replacing the previous one atomically (rename);
- the admin listener, at each scrape, reads every file there and sums them (`WorkerFiles`, a
  prometheus-client collector in the serving process's own `CollectorRegistry`): counters and
  histograms over every worker that ever ran in the group, the exited ones included, so a
  counter never goes down when a worker is restarted; gauges over the live workers only (a file
  whose process is gone is one of an exited worker: prometheus-client's `mark_process_dead`,
  done by looking).

Why not prometheus-client's multiprocess mode: it picks its value class once, when
prometheus_client is first imported, from PROMETHEUS_MULTIPROC_DIR, for the whole process (so the
process's every metric, the toolkit's included, becomes file-backed, or none does if anything
imported it first); and it has no way to add a batch of observations to a histogram (one
`observe` per request is the per-request cost this design avoids). One JSON file per worker,
written once a second, has neither problem and its sums are exactly those of the multiprocess
collector (counters summed, gauges over live processes).

Per-rule and per-path figures stay in the stats API (`/api/v1/stats`): no label here takes a
value a request chose (paths, hosts, rule ids; methods only from a fixed list), so the series are
bounded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger("redirectory.metrics")

#: `GatewayConfig.extra` key naming the process group's metrics directory (absent: metrics off).
DIR_KEY = "metrics_dir"

#: Redirect latency buckets (seconds): the gateway answers in tens of microseconds when idle.
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Hit-flush duration buckets (seconds): one write of the last second's counts.
FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Database operations of a worker whose failures are counted...
DB_OPERATIONS = ("sync", "hit_flush", "heartbeat")
#: ...and of the admin listener: reading the figures below for a scrape.
SCRAPE = "metrics_read"
#: Rule kinds of `redirectory_rules` (enabled rules by kind; disabled ones as `disabled`).
RULE_KINDS = ("exact", "pattern", "regex", "disabled")

# Metric names (the `_total` of counters is added by prometheus-client's exposition).
REQUESTS = "redirectory_gateway_requests"
UNMATCHED = "redirectory_gateway_unmatched_requests"
REDIRECT_SECONDS = "redirectory_gateway_redirect_duration_seconds"
WORKERS = "redirectory_gateway_workers"
TABLE_REVISION = "redirectory_table_revision"
SYNC_AGE = "redirectory_table_sync_age_seconds"
DATABASE_ERRORS = "redirectory_database_errors"
FLUSH_SECONDS = "redirectory_hit_flush_duration_seconds"
WORKER_RESTARTS = "redirectory_worker_restarts"
ADMIN_REQUESTS = "redirectory_admin_requests"
# ...and the admin listener's own, read from the database at scrape time (admin/metrics.py).
RULES = "redirectory_rules"
DATABASE_REVISION = "redirectory_database_revision"
REVISIONS_BEHIND = "redirectory_table_revisions_behind"


def outcome(status: int) -> str:
    """What a gateway answer with this status was: redirect, unmatched, bad_request or error."""
    if 300 <= status < 400:
        return "redirect"
    if status == 404:
        return "unmatched"
    if status >= 500:
        return "error"
    return "bad_request"


# -- the directory ------------------------------------------------------------------------------
class MetricsDir:
    """The private directory of one `serve` process group (made at start, removed at exit)."""

    def __init__(self, path: str | None = None):
        self.path = path or tempfile.mkdtemp(prefix=f"redirectory-metrics-{os.getpid()}-")

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_snapshot(directory: str, name: str, data: Mapping[str, Any]) -> None:
    """Replace `<directory>/<name>.json` with `data`, atomically (a reader sees the old or the new).
    A directory that is gone (the serving process is exiting) is not an error."""
    final = os.path.join(directory, f"{name}.json")
    temporary = final + ".tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(data, handle, separators=(",", ":"))
        os.replace(temporary, final)
    except FileNotFoundError:
        pass


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now has that pid: ours is gone
        return False
    return True


def read_snapshots(directory: str) -> list[tuple[dict[str, Any], bool]]:
    """Every worker's last totals, with whether its process is still alive."""
    found = []
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            data = json.loads(Path(directory, name).read_text(encoding="utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # replaced or removed while read: the next scrape has it
        found.append((data, _alive(pid)))
    return found


# -- the sum ------------------------------------------------------------------------------------
def _histogram(name: str, doc: str, bounds: tuple[float, ...], snapshots: list[dict[str, Any]],
               key: str) -> Any:
    from prometheus_client.core import HistogramMetricFamily

    counts = [0] * (len(bounds) + 1)
    total = 0.0
    for data in snapshots:
        part = data.get(key) or {}
        for i, n in enumerate(part.get("buckets", ())[: len(counts)]):
            counts[i] += int(n)
        total += float(part.get("sum", 0.0))
    cumulative, running = [], 0
    for bound, n in zip((*map(str, bounds), "+Inf"), counts, strict=True):
        running += n
        cumulative.append((bound, running))
    return HistogramMetricFamily(name, doc, buckets=cumulative, sum_value=total)


#: The database's figures for a scrape: (newest revision, rules by kind); raises when unreadable.
DatabaseFigures = Callable[[], tuple[int, Mapping[str, int]]]


class WorkerFiles:
    """prometheus-client collector: the workers' files, summed (see the module's docstring), and
    the database's figures (`database`, set by the admin listener) beside them."""

    def __init__(self, directory: str):
        self.directory = directory
        self.database: DatabaseFigures | None = None
        self.scrape_errors = 0

    def describe(self) -> list[Any]:
        return []  # collected afresh at each scrape; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshots = read_snapshots(self.directory)
        every = [data for data, _alive in snapshots]
        live = [data for data, alive in snapshots if alive]

        by_status: dict[int, int] = {}
        for data in every:
            for status, n in (data.get("requests") or {}).items():
                by_status[int(status)] = by_status.get(int(status), 0) + int(n)
        requests = CounterMetricFamily(REQUESTS, "Requests the gateway answered, by status and outcome "
                                       "(redirect, unmatched, bad_request, error)", labels=["status", "outcome"])
        for status in sorted(by_status):
            requests.add_metric([str(status), outcome(status)], by_status[status])
        yield requests
        yield CounterMetricFamily(UNMATCHED, "Requests no rule matched (404); by path in the stats API",
                                  value=by_status.get(404, 0))
        yield _histogram(REDIRECT_SECONDS, "Time from a redirected request's first byte to its answer being "
                         "handed to the connection", LATENCY_BUCKETS, every, "redirect_seconds")

        figures = None
        if self.database is not None:
            try:
                figures = self.database()
            except Exception as exc:  # noqa: BLE001 - the scrape goes on without them
                self.scrape_errors += 1
                log.warning("metrics: cannot read the database: %s", type(exc).__name__)

        errors = CounterMetricFamily(DATABASE_ERRORS, "Database operations that failed (workers: sync = reading "
                                     "the change log, hit_flush, heartbeat; admin: metrics_read)",
                                     labels=["operation"])
        for operation in DB_OPERATIONS:
            errors.add_metric([operation], sum(int((d.get("db_errors") or {}).get(operation, 0)) for d in every))
        errors.add_metric([SCRAPE], self.scrape_errors)
        yield errors
        yield _histogram(FLUSH_SECONDS, "Time to write one flush of hit counts to the database", FLUSH_BUCKETS,
                         every, "flush_seconds")

        yield GaugeMetricFamily(WORKERS, "Gateway worker processes alive and reporting", value=len(live))
        revisions = [int(d["revision"]) for d in live if d.get("revision") is not None]
        if revisions:
            yield GaugeMetricFamily(TABLE_REVISION, "Lowest table revision a live worker serves", value=min(revisions))
        if figures is not None:
            newest, kinds = figures
            yield GaugeMetricFamily(DATABASE_REVISION, "Newest revision of the rule table in the database",
                                    value=newest)
            if revisions:
                yield GaugeMetricFamily(REVISIONS_BEHIND, "Revisions the most behind live worker lags the "
                                        "database by (0: every worker serves the newest table)",
                                        value=max(0, newest - min(revisions)))
            rules = GaugeMetricFamily(RULES, "Rules in the table, by kind (enabled rules: exact, pattern, regex; "
                                      "disabled ones: disabled)", labels=["kind"])
            for kind in RULE_KINDS:
                rules.add_metric([kind], kinds.get(kind, 0))
            yield rules
        syncs = [float(d["last_sync"]) for d in live if d.get("last_sync") is not None]
        if syncs:
            yield GaugeMetricFamily(SYNC_AGE, "Seconds since the last successful read of the change log, "
                                    "the longest among the live workers", value=max(0.0, time.time() - min(syncs)))


class ServingProcess:
    """prometheus-client collector: the serving process's own counts (plain ints, like the workers')."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.worker_restarts = 0
        self.admin_requests: dict[tuple[str, str, str], int] = {}

    def restarted(self) -> None:
        with self._lock:
            self.worker_restarts += 1

    def admin_request(self, route: str, method: str, status: int) -> None:
        key = (route, method, str(status))
        with self._lock:
            self.admin_requests[key] = self.admin_requests.get(key, 0) + 1

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily

        with self._lock:
            restarts, requests = self.worker_restarts, dict(self.admin_requests)
        yield CounterMetricFamily(WORKER_RESTARTS, "Gateway workers that exited and were started again by "
                                  "serve's supervisor (--server httptools)", value=restarts)
        admin = CounterMetricFamily(ADMIN_REQUESTS, "Requests the admin listener answered, by route template, "
                                    "method and status", labels=["route", "method", "status"])
        for labels in sorted(requests):
            admin.add_metric(list(labels), requests[labels])
        yield admin


class ProcessGroupMetrics:
    """The serving process's registry: the workers' sums plus its own counts.

    Made by `serve` (the directory) and handed to the admin listener, which serves it at /metrics.
    """

    def __init__(self, directory: MetricsDir):
        from prometheus_client import CollectorRegistry

        self.directory = directory
        self.registry = CollectorRegistry(auto_describe=False)
        self.workers = WorkerFiles(directory.path)
        self.serving = ServingProcess()
        self.registry.register(self.workers)
        self.registry.register(self.serving)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.directory.remove()
