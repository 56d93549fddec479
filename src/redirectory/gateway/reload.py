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

from redirectory.rules.engine import Engine, EngineOptions
from redirectory.store import Store

#: The longest the event loop works on a reload before it serves the ready connections again.
SLICE_SECONDS = 0.004
#: Rows fetched from the query at a time (a few hundred microseconds of work).
FETCH_ROWS = 64


def pending(store: Store, revision: int) -> tuple[int, int]:
    """`Store.pending`: (the newest revision, change-log entries after `revision`). Run it in a thread."""
    return store.pending(revision)


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
    reader = store.table_reader(ordered=False)
    # Opening the snapshot and running the query wait on the database: in a thread.
    revision = await loop.run_in_executor(None, reader.open)
    try:
        engine = Engine((), options)
        add = engine.matcher.add
        done = False
        while not done:
            deadline = time.perf_counter() + SLICE_SECONDS
            while time.perf_counter() < deadline:
                rules = reader.fetch(FETCH_ROWS)
                if not rules:
                    done = True
                    break
                for rule in rules:
                    add(rule)
            await asyncio.sleep(0)
    except BaseException as exc:
        await loop.run_in_executor(None, reader.close, exc)
        raise
    await loop.run_in_executor(None, reader.close)
    # The regex sets, one shard per step (a shard of 16k patterns compiles in ~0.2 s: the most the loop
    # waits), before the swap: no request after it pays for them.
    for _shard in engine.matcher.prepare():
        await asyncio.sleep(0)
    return revision, engine


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
