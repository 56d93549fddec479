"""Rule files: text in, a `RuleSet` and a list of `Problem`s out. Pure (no I/O), never raises.

Three formats carry the same data.

YAML (`.yaml`, `.yml`)::

    allowed_hosts: [bar.example.internal]   # optional: absolute targets must be on these hosts
    rules:
      - from: /api/v1/users/{rest:path}     # path pattern; `//host/...` matches one host only
        to: /api/v2/users/{rest}            # absolute http(s) URI or absolute path
        status: 301                         # 301 | 303 | 307 | 308 (default 301; 302 is refused)
        methods: [GET, HEAD]                # default: every method
        query: keep                         # keep (default) | drop
        starts: 2026-12-01T00:00:00Z        # optional window [starts, ends), ISO 8601
        ends: 2026-12-08T00:00:00Z
        cache: 86400                        # optional Cache-Control max-age, seconds
        priority: 0                         # optional tie-breaker (higher wins)
        case_insensitive: false
        enabled: true
        tags: [users]
        note: users moved to v2
      - from_regex: '^/legacy/(?P<id>[0-9]+)$'   # RE2 syntax
        to: /items/{id}
        status: 308

YAML 1.1 reads `yes`, `on`, `2026-01-01` and `123` as booleans, dates and numbers; fields that
hold text (`from`, `from_regex`, `to`, `query`, `note`, the items of `methods` and `tags` and
`allowed_hosts`) take such plain scalars as the text written, so `note: yes` is the string "yes".
`starts`/`ends` accept a YAML timestamp or an ISO 8601 string. Duplicate keys are errors.

JSON (`.json`): the same shape as YAML (an object with `rules` and optional `allowed_hosts`).

CSV (`.csv`): a header row naming columns from the rule fields (`from` or `from_regex`, and `to`,
are required; the rest are optional, in any order), then one rule per row. Empty cells are
unset; `methods` and `tags` are separated by spaces or `|`; booleans are true/false, yes/no or
1/0. CSV has no place for `allowed_hosts`, so the file may start with comment lines (`#`); one of
them may set it::

    # allowed_hosts: a.example, b.example
    from,from_regex,to,status,methods
    /api/v1/users/{rest:path},,/api/v2/users/{rest},301,GET|HEAD

Every problem carries the line of the offending field (or of the rule, or of the syntax error),
the field name, the rule's zero-based index and a stable `code`. A file with no `rules` list is
an error; write `rules: []` (or a CSV header alone) for an empty table. Rules with errors are left
out of the returned RuleSet. Checks that need the rule's neighbours or its compiled target
(placeholders, allowed hosts, loops, overlaps) live in `validation`.
"""

from __future__ import annotations

import csv
import difflib
import gc
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from itertools import chain
from typing import Any, Literal

import re2
import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from redirectory import yamlsafe
from redirectory.rules import lifecycle, phases, querymatch, querypolicy
from redirectory.rules.matcher import compile_regex
from redirectory.rules.model import (
    FIELD_LIMITS,
    FIELDS,
    FILE_FIELDS,
    RULE_FIELDS,
    FieldLimit,
    Problem,
    Rule,
    RuleSet,
    new_rule,
)
from redirectory.rules.patterns import PatternError, parse_source, simple_exact_pattern, valid_host
from redirectory.semantics import (
    NOT_REDIRECTED,
    RAMP,
    REDIRECT_STATUSES,
    RULE_STATUSES,
    TABLE,
    alternatives_to_302,
)

Format = Literal["yaml", "json", "csv"]
_Fail = Callable[[str, str, str], None]
#: Most bytes a `query` policy's canonical text may hold.
_QUERY_POLICY_SIZE = 4096

_EXTENSIONS: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".csv": "csv"}

#: Fields whose value is text (YAML plain scalars are taken as written).
_TEXT_FIELDS = frozenset(f.name for f in FIELDS if f.text and not f.is_list)
#: Fields whose value is a list of text.
_TEXT_LIST_FIELDS = frozenset(f.name for f in FIELDS if f.text and f.is_list)
_RULE_FIELD_SET = frozenset(RULE_FIELDS)

#: Names people reach for, and the field they mean.
_ALIASES: dict[str, str] = {
    "source": "from",
    "path": "from",
    "regex": "from_regex",
    "target": "to",
    "destination": "to",
    "location": "to",
    "code": "status",
    "method": "methods",
    "start": "starts",
    "end": "ends",
    "max_age": "cache",
    "tag": "tags",
    "comment": "note",
    "description": "note",
    "disabled": "enabled",
    "ignore_case": "case_insensitive",
    "host": "allowed_hosts",
    "hosts": "allowed_hosts",
}

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_HTTP_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_LIST_SPLIT = re.compile(r"[\s,|]+")
_CSV_LIST_SPLIT = re.compile(r"[\s|]+")
_CSV_INT = re.compile(r"[+-]?[0-9]+")
_CSV_BOOLS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_CSV_COMMENT_HOSTS = re.compile(r"#\s*allowed_hosts\s*:(.*)", re.IGNORECASE)

_YAML_STR = "tag:yaml.org,2002:str"
_YAML_NULL = "tag:yaml.org,2002:null"
_YAML_BOOL = "tag:yaml.org,2002:bool"
_YAML_INT = "tag:yaml.org,2002:int"
_YAML_FLOAT = "tag:yaml.org,2002:float"
_YAML_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_YAML_MERGE = "tag:yaml.org,2002:merge"
_CONSTRUCTOR = SafeConstructor()

_STATUS_LIST = (", ".join(str(s) for s in REDIRECT_STATUSES[:-1]) + f" or {REDIRECT_STATUSES[-1]} to redirect, "
                f"{NOT_REDIRECTED} for paths that are not redirected")
_NO_RULES = (
    "the file has no `rules` list: write `rules:` followed by a list of rules "
    "(`rules: []` for none)"
)


# -- public API ----------------------------------------------------------------------------------
def detect_format(name: str) -> Format | None:
    """The format a file name's extension implies (.yaml/.yml, .json, .csv), else None."""
    lower = name.lower()
    for ext, fmt in _EXTENSIONS.items():
        if lower.endswith(ext):
            return fmt
    return None


def loads(text: str, fmt: Format, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Parse a rule file's text. Never raises on any text: problems describe what is wrong."""
    if fmt not in ("yaml", "json", "csv"):
        raise ValueError(f"unknown rule file format {fmt!r}: use yaml, json or csv")
    # Composing a large YAML document creates millions of small objects (nodes and their marks)
    # and the cyclic garbage collector would rescan them over and over (4x slower on 100k rules).
    # Nothing here creates cycles worth collecting, so it is paused for the parse.
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        return _loads(text, fmt, source)
    except Exception as exc:  # noqa: BLE001 - last resort: a parser bug must not crash the caller
        return RuleSet(), [
            Problem(
                "error",
                "file",
                f"cannot read the file: internal error {type(exc).__name__}: {exc}",
                code="internal",
                source=source,
            )
        ]
    finally:
        if paused:
            gc.enable()


def rule_from_mapping(
    data: Mapping[str, Any],
    *,
    line: int | None = None,
    field_lines: Mapping[str, int] | None = None,
    index: int | None = None,
    source: str | None = None,
    position: int = 0,
) -> tuple[Rule | None, list[Problem]]:
    """Check and coerce one rule's fields; the Rule is None when any field is in error.

    `data` holds plain values (str, int, bool, list, datetime, None...). None means "unset".
    `line` is the rule's line, `field_lines` each field's line (problems point at the field).
    """
    if type(data) is dict:
        rule = _fast_rule(data, line, field_lines, position)
        if rule is not None:
            return rule, []
    problems: list[Problem] = []

    def fail(name: str, code: str, message: str) -> None:
        where = field_lines.get(name, line) if field_lines else line
        problems.append(
            Problem("error", name, message, line=where, index=index, code=code, source=source)
        )

    if not isinstance(data, Mapping):
        fail(
            "rules",
            "type",
            f"a rule must be a mapping of fields (from, to, status, ...), got {_describe(data)}",
        )
        return None, problems

    values: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in _RULE_FIELD_SET:
            name = key if isinstance(key, str) else str(key)
            fail(name, "unknown-field", _unknown_message(name, RULE_FIELDS, "rule field"))
        elif value is not None:
            values[key] = value

    # sizes and characters first: a field over its limit is not parsed (a 10 MB regex is not
    # compiled); a valid stand-in takes its place so the other fields are still checked
    for name in _over_limits(values, fail):
        values[name] = _STAND_INS[name]

    # from / from_regex
    src = values.get("from")
    rx = values.get("from_regex")
    if src is not None and rx is not None:
        fail(
            "from_regex",
            "conflict",
            "a rule has either `from` (a path pattern) or `from_regex` (an RE2 regex), not both",
        )
    elif src is None and rx is None:
        fail(
            "from",
            "required",
            "a rule needs `from` (a path pattern such as /api/v1/users/{id}) "
            "or `from_regex` (an RE2 regex)",
        )
    if src is not None:
        if not isinstance(src, str):
            fail(
                "from",
                "type",
                f"must be a path pattern such as /api/v1/users/{{id}}, got {_describe(src)}",
            )
        else:
            try:
                parse_source(src)
            except PatternError as exc:
                fail("from", "pattern", str(exc))
    if rx is not None:
        if not isinstance(rx, str):
            fail(
                "from_regex",
                "type",
                f"must be an RE2 regular expression (a string), got {_describe(rx)}",
            )
        elif not rx:
            fail(
                "from_regex",
                "regex",
                "must not be empty: an RE2 regular expression such as ^/legacy/([0-9]+)$",
            )
        else:
            try:
                compile_regex(rx)
            except re2.error as exc:
                fail(
                    "from_regex",
                    "regex",
                    f"not valid RE2 syntax: {_re2_message(exc)} "
                    "(RE2 has no backreferences such as \\1 "
                    "and no lookaround such as (?=...) or (?<=...))",
                )

    # to
    to = values.get("to")
    if values.get("status") == NOT_REDIRECTED and type(values.get("status")) is int:
        if to not in (None, ""):
            fail("to", "to.not-redirected", f"a rule with status {NOT_REDIRECTED} redirects nowhere (its requests "
                 "are answered as if no rule matched): leave `to` out")
        to = ""
    elif to is None:
        fail(
            "to",
            "required",
            "a rule needs `to`: an absolute http(s) URI or an absolute path such as /api/v2/users",
        )
    elif not isinstance(to, str):
        fail(
            "to",
            "type",
            f"must be an absolute http(s) URI or an absolute path (a string), got {_describe(to)}",
        )
    elif not to.strip():
        fail(
            "to",
            "required",
            "must not be empty: an absolute http(s) URI or an absolute path such as /api/v2/users",
        )

    # status
    status = values.get("status", 301)
    if isinstance(status, bool) or not isinstance(status, int):
        fail("status", "type", f"must be {_STATUS_LIST} (a number), got {_describe(status)}")
    elif status == 302:
        fail("status", "status.302", alternatives_to_302())
    elif status not in RULE_STATUSES:
        hint = " (304 is not a redirect)" if status == 304 else (
            " (410: the guide says not to send it; 404 answers as if no rule matched)" if status == 410 else "")
        fail(
            "status",
            "status.invalid",
            f"{status} is not a rule status{hint}: use {_STATUS_LIST}",
        )

    # methods
    methods: tuple[str, ...] | None = None
    raw_methods = values.get("methods")
    if raw_methods is not None:
        items: list[Any] | None
        if isinstance(raw_methods, str):
            items = [m for m in _LIST_SPLIT.split(raw_methods) if m]
        elif isinstance(raw_methods, list | tuple):
            items = list(raw_methods)
        else:
            items = None
        if items is None:
            fail(
                "methods",
                "type",
                f"must be a list of HTTP methods such as [GET, HEAD], got {_describe(raw_methods)}",
            )
        elif not items:
            fail(
                "methods",
                "methods.empty",
                "must name at least one method such as GET; "
                "leave `methods` out to match every method",
            )
        else:
            bad = [m for m in items if not isinstance(m, str)]
            invalid = [m for m in items if isinstance(m, str) and not _HTTP_TOKEN.fullmatch(m)]
            if bad:
                fail(
                    "methods",
                    "type",
                    f"each method must be a name such as GET or PROPFIND, got {_describe(bad[0])}",
                )
            elif invalid:
                fail(
                    "methods",
                    "methods.invalid",
                    f"{_short(invalid[0])!r} is not an HTTP method name: "
                    "use names such as GET, POST or PROPFIND",
                )
            else:
                methods = tuple(sorted({m.upper() for m in items}))

    # query
    query = "keep"
    try:
        query = querypolicy.parse(values.get("query", "keep"))
    except querypolicy.QueryPolicyError as exc:
        fail("query", "query.invalid", str(exc))
    else:
        if len(query) > _QUERY_POLICY_SIZE:
            fail("query", "too-long",
                 f"must be at most {_QUERY_POLICY_SIZE} bytes as canonical JSON, got {len(query)}")

    # query conditions
    query_match: str | None = None
    raw_match = values.get("query_match")
    if raw_match is not None:
        try:
            query_match = querymatch.canonical(querymatch.parse(raw_match))
        except querymatch.QueryMatchError as exc:
            fail("query_match", "query_match.invalid", str(exc))

    # window
    starts = _timestamp_field(values.get("starts"), "starts", fail)
    ends = _timestamp_field(values.get("ends"), "ends", fail)
    if starts is not None and ends is not None and starts >= ends:
        fail("ends", "window", f"must be after `starts` ({_iso(starts)}), got {_iso(ends)}")

    # phases
    phases_text: str | None = None
    if values.get("phases") is not None:
        try:
            phases_text = phases.parse(values["phases"])
        except phases.PhasesError as exc:
            fail("phases", "phases.invalid", str(exc))
        else:
            if status == NOT_REDIRECTED:
                fail("phases", "phases.not-redirected", "a rule that redirects nothing (status 404) has no phases")
            elif starts is not None and phases.phases(phases_text)[0][0] <= starts:
                fail("phases", "phases.before-starts", f"the first phase must start after `starts` ({_iso(starts)})")

    # lifecycle
    deprecation = _timestamp_field(values.get("deprecation"), "deprecation", fail)
    sunset = _timestamp_field(values.get("sunset"), "sunset", fail)
    if deprecation is not None and sunset is not None and sunset < deprecation:
        fail("sunset", "sunset.before-deprecation",
             f"must not come before `deprecation` ({_iso(deprecation)}), got {_iso(sunset)}")
    links: str | None = None
    if values.get("links") is not None:
        try:
            links = lifecycle.parse_links(values["links"])
        except lifecycle.LinksError as exc:
            fail("links", "links.invalid", str(exc))

    # numbers
    cache = values.get("cache")
    if cache == RAMP:
        permanent = bool(TABLE[status].permanent) if type(status) is int and status in TABLE else False
        if values.get("phases") is not None and phases_text is not None:
            permanent = permanent or any(TABLE[p[1]].permanent for p in phases.phases(phases_text))
        if not permanent:
            fail("cache", "cache.ramp", f"`ramp` is for permanent redirects (301, 308; or a phase to one), "
                 f"not {status}: give a number of seconds, or leave `cache` out")
    elif cache is not None:
        if isinstance(cache, bool) or not isinstance(cache, int):
            fail(
                "cache",
                "type",
                f"must be a number of seconds (an integer, 0 or more) or ramp, got {_describe(cache)}",
            )
            cache = None
        elif not 0 <= cache <= _INT32_MAX:
            fail(
                "cache",
                "cache.range",
                f"must be a number of seconds from 0 to {_INT32_MAX}, got {cache}",
            )
    priority = values.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        fail("priority", "type", f"must be an integer (higher wins), got {_describe(priority)}")
    elif not _INT32_MIN <= priority <= _INT32_MAX:
        fail(
            "priority",
            "priority.range",
            f"must be an integer from {_INT32_MIN} to {_INT32_MAX}, got {priority}",
        )

    # booleans
    flags: dict[str, bool] = {}
    for name, default in (("case_insensitive", False), ("enabled", True), ("query_exact", False),
                          ("regex_query", False)):
        value = values.get(name, default)
        if not isinstance(value, bool):
            fail(name, "type", f"must be true or false, got {_describe(value)}")
        else:
            flags[name] = value
    scheme = values.get("scheme")
    if scheme is not None:
        if not isinstance(scheme, str) or scheme.lower() not in ("http", "https"):
            fail("scheme", "scheme.invalid", f"must be http or https (the request's scheme), got {_describe(scheme)}")
            scheme = None
        else:
            scheme = scheme.lower()
    if flags.get("regex_query") and rx is None:
        fail("regex_query", "regex_query.needs-regex", "reads the path and query with `from_regex`: a rule "
             "with `from` matches the path (use query_match for its query), so leave regex_query out")

    # tags
    tags: tuple[str, ...] = ()
    raw_tags = values.get("tags")
    if raw_tags is not None:
        tag_items = [raw_tags] if isinstance(raw_tags, str) else raw_tags
        if not isinstance(tag_items, list | tuple):
            fail(
                "tags",
                "type",
                f"must be a list of words such as [users, v2], got {_describe(raw_tags)}",
            )
        else:
            wrong = [t for t in tag_items if not isinstance(t, str) or not t.strip()]
            if wrong:
                fail(
                    "tags",
                    "type",
                    f"each tag must be a non-empty string, got {_describe(wrong[0])}",
                )
            else:
                tags = tuple(tag_items)

    # note
    note = values.get("note")
    if note is not None and not isinstance(note, str):
        fail("note", "type", f"must be text, got {_describe(note)}")

    if problems:
        return None, problems
    assert isinstance(to, str) and isinstance(status, int) and isinstance(priority, int)
    return (
        Rule(
            to=to,
            source=src,
            source_regex=rx,
            regex_query=flags["regex_query"],
            status=status,
            methods=methods,
            query=query,
            query_match=query_match,
            query_exact=flags["query_exact"],
            scheme=scheme,
            starts=starts,
            ends=ends,
            phases=phases_text,
            deprecation=deprecation,
            sunset=sunset,
            links=links,
            cache=cache,
            priority=priority,
            case_insensitive=flags["case_insensitive"],
            enabled=flags["enabled"],
            tags=tags,
            note=note if note and note.strip() else None,
            line=line,
            position=position,
            field_lines=field_lines,
        ),
        problems,
    )


# -- the fast path --------------------------------------------------------------------------------
# Most rules of a large table are plain: `from` (an exact path), `to`, `status` and a few scalar
# fields, each of the right type and well within its limits. `_fast_rule` builds such a rule with
# cheap checks that can only accept what the full checks accept; anything else (another field, a
# value it is not sure of) returns None and takes the full path, which reports the problems.
_SLOW: Any = object()  # "take the full path"
_STATUSES = frozenset(REDIRECT_STATUSES)  # a 404 rule (no `to`) takes the full path


def _fast_text(value: Any, limit: FieldLimit) -> Any:
    if type(value) is not str or 4 * len(value) > limit.size or _CONTROL.search(value):
        return _SLOW
    return value


def _fast_status(value: Any) -> Any:
    return value if type(value) is int and value in _STATUSES else _SLOW


def _fast_query(value: Any) -> Any:
    return value if value == "keep" or value == "drop" else _SLOW


def _fast_seconds(value: Any) -> Any:
    return value if type(value) is int and 0 <= value <= _INT32_MAX else _SLOW


def _fast_integer(value: Any) -> Any:
    return value if type(value) is int and _INT32_MIN <= value <= _INT32_MAX else _SLOW


def _fast_flag(value: Any) -> Any:
    return value if type(value) is bool else _SLOW


def _fast_note(value: Any) -> Any:
    if type(value) is not str or 4 * len(value) > _NOTE_LIMIT.size:
        return _SLOW
    match = _CONTROL.search(value)
    if match is not None and any(c not in _NOTE_LIMIT.controls for c in _CONTROL.findall(value)):
        return _SLOW
    return value if value.strip() else None


_NOTE_LIMIT = FIELD_LIMITS["note"]
#: Field name -> (Rule attribute, fast check) for the fields the fast path takes; by the field's kind.
_FAST_BY_KIND: dict[str, Callable[[Any], Any]] = {
    "status": _fast_status,
    "query": _fast_query,
    "seconds": _fast_seconds,
    "integer": _fast_integer,
    "flag": _fast_flag,
    "note": _fast_note,
}
_FAST_FIELDS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    f.name: (f.attr, _FAST_BY_KIND[f.kind]) for f in FIELDS if f.kind in _FAST_BY_KIND and f.name != "regex_query"
}
_FROM_LIMIT = FIELD_LIMITS["from"]
_TO_LIMIT = FIELD_LIMITS["to"]


def _fast_rule(
    data: dict[str, Any], line: int | None, field_lines: Mapping[str, int] | None, position: int
) -> Rule | None:
    """The Rule of a plain `data` (see above), or None: then the full checks decide."""
    src = _fast_text(data.get("from"), _FROM_LIMIT)
    to = _fast_text(data.get("to"), _TO_LIMIT)
    if src is _SLOW or to is _SLOW or not to.strip():
        return None
    if simple_exact_pattern(src) is None:
        try:
            parse_source(src)
        except PatternError:
            return None
    if len(data) == 3 and "status" in data:  # the commonest shape: from, to, status
        status = data["status"]
        if type(status) is not int or status not in _STATUSES:
            return None
        return new_rule(to, src, status=status, line=line, position=position, field_lines=field_lines)
    fields: dict[str, Any] = {}
    for key, value in data.items():
        if key == "from" or key == "to":
            continue
        found = _FAST_FIELDS.get(key)
        if found is None:
            return None
        checked = found[1](value)
        if checked is _SLOW:
            return None
        fields[found[0]] = checked
    return new_rule(to, src, line=line, position=position, field_lines=field_lines, **fields)


# -- limits ---------------------------------------------------------------------------------------
#: What takes the place of a field over its limit (the rule is refused all the same).
_STAND_INS: dict[str, Any] = {
    "from": "/",
    "from_regex": "^/$",
    "to": "/",
    "methods": ["GET"],
    "tags": ["tag"],
    "note": "",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def _over_limits(values: Mapping[str, Any], fail: _Fail) -> list[str]:
    """Report the fields of `FIELD_LIMITS` that hold too much or a refused character; their names."""
    over: list[str] = []
    for name, limit in FIELD_LIMITS.items():
        value = values.get(name)
        if value is None:
            continue
        if limit.items is None:
            message = _limit_message(value, limit, "", name) if isinstance(value, str) else None
        elif isinstance(value, list | tuple | str):
            message = _list_limit_message(name, value, limit)
        else:
            message = None
        if message is not None:
            fail(name, message[0], message[1])
            over.append(name)
    return over


def _list_limit_message(
    name: str, value: list[Any] | tuple[Any, ...] | str, limit: FieldLimit
) -> tuple[str, str] | None:
    assert limit.items is not None
    if isinstance(value, str):
        items: list[Any] = [m for m in _LIST_SPLIT.split(value) if m] if name == "methods" else [value]
    else:
        items = list(value)
    if len(items) > limit.items:
        return "too-many", f"must have at most {limit.items} {name}, got {len(items)}"
    for item in items:
        if isinstance(item, str):
            found = _limit_message(item, limit, f"each {name[:-1]} ", name)
            if found is not None:
                return found
    return None


def _limit_message(text: str, limit: FieldLimit, what: str, name: str) -> tuple[str, str] | None:
    """(code, message) when `text` is too long or holds a refused character, else None.

    The size first: what is left to scan for characters is then short."""
    if 4 * len(text) > limit.size:  # UTF-8 takes at most 4 bytes a character
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > limit.size:
            return "too-long", f"{what}must be at most {limit.size} bytes long (UTF-8), got {size}"
    match = _CONTROL.search(text)
    while match is not None:
        char = match.group()
        if char in limit.controls:
            match = _CONTROL.search(text, match.end())
            continue
        where = f"U+{ord(char):04X} at character {match.start() + 1}"
        if "\ud800" <= char <= "\udfff":
            return "control", f"{what}must be valid Unicode text: found the lone surrogate {where}"
        allowed = " other than tabs and line breaks" if limit.controls else ""
        fix = f"percent-encode it (%{ord(char):02X})" if name in ("from", "to") else "leave it out"
        return "control", f"{what}must not hold control characters{allowed}: found {where}; {fix}"
    return None


# -- shared ---------------------------------------------------------------------------------------
@dataclass(slots=True)
class _RawRule:
    """One rule as read from a file, before field checks."""

    data: Any
    line: int | None
    field_lines: Mapping[str, int] = field(default_factory=dict)
    broken: bool = False  # a problem (e.g. a duplicate key) was already reported


def _loads(text: str, fmt: Format, source: str) -> tuple[RuleSet, list[Problem]]:
    if text.startswith("\ufeff"):
        text = text[1:]
    if fmt == "yaml":
        return _loads_yaml(text, source)
    if fmt == "json":
        return _loads_json(text, source)
    return _loads_csv(text, source)


def _build(
    raw_rules: Iterable[_RawRule],
    hosts: tuple[str, ...],
    problems: list[Problem],
    source: str,
    defer: bool = False,
) -> tuple[RuleSet, list[Problem]]:
    """The RuleSet of `raw_rules` (a generator: each raw rule is dropped once built). The rules'
    problems join `problems` as they come, or (`defer`) after those the generator adds."""
    rules: list[Rule] = []
    found_here = [] if defer else problems
    for i, raw in enumerate(raw_rules):
        rule, found = rule_from_mapping(
            raw.data, line=raw.line, field_lines=raw.field_lines, index=i, source=source, position=i
        )
        if found:
            found_here.extend(found)
        if rule is not None and not raw.broken:
            rules.append(rule)
    if defer:
        problems.extend(found_here)
    return RuleSet(tuple(rules), hosts), problems


def _check_allowed_hosts(
    value: Any, line: int | None, source: str, problems: list[Problem]
) -> tuple[str, ...]:
    def fail(code: str, message: str) -> None:
        problems.append(
            Problem("error", "allowed_hosts", message, line=line, code=code, source=source)
        )

    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        fail(
            "type",
            f"must be a list of host names such as [api.example.com], got {_describe(value)}",
        )
        return ()
    hosts: list[str] = []
    for item in items:
        if not isinstance(item, str):
            fail(
                "type",
                f"each entry must be a host name such as api.example.com, got {_describe(item)}",
            )
            continue
        host = item.strip().lower()
        if not valid_host(host):
            fail(
                "allowed_hosts.invalid",
                f"{_short(item)!r} is not a valid host name: write the host only, such as api.example.com "
                "(no scheme, port, path or wildcard)",
            )
            continue
        if host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def _top_level_unknown(key: str, line: int | None, source: str) -> Problem:
    return Problem(
        "error",
        key,
        _unknown_message(key, FILE_FIELDS, "top-level key"),
        line=line,
        code="unknown-field",
        source=source,
    )


def _unknown_message(key: str, valid: Iterable[str], what: str) -> str:
    valid = tuple(valid)
    guess = _ALIASES.get(key.lower()) if key.lower() not in valid else key.lower()
    if guess not in valid:
        close = difflib.get_close_matches(key.lower(), valid, n=1, cutoff=0.6)
        guess = close[0] if close else None
    hint = f": did you mean '{guess}'?" if guess else "."
    return f"unknown {what} '{_short(key)}'{hint} Valid fields: {', '.join(valid)}"


def _timestamp_field(value: Any, name: str, fail: _Fail) -> datetime | None:
    if value is None:
        return None
    parsed: datetime | None = None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime.combine(value, time(), UTC)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            fail(
                name,
                "time.invalid",
                f"must be an ISO 8601 timestamp such as 2026-12-01T00:00:00Z, "
                f"got {_short(value)!r}",
            )
            return None
    else:
        fail(
            name,
            "type",
            f"must be an ISO 8601 timestamp such as 2026-12-01T00:00:00Z, got {_describe(value)}",
        )
        return None
    try:
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        fail(name, "time.invalid", f"{_iso(parsed)} is out of range once converted to UTC")
        return None


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({_short(str(value))})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_short(value)!r})"
    if isinstance(value, datetime | date):
        return f"a timestamp ({value.isoformat()})"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return f"a {type(value).__name__}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _re2_message(exc: Exception) -> str:
    detail = exc.args[0] if exc.args else str(exc)
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


# -- YAML -----------------------------------------------------------------------------------------
def _loads_yaml(text: str, source: str, fast: bool = True) -> tuple[RuleSet, list[Problem]]:
    problems: list[Problem] = []
    hosts: tuple[str, ...] = ()
    if fast:
        # Rules are built as they are read; allowed_hosts (perhaps after the rules) is checked at
        # the end, its problems before the rules' (`defer`). A text found not to be of the simple
        # shape part way through is read again by the full path, from scratch.
        end = _YamlFastEnd()

        def rules_then_hosts() -> Iterator[_RawRule]:
            yield from _yaml_fast_rules(text, end)
            if end.hosts_line is not None:
                end.hosts = _check_allowed_hosts(end.hosts, end.hosts_line, source, problems)
            else:
                end.hosts = ()

        try:
            built, _ = _build(rules_then_hosts(), (), problems, source, defer=True)
        except _NotFast:
            problems.clear()
        else:
            return RuleSet(built.rules, end.hosts), problems
    try:
        root = yamlsafe.compose(text)
    except yamlsafe.YamlError as exc:
        message = f"not valid YAML: {exc.message}" if exc.code == "syntax" else exc.message
        problems.append(
            Problem("error", "file", message, line=exc.line, code=exc.code, source=source)
        )
        return RuleSet(), problems

    if root is None:
        problems.append(
            Problem("error", "rules", _NO_RULES, line=1, code="required", source=source)
        )
        return RuleSet(), problems
    if not isinstance(root, MappingNode):
        what = "a list" if isinstance(root, SequenceNode) else "a single value"
        problems.append(
            Problem(
                "error",
                "rules",
                "the file must be a mapping with a `rules` list (and optionally `allowed_hosts`), "
                f"got {what}",
                line=root.start_mark.line + 1,
                code="type",
                source=source,
            )
        )
        return RuleSet(), problems

    entries = _yaml_entries(root, None, source, problems)
    rules_node: Node | None = None
    rules_line: int | None = None
    lifecycle_node: Node | None = None
    lifecycle_line = 1
    for key, key_line, value_node in entries:
        if key == "rules":
            rules_node, rules_line = value_node, key_line
        elif key == "lifecycle":
            lifecycle_node, lifecycle_line = value_node, key_line
        elif key == "allowed_hosts":
            value = _yaml_value(value_node, True, 0)
            hosts = _check_allowed_hosts(value, key_line, source, problems)
        else:
            problems.append(_top_level_unknown(key, key_line, source))

    lifecycle: Iterable[_RawRule] = ()
    if lifecycle_node is not None:
        if not isinstance(lifecycle_node, SequenceNode):
            problems.append(Problem("error", "lifecycle", "must be a list of entries (each starting with '- from:')",
                                    line=lifecycle_line, code="type", source=source))
            return RuleSet((), hosts), problems
        lifecycle = _lifecycle(_yaml_rules(lifecycle_node, source, problems), source, problems)
        if rules_node is None:
            return _build(lifecycle, hosts, problems, source)
    if rules_node is None or (isinstance(rules_node, ScalarNode) and rules_node.tag == _YAML_NULL):
        line = rules_line if rules_line is not None else 1
        problems.append(
            Problem("error", "rules", _NO_RULES, line=line, code="required", source=source)
        )
        return RuleSet((), hosts), problems
    if not isinstance(rules_node, SequenceNode):
        problems.append(
            Problem(
                "error",
                "rules",
                "must be a list of rules (each starting with '- from:'), "
                f"got {_describe(_yaml_value(rules_node, False, 2))}",
                line=rules_line,
                code="type",
                source=source,
            )
        )
        return RuleSet((), hosts), problems
    return _build(chain(_yaml_rules(rules_node, source, problems), lifecycle), hosts, problems, source)


def _lifecycle(raw: Iterable[_RawRule], source: str, problems: list[Problem]) -> Iterator[_RawRule]:
    """The entries of a file's `lifecycle` list: rules that redirect nothing (`status: 404`), which
    announce an endpoint's end (deprecation, sunset, links) on the paths they match."""
    for entry in raw:
        data = entry.data
        if isinstance(data, dict):
            if "status" in data or "to" in data:
                name = "status" if "status" in data else "to"
                problems.append(Problem(
                    "error", name, f"a lifecycle entry redirects nothing: leave `{name}` out (a redirect that "
                    "announces its end is a rule in `rules` with deprecation, sunset or links)",
                    line=entry.field_lines.get(name, entry.line) if entry.field_lines else entry.line,
                    code="lifecycle.redirect", source=source))
                continue
            data = {**data, "status": NOT_REDIRECTED}
        yield _RawRule(data, entry.line, entry.field_lines, entry.broken)


def _yaml_rules(
    rules_node: SequenceNode, source: str, problems: list[Problem]
) -> Iterable[_RawRule]:
    for index, item in enumerate(rules_node.value):
        line = item.start_mark.line + 1
        if not isinstance(item, MappingNode):
            yield _RawRule(_yaml_value(item, False, 2), line)
            continue
        before = len(problems)
        data: dict[str, Any] = {}
        lines: dict[str, int] = {}
        for key, key_line, value_node in _yaml_entries(item, index, source, problems):
            lines[key] = key_line
            if key in _TEXT_FIELDS:
                if type(value_node) is ScalarNode:
                    tag = value_node.tag
                    data[key] = value_node.value if tag != _YAML_NULL or value_node.style else None
                else:
                    data[key] = _yaml_value(value_node, True, 1)
            elif key in _TEXT_LIST_FIELDS:
                data[key] = _yaml_value(value_node, True, 0)
            else:
                data[key] = _yaml_value(value_node, False, 1)
        yield _RawRule(data, line, lines, broken=len(problems) > before)


def _yaml_entries(
    node: MappingNode, index: int | None, source: str, problems: list[Problem]
) -> list[tuple[str, int, Node]]:
    """A mapping's (key text, key line, value node), with `<<` merges applied.

    Duplicate keys are reported (the first one is kept)."""
    explicit: dict[str, int] = {}
    out: list[tuple[str, int, Node]] = []
    merged: list[tuple[str, int, Node]] = []
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if key_node.tag == _YAML_MERGE:
            merged.extend(_yaml_merge(value_node, index, source, problems, 0))
            continue
        key = key_node.value if isinstance(key_node, ScalarNode) else "(a complex key)"
        if key in explicit:
            problems.append(
                Problem(
                    "error",
                    key,
                    f"'{_short(key)}' is set twice in this mapping "
                    f"(first on line {explicit[key]}): "
                    "keep one",
                    line=key_line,
                    index=index,
                    code="duplicate-key",
                    source=source,
                )
            )
            continue
        explicit[key] = key_line
        out.append((key, key_line, value_node))
    if merged:
        seen = set(explicit)
        for key, key_line, value_node in merged:
            if key not in seen:
                seen.add(key)
                out.append((key, key_line, value_node))
    return out


def _yaml_merge(
    node: Node, index: int | None, source: str, problems: list[Problem], depth: int
) -> list[tuple[str, int, Node]]:
    if depth > 8:
        return []
    if isinstance(node, MappingNode):
        return _yaml_entries(node, index, source, problems)
    if isinstance(node, SequenceNode):
        out: list[tuple[str, int, Node]] = []
        for item in node.value:
            out.extend(_yaml_merge(item, index, source, problems, depth + 1))
        return out
    problems.append(
        Problem(
            "error",
            "<<",
            "a merge key ('<<') needs a mapping or a list of mappings",
            line=node.start_mark.line + 1,
            index=index,
            code="type",
            source=source,
        )
    )
    return []


def _yaml_value(node: Node, as_text: bool, depth: int) -> Any:
    """A node's value.

    `as_text`: plain scalars are the text written (YAML 1.1 `yes` stays "yes")."""
    if isinstance(node, ScalarNode):
        tag = node.tag
        if tag == _YAML_STR:
            return node.value
        if tag == _YAML_NULL:
            return None
        if as_text:
            return node.value
        try:
            if tag == _YAML_INT:
                return _CONSTRUCTOR.construct_yaml_int(node)
            if tag == _YAML_BOOL:
                return _CONSTRUCTOR.construct_yaml_bool(node)
            if tag == _YAML_FLOAT:
                return _CONSTRUCTOR.construct_yaml_float(node)
            if tag == _YAML_TIMESTAMP:
                return _CONSTRUCTOR.construct_yaml_timestamp(node)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError):
            return node.value
        return node.value
    if isinstance(node, SequenceNode):
        if depth > 3:
            return []
        return [_yaml_value(item, as_text, depth + 1) for item in node.value]
    if isinstance(node, MappingNode) and depth <= 3:  # `query_match: {page_id: "1"}`
        return {
            (key.value if isinstance(key, ScalarNode) else "(a complex key)"): _yaml_value(value, as_text, depth + 1)
            for key, value in node.value
        }
    return {}


# -- YAML, the fast way ---------------------------------------------------------------------------
# Composing a large YAML document through PyYAML (nodes, marks, resolver, all in Python) costs
# about 60 µs a rule. Rule files are mostly of one simple shape, the one `rules export` writes:
#
#     allowed_hosts: [a.example, b.example]
#     rules:
#     - from: /a              # one `key: value` a line; values plain, quoted or [flow, lists]
#       to: "/b"
#       methods: [GET, HEAD]
#
# `_yaml_fast` reads that shape line by line (one regex match a line) into what the full path
# would have made of it (each field's value and line), and gives up (None) on anything else:
# anchors, aliases, tags, block scalars, multi-line scalars, nested blocks, duplicate or unknown
# top-level keys, tabs, CR or other line breaks, escapes it does not know, characters YAML
# refuses... Then the full path (`yamlsafe.compose`) reads the text and reports what is wrong.
# tests/test_parsing_scale.py proves both paths equal on generated files.

_PLAIN_RUN = r"(?:[^:\n ]++|:(?=[^\n ]))*+"  # no `: `, no line break; runs, so a long value is fast
_PLAIN = (  # a single-line plain scalar in block context (conservative: no `?` or `:` first)
    r"(?:[^-?:,\[\]{}#&*!|>'\"%@`\n ]|-(?=[^\n ]))" + _PLAIN_RUN
    + r"(?:[ ]++(?:[^:\n #]|:(?=[^\n ]))" + _PLAIN_RUN + r")*+"
)
#: One line: (indent, "- " or "", key, "double-quoted", 'single-quoted', [flow], plain, bad).
#: Groups that take no part are "" (`findall`), so the quoted and flow groups keep their
#: delimiters; `bad` (the rest of a line no other form takes, with its line break) is never "".
_YAML_LINE = re.compile(
    r"([ ]*)(?:(-[ ])?([A-Za-z_][A-Za-z0-9_]*):"
    r"(?:[ ]+(?:(\"[^\"\\\n]*(?:\\.[^\"\\\n]*)*\")|('[^'\n]*(?:''[^'\n]*)*')"
    r"|(\[[^\[\]{}\n#\"']*\])|(" + _PLAIN + r")))?"
    r"(?:[ ]+#[^\n]*|[ ]*)|(?:#[^\n]*)?)\n|([^\n]*\n)"
)
#: Characters outside YAML's printable set, other line breaks (CR, NEL, LS, PS), tabs and BOMs:
#: the fast path leaves such texts to the full path.
_YAML_NOT_FAST = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_FLOW_ITEM = re.compile(r"[A-Za-z0-9_.~/+=][A-Za-z0-9_.~/+=\-]*")
_YAML_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_DQ_ESCAPES = {
    "\\": "\\", '"': '"', "/": "/", " ": " ", "t": "\t", "n": "\n", "r": "\r", "0": "\0",
    "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b", "N": "\x85", "_": "\xa0",
    "L": "\u2028", "P": "\u2029",
}
_YAML_DQ_ESCAPE = re.compile(r"\\(.)")
_YAML_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)")
_RESOLVER = yaml.resolver.Resolver()


class _NotFast(Exception):
    """The text is not of the shape `_yaml_fast` reads."""


def _yaml_dq(body: str) -> str:
    if "\\" not in body:
        return body

    def escape(m: re.Match[str]) -> str:
        found = _YAML_DQ_ESCAPES.get(m.group(1))
        if found is None:
            raise _NotFast
        return found

    return _YAML_DQ_ESCAPE.sub(escape, body)


def _yaml_plain(text: str, as_text: bool) -> Any:
    """A plain scalar's value, as `_yaml_value` gives it."""
    if text in _YAML_NULLS:
        return None
    if as_text:
        return text
    if _YAML_DECIMAL.fullmatch(text):
        return int(text)
    tag = _RESOLVER.resolve(ScalarNode, text, (True, False))  # type: ignore[no-untyped-call]
    return _yaml_value(ScalarNode(tag, text), False, 1)


def _yaml_line_value(dq: str, sq: str, flow: str, plain: str, as_text: bool, items: bool) -> Any:
    """The value of a matched `key: value` line (`items`: a flow list is allowed)."""
    if dq:
        return _yaml_dq(dq[1:-1])
    if plain:
        return _yaml_plain(plain, as_text)
    if sq:
        return sq[1:-1].replace("''", "'")
    if flow:
        if not items:
            raise _NotFast
        flow = flow[1:-1]
        if not flow.strip(" "):
            return []
        out: list[Any] = []
        for item in flow.split(","):
            item = item.strip(" ")
            if not _FLOW_ITEM.fullmatch(item):
                raise _NotFast
            out.append(None if item in _YAML_NULLS else item)
        return out
    return None  # `key:` alone: null (a nested block after it is refused by the caller)


def _yaml_fast(text: str) -> tuple[Any, int | None, list[_RawRule]] | None:
    """(allowed_hosts' value, its line or None when absent, the rules) of a text of the simple
    shape (see above), else None."""
    end = _YamlFastEnd()
    try:
        rules = list(_yaml_fast_rules(text, end))
    except _NotFast:
        return None
    return end.hosts, end.hosts_line, rules


class _YamlFastEnd:
    """What `_yaml_fast_rules` found besides the rules, once it has read the whole text."""

    __slots__ = ("hosts", "hosts_line")

    def __init__(self) -> None:
        self.hosts: Any = None
        self.hosts_line: int | None = None


def _yaml_fast_rules(text: str, end: _YamlFastEnd) -> Iterator[_RawRule]:
    """The rules of a text of the simple shape, one at a time (each is yielded once the next one
    starts); `allowed_hosts` goes to `end`. Raises `_NotFast` (perhaps after some rules) on a
    text of any other shape. Rules with the same keys on the same lines share their offsets."""
    if _YAML_NOT_FAST.search(text):
        raise _NotFast
    if not text.endswith("\n"):
        text += "\n"
    line = 0
    top: set[str] = set()
    has_rules = block = False
    count = 0
    item_indent = -1  # the rules' `- ` column, once known
    data: dict[str, Any] = {}
    lines: dict[str, int] = {}  # the current rule's keys: their offset from its first line
    start = 0  # the current rule's first line, 0 before the first
    empty_at = -1  # the indent of the last `key:` without a value, until the next line
    in_rules = False
    text_fields, list_fields, plain_value, dq_value = _TEXT_FIELDS, _TEXT_LIST_FIELDS, _yaml_plain, _yaml_dq
    layouts: dict[tuple[tuple[str, int], ...], dict[str, int]] = {}
    for spaces, dash, key, dq, sq, flow, plain, bad in chain.from_iterable(_yaml_line_blocks(text)):
        line += 1
        if not key:
            if bad:
                raise _NotFast
            continue  # blank or comment
        indent = len(spaces)
        if empty_at >= 0 and (indent > empty_at or (dash and indent == empty_at)):
            raise _NotFast  # a nested block
        if in_rules and (indent or dash):
            if dash:
                if indent != item_indent:
                    if item_indent >= 0:
                        raise _NotFast
                    item_indent = indent
                if start:
                    yield _RawRule(data, start, _FieldLines(start, _shared(layouts, lines)))
                data, lines, start = {}, {}, line
                count += 1
            elif indent != item_indent + 2 or not lines:
                raise _NotFast
            if key in lines:
                raise _NotFast  # a duplicate key: the full path reports it
            lines[key] = line - start
            if dq and "\\" not in dq:  # the commonest value
                data[key] = dq[1:-1]
                empty_at = -1
            elif plain:
                data[key] = plain_value(plain, key in text_fields or key in list_fields)
                empty_at = -1
            elif sq or flow:
                data[key] = _yaml_line_value(dq, sq, flow, plain, key in text_fields or key in list_fields,
                                             key in list_fields or key not in text_fields)
                empty_at = -1
            elif dq:
                data[key] = dq_value(dq[1:-1])
                empty_at = -1
            else:
                data[key] = None
                empty_at = indent + 2 if dash else indent
            continue
        # a top-level key
        in_rules = False
        valued = bool(dq or sq or flow or plain)
        empty_at = -1 if valued else 0
        if indent or dash or key in top:
            raise _NotFast
        top.add(key)
        if key == "rules":
            has_rules = True
            if valued:
                if not flow or flow[1:-1].strip(" "):
                    raise _NotFast
            else:
                in_rules = block = True
                empty_at = -1
        elif key == "allowed_hosts":
            end.hosts, end.hosts_line = _yaml_line_value(dq, sq, flow, plain, True, True), line
        else:
            raise _NotFast  # the full path reports unknown keys
    if not has_rules or (block and not count):
        raise _NotFast  # no rules list: the full path says so
    if start:
        yield _RawRule(data, start, _FieldLines(start, _shared(layouts, lines)))


def _yaml_line_blocks(text: str, size: int = 1 << 20) -> Iterator[list[tuple[str, ...]]]:
    """`_YAML_LINE.findall(text)` a block of whole lines at a time (`text` ends with a line break):
    the matches of a whole large file would take several times its size."""
    pos, length = 0, len(text)
    while pos < length:
        stop = text.find("\n", min(pos + size, length) - 1) + 1
        yield _YAML_LINE.findall(text, pos, stop)
        pos = stop


def _shared(layouts: dict[tuple[tuple[str, int], ...], dict[str, int]], offsets: dict[str, int]) -> dict[str, int]:
    """`offsets`, or an equal dict met before (a bounded number of them are kept)."""
    described = tuple(offsets.items())
    found = layouts.get(described)
    if found is None:
        found = offsets
        if len(layouts) < _Layouts._LIMIT:
            layouts[described] = offsets
    return found


# -- JSON -----------------------------------------------------------------------------------------
# `json.loads` (C) decodes the document; the lines of the top-level keys, of each rule and of its
# keys come from a scan of the text. Rules of the shape `json.dumps(indent=...)` writes, with one
# `"key": value` a line (a list value on one line or one item a line) are matched whole by one
# regex (`_JSON_FLAT_RULE`), and the line of each key is read from the match; any other item is
# scanned token by token. Rules of the same layout (keys in the same order on the same lines) share
# one `_Layout`. tests/test_parsing_scale.py proves both scans equal on generated files.
_JSON_TOKEN = re.compile(r'("[^"\\]*(?:\\.[^"\\]*)*")(\s*:)?|[{}\[\],]|[^\s,:\[\]{}"]+')
_JSON_WS = r"[ \t\r]*+"
_JSON_STR = r'"(?:[^"\\\n]++|\\.)*+"'
_JSON_SCALAR = rf"(?:{_JSON_STR}|[-+.0-9A-Za-z]++)"
_JSON_VALUE = (
    rf"(?:{_JSON_SCALAR}"
    rf"|\[{_JSON_WS}(?:{_JSON_SCALAR}(?:{_JSON_WS},{_JSON_WS}{_JSON_SCALAR})*+)?{_JSON_WS}\]"
    rf"|\[{_JSON_WS}\n(?:{_JSON_WS}{_JSON_SCALAR}{_JSON_WS},{_JSON_WS}\n)*+{_JSON_WS}{_JSON_SCALAR}{_JSON_WS}\n"
    rf"{_JSON_WS}\])"
)
_JSON_PAIR = rf"{_JSON_STR}{_JSON_WS}:{_JSON_WS}{_JSON_VALUE}"
#: A rule object whose keys each start a line: `{`, a line break, then `"key": value` pairs each
#: on a line of its own (a list value may take one line an item), the `}` on a line of its own.
#: Group 1: the object; group 2: the `,` after it, if any.
_JSON_FLAT_RULE = re.compile(
    rf"\s*+(\{{{_JSON_WS}\n{_JSON_WS}{_JSON_PAIR}(?:{_JSON_WS},{_JSON_WS}\n{_JSON_WS}{_JSON_PAIR})*+"
    rf"{_JSON_WS}\n{_JSON_WS}\}})\s*+(,)?"
)
#: A rule object on one line of its own (what `json.dumps` writes item by item): `{"key": value, ...}`
#: with values on that line. Group 1: the object; group 2: the `,` after it, if any.
_JSON_LINE_PAIR = (
    rf"{_JSON_STR}{_JSON_WS}:{_JSON_WS}(?:{_JSON_SCALAR}"
    rf"|\[{_JSON_WS}(?:{_JSON_SCALAR}(?:{_JSON_WS},{_JSON_WS}{_JSON_SCALAR})*+)?{_JSON_WS}\])"
)
_JSON_LINE_RULE = re.compile(
    rf"\s*+(\{{{_JSON_WS}{_JSON_LINE_PAIR}(?:{_JSON_WS},{_JSON_WS}{_JSON_LINE_PAIR})*+{_JSON_WS}\}})\s*+(,)?"
)
#: In a one-line rule: each string, and whether it is a key (followed by `:`).
_JSON_LINE_KEYS = re.compile(rf"({_JSON_STR}){_JSON_WS}(:)?")
#: In a flat rule: each line break, and the key that starts the line after it (else "").
_JSON_FLAT_LINES = re.compile(rf"\n{_JSON_WS}(?:({_JSON_STR}){_JSON_WS}:)?")


class _Layout:
    """Where a rule's keys are, relative to the rule's first line: `offsets` holds each key's first
    occurrence, `duplicates` the later ones as (key, offset, offset of the first)."""

    __slots__ = ("duplicates", "offsets")

    def __init__(self, keys: Iterable[tuple[str, int]]) -> None:
        self.offsets: dict[str, int] = {}
        self.duplicates: list[tuple[str, int, int]] = []
        for key, offset in keys:
            first = self.offsets.get(key)
            if first is None:
                self.offsets[key] = offset
            else:
                self.duplicates.append((key, offset, first))


class _FieldLines(Mapping[str, int]):
    """A rule's field lines (a read-only mapping, equal to the dict it stands for) kept as the rule's
    line and offsets shared by every rule of the same layout: ~50 bytes a rule, not a dict's ~270."""

    __slots__ = ("_line", "_offsets")

    def __init__(self, line: int, offsets: dict[str, int]) -> None:
        self._line = line
        self._offsets = offsets

    def __getitem__(self, key: str) -> int:
        return self._line + self._offsets[key]

    def __contains__(self, key: object) -> bool:
        return key in self._offsets

    def __len__(self) -> int:
        return len(self._offsets)

    def __iter__(self) -> Iterator[str]:
        return iter(self._offsets)

    def get(self, key: str, default: Any = None) -> Any:
        offset = self._offsets.get(key)
        return default if offset is None else self._line + offset

    def __repr__(self) -> str:
        return repr(dict(self))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_FieldLines, (self._line, self._offsets))


class _Layouts:
    """`_Layout`s shared by a hashable description of the layout (a bounded number of them)."""

    __slots__ = ("_known",)
    _LIMIT = 4096

    def __init__(self) -> None:
        self._known: dict[Any, _Layout] = {}

    def get(self, described: Any, keys: Callable[[Any], Iterable[tuple[str, int]]]) -> _Layout:
        """The layout `described`; `keys(described)` lists its keys and offsets when it is new."""
        layout = self._known.get(described)
        if layout is None:
            layout = _Layout(keys(described))
            if len(self._known) < self._LIMIT:
                self._known[described] = layout
        return layout


@dataclass(slots=True)
class _JsonItem:
    line: int
    layout: _Layout


@dataclass(slots=True)
class _JsonLocations:
    top_keys: list[tuple[str, int]] = field(default_factory=list)
    rules: list[_JsonItem] = field(default_factory=list)


def _json_key(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    try:
        value = json.loads(token)
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


def _flat_keys(found: tuple[str, ...]) -> list[tuple[str, int]]:
    return [(_json_key(key), n) for n, key in enumerate(found, 1) if key]


def _line_keys(found: tuple[Any, ...]) -> list[tuple[str, int]]:
    return [(_json_key(key), 0) for key in found[1:]]


def _json_locations(text: str, fast: bool = True) -> _JsonLocations:
    """Lines of the top-level keys, and of each item of the (last) top-level `rules` array and
    its keys. Only called on text `json.loads` accepted, so a simple tokenizer is exact.
    `fast`: rules of the flat shape are matched whole (see above)."""
    found = _JsonLocations()
    depth = 0
    line = 1
    last = 0
    pos = 0
    top_key: str | None = None
    rules_depth = -1  # depth inside the `rules` array (2) while in it, else -1
    expect_item = False
    items: list[_JsonItem] = []
    keys: list[tuple[str, int]] = []  # the current item's keys and their lines (token by token)
    count = text.count
    search = _JSON_TOKEN.search
    flat_lines = _JSON_FLAT_LINES.findall
    line_keys = _JSON_LINE_KEYS.findall
    # (matcher, the item's layout description, its keys and offsets): indented items, one-line items
    shapes: tuple[tuple[Callable[[str, int], re.Match[str] | None], Callable[[str], tuple[Any, ...]],
                        Callable[[Any], Iterable[tuple[str, int]]]], ...] = (
        (_JSON_FLAT_RULE.match, lambda item: tuple(flat_lines(item)), _flat_keys),
        (_JSON_LINE_RULE.match, lambda item: (None, *[k for k, colon in line_keys(item) if colon]), _line_keys),
    )
    layouts = _Layouts()
    shared = layouts.get
    while True:
        if expect_item and fast:
            matched = False
            for match, describe, keys_of in shapes:
                m = match(text, pos)
                if m is None:
                    continue
                matched = True
                _end_item(items, keys, layouts)
                while m is not None:  # one rule after the other, as long as they keep this shape
                    start = m.start(1)
                    line += count("\n", last, start)
                    last = start
                    items.append(_JsonItem(line, shared(describe(m.group(1)), keys_of)))
                    pos = m.end()
                    if m.group(2) is None:
                        expect_item = False
                        break
                    m = match(text, pos)
                break
            if matched:
                continue
        m = search(text, pos)
        if m is None:
            break
        start = m.start()
        pos = m.end()
        line += count("\n", last, start)
        last = start
        c = text[start]
        if depth == rules_depth and expect_item and c not in ",]":
            _end_item(items, keys, layouts)
            items.append(_JsonItem(line, _NO_KEYS))
            expect_item = False
        if c == '"':
            if m.group(2) is not None:
                if depth == 1:
                    top_key = _json_key(m.group(1))
                    found.top_keys.append((top_key, line))
                elif depth == 3 and rules_depth == 2 and items:
                    keys.append((_json_key(m.group(1)), line - items[-1].line))
        elif c in "{[":
            depth += 1
            if c == "[" and depth == 2 and top_key == "rules":
                _end_item(items, keys, layouts)
                items = []
                found.rules = items
                rules_depth = 2
                expect_item = True
        elif c in "}]":
            if depth == rules_depth:
                rules_depth = -1
            depth -= 1
        elif c == ",":
            if depth == rules_depth:
                expect_item = True
    _end_item(items, keys, layouts)
    return found


_NO_KEYS = _Layout(())


def _end_item(items: list[_JsonItem], keys: list[tuple[str, int]], layouts: _Layouts) -> None:
    """Give the item scanned token by token (the last of `items`) the layout of its `keys`."""
    if keys:
        items[-1].layout = layouts.get(tuple(keys), list)
        keys.clear()


def _loads_json(text: str, source: str, fast: bool = True) -> tuple[RuleSet, list[Problem]]:
    problems: list[Problem] = []
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(
            Problem(
                "error",
                "file",
                f"not valid JSON: {exc.msg} (column {exc.colno})",
                line=exc.lineno,
                code="syntax",
                source=source,
            )
        )
        return RuleSet(), problems
    except (ValueError, RecursionError, MemoryError) as exc:
        problems.append(
            Problem(
                "error", "file", f"not valid JSON: {exc}", line=None, code="syntax", source=source
            )
        )
        return RuleSet(), problems

    try:
        where = _json_locations(text, fast)
    except (ValueError, RecursionError, IndexError):  # pragma: no cover - defensive
        where = _JsonLocations()

    if not isinstance(doc, dict):
        problems.append(
            Problem(
                "error",
                "rules",
                "the file must be an object with a `rules` list (and optionally `allowed_hosts`), "
                f"got {_describe(doc)}",
                line=1,
                code="type",
                source=source,
            )
        )
        return RuleSet(), problems

    top_lines: dict[str, int] = {}
    for key, key_line in where.top_keys:
        if key in top_lines:
            problems.append(
                Problem(
                    "error",
                    key,
                    f"'{_short(key)}' is set twice (first on line {top_lines[key]}): keep one",
                    line=key_line,
                    code="duplicate-key",
                    source=source,
                )
            )
        else:
            top_lines[key] = key_line
    # JSON keeps the last of duplicate keys: point at that one.
    last_lines = dict(where.top_keys)
    for key in doc:
        if key not in FILE_FIELDS:
            problems.append(_top_level_unknown(key, last_lines.get(key, 1), source))
    hosts = _check_allowed_hosts(
        doc.get("allowed_hosts"), last_lines.get("allowed_hosts", 1), source, problems
    )

    rules = doc.get("rules")
    rules_line = last_lines.get("rules", 1)
    lifecycle_entries: Iterable[_RawRule] = ()
    if "lifecycle" in doc:
        entries = doc["lifecycle"]
        if not isinstance(entries, list):
            problems.append(Problem("error", "lifecycle", f"must be a list of entry objects, got {_describe(entries)}",
                                    line=last_lines.get("lifecycle", 1), code="type", source=source))
            return RuleSet((), hosts), problems
        lifecycle_line = last_lines.get("lifecycle", 1)
        lifecycle_entries = _lifecycle((_RawRule(e, lifecycle_line) for e in entries), source, problems)
        if rules is None:
            return _build(lifecycle_entries, hosts, problems, source)
    if rules is None:
        problems.append(
            Problem("error", "rules", _NO_RULES, line=rules_line, code="required", source=source)
        )
        return RuleSet((), hosts), problems
    if not isinstance(rules, list):
        problems.append(
            Problem(
                "error",
                "rules",
                f"must be a list of rule objects, got {_describe(rules)}",
                line=rules_line,
                code="type",
                source=source,
            )
        )
        return RuleSet((), hosts), problems

    located = where.rules if len(where.rules) == len(rules) else []

    def raw_rules() -> Iterable[_RawRule]:
        for i, data in enumerate(rules):
            if not located:
                yield _RawRule(data, rules_line)
                continue
            item = located[i]
            line, layout = item.line, item.layout
            for key, offset, first in layout.duplicates:
                problems.append(
                    Problem(
                        "error",
                        key,
                        f"'{_short(key)}' is set twice in this rule "
                        f"(first on line {line + first}): "
                        "keep one",
                        line=line + offset,
                        index=i,
                        code="duplicate-key",
                        source=source,
                    )
                )
            yield _RawRule(data, line, _FieldLines(line, layout.offsets), bool(layout.duplicates))

    return _build(chain(raw_rules(), lifecycle_entries), hosts, problems, source)


# -- CSV ------------------------------------------------------------------------------------------
_CSV_INT_FIELDS = frozenset(f.name for f in FIELDS if f.kind in ("status", "seconds", "integer"))  # "ramp" stays text
_CSV_BOOL_FIELDS = frozenset(f.name for f in FIELDS if f.kind == "flag")
_CSV_LIST_FIELDS = frozenset(f.name for f in FIELDS if f.is_list)
# kept exactly as written
_CSV_RAW_FIELDS = frozenset(f.name for f in FIELDS if f.kind in ("pattern", "regex", "target", "note"))


def _csv_message(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        longest = max(limit.size for limit in FIELD_LIMITS.values())
        return (
            f"a cell is longer than {csv.field_size_limit()} characters: "
            f"no field may hold more than {longest} bytes"
        )
    return f"not valid CSV: {exc}"


def _loads_csv(text: str, source: str) -> tuple[RuleSet, list[Problem]]:
    problems: list[Problem] = []
    hosts: tuple[str, ...] = ()

    # Leading comment lines (and blank lines) come before the header.
    offset = 0
    skipped = 0
    while offset < len(text):
        end = text.find("\n", offset)
        end = len(text) if end == -1 else end
        physical = text[offset:end].rstrip("\r")
        stripped = physical.strip()
        if stripped and not stripped.startswith("#"):
            break
        match = _CSV_COMMENT_HOSTS.match(stripped)
        if match:
            names = [h for h in (p.strip() for p in match.group(1).split(",")) if h]
            hosts = _check_allowed_hosts(names, skipped + 1, source, problems)
        skipped += 1
        offset = end + 1
    body = text[offset:] if offset < len(text) else ""

    reader = csv.reader(io.StringIO(body, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.append(
            Problem(
                "error",
                "file",
                _csv_message(exc),
                line=skipped + 1,
                code="syntax",
                source=source,
            )
        )
        return RuleSet((), hosts), problems
    header_line = skipped + 1
    if header is None:
        problems.append(
            Problem(
                "error",
                "rules",
                f"the file has no header row: start with the column names, such as from,to,status "
                f"(valid columns: {', '.join(RULE_FIELDS)})",
                line=header_line,
                code="required",
                source=source,
            )
        )
        return RuleSet((), hosts), problems

    columns: list[str | None] = []
    seen: dict[str, int] = {}
    first_header_problem = len(problems)
    for position, raw_name in enumerate(header):
        name = raw_name.strip()
        if not name:
            columns.append(None)
            continue
        if name not in _RULE_FIELD_SET:
            problems.append(
                Problem(
                    "error",
                    name,
                    _unknown_message(name, RULE_FIELDS, "column"),
                    line=header_line,
                    code="unknown-field",
                    source=source,
                )
            )
            columns.append(None)
            continue
        if name in seen:
            problems.append(
                Problem(
                    "error",
                    name,
                    f"column '{name}' appears twice in the header (columns {seen[name] + 1} and "
                    f"{position + 1}): keep one",
                    line=header_line,
                    code="duplicate-key",
                    source=source,
                )
            )
            columns.append(None)
            continue
        seen[name] = position
        columns.append(name)
    if not seen and any("/" in cell for cell in header):  # a row of paths or URLs, not a header
        del problems[first_header_problem:]
        problems.append(
            Problem(
                "error",
                "from",
                f"the first row holds paths, not a rule file's header naming its columns "
                f"({', '.join(RULE_FIELDS)}); a CSV from another tool needs its import format "
                f"(`--format cloudflare-csv` for a Cloudflare Bulk Redirects list, `--format "
                f"wordpress-redirection` for the WordPress Redirection plugin's export)",
                line=header_line,
                code="required",
                source=source,
            )
        )
        return RuleSet((), hosts), problems
    missing = []
    if "from" not in seen and "from_regex" not in seen:
        missing.append("a `from` or `from_regex` column")
    if "to" not in seen:
        missing.append("a `to` column")
    if missing:
        problems.append(
            Problem(
                "error",
                "to" if "to" not in seen else "from",
                f"the header needs {' and '.join(missing)} "
                f"(valid columns: {', '.join(RULE_FIELDS)})",
                line=header_line,
                code="required",
                source=source,
            )
        )
        return RuleSet((), hosts), problems

    def raw_rules() -> Iterable[_RawRule]:
        # A generator: each row is dropped once its rule is built. Its problems (a row that is too
        # wide, a syntax error) come before the rules' problems, as `_build(defer=True)` keeps them.
        count = 0
        previous = reader.line_num
        width = len(header)
        same_line: dict[tuple[str, ...], dict[str, int]] = {}  # every field is on the row's line
        try:
            for row in reader:
                line = skipped + previous + 1
                previous = reader.line_num
                if not "".join(row).strip():
                    continue
                broken = False
                if len(row) > width and "".join(row[width:]).strip():
                    problems.append(
                        Problem(
                            "error",
                            "rules",
                            f"this row has {len(row)} cells but the header names {width} columns",
                            line=line,
                            index=count,
                            code="columns",
                            source=source,
                        )
                    )
                    broken = True
                data: dict[str, Any] = {}
                for column, cell in zip(columns, row, strict=False):
                    if column is None:
                        continue
                    if column in _CSV_RAW_FIELDS:
                        if cell.strip():
                            data[column] = cell
                        continue
                    cell = cell.strip()
                    if not cell:
                        continue
                    if column in _CSV_INT_FIELDS:
                        data[column] = (
                            int(cell) if _CSV_INT.fullmatch(cell) and len(cell) <= 4000 else cell
                        )
                    elif column in _CSV_BOOL_FIELDS:
                        data[column] = _CSV_BOOLS.get(cell.lower(), cell)
                    elif column in _CSV_LIST_FIELDS:
                        data[column] = [part for part in _CSV_LIST_SPLIT.split(cell) if part]
                    else:
                        data[column] = cell
                count += 1
                described = tuple(data)
                offsets = same_line.get(described)
                if offsets is None:
                    offsets = dict.fromkeys(described, 0)
                    if len(same_line) < _Layouts._LIMIT:
                        same_line[described] = offsets
                yield _RawRule(data, line, _FieldLines(line, offsets), broken)
        except csv.Error as exc:
            problems.append(
                Problem(
                    "error",
                    "file",
                    _csv_message(exc),
                    line=skipped + previous + 1,
                    code="syntax",
                    source=source,
                )
            )

    return _build(raw_rules(), hosts, problems, source, defer=True)
