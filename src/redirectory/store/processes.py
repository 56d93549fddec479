"""Gateway processes as the store sees them: one heartbeat row per worker, on any host.

Every gateway worker upserts its row (revision, health, last sync) on each hit-count flush, so
any replica's `/healthz` can list the whole fleet and say whether it has converged. A row not
refreshed for `STALE_AFTER` is shown as stale (the process died or cannot reach the database);
rows older than `FORGET_AFTER` are deleted by the next heartbeat.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, select

from redirectory.store.schema import gateway_processes as table
from redirectory.store.store import Store

#: A process whose heartbeat is older than this is stale.
STALE_AFTER = timedelta(seconds=10)
#: ... and its row is deleted once it is older than this.
FORGET_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class ProcessState:
    """What one gateway worker reports about itself."""

    id: str
    host: str
    pid: int
    serve_id: str
    revision: int
    healthy: bool
    listening: bool
    last_error: str | None
    started_at: datetime
    last_sync: datetime | None
    seen_at: datetime

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "serve": self.serve_id,
            "revision": self.revision,
            "healthy": self.healthy,
            "listening": self.listening,
            "last_error": self.last_error,
            "started_at": _iso(self.started_at),
            "last_sync": None if self.last_sync is None else _iso(self.last_sync),
            "seen_at": _iso(self.seen_at),
            "stale": now - self.seen_at > STALE_AFTER,
        }


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hostname() -> str:
    return socket.gethostname()


def heartbeat(store: Store, state: ProcessState) -> None:
    """Upsert `state` (delete-then-insert, portable) and forget long-dead processes."""
    row = {
        "id": state.id, "host": state.host, "pid": state.pid, "serve_id": state.serve_id,
        "revision": state.revision, "healthy": state.healthy, "listening": state.listening,
        "last_error": None if state.last_error is None else state.last_error[:200],
        "started_at": state.started_at, "last_sync": state.last_sync, "seen_at": state.seen_at,
    }

    def work(conn: Connection) -> None:
        conn.execute(delete(table).where(
            (table.c.id == state.id) | (table.c.seen_at < state.seen_at - FORGET_AFTER)))
        conn.execute(table.insert().values(row))

    store._write(work)


def forget(store: Store, process_id: str) -> None:
    """Delete a process's row (it is shutting down cleanly)."""
    store._write(lambda conn: conn.execute(delete(table).where(table.c.id == process_id)))


def processes(store: Store) -> list[ProcessState]:
    """Every known gateway process, by host and pid."""
    with store.read_connection() as conn:
        rows = conn.execute(select(table).order_by(table.c.host, table.c.serve_id, table.c.pid)).all()
    return [
        ProcessState(r.id, r.host, r.pid, r.serve_id, r.revision, bool(r.healthy), bool(r.listening),
                     r.last_error, r.started_at, r.last_sync, r.seen_at)
        for r in rows
    ]


__all__ = ["FORGET_AFTER", "STALE_AFTER", "ProcessState", "forget", "heartbeat", "hostname", "processes"]
