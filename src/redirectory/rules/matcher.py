r"""The compiled matcher: which rule answers a (host, path, method, time).

Precedence (first wins):
1. host-specific rules (`from: //host/...`) before any-host rules;
2. within each: exact rules (a hash map, O(1)) before pattern rules (a segment trie);
3. among patterns, more literal segments first, then `{name}` before `{name:path}`;
4. `priority` (higher first) breaks remaining ties, then file order;
5. regex rules (`from_regex`) last, only when nothing else matched: by priority, then file order.
   A `from_regex` that starts with `^//` is host-specific: it is matched against `//host/path` (a
   normalised path never starts with `//`), after the host's exact and pattern rules and before
   any-host rules, as rule 1 says (`patterns.HOST_REGEX_PREFIX`); one whose host is written
   literally (`^//a\.example/...`) is tried for that host alone (a set per host).
   A `from_regex` with `regex_query` reads the path and the query as one text (`/a?x=1`, the path
   alone when the request has no query), as nginx's `$request_uri` does; it keeps its place among
   the regexes (`_Regexes`: one group of sets per text, merged in rank order).
A candidate whose `methods` exclude the request method, whose window does not hold, whose
`scheme` is not the request's, or whose query conditions (`query_match`, `query_exact`:
`querymatch`) the request's query does not meet, is skipped and the next one is tried. Between
rules of equal path precedence (rules 1-3), one with query or scheme conditions comes before one
without, whatever their priorities: the more specific request wins, as a rule for `GET` beats one
for every method only by its place.

Lookup cost does not grow with the number of exact or pattern rules: one dict probe, and a trie
walk bounded by the number of path segments. Regex rules are matched by a sharded RE2 set
(`regexset`): linear in the path for any number of them. The matcher is updated in place (`add`,
`remove`) so a change to a 100k-rule table does not rebuild it; the regex set is compiled lazily,
on the first match after a change (or by `prepare`).

Compact mode (`Matcher(compact=True)`, used by the gateway alone): an exact rule (a `from` without
placeholders, enabled, the only rule for its path) is kept as a small record instead of a compiled
rule: `(id, to, profile, position[, source])`, where the profile is one shared tuple of the fields
many rules have in common (status, query, methods, window, cache, priority, case_insensitive), and
`source` is there only when the `from` text differs from the lookup key. A `CompiledRule` is made
from it when a request matches it (a bounded cache keeps the recent ones). In compact mode
`rules()` and `get()` give such rules without `tags`, `note`, `line` and `field_lines`.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import re2

from redirectory.rules import lifecycle, phases, querymatch, querypolicy
from redirectory.rules.model import Rule
from redirectory.rules.patterns import (
    OWN_HOST,
    Param,
    PathPattern,
    Target,
    is_host_regex,
    parse_source,
    parse_target,
    split_host_regex,
)
from redirectory.rules.regexset import RegexSet
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, NOT_REDIRECTED, RAMP, RAMP_DAYS, TABLE, ramp_max_age

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

Values = dict[str, str | None]

#: A `from` that is already a normalised exact path with no dot segment and no escape: its lookup
#: key is its own text (anything else goes through `parse_source`).
_PLAIN_PATH = re.compile(r"(?:/[A-Za-z0-9\-_~!$&'()*+,;=:@][A-Za-z0-9\-._~!$&'()*+,;=:@]*)+/?|/")
#: A `to` without placeholders, escapes or an origin: its parsed form is itself.
_PLAIN_TARGET = re.compile(r"/(?![/\\])[^\x00-\x20\x7f{}%]*")
#: A canonical (lower-case) UUID: compact records keep it as an int.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Profiles beyond which a new target prefix is not given its own profile.
MAX_PROFILES = 4096
#: Compiled rules made from compact records that are kept (the most recently made first out last).
MATERIALISED_CACHE = 16384

#: In a `to`: the target's host is the request's (`patterns.OWN_HOST`).
OWN_HOST_TARGET = "://" + OWN_HOST
# Not memoised: the compact matcher would otherwise fill the parsers' caches with every rule.
_parse_source_uncached: Callable[[str], PathPattern] = inspect.unwrap(parse_source)
_parse_target_uncached: Callable[[str], Target] = inspect.unwrap(parse_target)


def compile_regex(pattern: str, case_insensitive: bool = False) -> Any:
    """Compile user-supplied regex with RE2 (linear time, no ReDoS). Raises re2.error."""
    return re2.compile(("(?i)" if case_insensitive else "") + pattern, _RE2_OPTIONS)


@dataclass(slots=True, eq=False)
class CompiledRule:
    """A rule plus everything the hot path needs, computed once.

    `regex` (the `from_regex`, compiled) is compiled on first use when the rule was compiled
    with `lazy_regex` (the matcher does: its regex set finds the candidates); `pattern` (the
    `from`, parsed) likewise for rules made from compact records.
    """

    id: str
    rule: Rule
    parsed_pattern: PathPattern | None
    compiled_regex: Any
    target: Target
    rank: tuple[int, ...]
    cache_control: str | None
    has_window: bool
    #: the parsed `query_match` (empty without one); None when the rule has no query condition
    query_conditions: querymatch.Conditions | None = None
    #: the parsed `query` policy (what the target gets; what is stripped before the conditions)
    query_policy: querypolicy.Policy = querypolicy.Policy()
    #: `Deprecation`, `Sunset` and `Link` (`lifecycle`), sent with every answer of the rule
    lifecycle_headers: tuple[tuple[str, str], ...] = ()
    #: (starts, status, Cache-Control) of each later phase, in order (`phases`); a Cache-Control of
    #: RAMP is computed per request
    phases: tuple[tuple[datetime, int, str | None], ...] = ()
    #: `cache: ramp`: max-age from the days since the rule changed (`semantics.ramp_max_age`)
    ramped: bool = False

    @property
    def timed(self) -> bool:
        """Whether its answers depend on the time (a window, phases, a ramp)."""
        return self.has_window or bool(self.phases) or self.ramped

    def answer_at(self, now: datetime | None) -> tuple[int, str | None]:
        """The status and Cache-Control the rule answers with at `now` (its phase's, if one started;
        a ramp's max-age for the whole days since the rule changed)."""
        status, cache_control = self.rule.status, self.cache_control
        if self.phases and now is not None:
            for starts, phase_status, phase_cache in self.phases:
                if starts > now:
                    break
                status, cache_control = phase_status, phase_cache
        if cache_control == RAMP:
            changed = self.rule.changed_at
            days = (now - changed).days if now is not None and changed is not None else 0
            cache_control = f"max-age={ramp_max_age(days)}"
        return status, cache_control

    @property
    def pattern(self) -> PathPattern | None:
        if self.parsed_pattern is None and self.rule.source is not None:
            self.parsed_pattern = _parse_source_uncached(self.rule.source)
        return self.parsed_pattern

    @property
    def regex(self) -> Any:
        if self.compiled_regex is None and self.rule.source_regex is not None:
            self.compiled_regex = compile_regex(self.rule.source_regex, self.rule.case_insensitive)
        return self.compiled_regex

    def accepts(self, method: str, now: datetime | None, query: str = "", scheme: str | None = None) -> bool:
        """Whether the rule answers a request its `from` matched (`scheme` None: not known, so any)."""
        rule = self.rule
        if rule.methods is not None and method not in rule.methods:
            return False
        if self.has_window and now is not None and not rule.active_at(now):
            return False
        if rule.scheme is not None and scheme is not None and scheme != rule.scheme:
            return False
        if self.query_conditions is None:
            return True
        return querymatch.satisfied(self.query_conditions, rule.query_exact,
                                    querypolicy.without_stripped(query, self.query_policy))


def compile_rule(
    rule: Rule,
    rule_id: str = "",
    default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE,
    *,
    lazy_regex: bool = False,
    memoised: bool = True,
) -> CompiledRule:
    """Compile one (already validated) rule. Raises PatternError / re2.error on bad input
    (with `lazy_regex`, a bad `from_regex` raises only when `regex` is first read). `memoised`
    False parses without the parsers' caches (for rules made one at a time from compact records)."""
    if rule.source is not None:
        pattern: PathPattern | None = (parse_source if memoised else _parse_source_uncached)(rule.source)
    else:
        pattern = None
    regex = None
    if rule.source_regex is not None and not lazy_regex:
        regex = compile_regex(rule.source_regex, rule.case_insensitive)
    if rule.status == NOT_REDIRECTED:
        target = Target(rule.to, None, (rule.to,))  # redirects nowhere: never rendered
    else:
        target = (parse_target if memoised else _parse_target_uncached)(rule.to)
    return _assemble(rule, rule_id or rule.id or "", pattern, regex, target, default_permanent_max_age)


def _assemble(
    rule: Rule,
    rule_id: str,
    pattern: PathPattern | None,
    regex: Any,
    target: Target,
    default_permanent_max_age: int,
    rank: tuple[int, ...] | None = None,
) -> CompiledRule:
    conditions: querymatch.Conditions | None = None
    if rule.query_match is not None or rule.query_exact:
        conditions = querymatch.parse_text(rule.query_match) if rule.query_match is not None else ()
    unconditional = 0 if conditions is not None or rule.scheme is not None else 1
    if rank is not None:
        pass
    elif pattern is not None:
        rank = (
            0 if pattern.host else 1,
            0 if pattern.is_exact else 1,
            -pattern.literal_count,
            1 if pattern.tail else 0,
            unconditional,
            -rule.priority,
            rule.position,
        )
    else:  # a regex: after patterns; a host-specific one (`^//host...`) with the host's rules
        rank = (0 if is_host_regex(rule.source_regex or "") else 1, 2, 0, 0, unconditional, -rule.priority,
                rule.position)
    ramped = rule.cache == RAMP
    max_age = None if ramped else rule.cache
    sem = TABLE.get(rule.status)
    timeline: tuple[tuple[datetime, int, str | None], ...] = ()
    if rule.phases is not None:
        timeline = tuple(
            (starts, status, RAMP if ramped and cache is None and TABLE[status].permanent
             else _cache_control(cache, status, default_permanent_max_age))
            for starts, status, cache in phases.phases(rule.phases))
    if ramped:  # computed per request (`answer_at`): it grows with the days since the rule changed
        cache_control: str | None = RAMP if sem is not None and sem.permanent else None
    else:
        if max_age is None and sem is not None and sem.permanent:
            max_age = default_permanent_max_age
        cache_control = f"max-age={max_age}" if max_age is not None else None
    has_window = rule.starts is not None or rule.ends is not None
    return CompiledRule(rule_id, rule, pattern, regex, target, rank, cache_control, has_window, conditions,
                        querypolicy.policy(rule.query),
                        lifecycle.headers(rule.deprecation, rule.sunset, rule.links) if rule.has_lifecycle else (),
                        timeline, ramped)


def _cache_control(cache: int | None, status: int, default_permanent_max_age: int) -> str | None:
    if cache is None and TABLE[status].permanent:
        cache = default_permanent_max_age
    return f"max-age={cache}" if cache is not None else None


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    terminal: list[CompiledRule] = field(default_factory=list)  # pattern ends here
    tail: list[CompiledRule] = field(default_factory=list)  # `{name:path}` starts here

    def empty(self) -> bool:
        return not (self.children or self.param or self.terminal or self.tail)


#: A compact exact rule: (id, profile, position[, to[, source]]). The id is an int when it is a
#: canonical UUID (its text is made again when needed); `to` is absent when it is the profile's
#: prefix followed by the lookup key, `source` when it is the lookup key itself.
Entry = tuple[Any, ...]
#: A compact rule's id as stored: the UUID's int, else the id text.
IdKey = int | str
#: What an exact key holds: one compact record, or compiled rules in precedence order.
Bucket = Entry | list[CompiledRule]
#: host (None: any host) -> lookup key (the normalised path, lower-cased for case-insensitive rules).
ExactTable = dict[str | None, dict[str, Bucket]]
#: Where a compact rule is: its lookup key alone (any host, case-sensitive), else (host, key, ci).
Location = str | tuple[str | None, str, bool]


def _id_key(rule_id: str) -> IdKey:
    return int(rule_id.replace("-", ""), 16) if _UUID.fullmatch(rule_id) else rule_id


def _id_text(id_key: IdKey) -> str:
    if isinstance(id_key, str):
        return id_key
    h = f"{id_key:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _where(loc: Location) -> tuple[str | None, str, bool]:
    return (None, loc, False) if isinstance(loc, str) else loc


@dataclass(slots=True)
class _Regexes:
    """The `from_regex` rules of one subject (the path, or the path and query), in their sets: any
    host's, `^//host...` ones by their literal host (on `//host/path`), and those of another host
    shape."""

    any: RegexSet[CompiledRule] = field(default_factory=RegexSet)
    by_host: dict[str, RegexSet[CompiledRule]] = field(default_factory=dict)
    other: RegexSet[CompiledRule] = field(default_factory=RegexSet)


class Matcher:
    """Compiled rule table. Not thread-safe for writers: update it from one thread."""

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE,
        compact: bool = False,
    ):
        self.default_permanent_max_age = default_permanent_max_age
        self.compact = compact
        self._by_id: dict[str, CompiledRule] = {}  # every rule not kept as a compact record
        self._exact: ExactTable = {}
        self._exact_ci: ExactTable = {}
        self._tries: dict[tuple[str | None, bool], _Node] = {}
        #: `from_regex` rules on the path, and those on the path and query (`regex_query`)
        self._on_path = _Regexes()
        self._on_uri = _Regexes()
        self._regex_keys: dict[str, tuple[int, ...]] = {}
        self._seq = 0  # insertion order: the last tie-break between regex rules
        self._hosts: set[str] = set()
        self._host_counts: dict[str, int] = {}
        self._anon = 0
        self.windows = 0  # number of timed rules (a window, phases, a ramp): decisions may depend on time
        self.schemes = 0  # number of rules with a scheme condition: decisions may depend on the scheme
        self._own_host_targets = 0  # rules sending to `https://{host}/...`: answers depend on the Host
        self._timed: dict[str, CompiledRule] = {}  # the timed rules not kept as compact records
        self._timed_compact: dict[IdKey, tuple[datetime | None, datetime | None]] = {}  # their windows
        # compact mode
        self._compact_ids: dict[IdKey, Location] = {}
        self._profiles: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        # Compiled rules made from compact records, in two generations: when `_made` is full it
        # becomes `_made_before` (what is used again moves back), and the older one is dropped.
        self._made: dict[IdKey, CompiledRule] = {}
        self._made_before: dict[IdKey, CompiledRule] = {}
        for rule in rules:
            self.add(rule)

    # -- maintenance -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id) + len(self._compact_ids)

    def rules(self) -> list[Rule]:
        """Every rule, in file order (in compact mode, compact rules without tags, note and lines)."""
        found = [c.rule for c in self._by_id.values()]
        for id_key, loc in self._compact_ids.items():
            host, lookup, ci = _where(loc)
            entry = (self._exact_ci if ci else self._exact)[host][lookup]
            assert type(entry) is tuple and entry[0] == id_key
            found.append(self._rule_of(entry, lookup))
        found.sort(key=lambda r: r.position)
        return found

    def get(self, rule_id: str) -> CompiledRule | None:
        compiled = self._by_id.get(rule_id)
        if compiled is None and self._compact_ids:
            id_key = _id_key(rule_id)
            if id_key in self._compact_ids:
                compiled = self._compiled(id_key)
        return compiled

    @property
    def has_host_rules(self) -> bool:
        return (bool(self._hosts) or bool(self._on_path.other) or bool(self._on_uri.other)
                or self._own_host_targets > 0)

    def add(self, rule: Rule, rule_id: str | None = None) -> CompiledRule | None:
        """Add (or replace, by id) one rule. Disabled rules are kept out of matching.

        The id is `rule_id`, else `rule.id`, else a generated one (`rule-N`). Returns the compiled
        rule, or None when the rule is kept as a compact record (compact mode).
        """
        key = rule_id or rule.id
        if key is None:
            self._anon += 1
            key = f"rule-{self._anon}"
        if self.compact:
            id_key = _id_key(key)
            if key in self._by_id or id_key in self._compact_ids:
                self.remove(key)
            if (rule.enabled and rule.source is not None and not rule.has_query_conditions and rule.scheme is None
                    and OWN_HOST_TARGET not in rule.to
                    and rule.status != NOT_REDIRECTED and not rule.has_lifecycle and rule.phases is None
                    and rule.cache != RAMP
                    and self._add_compact(rule, id_key)):
                return None
        elif key in self._by_id:
            self.remove(key)
        regex = rule.source_regex is not None
        compiled = compile_rule(rule, key, self.default_permanent_max_age, lazy_regex=regex)
        self._by_id[key] = compiled
        if not rule.enabled:
            return compiled
        if compiled.timed:
            self.windows += 1
            self._timed[key] = compiled
        if rule.scheme is not None:
            self.schemes += 1
        if OWN_HOST_TARGET in rule.to:
            self._own_host_targets += 1
        if regex:
            self._seq += 1
            order = (*compiled.rank, self._seq)
            source_regex = rule.source_regex or ""
            regexes = self._regex_set(source_regex, 1, rule.regex_query)
            regexes.add(order, ("(?i)" if rule.case_insensitive else "") + source_regex, compiled)
            self._regex_keys[key] = order
            return compiled
        pattern = compiled.pattern
        assert pattern is not None
        if pattern.host:
            self._count_host(pattern.host, 1)
        if pattern.is_exact:
            path = pattern.exact_path
            tables = self._exact_ci if rule.case_insensitive else self._exact
            table = tables.get(pattern.host)
            if table is None:
                table = tables[pattern.host] = {}
            lookup = path.lower() if rule.case_insensitive else path
            bucket = table.get(lookup)
            if bucket is None:
                table[lookup] = [compiled]
            else:
                if type(bucket) is tuple:
                    bucket = [self._promote(bucket, pattern.host, lookup)]
                    table[lookup] = bucket
                assert isinstance(bucket, list)
                bucket.append(compiled)
                bucket.sort(key=lambda c: c.rank)
            return compiled
        node = self._tries.setdefault((pattern.host, rule.case_insensitive), _Node())
        for seg in pattern.segments:
            if isinstance(seg, Param):
                if node.param is None:
                    node.param = _Node()
                node = node.param
            else:
                lit = seg.lower() if rule.case_insensitive else seg
                node = node.children.setdefault(lit, _Node())
        bucket = node.tail if pattern.tail else node.terminal
        bucket.append(compiled)
        bucket.sort(key=lambda c: c.rank)
        return compiled

    def add_plain(self, rows: Iterable[tuple[str, str, str, int, int]]) -> None:
        """Load rules given as `(id, from, to, status, position)` whose every other field has its
        default (enabled, no methods, window, cache or priority, case-sensitive, `query: keep`):
        the bulk of a big table, loaded without building a `Rule` each. Same result as `add` of
        each; in compact mode a plain new path is stored here directly, anything else goes
        through `add`."""
        if not self.compact:
            for rid, source, to, status, position in rows:
                self.add(Rule(to=to, source=source, status=status, id=rid, position=position))
            return
        table = self._exact.setdefault(None, {})
        profiles = self._profiles
        ids = self._compact_ids
        plain_path = _PLAIN_PATH.fullmatch
        for rid, source, to, status, position in rows:
            id_key = _id_key(rid)
            if (source in table or id_key in ids or rid in self._by_id
                    or plain_path(source) is None or status == NOT_REDIRECTED):
                self.add(Rule(to=to, source=source, status=status, id=rid, position=position))
                table = self._exact.setdefault(None, {})  # `add` may have dropped an emptied table
                continue
            prefix = to[: -len(source)] if to.endswith(source) else None
            profile = (status, "keep", None, None, None, None, 0, False, prefix)
            known = profiles.get(profile)
            if known is None and prefix is not None and len(profiles) >= MAX_PROFILES:
                profile = (status, "keep", None, None, None, None, 0, False, None)
                prefix = None
                known = profiles.get(profile)
            if known is None:
                known = profiles[profile] = profile
            table[source] = (id_key, known, position) if prefix is not None else (id_key, known, position, to)
            ids[id_key] = source

    def _add_compact(self, rule: Rule, id_key: IdKey) -> bool:
        """Keep an exact rule as a compact record; False when it is not one (or shares its path)."""
        source = rule.source
        assert source is not None
        host: str | None = None
        if _PLAIN_PATH.fullmatch(source):
            path = source
        else:
            pattern = _parse_source_uncached(source)
            if not pattern.is_exact:
                return False
            host = pattern.host
            path = pattern.exact_path
        ci = rule.case_insensitive
        lookup = path.lower() if ci else path
        tables = self._exact_ci if ci else self._exact
        table = tables.get(host)
        if table is None:
            table = tables[host] = {}
        elif lookup in table:
            return False
        to = rule.to
        plain = host is None and source == lookup
        prefix = to[: -len(lookup)] if plain and to.endswith(lookup) else None
        profile = (
            rule.status, rule.query, rule.methods, rule.starts, rule.ends, rule.cache, rule.priority, ci, prefix
        )
        known = self._profiles.get(profile)
        if known is None and prefix is not None and len(self._profiles) >= MAX_PROFILES:
            # Targets that share no prefix: keep `to` itself rather than one profile per rule.
            profile = (*profile[:-1], None)
            prefix = None
            known = self._profiles.get(profile)
        if known is None:
            known = self._profiles[profile] = profile
        if prefix is not None:
            table[lookup] = (id_key, known, rule.position)
        elif plain:
            table[lookup] = (id_key, known, rule.position, to)
        else:
            table[lookup] = (id_key, known, rule.position, to, source)
        self._compact_ids[id_key] = lookup if host is None and not ci else (host, lookup, ci)
        if host is not None:
            self._count_host(host, 1)
        if rule.starts is not None or rule.ends is not None:
            self.windows += 1
            self._timed_compact[id_key] = (rule.starts, rule.ends)
        return True

    def _count_host(self, host: str, delta: int) -> None:
        left = self._host_counts.get(host, 0) + delta
        if left:
            self._host_counts[host] = left
            self._hosts.add(host)
        else:
            del self._host_counts[host]
            self._hosts.discard(host)

    def remove(self, rule_id: str) -> Rule | None:
        if self._compact_ids:
            loc = self._compact_ids.pop(_id_key(rule_id), None)
            if loc is not None:
                return self._remove_compact(loc)
        compiled = self._by_id.pop(rule_id, None)
        if compiled is None:
            return None
        rule = compiled.rule
        if not rule.enabled:
            return rule
        if compiled.timed:
            self.windows -= 1
            self._timed.pop(rule_id, None)
        if rule.scheme is not None:
            self.schemes -= 1
        if OWN_HOST_TARGET in rule.to:
            self._own_host_targets -= 1
        if rule.source_regex is not None:
            regexes = self._regex_set(rule.source_regex, -1, rule.regex_query)
            regexes.remove(self._regex_keys.pop(rule_id))
            host = split_host_regex(rule.source_regex)
            if host is not None and not regexes:
                del (self._on_uri if rule.regex_query else self._on_path).by_host[host[0]]
            return rule
        pattern = compiled.pattern
        assert pattern is not None
        if pattern.host:
            self._count_host(pattern.host, -1)
        if pattern.is_exact:
            path = pattern.exact_path
            tables = self._exact_ci if rule.case_insensitive else self._exact
            table = tables[pattern.host]
            lookup = path.lower() if rule.case_insensitive else path
            bucket = table[lookup]
            assert isinstance(bucket, list)
            bucket.remove(compiled)
            if not bucket:
                del table[lookup]
                if not table:
                    del tables[pattern.host]
            return rule
        trie_key = (pattern.host, rule.case_insensitive)
        root = self._tries[trie_key]
        trail = [root]
        node = root
        for seg in pattern.segments:
            if isinstance(seg, Param):
                assert node.param is not None
                node = node.param
            else:
                node = node.children[seg.lower() if rule.case_insensitive else seg]
            trail.append(node)
        (node.tail if pattern.tail else node.terminal).remove(compiled)
        # prune empty nodes bottom-up
        for depth in range(len(pattern.segments), 0, -1):
            child, parent = trail[depth], trail[depth - 1]
            if not child.empty():
                break
            seg = pattern.segments[depth - 1]
            if isinstance(seg, Param):
                parent.param = None
            else:
                del parent.children[seg.lower() if rule.case_insensitive else seg]
        if root.empty():
            del self._tries[trie_key]
        return rule

    def _remove_compact(self, loc: Location) -> Rule:
        host, lookup, ci = _where(loc)
        tables = self._exact_ci if ci else self._exact
        table = tables[host]
        entry = table.pop(lookup)
        assert type(entry) is tuple
        if not table:
            del tables[host]
        self._forget(entry[0])
        if host is not None:
            self._count_host(host, -1)
        profile = entry[1]
        if profile[3] is not None or profile[4] is not None:
            self.windows -= 1
            self._timed_compact.pop(entry[0], None)
        return self._rule_of(entry, lookup)

    def release(self) -> Iterator[None]:
        """Empty the matcher a little at a time: each step frees a few objects and yields, so that a
        big table no longer served can be freed between other work instead of in one go."""
        for tables in (self._exact, self._exact_ci):
            while tables:
                _host, table = tables.popitem()
                while table:
                    table.popitem()
                    yield
        stack = list(self._tries.values())
        self._tries.clear()
        while stack:
            node = stack.pop()
            while node.children:
                stack.append(node.children.popitem()[1])
                yield
            if node.param is not None:
                stack.append(node.param)
                node.param = None
            yield
        self._on_path = _Regexes()
        self._on_uri = _Regexes()
        self._regex_keys.clear()
        self._hosts.clear()
        self._host_counts.clear()
        self._profiles.clear()
        self._made.clear()
        self._made_before.clear()
        self.windows = 0
        self.schemes = 0
        self._own_host_targets = 0
        self._timed.clear()
        self._timed_compact.clear()
        while self._compact_ids:
            self._compact_ids.popitem()
            yield
        while self._by_id:
            self._by_id.popitem()
            yield

    def next_change(self, now: datetime) -> datetime | None:
        """The first time after `now` at which a timed rule answers differently (a window opens or
        closes, a phase starts, a ramp's day ends); None when none will. Until then, every decision
        made at `now` holds: the gateway caches answers that long."""
        found: datetime | None = None

        def consider(when: datetime | None) -> None:
            nonlocal found
            if when is not None and when > now and (found is None or when < found):
                found = when

        for starts, ends in self._timed_compact.values():
            consider(starts)
            consider(ends)
        for compiled in self._timed.values():
            rule = compiled.rule
            consider(rule.starts)
            consider(rule.ends)
            for starts, _status, _cache in compiled.phases:
                consider(starts)
            if compiled.ramped and rule.changed_at is not None:
                days = (now - rule.changed_at).days
                if days < RAMP_DAYS:
                    consider(rule.changed_at + timedelta(days=max(days, 0) + 1))
        return found

    def prepare(self) -> Iterator[None]:
        """Compile what `match` would otherwise compile on first use (the regex set's stale shards),
        one shard per step."""
        for family in (self._on_path, self._on_uri):
            for regexes in (family.any, family.other, *family.by_host.values()):
                yield from regexes.prepare()

    # -- compact records -----------------------------------------------------------------
    def _rule_of(self, entry: Entry, lookup: str) -> Rule:
        status, query, methods, starts, ends, cache, priority, ci, prefix = entry[1]
        return Rule(
            to=prefix + lookup if len(entry) == 3 else entry[3],
            source=entry[4] if len(entry) == 5 else lookup,
            status=status,
            methods=methods,
            query=query,
            starts=starts,
            ends=ends,
            cache=cache,
            priority=priority,
            case_insensitive=ci,
            id=_id_text(entry[0]),
            position=entry[2],
        )

    def _make(self, entry: Entry, lookup: str) -> CompiledRule:
        """The compiled rule of a compact record (the last MATERIALISED_CACHE used are kept)."""
        made = self._made.get(entry[0])
        if made is not None:
            return made
        made = self._made_before.pop(entry[0], None)
        if made is None:
            rule = self._rule_of(entry, lookup)
            rule_id = rule.id
            assert rule_id is not None
            source = rule.source
            assert source is not None
            to = rule.to
            target = Target(to, None, (to,)) if _PLAIN_TARGET.fullmatch(to) else _parse_target_uncached(to)
            if len(entry) < 5:
                # The `from` is its own lookup key, a plain normalised path: its rank is known
                # without parsing it (the pattern is parsed if someone asks for it).
                literals = source.count("/") - (1 if source.endswith("/") else 0)
                made = _assemble(rule, rule_id, None, None, target, self.default_permanent_max_age,
                                 rank=(1, 0, -literals, 0, 1, -rule.priority, rule.position))
            else:
                pattern = _parse_source_uncached(source)
                made = _assemble(rule, rule_id, pattern, None, target, self.default_permanent_max_age)
        if len(self._made) >= MATERIALISED_CACHE // 2:
            self._made_before = self._made
            self._made = {}
        self._made[entry[0]] = made
        return made

    def _forget(self, id_key: IdKey) -> None:
        self._made.pop(id_key, None)
        self._made_before.pop(id_key, None)

    def _compiled(self, id_key: IdKey) -> CompiledRule:
        loc = self._compact_ids[id_key]
        host, lookup, ci = _where(loc)
        entry = (self._exact_ci if ci else self._exact)[host][lookup]
        assert type(entry) is tuple
        return self._make(entry, lookup)

    def _promote(self, entry: Entry, host: str | None, lookup: str) -> CompiledRule:
        """Turn a compact record into a full compiled rule (its path gets a second rule)."""
        del self._compact_ids[entry[0]]
        self._forget(entry[0])
        rule = self._rule_of(entry, lookup)
        assert rule.id is not None
        compiled = compile_rule(rule, rule.id, self.default_permanent_max_age)
        self._by_id[rule.id] = compiled
        return compiled

    def _bucket(self, bucket: Bucket, lookup: str) -> list[CompiledRule]:
        if type(bucket) is tuple:
            return [self._make(bucket, lookup)]
        assert isinstance(bucket, list)
        return bucket

    # -- lookup ------------------------------------------------------------------------
    def match(
        self, path: str, method: str = "GET", host: str | None = None, now: datetime | None = None,
        query: str = "", scheme: str | None = None,
    ) -> tuple[CompiledRule, Values] | None:
        """The winning rule for a normalised path (and the request's raw query, without `?`, and its
        scheme), with its placeholder values."""
        if not self._exact_ci and (host is None or (host not in self._hosts and not self._on_path.other
                                                      and not self._on_uri.other)):
            # The common case first: one exact any-host rule answers.
            table = self._exact.get(None)
            bucket = table.get(path) if table is not None else None
            if bucket is not None:
                for candidate in self._bucket(bucket, path):
                    if candidate.accepts(method, now, query, scheme):
                        return candidate, {}
        for candidate, values in self.candidates(path, host, query):
            if candidate.accepts(method, now, query, scheme):
                return candidate, values
        return None

    def candidates(
        self, path: str, host: str | None = None, query: str = "",
    ) -> Iterator[tuple[CompiledRule, Values]]:
        """Every rule whose `from` matches, in precedence order (methods and windows not checked).
        `query` (raw, without `?`) is read by the regexes on the path and query (`regex_query`)."""
        hosts: list[str | None] = [None]
        if host is not None and host in self._hosts:
            hosts = [host, None]
        on_path, on_uri = self._on_path, self._on_uri
        uri = path + "?" + query if query else path
        for h in hosts:
            if h is None and host is not None and (on_path.other or on_uri.other):  # after the host's own rules
                yield from self._regexes(on_path.other, on_uri.other, "//" + host, path, uri)
            exact: list[CompiledRule] | None = None
            table = self._exact.get(h)
            if table is not None:
                bucket = table.get(path)
                if bucket is not None:
                    exact = self._bucket(bucket, path)
            if self._exact_ci:
                table = self._exact_ci.get(h)
                if table is not None:
                    lower = path.lower()
                    bucket = table.get(lower)
                    if bucket is not None:
                        exact = sorted((exact or []) + self._bucket(bucket, lower), key=lambda c: c.rank)
            if exact:
                for c in exact:
                    yield c, {}
            if self._tries:
                found = self._trie_candidates(path, h)
                if found:
                    found.sort(key=lambda cv: cv[0].rank)
                    yield from found
            if h is not None and (on_path.by_host or on_uri.by_host):
                # the host's regexes, after its exact and pattern rules
                yield from self._regexes(on_path.by_host.get(h), on_uri.by_host.get(h), "//" + h, path, uri)
        if on_path.any or on_uri.any:
            yield from self._regexes(on_path.any, on_uri.any, "", path, uri)

    def _regexes(
        self, on_path: RegexSet[CompiledRule] | None, on_uri: RegexSet[CompiledRule] | None, prefix: str,
        path: str, uri: str,
    ) -> Iterator[tuple[CompiledRule, Values]]:
        """The matches of one precedence group's regexes: those on the path (`prefix + path`) and
        those on the path and query (`prefix + uri`), merged in their order."""
        if not on_uri:
            if on_path:
                yield from self._regex_candidates(on_path, prefix + path)
            return
        found = list(self._regex_candidates(on_uri, prefix + uri))
        if on_path:
            found.extend(self._regex_candidates(on_path, prefix + path))
            keys = self._regex_keys
            found.sort(key=lambda cv: keys[cv[0].id])
        yield from found

    def _trie_candidates(self, path: str, host: str | None) -> list[tuple[CompiledRule, Values]]:
        found: list[tuple[CompiledRule, Values]] = []
        segs = path.split("/")[1:]
        for ci in (False, True):
            root = self._tries.get((host, ci))
            if root is None:
                continue
            match_segs = [s.lower() for s in segs] if ci else segs
            self._walk(root, match_segs, segs, 0, [], found)
        return found

    def _walk(
        self,
        node: _Node,
        segs: list[str],
        original: list[str],
        depth: int,
        captured: list[str],
        found: list[tuple[CompiledRule, Values]],
    ) -> None:
        if node.tail:
            rest: str | None = "/".join(original[depth:]) if depth < len(original) else None
            for c in node.tail:
                found.append((c, self._bind(c, captured, rest)))
        if depth == len(segs):
            for c in node.terminal:
                found.append((c, self._bind(c, captured, None)))
            return
        child = node.children.get(segs[depth])
        if child is not None:
            self._walk(child, segs, original, depth + 1, captured, found)
        if node.param is not None and original[depth] != "":
            captured.append(original[depth])
            self._walk(node.param, segs, original, depth + 1, captured, found)
            captured.pop()

    @staticmethod
    def _bind(c: CompiledRule, captured: list[str], rest: str | None) -> Values:
        pattern = c.pattern
        assert pattern is not None
        values: Values = {}
        i = 0
        for seg in pattern.segments:
            if isinstance(seg, Param):
                values[seg.name] = captured[i]
                i += 1
        if pattern.tail:
            values[pattern.tail] = rest
        return values

    def _regex_set(self, source_regex: str, delta: int, on_uri: bool = False) -> RegexSet[CompiledRule]:
        """The regex set a `from_regex` goes in (see the module docstring), counting its host."""
        family = self._on_uri if on_uri else self._on_path
        if not is_host_regex(source_regex):
            return family.any
        split = split_host_regex(source_regex)
        if split is None:
            return family.other
        self._count_host(split[0], delta)
        regexes = family.by_host.get(split[0])
        if regexes is None:
            regexes = family.by_host[split[0]] = RegexSet()
        return regexes

    @staticmethod
    def _regex_candidates(regexes: RegexSet[CompiledRule], text: str) -> Iterator[tuple[CompiledRule, Values]]:
        for c in regexes.match(text):
            regex = c.regex
            m = regex.search(text) if regex is not None else None
            if m is not None:
                # a group that took no part in the match is empty, as in every regex substitution
                # (nginx, Apache, re.sub): `^/a(/(.*))?$` -> `/b/{g2}` gives `/b/` for `/a`
                yield c, {k: "" if v is None else v for k, v in m.groupdict().items()}
