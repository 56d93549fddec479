"""The row codec: a `Rule` as a `rules` row, as a change-log record, and back.

The rule columns are the rule fields of `redirectory.rules.model.FIELDS` (a column is named after
the field's `Rule` attribute) plus `id` and `position`, then the row's metadata (`created_at`,
`updated_at`, `revision`). Lists (`methods`, `tags`) are stored as JSON text, timestamps as aware
UTC. A change-log record is the row as JSON: lists as lists, times in ISO 8601.

`RuleRows` reads the whole table through the driver (a million rules: SQLAlchemy's own row
processing costs more than the query).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Connection, and_, false, select, true

from redirectory.rules.model import FIELDS, Rule, format_timestamp, new_rule
from redirectory.semantics import RAMP
from redirectory.store.schema import as_utc
from redirectory.store.schema import rules as rules_t

JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))

_FIELD_OF = {f.attr: f for f in FIELDS}
#: The `rules` columns of the rule's own fields (one per `FIELDS` entry, named after its `Rule`
#: attribute), in `Rule`'s attribute order, which is `new_rule`'s parameter order.
FIELD_COLUMNS: tuple[str, ...] = tuple(a.name for a in dataclasses.fields(Rule) if a.name in _FIELD_OF)
#: Every column a `Rule` is read from: its fields, then `id` and `position`.
RULE_COLUMN_NAMES: tuple[str, ...] = (*FIELD_COLUMNS, "id", "position")
#: The row's metadata columns, after the rule's.
META_COLUMN_NAMES: tuple[str, ...] = ("created_at", "updated_at", "revision")
RULE_COLUMNS = tuple(rules_t.c[name] for name in RULE_COLUMN_NAMES)
META_COLUMNS = tuple(rules_t.c[name] for name in META_COLUMN_NAMES)
_N = len(FIELD_COLUMNS)
_LISTS = tuple(i for i, name in enumerate(FIELD_COLUMNS) if _FIELD_OF[name].is_list)
_FLAGS = tuple(i for i, name in enumerate(FIELD_COLUMNS) if _FIELD_OF[name].kind == "flag")
_TIMES = tuple(i for i, name in enumerate(FIELD_COLUMNS) if _FIELD_OF[name].kind == "timestamp")
_STARTS, _ENDS = FIELD_COLUMNS.index("starts"), FIELD_COLUMNS.index("ends")
_CACHE = FIELD_COLUMNS.index("cache")
#: `cache: ramp` in the integer `cache` column (a max-age is never negative).
RAMP_STORED = -1
_fields_of = operator.attrgetter(*FIELD_COLUMNS)

#: `new_rule`, called with the field values as a list (`FIELD_COLUMNS` order).
_new_rule = cast(Callable[..., Rule], new_rule)

assert len(FIELD_COLUMNS) == len(FIELDS), "a field is not a Rule attribute"
assert tuple(inspect.signature(new_rule).parameters)[:_N] == FIELD_COLUMNS, "new_rule's parameters moved"
assert all(type(rules_t.c[FIELD_COLUMNS[i]].type) is type(rules_t.c.starts.type) for i in _TIMES)
assert set(RULE_COLUMN_NAMES) | set(META_COLUMN_NAMES) == set(rules_t.c.keys()), "FIELDS and the rules table differ"


@functools.lru_cache(maxsize=4096)
def dump_list(values: tuple[str, ...]) -> str:
    """A list column's text."""
    return JSON.encode(list(values))


@functools.lru_cache(maxsize=4096)
def load_tuple(value: str) -> tuple[str, ...]:
    """A list column's value."""
    return tuple(json.loads(value))


@functools.lru_cache(maxsize=1024)
def _ts_cached(value: datetime) -> str:
    return format_timestamp(as_utc(value))


def ts(value: datetime | None) -> str | None:
    """A record's timestamp text."""
    return None if value is None else _ts_cached(value)


def parse_ts(value: str | None) -> datetime | None:
    return None if value is None else as_utc(datetime.fromisoformat(value))


def new_id() -> str:
    """A random UUID4 as text (same format as `str(uuid.uuid4())`, several times faster)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_UUID_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


_UUID_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def copy_rule(rule: Rule, rule_id: str | None, position: int, starts: datetime | None,
              ends: datetime | None) -> Rule:
    """`rule` with another id, position and window (much faster than `dataclasses.replace`)."""
    values = list(_fields_of(rule))
    values[_STARTS], values[_ENDS] = starts, ends
    return _new_rule(*values, id=rule_id, line=rule.line, position=position, field_lines=rule.field_lines)


def utc_window(rule: Rule) -> tuple[datetime | None, datetime | None]:
    """`starts`/`ends` as aware UTC (naive values are taken to be UTC)."""
    starts, ends = rule.starts, rule.ends
    if starts is not None and starts.tzinfo is not UTC:
        starts = as_utc(starts)
    if ends is not None and ends.tzinfo is not UTC:
        ends = as_utc(ends)
    return starts, ends


def rule_from_row(row: Sequence[Any]) -> Rule:
    """The Rule of a row of `RULE_COLUMNS` (its column values in that order; more may follow)."""
    values = list(row[:_N])
    for i in _LISTS:
        if values[i] is not None:
            values[i] = load_tuple(values[i])
    for i in _FLAGS:
        values[i] = bool(values[i])
    if values[_CACHE] == RAMP_STORED:
        values[_CACHE] = RAMP
    return _new_rule(*values, id=row[_N], position=row[_N + 1])


def row_values(rule: Rule, rule_id: str, position: int, created_at: datetime, updated_at: datetime,
               revision: int) -> dict[str, Any]:
    """The `rules` row of `rule` (column name -> Python value)."""
    values = list(_fields_of(rule))
    for i in _LISTS:
        if values[i] is not None:
            values[i] = dump_list(values[i])
    if values[_CACHE] == RAMP:
        values[_CACHE] = RAMP_STORED
    out = dict(zip(FIELD_COLUMNS, values, strict=True))
    out["id"] = rule_id
    out["position"] = position
    out["created_at"] = created_at
    out["updated_at"] = updated_at
    out["revision"] = revision
    return out


def record(rule: Rule, values: Mapping[str, Any]) -> str:
    """The change-log JSON of a `rules` row (`row_values`): every column, lists as lists, ISO times."""
    out = dict(values)
    for f in FIELDS:
        value = getattr(rule, f.attr)
        if f.kind == "timestamp":
            out[f.attr] = ts(value)
        elif f.is_list:
            out[f.attr] = None if value is None else list(value)
        elif value == RAMP and f.kind == "seconds":
            out[f.attr] = RAMP  # the JSON record says it as files do (the column holds RAMP_STORED)
    out["created_at"] = ts(values["created_at"])
    out["updated_at"] = ts(values["updated_at"])
    return JSON.encode(out)


def rule_from_record(text: str | None) -> Rule | None:
    """The Rule of a change-log record (None for None)."""
    if text is None:
        return None
    rec = json.loads(text)
    values: list[Any] = []
    for name in FIELD_COLUMNS:
        f = _FIELD_OF[name]
        value = rec.get(name)
        if value is None:
            value = f.default
        elif f.is_list:
            value = tuple(value)
        elif f.kind == "timestamp":
            value = parse_ts(value)
        elif f.kind == "flag":
            value = bool(value)
        elif f.kind == "seconds" and value == RAMP_STORED:
            value = RAMP
        values.append(value)
    changed = rec.get("updated_at")
    return _new_rule(*values, id=rec.get("id"), position=rec.get("position", 0),
                     changed_at=parse_ts(changed) if changed and values[_CACHE] == RAMP else None)


class ChangeOp(StrEnum):
    """What a change-log entry did (the `changes.op` column; equal to its text)."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"
    SETTINGS = "settings"


def log_entry(op: ChangeOp, rule_id: str | None, before: str | None, after: str | None) -> dict[str, Any]:
    """A `changes` row, without its revision."""
    return {"op": op.value, "rule_id": rule_id, "before": before, "after": after}  # plain text for every driver


@dataclass(frozen=True, slots=True)
class StoredRule:
    """A rule as the table holds it: the Rule (with its id and position) and the row's metadata.

    The rule's own fields read through (`stored.to` is `stored.rule.to`)."""

    rule: Rule
    id: str
    position: int
    created_at: datetime
    updated_at: datetime
    revision: int

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rule, name)

    def values(self) -> dict[str, Any]:
        """Its `rules` row (column name -> Python value)."""
        return row_values(self.rule, self.id, self.position, self.created_at, self.updated_at, self.revision)


#: Every column of a stored rule, in the order `stored_from_row` reads them.
STORED_COLUMNS = (*RULE_COLUMNS, *META_COLUMNS)


def stored_from_row(row: Sequence[Any]) -> StoredRule:
    """The StoredRule of a row of `STORED_COLUMNS`."""
    rule = rule_from_row(row)
    created, updated, revision = row[_N + 2 : _N + 5]
    return StoredRule(rule, str(rule.id), rule.position, created, updated, int(revision))


def select_stored() -> Any:
    """SELECT of `STORED_COLUMNS` from `rules`."""
    return select(*STORED_COLUMNS)


def _compile_reader() -> Callable[..., list[Rule]]:
    """rows of `RULE_COLUMNS` (driver values) -> Rules, as one loop generated from `FIELD_COLUMNS`:
    unpacking each row into names is markedly faster at a million rows than indexing a list."""
    decode = []
    for name in FIELD_COLUMNS:
        f = _FIELD_OF[name]
        if f.kind == "timestamp":
            decode.append(f"        if {name} is not None and time_of is not None:\n"
                          f"            {name} = time_of({name})\n")
        elif f.kind == "seconds":
            decode.append(f"        if {name} == {RAMP_STORED}:\n"
                          f"            {name} = {RAMP!r}\n")
    args = []
    for name in FIELD_COLUMNS:
        f = _FIELD_OF[name]
        if f.is_list:
            args.append(f"None if {name} is None else load_tuple({name})")
        elif f.kind == "flag":
            args.append(f"bool({name})")
        else:
            args.append(name)
    source = (
        "def read(rows, time_of, load_tuple, new_rule):\n"
        "    out = []\n"
        "    append = out.append\n"
        f"    for ({', '.join(FIELD_COLUMNS)}, id_, position) in rows:\n"
        + "".join(decode)
        + f"        append(new_rule({', '.join(args)}, id_, None, position))\n"
        "    return out\n"
    )
    namespace: dict[str, Any] = {}
    exec(compile(source, "<redirectory.store.codec reader>", "exec"), namespace)  # noqa: S102 - our own text
    return cast(Callable[..., list[Rule]], namespace["read"])


_read_rows = _compile_reader()


#: A rule whose every field but id, `from`, `to`, status and position has its default: the bulk of
#: a big table, which a reader can take as plain tuples (`PlainRows`, `Matcher.add_plain`). Every
#: column it tests is NOT NULL or tested with IS NULL, so NOT of it is exactly the other rules.
PLAIN = and_(
    rules_t.c.source.is_not(None), rules_t.c.methods.is_(None), rules_t.c.starts.is_(None),
    rules_t.c.ends.is_(None), rules_t.c.cache.is_(None), rules_t.c.priority == 0,
    rules_t.c.case_insensitive == false(), rules_t.c.enabled == true(), rules_t.c.query == "keep",
    rules_t.c.query_match.is_(None), rules_t.c.query_exact == false(), rules_t.c.scheme.is_(None),
    rules_t.c.deprecation.is_(None), rules_t.c.sunset.is_(None), rules_t.c.links.is_(None),
    rules_t.c.phases.is_(None),
)


class PlainRows:
    """The PLAIN rules as driver tuples `(id, from, to, status, position)`, in no order."""

    def __init__(self, conn: Connection):
        query = select(rules_t.c.id, rules_t.c.source, rules_t.c.to, rules_t.c.status, rules_t.c.position)
        # PLAIN's values are constants of this module: inlined, the statement has no parameters
        compiled = query.where(PLAIN).compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        self._cursor = conn.exec_driver_sql(compiled.string).cursor

    def fetch(self, n: int) -> list[tuple[str, str, str, int, int]]:
        """Up to n more ([] at the end)."""
        return list(self._cursor.fetchmany(n))


class RuleRows:
    """Every rule of the table (in position order unless told otherwise), read through the driver and converted here:
    SQLAlchemy's row processing costs more than the query itself at a million rules."""

    def __init__(self, conn: Connection, ordered: bool = True, where: Any = None):
        """`ordered=False`: in the database's order (a reader that ranks rules by their `position`
        itself, like the matcher, saves the sort: about a second at a million rules); `where`: only
        the rules this SQL condition selects."""
        query = select(*RULE_COLUMNS)
        if where is not None:
            query = query.where(where)
        if ordered:
            query = query.order_by(rules_t.c.position, rules_t.c.id)
        # `where` holds constants only (PLAIN): inlined, the statement has no parameters
        compiled = query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True})
        # both timestamp columns have the same type (UTCDateTime)
        self._time_of = rules_t.c.starts.type._cached_result_processor(conn.dialect, None)
        self._cursor = conn.exec_driver_sql(compiled.string).cursor
        self._conn = conn

    def fetch(self, n: int) -> list[Rule]:
        """Up to n more rules ([] at the end). A `cache: ramp` rule (few) gets its change time."""
        rules = _read_rows(self._cursor.fetchmany(n), self._time_of, load_tuple, new_rule)
        ramped = [i for i, rule in enumerate(rules) if rule.cache == RAMP]
        if ramped:
            query = select(rules_t.c.id, rules_t.c.updated_at).where(rules_t.c.id.in_([rules[i].id for i in ramped]))
            changed = {rid: as_utc(when) for rid, when in self._conn.execute(query)}
            for i in ramped:
                rules[i] = dataclasses.replace(rules[i], changed_at=changed.get(str(rules[i].id)))
        return rules

    def all(self) -> list[Rule]:
        out: list[Rule] = []
        while batch := self.fetch(10_000):
            out.extend(batch)
        return out
