"""Swapping a whole new table into a serving worker without stalling its redirects.

A big change (a 100k-rule `rules apply`) is not applied change by change: the worker reads the
whole table again and swaps a new engine in. Done naively that stalls the redirect port for
seconds, for three reasons this module avoids:

- **The GIL.** Reading and compiling 100k rules is ~3 s of Python. In a thread it holds the GIL
  while the event loop needs it once per ready socket: every callback then waits up to the switch
  interval (5 ms), so 256 busy connections wait over a second per round. Here the work runs on
  the event loop itself in slices of at most SLICE_SECONDS, and the loop serves every ready
  connection between two slices. Only the query itself (network wait on PostgreSQL) runs in a
  thread, where it holds no GIL.
- **The garbage collector.** A million new objects trigger full collections that walk every object
  in the process (~0.5 s each at 100k rules). Collection is paused while the engine is built;
  then every object alive is moved to the permanent generation (`gc.freeze`) so that no later
  collection walks the table again. The engine holds no reference cycles, so an old table is
  freed by reference counting alone once it is dropped.
- **Freeing the old table.** Dropping the last reference to 100k compiled rules frees them in one
  go (~40 ms); `Matcher.release` takes it apart in slices instead.

`pending` tells a small change (applied one by one, `Gateway.sync`) from a big one without
reading the change log itself.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from redirectory.rules.engine import Engine, EngineOptions
from redirectory.store import Store
from redirectory.store.schema import changes, revisions
from redirectory.store.schema import rules as rules_t
from redirectory.store.store import _RULE_COLUMNS, _rule_from_row

#: The longest the event loop works on a reload before it serves the ready connections again.
SLICE_SECONDS = 0.004
#: Rows fetched from the query at a time (a few hundred microseconds of work).
FETCH_ROWS = 64


def pending(store: Store, revision: int) -> tuple[int, int]:
    """(the newest revision, how many change-log entries follow `revision`): one snapshot, two
    index reads, no row of the change log decoded. Run it in a thread."""
    with store.read_connection() as conn:
        latest = int(conn.scalar(select(func.max(revisions.c.revision))) or 0)
        if latest <= revision:
            return latest, 0
        count = conn.scalar(select(func.count()).select_from(changes).where(changes.c.revision > revision))
        return latest, int(count or 0)


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection inside; afterwards every live object is frozen (never walked by
    a collection again) and collection resumes as it was."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


async def build_engine(store: Store, options: EngineOptions) -> tuple[int, Engine]:
    """(revision, a new engine for the whole table at that revision), read from one snapshot and
    compiled on the running event loop in slices of SLICE_SECONDS."""
    loop = asyncio.get_running_loop()
    snapshot = store.read_connection()
    # Opening the snapshot and running the query wait on the database: in a thread.
    conn = await loop.run_in_executor(None, snapshot.__enter__)
    try:
        revision = int(await loop.run_in_executor(None, conn.scalar, select(func.max(revisions.c.revision))) or 0)
        query = select(*_RULE_COLUMNS).order_by(rules_t.c.position, rules_t.c.id)
        result = await loop.run_in_executor(None, conn.execute, query)
        engine = Engine((), options)
        add = engine.matcher.add
        done = False
        while not done:
            deadline = time.perf_counter() + SLICE_SECONDS
            while time.perf_counter() < deadline:
                rows = result.fetchmany(FETCH_ROWS)
                if not rows:
                    done = True
                    break
                for row in rows:
                    add(_rule_from_row(row))
            await asyncio.sleep(0)
    except BaseException as exc:
        await _exit(loop, snapshot, exc)
        raise
    await _exit(loop, snapshot, None)
    return revision, engine


async def _exit(loop: asyncio.AbstractEventLoop, snapshot: Any, exc: BaseException | None) -> None:
    """Close the snapshot (in a thread: it may wait on the database)."""
    kind = type(exc) if exc is not None else None
    tb = exc.__traceback__ if exc is not None else None
    await loop.run_in_executor(None, snapshot.__exit__, kind, exc, tb)


async def release(engine: Engine) -> None:
    """Free an engine that is no longer served, in slices of SLICE_SECONDS."""
    steps = engine.matcher.release()
    while True:
        deadline = time.perf_counter() + SLICE_SECONDS
        for _ in steps:
            if time.perf_counter() >= deadline:
                break
        else:
            return
        await asyncio.sleep(0)
