"""The one validator for every way in (`rules validate`, `apply`, `import`, the admin API).

Field-level checks (types, unknown fields, 302, ...) happen while parsing (`parsing`); this module
checks what needs the rule's neighbours or compiled form:
- `to` is an absolute http(s) URI or an absolute path, with no CR/LF/space, and every placeholder
  it uses is defined by `from` (or by a named group of `from_regex`);
- placeholders never stand in a target's scheme or host, and with `allowed_hosts` an absolute
  target must be on one of those hosts (no open redirects);
- two rules that match the same requests with equal precedence are an error naming both;
- loops are errors: a rule whose target matches itself, and cycles across rules (also through
  patterns, by following a representative request); chains (A -> B -> C) are warnings;
- 301 on a rule that matches methods other than GET/HEAD is a warning recommending 308.

`validate` checks a whole table; `rules.tableindex.validate_change` checks a change to a table
with the same building blocks (`rule_facts`, `pair_problems`, `Resolver`, `loop_and_chain_problems`),
so both find the same problems with the same messages.

Cost: one pass over the rules, plus work for the few that share an exact path or a pattern group.
A `from` or `to` that is a plain normalised path (the common case) is recognised without parsing it;
exact rules are followed (loops, chains) through one dict, so a table of 1,000,000 exact rules
validates in a few seconds.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import re2

from redirectory.rules import querymatch, querypolicy
from redirectory.rules.matcher import CompiledRule, Matcher, compile_regex
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.normalise import InvalidPath, normalise_path
from redirectory.rules.patterns import (
    OWN_HOST,
    Param,
    PathPattern,
    PatternError,
    Target,
    is_host_regex,
    parse_source,
    parse_target,
    split_host_regex,
)
from redirectory.semantics import NOT_REDIRECTED, SAFE_FOR_301, TABLE, MethodChange

MAX_REPORTED_OVERLAPS = 50
#: Codes of the problems a rule has with the other rules of its table; every other code (here or
#: in `parsing`) is a problem with the rule's own fields. The admin API answers problems with the
#: fields with 400 (all of them at once) and conflicts with the table with 422.
TABLE_CODES: frozenset[str] = frozenset({"duplicate", "ambiguous", "loop", "chain"})

#: A path that `parse_source`, `parse_target` and `normalise_path` all leave as it is: no host, no
#: placeholder, no query, nothing to decode or encode, no dot-segments, no empty segment but a last one.
_PLAIN = re.compile(r"/[A-Za-z0-9\-._~!$&'()*+,;=:@/]*")
_MUST_NOT_CHANGE = MethodChange.MUST_NOT_CHANGE
_MAY_CHANGE_TO_GET = MethodChange.MAY_CHANGE_TO_GET
_WARNING_301: dict[tuple[str, ...] | None, str | None] = {}
_new_problem = object.__new__
_set = object.__setattr__


def plain_path(text: str) -> bool:
    """Whether `from` or `to` text is a path every parser and `normalise_path` leave as it is."""
    return _PLAIN.fullmatch(text) is not None and "//" not in text and "/." not in text


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Hold the cyclic garbage collector while a big table is indexed.

    Indexing makes millions of small acyclic objects (facts, problems) next to the millions of
    rules already there; every full collection meanwhile walks all of them (at 1,000,000 rules that
    was 60% of `validate`). Nothing made here needs the collector: reference counting frees it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def validate(ruleset: RuleSet, source: str | None = None) -> list[Problem]:
    """Every error and warning for a whole table, sorted by line."""
    with no_gc_pauses():
        return _validate(ruleset, source)


def _validate(ruleset: RuleSet, source: str | None) -> list[Problem]:
    problems: list[Problem] = []
    usable: list[Facts] = []
    hosts = ruleset.allowed_hosts
    for rule in ruleset.rules:
        facts = rule_facts(rule, hosts, source)
        if facts.problems:
            problems.extend(facts.problems)
        if facts.usable:
            usable.append(facts)
    table = _Table(usable)
    problems.extend(table.duplicates(source))
    problems.extend(table.overlaps(source))
    problems.extend(table.loops_and_chains(source))
    problems.sort(key=_line_order)
    return problems


def _line_order(p: Problem) -> tuple[int, int, str]:
    return (p.line if p.line is not None else 0, p.index or 0, p.field)


def _problem(rule: Rule, severity: str, fld: str, message: str, code: str, source: str | None) -> Problem:
    # What Problem(...) does, without the frozen dataclass' keyword handling (a table of a million
    # rules makes a million warnings).
    p = _new_problem(Problem)
    _set(p, "severity", "error" if severity == "error" else "warning")
    _set(p, "field", fld)
    _set(p, "message", message)
    _set(p, "line", rule.line_of(fld))
    _set(p, "index", rule.position)
    _set(p, "code", code)
    _set(p, "source", source)
    return p


def where(rule: Rule, source: str | None = None) -> str:
    """How a problem names another rule: its `from` and its line (or store id, or place)."""
    label = rule.source if rule.source is not None else f"from_regex {rule.source_regex!r}"
    if rule.line is not None:
        return f"{label} (line {rule.line})"
    if rule.id:
        return f"{label} (rule {rule.id})"
    return f"{label} (rule #{rule.position + 1})"


_where = where

#: host, normalised path, method, raw query, scheme (None: the request's, not known)
Sample = tuple[str | None, str, str, str, str | None]


@dataclass(slots=True)
class Facts:
    """What the table checks need of one rule, computed once (`rule_facts`)."""

    rule: Rule
    problems: list[Problem]  # problems with the rule's own fields
    usable: bool = False  # no error among them: the rule takes part in the table checks
    exact: str | None = None  # exact `from`: "//host/path" or "/path" (normalised)
    pattern: PathPattern | None = None  # a `from` with placeholders
    host: str | None = None  # the `from` host
    sample: Sample | None = None  # the request its target makes (None: none we can follow)
    absolute: bool = False  # the target names a host: followed only when the table serves it
    target_host: str | None = None  # an absolute target's host
    seq: int = -1  # the rule's place among the enabled rules of `validate`'s table

    @property
    def enabled(self) -> bool:
        return self.rule.enabled


def rule_facts(
    rule: Rule, allowed_hosts: tuple[str, ...] = (), source: str | None = None, *, warnings: bool = True
) -> Facts:
    """The rule's own problems (field checks; without `warnings`, only errors) and what the table
    checks need of it."""
    src = rule.source
    to = rule.to
    problems: list[Problem] = []
    facts = Facts(rule, problems)
    names: Iterable[str] = ()
    if src is not None:
        if plain_path(src):
            facts.exact = src
        else:
            try:
                pattern = parse_source(src)
            except PatternError as exc:
                problems.append(_problem(rule, "error", "from", str(exc), "from.invalid", source))
            else:
                facts.host = pattern.host
                if pattern.is_exact:
                    facts.exact = ("//" + pattern.host if pattern.host else "") + pattern.exact_path
                else:
                    facts.pattern = pattern
                    names = pattern.names
    elif rule.source_regex is not None:
        if is_host_regex(rule.source_regex):
            split = split_host_regex(rule.source_regex)
            facts.host = split[0] if split is not None else None
        try:
            names = compile_regex(rule.source_regex).groupindex
        except re2.error as exc:
            problems.append(
                _problem(rule, "error", "from_regex", f"not valid RE2 syntax: {exc}", "from_regex.invalid", source)
            )
    if rule.status == NOT_REDIRECTED:  # redirects nowhere: no target to check or follow
        facts.usable = not problems
        return facts
    target: Target | None = None
    if not plain_path(to):
        try:
            target = parse_target(to)
        except PatternError as exc:
            problems.append(_problem(rule, "error", "to", str(exc), "to.invalid", source))
            return facts
    if problems:
        return facts
    usable = True
    if target is not None:
        missing = [n for n in target.names if n not in names]
        if missing:
            defined = ", ".join("{" + n + "}" for n in sorted(names)) or "none"
            problems.append(
                _problem(
                    rule,
                    "error",
                    "to",
                    f"placeholder {{{missing[0]}}} is not defined by `from` (defined: {defined})",
                    "to.placeholder",
                    source,
                )
            )
            usable = False
        if target.origin is not None:
            thost = target.host
            facts.target_host = thost
            if allowed_hosts and thost is not None and thost not in allowed_hosts:
                problems.append(
                    _problem(
                        rule,
                        "error",
                        "to",
                        f"target host '{thost}' is not in allowed_hosts ({', '.join(allowed_hosts)})",
                        "to.host-not-allowed",
                        source,
                    )
                )
                usable = False
    status = rule.status
    sem = TABLE[status]
    if warnings and status == 301 and sem.method_change is _MAY_CHANGE_TO_GET:
        methods = rule.methods
        try:
            message = _WARNING_301[methods]
        except KeyError:
            message = _WARNING_301[methods] = _message_301(methods)
        if message is not None:
            problems.append(_problem(rule, "warning", "status", message, "status.301-unsafe-method", source))
    if not usable:
        return facts
    facts.usable = True
    if not rule.enabled:
        return facts
    method = rule.methods[0] if sem.method_change is _MUST_NOT_CHANGE and rule.methods else "GET"
    if target is None:
        facts.sample = (facts.host, to, method, _sample_query(rule, ""), rule.scheme)
    else:
        facts.sample = _sample_request(target, facts.host, method, rule)
        facts.absolute = target.origin is not None and not target.own_host
    return facts


def _sample_query(rule: Rule, target_query: str) -> str:
    """The query of a rule's follow-up request: the target's, plus (`query: keep`) the parameters
    the rule's own `query_match` made the request carry (any other query is not known: none)."""
    if rule.query == "drop" or rule.query_match is None:
        return target_query
    request = "&".join(querymatch_canonical_pairs(rule.query_match))
    passed = querypolicy.passed(request, querypolicy.policy(rule.query), querymatch.parse_text(rule.query_match))
    named = {p.split("=", 1)[0] for p in target_query.split("&") if p}
    kept = [p for p in passed.split("&") if p and p.split("=", 1)[0] not in named]
    return "&".join(([target_query] if target_query else []) + kept)


def querymatch_canonical_pairs(text: str) -> list[str]:
    """A representative request query for canonical conditions: `*` values become `1`."""
    return [p[:-1] + "1" if p.endswith("=*") else p for p in text.split("&")]


def _message_301(methods: tuple[str, ...] | None) -> str | None:
    chosen = set(methods) if methods is not None else None
    if chosen is not None and chosen <= SAFE_FOR_301:
        return None
    which = "every method" if chosen is None else ", ".join(sorted(chosen - SAFE_FOR_301))
    return (
        f"301 lets clients turn {which} into GET: use 308 for non-GET requests "
        "(or restrict this rule with methods: [GET, HEAD])"
    )


def _sample_request(target: Target, source_host: str | None, method: str, rule: Rule) -> Sample | None:
    """A representative follow-up request (host, path, method) for a rule's target.

    Placeholder values are replaced by tokens that only placeholders can match, so a target
    matches another rule's pattern only if it would for every value (decidable through
    patterns). None when its path cannot be normalised.
    """
    values: dict[str, str | None] = {n: "{" + n + "}" for n in target.names}
    rendered = target.render(values)
    host: str | None
    if target.own_host:  # `https://{host}/...`: the request's host, which is the rule's (if it names one)
        assert target.origin is not None
        host = source_host
        path = rendered[len(target.origin) - len(OWN_HOST) :] or "/"
    elif target.origin is not None:
        host = target.host
        path = rendered[len(target.origin) :] or "/"
    else:
        host = source_host
        path = rendered
    path, _q, query = path.split("#", 1)[0].partition("?")
    # an absolute target names its scheme; a path keeps the request's (the rule's own, if it has one)
    scheme = target.origin.split(":", 1)[0].lower() if target.origin is not None else rule.scheme
    try:
        return host, normalise_path(path or "/"), method, _sample_query(rule, query), scheme
    except InvalidPath:
        return None


def exact_key(facts: Facts) -> str:
    """The bucket of an exact rule: rules in one bucket may match the same path (case aside)."""
    assert facts.exact is not None
    return facts.exact.lower()


def group_key(facts: Facts) -> tuple[object, ...]:
    """The precedence group of a pattern rule: only rules of one group can be ambiguous."""
    pattern = facts.pattern
    assert pattern is not None
    return (pattern.host, pattern.tail is not None, pattern.literal_count, facts.rule.priority)


# -- duplicates and ambiguity -------------------------------------------------------------------
def duplicate_problem(rule: Rule, first: Rule, source: str | None) -> Problem:
    return _problem(
        rule,
        "error",
        "from",
        f"duplicate rule: {_where(first, source)} already matches the same path, methods and window",
        "duplicate",
        source,
    )


def _overlap(a: Rule, b: Rule) -> bool:
    """Whether two rules can answer the same request with equal precedence (methods, schemes,
    windows and query conditions intersect; a rule with query or scheme conditions precedes one
    without)."""
    if a.methods is not None and b.methods is not None and not set(a.methods) & set(b.methods):
        return False
    if (a.scheme is None) != (b.scheme is None) or a.scheme != b.scheme:
        return False  # one scheme each, or a rule with a scheme before one without (its rank)
    if a.has_query_conditions or b.has_query_conditions:
        if not (a.has_query_conditions and b.has_query_conditions):
            return False
        if not querymatch.may_meet(a.query_match, a.query_exact, b.query_match, b.query_exact):
            return False
    start = max((s for s in (a.starts, b.starts) if s is not None), default=None)
    end = min((e for e in (a.ends, b.ends) if e is not None), default=None)
    return start is None or end is None or start < end


def ambiguous(a: Rule, b: Rule) -> bool:
    """Whether two rules whose `from` can match one path are ambiguous (not duplicates, same
    priority, methods and windows intersect)."""
    return a.priority == b.priority and a.key() != b.key() and _overlap(a, b)


def _ambiguity(a: Rule, b: Rule, source: str | None) -> Problem:
    return _problem(
        b,
        "error",
        "from",
        f"matches the same requests as {_where(a, source)} with equal precedence: "
        "make one more specific, restrict methods, or set a different priority",
        "ambiguous",
        source,
    )


def pair_problem(a: Rule, b: Rule, source: str | None) -> Problem:
    """The ambiguity of two rules, on the later one (by position) naming the earlier one."""
    first, second = (a, b) if a.position <= b.position else (b, a)
    return _ambiguity(first, second, source)


def exact_paths_meet(a: Facts, b: Facts) -> bool:
    """Whether two exact rules of one bucket match a common path."""
    return a.exact == b.exact or a.rule.case_insensitive or b.rule.case_insensitive


def _literals_meet(x: str, y: str, ci: bool) -> bool:
    return x == y or (ci and x.lower() == y.lower())


def patterns_meet(a: Facts, b: Facts) -> bool:
    """Whether two pattern rules of one precedence group can match a common path: their
    segments agree (a placeholder agrees with anything) over their common length, which with no
    `{name:path}` tail must be their whole length."""
    pa, pb = a.pattern, b.pattern
    assert pa is not None and pb is not None
    sa, sb = pa.segments, pb.segments
    if pb.tail is None and len(sa) != len(sb):
        return False
    ci = a.rule.case_insensitive or b.rule.case_insensitive
    for x, y in zip(sa, sb, strict=False):
        if isinstance(x, str) and isinstance(y, str) and not _literals_meet(x, y, ci):
            return False
    return True


@dataclass
class _ShapeNode:
    children: dict[str, _ShapeNode] = field(default_factory=dict)
    param: _ShapeNode | None = None
    ends: list[Facts] = field(default_factory=list)  # patterns (or tail prefixes) ending here

    def empty(self) -> bool:
        return not (self.children or self.param or self.ends)


class ShapeTrie:
    """Patterns of one precedence group, to find which ones can match a common path.

    Literals are keyed lower-cased: `intersecting` finds every pattern that may meet the one asked
    about, and `patterns_meet` decides."""

    def __init__(self) -> None:
        self.root = _ShapeNode()

    def __bool__(self) -> bool:
        return not self.root.empty()

    def insert(self, facts: Facts) -> None:
        pattern = facts.pattern
        assert pattern is not None
        node = self.root
        for seg in pattern.segments:
            if isinstance(seg, Param):
                node.param = node.param or _ShapeNode()
                node = node.param
            else:
                node = node.children.setdefault(seg.lower(), _ShapeNode())
        node.ends.append(facts)

    def remove(self, facts: Facts) -> None:
        pattern = facts.pattern
        assert pattern is not None
        trail = [self.root]
        node = self.root
        for seg in pattern.segments:
            nxt = node.param if isinstance(seg, Param) else node.children.get(seg.lower())
            if nxt is None:
                return
            node = nxt
            trail.append(node)
        for i, f in enumerate(node.ends):
            if f is facts:
                del node.ends[i]
                break
        for depth in range(len(pattern.segments), 0, -1):
            child, parent = trail[depth], trail[depth - 1]
            if not child.empty():
                break
            seg = pattern.segments[depth - 1]
            if isinstance(seg, Param):
                parent.param = None
            else:
                del parent.children[seg.lower()]

    def intersecting(self, facts: Facts) -> list[Facts]:
        pattern = facts.pattern
        assert pattern is not None
        found: list[Facts] = []
        segs = pattern.segments
        tail = pattern.tail is not None

        def subtree(node: _ShapeNode) -> None:
            found.extend(node.ends)
            for child in node.children.values():
                subtree(child)
            if node.param:
                subtree(node.param)

        def walk(node: _ShapeNode, depth: int) -> None:
            if tail and node.ends and depth < len(segs):
                found.extend(node.ends)  # their tail absorbs the rest of ours
            if depth == len(segs):
                if tail:
                    subtree(node)  # our tail absorbs the rest of theirs
                else:
                    found.extend(node.ends)
                return
            seg = segs[depth]
            if isinstance(seg, Param):
                for child in node.children.values():
                    walk(child, depth + 1)
            else:
                literal = node.children.get(seg.lower())
                if literal is not None:
                    walk(literal, depth + 1)
            if node.param is not None:
                walk(node.param, depth + 1)

        walk(self.root, 0)
        return [f for f in found if f is not facts and patterns_meet(f, facts)]


# -- following targets ----------------------------------------------------------------------
K = TypeVar("K")


class Resolver:
    """Which rule a sample request reaches, as the gateway's matcher would decide it.

    Exact rules are looked up with `exact` (bucket key, see `exact_key` -> the bucket's facts: one,
    a list, or None), pattern and regex rules in `matchers` (each with a test of the ids to skip in
    it); `served` tells the hosts the table answers on (`from: //host/...`). Candidates are tried
    in the matcher's precedence order (its ranks): the first enabled one that accepts the method
    wins; windows do not count.
    """

    def __init__(
        self,
        exact: Callable[[str], Facts | list[Facts] | None],
        matchers: Iterable[tuple[Matcher, Callable[[str], bool]]],
        served: Callable[[str], bool],
    ) -> None:
        self.exact = exact
        self.matchers = tuple(m for m in matchers if len(m[0]))  # fixed while it is used
        self.served = served

    def winner(self, sample: Sample, absolute: bool) -> Facts | CompiledRule | None:
        """The rule that answers the sample: an exact rule's facts, or a compiled pattern or regex."""
        host, path, method, query, scheme = sample
        if host is not None and not self.served(host):
            if absolute:
                return None  # another service: nothing of ours answers there
            host = None
        matchers = self.matchers
        for h in (host, None) if host is not None else (None,):
            key = path if h is None else "//" + h + path
            found = self.exact(key.lower())
            if found is not None:
                chosen = _exact_winner(found, key, method, query, scheme)
                if chosen is not None:
                    return chosen
            best: CompiledRule | None = None
            for matcher, excluded in matchers:
                for c, _values in matcher.candidates(path, h, query):
                    pattern = c.pattern
                    if pattern is None and h is not None and is_host_regex(c.rule.source_regex or ""):
                        pass  # this host's regexes come after its patterns (`^//host/...`)
                    elif pattern is None or pattern.host != h:
                        break  # past this host's patterns
                    if excluded(c.id) or not c.accepts(method, None, query, scheme):
                        continue
                    if best is None or c.rank < best.rank:
                        best = c
                    break
            if best is not None:
                return best
        best = None
        for matcher, excluded in matchers:
            for c, _values in matcher.candidates(path, None, query):
                if c.regex is None or excluded(c.id) or not c.accepts(method, None, query, scheme):
                    continue
                if best is None or c.rank < best.rank:
                    best = c
                break
        return best


def _exact_winner(found: Facts | list[Facts], key: str, method: str, query: str, scheme: str | None) -> Facts | None:
    if isinstance(found, Facts):
        bucket = [found]
    else:
        bucket = sorted(found, key=_exact_rank)
    for f in bucket:
        rule = f.rule
        if not rule.enabled or (f.exact != key and not rule.case_insensitive):
            continue
        methods = rule.methods
        if (methods is None or method in methods) and rule.matches_scheme(scheme) and (
            not rule.has_query_conditions or querymatch.satisfied(
                querymatch.parse_text(rule.query_match) if rule.query_match else (), rule.query_exact, query)
        ):
            return f
    return None


def _exact_rank(f: Facts) -> tuple[int, int, int]:
    # Within one exact key the matcher's rank is query or scheme conditions first, then priority, then
    # position.
    conditional = f.rule.has_query_conditions or f.rule.scheme is not None
    return (0 if conditional else 1, -f.rule.priority, f.rule.position)


def loop_and_chain_problems(
    nodes: Iterable[K],
    edge: Callable[[K], K | None],
    rule_of: Callable[[K], Rule],
    source: str | None,
) -> Iterator[tuple[K, Problem]]:
    """Loops (errors) and chains (warnings) of the graph `edge` over `nodes` (in table order).

    A cycle is reported once, on the first of its rules reached from the first rule (in table
    order) that leads into it; a chain on every rule not in or next to a cycle whose target is
    redirected again, with the number of hops and the final target.
    """
    order = list(nodes)
    state: dict[K, int] = {}  # 1 = on stack, 2 = done
    in_cycle: set[K] = set()
    for start in order:
        if state.get(start) or edge(start) is None:
            continue
        stack: list[K] = []
        node: K | None = start
        while node is not None and not state.get(node):
            state[node] = 1
            stack.append(node)
            node = edge(node)
        if node is not None and state.get(node) == 1:
            cycle = stack[stack.index(node) :]
            in_cycle.update(cycle)
            yield cycle[0], loop_problem([rule_of(c) for c in cycle], source)
        for n in stack:
            state[n] = 2
    for rid in order:
        nxt = edge(rid)
        if nxt is None or rid in in_cycle or nxt in in_cycle:
            continue
        yield rid, chain_problem(rid, nxt, edge, rule_of, source)


def loop_problem(cycle: list[Rule], source: str | None) -> Problem:
    """The loop through `cycle` (rules in redirect order), reported on its first rule."""
    if len(cycle) == 1:
        msg = "redirect loop: the target matches this rule again"
    else:
        path_txt = " -> ".join(_where(r, source) for r in [*cycle, cycle[0]])
        msg = f"redirect loop across rules: {path_txt}"
    return _problem(cycle[0], "error", "to", msg, "loop", source)


def chain_problem(
    rid: K, nxt: K, edge: Callable[[K], K | None], rule_of: Callable[[K], Rule], source: str | None
) -> Problem:
    """The chain from `rid` through `nxt` (neither on a cycle) to where redirects stop."""
    second = rule_of(nxt)
    final = second.to
    hops = 2
    seen = {rid, nxt}
    cur = nxt
    while (following := edge(cur)) is not None and following not in seen:
        cur = following
        seen.add(cur)
        final = rule_of(cur).to
        hops += 1
    return _problem(
        rule_of(rid),
        "warning",
        "to",
        f"redirect chain of {hops} hops: the target is redirected again by {_where(second, source)}; "
        f"point this rule at {final} directly",
        "chain",
        source,
    )


# -- a whole table ---------------------------------------------------------------------------
def _bucket_items(value: Facts | list[Facts]) -> list[Facts]:
    return value if isinstance(value, list) else [value]


class _Table:
    """The usable rules of one table (in order), indexed for the table checks of `validate`."""

    def __init__(self, usable: list[Facts]) -> None:
        self.usable = usable
        self.buckets: dict[str, Facts | list[Facts]] = {}  # exact_key -> facts (several: a list)
        self.multi: dict[str, list[Facts]] = {}  # the buckets with several rules
        self.others: list[Facts] = []  # pattern and regex rules
        buckets = self.buckets
        for f in usable:
            exact = f.exact
            if exact is None:
                self.others.append(f)
                continue
            key = exact.lower()
            if key == exact:
                key = exact
            found = buckets.get(key)
            if found is None:
                buckets[key] = f
            elif isinstance(found, list):
                found.append(f)
            else:
                buckets[key] = self.multi[key] = [found, f]

    def duplicates(self, source: str | None) -> list[Problem]:
        out: list[Problem] = []
        for members in self.multi.values():
            seen: dict[tuple[object, ...], Rule] = {}
            for f in members:
                key = f.rule.key()
                first = seen.setdefault(key, f.rule)
                if first is not f.rule:
                    out.append(duplicate_problem(f.rule, first, source))
        seen = {}
        for f in self.others:
            key = f.rule.key()
            first = seen.setdefault(key, f.rule)
            if first is not f.rule:
                out.append(duplicate_problem(f.rule, first, source))
        return out

    def overlaps(self, source: str | None) -> list[Problem]:
        out: list[Problem] = []
        reported: set[tuple[int, int]] = set()

        def report(a: Rule, b: Rule) -> None:
            if len(out) >= MAX_REPORTED_OVERLAPS:
                return
            pair = (min(a.position, b.position), max(a.position, b.position))
            if pair in reported or not ambiguous(a, b):
                return
            reported.add(pair)
            out.append(pair_problem(a, b, source))

        buckets = []
        for members in self.multi.values():
            enabled = [f for f in members if f.enabled]
            if len(enabled) > 1:
                buckets.append(enabled)
        buckets.sort(key=lambda b: b[0].rule.position)
        for bucket in buckets:
            for i, a in enumerate(bucket):
                for b in bucket[i + 1 :]:
                    if exact_paths_meet(a, b):
                        report(a.rule, b.rule)
        groups: dict[tuple[object, ...], list[Facts]] = {}
        for f in self.others:
            if f.pattern is not None and f.enabled:
                groups.setdefault(group_key(f), []).append(f)
        for members in groups.values():
            if len(members) < 2:
                continue
            trie = ShapeTrie()
            for f in members:
                for other in trie.intersecting(f):
                    report(other.rule, f.rule)
                trie.insert(f)
        return out

    def loops_and_chains(self, source: str | None) -> list[Problem]:
        enabled = [f for f in self.usable if f.enabled]
        if not enabled:
            return []
        matcher = Matcher()
        served: set[str] = set()
        for i, f in enumerate(enabled):
            f.seq = i
            if f.exact is None:
                matcher.add(f.rule, f"#{i}")
            host = f.host
            if host is not None:
                served.add(host)
        resolver = Resolver(self.buckets.get, [(matcher, lambda _id: False)], served.__contains__)
        edges: dict[int, int] = {}
        for i, f in enumerate(enabled):
            sample = f.sample
            if sample is None:
                continue
            found = resolver.winner(sample, f.absolute)
            if found is None or found.rule.status == NOT_REDIRECTED:  # its target is not redirected again
                continue
            edges[i] = found.seq if isinstance(found, Facts) else int(found.id[1:])
        if not edges:
            return []
        return [
            p
            for _k, p in loop_and_chain_problems(
                edges, edges.get, lambda k: enabled[k].rule, source
            )
        ]

