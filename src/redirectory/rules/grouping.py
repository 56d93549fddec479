"""Problems that repeat, said once: one group per (severity, code, field, message), with a count.

Rules of this module:
- A table of a million rules can have a million times the same warning (`301 lets clients turn
  every method into GET`); the CLI and the admin API report it as one group with its count and the
  first few rules (`SHOWN` lines or indexes), not a million lines. `--verbose` lists them all.
- A group of at most `SINGLE_LIMIT` problems is not a group: each problem is reported as it is.
- Groups keep the order of their first problem, so errors sorted by line stay so.
- Problems whose messages differ (a chain names its neighbours) are never merged into one message:
  they form groups only with identical messages.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from redirectory.rules.model import Problem

Key = tuple[str, str, str, str]  # severity, code, field, message

#: How many of a group's problems are named (by line, or by index when there is no line).
SHOWN = 5
#: A group of this many problems or fewer is reported problem by problem.
SINGLE_LIMIT = 3


@dataclass(frozen=True, slots=True)
class ProblemGroup:
    """Problems with the same severity, code, field and message: `first` holds the first SHOWN."""

    count: int
    first: tuple[Problem, ...]

    @property
    def problem(self) -> Problem:
        return self.first[0]

    @property
    def is_error(self) -> bool:
        return self.first[0].is_error

    def where(self) -> str:
        """`lines 3, 6, 9, 12, 15 and 999,995 more` (or `rules #0, #1 ...` without lines)."""
        shown = [f"{p.line}" if p.line is not None else f"#{p.index}" if p.index is not None else "?"
                 for p in self.first]
        kind = "lines" if self.first[0].line is not None else "rules"
        more = self.count - len(self.first)
        return f"{kind} {', '.join(shown)}" + (f" and {more:,} more" if more > 0 else "")

    def format(self, source: str | None = None) -> str:
        """`FILE: field: warning: message (1,000,000 rules: lines 3, 6, ... and 999,995 more)`."""
        p = self.first[0]
        where = source or p.source or "<input>"
        tag = "" if p.is_error else "warning: "
        return f"{where}: {p.field}: {tag}{p.message} ({self.count:,} rules: {self.where()})"


def group_problems(problems: Iterable[Problem], shown: int = SHOWN,
                   single_limit: int = SINGLE_LIMIT) -> list[Problem | ProblemGroup]:
    """Problems in their order, those repeated more than `single_limit` times folded into one group."""
    members: dict[Key, list[Problem]] = {}
    counts: dict[Key, int] = {}
    singles: list[tuple[Key, Problem]] = []
    for p in problems:
        key: Key = (p.severity, p.code, p.field, p.message)
        n = counts.get(key)
        if n is None:
            members[key] = [p]
            counts[key] = 1
        else:
            counts[key] = n + 1
            if n < max(shown, single_limit):
                members[key].append(p)
        if counts[key] <= single_limit:
            singles.append((key, p))
    out: list[Problem | ProblemGroup] = []
    emitted: set[Key] = set()
    for key, single in singles:
        if counts[key] <= single_limit:
            out.append(single)
        elif key not in emitted:
            emitted.add(key)
            out.append(ProblemGroup(counts[key], tuple(members[key][:shown])))
    return out
