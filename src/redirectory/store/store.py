"""The rule store: rules, settings, revisions, the change log, hit counters and API keys.

One `Store` wraps one SQLAlchemy engine. Every write is one transaction (all-or-nothing)
and every write that changes the rule table or its settings allocates exactly one new
revision, so readers can poll `revision()` and catch up with `changes_since()`. API keys
(`create_key` ... `verify_key`, see `keys.py`) are not part of the rule table: they write no
revision.

SQLite (the default, a single file) runs in WAL mode with `busy_timeout`, and write
transactions start with `BEGIN IMMEDIATE` so two processes cannot race for a revision
number. PostgreSQL (psycopg 3) takes a table lock for the same purpose. Other dialect
checks: the hit-counter upserts (ON CONFLICT on both) and, on PostgreSQL only, bulk
inserts through COPY and bulk deletes through `= ANY(array)` (speed; same effect).
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    Connection,
    Dialect,
    Engine,
    Select,
    String,
    any_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.schema import Table
from sqlalchemy.types import TypeEngine

from redirectory.rules.model import Problem, QueryMode, Rule, RuleSet, format_timestamp, new_rule
from redirectory.store import hits as hits_sql
from redirectory.store.guard import ChangeRefused, TableGuard, TableState
from redirectory.store.keys import (
    LAST_USED_RESOLUTION,
    PREFIX_LENGTH,
    ApiKey,
    hash_secret,
    is_well_formed,
    new_secret,
    validate_name,
    validate_scope,
)
from redirectory.store.notify import notify_revision
from redirectory.store.retention import (
    VACUUM_THRESHOLD,
    HistoryPruned,
    Pruned,
    Retention,
    delete_batch,
    free_pages,
    read_horizon,
    set_horizon,
    target_horizon,
    try_prune_lock,
    vacuum_step,
)
from redirectory.store.schema import (
    MAX_PATH_LENGTH,
    as_utc,
    changes,
    revisions,
    settings,
    unmatched_paths,
)
from redirectory.store.schema import api_keys as api_keys_t
from redirectory.store.schema import rule_hits as rule_hits_t
from redirectory.store.schema import rules as rules_t

__all__ = [
    "BUSY_TIMEOUT_MS",
    "Change",
    "LoggedChange",
    "MIGRATIONS_DIR",
    "PathStats",
    "Plan",
    "Revision",
    "RuleStats",
    "Stats",
    "Store",
    "UNMATCHED_KEEP",
    "diff",
    "normalize_url",
]

T = TypeVar("T")
logger = logging.getLogger("redirectory.store")

#: SQLite `PRAGMA busy_timeout`: how long a writer waits for another writer's lock.
BUSY_TIMEOUT_MS = 5000
#: How long a write keeps retrying on "database is locked" (SQLite) before giving up; the
#: environment variable REDIRECTORY_LOCK_TIMEOUT (seconds) changes it.
LOCK_RETRY_SECONDS = 60.0
LOCK_TIMEOUT_ENV = "REDIRECTORY_LOCK_TIMEOUT"


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
#: SQLite `PRAGMA journal_size_limit`: the WAL file is truncated to this after a checkpoint.
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: Rows per executemany batch (and per `progress` call in `add`).
BATCH_SIZE = 1000
#: How many unmatched paths `record_hits` keeps (the most hit ones).
UNMATCHED_KEEP = 1000
#: Where the Alembic scripts live (inside the installed package).
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_WRITE_OPTION = "redirectory_write"
_ALLOWED_HOSTS = "allowed_hosts"
_PG_MIGRATION_LOCK = 0x5EDC_0001  # pg_advisory_xact_lock key for concurrent upgrades

# Columns that make up an ApiKey, in its field order.
_KEY_COLUMNS = (
    api_keys_t.c.id,
    api_keys_t.c.name,
    api_keys_t.c.scope,
    api_keys_t.c.prefix,
    api_keys_t.c.created_at,
    api_keys_t.c.revoked_at,
    api_keys_t.c.last_used_at,
)

# Columns that make up a Rule, in the order `_rule_from_row` unpacks them.
_RULE_COLUMNS = (
    rules_t.c.id,
    rules_t.c.position,
    rules_t.c.source,
    rules_t.c.source_regex,
    rules_t.c.to,
    rules_t.c.status,
    rules_t.c.methods,
    rules_t.c.query,
    rules_t.c.starts,
    rules_t.c.ends,
    rules_t.c.cache,
    rules_t.c.priority,
    rules_t.c.case_insensitive,
    rules_t.c.enabled,
    rules_t.c.tags,
    rules_t.c.note,
)
_META_COLUMNS = (rules_t.c.created_at, rules_t.c.updated_at, rules_t.c.revision)


# --------------------------------------------------------------------------- results


@dataclass(slots=True)
class Plan:
    """What `apply` does (or would do) to make the table equal to a RuleSet.

    `added` rules carry their new position (and, from `apply`, their new id); `changed`
    pairs are (before, after), both with the stored id; `removed` are the stored rules.
    `allowed_hosts` is (before, after) when the setting changes, else None.
    `reordered` lists (id, new position) of path rules whose only difference is their
    position: order does not matter for path rules, so that is not a change; `apply`
    still records the new positions when it writes a revision anyway.
    """

    added: list[Rule] = field(default_factory=list)
    changed: list[tuple[Rule, Rule]] = field(default_factory=list)
    removed: list[Rule] = field(default_factory=list)
    allowed_hosts: tuple[tuple[str, ...], tuple[str, ...]] | None = None
    reordered: list[tuple[str, int]] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        """True when applying would change nothing (and so write no revision)."""
        return not (self.added or self.changed or self.removed or self.allowed_hosts)

    def summary(self) -> str:
        """`N added, N changed, N removed` (plus `, allowed_hosts changed` if so)."""
        text_ = f"{len(self.added)} added, {len(self.changed)} changed, {len(self.removed)} removed"
        if self.allowed_hosts is not None:
            text_ += ", allowed_hosts changed"
        return text_


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of the change log.

    `op` is "add", "change", "remove" (rule changes: `rule_id` set, `before`/`after` as
    applicable) or "settings" (`allowed_hosts` holds the new value, the rest is None).
    """

    revision: int
    op: str
    rule_id: str | None
    before: Rule | None
    after: Rule | None
    allowed_hosts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class OutsideEdit:
    """A rule a declarative apply would change or remove, last written by someone else
    (`op` "add" or "change" by `actor` in `revision`) since the last apply (`since`; 0: never)."""

    rule: Rule
    op: str
    revision: int
    actor: str
    at: datetime
    since: int


@dataclass(frozen=True, slots=True)
class RuleStats:
    """Hit counter of one current rule (`hits` is 0 and `last_hit` None if never hit)."""

    rule_id: str
    from_text: str
    to: str
    status: int
    hits: int
    last_hit: datetime | None


@dataclass(frozen=True, slots=True)
class PathStats:
    """Hit counter of one path no rule matched."""

    path: str
    hits: int
    last_hit: datetime


@dataclass(frozen=True, slots=True)
class Stats:
    """Every current rule with its hits (most hit first) and the top unmatched paths."""

    rules: list[RuleStats]
    unmatched: list[PathStats]


# --------------------------------------------------------------------------- helpers


def _utcnow() -> datetime:
    return datetime.now(UTC)


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


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def _dump_list(values: tuple[str, ...]) -> str:
    return _JSON.encode(list(values))


@functools.lru_cache(maxsize=4096)
def _load_tuple(value: str) -> tuple[str, ...]:
    return tuple(json.loads(value))


@functools.lru_cache(maxsize=1024)
def _ts_cached(value: datetime) -> str:
    return format_timestamp(as_utc(value))


def _ts(value: datetime | None) -> str | None:
    return None if value is None else _ts_cached(value)


def _parse_ts(value: str | None) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(value))


def _copy(
    rule: Rule,
    rule_id: str | None,
    position: int,
    starts: datetime | None,
    ends: datetime | None,
) -> Rule:
    """`rule` with another id, position and window (much faster than `dataclasses.replace`)."""
    return Rule(
        to=rule.to,
        source=rule.source,
        source_regex=rule.source_regex,
        status=rule.status,
        methods=rule.methods,
        query=rule.query,
        starts=starts,
        ends=ends,
        cache=rule.cache,
        priority=rule.priority,
        case_insensitive=rule.case_insensitive,
        enabled=rule.enabled,
        tags=rule.tags,
        note=rule.note,
        id=rule_id,
        line=rule.line,
        position=position,
        field_lines=rule.field_lines,
    )


def _utc_window(rule: Rule) -> tuple[datetime | None, datetime | None]:
    """`starts`/`ends` as aware UTC (naive values are taken to be UTC)."""
    starts, ends = rule.starts, rule.ends
    if starts is not None and starts.tzinfo is not UTC:
        starts = as_utc(starts)
    if ends is not None and ends.tzinfo is not UTC:
        ends = as_utc(ends)
    return starts, ends


def _rule_from_row(row: Sequence[Any]) -> Rule:
    (rid, position, source, regex, to, status, methods, query, starts, ends, cache,
     priority, case_insensitive, enabled, tags, note) = row[:16]  # fmt: skip
    return Rule(
        to=to,
        source=source,
        source_regex=regex,
        status=status,
        methods=None if methods is None else _load_tuple(methods),
        query=query,
        starts=starts,
        ends=ends,
        cache=cache,
        priority=priority,
        case_insensitive=bool(case_insensitive),
        enabled=bool(enabled),
        tags=_load_tuple(tags),
        note=note,
        id=rid,
        position=position,
    )


def _values(
    rule: Rule,
    rule_id: str,
    position: int,
    created_at: datetime,
    updated_at: datetime,
    revision: int,
) -> dict[str, Any]:
    """The `rules` row of `rule` (column name -> Python value)."""
    return {
        "id": rule_id,
        "position": position,
        "source": rule.source,
        "source_regex": rule.source_regex,
        "to": rule.to,
        "status": rule.status,
        "methods": None if rule.methods is None else _dump_list(rule.methods),
        "query": rule.query,
        "starts": rule.starts,
        "ends": rule.ends,
        "cache": rule.cache,
        "priority": rule.priority,
        "case_insensitive": rule.case_insensitive,
        "enabled": rule.enabled,
        "tags": _dump_list(rule.tags),
        "note": rule.note,
        "created_at": created_at,
        "updated_at": updated_at,
        "revision": revision,
    }


def _record(rule: Rule, values: Mapping[str, Any]) -> str:
    """The change-log JSON of a `rules` row: every column, lists as lists, ISO times."""
    out = dict(values)
    out["starts"] = _ts(rule.starts)
    out["ends"] = _ts(rule.ends)
    out["created_at"] = _ts(values["created_at"])
    out["updated_at"] = _ts(values["updated_at"])
    out["methods"] = None if rule.methods is None else list(rule.methods)
    out["tags"] = list(rule.tags)
    return _JSON.encode(out)


def _log(op: str, rule_id: str | None, before: str | None, after: str | None) -> dict[str, Any]:
    return {"op": op, "rule_id": rule_id, "before": before, "after": after}


def _rule_from_record(text_: str | None) -> Rule | None:
    if text_ is None:
        return None
    rec = json.loads(text_)
    methods = rec.get("methods")
    return Rule(
        to=rec["to"],
        source=rec.get("source"),
        source_regex=rec.get("source_regex"),
        status=rec["status"],
        methods=None if methods is None else tuple(methods),
        query=cast(QueryMode, rec.get("query", "keep")),
        starts=_parse_ts(rec.get("starts")),
        ends=_parse_ts(rec.get("ends")),
        cache=rec.get("cache"),
        priority=rec.get("priority", 0),
        case_insensitive=bool(rec.get("case_insensitive", False)),
        enabled=bool(rec.get("enabled", True)),
        tags=tuple(rec.get("tags") or ()),
        note=rec.get("note"),
        id=rec.get("id"),
        position=rec.get("position", 0),
    )


def _truncate_path(path: str) -> str:
    """At most MAX_PATH_LENGTH characters and UTF-8 bytes (PostgreSQL index limits)."""
    if len(path) > MAX_PATH_LENGTH:
        path = path[:MAX_PATH_LENGTH]
    encoded = path.encode("utf-8", "surrogatepass")
    if len(encoded) > MAX_PATH_LENGTH:
        path = encoded[:MAX_PATH_LENGTH].decode("utf-8", "ignore")
    return path


def _batches(items: Sequence[T], size: int = BATCH_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def diff(
    current: Sequence[Rule],
    ruleset: RuleSet,
    hosts_before: tuple[str, ...],
    new_id: Callable[[], str] | None = None,
) -> Plan:
    """The plan that turns `current` (stored rules, with ids) into `ruleset`.

    Identity is `Rule.key()`. A rule whose compared fields are equal is unchanged, except
    that a regex rule whose position moved counts as changed (regex order matters).
    `new_id`, when given, assigns ids to added rules. Raises ValueError if two rules of
    `ruleset` share a key (the validator reports that as an error first).
    """
    by_key = {rule.key(): rule for rule in current}
    kept: set[str | None] = set()
    seen: set[tuple[Any, ...]] = set()
    plan = Plan()
    for position, incoming in enumerate(ruleset.rules):
        starts, ends = _utc_window(incoming)
        rule = incoming
        if starts is not incoming.starts or ends is not incoming.ends:
            rule = _copy(incoming, incoming.id, position, starts, ends)
        key = rule.key()
        if key in seen:  # the validator reports these; never store two rules with one key
            raise ValueError(f"duplicate rule at position {position}: {rule.from_text!r}")
        seen.add(key)
        old = by_key.get(key)
        if old is None:
            rule_id = None if new_id is None else new_id()
            plan.added.append(_copy(rule, rule_id, position, starts, ends))
            continue
        kept.add(old.id)
        if old != rule or (rule.is_regex and old.position != position):
            plan.changed.append((old, _copy(rule, old.id, position, starts, ends)))
        elif old.position != position:
            assert old.id is not None
            plan.reordered.append((old.id, position))
    plan.removed = [rule for rule in current if rule.id not in kept]
    hosts_after = tuple(ruleset.allowed_hosts)
    if hosts_after != hosts_before:
        plan.allowed_hosts = (hosts_before, hosts_after)
    return plan


def _new_id() -> str:
    """A random UUID4 as text (same format as `str(uuid.uuid4())`, several times faster)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _converter(
    dialect: Dialect, names: Sequence[str], types: Sequence[TypeEngine[Any]]
) -> Callable[[Mapping[str, Any]], list[Any]]:
    """row -> [DBAPI value for each of `names`], using the types' own bind processors.

    Conversions are memoized per value: in a bulk write most rows share `created_at`,
    `revision`, booleans and so on.
    """
    processed: list[tuple[int, Callable[[Any], Any], dict[Any, Any]]] = []
    for index, type_ in enumerate(types):
        processor = type_.bind_processor(dialect)
        if processor is not None:
            processed.append((index, processor, {}))

    def convert(row: Mapping[str, Any]) -> list[Any]:
        values = [row[name] for name in names]
        for index, processor, memo in processed:
            value = values[index]
            if value is not None:
                converted = memo.get(value, _MISSING)
                if converted is _MISSING:
                    converted = memo[value] = processor(value)
                values[index] = converted
        return values

    return convert


def _executemany(conn: Connection, stmt: ClauseElement, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run `stmt` once per row (DBAPI `executemany`, in batches) with little overhead.

    The statement is compiled once, so the SQL is what SQLAlchemy itself would send; the
    values go through the column types' bind processors (see `_converter`). Several times
    faster than `conn.execute(stmt, rows)` for 100k rows.
    """
    if not rows:
        return
    dialect = conn.dialect
    compiled = cast(SQLCompiler, stmt.compile(dialect=dialect, column_keys=list(rows[0])))
    names = list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
    convert = _converter(dialect, names, [compiled.binds[name].type for name in names])
    sql = compiled.string
    for batch in _batches(rows):
        if compiled.positional:
            params: list[Any] = [tuple(convert(row)) for row in batch]
        else:
            params = [dict(zip(names, convert(row), strict=True)) for row in batch]
        conn.exec_driver_sql(sql, params)


def _bulk_insert(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert `rows` (dicts keyed by column name, all with the same keys).

    PostgreSQL: `COPY ... FROM STDIN` (psycopg 3), far faster than any INSERT form.
    Elsewhere: one compiled INSERT through `executemany`.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        _executemany(conn, insert(table), rows)
        return
    dialect = conn.dialect
    names = list(rows[0])
    convert = _converter(dialect, names, [table.c[name].type for name in names])
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(n) for n in names)}) FROM STDIN"
    driver_connection: Any = conn.connection.driver_connection
    dbapi_error = dialect.loaded_dbapi.Error
    try:
        with driver_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(convert(row))
    except dbapi_error as exc:  # raise what conn.execute would: IntegrityError etc.
        raise DBAPIError.instance(sql, None, exc, dbapi_error, dialect=dialect) from exc


#: SQLite page cache (KiB) of a connection writing this many rows or more: the indexes of a table of
#: a million rules do not fit the default 2 MB, and random UUID keys then cost a page read each.
BULK_ROWS = 20_000
BULK_CACHE_KIB = 262_144


@contextmanager
def _bulk_cache(conn: Connection, rows: int) -> Iterator[None]:
    """A big SQLite page cache for a big write (about 30% faster at 1M rows), the default again after."""
    if conn.dialect.name != "sqlite" or rows < BULK_ROWS:
        yield
        return
    before = conn.exec_driver_sql("PRAGMA cache_size").scalar()
    conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")
    try:
        yield
    finally:
        conn.exec_driver_sql(f"PRAGMA cache_size={int(before or -2000)}")


def _delete_by_id(conn: Connection, ids: Sequence[str]) -> None:
    """DELETE the rules with these ids: `= ANY(array)` on PostgreSQL, `IN (...)` elsewhere."""
    if conn.dialect.name == "postgresql":
        stmt = delete(rules_t).where(rules_t.c.id == any_(bindparam("ids", type_=pg_dialect.ARRAY(String))))
        for batch in _batches(ids, 10_000):
            conn.execute(stmt, {"ids": list(batch)})
        return
    for batch in _batches(ids, 500):
        conn.execute(delete(rules_t).where(rules_t.c.id.in_(list(batch))))


_MISSING = object()


def _is_locked(exc: OperationalError) -> bool:
    message = str(exc.orig).lower()
    return "database is locked" in message or "database table is locked" in message


_KEY_ID_RE = re.compile(r"[0-9A-Za-z-]{1,36}")


def _plausible_key_id(key_id: object) -> bool:
    """Could this be an `api_keys.id`? (Anything else, e.g. NUL or lone surrogates, which
    PostgreSQL rejects, is simply not found.)"""
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


# --------------------------------------------------------------------------- the store


class Store:
    """The rule store behind one database URL. Thread-safe; share one per process."""

    def __init__(self, engine: Engine):
        """Wrap an engine made by `Store.open` (use that instead)."""
        #: Called with the seconds waited so far while another writer holds SQLite's write lock
        #: (a command line shows progress with it); None: wait silently.
        self.on_lock_wait: Callable[[float], None] | None = None
        self._engine = engine
        self._dialect = engine.dialect.name
        self._last_prune: datetime | None = None
        #: Validates every rule write inside its transaction (`guard.py`).
        self._guard = TableGuard()

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, create: bool = True) -> Store:
        """Connect to `url` (`sqlite:///path.db` or `postgresql://...`). Does not migrate.

        For SQLite the file and its parent directory are created (with `create=False` a missing
        file raises DatabaseNotFound instead, and nothing is created), and every connection gets
        WAL mode, `busy_timeout`, `foreign_keys=ON` and `synchronous=NORMAL`.
        """
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
            _install_sqlite_hooks(engine, wal=create)
        elif backend == "postgresql":
            # connect_timeout: an unreachable server fails a request in seconds, not minutes.
            # prepare_threshold=None: no server-side prepared statements. psycopg prepares a query
            # after 5 runs and PostgreSQL may then plan it generically, e.g. the gateway's
            # `changes WHERE revision > $1 ORDER BY seq` as a 100k-row scan instead of an index
            # probe (20 ms instead of 0.1 ms on every wake-up). It also suits PgBouncer.
            pg_args: dict[str, Any] = {"prepare_threshold": None}
            if "connect_timeout" not in sa_url.query:
                pg_args["connect_timeout"] = 5
            engine = create_engine(sa_url, pool_pre_ping=True, connect_args=pg_args)
        else:
            raise ValueError(
                f"unsupported database URL {sa_url.render_as_string(hide_password=True)!r}: "
                "use sqlite:///PATH or postgresql://..."
            )
        return cls(engine)

    def upgrade(self) -> None:
        """Migrate the schema to the newest version (Alembic `upgrade head`). Idempotent."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))

        def run(conn: Connection) -> None:
            if self._dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

        self._write(run)

    def schema_version(self) -> tuple[str | None, str]:
        """(the migration the database is at, None for no schema; the newest migration)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
        head = ScriptDirectory.from_config(config).get_current_head()
        assert head is not None
        with self._engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        return current, head

    def close(self) -> None:
        """Release every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        """The dialect name: "sqlite" or "postgresql"."""
        return self._dialect

    # -- transactions ------------------------------------------------------------------

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A connection in one read transaction: a consistent snapshot on both dialects."""
        with self._engine.connect() as conn:
            if self._dialect == "postgresql":
                conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """A connection in one write transaction (`BEGIN IMMEDIATE` on SQLite).

        Commits when the block ends, rolls back if it raises. Does not retry; `_write` does.
        """
        with self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    def _write(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, retrying while SQLite says another writer holds the
        lock: `on_lock_wait(seconds waited)` after each failed attempt (every BUSY_TIMEOUT_MS), and
        DatabaseLocked after `lock_retry_seconds()`."""
        started = time.monotonic()
        while True:
            try:
                revision_before = self._guard.revision
                try:
                    with self.write_connection() as conn:
                        return work(conn)
                except BaseException:
                    if self._guard.revision != revision_before:  # it recorded a change that did not commit
                        self._guard.discard()
                    raise
            except OperationalError as exc:
                if self._dialect != "sqlite" or not _is_locked(exc):
                    raise
                waited = time.monotonic() - started
                try:
                    limit = lock_retry_seconds()
                except ValueError:  # the command line refuses it at start; a library user gets the default
                    limit = LOCK_RETRY_SECONDS
                if waited > limit:
                    raise DatabaseLocked(waited) from None
                if self.on_lock_wait is not None:
                    self.on_lock_wait(waited)
            time.sleep(0.05)

    def _analyze_after(self, rows: int) -> None:
        """After a bulk write on PostgreSQL, refresh the planner's statistics of the rule tables.

        Until autovacuum gets to it (a minute or more), PostgreSQL plans with the statistics
        of before the import; the gateways' change-log read then scans 100k rows (~20 ms)
        instead of probing the index (~0.1 ms) on every wake-up. Best effort.
        """
        if self._dialect != "postgresql" or rows < BATCH_SIZE:
            return
        try:
            with self._engine.connect() as conn:
                conn.execute(text("ANALYZE rules, changes"))
                conn.commit()
        except DBAPIError as exc:  # the write is done; statistics will come with autovacuum
            logger.warning("ANALYZE after a bulk write failed: %s", type(exc).__name__)

    def _table_state(self, conn: Connection) -> TableState:
        """What the write guard reads of the table, in the write's own transaction."""

        def changes_after(revision: int) -> Iterator[tuple[Sequence[Rule], Sequence[str], tuple[str, ...] | None]]:
            for change in self._changes_since(conn, revision):
                if change.op == "settings":
                    yield (), (), change.allowed_hosts or ()
                elif change.op == "remove":
                    yield (), (str(change.rule_id),), None
                elif change.after is not None:
                    yield (change.after,), (), None

        def pending(revision: int) -> int:
            return int(conn.scalar(select(func.count()).select_from(changes).where(changes.c.revision > revision))
                       or 0)

        return TableState(
            head=lambda: int(conn.scalar(select(func.max(revisions.c.revision))) or 0),
            horizon=lambda: read_horizon(conn),
            rules=lambda: self._rules(conn),
            allowed_hosts=lambda: self._allowed_hosts(conn),
            changes=changes_after,
            pending=pending,
        )

    def _check(
        self,
        conn: Connection,
        upserts: Sequence[Rule],
        removals: Sequence[str] = (),
        problems: list[Problem] | None = None,
        allowed_hosts: tuple[str, ...] | None = None,
        source: str | None = None,
    ) -> None:
        """Validate a change against the table as it is inside this write (ChangeRefused on errors);
        warnings are added to `problems`."""
        found = self._guard.check(self._table_state(conn), upserts, removals, allowed_hosts, source)
        if problems is not None:
            problems.extend(found)

    def _lock_revisions(self, conn: Connection) -> None:
        """Serialize revision writers. SQLite's BEGIN IMMEDIATE already does it."""
        if self._dialect == "postgresql":
            conn.execute(text("LOCK TABLE revisions IN EXCLUSIVE MODE"))

    @staticmethod
    def _new_revision(conn: Connection, actor: str, summary: str, now: datetime) -> int:
        revision = (conn.scalar(select(func.max(revisions.c.revision))) or 0) + 1
        conn.execute(insert(revisions).values(revision=revision, at=now, actor=actor, summary=summary))
        # PostgreSQL delivers it when this transaction commits (never if it rolls back).
        notify_revision(conn, int(revision))
        return int(revision)

    # -- reading -----------------------------------------------------------------------

    def revision(self) -> int:
        """The newest revision, 0 for a store nothing was ever written to."""
        with self.read_connection() as conn:
            return int(conn.scalar(select(func.max(revisions.c.revision))) or 0)

    @staticmethod
    def _allowed_hosts(conn: Connection) -> tuple[str, ...]:
        value = conn.scalar(select(settings.c.value).where(settings.c.name == _ALLOWED_HOSTS))
        return () if value is None else tuple(json.loads(value))

    @staticmethod
    def _rules(conn: Connection) -> list[Rule]:
        return _RuleRows(conn).all()

    def load(self) -> tuple[int, RuleSet]:
        """The current revision and the whole table (rules with ids, in position order)."""
        with self.read_connection() as conn:
            revision = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            ruleset = RuleSet(rules=tuple(self._rules(conn)), allowed_hosts=self._allowed_hosts(conn))
        return revision, ruleset

    def pending(self, revision: int) -> tuple[int, int]:
        """(the newest revision, how many change-log entries follow `revision`): one snapshot, two
        index reads, no change decoded (a follower decides with it between catching up and
        reading the whole table)."""
        with self.read_connection() as conn:
            latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            if latest <= revision:
                return latest, 0
            count = conn.scalar(select(func.count()).select_from(changes).where(changes.c.revision > revision))
            return latest, int(count or 0)

    def table_reader(self) -> TableReader:
        """A reader of the whole table at one revision, in batches (see TableReader)."""
        return TableReader(self)

    def allowed_hosts(self) -> tuple[str, ...]:
        """The table's `allowed_hosts` setting."""
        with self.read_connection() as conn:
            return self._allowed_hosts(conn)

    def get_row(self, rule_id: str) -> Any | None:
        """The `rules` row of rule `rule_id` (every column), or None."""
        with self.read_connection() as conn:
            return conn.execute(select(rules_t).where(rules_t.c.id == rule_id)).first()

    def rule_count(self) -> int:
        """How many rules the table holds."""
        with self.read_connection() as conn:
            return int(conn.scalar(select(func.count()).select_from(rules_t)) or 0)

    def list_rules(
        self,
        host: str | None = None,
        status: int | None = None,
        search: str | None = None,
    ) -> list[Rule]:
        """Rules in position order, filtered.

        `host`: rules whose `from` starts with `//host/` (case-insensitive); `status`: that
        status code; `search`: case-insensitive substring of from / from_regex / to / note.
        """
        query: Select[Any] = select(*_RULE_COLUMNS)
        if host is not None:
            prefix = f"//{host.lower()}/"
            query = query.where(func.lower(rules_t.c.source).startswith(prefix, autoescape=True))
        if status is not None:
            query = query.where(rules_t.c.status == status)
        if search:
            query = query.where(
                or_(
                    *(
                        column.icontains(search, autoescape=True)
                        for column in (
                            rules_t.c.source,
                            rules_t.c.source_regex,
                            rules_t.c.to,
                            rules_t.c.note,
                        )
                    )
                )
            )
        query = query.order_by(rules_t.c.position, rules_t.c.id)
        with self.read_connection() as conn:
            return [_rule_from_row(row) for row in conn.execute(query)]

    def changes_since(self, revision: int) -> list[Change]:
        """Every change-log entry of revisions after `revision`, oldest first; HistoryPruned when
        some of them were pruned (`revision` is older than the oldest revision kept - 1)."""
        with self.read_connection() as conn:
            self._check_kept(conn, revision)
            return self._changes_since(conn, revision)

    def catch_up(self, revision: int) -> tuple[int, list[Change]]:
        """(the newest revision, every change after `revision`) from one snapshot, in one round.

        What a gateway calls on every wake-up: nothing but the revision when it is current.
        HistoryPruned when changes after `revision` were pruned: reload the whole table (`load`).
        """
        with self.read_connection() as conn:
            latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            if latest <= revision:
                return latest, []
            self._check_kept(conn, revision)
            return latest, self._changes_since(conn, revision)

    @staticmethod
    def _check_kept(conn: Connection, revision: int) -> None:
        """HistoryPruned unless every change after `revision` is still in the log."""
        oldest = read_horizon(conn)
        if revision < oldest - 1:
            raise HistoryPruned(revision, oldest)

    @staticmethod
    def _changes_since(conn: Connection, revision: int) -> list[Change]:
        query = (
            select(
                changes.c.revision,
                changes.c.op,
                changes.c.rule_id,
                changes.c.before,
                changes.c.after,
            )
            .where(changes.c.revision > revision)
            .order_by(changes.c.seq)
        )
        out: list[Change] = []
        for rev, op, rule_id, before, after in conn.execute(query).all():
            if op == "settings":
                hosts = None if after is None else tuple(json.loads(after)[_ALLOWED_HOSTS])
                out.append(Change(rev, op, None, None, None, hosts))
            else:
                out.append(Change(rev, op, rule_id, _rule_from_record(before), _rule_from_record(after)))
        return out

    # -- declarative sync --------------------------------------------------------------

    def plan(self, ruleset: RuleSet) -> Plan:
        """What `apply(ruleset)` would do now. Writes nothing; added rules have no id."""
        with self.read_connection() as conn:
            current = self._rules(conn)
            hosts = self._allowed_hosts(conn)
        return diff(current, ruleset, hosts)

    def edits_since_apply(
        self, plan: Plan, apply_actors: Sequence[str], before: int | None = None
    ) -> list[OutsideEdit]:
        """The rules `plan` would change or remove that someone other than `apply_actors` wrote
        after the newest revision those actors made (all of the history kept when it holds none
        of theirs: `since` is then 0): edits through the admin API or an import that applying a
        rule file would undo. The newest such edit per rule, in table order. `before`: look only
        at revisions older than it (the revision that plan was applied as, when asked after)."""
        targets = {rule.id: rule for rule in plan.removed if rule.id}
        targets.update({before.id: before for before, _after in plan.changed if before.id})
        if not targets:
            return []
        actors = list(apply_actors)
        newer = revisions.c.revision < before if before is not None else true()
        with self.read_connection() as conn:
            oldest = read_horizon(conn)
            since = int(conn.scalar(select(func.max(revisions.c.revision))
                                    .where(revisions.c.actor.in_(actors), revisions.c.revision >= oldest, newer))
                        or 0)
            rows = conn.execute(
                select(changes.c.rule_id, changes.c.op, revisions.c.revision, revisions.c.actor, revisions.c.at)
                .join(revisions, revisions.c.revision == changes.c.revision)
                .where(changes.c.revision > since, changes.c.revision >= oldest, newer,
                       revisions.c.actor.not_in(actors), changes.c.rule_id.is_not(None))
                .order_by(changes.c.seq)
            ).all()
        newest: dict[str, OutsideEdit] = {}
        for rule_id, op, revision, actor, at in rows:
            rule = targets.get(rule_id)
            if rule is not None:
                newest[rule_id] = OutsideEdit(rule, op, int(revision), actor, at, since)
        return sorted(newest.values(), key=lambda edit: edit.rule.position)

    def apply(self, ruleset: RuleSet, actor: str = "cli") -> tuple[Plan, int]:
        """Make the table exactly `ruleset`: one transaction, one new revision.

        Unchanged and changed rules keep their ids; added rules get new UUIDs. An empty
        plan writes nothing and returns the current revision.
        """

        def work(conn: Connection) -> tuple[Plan, int]:
            self._lock_revisions(conn)
            current_rev = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            stored = conn.execute(select(*_RULE_COLUMNS, *_META_COLUMNS)).all()
            current = [_rule_from_row(row) for row in stored]
            meta = {row[0]: (row[16], row[17], row[18]) for row in stored}
            plan = diff(current, ruleset, self._allowed_hosts(conn), new_id=_new_id)
            if plan.empty:
                return plan, current_rev
            now = _utcnow()
            rev = self._new_revision(conn, actor, f"apply: {plan.summary()}", now)
            log: list[dict[str, Any]] = []
            # Changed and re-positioned rows are rewritten (DELETE + bulk INSERT with the
            # same id and created_at): much faster than 100k single-row UPDATEs.
            gone: list[str] = []
            rows: list[dict[str, Any]] = []
            for rule in plan.removed:
                assert rule.id is not None
                created, updated, old_rev = meta[rule.id]
                before = _values(rule, rule.id, rule.position, created, updated, old_rev)
                log.append(_log("remove", rule.id, _record(rule, before), None))
                gone.append(rule.id)
            for old, new in plan.changed:
                assert old.id is not None
                created, updated, old_rev = meta[old.id]
                before = _values(old, old.id, old.position, created, updated, old_rev)
                after = _values(new, old.id, new.position, created, now, rev)
                log.append(_log("change", old.id, _record(old, before), _record(new, after)))
                gone.append(old.id)
                rows.append(after)
            if plan.reordered:
                by_id = {rule.id: rule for rule in current}
                for rule_id, position in plan.reordered:
                    created, updated, old_rev = meta[rule_id]
                    rows.append(_values(by_id[rule_id], rule_id, position, created, updated, old_rev))
                    gone.append(rule_id)
            for rule in plan.added:
                assert rule.id is not None
                row = _values(rule, rule.id, rule.position, now, now, rev)
                log.append(_log("add", rule.id, None, _record(rule, row)))
                rows.append(row)
            with _bulk_cache(conn, len(rows) + len(gone)):
                _delete_by_id(conn, gone)
                _bulk_insert(conn, rules_t, rows)

            if plan.allowed_hosts is not None:
                log.append(self._set_allowed_hosts(conn, *plan.allowed_hosts))

            for entry in log:
                entry["revision"] = rev
            _bulk_insert(conn, changes, log)
            # `ruleset` was validated whole by the caller: it is the table now.
            if plan.reordered:
                self._guard.discard()  # positions moved: cheaper to rebuild when next needed
            self._guard.record([*plan.added, *(new for _old, new in plan.changed)],
                               [str(r.id) for r in plan.removed], rev,
                               plan.allowed_hosts[1] if plan.allowed_hosts else None)
            return plan, rev

        plan, rev = self._write(work)
        self._analyze_after(len(plan.added) + len(plan.changed) + len(plan.removed))
        return plan, rev

    def add(
        self,
        rules: Sequence[Rule],
        actor: str = "cli",
        progress: Callable[[int], None] | None = None,
        *,
        allowed_hosts: Sequence[str] | None = None,
        problems: list[Problem] | None = None,
        validate: bool = True,
        source: str | None = None,
    ) -> int:
        """Import: insert `rules` after the existing rules, with new UUIDs.

        All-or-nothing in one transaction and one revision (returned). `progress(done)` is
        called after every batch of ~1000 rows. `allowed_hosts`, when given and different
        from the stored setting, replaces it in the same revision. Adding nothing (and not
        changing allowed_hosts) writes nothing and returns the current revision.
        Validated with the table inside the write, like `insert_rule` (`Problem.index` is the
        rule's place in `rules`).
        """
        hosts = None if allowed_hosts is None else tuple(allowed_hosts)
        if not rules and hosts is None:
            return self.revision()

        def work(conn: Connection) -> int:
            self._lock_revisions(conn)
            hosts_before = self._allowed_hosts(conn)
            hosts_changed = hosts is not None and hosts != hosts_before
            if not rules and not hosts_changed:
                return int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            last = conn.scalar(select(func.max(rules_t.c.position)))
            start = 0 if last is None else int(last) + 1
            now = _utcnow()
            stored = [_copy(rule, _new_id(), position, *_utc_window(rule))
                      for position, rule in enumerate(rules, start=start)]
            if validate:
                self._check(conn, stored, (), problems, hosts if hosts_changed else None, source)
            summary = f"add: {len(rules)} added" + (", allowed_hosts changed" if hosts_changed else "")
            rev = self._new_revision(conn, actor, summary, now)
            if hosts_changed:
                assert hosts is not None
                entry = self._set_allowed_hosts(conn, hosts_before, hosts)
                entry["revision"] = rev
                _bulk_insert(conn, changes, [entry])
            with _bulk_cache(conn, len(stored)):
                self._add_rows(conn, stored, rev, now, progress)
            self._guard.record(stored, (), rev, hosts if hosts_changed else None)
            return rev

        rev = self._write(work)
        self._analyze_after(len(rules))
        return rev

    @staticmethod
    def _add_rows(conn: Connection, stored: list[Rule], rev: int, now: datetime,
                  progress: Callable[[int], None] | None) -> None:
        """Insert new rules (with ids and positions) and their change-log entries, in batches."""
        done = 0
        for batch in _batches(stored):
            values = []
            log = []
            for rule in batch:
                assert rule.id is not None
                row = _values(rule, rule.id, rule.position, now, now, rev)
                values.append(row)
                entry = _log("add", rule.id, None, _record(rule, row))
                entry["revision"] = rev
                log.append(entry)
            _bulk_insert(conn, rules_t, values)
            _bulk_insert(conn, changes, log)
            done += len(batch)
            if progress is not None:
                progress(done)

    def check_add(self, rules: Sequence[Rule], *, allowed_hosts: Sequence[str] | None = None,
                  source: str | None = None) -> list[Problem]:
        """Every problem `add(rules, allowed_hosts=...)` would meet (errors and warnings), writing nothing."""
        hosts = None if allowed_hosts is None else tuple(allowed_hosts)

        def work(conn: Connection) -> list[Problem]:
            self._lock_revisions(conn)
            last = conn.scalar(select(func.max(rules_t.c.position)))
            start = 0 if last is None else int(last) + 1
            stored = [_copy(rule, f"new-{n}", n + start, *_utc_window(rule)) for n, rule in enumerate(rules)]
            found: list[Problem] = []
            try:
                self._check(conn, stored, (), found, hosts, source)
            except ChangeRefused as exc:
                return exc.problems
            return found

        return self._write(work)

    # -- single-rule writes (the admin API) -------------------------------------------------
    @staticmethod
    def _current(
        conn: Connection, rule_id: str, check: Callable[[Any], None] | None
    ) -> tuple[Any, Rule, dict[str, Any]] | None:
        """Rule `rule_id` for a write: (row, rule, change-log values) after `check(row)`, or None."""
        row = conn.execute(select(rules_t).where(rules_t.c.id == rule_id)).first()
        if row is None:
            return None
        if check is not None:
            check(row)
        rule = _rule_from_row([getattr(row, c.name) for c in _RULE_COLUMNS])
        return row, rule, _values(rule, rule_id, row.position, row.created_at, row.updated_at, row.revision)

    def insert_rule(
        self, rule: Rule, actor: str = "api", *, problems: list[Problem] | None = None, validate: bool = True
    ) -> Any:
        """Add one rule after the others (new UUID), as one revision; returns its `rules` row.

        Validated with the table inside the write (ChangeRefused on errors; warnings are added to
        `problems`), unless `validate` is False."""

        def work(conn: Connection) -> Any:
            self._lock_revisions(conn)
            last = conn.scalar(select(func.max(rules_t.c.position)))
            position = 0 if last is None else int(last) + 1
            now = _utcnow()
            rule_id = _new_id()
            stored = _copy(rule, rule_id, position, *_utc_window(rule))
            if validate:
                self._check(conn, [stored], (), problems)
            rev = self._new_revision(conn, actor, "create: 1 added", now)
            self._guard.record([stored], (), rev)
            row = _values(stored, rule_id, position, now, now, rev)
            _bulk_insert(conn, rules_t, [row])
            entry = _log("add", rule_id, None, _record(stored, row))
            entry["revision"] = rev
            _bulk_insert(conn, changes, [entry])
            return conn.execute(select(rules_t).where(rules_t.c.id == rule_id)).one()

        return self._write(work)

    def replace_rule(
        self, rule_id: str, rule: Rule, actor: str = "api", check: Callable[[Any], None] | None = None,
        *, problems: list[Problem] | None = None, validate: bool = True,
    ) -> Any | None:
        """Make rule `rule_id` equal to `rule` (same id and position), as one revision.

        `check(current_row)` runs inside the transaction before the write (a precondition such
        as If-Match); whatever it raises aborts the write. None when there is no such rule.
        Validated like `insert_rule`.
        """

        def work(conn: Connection) -> Any | None:
            self._lock_revisions(conn)
            found = self._current(conn, rule_id, check)
            if found is None:
                return None
            current, old, before = found
            now = _utcnow()
            new = _copy(rule, rule_id, current.position, *_utc_window(rule))
            if validate:
                self._check(conn, [new], (), problems)
            rev = self._new_revision(conn, actor, "update: 1 changed", now)
            self._guard.record([new], (), rev)
            after = _values(new, rule_id, current.position, current.created_at, now, rev)
            conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                {k: v for k, v in after.items() if k != "id"}))
            entry = _log("change", rule_id, _record(old, before), _record(new, after))
            entry["revision"] = rev
            _bulk_insert(conn, changes, [entry])
            return conn.execute(select(rules_t).where(rules_t.c.id == rule_id)).one()

        return self._write(work)

    def delete_rule(self, rule_id: str, actor: str = "api", check: Callable[[Any], None] | None = None) -> bool:
        """Remove rule `rule_id` as one revision (after `check(current_row)`); False if absent."""

        def work(conn: Connection) -> bool:
            self._lock_revisions(conn)
            found = self._current(conn, rule_id, check)
            if found is None:
                return False
            _row, old, before = found
            now = _utcnow()
            rev = self._new_revision(conn, actor, "delete: 1 removed", now)
            self._guard.record((), (rule_id,), rev)
            conn.execute(delete(rules_t).where(rules_t.c.id == rule_id))
            entry = _log("remove", rule_id, _record(old, before), None)
            entry["revision"] = rev
            _bulk_insert(conn, changes, [entry])
            return True

        return self._write(work)

    @staticmethod
    def _set_allowed_hosts(conn: Connection, before: tuple[str, ...], after: tuple[str, ...]) -> dict[str, Any]:
        """Store `after` as allowed_hosts; returns the change-log entry (without revision)."""
        conn.execute(delete(settings).where(settings.c.name == _ALLOWED_HOSTS))
        conn.execute(insert(settings).values(name=_ALLOWED_HOSTS, value=_dump_list(after)))
        return _log(
            "settings",
            None,
            _JSON.encode({_ALLOWED_HOSTS: list(before)}),
            _JSON.encode({_ALLOWED_HOSTS: list(after)}),
        )

    # -- hit counters ------------------------------------------------------------------

    def _upsert_counts(self, conn: Connection, table: Any, key: str, rows: list[dict[str, Any]]) -> None:
        """`hits = hits + n, last_hit = max(last_hit, new)` per row, inserting new keys."""
        if not rows:
            return
        stmt: Any
        if self._dialect == "postgresql":
            stmt = pg_dialect.insert(table)
            latest = func.greatest(table.c.last_hit, stmt.excluded.last_hit)
        else:
            stmt = sqlite_dialect.insert(table)
            latest = func.max(table.c.last_hit, stmt.excluded.last_hit)
        stmt = stmt.on_conflict_do_update(
            index_elements=[key],
            set_={"hits": table.c.hits + stmt.excluded.hits, "last_hit": latest},
        )
        for batch in _batches(rows):
            conn.execute(stmt, list(batch))

    def record_hits(
        self,
        rule_hits: Mapping[str, tuple[int, datetime]],
        unmatched: Mapping[str, tuple[int, datetime]],
        unmatched_extra: int = 0,
    ) -> None:
        """Add batched hit counts: {rule id or path: (hits, last hit time)}.

        One transaction. Paths are truncated to 2048 characters; afterwards only the
        `UNMATCHED_KEEP` most hit unmatched paths are kept. The same hits are added to the
        minute and hour buckets (`redirectory.store.hits`); `unmatched_extra` counts unmatched
        requests whose paths were not kept, for the buckets only.
        """
        if not rule_hits and not unmatched and not unmatched_extra:
            return
        now = _utcnow()
        bucket_rows = hits_sql.bucket_rows(rule_hits, unmatched, unmatched_extra, now)
        prune = self._last_prune is None or now - self._last_prune >= timedelta(minutes=1)
        rule_rows = [
            {"rule_id": rule_id, "hits": int(n), "last_hit": as_utc(at)}
            for rule_id, (n, at) in sorted(rule_hits.items())
        ]
        merged: dict[str, tuple[int, datetime]] = {}
        for path, (n, at) in unmatched.items():
            short = _truncate_path(path)
            at = as_utc(at)
            if short in merged:
                old_n, old_at = merged[short]
                merged[short] = (old_n + int(n), max(old_at, at))
            else:
                merged[short] = (int(n), at)
        path_rows = [{"path": path, "hits": n, "last_hit": at} for path, (n, at) in sorted(merged.items())]

        def work(conn: Connection) -> None:
            if self._dialect == "postgresql":
                # Hit flushes are rare and small: serializing them rules out deadlocks
                # between the upserts and the pruning DELETE. Readers are not blocked.
                conn.execute(text("LOCK TABLE rule_hits, unmatched_paths IN SHARE ROW EXCLUSIVE MODE"))
            self._upsert_counts(conn, rule_hits_t, "rule_id", rule_rows)
            self._upsert_counts(conn, unmatched_paths, "path", path_rows)
            hits_sql.upsert_buckets(conn, self._dialect, bucket_rows)
            if prune:
                hits_sql.prune_buckets(conn, now)
            if path_rows:
                count = conn.scalar(select(func.count()).select_from(unmatched_paths)) or 0
                if count > UNMATCHED_KEEP:
                    keep = (
                        select(unmatched_paths.c.path)
                        .order_by(
                            unmatched_paths.c.hits.desc(),
                            unmatched_paths.c.last_hit.desc(),
                            unmatched_paths.c.path,
                        )
                        .limit(UNMATCHED_KEEP)
                    )
                    conn.execute(delete(unmatched_paths).where(unmatched_paths.c.path.not_in(keep)))

        self._write(work)
        if prune:
            self._last_prune = now

    def stats_summary(self) -> hits_sql.StatsSummary:
        """All-time totals: rules hit and never hit, hits, unmatched paths kept and their hits."""
        with self.read_connection() as conn:
            return hits_sql.summary(conn)

    def rule_stats_page(
        self, offset: int, limit: int, sort: Sequence[tuple[str, str]] = (("hits", "DESC"),), unused: bool | None = None
    ) -> tuple[int, list[tuple[str, str, str, int, int, datetime | None]]]:
        """One page of the current rules with their hits: (total, rows); see `hits.rule_stats_page`."""
        with self.read_connection() as conn:
            return hits_sql.rule_stats_page(conn, offset, limit, list(sort), unused)

    def unmatched_page(self, offset: int, limit: int) -> tuple[int, list[tuple[str, int, datetime]]]:
        """One page of the unmatched paths kept, most hit first: (total, rows)."""
        with self.read_connection() as conn:
            return hits_sql.unmatched_page(conn, offset, limit)

    def timeline(
        self, interval: str, since: datetime, until: datetime, rule_id: str | None = None
    ) -> list[hits_sql.Bucket]:
        """Hits per `interval` ("minute", "hour" or "day") in [since, until), empty buckets included."""
        with self.read_connection() as conn:
            return hits_sql.timeline(conn, interval, since, until, rule_id)

    def stats(self, limit_unmatched: int = 20) -> Stats:
        """Hits of every current rule (0 if never hit), most hit first; top unmatched paths."""
        hits = func.coalesce(rule_hits_t.c.hits, 0)
        rule_query = (
            select(
                rules_t.c.id,
                rules_t.c.source,
                rules_t.c.source_regex,
                rules_t.c.to,
                rules_t.c.status,
                hits,
                rule_hits_t.c.last_hit,
            )
            .select_from(rules_t.outerjoin(rule_hits_t, rule_hits_t.c.rule_id == rules_t.c.id))
            .order_by(hits.desc(), rules_t.c.position, rules_t.c.id)
        )
        path_query = (
            select(unmatched_paths.c.path, unmatched_paths.c.hits, unmatched_paths.c.last_hit)
            .order_by(
                unmatched_paths.c.hits.desc(),
                unmatched_paths.c.last_hit.desc(),
                unmatched_paths.c.path,
            )
            .limit(max(0, limit_unmatched))
        )
        with self.read_connection() as conn:
            rule_stats = [
                RuleStats(
                    rule_id=rid,
                    from_text=source if source is not None else (regex or ""),
                    to=to,
                    status=status,
                    hits=int(n),
                    last_hit=last,
                )
                for rid, source, regex, to, status, n, last in conn.execute(rule_query)
            ]
            path_stats = [PathStats(path, int(n), last) for path, n, last in conn.execute(path_query)]
        return Stats(rules=rule_stats, unmatched=path_stats)

    # -- API keys ----------------------------------------------------------------------

    def create_key(self, name: str, scope: str) -> tuple[ApiKey, str]:
        """A new API key and its secret (the only time the secret is available).

        Stores the SHA-256 of the secret, never the secret. Raises ValueError (and writes
        nothing) for a name that is not 1-200 printable characters or an unknown scope.
        """
        validate_name(name)
        validate_scope(scope)
        secret = new_secret()
        key = ApiKey(
            id=_new_id(),
            name=name,
            scope=scope,
            prefix=secret[:PREFIX_LENGTH],
            created_at=_utcnow(),
            revoked_at=None,
            last_used_at=None,
        )
        row = {
            "id": key.id,
            "name": key.name,
            "scope": key.scope,
            "prefix": key.prefix,
            "secret_hash": hash_secret(secret),
            "created_at": key.created_at,
            "revoked_at": None,
            "last_used_at": None,
        }
        self._write(lambda conn: conn.execute(insert(api_keys_t).values(row)))
        return key, secret

    def list_keys(self, include_revoked: bool = True) -> list[ApiKey]:
        """Every key, newest first (only the valid ones unless `include_revoked`)."""
        query = select(*_KEY_COLUMNS).order_by(api_keys_t.c.created_at.desc(), api_keys_t.c.id)
        if not include_revoked:
            query = query.where(api_keys_t.c.revoked_at.is_(None))
        with self.read_connection() as conn:
            return [ApiKey(*row) for row in conn.execute(query)]

    def get_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not; None if there is none."""
        if not _plausible_key_id(key_id):
            return None
        with self.read_connection() as conn:
            row = conn.execute(select(*_KEY_COLUMNS).where(api_keys_t.c.id == key_id)).first()
        return None if row is None else ApiKey(*row)

    def revoke_key(self, key_id: str) -> ApiKey | None:
        """Revoke a key (it never verifies again); None if there is no such key.

        Idempotent: revoking a revoked key changes nothing and keeps its first `revoked_at`.
        """
        if not _plausible_key_id(key_id):
            return None

        def work(conn: Connection) -> ApiKey | None:
            conn.execute(
                update(api_keys_t)
                .where(api_keys_t.c.id == key_id, api_keys_t.c.revoked_at.is_(None))
                .values(revoked_at=_utcnow())
            )
            row = conn.execute(select(*_KEY_COLUMNS).where(api_keys_t.c.id == key_id)).first()
            return None if row is None else ApiKey(*row)

        return self._write(work)

    def verify_key(self, secret: str) -> ApiKey | None:
        """The valid key whose secret this is; None for an unknown, revoked or malformed one.

        The secret is hashed and looked up by its hash (the same work whatever part of it
        is wrong; the stored hash is compared in constant time as well). This is one read
        transaction; `last_used_at` is written only when it is older than
        `LAST_USED_RESOLUTION` (at most about once a minute per key, not per request), by
        one short extra write whose condition makes concurrent verifiers write it once (and
        which is skipped, not retried, if SQLite stays locked by another writer).
        """
        if not isinstance(secret, str):
            return None
        digest = hash_secret(secret)
        if not is_well_formed(secret):
            return None
        query = select(*_KEY_COLUMNS, api_keys_t.c.secret_hash).where(api_keys_t.c.secret_hash == digest)
        with self.read_connection() as conn:
            row = conn.execute(query).first()
        if row is None or not hmac.compare_digest(str(row[-1]), digest):
            return None
        key = ApiKey(*row[:-1])
        if key.revoked_at is not None:
            return None
        now = _utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            cutoff = now - LAST_USED_RESOLUTION
            stmt = (
                update(api_keys_t)
                .where(
                    api_keys_t.c.id == key.id,
                    or_(api_keys_t.c.last_used_at.is_(None), api_keys_t.c.last_used_at <= cutoff),
                )
                .values(last_used_at=now)
            )
            try:
                # One attempt, not `_write`'s retry loop: verification must not wait long
                # behind a big rule write just to record a time that can wait a minute.
                with self.write_connection() as conn:
                    written = conn.execute(stmt).rowcount
            except OperationalError as exc:
                if self._dialect != "sqlite" or not _is_locked(exc):
                    raise
                written = 0
            if written:
                key = replace(key, last_used_at=now)
        return key

    # -- history (the admin API) ----------------------------------------------------------

    def history(
        self, offset: int = 0, limit: int = 10, changes_per_revision: int | None = 100
    ) -> tuple[int, list[Revision]]:
        """(how many revisions the history keeps, one page of them newest first, each with its changes)."""
        with self.read_connection() as conn:
            kept = revisions.c.revision >= read_horizon(conn)
            total = int(conn.scalar(select(func.count()).select_from(revisions).where(kept)) or 0)
            rows = conn.execute(
                select(revisions).where(kept).order_by(revisions.c.revision.desc()).limit(limit).offset(offset)
            ).all()
            return total, _history_revisions(conn, rows, changes_per_revision)

    def revision_info(self, revision: int) -> Revision | None:
        """One revision with every one of its changes; None if there is no such revision,
        HistoryPruned if it is older than the history kept."""
        return self.revision_page(revision, 0, None)

    def revision_page(self, revision: int, offset: int, limit: int | None) -> Revision | None:
        """One revision with `limit` (None: all) of its changes from `offset`, oldest first; None
        if there is no such revision, HistoryPruned if it is older than the history kept."""
        with self.read_connection() as conn:
            oldest = read_horizon(conn)
            if 0 < revision < oldest:
                raise HistoryPruned(revision, oldest)
            row = conn.execute(select(revisions).where(revisions.c.revision == revision)).first()
            if row is None:
                return None
            count = int(conn.scalar(select(func.count()).select_from(changes)
                                    .where(changes.c.revision == revision)) or 0)
            query = (select(changes.c.op, changes.c.rule_id, changes.c.before, changes.c.after)
                     .where(changes.c.revision == revision).order_by(changes.c.seq).offset(offset))
            if limit is not None:
                query = query.limit(limit)
            logged = [_logged(*entry) for entry in conn.execute(query)]
        return Revision(int(row.revision), row.at, row.actor, row.summary, count, logged)

    def oldest_revision(self) -> int | None:
        """The oldest revision the history keeps (with all its changes); None before the first write."""
        with self.read_connection() as conn:
            latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            return None if latest == 0 else min(read_horizon(conn), latest)

    def ruleset_at(self, revision: int) -> RuleSet:
        """The table as it was right after `revision`: the current table with the changes after
        `revision` undone, newest first (so the work grows with how far back, not with all of
        history).

        Rules keep their ids; order is the stored position (path rules whose position moved
        without any other change log no entry, but their order does not matter; regex rules
        log every move). LookupError for a revision that does not exist, HistoryPruned (a
        LookupError) for one older than the history kept; 0 is the empty table before the first
        write, while nothing was pruned.
        """
        with self.read_connection() as conn:
            latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            oldest = read_horizon(conn)
            if revision < 0 or revision > latest:
                raise LookupError(f"no revision {revision}")
            if revision < oldest and not (revision == 0 and oldest == 1):
                raise HistoryPruned(revision, oldest)
            table = {rule.id: rule for rule in self._rules(conn)}
            hosts = self._allowed_hosts(conn)
            query = (select(changes.c.op, changes.c.rule_id, changes.c.before)
                     .where(changes.c.revision > revision).order_by(changes.c.seq.desc()))
            for op, rule_id, before in conn.execute(query):
                if op == "settings":
                    hosts = () if before is None else tuple(json.loads(before)[_ALLOWED_HOSTS])
                elif op == "add":
                    table.pop(rule_id, None)
                elif (rule := _rule_from_record(before)) is not None:  # change, remove
                    table[rule_id] = rule
        ordered = sorted(table.values(), key=lambda r: (r.position, r.id or ""))
        return RuleSet(rules=tuple(ordered), allowed_hosts=hosts)

    def prune_history(self, retention: Retention, now: datetime | None = None, seconds: float = 1.0) -> Pruned:
        """Prune the history down to `retention` (see `retention.py`): move the horizon, delete
        below it in short transactions and, on SQLite, give the freed pages back, for about
        `seconds` (`done` False: call again for the rest; float("inf"): all of it). Skips the
        work another process is doing already (PostgreSQL)."""
        deadline = time.monotonic() + seconds
        moment = now or _utcnow()
        with self.read_connection() as conn:  # most calls find nothing to do: no write lock for them
            oldest = read_horizon(conn)
            target = target_horizon(conn, retention, moment)
            below = conn.scalar(select(revisions.c.revision)
                                .where(revisions.c.revision < max(oldest, target)).limit(1)) is not None
            free = free_pages(conn)
        if target > oldest:
            moved = self._write(lambda conn: set_horizon(conn, target) if try_prune_lock(conn) else None)
            if moved is None:  # another process prunes
                return Pruned(oldest, 0, 0, 0, done=True)
            oldest = moved
        changes_removed = revisions_removed = pages = 0
        while below:
            if time.monotonic() >= deadline:
                return Pruned(oldest, changes_removed, revisions_removed, 0, done=False)
            deleted = self._write(lambda conn: delete_batch(conn) if try_prune_lock(conn) else None)
            if deleted is None:
                return Pruned(oldest, changes_removed, revisions_removed, 0, done=True)
            changes_removed += deleted[0]
            revisions_removed += deleted[1]
            below = deleted != (0, 0)
        if changes_removed or revisions_removed:
            with self.read_connection() as conn:
                free = free_pages(conn)
        if free >= VACUUM_THRESHOLD:
            raw = self._engine.raw_connection()
            sqlite: Any = raw.driver_connection
            try:
                while free >= VACUUM_THRESHOLD and time.monotonic() < deadline:
                    returned, free = vacuum_step(sqlite)
                    pages += returned
                if pages:  # copy the WAL back now: that is when the file shrinks (PASSIVE: no waiting)
                    sqlite.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.OperationalError as exc:  # another writer holds the lock: the next run goes on
                if "locked" not in str(exc):
                    raise
            finally:
                raw.close()
        return Pruned(oldest, changes_removed, revisions_removed, pages, done=free < VACUUM_THRESHOLD)


class _RuleRows:
    """Every rule of the table in position order, read through the driver and converted here:
    SQLAlchemy's row processing costs more than the query itself at a million rules."""

    def __init__(self, conn: Connection):
        compiled = select(*_RULE_COLUMNS).order_by(rules_t.c.position, rules_t.c.id).compile(dialect=conn.dialect)
        self._starts = rules_t.c.starts.type._cached_result_processor(conn.dialect, None)
        self._ends = rules_t.c.ends.type._cached_result_processor(conn.dialect, None)
        self._cursor = conn.exec_driver_sql(compiled.string, compiled.construct_params() or {}).cursor

    def fetch(self, n: int) -> list[Rule]:
        """Up to n more rules ([] at the end)."""
        starts_of, ends_of = self._starts, self._ends
        out = []
        for (rid, position, source, regex, to, status, methods, query, starts, ends, cache,
             priority, case_insensitive, enabled, tags, note) in self._cursor.fetchmany(n):  # fmt: skip
            if starts is not None and starts_of is not None:
                starts = starts_of(starts)
            if ends is not None and ends_of is not None:
                ends = ends_of(ends)
            out.append(new_rule(
                to, source, regex, status, None if methods is None else _load_tuple(methods), query, starts, ends,
                cache, priority, bool(case_insensitive), bool(enabled), _load_tuple(tags), note, rid, None, position,
            ))
        return out

    def all(self) -> list[Rule]:
        out: list[Rule] = []
        while batch := self.fetch(10_000):
            out.extend(batch)
        return out


class TableReader:
    """The whole table at one revision, read in batches from one snapshot, so a caller can build
    from it a little at a time (the gateway does, between requests). `open()` (it waits on the
    database) returns the revision; `fetch(n)` gives up to n rules in position order, [] at the
    end; `close()` ends the snapshot. Not thread-safe: one caller at a time."""

    def __init__(self, store: Store):
        self._snapshot = store.read_connection()
        self._result: Any = None

    def open(self) -> int:
        conn = self._snapshot.__enter__()
        try:
            revision = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
            self._result = _RuleRows(conn)
        except BaseException as exc:
            self._snapshot.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return revision

    def fetch(self, n: int) -> list[Rule]:
        rows: _RuleRows = self._result
        return rows.fetch(n)

    def close(self, exc: BaseException | None = None) -> None:
        self._result = None
        self._snapshot.__exit__(type(exc) if exc else None, exc, exc.__traceback__ if exc else None)


def _install_sqlite_hooks(engine: Engine, wal: bool = True) -> None:
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


# --------------------------------------------------------------------------- history (admin API)


@dataclass(frozen=True, slots=True)
class LoggedChange:
    """One change-log row as stored: `before`/`after` are the JSON records (dicts) or None."""

    op: str
    rule_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Revision:
    """One revision with (up to a limit) its change-log entries, oldest first."""

    revision: int
    at: datetime
    actor: str
    summary: str
    change_count: int
    changes: list[LoggedChange]


def _history_revisions(
    conn: Connection, rows: Sequence[Any], changes_per_revision: int | None
) -> list[Revision]:
    numbers = [int(row.revision) for row in rows]
    if not numbers:
        return []
    counts: dict[int, int] = dict(
        conn.execute(
            select(changes.c.revision, func.count())
            .where(changes.c.revision.in_(numbers))
            .group_by(changes.c.revision)
        ).all()
    )
    logged: dict[int, list[LoggedChange]] = {n: [] for n in numbers}
    for number in numbers:
        query = (
            select(changes.c.op, changes.c.rule_id, changes.c.before, changes.c.after)
            .where(changes.c.revision == number)
            .order_by(changes.c.seq)
        )
        if changes_per_revision is not None:
            query = query.limit(changes_per_revision)
        logged[number].extend(_logged(*entry) for entry in conn.execute(query))
    return [
        Revision(int(row.revision), row.at, row.actor, row.summary, int(counts.get(row.revision, 0)),
                 logged[int(row.revision)])
        for row in rows
    ]


def _logged(op: str, rule_id: str | None, before: str | None, after: str | None) -> LoggedChange:
    return LoggedChange(op, rule_id, None if before is None else json.loads(before),
                        None if after is None else json.loads(after))
