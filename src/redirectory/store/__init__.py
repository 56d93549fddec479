"""Persistence: the rule table, its revisions and change log, and hit counters.

SQLAlchemy Core on SQLite (default) or PostgreSQL, schema managed by Alembic
(`Store.upgrade()` runs the migrations shipped in this package).
"""

from redirectory.store.store import (
    Change,
    PathStats,
    Plan,
    RuleStats,
    Stats,
    Store,
    diff,
    normalize_url,
)

__all__ = [
    "Change",
    "PathStats",
    "Plan",
    "RuleStats",
    "Stats",
    "Store",
    "diff",
    "normalize_url",
]
