"""Persistence: the rule table, its revisions and change log, and hit counters.

SQLAlchemy Core on SQLite (default) or PostgreSQL, schema managed by Alembic
(`Store.upgrade()` runs the migrations shipped in this package).
"""

from redirectory.store.codec import ChangeOp, StoredRule
from redirectory.store.database import (
    DatabaseLocked,
    DatabaseNotFound,
    describe_database,
    normalize_url,
    redact_url,
    sqlite_file,
)
from redirectory.store.guard import ChangeRefused
from redirectory.store.listing import RuleFilter, RulePage
from redirectory.store.retention import HistoryPruned, Pruned, Retention
from redirectory.store.revisions import Change
from redirectory.store.store import PathStats, RuleStats, Stats, Store
from redirectory.store.sync import OutsideEdit, Plan, diff

__all__ = [
    "Change",
    "ChangeOp",
    "ChangeRefused",
    "DatabaseLocked",
    "DatabaseNotFound",
    "HistoryPruned",
    "OutsideEdit",
    "PathStats",
    "Plan",
    "Pruned",
    "Retention",
    "RuleFilter",
    "RulePage",
    "RuleStats",
    "Stats",
    "Store",
    "StoredRule",
    "describe_database",
    "diff",
    "normalize_url",
    "redact_url",
    "sqlite_file",
]
