"""The store against real databases: SQLite files under tmp_path and, when reachable,
PostgreSQL (see the `store_url`/`store` fixtures in conftest.py). No mocks."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from redirectory.rules.model import Rule, RuleSet
from redirectory.store import Plan, Store, normalize_url
from redirectory.store.schema import changes, metadata, revisions, rule_hits, unmatched_paths
from redirectory.store.store import MIGRATIONS_DIR, UNMATCHED_KEEP

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def path_rule(source: str, to: str = "/new", **kw: object) -> Rule:
    return Rule(to=to, source=source, **kw)  # type: ignore[arg-type]


def regex_rule(pattern: str, to: str = "/r/$1", **kw: object) -> Rule:
    return Rule(to=to, source_regex=pattern, **kw)  # type: ignore[arg-type]


def by_source(ruleset: RuleSet) -> dict[str, Rule]:
    return {r.from_text: r for r in ruleset.rules}


def count(store: Store, table: object) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def revision_rows(store: Store) -> list[tuple[int, str, str]]:
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(revisions.c.revision, revisions.c.actor, revisions.c.summary).order_by(revisions.c.revision)
        )
        return [(r.revision, r.actor, r.summary) for r in rows]


# --------------------------------------------------------------------------- opening


def test_open_sqlite_creates_directory_and_sets_pragmas(tmp_path: Path) -> None:
    db = tmp_path / "a" / "b" / "redirectory.db"
    store = Store.open(f"sqlite:///{db}")
    try:
        assert db.parent.is_dir()
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert store.dialect == "sqlite"
    finally:
        store.close()


def test_normalize_url_uses_psycopg3() -> None:
    assert normalize_url("postgresql://u@h:5432/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"


def test_open_rejects_other_databases() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        Store.open("mysql://u@h/db")


def test_migrations_ship_with_the_package() -> None:
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "versions" / "0001_initial.py").is_file()


# --------------------------------------------------------------------------- migrations


def test_upgrade_is_idempotent(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        store.upgrade()
        store.upgrade()
        with store.engine.connect() as conn:
            names = set(inspect(conn).get_table_names())
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        assert {
            "rules",
            "settings",
            "revisions",
            "changes",
            "rule_hits",
            "unmatched_paths",
            "api_keys",
        } <= names
        assert version == ["0010"]
        assert store.revision() == 0
        assert store.load() == (0, RuleSet())
        assert store.rule_count() == 0
    finally:
        store.close()
    # a second process (another Store) upgrading the same database is a no-op too
    again = Store.open(store_url)
    try:
        again.upgrade()
        assert again.revision() == 0
    finally:
        again.close()


def test_migrations_match_schema_module(store: Store) -> None:
    """schema.py (what the code queries) and the migrations (what exists) agree."""
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_downgrade_and_upgrade_again(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        store.upgrade()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with store.write_connection() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "base")
        with store.engine.connect() as conn:
            assert not {"rules", "api_keys"} & set(inspect(conn).get_table_names())
        store.upgrade()
        store.apply(RuleSet(rules=(path_rule("/a"),)))
        assert store.revision() == 1
    finally:
        store.close()


def test_in_memory_sqlite() -> None:
    with Store.open("sqlite://") as store:
        store.upgrade()
        store.apply(RuleSet(rules=(path_rule("/a"),)))
        assert store.load()[0] == 1 and store.rule_count() == 1


# --------------------------------------------------------------------------- apply


def test_apply_add_change_remove_with_revisions_and_change_log(store: Store) -> None:
    first = RuleSet(
        rules=(
            path_rule("/a", "/new-a"),
            path_rule("/b", "/new-b", tags=("x",)),
            path_rule("/c", "/new-c", methods=("GET", "HEAD")),
        ),
        allowed_hosts=("example.com",),
    )
    plan, rev = store.apply(first, actor="alice")
    assert rev == 1
    assert plan.summary() == "3 added, 0 changed, 0 removed, allowed_hosts changed"
    assert all(r.id for r in plan.added)
    rev1, loaded = store.load()
    assert rev1 == 1
    assert loaded.allowed_hosts == ("example.com",)
    assert [r.from_text for r in loaded.rules] == ["/a", "/b", "/c"]
    assert [r.position for r in loaded.rules] == [0, 1, 2]
    assert [r.id for r in loaded.rules] == [r.id for r in plan.added]
    assert loaded.rules == first.rules  # ids/positions are not compared
    ids = {r.from_text: r.id for r in loaded.rules}

    second = RuleSet(
        rules=(
            path_rule("/a", "/new-a"),  # unchanged
            path_rule("/b", "/newer-b", tags=("x", "y")),  # changed
            path_rule("/d", "/new-d", status=308),  # added; /c removed
        ),
        allowed_hosts=("example.com",),
    )
    plan, rev = store.apply(second, actor="bob")
    assert rev == 2
    assert plan.summary() == "1 added, 1 changed, 1 removed"
    assert plan.allowed_hosts is None
    [(before, after)] = plan.changed
    assert before.id == after.id == ids["/b"]
    assert before.to == "/new-b" and after.to == "/newer-b"
    assert [r.id for r in plan.removed] == [ids["/c"]]

    rev2, loaded = store.load()
    assert rev2 == 2
    now = by_source(loaded)
    assert now["/a"].id == ids["/a"]  # unchanged rule keeps its id
    assert now["/b"].id == ids["/b"]  # changed rule keeps its id
    assert now["/b"].tags == ("x", "y")
    assert now["/d"].status == 308 and now["/d"].id not in ids.values()
    assert "/c" not in now
    assert loaded.rules == second.rules

    assert revision_rows(store) == [
        (1, "alice", "apply: 3 added, 0 changed, 0 removed, allowed_hosts changed"),
        (2, "bob", "apply: 1 added, 1 changed, 1 removed"),
    ]

    log = store.changes_since(1)
    assert {(c.revision, c.op, c.rule_id) for c in log} == {
        (2, "remove", ids["/c"]),
        (2, "change", ids["/b"]),
        (2, "add", now["/d"].id),
    }
    entries = {c.op: c for c in log}
    assert entries["remove"].before == first.rules[2] and entries["remove"].after is None
    assert entries["remove"].before.methods == ("GET", "HEAD")
    assert entries["change"].before == first.rules[1]
    assert entries["change"].after == second.rules[1]
    assert entries["change"].after.id == ids["/b"]
    assert entries["add"].before is None and entries["add"].after == second.rules[2]
    assert entries["add"].after.position == 2

    # the raw record: every column, ISO timestamps, lists as JSON lists
    with store.engine.connect() as conn:
        raw = conn.execute(
            select(changes.c.before, changes.c.after).where(changes.c.revision == 2, changes.c.op == "change")
        ).one()
    before_rec, after_rec = json.loads(raw.before), json.loads(raw.after)
    assert before_rec["id"] == after_rec["id"] == ids["/b"]
    assert before_rec["tags"] == ["x"] and after_rec["tags"] == ["x", "y"]
    assert before_rec["revision"] == 1 and after_rec["revision"] == 2
    assert after_rec["created_at"] == before_rec["created_at"]
    assert after_rec["updated_at"].endswith("Z")
    assert set(after_rec) >= {"position", "source", "to", "status", "methods", "query", "starts"}


def test_empty_plan_makes_no_revision(store: Store) -> None:
    ruleset = RuleSet(rules=(path_rule("/a"), regex_rule("^/r/(.*)$")), allowed_hosts=("h",))
    _, rev = store.apply(ruleset)
    assert rev == 1
    plan, rev = store.apply(ruleset)
    assert plan.empty and rev == 1
    assert store.plan(ruleset).empty
    assert store.revision() == 1
    assert revision_rows(store) == [(1, "cli", "apply: 2 added, 0 changed, 0 removed, allowed_hosts changed")]
    # the empty table is also an empty plan on a fresh store
    assert store.plan(RuleSet(rules=ruleset.rules, allowed_hosts=("h",))).empty


def test_plan_writes_nothing(store: Store) -> None:
    plan = store.plan(RuleSet(rules=(path_rule("/a"),)))
    assert [r.from_text for r in plan.added] == ["/a"]
    assert plan.added[0].id is None
    assert store.revision() == 0 and store.rule_count() == 0


def test_position_changes_only_count_for_regex_rules(store: Store) -> None:
    p1, p2 = path_rule("/p1"), path_rule("/p2")
    r1, r2 = regex_rule("^/r1/(.*)$"), regex_rule("^/r2/(.*)$")
    store.apply(RuleSet(rules=(p1, p2, r1, r2)))
    _, before = store.load()
    ids = {r.from_text: r.id for r in before.rules}

    # swapping two path rules: no change, no revision
    plan = store.plan(RuleSet(rules=(p2, p1, r1, r2)))
    assert plan.empty

    # swapping two regex rules: both changed (order matters), ids kept
    plan, rev = store.apply(RuleSet(rules=(p1, p2, r2, r1)))
    assert rev == 2
    assert sorted(b.from_text for b, _ in plan.changed) == ["^/r1/(.*)$", "^/r2/(.*)$"]
    for before_rule, after_rule in plan.changed:
        assert before_rule.id == after_rule.id == ids[before_rule.from_text]
    _, after = store.load()
    assert [r.from_text for r in after.rules] == ["/p1", "/p2", "^/r2/(.*)$", "^/r1/(.*)$"]
    assert [r.position for r in after.rules] == [0, 1, 2, 3]


def test_reordered_path_rules_get_their_new_positions_with_a_real_change(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/a"), path_rule("/b"))))
    plan, rev = store.apply(RuleSet(rules=(path_rule("/new"), path_rule("/a"), path_rule("/b"))))
    assert plan.summary() == "1 added, 0 changed, 0 removed"
    assert len(plan.reordered) == 2
    _, loaded = store.load()
    assert [(r.from_text, r.position) for r in loaded.rules] == [("/new", 0), ("/a", 1), ("/b", 2)]


def test_rule_identity_is_the_key(store: Store) -> None:
    get = path_rule("/a", methods=("GET",))
    post = path_rule("/a", methods=("POST",))
    window = path_rule("/a", starts=T0, ends=T0 + timedelta(days=1))
    store.apply(RuleSet(rules=(get, post, window)))
    assert store.rule_count() == 3
    # `to` differs: same key, so a change, not remove + add
    plan = store.plan(RuleSet(rules=(get, post, path_rule("/a", "/x", starts=T0, ends=T0 + timedelta(days=1)))))
    assert plan.summary() == "0 added, 1 changed, 0 removed"


def test_duplicate_keys_are_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="duplicate rule at position 1"):
        store.apply(RuleSet(rules=(path_rule("/a", "/x"), path_rule("/a", "/y"))))
    assert store.revision() == 0 and store.rule_count() == 0


def test_allowed_hosts_change_is_logged(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/a"),), allowed_hosts=("a.example",)))
    plan, rev = store.apply(RuleSet(rules=(path_rule("/a"),), allowed_hosts=("a.example", "b.example")))
    assert rev == 2
    assert plan.allowed_hosts == (("a.example",), ("a.example", "b.example"))
    assert plan.summary() == "0 added, 0 changed, 0 removed, allowed_hosts changed"
    [entry] = store.changes_since(1)
    assert entry.op == "settings" and entry.rule_id is None
    assert entry.allowed_hosts == ("a.example", "b.example")
    assert store.load()[1].allowed_hosts == ("a.example", "b.example")


def test_apply_rolls_back_everything_on_error(store: Store) -> None:
    first = RuleSet(rules=(path_rule("/a"), path_rule("/b"), path_rule("/c")), allowed_hosts=("h",))
    store.apply(first)
    snapshot = store.load()
    log_before = store.changes_since(0)
    bad = RuleSet(
        rules=(
            path_rule("/a", "/changed"),  # a change, written before the inserts
            path_rule("/d"),
            Rule(to=None, source="/broken"),  # type: ignore[arg-type]  # NOT NULL violation
        ),
        allowed_hosts=("other",),
    )
    with pytest.raises(IntegrityError):
        store.apply(bad)
    assert store.load() == snapshot
    assert [r.id for r in store.load()[1].rules] == [r.id for r in snapshot[1].rules]
    assert store.changes_since(0) == log_before
    assert store.revision() == 1
    assert revision_rows(store) == [(1, "cli", "apply: 3 added, 0 changed, 0 removed, allowed_hosts changed")]


def test_apply_onto_a_larger_table(store: Store) -> None:
    n = 3000
    rules = tuple(path_rule(f"/old/{i}", f"/new/{i}") for i in range(n))
    _, rev = store.apply(RuleSet(rules=rules))
    assert rev == 1 and store.rule_count() == n
    edited = list(rules)
    edited[10] = path_rule("/old/10", "/elsewhere")
    del edited[20]
    edited.append(path_rule("/extra"))
    plan, rev = store.apply(RuleSet(rules=tuple(edited)))
    assert rev == 2
    assert plan.summary() == "1 added, 1 changed, 1 removed"
    _, loaded = store.load()
    assert loaded.rules == tuple(edited)
    assert [r.position for r in loaded.rules] == list(range(n))


# --------------------------------------------------------------------------- add


def test_add_imports_after_existing_rules_in_one_revision(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/existing"),)))
    new = [path_rule(f"/imp/{i}") for i in range(2500)]
    calls: list[int] = []
    rev = store.add(new, actor="import", progress=calls.append)
    assert rev == 2
    assert calls == [1000, 2000, 2500]
    _, loaded = store.load()
    assert len(loaded.rules) == 2501
    assert loaded.rules[0].from_text == "/existing"
    assert [r.position for r in loaded.rules] == list(range(2501))
    assert loaded.rules[1:] == tuple(new)
    assert len({r.id for r in loaded.rules}) == 2501
    assert revision_rows(store)[-1] == (2, "import", "add: 2500 added")
    log = store.changes_since(1)
    assert len(log) == 2500 and {c.op for c in log} == {"add"} and {c.revision for c in log} == {2}
    assert store.add([]) == 2  # nothing to add: no revision


def test_add_can_extend_allowed_hosts(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/a"),), allowed_hosts=("a.example",)))
    rev = store.add([path_rule("/b")], allowed_hosts=("a.example", "b.example"))
    assert rev == 2
    assert store.load()[1].allowed_hosts == ("a.example", "b.example")
    assert [(c.op, c.allowed_hosts) for c in store.changes_since(1)] == [
        ("settings", ("a.example", "b.example")),
        ("add", None),
    ]
    assert revision_rows(store)[-1][2] == "add: 1 added, allowed_hosts changed"
    assert store.add([], allowed_hosts=("a.example", "b.example")) == 2  # unchanged: no-op
    assert store.add([], allowed_hosts=("c.example",)) == 3  # hosts alone: a revision


def test_add_is_all_or_nothing(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/existing"),)))
    snapshot = store.load()
    new = [path_rule(f"/imp/{i}") for i in range(2500)]
    new[2200] = Rule(to="/x", source="/bad", status=None)  # type: ignore[arg-type]
    calls: list[int] = []
    with pytest.raises(IntegrityError):
        store.add(new, progress=calls.append, validate=False)  # the database refuses it
    assert calls[:2] == [1000, 2000]  # the first batches were written, then rolled back
    assert store.load() == snapshot
    assert store.rule_count() == 1
    assert store.revision() == 1
    assert len(store.changes_since(0)) == 1


# --------------------------------------------------------------------------- change log


def test_changes_since(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/a"),)))
    store.apply(RuleSet(rules=(path_rule("/a"), path_rule("/b"))))
    store.apply(RuleSet(rules=(path_rule("/b"),)))
    assert [(c.revision, c.op) for c in store.changes_since(0)] == [
        (1, "add"),
        (2, "add"),
        (3, "remove"),
    ]
    assert [(c.revision, c.op, c.before.from_text if c.before else None) for c in store.changes_since(2)] == [
        (3, "remove", "/a")
    ]
    assert store.changes_since(3) == []
    assert store.changes_since(99) == []


def test_concurrent_writers_get_distinct_revisions(store_url: str, store: Store) -> None:
    other = Store.open(store_url)
    errors: list[BaseException] = []

    def work(s: Store, name: str) -> None:
        try:
            for i in range(10):
                s.add([path_rule(f"/{name}/{i}")], actor=name)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(store, "one")),
        threading.Thread(target=work, args=(other, "two")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert store.revision() == 20
    assert [r[0] for r in revision_rows(store)] == list(range(1, 21))
    _, loaded = store.load()
    assert len(loaded.rules) == 20
    assert sorted(r.position for r in loaded.rules) == list(range(20))


# --------------------------------------------------------------------------- hits


def test_record_hits_concurrently_from_two_stores(store_url: str, store: Store) -> None:
    _, rev = store.apply(RuleSet(rules=(path_rule("/a"), path_rule("/b"))))
    _, loaded = store.load()
    a, b = (r.id for r in loaded.rules)
    assert a and b
    other = Store.open(store_url)
    rounds, per_thread = 40, 2
    errors: list[BaseException] = []
    base = datetime(2026, 5, 1, tzinfo=UTC)

    def flush(s: Store, worker: int) -> None:
        try:
            for i in range(rounds):
                at = base + timedelta(seconds=worker * 1000 + i)
                s.record_hits({a: (1, at), b: (worker + 1, at)}, {"/nowhere": (2, at)})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=flush, args=(s, w)) for w, s in enumerate([store, other] * per_thread)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    workers = len(threads)
    stats = store.stats()
    hits = {s.rule_id: s for s in stats.rules}
    assert hits[a].hits == rounds * workers
    assert hits[b].hits == rounds * sum(w + 1 for w in range(workers))
    latest = base + timedelta(seconds=(workers - 1) * 1000 + rounds - 1)
    assert hits[a].last_hit == latest and hits[b].last_hit == latest
    assert [s.rule_id for s in stats.rules] == [b, a]  # most hit first
    [nowhere] = stats.unmatched
    assert (nowhere.path, nowhere.hits, nowhere.last_hit) == (
        "/nowhere",
        2 * rounds * workers,
        latest,
    )


def test_record_hits_keeps_the_later_last_hit(store: Store) -> None:
    store.record_hits({"r": (1, T0 + timedelta(hours=1))}, {})
    store.record_hits({"r": (1, T0)}, {})  # an older flush arriving late
    with store.engine.connect() as conn:
        row = conn.execute(select(rule_hits.c.hits, rule_hits.c.last_hit)).one()
    assert row.hits == 2 and row.last_hit == T0 + timedelta(hours=1)
    store.record_hits({}, {})  # nothing: no-op


def test_unmatched_paths_pruned_to_top_1000(store: Store) -> None:
    n = UNMATCHED_KEEP + 500
    store.record_hits({}, {f"/p/{i}": (i + 1, T0) for i in range(n)})
    assert count(store, unmatched_paths) == UNMATCHED_KEEP
    top = store.stats(limit_unmatched=3).unmatched
    assert [(p.path, p.hits) for p in top] == [
        (f"/p/{n - 1}", n),
        (f"/p/{n - 2}", n - 1),
        (f"/p/{n - 3}", n - 2),
    ]
    # a path below the cut-off gets dropped again, a strong newcomer stays
    store.record_hits({}, {"/weak": (1, T0), "/strong": (10**6, T0)})
    assert count(store, unmatched_paths) == UNMATCHED_KEEP
    paths = {p.path for p in store.stats(limit_unmatched=UNMATCHED_KEEP).unmatched}
    assert "/strong" in paths and "/weak" not in paths and "/p/500" not in paths
    assert store.stats(limit_unmatched=0).unmatched == []


def test_long_unmatched_paths_are_truncated(store: Store) -> None:
    long_a = "/" + "a" * 5000
    long_b = long_a + "-different-tail"
    store.record_hits({}, {long_a: (1, T0), long_b: (2, T0 + timedelta(seconds=1))})
    [entry] = store.stats().unmatched
    assert entry.path == long_a[:2048]
    assert entry.hits == 3 and entry.last_hit == T0 + timedelta(seconds=1)


def test_stats_lists_every_rule_including_unhit(store: Store) -> None:
    store.apply(RuleSet(rules=(path_rule("/a"), regex_rule("^/r$", "/x", status=308), path_rule("/c"))))
    _, loaded = store.load()
    ids = {r.from_text: r.id for r in loaded.rules}
    store.record_hits({str(ids["/c"]): (5, T0), "removed-rule-id": (9, T0)}, {})
    stats = store.stats()
    assert [(s.from_text, s.hits) for s in stats.rules] == [("/c", 5), ("/a", 0), ("^/r$", 0)]
    regex_stats = stats.rules[2]
    assert (regex_stats.to, regex_stats.status, regex_stats.last_hit) == ("/x", 308, None)


# --------------------------------------------------------------------------- queries


def test_list_rules_filters(store: Store) -> None:
    store.apply(
        RuleSet(
            rules=(
                path_rule("//API.example.com/v1/users", "/v2/users", status=308),
                path_rule("//api.example.com/v1/orders", "/v2/orders", note="Billing team"),
                path_rule("//api.example.community/x", "/y"),
                path_rule("/plain", "/elsewhere"),
                regex_rule("^/items/(\\d+)$", "/v2/items/$1", status=308),
                path_rule("/100%_done", "/done"),
            )
        )
    )
    listed = store.list_rules(host="api.example.com")
    assert [r.from_text for r in listed] == [
        "//API.example.com/v1/users",
        "//api.example.com/v1/orders",
    ]
    assert [r.from_text for r in store.list_rules(host="API.EXAMPLE.COM", status=308)] == ["//API.example.com/v1/users"]
    assert [r.from_text for r in store.list_rules(status=308)] == [
        "//API.example.com/v1/users",
        "^/items/(\\d+)$",
    ]
    assert [r.from_text for r in store.list_rules(search="billing")] == ["//api.example.com/v1/orders"]
    assert [r.from_text for r in store.list_rules(search="items")] == ["^/items/(\\d+)$"]
    assert [r.from_text for r in store.list_rules(search="ELSEWHERE")] == ["/plain"]
    assert [r.from_text for r in store.list_rules(search="%_")] == ["/100%_done"]  # no wildcards
    assert len(store.list_rules()) == 6
    assert all(r.id for r in store.list_rules())
    assert store.rule_count() == 6


def test_timestamps_come_back_aware_utc(store: Store) -> None:
    paris = timezone(timedelta(hours=2))
    starts = datetime(2026, 6, 1, 12, 0, tzinfo=paris)
    ends = datetime(2026, 7, 1, 0, 0)  # naive: taken as UTC
    store.apply(RuleSet(rules=(path_rule("/a", starts=starts, ends=ends),)))
    _, loaded = store.load()
    [rule] = loaded.rules
    assert rule.starts is not None and rule.ends is not None
    assert rule.starts.tzinfo is UTC and rule.starts == starts
    assert rule.starts.hour == 10
    assert rule.ends == ends.replace(tzinfo=UTC) and rule.ends.tzinfo is UTC
    # same rule, same instants in another zone: no change
    assert store.plan(RuleSet(rules=(path_rule("/a", starts=starts.astimezone(UTC), ends=ends),))).empty
    [entry] = store.changes_since(0)
    assert entry.after is not None and entry.after.starts == starts
    assert entry.after.starts is not None and entry.after.starts.tzinfo is UTC
    with store.engine.connect() as conn:
        at = conn.scalar(select(revisions.c.at))
    assert at is not None
    assert at.tzinfo is UTC and abs(datetime.now(UTC) - at) < timedelta(minutes=5)
    store.record_hits({str(rule.id): (1, starts)}, {"/x": (1, starts)})
    stats = store.stats()
    assert stats.rules[0].last_hit == starts and stats.rules[0].last_hit.tzinfo is UTC
    assert stats.unmatched[0].last_hit == starts and stats.unmatched[0].last_hit.tzinfo is UTC


def test_plan_dataclass() -> None:
    plan = Plan()
    assert plan.empty and plan.summary() == "0 added, 0 changed, 0 removed"
    plan.added.append(path_rule("/a"))
    assert not plan.empty and plan.summary() == "1 added, 0 changed, 0 removed"


# --------------------------------------------------------------------------- SQLite locking


def test_sqlite_apply_and_hit_flushes_do_not_fail_concurrently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/db.sqlite"
    cli = Store.open(url)
    cli.upgrade()
    gateway = Store.open(url)
    stop = threading.Event()
    errors: list[BaseException] = []
    flushes = 0

    def flush_loop() -> None:
        nonlocal flushes
        try:
            while not stop.is_set():
                gateway.record_hits({"rule": (1, T0)}, {"/miss": (1, T0)})
                flushes += 1
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=flush_loop)
    thread.start()
    try:
        for round_ in range(3):
            rules = tuple(path_rule(f"/r/{round_}/{i}") for i in range(5000))
            cli.apply(RuleSet(rules=rules), actor="cli")
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert cli.revision() == 3
    with cli.engine.connect() as conn:
        assert conn.scalar(select(rule_hits.c.hits)) == flushes
    cli.close()
    gateway.close()


def test_catch_up_is_changes_since_with_the_revision(store: Store) -> None:
    assert store.catch_up(0) == (0, [])
    rev1 = store.apply(RuleSet(rules=(Rule(to="/b", source="/a", status=301),)))[1]
    rev2 = store.apply(RuleSet(rules=(Rule(to="/c", source="/a", status=301),)))[1]
    assert store.catch_up(0) == (rev2, store.changes_since(0))
    assert [c.op for c in store.catch_up(rev1)[1]] == ["change"]
    assert store.catch_up(rev2) == (rev2, [])


def test_every_revision_notifies_postgresql_listeners_on_commit(store: Store) -> None:
    if store.dialect != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's")
    from redirectory.store.notify import Listener

    with Listener(store.engine) as listener:
        rev = store.apply(RuleSet(rules=(Rule(to="/b", source="/a", status=301),)))[1]
        heard = list(listener.wait(1.0))
    # (the channel is per database: tests of other schemas may be heard too)
    assert rev in heard
