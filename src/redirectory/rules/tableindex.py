"""Validation of a change to a table, at the cost of the change (issue 14, item 6).

Contract:
- `TableIndex(rules, allowed_hosts)` holds what validation needs of a whole table: its rules by id
  (every rule carries its store id, `Rule.id`, and its `position`; positions are distinct and give
  the table's order), the exact rules by path, the duplicate keys, the pattern shapes (ambiguity),
  the pattern and regex rules compiled (`Matcher`), where each rule's target leads (loops and
  chains) and the reverse of that, and every target path sorted (which rules a new rule catches).
  Build: one pass over the rules (about 5 s at 1,000,000 exact rules).
- `index.apply(upserts, removals)` records a committed change: `upserts` are rules with ids (an id
  already there replaces that rule), `removals` ids. Setting `index.allowed_hosts` records a change
  of the table's setting. Neither checks anything.
- `validate_change(index, upserts, removals, allowed_hosts=None, source=None)` returns the
  problems the table after the change has and the table before it lacked (identity: code, rule,
  message) -- exactly what `validate` of the whole table after, minus `validate` of the whole table
  before, would give -- plus every problem with the upserted rules' own fields (their warnings
  too, although an unchanged rule had them before). `Problem.index` is the rule's place in
  `upserts` when the problem is about an upserted rule, None when it is about another rule of the
  table (e.g. an existing rule whose target now redirects again). `allowed_hosts` (None: unchanged)
  is the table's setting after the change. The index is not changed.
- Cost: what the change touches -- the changed rules, the rules sharing their exact path or pattern
  group, the rules whose targets the changed rules catch or caught, and the chains through them --
  not the size of the table. A new pattern rule looks at the target paths under its literal
  prefix, so a pattern that starts with a placeholder (`/{lang}/...`) or a regex rule looks at
  every target (a few hundred milliseconds at 1,000,000); so does a change of allowed_hosts.
- One difference from `validate`: `validate` reports at most MAX_REPORTED_OVERLAPS ambiguities per
  table; a change reports all that it adds.

The store (`store/guard.py`) keeps one index per table in memory, brings it up to date from the
change log inside the write lock, and calls `validate_change` there.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from redirectory.rules.matcher import Matcher, compile_regex
from redirectory.rules.model import Problem, Rule
from redirectory.rules.patterns import PathPattern, is_host_regex, split_host_regex
from redirectory.rules.validation import (
    Facts,
    Resolver,
    Sample,
    ShapeTrie,
    ambiguous,
    chain_problem,
    duplicate_problem,
    exact_paths_meet,
    group_key,
    loop_problem,
    no_gc_pauses,
    pair_problem,
    patterns_meet,
    plain_path,
    rule_facts,
)
from redirectory.semantics import NOT_REDIRECTED, TABLE, MethodChange

_TOP = "\U0010ffff"
_KEEP = MethodChange.MUST_NOT_CHANGE
#: What keeps a regex from being searched in many paths at once, one a line: anchors to the whole
#: text, and flags (which could turn multi-line matching off).
_NOT_LINE_SAFE = re.compile(r"\\[Az]|\(\?(?![P:<])")

Keyed = tuple[str, Problem]  # (rule id, problem)


class _SortedPaths:
    """(key, id) pairs sorted by key, in blocks (cheap inserts and removals at a million)."""

    LOAD = 1000

    def __init__(self, keys: list[str], ids: list[str]) -> None:
        order = sorted(range(len(keys)), key=keys.__getitem__)
        self._keys: list[list[str]] = []
        self._ids: list[list[str]] = []
        self._maxes: list[str] = []
        for start in range(0, len(order), self.LOAD):
            chunk = order[start : start + self.LOAD]
            self._keys.append([keys[i] for i in chunk])
            self._ids.append([ids[i] for i in chunk])
            self._maxes.append(self._keys[-1][-1])
        self._text: dict[int, str] = {}  # block -> its keys, one a line (made when searched)

    def add(self, key: str, rid: str) -> None:
        self._text.clear()
        if not self._keys:
            self._keys.append([key])
            self._ids.append([rid])
            self._maxes.append(key)
            return
        b = bisect_left(self._maxes, key)
        if b == len(self._maxes):
            b -= 1
        keys, ids = self._keys[b], self._ids[b]
        j = bisect_left(keys, key)
        keys.insert(j, key)
        ids.insert(j, rid)
        self._maxes[b] = keys[-1]
        if len(keys) > 2 * self.LOAD:
            half = len(keys) // 2
            self._keys[b + 1 : b + 1] = [keys[half:]]
            self._ids[b + 1 : b + 1] = [ids[half:]]
            del keys[half:], ids[half:]
            self._maxes[b : b + 1] = [keys[-1], self._keys[b + 1][-1]]

    def remove(self, key: str, rid: str) -> None:
        self._text.clear()
        b = bisect_left(self._maxes, key)
        while b < len(self._keys):
            keys, ids = self._keys[b], self._ids[b]
            j = bisect_left(keys, key)
            while j < len(keys) and keys[j] == key:
                if ids[j] == rid:
                    del keys[j], ids[j]
                    if keys:
                        self._maxes[b] = keys[-1]
                    else:
                        del self._keys[b], self._ids[b], self._maxes[b]
                    return
                j += 1
            if j < len(keys):
                return
            b += 1

    def between(self, low: str, high: str) -> Iterator[str]:
        """Ids whose key is in [low, high)."""
        b = bisect_left(self._maxes, low)
        while b < len(self._keys):
            keys, ids = self._keys[b], self._ids[b]
            j = bisect_left(keys, low) if keys[0] < low else 0
            while j < len(keys):
                if keys[j] >= high:
                    return
                yield ids[j]
                j += 1
            b += 1


    def search(self, pattern: Any) -> Iterator[str]:
        """Ids of the keys a multi-line `pattern` (Python's or RE2's) matches in the keys written
        one a line: every line a match starts in or runs over."""
        for b, keys in enumerate(self._keys):
            text = self._text.get(b)
            if text is None:
                text = self._text[b] = "\n".join(keys) + "\n"
            ids = self._ids[b]
            last, line, done = 0, 0, -1
            for m in pattern.finditer(text):
                line += text.count("\n", last, m.start())
                last = m.start()
                end = line + text.count("\n", m.start(), max(m.end() - 1, m.start()))
                for i in range(max(line, done + 1), min(end, len(ids) - 1) + 1):
                    yield ids[i]
                done = max(done, end)

    def scan(self) -> Iterator[tuple[str, str]]:
        for keys, ids in zip(self._keys, self._ids, strict=True):
            yield from zip(keys, ids, strict=True)


def _lower(text: str) -> str:
    low = text.lower()
    return text if low == text else low


def _add_to(table: dict[str, str | list[str]], key: str, rid: str) -> None:
    found = table.get(key)
    if found is None:
        table[key] = rid
    elif isinstance(found, list):
        found.append(rid)
    else:
        table[key] = [found, rid]


def _remove_from(table: dict[str, str | list[str]], key: str, rid: str) -> None:
    found = table.get(key)
    if found is None:
        return
    if isinstance(found, list):
        if rid in found:
            found.remove(rid)
        if len(found) == 1:
            table[key] = found[0]
    elif found == rid:
        del table[key]


def _ids(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class TableIndex:
    """What validation needs of a whole table, kept up to date change by change (see the module)."""

    def __init__(self, rules: Iterable[Rule], allowed_hosts: tuple[str, ...] = ()) -> None:
        self._hosts = tuple(allowed_hosts)
        self._rules: dict[str, Rule] = {}
        self._unusable: set[str] = set()
        self._exact: dict[str, str | list[str]] = {}  # exact_key -> usable exact rules
        self._keys: dict[tuple[object, ...], list[str]] = {}  # Rule.key() -> usable pattern/regex rules
        self._facts: dict[str, Facts] = {}  # facts of usable pattern and regex rules
        self._groups: dict[tuple[object, ...], ShapeTrie] = {}  # enabled pattern rules by precedence group
        self._matcher = Matcher()  # enabled usable pattern and regex rules
        self._served: dict[str, int] = {}  # host -> enabled usable `from` rules on it
        self._edges: dict[str, str] = {}  # rule -> the rule its target reaches
        self._rev: dict[str, set[str]] = {}
        self._target_hosts: dict[str, set[str]] = {}  # absolute target host -> rules (all)
        # Few tracked objects while indexing (strings and ints only for the common case), so the
        # collector has little to walk when it runs again.
        keys: list[str] = []  # sample paths, lower-cased
        ids: list[str] = []
        plain: list[str] = []  # exact rules to a plain path: their sample is (None, to, method, "")
        followed: list[tuple[str, Sample, bool]] = []
        by_id = self._rules
        exact = self._exact
        with no_gc_pauses():
            for rule in rules:
                rid = rule.id
                if not rid:
                    self._id(rule)  # raises
                assert rid is not None
                by_id[rid] = rule
                src = rule.source
                if src is not None and plain_path(src) and plain_path(rule.to) and not rule.has_query_conditions:
                    # The common case, without building its facts: an exact rule to a plain path.
                    key = _lower(src)
                    bucket = exact.get(key)
                    if bucket is None:
                        exact[key] = rid
                    elif isinstance(bucket, list):
                        bucket.append(rid)
                    else:
                        exact[key] = [bucket, rid]
                    if rule.enabled:
                        keys.append(_lower(rule.to))
                        ids.append(rid)
                        plain.append(rid)
                    continue
                facts = rule_facts(rule, self._hosts, warnings=False)
                self._insert(rid, facts, None)
                sample = facts.sample
                if sample is not None:
                    keys.append(_lower(sample[1]))
                    ids.append(rid)
                    followed.append((rid, sample, facts.absolute))
            self._samples = _SortedPaths(keys, ids)
            del keys, ids
            resolver = Resolver(self._exact_facts, [(self._matcher, _never)], self._served.__contains__)
            for rid in plain:
                rule = by_id[rid]
                methods = rule.methods
                method = methods[0] if methods and TABLE[rule.status].method_change is _KEEP else "GET"
                self._follow(resolver, rid, (None, rule.to, method, "", rule.scheme), False)
            for rid, sample, absolute in followed:
                self._follow(resolver, rid, sample, absolute)

    def _follow(self, resolver: Resolver, rid: str, sample: Sample, absolute: bool) -> None:
        found = resolver.winner(sample, absolute)
        if found is not None and found.rule.status != NOT_REDIRECTED:  # a 404 rule redirects no further
            target = found.rule.id if isinstance(found, Facts) else found.id
            assert target is not None
            self._edges[rid] = target
            self._rev.setdefault(target, set()).add(rid)

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    @property
    def allowed_hosts(self) -> tuple[str, ...]:
        return self._hosts

    @allowed_hosts.setter
    def allowed_hosts(self, hosts: Iterable[str]) -> None:
        hosts = tuple(hosts)
        if hosts != self._hosts:
            _Change(self, (), (), hosts).commit()

    def apply(self, upserts: Sequence[Rule], removals: Sequence[str]) -> None:
        """Record a committed change (upserts carry ids; an id already there is replaced)."""
        if upserts or removals:
            _Change(self, upserts, removals, self._hosts).commit()

    # -- maintenance --------------------------------------------------------------------------
    @staticmethod
    def _id(rule: Rule) -> str:
        if not rule.id:
            raise ValueError(f"a rule of a TableIndex needs an id: {rule.from_text!r}")
        return rule.id

    def _facts_of(self, rid: str, rule: Rule) -> Facts:
        return self._facts.get(rid) or rule_facts(rule, self._hosts)

    def _insert(self, rid: str, facts: Facts, samples: _SortedPaths | None) -> None:
        thost = facts.target_host
        if thost is not None:
            self._target_hosts.setdefault(thost, set()).add(rid)
        if not facts.usable:
            self._unusable.add(rid)
            return
        rule = facts.rule
        if facts.exact is not None:
            _add_to(self._exact, _lower(facts.exact), rid)
        else:
            self._facts[rid] = facts
            self._keys.setdefault(rule.key(), []).append(rid)
        if not rule.enabled:
            return
        if facts.pattern is not None:
            trie = self._groups.get(group_key(facts))
            if trie is None:
                trie = self._groups[group_key(facts)] = ShapeTrie()
            trie.insert(facts)
        if facts.exact is None:
            self._matcher.add(rule, rid)
        if facts.host is not None:
            self._served[facts.host] = self._served.get(facts.host, 0) + 1
        if samples is not None and facts.sample is not None:
            samples.add(_lower(facts.sample[1]), rid)

    def _delete(self, rid: str, facts: Facts) -> None:
        thost = facts.target_host
        if thost is not None:
            ids = self._target_hosts.get(thost)
            if ids is not None:
                ids.discard(rid)
                if not ids:
                    del self._target_hosts[thost]
        if not facts.usable:
            self._unusable.discard(rid)
            return
        rule = facts.rule
        if facts.exact is not None:
            _remove_from(self._exact, _lower(facts.exact), rid)
        else:
            self._facts.pop(rid, None)
            key = rule.key()
            same = self._keys.get(key)
            if same is not None:
                if rid in same:
                    same.remove(rid)
                if not same:
                    del self._keys[key]
        if not rule.enabled:
            return
        if facts.pattern is not None:
            gkey = group_key(facts)
            trie = self._groups.get(gkey)
            if trie is not None:
                trie.remove(facts)
                if not trie:
                    del self._groups[gkey]
        if facts.exact is None:
            self._matcher.remove(rid)
        if facts.host is not None:
            left = self._served.get(facts.host, 0) - 1
            if left > 0:
                self._served[facts.host] = left
            else:
                self._served.pop(facts.host, None)
        if facts.sample is not None:
            self._samples.remove(_lower(facts.sample[1]), rid)

    def _exact_facts(self, key: str) -> Facts | list[Facts] | None:
        ids = _ids(self._exact.get(key))
        if not ids:
            return None
        found = [rule_facts(self._rules[i], self._hosts) for i in ids]
        return found[0] if len(found) == 1 else found


def _never(_rule_id: str) -> bool:
    return False


class _Change:
    """The table after a change, seen through the index of the table before it (nothing is
    changed until `commit`)."""

    def __init__(
        self, index: TableIndex, upserts: Sequence[Rule], removals: Sequence[str], hosts: tuple[str, ...]
    ) -> None:
        self.index = index
        self.hosts = hosts
        self.source: str | None = None
        self.upserted: dict[str, int] = {}  # id -> place in upserts
        self.after: dict[str, Rule | None] = {}  # changed ids -> the rule after (None: removed)
        for rid in removals:
            if rid in index._rules:
                self.after[rid] = None
        for i, rule in enumerate(upserts):
            rid = index._id(rule)
            self.after[rid] = rule
            self.upserted[rid] = i
        self.facts_before: dict[str, Facts] = {}
        self.facts_after: dict[str, Facts] = {}
        if hosts != index._hosts:
            # Rules whose target host is allowed before and not after (or the reverse) change too.
            for thost, ids in index._target_hosts.items():
                if (thost in hosts or not hosts) != (thost in index._hosts or not index._hosts):
                    for rid in ids:
                        self.after.setdefault(rid, index._rules[rid])
        self.dirty = set(self.after)
        for rid, new in self.after.items():
            old = index._rules.get(rid)
            if old is not None:
                self.facts_before[rid] = index._facts_of(rid, old)
            if new is not None:
                self.facts_after[rid] = rule_facts(new, hosts)
        self._by_key: dict[object, list[Facts]] | None = None
        self._by_group: dict[object, list[Facts]] | None = None
        self._mini = Matcher()  # the changed pattern and regex rules, after
        self._exact_added: dict[str, list[Facts]] = {}
        self._served_delta: dict[str, int] = {}
        for rid, facts in self.facts_after.items():
            if not (facts.usable and facts.rule.enabled):
                continue
            if facts.exact is None:
                self._mini.add(facts.rule, rid)
            if facts.host is not None:
                self._served_delta[facts.host] = self._served_delta.get(facts.host, 0) + 1
        for facts in self.facts_after.values():
            if facts.usable and facts.exact is not None:
                self._exact_added.setdefault(_lower(facts.exact), []).append(facts)
        for facts in self.facts_before.values():
            if facts.usable and facts.rule.enabled and facts.host is not None:
                self._served_delta[facts.host] = self._served_delta.get(facts.host, 0) - 1
        self.resolver = Resolver(
            self._exact_after, [(index._matcher, self.dirty.__contains__), (self._mini, lambda _id: False)],
            self._served_after,
        )
        self.new_edges = self._edges_after()

    # -- the table after ----------------------------------------------------------------------
    def rule(self, rid: str) -> Rule | None:
        """The rule with this id after the change."""
        if rid in self.after:
            return self.after[rid]
        return self.index._rules.get(rid)

    def facts(self, rid: str) -> Facts | None:
        """The facts of a rule after the change (None: not in the table)."""
        found = self.facts_after.get(rid)
        if found is not None:
            return found
        if rid in self.after:
            return None
        rule = self.index._rules.get(rid)
        return None if rule is None else self.index._facts_of(rid, rule)

    def _served_after(self, host: str) -> bool:
        return self.index._served.get(host, 0) + self._served_delta.get(host, 0) > 0

    def _exact_after(self, key: str) -> Facts | list[Facts] | None:
        found = [f for f in self._exact_before(key) if f.rule.id not in self.dirty]
        found += self._exact_added.get(key, [])
        if not found:
            return None
        return found[0] if len(found) == 1 else found

    def _exact_before(self, key: str) -> list[Facts]:
        index = self.index
        return [index._facts_of(i, index._rules[i]) for i in _ids(index._exact.get(key))]

    def edge_after(self, rid: str) -> str | None:
        if rid in self.new_edges:
            return self.new_edges[rid]
        return self.index._edges.get(rid)

    def _edges_after(self) -> dict[str, str | None]:
        """The new edge of every rule whose target may now lead elsewhere."""
        index = self.index
        touched: set[str] = set(self.dirty)
        for rid in self.dirty:
            touched |= index._rev.get(rid, set())
        for facts in self.facts_after.values():
            if facts.usable and facts.rule.enabled:
                touched.update(self._catches(facts))
        for host, delta in self._served_delta.items():
            before = index._served.get(host, 0) > 0
            if delta and before != (index._served.get(host, 0) + delta > 0):
                touched |= index._target_hosts.get(host, set())
        out: dict[str, str | None] = {}
        for rid in touched:
            now = self.facts(rid)
            edge: str | None = None
            if now is not None and now.usable and now.sample is not None:
                found = self.resolver.winner(now.sample, now.absolute)
                if found is not None and found.rule.status != NOT_REDIRECTED:
                    edge = found.rule.id if isinstance(found, Facts) else found.id
            if edge != index._edges.get(rid) or rid in self.dirty:
                out[rid] = edge
        return out

    def _catches(self, facts: Facts) -> Iterator[str]:
        """Rules whose sample path this rule's `from` may match (a superset)."""
        samples = self.index._samples
        if facts.exact is not None:
            path = facts.exact
            if path.startswith("//"):
                slash = path.find("/", 2)
                path = path[slash:] if slash != -1 else "/"
            low = path.lower()
            yield from samples.between(low, low + "\x00")
            return
        pattern = facts.pattern
        if pattern is None:  # a regex: on lower-cased paths, ignoring case finds a superset
            text = facts.rule.source_regex or ""
            if is_host_regex(text):  # `^//host/...`: its path part (every host's samples: a superset)
                split = split_host_regex(text)
                if split is None:
                    return  # a host written as a regex: no path part to sample with
                text = split[1]
            if _NOT_LINE_SAFE.search(text) is None:
                # ^ and $ at every line: a superset of where it matches each path alone.
                yield from samples.search(compile_regex("(?m)" + text, True))
                return
            regex = compile_regex(text, True)
            for key, rid in samples.scan():
                if regex.search(key):
                    yield rid
            return
        literals: list[str] = []
        for seg in pattern.segments:
            if not isinstance(seg, str):
                break
            literals.append(seg.lower())
        if literals and (len(literals) > 1 or literals[0]):
            prefix = "/" + "/".join(literals)
            yield from samples.between(prefix, prefix + _TOP)
            return
        # It starts with a placeholder: every path, through a regular expression of its shape.
        yield from samples.search(_shape_regex(pattern))

    # -- problems -------------------------------------------------------------------------------
    def field_problems(self) -> list[Keyed]:
        index = self.index
        out: list[Keyed] = []
        for rid, facts in self.facts_after.items():
            if rid in self.upserted:
                out += [(rid, p) for p in facts.problems]
            else:  # an existing rule whose target host is (no longer) allowed
                out += self._new_field_problems(rid, facts)
        if self.hosts != index._hosts and self.hosts:
            # Every rule whose target host is not allowed: the message lists the hosts allowed.
            for thost, ids in index._target_hosts.items():
                if thost in self.hosts:
                    continue
                for rid in ids:
                    if rid not in self.after:
                        out += self._new_field_problems(rid, rule_facts(index._rules[rid], self.hosts))
        return out

    def _new_field_problems(self, rid: str, facts: Facts) -> list[Keyed]:
        old = rule_facts(self.index._rules[rid], self.index._hosts)
        known = {(p.code, p.message) for p in old.problems}
        return [(rid, p) for p in facts.problems if (p.code, p.message) not in known]

    def duplicates(self, after: bool) -> dict[tuple[str, str, str], Keyed]:
        """The duplicate problems, by (id, code, message), of the rules that share a key with a
        changed rule (before or after the change), in the table before or after it."""
        out: dict[tuple[str, str, str], Keyed] = {}
        done: set[tuple[object, ...]] = set()
        for facts in [*self.facts_before.values(), *self.facts_after.values()]:
            key = facts.rule.key()
            if not facts.usable or key in done:
                continue
            done.add(key)
            members = self._same_key(facts, after)
            if len(members) < 2:
                continue
            members.sort(key=lambda f: f.rule.position)
            first = members[0].rule
            for f in members[1:]:
                p = duplicate_problem(f.rule, first, self.source)
                found = (self._rid(f), p.code, p.message)
                out[found] = (found[0], p)
        return out

    def duplicate_problems(self) -> list[Keyed]:
        before = self.duplicates(after=False)
        return [found for key, found in self.duplicates(after=True).items() if key not in before]

    @staticmethod
    def _rid(facts: Facts) -> str:
        assert facts.rule.id is not None
        return facts.rule.id

    def _same_key(self, facts: Facts, after: bool) -> list[Facts]:
        """The usable rules with the key of `facts`, in the table before or after the change."""
        key = facts.rule.key()
        if facts.exact is not None:
            bucket = self._exact_after(_lower(facts.exact)) if after else self._exact_before(_lower(facts.exact))
            members = bucket if isinstance(bucket, list) else [bucket] if bucket is not None else []
        else:
            index = self.index
            ids = index._keys.get(key, [])
            members = [index._facts[i] for i in ids if not (after and i in self.dirty)]
            if after:
                members += self._inexact_after_by_key().get(key, [])
        return _unique([f for f in members if f.rule.key() == key])

    def _inexact_after_by_key(self) -> dict[object, list[Facts]]:
        """The usable pattern and regex rules after the change, by key: built once, so that finding
        a rule's duplicates does not scan every changed rule (a 12,500-rule import: 12,500 scans)."""
        if self._by_key is None:
            self._by_key = {}
            for f in self.facts_after.values():
                if f.usable and f.exact is None:
                    self._by_key.setdefault(f.rule.key(), []).append(f)
        return self._by_key

    def _patterns_after_by_group(self) -> dict[object, list[Facts]]:
        """The usable, enabled pattern rules after the change, by `group_key`: built once."""
        if self._by_group is None:
            self._by_group = {}
            for f in self.facts_after.values():
                if f.usable and f.rule.enabled and f.pattern is not None:
                    self._by_group.setdefault(group_key(f), []).append(f)
        return self._by_group

    def ambiguities(self, after: bool) -> dict[tuple[str, str, str], tuple[str, Problem]]:
        """The ambiguities of the changed rules with any rule, by (id, code, message)."""
        facts_of = self.facts_after if after else self.facts_before
        out: dict[tuple[str, str, str], tuple[str, Problem]] = {}
        for facts in facts_of.values():
            if not (facts.usable and facts.rule.enabled and (facts.exact is not None or facts.pattern is not None)):
                continue
            for other in self._meeting(facts, after):
                a, b = facts.rule, other.rule
                if not ambiguous(a, b):
                    continue
                p = pair_problem(a, b, self.source)
                later = b if a.position <= b.position else a
                rid = later.id or ""
                out[(rid, p.code, p.message)] = (rid, p)
        return out

    def _meeting(self, facts: Facts, after: bool) -> list[Facts]:
        """The enabled rules whose `from` can match a path this rule's can (not itself)."""
        if facts.exact is not None:
            bucket = self._exact_after(_lower(facts.exact)) if after else self._exact_before(_lower(facts.exact))
            members = bucket if isinstance(bucket, list) else [bucket] if bucket is not None else []
            return [
                f for f in members
                if f.rule.id != facts.rule.id and f.rule.enabled and exact_paths_meet(f, facts)
            ]
        gkey = group_key(facts)
        trie = self.index._groups.get(gkey)
        found: list[Facts] = []
        if trie is not None:
            found = [f for f in trie.intersecting(facts) if f.rule.id != facts.rule.id]
            if after:
                found = [f for f in found if f.rule.id not in self.dirty]
        if after:
            for other in self._patterns_after_by_group().get(gkey, ()):
                if other.rule.id != facts.rule.id and patterns_meet(other, facts):
                    found.append(other)
        return found

    def loops_and_chains(self) -> list[Keyed]:
        index = self.index
        starts = set(self.new_edges) | self.dirty
        # The rules whose chain may read differently: those that lead into a changed rule.
        new_rev: dict[str, set[str]] = {}
        for rid, target in self.new_edges.items():
            if target is not None:
                new_rev.setdefault(target, set()).add(rid)

        def rev_after(rid: str) -> Iterable[str]:
            for s in index._rev.get(rid, ()):
                if s not in self.new_edges:
                    yield s
            yield from new_rev.get(rid, ())

        def rev_before(rid: str) -> Iterable[str]:
            return index._rev.get(rid, ())

        upstream = _closure(starts, rev_after)
        out: list[Keyed] = []
        before_graph = _Graph(index._edges.get, rev_before, lambda r: index._rules.get(r))
        after_graph = _Graph(self.edge_after, rev_after, self.rule)
        for rid in upstream:
            if self.rule(rid) is None:
                continue
            problem = after_graph.chain(rid, self.source)
            if problem is None:
                continue
            old = before_graph.chain(rid, None) if rid in index._rules else None
            if old is None or old.message != problem.message:
                out.append((rid, problem))
        # Loops: every cycle downstream of a changed rule, before or after the change.
        cycles: dict[frozenset[str], list[str]] = {}
        for rid in starts:
            for graph in (after_graph, before_graph):
                cycle = graph.cycle_from(rid)
                if cycle is not None:
                    cycles.setdefault(frozenset(cycle), cycle)
        for members, cycle in cycles.items():
            if not after_graph.is_cycle(cycle):
                continue
            entry, problem = after_graph.loop(members, cycle, self.source)
            known = None
            if before_graph.is_cycle(cycle):
                old_entry, old_problem = before_graph.loop(members, cycle, None)
                known = (old_entry, old_problem.message)
            if known != (entry, problem.message):
                out.append((entry, problem))
        return out

    def problems(self, source: str | None) -> list[tuple[str, Problem]]:
        self.source = source
        keyed: list[Keyed] = []
        keyed += self.field_problems()
        keyed += self.duplicate_problems()
        before = self.ambiguities(after=False)
        keyed += [found for key, found in self.ambiguities(after=True).items() if key not in before]
        keyed += self.loops_and_chains()
        out = [(rid, replace(p, index=self.upserted.get(rid), source=source)) for rid, p in keyed]
        out.sort(key=lambda k: (k[1].index is None, k[1].index or 0, k[1].line or 0, k[1].field, k[1].code,
                                k[1].message))
        return out

    # -- committing ---------------------------------------------------------------------------
    def commit(self) -> None:
        index = self.index
        with no_gc_pauses():
            for rid, facts in self.facts_before.items():
                index._delete(rid, facts)
            for rid, rule in self.after.items():
                if rule is None:
                    index._rules.pop(rid, None)
                else:
                    index._rules[rid] = rule
            index._hosts = self.hosts
            for rid, facts in self.facts_after.items():
                index._insert(rid, facts, index._samples)
            for rid, target in self.new_edges.items():
                old = index._edges.pop(rid, None)
                if old is not None:
                    sources = index._rev.get(old)
                    if sources is not None:
                        sources.discard(rid)
                        if not sources:
                            del index._rev[old]
                if target is not None:
                    index._edges[rid] = target
                    index._rev.setdefault(target, set()).add(rid)
            for rid, rule in self.after.items():
                if rule is None:
                    index._rev.pop(rid, None)


def _unique(items: list[Facts]) -> list[Facts]:
    seen: set[str | None] = set()
    out = []
    for f in items:
        if f.rule.id not in seen:
            seen.add(f.rule.id)
            out.append(f)
    return out


def _closure(starts: Iterable[str], walk: Callable[[str], Iterable[str]]) -> list[str]:
    seen = set(starts)
    todo = list(seen)
    while todo:
        rid = todo.pop()
        for nxt in walk(rid):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return list(seen)


class _Graph:
    """Where targets lead, before or after a change."""

    def __init__(
        self,
        edge: Callable[[str], str | None],
        rev: Callable[[str], Iterable[str]],
        rule: Callable[[str], Rule | None],
    ) -> None:
        self.edge = edge
        self.rev = rev
        self.rule_of = rule

    def _rule(self, rid: str) -> Rule:
        rule = self.rule_of(rid)
        assert rule is not None
        return rule

    def cycle_from(self, rid: str) -> list[str] | None:
        """The cycle the path from `rid` ends in (in redirect order, from where it enters)."""
        seen: dict[str, int] = {}
        path: list[str] = []
        node: str | None = rid
        while node is not None and node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = self.edge(node)
        if node is None:
            return None
        return path[seen[node] :]

    def is_cycle(self, cycle: list[str]) -> bool:
        return all(self.edge(a) == b for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True))

    def in_cycle(self, rid: str) -> bool:
        cycle = self.cycle_from(rid)
        return cycle is not None and rid in cycle

    def chain(self, rid: str, source: str | None) -> Problem | None:
        nxt = self.edge(rid)
        if nxt is None or self.in_cycle(rid) or self.in_cycle(nxt):
            return None
        return chain_problem(rid, nxt, self.edge, self._rule, source)

    def loop(self, members: frozenset[str], cycle: list[str], source: str | None) -> tuple[str, Problem]:
        """The loop problem of a cycle as `validate` reports it: on the first of its rules reached
        from the first rule (in table order) that leads into it."""
        basin = _closure(members, self.rev)
        start = min(basin, key=lambda r: self._rule(r).position)
        node = start
        while node not in members:
            following = self.edge(node)
            assert following is not None
            node = following
        i = cycle.index(node)
        ordered = cycle[i:] + cycle[:i]
        return node, loop_problem([self._rule(r) for r in ordered], source)


def validate_change(
    index: TableIndex,
    upserts: Sequence[Rule],
    removals: Sequence[str] = (),
    *,
    allowed_hosts: Iterable[str] | None = None,
    source: str | None = None,
) -> list[Problem]:
    """The problems a change adds to the table (see the module); the index is not changed."""
    found = problems_by_rule(index, upserts, removals, allowed_hosts=allowed_hosts, source=source)
    return [p for _rid, p in found]


class PreparedChange:
    """A change validated against an index (`prepare_change`): its problems now, and `commit` to
    record it in that index later, without working it out again (a 12,500-rule import: half the
    guard's time). Valid while the index is not changed in between."""

    def __init__(self, index: TableIndex, upserts: Sequence[Rule], removals: Sequence[str],
                 hosts: tuple[str, ...]) -> None:
        self.index, self.upserts, self.removals, self.hosts = index, upserts, removals, hosts
        self._change = _Change(index, upserts, removals, hosts)

    def problems(self, source: str | None = None) -> list[Problem]:
        return [p for _rid, p in self._change.problems(source)]

    def commit(self) -> None:
        self._change.commit()


def prepare_change(index: TableIndex, upserts: Sequence[Rule], removals: Sequence[str] = (), *,
                   allowed_hosts: Iterable[str] | None = None) -> PreparedChange:
    """`validate_change` that can then be committed to the index (`PreparedChange.commit`)."""
    hosts = index.allowed_hosts if allowed_hosts is None else tuple(allowed_hosts)
    return PreparedChange(index, upserts, removals, hosts)


def problems_by_rule(
    index: TableIndex,
    upserts: Sequence[Rule],
    removals: Sequence[str] = (),
    *,
    allowed_hosts: Iterable[str] | None = None,
    source: str | None = None,
) -> list[tuple[str, Problem]]:
    """`validate_change` with the id of the rule each problem is about."""
    hosts = index.allowed_hosts if allowed_hosts is None else tuple(allowed_hosts)
    return _Change(index, upserts, removals, hosts).problems(source)


def _shape_regex(pattern: PathPattern) -> Any:
    """Lines (lower-cased paths) that the pattern may match: a superset (placeholders may be
    empty, a tail may follow without a slash)."""
    parts = [re.escape(s.lower()) if isinstance(s, str) else "[^/\n]*" for s in pattern.segments]
    body = "/" + "/".join(parts)
    return compile_regex("(?m)^" + body + ("[^\n]*" if pattern.tail else "") + "$")
