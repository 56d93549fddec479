"""Persistence: the rule table, its revisions and change log, and hit counters.

SQLAlchemy Core on SQLite (default) or PostgreSQL, schema managed by Alembic
(`Store.upgrade()` runs the migrations shipped in this package).
"""

from redirectory.store.guard import ChangeRefused
from redirectory.store.retention import HistoryPruned, Pruned, Retention
from redirectory.store.store import (
    Change,
    DatabaseLocked,
    DatabaseNotFound,
    OutsideEdit,
    PathStats,
    Plan,
    RuleStats,
    Stats,
    Store,
    describe_database,
    diff,
    normalize_url,
    redact_url,
    sqlite_file,
)

__all__ = [
    "Change",
    "ChangeRefused",
    "DatabaseLocked",
    "DatabaseNotFound",
    "HistoryPruned",
    "OutsideEdit",
    "PathStats",
    "Plan",
    "Pruned",
    "Retention",
    "RuleStats",
    "Stats",
    "Store",
    "describe_database",
    "diff",
    "normalize_url",
    "redact_url",
    "sqlite_file",
]
