"""The validator as it was before issue 14 made it fast and incremental: the naive reference.

`tests/test_validation_scale.py` checks that `redirectory.rules.validation.validate` finds the same
problems with the same messages. One change from the original: two patterns of one precedence group
are compared pairwise (`_meet`), and literals compare case-insensitively when either rule is
case-insensitive -- the original's shape trie looked literals up asymmetrically, so whether
`/{x}/A` and `/{x}/a` (one of them case_insensitive) were reported depended on their order.

The original's notes follow.

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
"""

from __future__ import annotations

from collections import defaultdict

import re2

from redirectory.rules.matcher import CompiledRule, Matcher, compile_regex
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.normalise import InvalidPath, normalise_path
from redirectory.rules.patterns import PathPattern, PatternError, parse_source, parse_target
from redirectory.rules.patterns import Target as _Target
from redirectory.semantics import SAFE_FOR_301, TABLE, MethodChange

MAX_REPORTED_OVERLAPS = 50
#: Codes of the problems a rule has with the other rules of its table; every other code (here or
#: in `parsing`) is a problem with the rule's own fields. The admin API answers problems with the
#: fields with 400 (all of them at once) and conflicts with the table with 422.
TABLE_CODES: frozenset[str] = frozenset({"duplicate", "ambiguous", "loop", "chain"})


def validate(ruleset: RuleSet, source: str | None = None) -> list[Problem]:
    """Every error and warning for a whole table, sorted by line."""
    problems: list[Problem] = []
    usable: list[Rule] = []
    for index, rule in enumerate(ruleset.rules):
        found = _check_rule(rule, ruleset.allowed_hosts, index, source)
        problems.extend(found)
        if not any(p.is_error for p in found):
            usable.append(rule)
    problems.extend(_check_duplicates(usable, source))
    problems.extend(_check_overlaps(usable, source))
    problems.extend(_check_loops_and_chains(usable, source))
    problems.sort(key=lambda p: (p.line if p.line is not None else 0, p.index or 0, p.field))
    return problems


def _problem(rule: Rule, severity: str, fld: str, message: str, code: str, source: str | None) -> Problem:
    return Problem(
        severity="error" if severity == "error" else "warning",
        field=fld,
        message=message,
        line=rule.line_of(fld),
        index=rule.position,
        code=code,
        source=source,
    )


def _where(rule: Rule, source: str | None) -> str:
    label = rule.source if rule.source is not None else f"from_regex {rule.source_regex!r}"
    if rule.line is not None:
        return f"{label} (line {rule.line})"
    if rule.id:
        return f"{label} (rule {rule.id})"
    return f"{label} (rule #{rule.position + 1})"


def _check_rule(rule: Rule, allowed_hosts: tuple[str, ...], index: int, source: str | None) -> list[Problem]:
    out: list[Problem] = []
    names: set[str] = set()
    if rule.source is not None:
        try:
            names = set(parse_source(rule.source).names)
        except PatternError as exc:
            out.append(_problem(rule, "error", "from", str(exc), "from.invalid", source))
    elif rule.source_regex is not None:
        try:
            names = set(compile_regex(rule.source_regex).groupindex)
        except re2.error as exc:
            out.append(
                _problem(rule, "error", "from_regex", f"not valid RE2 syntax: {exc}", "from_regex.invalid", source)
            )
    try:
        target = parse_target(rule.to)
    except PatternError as exc:
        out.append(_problem(rule, "error", "to", str(exc), "to.invalid", source))
        return out
    if out:
        return out
    missing = [n for n in target.names if n not in names]
    if missing:
        defined = ", ".join("{" + n + "}" for n in sorted(names)) or "none"
        out.append(
            _problem(
                rule,
                "error",
                "to",
                f"placeholder {{{missing[0]}}} is not defined by `from` (defined: {defined})",
                "to.placeholder",
                source,
            )
        )
    if allowed_hosts and target.host is not None and target.host not in allowed_hosts:
        out.append(
            _problem(
                rule,
                "error",
                "to",
                f"target host '{target.host}' is not in allowed_hosts ({', '.join(allowed_hosts)})",
                "to.host-not-allowed",
                source,
            )
        )
    sem = TABLE[rule.status]
    if sem.method_change is MethodChange.MAY_CHANGE_TO_GET and rule.status == 301:
        methods = set(rule.methods) if rule.methods is not None else None
        if methods is None or not methods <= SAFE_FOR_301:
            which = "every method" if methods is None else ", ".join(sorted(methods - SAFE_FOR_301))
            out.append(
                _problem(
                    rule,
                    "warning",
                    "status",
                    f"301 lets clients turn {which} into GET: use 308 for non-GET requests "
                    "(or restrict this rule with methods: [GET, HEAD])",
                    "status.301-unsafe-method",
                    source,
                )
            )
    return out


def _check_duplicates(rules: list[Rule], source: str | None) -> list[Problem]:
    seen: dict[tuple[object, ...], Rule] = {}
    out: list[Problem] = []
    for rule in rules:
        key = rule.key()
        first = seen.get(key)
        if first is None:
            seen[key] = rule
            continue
        out.append(
            _problem(
                rule,
                "error",
                "from",
                f"duplicate rule: {_where(first, source)} already matches the same path, methods and window",
                "duplicate",
                source,
            )
        )
    return out


def _overlap(a: Rule, b: Rule) -> bool:
    """Whether two rules can answer the same request (methods and windows intersect)."""
    if a.methods is not None and b.methods is not None and not set(a.methods) & set(b.methods):
        return False
    start = max((s for s in (a.starts, b.starts) if s is not None), default=None)
    end = min((e for e in (a.ends, b.ends) if e is not None), default=None)
    return start is None or end is None or start < end


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


def _check_overlaps(rules: list[Rule], source: str | None) -> list[Problem]:
    out: list[Problem] = []
    reported: set[tuple[int, int]] = set()

    def report(a: Rule, b: Rule) -> None:
        if a.key() == b.key() or len(out) >= MAX_REPORTED_OVERLAPS:
            return  # exact duplicates are reported once, as duplicates
        pair = (min(a.position, b.position), max(a.position, b.position))
        if pair in reported or not _overlap(a, b) or a.priority != b.priority:
            return
        reported.add(pair)
        first, second = (a, b) if a.position <= b.position else (b, a)
        out.append(_ambiguity(first, second, source))

    exact: dict[tuple[str | None, str], list[tuple[Rule, PathPattern]]] = defaultdict(list)
    groups: dict[tuple[object, ...], list[tuple[Rule, PathPattern]]] = defaultdict(list)
    for rule in rules:
        if rule.source is None or not rule.enabled:
            continue
        pattern = parse_source(rule.source)
        if pattern.is_exact:
            exact[(pattern.host, pattern.exact_path.lower())].append((rule, pattern))
        else:
            key = (pattern.host, pattern.tail is not None, pattern.literal_count, rule.priority)
            groups[key].append((rule, pattern))
    for bucket in exact.values():
        for i, (a, pa) in enumerate(bucket):
            for b, pb in bucket[i + 1 :]:
                if pa.exact_path == pb.exact_path or a.case_insensitive or b.case_insensitive:
                    report(a, b)
    for members in groups.values():
        for j, (b, pb) in enumerate(members):
            for a, pa in members[:j]:
                if _meet(a, pa, b, pb):
                    report(a, b)
    return out


def _meet(a: Rule, pa: PathPattern, b: Rule, pb: PathPattern) -> bool:
    """Some path matches both patterns (of one group: same host, tail or not, literal count)."""
    if pa.tail is None and len(pa.segments) != len(pb.segments):
        return False
    ci = a.case_insensitive or b.case_insensitive
    for x, y in zip(pa.segments, pb.segments, strict=False):
        if isinstance(x, str) and isinstance(y, str) and x != y and not (ci and x.lower() == y.lower()):
            return False
    return True


# -- loops and chains ----------------------------------------------------------------------
def _sample_request(compiled: CompiledRule) -> tuple[str | None, str, str] | None:
    """A representative follow-up request (host, path, method) for a rule's target.

    Placeholder values are replaced by tokens that only placeholders can match, so a target
    matches another rule's pattern only if it would for every value (decidable through
    patterns). None when the target leaves the gateway (another host we don't serve).
    """
    rule = compiled.rule
    target: _Target = compiled.target
    values: dict[str, str | None] = {n: "{" + n + "}" for n in target.names}
    rendered = target.render(values)
    host: str | None
    if target.origin is not None:
        host = target.host
        path = rendered[len(target.origin) :] or "/"
    else:
        host = compiled.pattern.host if compiled.pattern is not None else None
        path = rendered
    path = path.split("#", 1)[0].split("?", 1)[0] or "/"
    sem = TABLE[rule.status]
    if sem.method_change is MethodChange.MUST_NOT_CHANGE and rule.methods:
        method = rule.methods[0]
    else:
        method = "GET"
    return host, path, method


def _check_loops_and_chains(rules: list[Rule], source: str | None) -> list[Problem]:
    matcher = Matcher()
    by_id: dict[str, Rule] = {}
    for i, r in enumerate(rules):
        if r.enabled:
            key = f"#{i}"
            by_id[key] = r
            matcher.add(r, key)
    if not by_id:
        return []
    hosts_served = {p.host for key in by_id if (c := matcher.get(key)) and (p := c.pattern) and p.host}
    edges: dict[str, str] = {}
    for key in by_id:
        compiled = matcher.get(key)
        if compiled is None:
            continue
        sample = _sample_request(compiled)
        if sample is None:
            continue
        host, path, method = sample
        if compiled.target.origin is not None and host not in hosts_served:
            continue  # another service: nothing of ours answers there
        try:
            norm = normalise_path(path)
        except InvalidPath:
            continue
        found = matcher.match(norm, method, host, None)
        if found is not None:
            edges[key] = found[0].id
    out: list[Problem] = []
    state: dict[str, int] = {}  # 1 = on stack, 2 = done
    in_cycle: set[str] = set()
    for start in edges:
        if state.get(start):
            continue
        stack: list[str] = []
        node: str | None = start
        while node is not None and not state.get(node):
            state[node] = 1
            stack.append(node)
            node = edges.get(node)
        if node is not None and state.get(node) == 1:
            cycle = stack[stack.index(node) :]
            in_cycle.update(cycle)
            first = by_id[cycle[0]]
            if len(cycle) == 1:
                msg = "redirect loop: the target matches this rule again"
            else:
                path_txt = " -> ".join(_where(by_id[c], source) for c in cycle + [cycle[0]])
                msg = f"redirect loop across rules: {path_txt}"
            out.append(_problem(first, "error", "to", msg, "loop", source))
        for n in stack:
            state[n] = 2
    for rid, nxt in edges.items():
        if rid in in_cycle or nxt in in_cycle:
            continue
        rule, second = by_id[rid], by_id[nxt]
        final = second.to
        hops = 2
        seen = {rid, nxt}
        cur = nxt
        while cur in edges and edges[cur] not in seen:
            cur = edges[cur]
            seen.add(cur)
            final = by_id[cur].to
            hops += 1
        out.append(
            _problem(
                rule,
                "warning",
                "to",
                f"redirect chain of {hops} hops: the target is redirected again by {_where(second, source)}; "
                f"point this rule at {final} directly",
                "chain",
                source,
            )
        )
    return out
