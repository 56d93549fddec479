"""The rule model: what a redirect rule is, independent of where it came from.

Pure data. Parsing (files) lives in `parsing`, checking in `validation`, matching in `matcher`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from redirectory.rules.lifecycle import links_shown
from redirectory.rules.phases import shown as phases_shown
from redirectory.rules.querymatch import as_mapping
from redirectory.rules.querypolicy import shown

#: A `query` policy's canonical text: "keep", "drop" or its JSON (`querypolicy`).
QueryMode = str
Severity = Literal["error", "warning"]

#: Top-level keys of a rule file.
FILE_FIELDS: tuple[str, ...] = ("allowed_hosts", "rules", "lifecycle")

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


FieldKind = Literal["pattern", "regex", "target", "status", "methods", "query", "querymatch", "scheme", "timestamp",
                    "seconds", "integer", "flag", "tags", "note", "links", "phases"]


@dataclass(frozen=True, slots=True)
class Field:
    """One rule field, stated once: every list of fields (file keys, CSV columns, `Rule.to_dict`,
    `parsing.rule_from_mapping`'s checks, ...) is derived from `FIELDS`.

    - `name`: the key in rule files (YAML, JSON), the CSV column and the admin API's file-style name;
    - `attr`: the `Rule` attribute that holds it (`from` is `Rule.source`);
    - `api`: its name in the admin REST API (camelCase: `from_regex` is `fromRegex`): the key in a
      rule's JSON representation, in request bodies and in error items' `fields`, and the property
      of the OpenAPI rule schema (`admin.rules`, `admin.history`, `admin.openapi` derive theirs from
      `FIELDS`);
    - `kind`: what it holds, and so how it is parsed and checked (`parsing.rule_from_mapping`):
      "pattern" (`from`, a path pattern), "regex" (RE2), "target" (`to`), "status" (a redirect
      status), "methods" (HTTP method names, stored upper-case and sorted), "query" (keep | drop |
      a policy object: `querypolicy`, held as its canonical text),
      "scheme" (http or https, stored lower-case), "timestamp" (ISO 8601, stored in UTC),
      "seconds" (0 to 2**31-1, or `ramp`), "integer" (a signed 32-bit
      integer), "flag" (a boolean), "tags" (words), "note" (free text);
    - `default`: the value a rule has when the field is unset (the `Rule` attribute's default);
    - `limit`: how much text it may hold (`FieldLimit`), None for fields that hold no text;
    - `text`: YAML plain scalars are taken as the text written (`note: yes` is "yes"), for the
      value or, for a list, each item;
    - `is_list`: the value is a list (YAML/JSON list; CSV cell split on spaces or `|`);
    - `always`: written by `Rule.to_dict` even at its default (`to`, `status`); every other field
      is written only when it differs from its default and is not empty.

    How a value is written (`Rule.to_dict`): lists as lists, timestamps by `format_timestamp`,
    everything else as it is.
    """

    name: str
    attr: str
    kind: FieldKind
    default: Any = None
    limit: FieldLimit | None = None
    text: bool = False
    is_list: bool = False
    always: bool = False
    api: str = field(kw_only=True)

    def written(self, value: Any) -> Any:
        """`value` as a rule file holds it (lists as lists, timestamps in ISO 8601)."""
        if self.is_list:
            return list(value)
        if self.kind == "timestamp":
            return format_timestamp(value)
        if self.kind in STRUCTURED_KINDS:
            return self.shown(value)
        return value

    def shown(self, text: str | None) -> Any:
        """A structured field's canonical text as files and the admin API show it (a mapping or a
        list; `query` keeps its keep/drop shorthands); other values as they are."""
        if text is None or self.kind not in STRUCTURED_KINDS:
            return text
        return _SHOWN[self.kind](text)


#: The rule fields, in the order files and exports use them. The limits are applied by every way
#: in (files, CLI, admin API, bulk, imports), in `parsing.rule_from_mapping`; docs/rules.md gives
#: the reasons.
FIELDS: tuple[Field, ...] = (
    # the store indexes it: PostgreSQL cannot index ~2.7 KB and more
    Field("from", "source", "pattern", limit=FieldLimit(2048), text=True, api="from"),
    Field("from_regex", "source_regex", "regex", limit=FieldLimit(2048), text=True, api="fromRegex"),
    # a Location most servers and proxies still take as a request target
    Field("to", "to", "target", limit=FieldLimit(8192), text=True, always=True, api="to"),
    Field("status", "status", "status", default=301, always=True, api="status"),
    Field("methods", "methods", "methods", limit=FieldLimit(32, items=64), text=True, is_list=True,
          api="methods"),
    Field("query", "query", "query", default="keep", text=True, api="query"),
    # structured fields (query_match, phases, links) are bounded by their modules (items and sizes)
    Field("query_match", "query_match", "querymatch", text=True, api="queryMatch"),
    Field("query_exact", "query_exact", "flag", default=False, api="queryExact"),
    # the `from_regex` reads the path and the query (`/a?x=1`), as nginx's `$request_uri` does
    Field("regex_query", "regex_query", "flag", default=False, api="regexQuery"),
    # the request's scheme (http or https): the gateway's, a trusted proxy's or --public-url's
    Field("scheme", "scheme", "scheme", text=True, api="scheme"),
    Field("starts", "starts", "timestamp", api="starts"),
    Field("ends", "ends", "timestamp", api="ends"),
    # later statuses, each from its own start (`phases`)
    Field("phases", "phases", "phases", api="phases"),
    # an endpoint's lifecycle, sent as headers (`lifecycle`)
    Field("deprecation", "deprecation", "timestamp", api="deprecation"),
    Field("sunset", "sunset", "timestamp", api="sunset"),
    Field("links", "links", "links", text=True, api="links"),
    Field("cache", "cache", "seconds", api="cache"),
    Field("priority", "priority", "integer", default=0, api="priority"),
    Field("case_insensitive", "case_insensitive", "flag", default=False, api="caseInsensitive"),
    Field("enabled", "enabled", "flag", default=True, api="enabled"),
    Field("tags", "tags", "tags", default=(), limit=FieldLimit(64, items=64), text=True, is_list=True,
          api="tags"),
    # a note may span lines
    Field("note", "note", "note", limit=FieldLimit(1024, controls="\t\n\r"), text=True, api="note"),
)

#: Kinds whose empty value (an empty note or tag list) `Rule.to_dict` leaves out like the default.
_OMITTED_WHEN_EMPTY = frozenset({"note", "tags"})

#: Each field by its name.
FIELD_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}

#: Kinds held as one canonical text and shown as a structure (`Field.shown`).
STRUCTURED_KINDS: frozenset[str] = frozenset({"query", "querymatch", "links", "phases"})
_SHOWN: dict[str, Any] = {"query": shown, "querymatch": as_mapping, "links": links_shown, "phases": phases_shown}

#: Field names of a rule, in the order files and exports use them.
RULE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)

#: The fields that have a `FieldLimit`, and their limit.
FIELD_LIMITS: dict[str, FieldLimit] = {f.name: f.limit for f in FIELDS if f.limit is not None}


@dataclass(frozen=True, slots=True)
class Rule:
    """One redirect rule.

    Exactly one of `source` (the `from` path pattern, optionally `//host/...`) and
    `source_regex` (`from_regex`, RE2 syntax) is set; `regex_query` says the regex reads the
    request's path and query (`/a?x=1`) instead of its path.
    `methods` is None for "every method"; otherwise upper-case names, sorted.
    `id` is the store's UUID (None for rules read from a file); `line` and `position`
    say where the rule came from and are not part of its identity.
    """

    to: str
    source: str | None = None
    source_regex: str | None = None
    regex_query: bool = False
    status: int = 301
    methods: tuple[str, ...] | None = None
    query: QueryMode = "keep"
    query_match: str | None = None
    query_exact: bool = False
    scheme: str | None = None  # "http" or "https": only requests that came with it
    starts: datetime | None = None
    ends: datetime | None = None
    phases: str | None = None
    deprecation: datetime | None = None
    sunset: datetime | None = None
    links: str | None = None
    cache: int | str | None = None  # seconds, or "ramp" (`semantics.RAMP`)
    priority: int = 0
    case_insensitive: bool = False
    enabled: bool = True
    tags: tuple[str, ...] = ()
    note: str | None = None
    id: str | None = field(default=None, compare=False)
    #: when the store last changed the rule (its `cache: ramp` counts from it); None from files
    changed_at: datetime | None = field(default=None, compare=False, repr=False)
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
    def has_lifecycle(self) -> bool:
        """Whether the rule announces its endpoint's lifecycle (`deprecation`, `sunset`, `links`)."""
        return self.deprecation is not None or self.sunset is not None or self.links is not None

    @property
    def has_query_conditions(self) -> bool:
        """Whether the rule matches only some queries (`query_match`, `query_exact`)."""
        return self.query_match is not None or self.query_exact

    @property
    def from_text(self) -> str:
        """The `from` or `from_regex` text, whichever is set."""
        return self.source if self.source is not None else (self.source_regex or "")

    def key(self) -> tuple[Any, ...]:
        """Identity used by declarative sync (`rules apply`): what the rule matches.

        Two rules with the same key are the same rule; any other difference is a change.
        """
        return (
            ("regex+query" if self.regex_query else "regex") if self.is_regex else "path",
            self.from_text,
            self.methods,
            self.query_match,
            self.query_exact,
            self.scheme,
            self.starts,
            self.ends,
        )

    def matches_scheme(self, scheme: str | None) -> bool:
        """Whether a request of `scheme` may match (None: not known, so it may)."""
        return self.scheme is None or scheme is None or scheme == self.scheme

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
        for f in FIELDS:
            value = getattr(self, f.attr)
            if f.always or (value != f.default and (value or f.kind not in _OMITTED_WHEN_EMPTY)):
                out[f.name] = f.written(value)
        return out


class _RuleBuilder:
    """Rule's slot layout without the frozen dataclass's `__setattr__`: `new_rule` fills one with
    plain assignments, then makes it a Rule (`__class__` assignment between equal layouts)."""

    __slots__ = Rule.__slots__


def new_rule(
    to: str,
    source: str | None = None,
    source_regex: str | None = None,
    regex_query: bool = False,
    status: int = 301,
    methods: tuple[str, ...] | None = None,
    query: QueryMode = "keep",
    query_match: str | None = None,
    query_exact: bool = False,
    scheme: str | None = None,
    starts: datetime | None = None,
    ends: datetime | None = None,
    phases: str | None = None,
    deprecation: datetime | None = None,
    sunset: datetime | None = None,
    links: str | None = None,
    cache: int | str | None = None,
    priority: int = 0,
    case_insensitive: bool = False,
    enabled: bool = True,
    tags: tuple[str, ...] = (),
    note: str | None = None,
    id: str | None = None,  # noqa: A002 - Rule's own field name
    line: int | None = None,
    position: int = 0,
    field_lines: Mapping[str, int] | None = None,
    changed_at: datetime | None = None,
) -> Rule:
    """`Rule(...)` with the same arguments, several times faster (a frozen dataclass sets each
    field through `object.__setattr__`): for code that builds a whole table (parsers, the store).
    The arguments are not checked, as `Rule(...)` does not check them either."""
    r: Any = _new(_RuleBuilder)
    r.to = to
    r.source = source
    r.source_regex = source_regex
    r.regex_query = regex_query
    r.status = status
    r.methods = methods
    r.query = query
    r.query_match = query_match
    r.query_exact = query_exact
    r.scheme = scheme
    r.starts = starts
    r.ends = ends
    r.phases = phases
    r.deprecation = deprecation
    r.sunset = sunset
    r.links = links
    r.cache = cache
    r.priority = priority
    r.case_insensitive = case_insensitive
    r.enabled = enabled
    r.tags = tags
    r.note = note
    r.id = id
    r.line = line
    r.position = position
    r.field_lines = field_lines
    r.changed_at = changed_at
    r.__class__ = Rule
    return r  # type: ignore[no-any-return]


_new = object.__new__


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
