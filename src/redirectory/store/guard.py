"""Validation of a change inside the write that makes it.

Rules of this module:
- Every rule write that can add a problem to the table (`Store.insert_rule`, `replace_rule`, `add`,
  `write_rules`) asks `TableGuard.check` while it holds the store's write lock (SQLite's
  `BEGIN IMMEDIATE`, PostgreSQL's lock on `revisions`), so the change is validated against the table
  as it is at commit. Two writers can no longer each pass validation against the table before the
  other's change and together store a loop or a duplicate.
- What is checked is `rules.tableindex.validate_change`: the problems the table would have after the
  change that it lacked before. Errors refuse the write (`ChangeRefused`, nothing is written);
  warnings go back to the caller.
- The table's index (`TableIndex`) stays in memory between writes. Inside the lock it is brought up to
  the newest revision from the change log (other processes write too); it is built from the whole
  table on the first validated write, and again when it is too far behind or its changes were pruned.
- The index is only touched inside the write lock; a write that fails after touching it drops it
  (`discard`), so the next write rebuilds it instead of trusting a change that was never committed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from redirectory.rules.model import Problem, Rule
from redirectory.rules.tableindex import PreparedChange, TableIndex, prepare_change

log = logging.getLogger("redirectory.store")

#: More change-log entries than this behind, the index is rebuilt from the table instead.
CATCH_UP_LIMIT = 20_000


class ChangeRefused(Exception):
    """A write refused because of what it would add to the table; nothing was written.

    `problems` holds the errors and the warnings (`Problem.index` is the rule's place among the
    rules written, when the problem is about one of them)."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        errors = [p for p in problems if p.is_error]
        super().__init__("; ".join(p.message for p in errors[:3]) or "the change is not valid")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]


@dataclass(frozen=True, slots=True)
class TableState:
    """What the guard reads of the table inside the write, given by the store."""

    head: Callable[[], int]  # newest revision
    horizon: Callable[[], int]  # oldest revision whose changes are still logged
    rules: Callable[[], Iterable[Rule]]  # every rule, with ids, in position order
    allowed_hosts: Callable[[], tuple[str, ...]]
    #: (upserted rules, removed ids, allowed_hosts or None) per change after a revision, oldest first
    changes: Callable[[int], Iterable[tuple[Sequence[Rule], Sequence[str], tuple[str, ...] | None]]]
    pending: Callable[[int], int]  # how many change-log entries follow a revision


class TableGuard:
    """The in-memory index of one store's table, and the check every rule write makes with it."""

    def __init__(self) -> None:
        self._index: TableIndex | None = None
        self._revision = -1
        self._prepared: PreparedChange | None = None  # the change `check` validated, for `record`
        self._lock = threading.Lock()  # one writer at a time already holds the database lock; this is belt and braces

    @property
    def revision(self) -> int:
        """The revision the index is at (-1: no index)."""
        return self._revision

    def discard(self) -> None:
        """Forget the index (a write that touched it failed); the next check rebuilds it."""
        self._prepared = None
        self._index = None
        self._revision = -1

    def _current(self, state: TableState) -> TableIndex:
        head = state.head()
        index = self._index
        if index is not None and self._revision == head:
            return index
        if index is not None and self._revision <= head and self._revision >= state.horizon() - 1 \
                and state.pending(self._revision) <= CATCH_UP_LIMIT:
            for upserts, removals, hosts in state.changes(self._revision):
                if hosts is not None:
                    index.allowed_hosts = hosts
                if upserts or removals:
                    index.apply(upserts, removals)
            self._revision = head
            return index
        self._index = None  # let the old one go before the new one is built
        started = time.perf_counter()
        index = TableIndex(state.rules(), state.allowed_hosts())
        log.info("validation index built: %d rules at revision %d in %.1f s", len(index), head,
                 time.perf_counter() - started)
        self._index, self._revision = index, head
        return index

    def check(
        self,
        state: TableState,
        upserts: Sequence[Rule],
        removals: Sequence[str] = (),
        allowed_hosts: tuple[str, ...] | None = None,
        source: str | None = None,
    ) -> list[Problem]:
        """The problems `upserts` (rules with their ids and positions) and `removals` (ids) would
        add to the table as it is now; ChangeRefused when some are errors. Call it holding the
        write lock, then `record` the change in the same transaction."""
        with self._lock:
            index = self._current(state)
            prepared = prepare_change(index, upserts, removals, allowed_hosts=allowed_hosts)
            problems = prepared.problems(source)
            # `record` commits this very change when nothing came between (same rules, same hosts)
            self._prepared = prepared if allowed_hosts is None and not any(p.is_error for p in problems) else None
        if any(p.is_error for p in problems):
            raise ChangeRefused(problems)
        return problems

    def record(
        self,
        upserts: Sequence[Rule],
        removals: Sequence[str],
        revision: int,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        """Bring the index to `revision`, the one this write is making (call it last in the write;
        `discard` if the write then fails). An index that is not at the revision before is left
        behind: the next `check` catches it up from the change log."""
        with self._lock:
            index = self._index
            if index is None or self._revision != revision - 1:
                return
            prepared, self._prepared = self._prepared, None
            if allowed_hosts is not None:
                index.allowed_hosts = allowed_hosts
            if prepared is not None and allowed_hosts is None and prepared.index is index and \
                    prepared.upserts is upserts and prepared.removals is removals and \
                    prepared.hosts == index.allowed_hosts:
                prepared.commit()
            elif upserts or removals:
                index.apply(upserts, removals)
            self._revision = revision
