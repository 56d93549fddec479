"""`GET /healthz` on the admin listener: this replica, the database and every gateway process.

    {"status": "ok" | "degraded", "database": "ok" | "unreachable", "revision": N, "rules": N,
     "converged": true | false, "processes": [{"pid", "host", "serve", "revision", "healthy",
     "listening", "last_sync", "seen_at", "stale", ...}], "history": {"oldest_revision": N,
     "keep_revisions": N, "keep_days": N, "max_changes": N}, "ready": ..., "workers": N, ...}

`revision` is the store's newest revision; `processes` are the heartbeats of every gateway worker
sharing the store (any host; see `store/processes.py`); `converged` is true when every process that
is not stale serves that revision; `history` is the oldest revision the change log keeps and the
retention this replica prunes by (`store/retention.py`; `error` instead when its environment is
invalid). When the database cannot be reached the gateways keep serving their last table: the
answer is then `"status": "degraded"`, `"database": "unreachable"`, with the last figures read
(and `as_of`, when they were read). The HTTP status is 200 once the gateway answers (`ready`),
even degraded, so load balancers keep a replica that still redirects; 503 before.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import OperationalError, ProgrammingError

from redirectory.store import Store
from redirectory.store import processes as process_table
from redirectory.store.retention import history_json

log = logging.getLogger("redirectory.admin")


class Health:
    """Builds the `/healthz` body; remembers the last good read for when the database is down."""

    def __init__(self, store: Store, status: dict[str, Any]):
        self.store = store
        self.status = status
        self._lock = threading.Lock()
        self._last: dict[str, Any] = {}
        self._failing = False
        self._count: tuple[int, int] | None = None  # (revision, rules): a count of 1M rows is not free

    def _rule_count(self, revision: int) -> int:
        """The table's size at `revision`, counted again only when the revision moved."""
        known = self._count
        if known is not None and known[0] == revision:
            return known[1]
        rules = self.store.rule_count()
        self._count = (revision, rules)
        return rules

    def read(self) -> tuple[int, dict[str, Any]]:
        now = datetime.now(UTC)
        schema_note: str | None = None
        try:
            revision = self.store.revision()
            rules = self._rule_count(revision)
            oldest = self.store.oldest_revision()
            try:
                procs = process_table.processes(self.store)
            except (ProgrammingError, OperationalError) as exc:
                if "gateway_processes" not in str(exc.orig):
                    raise
                # no such table: served with --no-migrate on a database not yet upgraded
                procs, schema_note = [], "the database schema predates gateway_processes: run `redirectory db upgrade`"
        except Exception as exc:  # noqa: BLE001 - reported as unreachable, no details
            if not self._failing:
                log.warning("health check cannot read the store: %s", type(exc).__name__)
            self._failing = True
            with self._lock:
                last = dict(self._last)
            body = {"status": "degraded", "database": "unreachable", **last, **self.status}
            return (200 if self.status.get("ready") else 503), body
        self._failing = False
        listed = [p.to_json(now) for p in procs]
        live = [p for p in listed if not p["stale"]]
        body = {
            "status": "ok",
            "database": "ok",
            "revision": revision,
            "rules": rules,
            "converged": bool(live) and all(p["revision"] == revision for p in live),
            "processes": listed,
            "history": history_json(oldest),
            "as_of": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }
        if schema_note:
            body["converged"] = None
            body["processes_note"] = schema_note
        with self._lock:
            self._last = body.copy()
            del self._last["status"], self._last["database"]
        return 200, {**body, **self.status}


__all__ = ["Health"]
