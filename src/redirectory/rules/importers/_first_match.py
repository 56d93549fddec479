"""First-match order (Netlify, Vercel) in redirectory's most-specific-first table.

Netlify and Vercel try their redirects in file order and use the first that matches; redirectory
ranks host-specific before any-host, exact before pattern, more literal segments first, then
`priority`, and regex rules last (by priority, then file order). An importer describes each
redirect as a `Candidate`: the set of paths it matches (`Shape`), the rule mappings that express
it as exact or pattern rules (`plain`, None when only a regex can), and the regex rule that
expresses it (`regex`, None when none can: a host-specific redirect). `resolve` then adds them so
that the table answers every request as the platform does:

- a redirect that an earlier one fully covers (every path it matches, the earlier one matches
  too) is never used: skipped with a warning naming both lines (`import.duplicate` when the two
  match the same paths, else `import.shadowed`);
- a redirect that an earlier one may also match (they overlap without covering) keeps its plain
  form when redirectory already ranks every such earlier rule above it; when one ranks equal,
  the rules of such ties get `priority` in file order (only those: most files need none); when an
  earlier one ranks below it (or is a regex), it becomes a regex rule, which redirectory tries after
  every earlier exact or pattern rule and after earlier regex rules (file order). A host-specific
  redirect's regex form is a host-specific regex (`^//host...`), tried after that host's exact and
  pattern rules and before any-host rules; where none can be written it is skipped with a warning
  naming the earlier line.

Coverage and overlap are decided on the shapes: `covers` only says yes when it is certain,
`overlaps` only says no when it is certain (a regex source is compared by its literal start).

Query conditions (`Candidate.query`, Vercel's `has` on the query): a redirect covers a later one
only when the later one's conditions imply its own (so a conditional redirect never covers an
unconditional one). redirectory ranks a rule with query conditions before one without at equal
path precedence, whatever their priorities, and a regex with conditions before every regex without
(of its host class): a later conditional redirect that an earlier unconditional one may also
match therefore becomes a regex rule when its plain form would rank equal, and is skipped with a
warning naming both lines when the earlier one is a regex rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from redirectory.rules.importers._common import _Builder, _regex_rule
from redirectory.rules.patterns import PatternError, parse_source

#: `Shape.tail`: zero or more segments of any text, or zero or more non-empty segments.
ANY = "any"
SOME = "some"


@dataclass(frozen=True)
class Shape:
    """The paths a redirect matches, as segments after the first `/`.

    `segs`: literal text (`""` is an empty segment: a trailing slash), or None for one non-empty
    segment; `tail`: None, ANY or SOME more segments; `host`: "" for any host. `opaque` shapes (a
    regex source) are known by `prefix` only: every path they match starts with it."""

    segs: tuple[str | None, ...] = ()
    tail: str | None = None
    host: str = ""
    opaque: bool = False
    prefix: str = "/"

    def start(self) -> str:
        if self.opaque:
            return self.prefix
        literals: list[str] = []
        for seg in self.segs:
            if seg is None:
                break
            literals.append(seg)
        text = "/" + "/".join(literals)
        return text + "/" if len(literals) < len(self.segs) else text


def covers(e: Shape, r: Shape) -> bool:
    """Whether every path `r` matches, `e` matches too (False when unsure)."""
    if e.opaque or r.opaque or (e.host and e.host != r.host):
        return False
    ne, nr = len(e.segs), len(r.segs)
    if r.tail is not None:
        if e.tail is None or ne > nr or (e.tail == SOME and r.tail == ANY):
            return False
    elif (e.tail is None and ne != nr) or (e.tail is not None and ne > nr):
        return False
    for es, rs in zip(e.segs, r.segs, strict=False):
        if es is None:
            if rs == "":
                return False
        elif es != rs:
            return False
    return not (e.tail == SOME and "" in r.segs[ne:])


def overlaps(e: Shape, r: Shape) -> bool:
    """Whether some path may match both (True when unsure)."""
    if e.host and r.host and e.host != r.host:
        return False
    if e.opaque or r.opaque:
        a, b = e.start(), r.start()
        return a.startswith(b) or b.startswith(a)
    ne, nr = len(e.segs), len(r.segs)
    if (ne < nr and e.tail is None) or (nr < ne and r.tail is None):
        return False
    for x, y in zip(e.segs, r.segs, strict=False):
        if x is not None and y is not None and x != y:
            return False
        if (x is None and y == "") or (y is None and x == ""):
            return False
    longer, shorter = (e, r) if ne > nr else (r, e)
    return not (shorter.tail == SOME and "" in longer.segs[len(shorter.segs):])


@dataclass
class Candidate:
    line: int
    what: str
    shape: Shape
    plain: list[dict[str, Any]] | None  # exact or pattern rule mappings; None: a regex only
    regex: tuple[str, str, int] | None  # (regex, to, status); None: no regex form
    source: str  # the redirect's FROM as written, for messages
    kind: str = ""
    rank: tuple[int, ...] = field(default=())
    clone_of: Candidate | None = None  # an any-host redirect copied for one host (`_with_host_copies`)
    query: dict[str, str] | None = None  # query conditions (`query_match`: a value, or "*": present)


def _implied(earlier: dict[str, str] | None, later: dict[str, str] | None) -> bool:
    """Whether every query that meets `later`'s conditions meets `earlier`'s."""
    later = later or {}
    return all(name in later and value in ("*", later[name]) for name, value in (earlier or {}).items())


def _covers(e: Candidate, r: Candidate) -> bool:
    """Whether every request `r` matches, `e` matches too (False when unsure)."""
    return covers(e.shape, r.shape) and _implied(e.query, r.query)


def regex_prefix(regex: str) -> str:
    """A literal text every path a `^`-anchored regex matches starts with ("/" when unsure)."""
    if not regex.startswith("^") or "|" in regex:
        return "/"
    m = re.match(r"[A-Za-z0-9/_~-]*", regex[1:])
    text = m.group(0) if m else ""
    rest = regex[1 + len(text):]
    if rest[:1] in ("?", "*", "{"):
        text = text[:-1]
    return text if text.startswith("/") else "/"


def _rank(mapping: dict[str, Any]) -> tuple[int, ...]:
    """redirectory's precedence class of an exact or pattern rule (lower first)."""
    try:
        p = parse_source(mapping["from"])
    except PatternError:
        return (9,)
    return (0 if p.host else 1, 0 if p.is_exact else 1, -p.literal_count, 1 if p.tail else 0)


class _Index:
    """The kept redirects that may overlap a shape, in file order, without comparing with all of
    them: a path of a shape with the literal `t` at segment `i` can only match a redirect with `t`
    or a placeholder there, or one whose `*` starts at or before `i` (or a regex)."""

    def __init__(self, kept: list[Candidate]) -> None:
        self.kept = kept
        self.at: dict[tuple[int, str | None], list[int]] = {}
        self.tails: dict[int, list[int]] = {}  # by the number of segments before the tail
        self.opaque: list[int] = []

    def add(self, shape: Shape) -> None:
        n = len(self.kept)
        if shape.opaque:
            self.opaque.append(n)
            return
        for i, seg in enumerate(shape.segs):
            self.at.setdefault((i, seg), []).append(n)
        if shape.tail is not None:
            self.tails.setdefault(len(shape.segs), []).append(n)

    def nearby(self, shape: Shape) -> list[Candidate]:
        literals = [] if shape.opaque else [(i, seg) for i, seg in enumerate(shape.segs) if seg is not None]
        if not literals:
            return self.kept

        def size(i: int, seg: str) -> int:
            tails = sum(len(ns) for length, ns in self.tails.items() if length <= i)
            return len(self.at.get((i, seg), ())) + len(self.at.get((i, None), ())) + tails

        i, seg = min(literals, key=lambda literal: size(*literal))
        tails = [n for length, ns in self.tails.items() if length <= i for n in ns]
        found = self.at.get((i, seg), []) + self.at.get((i, None), []) + tails + self.opaque
        return [self.kept[n] for n in sorted(set(found))]


def _with_host_copies(candidates: list[Candidate]) -> list[Candidate]:
    """`candidates` with, right after each any-host redirect that comes before a host-specific one
    it overlaps, a copy for that host: redirectory tries every host-specific rule before any-host
    ones, so on that host the copy keeps the platform's order (it is resolved like the others)."""
    if not any(c.shape.host for c in candidates):
        return candidates
    later: dict[str, list[Shape]] = {}  # host → shapes of the host's rules (and copies) further down
    copies: dict[int, list[Candidate]] = {}
    for n in range(len(candidates) - 1, -1, -1):
        c = candidates[n]
        if c.shape.host:
            later.setdefault(c.shape.host, []).append(c.shape)
            continue
        if c.plain is None and c.regex is None:
            continue
        for host, shapes in later.items():
            if any(overlaps(c.shape, shape) for shape in shapes):
                shape = replace(c.shape, host=host)
                plain = None if c.plain is None else [{**m, "from": "//" + host + m["from"]} for m in c.plain]
                copy = Candidate(c.line, c.what, shape, plain, c.regex, c.source, clone_of=c, query=c.query)
                copies.setdefault(n, []).append(copy)
                shapes.append(shape)
    return [x for n, c in enumerate(candidates) for x in [c, *copies.get(n, [])]]


def _unordered(c: Candidate, earlier: list[Candidate]) -> Candidate | None:
    """An earlier redirect that redirectory would try after `c` whatever `c` becomes: an
    unconditional regex of its host class before a conditional regex `c`, or (for a host-specific
    `c`) an any-host one no copy for that host stands for."""
    for k in earlier:
        if c.kind == "regex" and c.query and k.kind == "regex" and not k.query \
                and bool(k.shape.host) == bool(c.shape.host):
            return k
        if c.shape.host and not k.shape.host:
            return k
    return None


def resolve(b: _Builder, candidates: list[Candidate]) -> None:
    """Add `candidates` (in file order) so that the first that matches answers (module docstring)."""
    candidates = _with_host_copies(candidates)
    copied: set[tuple[int, str]] = set()  # (any-host redirect, host) whose copy is in the table or covered
    kept: list[Candidate] = []
    index = _Index(kept)
    ties: set[int] = set()
    for c in candidates:
        nearby = index.nearby(c.shape)
        # a copy stands for its redirect among the host's rules: only those can cover it
        cover = next((k for k in nearby if _covers(k, c) and (k.shape.host or c.clone_of is None)), None)
        if cover is not None and c.clone_of is not None:
            copied.add((id(c.clone_of), c.shape.host))
            continue
        if cover is not None:
            same = _covers(c, cover)
            b.warn(c.line, "import.duplicate" if same else "import.shadowed",
                   f"{c.what}: never used: line {cover.line} (`{cover.source}`) comes first and matches "
                   f"{'the same paths' if same else 'every path it does'}: skipped")
            continue
        earlier = [k for k in nearby if overlaps(k.shape, c.shape)
                   and k is not c.clone_of
                   and not (c.shape.host and not k.shape.host and (id(k), c.shape.host) in copied)]
        c.kind = "plain" if c.plain is not None else "regex"
        if c.plain is not None:
            c.rank = (*_rank(c.plain[0]), 0 if c.query else 1)  # conditions first at equal path precedence
            if any(k.kind == "regex" or k.rank > c.rank for k in earlier):
                c.kind = "regex"
        blocker = _unordered(c, earlier)
        if blocker is not None and c.clone_of is not None:
            continue  # as below: the host's later rules see the any-host redirect itself
        if blocker is not None:
            b.warn(c.line, "import.order", f"{c.what}: line {blocker.line} (`{blocker.source}`) comes first for "
                   "some of its paths, and redirectory tries a regex rule with query conditions before every "
                   "regex rule without (or a host's rules before any-host ones): skipped")
            continue
        if c.kind == "regex" and c.regex is None and c.clone_of is not None:
            continue  # the host's later rules then see the any-host redirect itself: they are skipped
        if c.kind == "regex" and c.regex is None:
            first = next(k for k in earlier if k.kind == "regex" or k.rank > c.rank)
            b.warn(c.line, "import.order", f"{c.what}: line {first.line} (`{first.source}`) comes first for "
                   "some of its paths, and this redirect has no regex form to place after it (a "
                   "host-specific one, or a splat inside the query): skipped")
            continue
        if c.kind == "plain":
            same_rank = [id(k) for k in earlier if k.rank == c.rank]
            if same_rank:
                ties.update(same_rank)
                ties.add(id(c))
        if c.clone_of is not None:
            copied.add((id(c.clone_of), c.shape.host))
        index.add(c.shape)
        kept.append(c)
    total = len(kept)
    for n, c in enumerate(kept):
        if c.kind == "regex":
            assert c.regex is not None
            regex, to, status = c.regex  # a host's: `^//host...`, tried with that host's rules
            _regex_rule(b, c.line, c.what, regex, to, status, host=c.shape.host or None, host_required=True,
                        query_match=c.query)
            continue
        assert c.plain is not None
        for mapping in c.plain:
            mapping = {**mapping, "query_match": c.query} if c.query else mapping
            b.add(c.line, {**mapping, "priority": total - n} if id(c) in ties else mapping)
