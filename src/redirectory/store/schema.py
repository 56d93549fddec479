"""The store's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

The migrations in `migrations/versions` create exactly these tables; this module is what
the runtime code queries against. Keep the two in step: a schema change is a new
migration *and* an edit here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.types import TypeDecorator

#: Longest unmatched path kept in `unmatched_paths` (longer ones are truncated).
MAX_PATH_LENGTH = 2048

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (a naive value is taken to be UTC already)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always hands back aware UTC datetimes.

    SQLite has no time zone support, so values are stored there as naive UTC; PostgreSQL
    stores `timestamptz`. Either way Python sees `datetime(..., tzinfo=UTC)`.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        aware = as_utc(value)
        if dialect.name == "sqlite":
            # Fixed-width naive UTC text sorts and compares correctly in SQLite.
            return aware.replace(tzinfo=None)
        return aware

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

rules = Table(
    "rules",
    metadata,
    Column("id", String(36), primary_key=True),  # UUID4 text
    Column("position", Integer, nullable=False),  # order in the source file
    Column("source", Text, nullable=True),  # `from`
    Column("source_regex", Text, nullable=True),  # `from_regex`
    Column("regex_query", Boolean, nullable=False, server_default=false()),  # (0009)
    Column("to", Text, nullable=False),
    Column("status", Integer, nullable=False),
    Column("methods", Text, nullable=True),  # JSON list, NULL = every method
    Column("query", Text, nullable=False),  # keep | drop | a policy's canonical JSON (0006)
    Column("query_match", Text, nullable=True),  # canonical name=value&... text (0005)
    Column("query_exact", Boolean, nullable=False, server_default=false()),  # (0005)
    Column("scheme", String(5), nullable=True),  # http | https (0010)
    Column("starts", UTCDateTime, nullable=True),
    Column("ends", UTCDateTime, nullable=True),
    Column("phases", Text, nullable=True),  # canonical JSON [{starts, status, cache}] (0008)
    Column("deprecation", UTCDateTime, nullable=True),  # (0007)
    Column("sunset", UTCDateTime, nullable=True),  # (0007)
    Column("links", Text, nullable=True),  # canonical JSON {relation: URL} (0007)
    Column("cache", Integer, nullable=True),
    Column("priority", Integer, nullable=False),
    Column("case_insensitive", Boolean, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("tags", Text, nullable=False),  # JSON list
    Column("note", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("revision", Integer, nullable=False),  # revision of the last change to this row
    Index("ix_rules_status", "status"),
    Index("ix_rules_source", "source"),
    Index("ix_rules_position", "position"),  # max(position) on every single-rule create (0004)
)

settings = Table(
    "settings",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)

revisions = Table(
    "revisions",
    metadata,
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("summary", Text, nullable=False),
)

changes = Table(
    "changes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("revision", Integer, ForeignKey("revisions.revision"), nullable=False),
    Column("op", String(16), nullable=False),  # add | change | remove | settings
    Column("rule_id", String(36), nullable=True),
    Column("before", Text, nullable=True),  # JSON record
    Column("after", Text, nullable=True),  # JSON record
    Index("ix_changes_revision", "revision"),
)

rule_hits = Table(
    "rule_hits",
    metadata,
    Column("rule_id", String(36), primary_key=True),  # no FK: rules may be removed
    Column("hits", BigInteger, nullable=False),
    Column("last_hit", UTCDateTime, nullable=False),
)

unmatched_paths = Table(
    "unmatched_paths",
    metadata,
    Column("path", Text, primary_key=True),
    Column("hits", BigInteger, nullable=False),
    Column("last_hit", UTCDateTime, nullable=False),
    Index("ix_unmatched_paths_hits", "hits"),
)

hit_buckets = Table(
    "hit_buckets",
    metadata,
    # Hits over time: `width` is 60 (minute buckets, kept MINUTE_BUCKETS_KEPT) or 3600 (hour
    # buckets, kept HOUR_BUCKETS_KEPT); `start` is the bucket's start in Unix seconds (UTC);
    # `rule_id` is the rule's UUID, or "" for requests no rule matched.
    Column("width", Integer, primary_key=True),
    Column("start", BigInteger, primary_key=True),
    Column("rule_id", String(36), primary_key=True),
    Column("hits", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(36), primary_key=True),  # UUID4 text
    Column("name", String(200), nullable=False),
    Column("scope", String(10), nullable=False),  # read | write | admin
    Column("prefix", String(12), nullable=False),  # first characters of the secret, for listings
    Column("secret_hash", String(64), nullable=False),  # hex SHA-256 of the secret; never the secret
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    UniqueConstraint("secret_hash", name="uq_api_keys_secret_hash"),
)

gateway_processes = Table(
    "gateway_processes",
    metadata,
    # One row per gateway worker process (any host), upserted on every hit-count flush: what
    # `/healthz` shows as `processes`. Rows not refreshed for a while are stale (see processes.py).
    Column("id", String(200), primary_key=True),  # "<host>:<pid>:<start time>"
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("serve_id", String(200), nullable=False),  # the `redirectory serve` it belongs to
    Column("revision", Integer, nullable=False),
    Column("healthy", Boolean, nullable=False),
    Column("listening", Boolean, nullable=False),  # PostgreSQL LISTEN connection up
    Column("last_error", String(200), nullable=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("last_sync", UTCDateTime, nullable=True),
    Column("seen_at", UTCDateTime, nullable=False),
)
