"""The history's retention: pruning the change log, history and restore inside and outside the
window, the SQLite file shrinking, and gateways that fall behind the pruned horizon.

Store-level tests run on SQLite and PostgreSQL (the `store` fixture); the gateway tests run the
real `redirectory serve` and pause it with SIGSTOP to make it fall behind.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.model import Rule, RuleSet
from redirectory.store import HistoryPruned, Retention, Store
from redirectory.store.retention import history_json
from redirectory.store.schema import changes, revisions
from redirectory.store.store import sqlite_file

EVERYTHING = float("inf")


def _table(version: int, count: int = 30, hosts: tuple[str, ...] = ()) -> RuleSet:
    rules = [Rule(to=f"/v{version}/t{i}" if i % 3 == 0 else f"/t{i}", source=f"/a{i}", status=308)
             for i in range(version % 4, count)]
    regexes = [Rule(to=f"/re{n}", source_regex=f"^/re{n}/(.*)$", status=307) for n in range(3)]
    if version % 2:
        regexes.reverse()  # regex order matters: every move is a logged change
    return RuleSet(rules=(*regexes, *rules), allowed_hosts=hosts)


State = tuple[dict[str, Rule], list[str | None], tuple[str, ...]]


def _state(ruleset: RuleSet) -> State:
    """What a table is: its rules by id, the order of its regex rules, allowed_hosts."""
    by_id = {rule.id: rule for rule in ruleset.rules if rule.id}
    return by_id, [rule.id for rule in ruleset.rules if rule.is_regex], tuple(ruleset.allowed_hosts)


def _history(store: Store) -> dict[int, State]:
    """Writes of every kind (apply, import with allowed_hosts, create, replace, delete); the
    table after each revision."""
    seen: dict[int, State] = {}

    def snap() -> None:
        revision, ruleset = store.load()
        seen[revision] = _state(ruleset)

    store.apply(_table(1, hosts=("a.example",)))
    snap()
    store.apply(_table(2, hosts=("b.example",)))
    snap()
    row = store.insert_rule(Rule(to="/made", source="/made-by-api", status=301), actor="api:test")
    snap()
    store.replace_rule(row.id, Rule(to="/changed", source="/made-by-api", status=301), actor="api:test")
    snap()
    victim = next(rule for rule in store.load()[1].rules if rule.source == "/a10")
    assert victim.id is not None and store.delete_rule(victim.id, actor="api:test")
    snap()
    store.add([Rule(to=f"/moved{i}", source=f"/imported{i}", status=301) for i in range(3)],
              actor="api:test", allowed_hosts=("c.example",))
    snap()
    store.apply(_table(3, hosts=("c.example",)))
    snap()
    store.apply(_table(4))
    snap()
    return seen


def _change_rows(store: Store, below: int | None = None) -> int:
    query = select(func.count()).select_from(changes)
    if below is not None:
        query = query.where(changes.c.revision < below)
    with store.read_connection() as conn:
        return int(conn.scalar(query) or 0)


def test_pruned_history_keeps_its_window_whole_and_says_what_is_gone(store: Store) -> None:
    seen = _history(store)
    latest = max(seen)
    assert store.oldest_revision() == 1
    for revision, state in seen.items():  # before any pruning: back from the current table
        assert _state(store.ruleset_at(revision)) == state, revision
    assert store.ruleset_at(0).rules == ()

    pruned = store.prune_history(Retention(keep_revisions=4, keep_days=0), seconds=EVERYTHING)
    oldest = latest - 3
    assert (pruned.oldest, pruned.revisions, pruned.done) == (oldest, oldest - 1, True)
    assert store.oldest_revision() == oldest
    assert _change_rows(store, below=oldest) == 0 and pruned.changes > 0

    total, page = store.history(0, 10)
    assert total == 4 and [r.revision for r in page] == list(range(latest, oldest - 1, -1))
    assert sum(r.change_count for r in page) == _change_rows(store)
    for revision in range(oldest, latest + 1):
        assert _state(store.ruleset_at(revision)) == seen[revision], revision
        info = store.revision_info(revision)
        assert info is not None and info.change_count == len(info.changes) > 0
    for revision in (0, 1, oldest - 1):
        with pytest.raises(HistoryPruned) as gone:
            store.ruleset_at(revision)
        assert gone.value.oldest == oldest
    for revision in (1, oldest - 1):
        with pytest.raises(HistoryPruned):
            store.revision_info(revision)
    assert store.revision_info(latest + 1) is None
    with pytest.raises(LookupError) as unknown:
        store.ruleset_at(latest + 1)
    assert not isinstance(unknown.value, HistoryPruned)

    # A reader one revision before the window has every change it needs; one further back does not.
    assert store.catch_up(oldest - 1)[0] == latest
    assert [c.revision for c in store.changes_since(oldest - 1)][0] == oldest
    with pytest.raises(HistoryPruned):
        store.catch_up(oldest - 2)
    with pytest.raises(HistoryPruned):
        store.changes_since(0)
    assert store.catch_up(latest) == (latest, [])

    again = store.prune_history(Retention(keep_revisions=4, keep_days=0), seconds=EVERYTHING)
    assert (again.oldest, again.changes, again.revisions) == (oldest, 0, 0)


def test_the_window_is_the_newest_revisions_or_the_young_ones_whichever_keeps_more(store: Store) -> None:
    for version in range(1, 6):
        store.apply(_table(version))
    now = datetime.now(UTC)
    keep = Retention(keep_revisions=1, keep_days=30)
    assert store.prune_history(keep, now=now, seconds=EVERYTHING).oldest == 1  # all younger than 30 days
    month_later = now + timedelta(days=31)
    assert store.prune_history(Retention(keep_revisions=3, keep_days=30), now=month_later,
                               seconds=EVERYTHING).oldest == 3
    assert store.prune_history(keep, now=month_later, seconds=EVERYTHING).oldest == 5  # the newest stays
    assert store.history()[0] == 1 and _state(store.ruleset_at(5)) == _state(store.load()[1])


def test_the_change_budget_cuts_whole_revisions_and_keeps_the_newest(store: Store) -> None:
    sizes = [100, 100, 100]
    for n, size in enumerate(sizes):
        store.add([Rule(to=f"/t{n}/{i}", source=f"/r{n}/{i}", status=301) for i in range(size)])
    floors = {"keep_revisions": 100, "keep_days": 30}  # both floors would keep everything
    assert store.prune_history(Retention(**floors, max_changes=300), seconds=EVERYTHING).oldest == 1
    assert store.prune_history(Retention(**floors, max_changes=250), seconds=EVERYTHING).oldest == 2
    assert _change_rows(store) == 200
    store.add([Rule(to=f"/bigger/{i}", source=f"/big/{i}", status=301) for i in range(400)])
    assert store.prune_history(Retention(**floors, max_changes=250), seconds=EVERYTHING).oldest == 4
    assert _change_rows(store) == 400  # larger than the budget, but the newest revision is kept whole
    assert len(store.ruleset_at(4).rules) == 700


def test_readers_treat_the_horizon_as_pruned_before_the_rows_are_deleted(store: Store) -> None:
    seen = {}
    for version in range(1, 6):
        store.apply(_table(version))
        seen[version] = _state(store.load()[1])
    before = _change_rows(store)
    first = store.prune_history(Retention(keep_revisions=2, keep_days=0), seconds=0)
    assert (first.oldest, first.changes, first.done) == (4, 0, False)  # horizon moved, nothing deleted yet
    assert _change_rows(store) == before
    assert store.history()[0] == 2 and store.oldest_revision() == 4
    with pytest.raises(HistoryPruned):
        store.catch_up(1)
    with pytest.raises(HistoryPruned):
        store.revision_info(3)
    assert _state(store.ruleset_at(4)) == seen[4]
    rest = store.prune_history(Retention(keep_revisions=2, keep_days=0), seconds=EVERYTHING)
    assert rest.done and rest.revisions == 3 and _change_rows(store, below=4) == 0
    with store.read_connection() as conn:
        assert conn.scalar(select(func.min(revisions.c.revision))) == 4


def _file_size(store: Store) -> int:
    """The database file's size with the WAL copied into it."""
    path = sqlite_file(str(store.engine.url))
    assert path is not None
    with store.engine.connect() as conn:
        conn.connection.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
    return path.stat().st_size


def test_sqlite_gives_the_space_back(tmp_path: Path) -> None:
    """Eight 3k-rule applies that change every rule, pruned after each as a gateway does: pruning
    shrinks the file, which stops growing once the window is full."""
    with Store.open(f"sqlite:///{tmp_path}/shrink.db") as store:
        store.upgrade()
        with store.read_connection() as conn:
            assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2  # INCREMENTAL
        keep = Retention(keep_revisions=2, keep_days=0, max_changes=6_000)
        applied, pruned = [], []
        for version in range(8):
            store.apply(RuleSet(rules=tuple(Rule(to=f"/v{version}/{i}", source=f"/s{i}", status=301)
                                            for i in range(3000))))
            applied.append(_file_size(store))
            assert store.prune_history(keep, seconds=EVERYTHING).oldest == max(1, version)
            pruned.append(_file_size(store))
        assert all(after < before for before, after in zip(applied[2:], pruned[2:], strict=True)), (applied, pruned)
        assert max(pruned[3:]) < 1.1 * pruned[2] and applied[7] < 1.1 * applied[3], (applied, pruned)
        unpruned = applied[1] + 6 * (applied[1] - applied[0])  # every apply logs 3k changes more
        assert applied[7] < unpruned / 2, (applied, pruned)
        store.prune_history(Retention(keep_revisions=1, keep_days=0), seconds=EVERYTHING)
        assert store.oldest_revision() == 8 and _file_size(store) < 0.8 * pruned[7]


def test_retention_from_the_environment_names_a_bad_variable() -> None:
    assert Retention.from_env({}) == Retention()
    assert Retention.from_env({"REDIRECTORY_HISTORY_KEEP_DAYS": "0", "REDIRECTORY_HISTORY_MAX_CHANGES": " 7 "}) \
        == Retention(keep_days=0, max_changes=7)
    for variable, value in [("REDIRECTORY_HISTORY_KEEP_REVISIONS", "0"), ("REDIRECTORY_HISTORY_KEEP_DAYS", "-1"),
                            ("REDIRECTORY_HISTORY_MAX_CHANGES", "1e6"), ("REDIRECTORY_HISTORY_KEEP_DAYS", "30d")]:
        with pytest.raises(ValueError) as bad:
            Retention.from_env({variable: value})
        assert variable in str(bad.value) and "whole number" in str(bad.value)
        assert history_json(7, {variable: value}) == {"oldest_revision": 7, "error": str(bad.value)}
    assert history_json(None, {}) == {"oldest_revision": None, "keep_revisions": 100, "keep_days": 30,
                                      "max_changes": 250_000}


# -- the real gateway ---------------------------------------------------------------------------

SMALL = {"REDIRECTORY_HISTORY_KEEP_REVISIONS": "3", "REDIRECTORY_HISTORY_KEEP_DAYS": "0",
         "REDIRECTORY_HISTORY_MAX_CHANGES": "1000"}


def _wait(what: str, check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            assert value, f"not {what} after {timeout}s"
            return value
        time.sleep(0.05)


def _write_key(served: ServeProcess) -> str:
    done = cli("keys", "create", "retention", "--scope", "write", "--database", served.database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


def _assert_gone(r: httpx.Response, oldest: int) -> None:
    assert r.status_code == 410, r.text
    body = r.json()
    assert body["type"] == "urn:redirectory:error:revisionPruned" and body["title"] == "Gone"
    assert body["errors"][0]["fields"] == ["revision"] and f"starts at revision {oldest}" in body["errors"][0]["detail"]


def _location(served: ServeProcess, path: str) -> tuple[int, str | None]:
    r = httpx.get(served.base + path, follow_redirects=False, timeout=10)
    return r.status_code, r.headers.get("location")


def test_history_and_restore_inside_the_window_and_410_outside(tmp_path: Path) -> None:
    served = start_serve(tmp_path, env=SMALL)
    try:
        health = served.health()
        assert health["history"] == {"oldest_revision": None, "keep_revisions": 3, "keep_days": 0, "max_changes": 1000}
        with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {_write_key(served)}"},
                          timeout=30) as api:
            for i in range(1, 7):
                made = api.post("/api/v1/rules", json={"from": f"/r{i}", "to": f"/t{i}", "status": 308})
                assert made.status_code == 201, made.text
            # The gateway prunes on its own within a flush or two of seeing revision 6.
            _wait("pruned to revision 4", lambda: served.health()["history"]["oldest_revision"] == 4)
            listed = api.get("/api/v1/history").json()
            assert [item["revision"] for item in listed["items"]] == [6, 5, 4]
            assert listed["metadata"]["pagination"]["totalCount"] == 3
            assert api.get("/api/v1/history/4").status_code == 200
            assert api.get("/api/v1/history/4/changes").json()["items"][0]["after"]["from"] == "/r4"
            for gone in (api.get("/api/v1/history/1"), api.get("/api/v1/history/3/changes"),
                         api.post("/api/v1/history/2/restore"), api.options("/api/v1/history/3")):
                _assert_gone(gone, 4)
            assert api.get("/api/v1/history/7").status_code == 404
            assert api.post("/api/v1/history/70/restore").status_code == 404

            restored = api.post("/api/v1/history/4/restore")
            assert restored.status_code == 200, restored.text
            assert restored.json()["plan"] == {"added": 0, "changed": 0, "removed": 2}
            _wait("restored table served", lambda: _location(served, "/r6")[0] == 404)
            assert _location(served, "/r4") == (308, "/t4") and _location(served, "/r1") == (308, "/t1")
    finally:
        served.stop()


def _apply_versions(url: str, versions: range, retention: Retention) -> int:
    """Apply tables `versions` and prune the history down to `retention`; the newest revision."""
    with Store.open(url) as store:
        for version in versions:
            store.apply(_table(version))
        pruned = store.prune_history(retention, seconds=EVERYTHING)
        assert pruned.done
        return store.revision()


def _answers_match(served: ServeProcess, url: str) -> bool:
    with Store.open(url) as store:
        ruleset = store.load()[1]
    expected = {rule.source: rule.to for rule in ruleset.rules if rule.source}
    return all(_location(served, source) == (308, to) for source, to in expected.items()) and \
        _location(served, "/a0")[0] == (308 if "/a0" in expected else 404)


def _converged_at(served: ServeProcess, revision: int) -> bool:
    health = served.health()
    live = [p for p in health["processes"] if not p["stale"]]  # type: ignore[union-attr]
    return bool(health["converged"]) and health["revision"] == revision and bool(live)


@contextmanager
def _paused(served: ServeProcess) -> Iterator[None]:
    """SIGSTOP the serve process (one worker: everything runs in it) while it holds no SQLite write
    lock (a heartbeat commits every second: if one is in flight, let it finish and try again)."""
    path = sqlite_file(served.database)
    for _attempt in range(100):
        os.kill(served.proc.pid, signal.SIGSTOP)
        if path is None:
            break
        probe = sqlite3.connect(path, timeout=0.2, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            break
        except sqlite3.OperationalError:
            os.kill(served.proc.pid, signal.SIGCONT)
            _wait("a heartbeat", lambda: True)
        finally:
            probe.close()
    else:
        raise AssertionError("the serve process always held the write lock")
    try:
        yield
    finally:
        os.kill(served.proc.pid, signal.SIGCONT)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def serve_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/gateway.db"
    else:
        url = str(request.getfixturevalue("postgres_url"))
    with Store.open(url) as store:
        store.upgrade()
        store.apply(_table(1))
    return url


def test_a_running_gateway_behind_the_horizon_reloads_the_whole_table(serve_url: str, tmp_path: Path) -> None:
    served = start_serve(tmp_path, database=serve_url)  # default retention: it prunes nothing here
    try:
        _wait("serving revision 1", lambda: _converged_at(served, 1))
        with _paused(served):
            latest = _apply_versions(serve_url, range(2, 7), Retention(keep_revisions=2, keep_days=0))
        # Its revision 1 is older than the oldest kept (5) - 1: catching up is impossible, so it reloads.
        _wait(f"converged at revision {latest}", lambda: _converged_at(served, latest))
        assert _answers_match(served, serve_url)
        served.wait_for_lines(r".*revision 1 is older than the history kept \(oldest revision kept: 5\); "
                              r"loading the whole table", 1)
    finally:
        served.stop()


def test_a_gateway_stopped_across_a_prune_starts_at_the_current_table(tmp_path: Path) -> None:
    serve_url = f"sqlite:///{tmp_path}/gateway.db"  # it loads the table at start, as on PostgreSQL
    with Store.open(serve_url) as store:
        store.upgrade()
        store.apply(_table(1))
    served = start_serve(tmp_path, database=serve_url)
    _wait("serving revision 1", lambda: _converged_at(served, 1))
    assert served.stop() == 0
    latest = _apply_versions(serve_url, range(2, 8), Retention(keep_revisions=1, keep_days=0))
    with Store.open(serve_url) as store:
        assert store.oldest_revision() == latest
    again = start_serve(tmp_path, database=serve_url)
    try:
        _wait(f"converged at revision {latest}", lambda: _converged_at(again, latest))
        assert _answers_match(again, serve_url)
    finally:
        again.stop()
