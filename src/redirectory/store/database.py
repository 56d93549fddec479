"""The database under a `Store`: URLs, engines, dialect settings, transactions and the write-retry loop.

SQLite (the default, a single file) runs in WAL mode with `busy_timeout`, and write transactions
start with `BEGIN IMMEDIATE` so two processes cannot race for a revision number (see
`install_sqlite_hooks`). PostgreSQL (psycopg 3) connects without server-side prepared statements
and with a connect timeout. `Database.write` runs one write transaction, retrying while SQLite
says another writer holds the lock.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool

T = TypeVar("T")
logger = logging.getLogger("redirectory.store")

#: SQLite `PRAGMA busy_timeout`: how long a writer waits for another writer's lock.
BUSY_TIMEOUT_MS = 5000
#: How long a write keeps retrying on "database is locked" (SQLite) before giving up; the
#: environment variable REDIRECTORY_LOCK_TIMEOUT (seconds) changes it.
LOCK_RETRY_SECONDS = 60.0
LOCK_TIMEOUT_ENV = "REDIRECTORY_LOCK_TIMEOUT"
#: SQLite `PRAGMA journal_size_limit`: the WAL file is truncated to this after a checkpoint.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: Where the Alembic scripts live (inside the installed package).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: Rows written from which, on PostgreSQL, the planner's statistics are refreshed (`analyze_after`).
ANALYZE_ROWS = 1000

_WRITE_OPTION = "redirectory_write"
_PG_MIGRATION_LOCK = 0x5EDC_0001  # pg_advisory_xact_lock key for concurrent upgrades


def utcnow() -> datetime:
    """Now, aware UTC: the time every write records (tests replace it to move time)."""
    return datetime.now(UTC)


def lock_retry_seconds() -> float:
    """LOCK_RETRY_SECONDS, or REDIRECTORY_LOCK_TIMEOUT; ValueError naming the variable when it is
    not a number of seconds from 0 to 604800 (a week)."""
    raw = os.environ.get(LOCK_TIMEOUT_ENV, "").strip()
    if not raw:
        return LOCK_RETRY_SECONDS
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 604800:
        raise ValueError(f"{LOCK_TIMEOUT_ENV}={raw[:40]!r}: give a number of seconds from 0 to 604800")
    return value


def normalize_url(url: str) -> URL:
    """Parse a database URL; `postgresql://` and `postgres://` become psycopg 3 URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def sqlite_file(url: str) -> Path | None:
    """The absolute path of a SQLite database file (relative paths resolve against the current
    directory, as SQLite does); None for other databases and in-memory SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or "mode=memory" in database:
        return None
    if database.startswith("file:"):
        database = database[len("file:"):].split("?", 1)[0]
    return Path(os.path.abspath(Path(database).expanduser()))


def describe_database(url: str) -> str:
    """Which database a URL names, for messages: the SQLite file's absolute path, or the URL
    with its password replaced by ***."""
    try:
        path = sqlite_file(url)
        if path is not None:
            return f"SQLite database {path}"
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparseable URL is shown as given, minus a password
        return redact_url(url)


def redact_url(url: str) -> str:
    """`url` as given, with its password (if any) replaced by ***."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


class DatabaseLocked(Exception):
    """Another writer held SQLite's write lock for longer than LOCK_RETRY_SECONDS."""

    def __init__(self, waited: float):
        super().__init__(f"another writer held the database's write lock for {waited:.0f} s")
        self.waited = waited


class DatabaseNotFound(LookupError):
    """`Store.open(url, create=False)` on a SQLite file that does not exist."""

    def __init__(self, path: Path):
        super().__init__(f"no database at {path}")
        self.path = path


def is_locked(exc: OperationalError) -> bool:
    """Is this SQLite's "database is locked" (another writer holds the lock)?"""
    message = str(exc.orig).lower()
    return "database is locked" in message or "database table is locked" in message


def open_engine(url: str, create: bool = True) -> Engine:
    """An engine for `url` (`sqlite:///path.db` or `postgresql://...`); see `Store.open`."""
    if not create:
        path = sqlite_file(url)
        if path is not None and not path.is_file():
            raise DatabaseNotFound(path)
    sa_url = normalize_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        if sa_url.get_driver_name() != "pysqlite":
            raise ValueError(f"unsupported SQLite driver in {url!r}: use sqlite:///PATH")
        database = sa_url.database or ""
        connect_args: dict[str, Any] = {
            "timeout": BUSY_TIMEOUT_MS / 1000,
            "check_same_thread": False,
        }
        if database in ("", ":memory:") or "mode=memory" in database:
            engine = create_engine(sa_url, connect_args=connect_args, poolclass=StaticPool)
        else:
            if not database.startswith("file:"):
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(sa_url, connect_args=connect_args)
        install_sqlite_hooks(engine, wal=create)
        return engine
    if backend == "postgresql":
        # connect_timeout: an unreachable server fails a request in seconds, not minutes.
        # prepare_threshold=None: no server-side prepared statements. psycopg prepares a query
        # after 5 runs and PostgreSQL may then plan it generically, e.g. the gateway's
        # `changes WHERE revision > $1 ORDER BY seq` as a 100k-row scan instead of an index
        # probe (20 ms instead of 0.1 ms on every wake-up). It also suits PgBouncer.
        pg_args: dict[str, Any] = {"prepare_threshold": None}
        if "connect_timeout" not in sa_url.query:
            pg_args["connect_timeout"] = 5
        return create_engine(sa_url, pool_pre_ping=True, connect_args=pg_args)
    raise ValueError(
        f"unsupported database URL {sa_url.render_as_string(hide_password=True)!r}: "
        "use sqlite:///PATH or postgresql://..."
    )


def install_sqlite_hooks(engine: Engine, wal: bool = True) -> None:
    """Pragmas on connect; our own BEGIN (IMMEDIATE for writes) instead of pysqlite's.

    `wal=False` (read-only opens) leaves the journal mode alone: switching it writes to the file,
    and a database made by redirectory is in WAL mode already (the mode is stored in the file).
    A new file gets auto_vacuum=INCREMENTAL (set before WAL mode writes the header; on an existing
    file the pragma does nothing), so pruning the history gives space back (`retention.py`), and
    the WAL file is cut back to JOURNAL_SIZE_LIMIT after a checkpoint instead of keeping the size
    of the largest write (100k rules: ~130 MB)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not BEGIN on its own
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if wal:
                # Both settings live in the file: set them once, on a file not in WAL mode yet. On
                # a WAL file `auto_vacuum` waits for (and fails behind) a writer that has written
                # pages, so a new connection during a big import would fail "database is locked".
                if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                    cursor.execute("PRAGMA auto_vacuum = INCREMENTAL")
                    cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(_WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


class Database:
    """One engine and how to use it: read snapshots, write transactions (retried while SQLite is
    locked), migrations. Thread-safe."""

    def __init__(self, engine: Engine):
        self.engine = engine
        #: The dialect name: "sqlite" or "postgresql".
        self.dialect = engine.dialect.name

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection in one read transaction: a consistent snapshot on both dialects."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A connection in one write transaction (`BEGIN IMMEDIATE` on SQLite).

        Commits when the block ends, rolls back if it raises. Does not retry; `write` does.
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def write(
        self,
        work: Callable[[Connection], T],
        on_lock_wait: Callable[[float], None] | None = None,
        attempt: Callable[[], AbstractContextManager[Any]] | None = None,
    ) -> T:
        """Run `work` in one write transaction, retrying while SQLite says another writer holds the
        lock: `on_lock_wait(seconds waited)` after each failed attempt (every BUSY_TIMEOUT_MS), and
        DatabaseLocked after `lock_retry_seconds()`. `attempt()`, when given, is entered around
        each attempt, commit included (to undo what a failed one left in memory)."""
        started = time.monotonic()
        while True:
            try:
                with attempt() if attempt is not None else nullcontext():
                    with self.write_connection() as conn:
                        return work(conn)
            except OperationalError as exc:
                if self.dialect != "sqlite" or not is_locked(exc):
                    raise
                waited = time.monotonic() - started
                try:
                    limit = lock_retry_seconds()
                except ValueError:  # the command line refuses it at start; a library user gets the default
                    limit = LOCK_RETRY_SECONDS
                if waited > limit:
                    raise DatabaseLocked(waited) from None
                if on_lock_wait is not None:
                    on_lock_wait(waited)
            time.sleep(0.05)

    def upgrade(self, on_lock_wait: Callable[[float], None] | None = None) -> None:
        """Migrate the schema to the newest version (Alembic `upgrade head`). Idempotent."""
        config = _alembic_config()

        def run(conn: Connection) -> None:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

        self.write(run, on_lock_wait)

    def schema_version(self) -> tuple[str | None, str]:
        """(the migration the database is at, None for no schema; the newest migration)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
        assert head is not None
        with self.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def analyze_after(self, rows: int) -> None:
        """After a bulk write on PostgreSQL, refresh the planner's statistics of the rule tables.

        Until autovacuum gets to it (a minute or more), PostgreSQL plans with the statistics
        of before the import; the gateways' change-log read then scans 100k rows (~20 ms)
        instead of probing the index (~0.1 ms) on every wake-up. Best effort.
        """
        if self.dialect != "postgresql" or rows < ANALYZE_ROWS:
            return
        try:
            with self.engine.connect() as conn:
                conn.execute(text("ANALYZE rules, changes"))
                conn.commit()
        except DBAPIError as exc:  # the write is done; statistics will come with autovacuum
            logger.warning("ANALYZE after a bulk write failed: %s", type(exc).__name__)
