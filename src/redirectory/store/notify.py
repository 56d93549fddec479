"""Wake-ups for the gateways: PostgreSQL NOTIFY on every new revision, and a LISTEN helper.

Writers call `notify_revision` inside the transaction that writes the revision; PostgreSQL
delivers the notification only when (and if) that transaction commits, so a listener never hears
of a revision it cannot read yet. The payload is the revision number, but a listener should treat
a notification as "read the change log now", nothing more: notifications can be lost (a dropped
connection, a restart) and the change log cannot, so a listener catches up with
`Store.changes_since(its revision)` after every wake-up and after every reconnection.

The channel is per database, not per schema: deployments sharing one database in several schemas
wake each other up now and then, which costs one cheap `changes_since` that finds nothing.
SQLite has no such mechanism; its gateways poll the change log.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, Engine, text

CHANNEL = "redirectory_changes"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify_revision(conn: Connection, revision: int) -> None:
    """Queue a NOTIFY for `revision` in `conn`'s transaction (PostgreSQL; a no-op elsewhere)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": str(revision)})


def connect_kwargs(engine: Engine) -> dict[str, Any]:
    """`psycopg.connect` keyword arguments for the database behind `engine` (PostgreSQL)."""
    _args, kwargs = engine.dialect.create_connect_args(engine.url)
    return dict(kwargs)


class Listener:
    """One autocommit psycopg connection LISTENing on `CHANNEL`.

    `wait(timeout)` yields the revision numbers heard within `timeout` seconds (possibly none).
    A notification that arrives during `check()` is not seen (psycopg reads notifications only
    inside `wait`), so a caller should read the change log after each `check()`. Any psycopg
    error (the server went away) propagates; `close()` and connect again.
    """

    def __init__(self, engine: Engine, connect_timeout: float = 5.0):
        import psycopg

        kwargs = connect_kwargs(engine)
        kwargs.setdefault("connect_timeout", max(1, int(connect_timeout)))
        # A peer that vanishes without closing (host down, network cut) is noticed in ~20 s.
        kwargs.setdefault("keepalives", 1)
        kwargs.setdefault("keepalives_idle", 10)
        kwargs.setdefault("keepalives_interval", 5)
        kwargs.setdefault("keepalives_count", 2)
        self._conn = psycopg.connect(**kwargs, autocommit=True)
        try:
            self._conn.execute(f"LISTEN {CHANNEL}")
        except BaseException:
            self._conn.close()
            raise

    def wait(self, timeout: float) -> Iterator[int]:
        for notify in self._conn.notifies(timeout=timeout):
            try:
                yield int(notify.payload)
            except ValueError:
                yield 0

    def check(self) -> None:
        """A round trip to the server: raises if the connection is gone."""
        self._conn.execute("SELECT 1")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["CHANNEL", "Listener", "connect_kwargs", "notify_revision"]
