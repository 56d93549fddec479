"""The permanent-redirect memory: what is remembered, bounds (property-based), SQLite, threads."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redirectory.client import RedirectMemory
from redirectory.client.memory import rememberable
from redirectory.semantics import DEFAULT_PERMANENT_MAX_AGE


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_what_is_rememberable_follows_the_semantics_table() -> None:
    assert rememberable("GET", 301) and rememberable("head", 301)
    assert not rememberable("POST", 301) and not rememberable("DELETE", 301)
    assert all(rememberable(m, 308) for m in ("GET", "POST", "PUT", "PATCH", "DELETE"))
    assert not any(rememberable("GET", s) for s in (302, 303, 304, 307, 200))


def test_lifetime_from_headers_or_default_and_expiry() -> None:
    clock = Clock()
    memory = RedirectMemory(clock=clock)
    explicit = memory.remember("GET", "http://a/x", 301, "http://a/y", {"cache-control": "max-age=60"})
    assert explicit is not None and explicit.expires_at == clock.now + 60
    default = memory.remember("GET", "http://a/d", 308, "http://a/e")
    assert default is not None and default.expires_at == clock.now + DEFAULT_PERMANENT_MAX_AGE
    assert memory.remember("GET", "http://a/n", 308, "http://a/m", {"cache-control": "no-store"}) is None
    assert memory.remember("POST", "http://a/p", 301, "http://a/q") is None
    clock.now += 61
    assert memory.lookup("GET", "http://a/x") is None  # expired, and dropped
    assert memory.lookup("GET", "http://a/d") is not None
    assert len(memory) == 1


def test_keys_are_per_method_and_head_may_use_get() -> None:
    memory = RedirectMemory()
    memory.remember("POST", "http://a/x", 308, "http://a/post-only")
    assert memory.lookup("GET", "http://a/x") is None
    assert memory.lookup("POST", "http://a/x") is not None
    memory.remember("GET", "http://a/g", 301, "http://a/h")
    head = memory.lookup("HEAD", "http://a/g")
    assert head is not None and head.target == "http://a/h"


def test_a_newer_answer_replaces_and_a_non_permanent_one_forgets() -> None:
    memory = RedirectMemory()
    memory.remember("GET", "http://a/x", 308, "http://a/1")
    memory.remember("GET", "http://a/x", 308, "http://a/2")
    entry = memory.lookup("GET", "http://a/x")
    assert entry is not None and entry.target == "http://a/2"
    memory.remember("GET", "http://a/x", 308, "http://a/3", {"cache-control": "max-age=0"})
    assert memory.lookup("GET", "http://a/x") is None


def test_remembered_moves_never_form_a_cycle() -> None:
    memory = RedirectMemory()
    memory.remember("GET", "http://a/a", 308, "http://a/b")
    memory.remember("GET", "http://a/b", 308, "http://a/c")
    memory.remember("GET", "http://a/c", 308, "http://a/a")  # the server moved back: the older a->b... goes
    chain, current = [], "http://a/a"
    while (entry := memory.lookup("GET", current)) is not None and len(chain) < 10:
        chain.append(entry.target)
        current = entry.target
    assert len(chain) < 3


def test_forget_and_discard() -> None:
    memory = RedirectMemory()
    memory.remember("GET", "http://a/x", 308, "http://a/y")
    memory.remember("PUT", "http://a/x", 308, "http://a/y")
    memory.remember("GET", "http://a/z", 308, "http://a/y")
    assert memory.forget("http://a/x") == 2
    entry = memory.lookup("GET", "http://a/z")
    assert entry is not None
    memory.remember("GET", "http://a/z", 308, "http://a/newer")
    assert memory.discard(entry) is False  # a newer entry is kept
    assert memory.lookup("GET", "http://a/z") is not None
    with pytest.raises(ValueError, match="max_entries"):
        RedirectMemory(0)


OPS = st.lists(
    st.tuples(st.sampled_from(["remember", "lookup", "forget"]), st.integers(0, 12), st.integers(0, 3)),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(bound=st.integers(1, 6), ops=OPS)
def test_bounded_lru_matches_a_reference_model(bound: int, ops: list[tuple[str, int, int]]) -> None:
    memory = RedirectMemory(bound)
    model: OrderedDict[str, str] = OrderedDict()
    for op, n, t in ops:
        url, target = f"http://h/{n}", f"http://t/{t}"
        if op == "remember":
            memory.remember("GET", url, 308, target)
            model[url] = target
            model.move_to_end(url)
            while len(model) > bound:
                model.popitem(last=False)
        elif op == "lookup":
            entry = memory.lookup("GET", url)
            assert (entry.target if entry else None) == model.get(url)
            if url in model:
                model.move_to_end(url)
        else:
            memory.forget(url)
            model.pop(url, None)
        assert len(memory) <= bound
        assert [e.url for e in memory.entries()] == list(model)


def test_sqlite_persistence_survives_reopen_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "memory.sqlite"
    clock = Clock()
    first = RedirectMemory(3, path=path, clock=clock)
    for n in range(5):
        clock.now += 1
        first.remember("GET", f"http://a/{n}", 308, f"http://b/{n}", {"cache-control": "max-age=100"})
    first.remember("POST", "http://a/short", 308, "http://b/short", {"cache-control": "max-age=1"})
    first.forget("http://a/4")
    first.close()

    clock.now += 2  # the 1 s entry has expired meanwhile
    second = RedirectMemory(10, path=path, clock=clock)
    assert sorted(e.url for e in second.entries()) == ["http://a/3"]
    entry = second.lookup("GET", "http://a/3")
    assert entry is not None and entry.target == "http://b/3" and entry.freshness == "Cache-Control: max-age=100"
    second.clear()
    second.close()
    assert len(RedirectMemory(path=path, clock=clock)) == 0


def test_two_memories_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    a, b = RedirectMemory(path=path), RedirectMemory(path=path)
    a.remember("GET", "http://a/x", 308, "http://a/y")
    b.remember("GET", "http://b/x", 308, "http://b/y")
    a.close()
    b.close()
    assert {e.url for e in RedirectMemory(path=path).entries()} == {"http://a/x", "http://b/x"}


def test_unusable_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="cannot open the redirect memory"):
        RedirectMemory(path=bad)


@pytest.mark.parametrize("persistent", [False, True])
def test_many_threads_keep_the_bound_and_the_file_consistent(tmp_path: Path, persistent: bool) -> None:
    path = tmp_path / "threads.sqlite" if persistent else None
    memory = RedirectMemory(50, path=path)
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def work(worker: int) -> None:
        try:
            start.wait()
            for i in range(300):
                url = f"http://h/{(worker * 7 + i) % 80}"
                memory.remember("GET", url, 308, f"http://t/{worker}")
                entry = memory.lookup("GET", url)
                assert entry is None or entry.url == url
                if i % 17 == 0:
                    memory.forget(url)
                assert len(memory) <= 50
        except BaseException as exc:  # noqa: BLE001 - collected for the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(memory) <= 50
    if persistent:
        final = {(e.method, e.url, e.target) for e in memory.entries()}
        memory.close()
        assert {(e.method, e.url, e.target) for e in RedirectMemory(50, path=path).entries()} == final
