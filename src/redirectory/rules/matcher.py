"""The compiled matcher: which rule answers a (host, path, method, time).

Precedence (first wins):
1. host-specific rules (`from: //host/...`) before any-host rules;
2. within each: exact rules (a hash map, O(1)) before pattern rules (a segment trie);
3. among patterns, more literal segments first, then `{name}` before `{name:path}`;
4. `priority` (higher first) breaks remaining ties, then file order;
5. regex rules (`from_regex`) last, only when nothing else matched: by priority, then file order.
A candidate whose `methods` exclude the request method, or whose window does not hold, is
skipped and the next one is tried.

Lookup cost does not grow with the number of exact or pattern rules: one dict probe, and a trie
walk bounded by the number of path segments. The matcher is updated in place (`add`, `remove`)
so a change to a 100k-rule table does not rebuild it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2

from redirectory.rules.model import Rule
from redirectory.rules.patterns import Param, PathPattern, Target, parse_source, parse_target
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE, TABLE

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False

Values = dict[str, str | None]


def compile_regex(pattern: str, case_insensitive: bool = False) -> Any:
    """Compile user-supplied regex with RE2 (linear time, no ReDoS). Raises re2.error."""
    return re2.compile(("(?i)" if case_insensitive else "") + pattern, _RE2_OPTIONS)


@dataclass(slots=True, eq=False)
class CompiledRule:
    """A rule plus everything the hot path needs, computed once."""

    id: str
    rule: Rule
    pattern: PathPattern | None
    regex: Any
    target: Target
    rank: tuple[int, ...]
    cache_control: str | None
    has_window: bool

    def accepts(self, method: str, now: datetime | None) -> bool:
        rule = self.rule
        if rule.methods is not None and method not in rule.methods:
            return False
        return not (self.has_window and now is not None and not rule.active_at(now))


def compile_rule(
    rule: Rule, rule_id: str = "", default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE
) -> CompiledRule:
    """Compile one (already validated) rule. Raises PatternError / re2.error on bad input."""
    pattern = parse_source(rule.source) if rule.source is not None else None
    regex = compile_regex(rule.source_regex, rule.case_insensitive) if rule.source_regex is not None else None
    target = parse_target(rule.to)
    if pattern is not None:
        kind = 0 if pattern.is_exact else 1
        rank = (
            0 if pattern.host else 1,
            kind,
            -pattern.literal_count,
            1 if pattern.tail else 0,
            -rule.priority,
            rule.position,
        )
    else:
        rank = (1, 2, 0, 0, -rule.priority, rule.position)
    max_age = rule.cache
    if max_age is None and TABLE[rule.status].permanent:
        max_age = default_permanent_max_age
    cache_control = f"max-age={max_age}" if max_age is not None else None
    has_window = rule.starts is not None or rule.ends is not None
    return CompiledRule(rule_id or rule.id or "", rule, pattern, regex, target, rank, cache_control, has_window)


@dataclass(slots=True)
class _Node:
    children: dict[str, _Node] = field(default_factory=dict)
    param: _Node | None = None
    terminal: list[CompiledRule] = field(default_factory=list)  # pattern ends here
    tail: list[CompiledRule] = field(default_factory=list)  # `{name:path}` starts here

    def empty(self) -> bool:
        return not (self.children or self.param or self.terminal or self.tail)


class Matcher:
    """Compiled rule table. Not thread-safe for writers: update it from one thread."""

    def __init__(self, rules: Iterable[Rule] = (), *, default_permanent_max_age: int = DEFAULT_PERMANENT_MAX_AGE):
        self.default_permanent_max_age = default_permanent_max_age
        self._by_id: dict[str, CompiledRule] = {}
        self._exact: dict[tuple[str | None, str], list[CompiledRule]] = {}
        self._exact_ci: dict[tuple[str | None, str], list[CompiledRule]] = {}
        self._tries: dict[tuple[str | None, bool], _Node] = {}
        self._regex: list[CompiledRule] = []
        self._regex_set: Any = None
        self._hosts: set[str] = set()
        self._host_counts: dict[str, int] = {}
        self._anon = 0
        self.windows = 0  # number of rules with a time window (decisions may depend on time)
        for rule in rules:
            self.add(rule)

    # -- maintenance -------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._by_id)

    def rules(self) -> list[Rule]:
        return [c.rule for c in sorted(self._by_id.values(), key=lambda c: c.rule.position)]

    def get(self, rule_id: str) -> CompiledRule | None:
        return self._by_id.get(rule_id)

    @property
    def has_host_rules(self) -> bool:
        return bool(self._hosts)

    def add(self, rule: Rule, rule_id: str | None = None) -> CompiledRule:
        """Add (or replace, by id) one rule. Disabled rules are kept out of matching.

        The id is `rule_id`, else `rule.id`, else a generated one (`rule-N`).
        """
        key = rule_id or rule.id
        if key is None:
            self._anon += 1
            key = f"rule-{self._anon}"
        if key in self._by_id:
            self.remove(key)
        compiled = compile_rule(rule, key, self.default_permanent_max_age)
        self._by_id[key] = compiled
        if not rule.enabled:
            return compiled
        if compiled.has_window:
            self.windows += 1
        if compiled.regex is not None:
            self._regex.append(compiled)
            self._regex.sort(key=lambda c: c.rank)
            self._regex_set = None
            return compiled
        pattern = compiled.pattern
        assert pattern is not None
        if pattern.host:
            self._host_counts[pattern.host] = self._host_counts.get(pattern.host, 0) + 1
            self._hosts.add(pattern.host)
        if pattern.is_exact:
            path = pattern.exact_path
            table = self._exact_ci if rule.case_insensitive else self._exact
            exact_key = (pattern.host, path.lower() if rule.case_insensitive else path)
            bucket = table.setdefault(exact_key, [])
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

    def remove(self, rule_id: str) -> Rule | None:
        compiled = self._by_id.pop(rule_id, None)
        if compiled is None:
            return None
        rule = compiled.rule
        if not rule.enabled:
            return rule
        if compiled.has_window:
            self.windows -= 1
        if compiled.regex is not None:
            self._regex.remove(compiled)
            self._regex_set = None
            return rule
        pattern = compiled.pattern
        assert pattern is not None
        if pattern.host:
            left = self._host_counts[pattern.host] - 1
            if left:
                self._host_counts[pattern.host] = left
            else:
                del self._host_counts[pattern.host]
                self._hosts.discard(pattern.host)
        if pattern.is_exact:
            path = pattern.exact_path
            table = self._exact_ci if rule.case_insensitive else self._exact
            key = (pattern.host, path.lower() if rule.case_insensitive else path)
            bucket = table[key]
            bucket.remove(compiled)
            if not bucket:
                del table[key]
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

    def release(self) -> Iterator[None]:
        """Empty the matcher a little at a time: each step frees a few objects and yields, so that a
        big table no longer served can be freed between other work instead of in one go."""
        for table in (self._exact, self._exact_ci):
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
        self._regex.clear()
        self._regex_set = None
        self._hosts.clear()
        self._host_counts.clear()
        self.windows = 0
        while self._by_id:
            self._by_id.popitem()
            yield

    # -- lookup ------------------------------------------------------------------------
    def match(
        self, path: str, method: str = "GET", host: str | None = None, now: datetime | None = None
    ) -> tuple[CompiledRule, Values] | None:
        """The winning rule for a normalised path, with its placeholder values."""
        for candidate, values in self.candidates(path, host):
            if candidate.accepts(method, now):
                return candidate, values
        return None

    def candidates(self, path: str, host: str | None = None) -> Iterator[tuple[CompiledRule, Values]]:
        """Every rule whose `from` matches, in precedence order (methods and windows not checked)."""
        hosts: list[str | None] = [None]
        if host is not None and host in self._hosts:
            hosts = [host, None]
        lower: str | None = None
        for h in hosts:
            key = (h, path)
            exact = self._exact.get(key)
            if self._exact_ci:
                lower = path.lower()
                exact_ci = self._exact_ci.get((h, lower))
                if exact_ci:
                    exact = sorted((exact or []) + exact_ci, key=lambda c: c.rank)
            if exact:
                for c in exact:
                    yield c, {}
            if self._tries:
                found = self._trie_candidates(path, h)
                if found:
                    found.sort(key=lambda cv: cv[0].rank)
                    yield from found
        if self._regex:
            yield from self._regex_candidates(path)

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

    def _regex_candidates(self, path: str) -> Iterator[tuple[CompiledRule, Values]]:
        regexes = self._regex
        if len(regexes) > 8:
            if self._regex_set is None:
                rset = re2.Set.SearchSet(_RE2_OPTIONS)
                for c in regexes:
                    rset.Add(("(?i)" if c.rule.case_insensitive else "") + (c.rule.source_regex or ""))
                rset.Compile()
                self._regex_set = rset
            indices = sorted(self._regex_set.Match(path) or ())
            selected = [regexes[i] for i in indices]
        else:
            selected = regexes
        for c in selected:
            m = c.regex.search(path)
            if m is not None:
                yield c, dict(m.groupdict())
