"""Reading parts of the rule table: filtered lists and pages of stored rules."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, and_, func, or_, select

from redirectory.rules.model import Rule
from redirectory.store.codec import RULE_COLUMNS, STORED_COLUMNS, StoredRule, rule_from_row, stored_from_row
from redirectory.store.schema import rules as rules_t

#: What a page of rules can be sorted by (the admin API's names).
SORT_KEYS: dict[str, Any] = {
    "from": func.coalesce(rules_t.c.source, rules_t.c.source_regex),
    "to": rules_t.c.to,
    "status": rules_t.c.status,
    "priority": rules_t.c.priority,
    "position": rules_t.c.position,
    "createdAt": rules_t.c.created_at,
    "updatedAt": rules_t.c.updated_at,
}


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """Which rules a page holds (None: any). `host`: `from` starts with `//host/` (any case);
    `method`: rules that answer it (every method, or a list holding it); `tag`: holding that tag;
    `text`: case-insensitive substring of from / from_regex / to / note."""

    status: int | None = None
    host: str | None = None
    method: str | None = None
    enabled: bool | None = None
    tag: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class RulePage:
    """One page of the rules a filter selects: how many it selects, and the page's rules."""

    total: int
    items: list[StoredRule]


def _conditions(f: RuleFilter) -> list[Any]:
    conditions: list[Any] = []
    if f.status is not None:
        conditions.append(rules_t.c.status == f.status)
    if f.host:
        conditions.append(func.lower(rules_t.c.source).startswith(f"//{f.host.lower()}/", autoescape=True))
    if f.method:
        conditions.append(or_(rules_t.c.methods.is_(None),
                              rules_t.c.methods.contains(json.dumps(f.method.upper()), autoescape=True)))
    if f.enabled is not None:
        conditions.append(rules_t.c.enabled == f.enabled)
    if f.tag:
        conditions.append(rules_t.c.tags.contains(json.dumps(f.tag), autoescape=True))
    if f.text:
        needle = f.text.lower()
        conditions.append(or_(*(func.lower(col).contains(needle, autoescape=True) for col in
                                (rules_t.c.source, rules_t.c.source_regex, rules_t.c.to, rules_t.c.note))))
    return conditions


def list_page(conn: Connection, filters: RuleFilter, sort: Sequence[tuple[str, str]], offset: int,
              limit: int) -> RulePage:
    """See `Store.list_page`."""
    conditions = _conditions(filters)
    count_q = select(func.count()).select_from(rules_t)
    rows_q = select(*STORED_COLUMNS)
    if conditions:
        where = and_(*conditions)
        count_q, rows_q = count_q.where(where), rows_q.where(where)
    ordering = [SORT_KEYS[key].desc() if order == "DESC" else SORT_KEYS[key].asc() for key, order in sort]
    rows_q = rows_q.order_by(*ordering, rules_t.c.position, rules_t.c.id).limit(limit).offset(offset)
    total = int(conn.execute(count_q).scalar_one())
    return RulePage(total, [stored_from_row(row) for row in conn.execute(rows_q)])


def list_rules(conn: Connection, host: str | None, status: int | None, search: str | None) -> list[Rule]:
    """See `Store.list_rules`."""
    query: Select[Any] = select(*RULE_COLUMNS)
    if host is not None:
        prefix = f"//{host.lower()}/"
        query = query.where(func.lower(rules_t.c.source).startswith(prefix, autoescape=True))
    if status is not None:
        query = query.where(rules_t.c.status == status)
    if search:
        query = query.where(or_(*(column.icontains(search, autoescape=True) for column in
                                  (rules_t.c.source, rules_t.c.source_regex, rules_t.c.to, rules_t.c.note))))
    query = query.order_by(rules_t.c.position, rules_t.c.id)
    return [rule_from_row(row) for row in conn.execute(query)]
