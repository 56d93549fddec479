"""The permanent-redirect memory: a bounded LRU, safe across threads and tasks, optionally
persisted in an SQLite file.

What is remembered follows `redirectory.semantics`: only permanent redirects (301, 308); a 301
only for GET and HEAD (other methods may have been turned into GET, so the move says nothing
about them), a 308 for whatever method received it. Entries are keyed by (method, URL): servers
may route one URL differently per method (a redirectory rule can be limited to POST), so a 308
learnt from a POST is never applied to a GET. A HEAD may reuse what a GET learnt (RFC 9111 §4).

How long an entry lives comes from the response (Cache-Control max-age, Expires, Age, Date) or,
without either, from `default_ttl`; `no-store` and `no-cache` responses are not remembered.

Concurrency: the in-memory table is the source of truth at run time and is guarded by one lock
held only for dictionary work (never across I/O), so lookups from an event loop never wait on
the disk. Changes destined for the SQLite file are queued under that lock and written, in order,
by `flush()` (the sync client flushes inline; the async client flushes in a worker thread). The
file is read once, when the memory opens: several processes may share one file, each seeing
the others' moves after a restart.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from redirectory.client.freshness import remaining_freshness
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, SAFE_FOR_301, TABLE

__all__ = ["DEFAULT_MAX_ENTRIES", "RedirectMemory", "RememberedRedirect", "rememberable"]

DEFAULT_MAX_ENTRIES = 1024
_SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class RememberedRedirect:
    """One remembered permanent move: `method url` goes to `target` until `expires_at`."""

    method: str
    url: str
    status: int
    target: str
    stored_at: float  # POSIX time
    expires_at: float  # POSIX time
    freshness: str  # where the lifetime came from, for explain()

    def fresh(self, now: float) -> bool:
        return now < self.expires_at


def rememberable(method: str, status: int) -> bool:
    """May a `status` response to `method` be remembered? (301: GET/HEAD only; 308: any method.)"""
    entry = TABLE.get(status)
    if entry is None or not entry.permanent or not entry.is_redirect:
        return False
    return entry.preserves_method or method.upper() in SAFE_FOR_301


_Op = tuple[Literal["put"], RememberedRedirect] | tuple[Literal["delete"], str, str] | tuple[Literal["clear"]]


class RedirectMemory:
    """Bounded, thread-safe memory of permanent redirects, optionally persisted in SQLite.

    `max_entries` bounds both the in-memory table and the file (least recently used entries go
    first); `path` names the SQLite file (created if missing); `default_ttl` is the lifetime of a
    301/308 that carries no Cache-Control max-age or Expires (default: the gateway's own default
    max-age, `redirectory.semantics.DEFAULT_PERMANENT_MAX_AGE`); `clock` returns POSIX time.
    """

    def __init__(
        self,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        *,
        path: str | os.PathLike[str] | None = None,
        default_ttl: float = DEFAULT_PERMANENT_MAX_AGE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        if default_ttl < 0:
            raise ValueError(f"default_ttl must not be negative, not {default_ttl}")
        self.max_entries = max_entries
        self.default_ttl = float(default_ttl)
        self.path = Path(path) if path is not None else None
        self._clock = clock
        self._lock = threading.Lock()
        self._db_lock = threading.Lock()
        self._entries: OrderedDict[tuple[str, str], RememberedRedirect] = OrderedDict()
        self._pending: list[_Op] = []
        self._db: sqlite3.Connection | None = None
        if self.path is not None:
            self._open_file(self.path)

    # -- persistence -------------------------------------------------------------------------

    def _open_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(path, timeout=10, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # a cache: durable enough, and no fsync per remembered move
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, _SCHEMA_VERSION):
                raise ValueError(f"{path}: redirect memory schema version {version} is not supported")
            db.execute(
                "CREATE TABLE IF NOT EXISTS remembered_redirects ("
                " method TEXT NOT NULL, url TEXT NOT NULL, status INTEGER NOT NULL, target TEXT NOT NULL,"
                " stored_at REAL NOT NULL, expires_at REAL NOT NULL, freshness TEXT NOT NULL,"
                " PRIMARY KEY (method, url))"
            )
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
            now = self._clock()
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM remembered_redirects WHERE expires_at <= ?", (now,))
            rows = db.execute(
                "SELECT method, url, status, target, stored_at, expires_at, freshness FROM remembered_redirects"
                " ORDER BY stored_at DESC LIMIT ?", (self.max_entries,)
            ).fetchall()
            db.execute(
                "DELETE FROM remembered_redirects WHERE rowid NOT IN (SELECT rowid FROM remembered_redirects"
                " ORDER BY stored_at DESC LIMIT ?)", (self.max_entries,)
            )
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise ValueError(f"{path}: cannot open the redirect memory: {exc}") from exc
        for row in reversed(rows):
            entry = RememberedRedirect(str(row[0]), str(row[1]), int(row[2]), str(row[3]), float(row[4]),
                                       float(row[5]), str(row[6]))
            self._entries[(entry.method, entry.url)] = entry
        self._db = db

    @property
    def persistent(self) -> bool:
        return self._db is not None

    @property
    def has_pending_writes(self) -> bool:
        return bool(self._pending)

    def flush(self) -> None:
        """Write queued changes to the SQLite file, in the order they happened (no-op in memory)."""
        if self._db is None:
            return
        with self._db_lock:
            with self._lock:
                ops, self._pending = self._pending, []
            if not ops or self._db is None:
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for op in ops:
                    if op[0] == "put":
                        e = op[1]
                        db.execute(
                            "INSERT OR REPLACE INTO remembered_redirects"
                            " (method, url, status, target, stored_at, expires_at, freshness)"
                            " VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (e.method, e.url, e.status, e.target, e.stored_at, e.expires_at, e.freshness),
                        )
                    elif op[0] == "delete":
                        db.execute("DELETE FROM remembered_redirects WHERE method = ? AND url = ?", (op[1], op[2]))
                    else:
                        db.execute("DELETE FROM remembered_redirects")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Flush and close the SQLite file (the in-memory table stays usable)."""
        self.flush()
        with self._db_lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- the table ---------------------------------------------------------------------------

    def _queue(self, op: _Op) -> None:
        if self._db is not None:
            self._pending.append(op)

    def _delete_locked(self, key: tuple[str, str]) -> None:
        if self._entries.pop(key, None) is not None:
            self._queue(("delete", key[0], key[1]))

    def lookup(self, method: str, url: str) -> RememberedRedirect | None:
        """The fresh entry for `method url` (a HEAD may use a GET's), or None. Expired entries go."""
        method = method.upper()
        now = self._clock()
        keys = [(method, url), ("GET", url)] if method == "HEAD" else [(method, url)]
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is None:
                    continue
                if not entry.fresh(now):
                    self._delete_locked(key)
                    continue
                self._entries.move_to_end(key)
                return entry
        return None

    def remember(
        self,
        method: str,
        url: str,
        status: int,
        target: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
        *,
        response_time: float | None = None,
        flush: bool = True,
    ) -> RememberedRedirect | None:
        """Remember `method url` -> `target` if `status` and the response's caching headers allow.

        Returns the entry, or None when nothing was remembered (not a permanent redirect for
        this method, or no freshness: `no-store`, `max-age=0`, an expired `Expires`...), in
        which case any older entry for the same key is forgotten: the server's latest answer wins.
        If the new entry would close a cycle with remembered ones, the older entry pointing back
        is forgotten, so remembered moves can never loop.
        """
        method = method.upper()
        now = self._clock()
        arrived = now if response_time is None else response_time
        entry: RememberedRedirect | None = None
        if rememberable(method, status) and url != target:
            remaining, source = remaining_freshness(headers, response_time=arrived, default=self.default_ttl)
            if remaining > 0:
                entry = RememberedRedirect(method, url, status, target, now, arrived + remaining, source)
        key = (method, url)
        with self._lock:
            if entry is None:
                self._delete_locked(key)
            else:
                self._break_cycle_locked(entry, now)
                self._entries[key] = entry
                self._entries.move_to_end(key)
                self._queue(("put", entry))
                while len(self._entries) > self.max_entries:
                    oldest = next(iter(self._entries))
                    self._delete_locked(oldest)
        if flush:
            self.flush()
        return entry

    def _break_cycle_locked(self, new: RememberedRedirect, now: float) -> None:
        current, seen = new.target, {new.url}
        for _ in range(self.max_entries + 1):
            found = self._entries.get((new.method, current))
            if found is None or not found.fresh(now):
                return
            if found.target in seen or found.target == new.url:
                self._delete_locked((found.method, found.url))
                return
            seen.add(current)
            current = found.target

    def forget(self, url: str, method: str | None = None, *, flush: bool = True) -> int:
        """Forget what is remembered for `url` (for every method, or only `method`); returns how many."""
        with self._lock:
            keys = [k for k in self._entries if k[1] == url and (method is None or k[0] == method.upper())]
            for key in keys:
                self._delete_locked(key)
        if flush:
            self.flush()
        return len(keys)

    def discard(self, entry: RememberedRedirect, *, flush: bool = True) -> bool:
        """Forget `entry` if it is still the one remembered for its key (not a newer one)."""
        key = (entry.method, entry.url)
        with self._lock:
            found = self._entries.get(key) == entry
            if found:
                self._delete_locked(key)
        if flush:
            self.flush()
        return found

    def clear(self) -> None:
        """Forget everything (the file too)."""
        with self._lock:
            self._entries.clear()
            self._pending = []
            self._queue(("clear",))
        self.flush()

    def entries(self) -> list[RememberedRedirect]:
        """A snapshot, least recently used first (expired entries included until looked up)."""
        with self._lock:
            return list(self._entries.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path is not None else "in memory"
        return f"<RedirectMemory {len(self)}/{self.max_entries} entries, {where}>"
