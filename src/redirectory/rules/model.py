"""The rule model: what a redirect rule is, independent of where it came from.

Pure data. Parsing (files) lives in `parsing`, checking in `validation`, matching in `matcher`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

QueryMode = Literal["keep", "drop"]
Severity = Literal["error", "warning"]

#: Field names of a rule, in the order files and exports use them.
RULE_FIELDS: tuple[str, ...] = (
    "from",
    "from_regex",
    "to",
    "status",
    "methods",
    "query",
    "starts",
    "ends",
    "cache",
    "priority",
    "case_insensitive",
    "enabled",
    "tags",
    "note",
)

#: Top-level keys of a rule file.
FILE_FIELDS: tuple[str, ...] = ("allowed_hosts", "rules")

KNOWN_METHODS: frozenset[str] = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


@dataclass(frozen=True, slots=True)
class FieldLimit:
    """How much a text field may hold: `size` UTF-8 bytes (for a list, each item), `items` items
    (lists only), and which control characters (`controls`; every other one, and any lone
    surrogate, is refused: PostgreSQL cannot store NUL, and none has a meaning in these fields)."""

    size: int
    items: int | None = None
    controls: str = ""


#: The limits every way in (files, CLI, admin API, bulk, imports) applies, in
#: `parsing.rule_from_mapping`; docs/rules.md gives the reasons.
FIELD_LIMITS: dict[str, FieldLimit] = {
    "from": FieldLimit(2048),  # the store indexes it: PostgreSQL cannot index ~2.7 KB and more
    "from_regex": FieldLimit(2048),
    "to": FieldLimit(8192),  # a Location most servers and proxies still take as a request target
    "methods": FieldLimit(32, items=64),
    "tags": FieldLimit(64, items=64),
    "note": FieldLimit(1024, controls="\t\n\r"),  # a note may span lines
}


@dataclass(frozen=True, slots=True)
class Rule:
    """One redirect rule.

    Exactly one of `source` (the `from` path pattern, optionally `//host/...`) and
    `source_regex` (`from_regex`, RE2 syntax) is set.
    `methods` is None for "every method"; otherwise upper-case names, sorted.
    `id` is the store's UUID (None for rules read from a file); `line` and `position`
    say where the rule came from and are not part of its identity.
    """

    to: str
    source: str | None = None
    source_regex: str | None = None
    status: int = 301
    methods: tuple[str, ...] | None = None
    query: QueryMode = "keep"
    starts: datetime | None = None
    ends: datetime | None = None
    cache: int | None = None
    priority: int = 0
    case_insensitive: bool = False
    enabled: bool = True
    tags: tuple[str, ...] = ()
    note: str | None = None
    id: str | None = field(default=None, compare=False)
    line: int | None = field(default=None, compare=False)
    position: int = field(default=0, compare=False)
    field_lines: Mapping[str, int] | None = field(default=None, compare=False, repr=False)

    def line_of(self, name: str) -> int | None:
        """The source line of field `name` (falls back to the rule's first line)."""
        if self.field_lines and name in self.field_lines:
            return self.field_lines[name]
        return self.line

    @property
    def is_regex(self) -> bool:
        return self.source_regex is not None

    @property
    def from_text(self) -> str:
        """The `from` or `from_regex` text, whichever is set."""
        return self.source if self.source is not None else (self.source_regex or "")

    def key(self) -> tuple[Any, ...]:
        """Identity used by declarative sync (`rules apply`): what the rule matches.

        Two rules with the same key are the same rule; any other difference is a change.
        """
        return (
            "regex" if self.is_regex else "path",
            self.from_text,
            self.methods,
            self.starts,
            self.ends,
        )

    def matches_method(self, method: str) -> bool:
        return self.methods is None or method in self.methods

    def active_at(self, now: datetime) -> bool:
        """Whether `now` (timezone-aware) falls in the rule's window [starts, ends)."""
        if self.starts is not None and now < self.starts:
            return False
        return not (self.ends is not None and now >= self.ends)

    def with_id(self, rule_id: str) -> Rule:
        return replace(self, id=rule_id)

    def to_dict(self) -> dict[str, Any]:
        """The rule as a file would hold it (only fields that differ from the defaults)."""
        out: dict[str, Any] = {}
        if self.source is not None:
            out["from"] = self.source
        if self.source_regex is not None:
            out["from_regex"] = self.source_regex
        out["to"] = self.to
        out["status"] = self.status
        if self.methods is not None:
            out["methods"] = list(self.methods)
        if self.query != "keep":
            out["query"] = self.query
        if self.starts is not None:
            out["starts"] = format_timestamp(self.starts)
        if self.ends is not None:
            out["ends"] = format_timestamp(self.ends)
        if self.cache is not None:
            out["cache"] = self.cache
        if self.priority:
            out["priority"] = self.priority
        if self.case_insensitive:
            out["case_insensitive"] = True
        if not self.enabled:
            out["enabled"] = False
        if self.tags:
            out["tags"] = list(self.tags)
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A whole table: the rules plus table-wide settings."""

    rules: tuple[Rule, ...] = ()
    allowed_hosts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.allowed_hosts:
            out["allowed_hosts"] = list(self.allowed_hosts)
        out["rules"] = [r.to_dict() for r in self.rules]
        return out


@dataclass(frozen=True, slots=True)
class Problem:
    """A validation finding. `field` names the rule field (or file key) at fault."""

    severity: Severity
    field: str
    message: str
    line: int | None = None
    index: int | None = None  # zero-based position of the rule in its source, when known
    code: str = "invalid"  # stable key, e.g. "status.302", "loop", "chain"
    source: str | None = None  # file name, when known

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def format(self, source: str | None = None) -> str:
        """`FILE:LINE: field: message` (the form every CLI command prints)."""
        where = source or self.source or "<input>"
        prefix = f"{where}:{self.line}" if self.line is not None else where
        tag = "" if self.is_error else "warning: "
        return f"{prefix}: {self.field}: {tag}{self.message}"


class RuleError(Exception):
    """Raised when input cannot become a valid RuleSet; carries every problem found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("; ".join(p.format() for p in problems))


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z` suffix, e.g. 2026-12-01T00:00:00Z."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
