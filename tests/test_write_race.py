"""Concurrent writers never store a table that validation would refuse (issue 14, item 6).

Each write validates its change inside the store's locked write, against the table as it is at
commit (`store/guard.py`). These tests race two writers that are each valid alone and together
make a loop or a duplicate: exactly one of them must land, and the table must stay valid.
The writers are two `Store` objects (as two processes would hold), then a real `serve` with its
admin API against a real `rules import` process.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from gateway_process import cli, start_serve
from redirectory.rules.model import Rule, RuleSet
from redirectory.rules.validation import validate
from redirectory.store import ChangeRefused, Store

ROUNDS = 12


def _race(url: str, first: object, second: object) -> list[BaseException | None]:
    """Run two writes (callables taking a Store) at once, each on its own Store; their outcomes."""
    stores = [Store.open(url), Store.open(url)]
    barrier = threading.Barrier(2)
    outcome: list[BaseException | None] = [None, None]

    def run(i: int, write: object) -> None:
        barrier.wait()
        try:
            write(stores[i])  # type: ignore[operator]
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome[i] = exc

    threads = [threading.Thread(target=run, args=(i, w)) for i, w in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s in stores:
        s.close()
    return outcome


def _table_errors(url: str) -> list[str]:
    with Store.open(url) as store:
        _rev, table = store.load()
    return [p.format() for p in validate(table) if p.is_error]


def test_two_stores_racing_a_loop_store_one_of_them(store: Store, store_url: str) -> None:
    store.insert_rule(Rule(to="/elsewhere", source="/warm"))  # both writers' indexes exist before the race
    for n in range(ROUNDS):
        a, b = f"/a{n}", f"/b{n}"
        outcome = _race(
            store_url,
            lambda s, a=a, b=b: s.insert_rule(Rule(to=b, source=a)),
            lambda s, a=a, b=b: s.add([Rule(to=a, source=b)], actor="rules import"),
        )
        refused = [o for o in outcome if o is not None]
        assert len(refused) == 1, outcome
        assert isinstance(refused[0], ChangeRefused), refused[0]
        assert any(p.code == "loop" for p in refused[0].problems)
    assert _table_errors(store_url) == []


def test_two_stores_racing_a_duplicate_store_one_of_them(store: Store, store_url: str) -> None:
    for n in range(ROUNDS):
        path = f"/same{n}"
        outcome = _race(
            store_url,
            lambda s, p=path: s.insert_rule(Rule(to="/x", source=p, status=308)),
            lambda s, p=path: s.insert_rule(Rule(to="/y", source=p, status=308)),
        )
        refused = [o for o in outcome if o is not None]
        assert len(refused) == 1 and isinstance(refused[0], ChangeRefused), outcome
        assert {p.code for p in refused[0].errors} == {"duplicate"}
    assert _table_errors(store_url) == []


def test_a_write_sees_what_another_store_committed_since_its_index_was_built(store: Store,
                                                                            store_url: str) -> None:
    store.insert_rule(Rule(to="/b", source="/a"))  # builds this store's index
    with Store.open(store_url) as other:
        other.insert_rule(Rule(to="/c", source="/b"))  # after it: only in the change log
    with pytest.raises(ChangeRefused) as refused:
        store.insert_rule(Rule(to="/a", source="/c"))  # /a -> /b -> /c -> /a
    assert [p.code for p in refused.value.errors] == ["loop"]
    warnings: list = []
    store.insert_rule(Rule(to="/a", source="/d", methods=("GET", "HEAD")), problems=warnings)
    assert any(p.code == "chain" for p in warnings)
    assert _table_errors(store_url) == []


def test_a_refused_write_changes_nothing(store: Store) -> None:
    store.insert_rule(Rule(to="/b", source="/a"))
    revision = store.revision()
    with pytest.raises(ChangeRefused):
        store.add([Rule(to="/z", source="/y"), Rule(to="/a", source="/b")])
    assert store.revision() == revision
    _rev, table = store.load()
    assert [r.source for r in table.rules] == ["/a"]


def _key(database: str) -> str:
    done = cli("keys", "create", "race", "--scope", "write", "--database", database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


def test_admin_post_racing_rules_import_never_stores_a_loop(tmp_path: Path) -> None:
    """The reproduction from the issue: an import and a POST, together /a -> /b -> /a."""
    served = start_serve(tmp_path)
    try:
        headers = {"authorization": f"Bearer {_key(served.database)}"}
        for n in range(4):
            file = tmp_path / f"import{n}.yaml"
            file.write_text(f"rules:\n  - from: /b{n}\n    to: /a{n}\n    status: 308\n")
            barrier = threading.Barrier(2)
            results: dict[str, object] = {}

            def post(n: int = n, barrier: threading.Barrier = barrier, results: dict = results) -> None:
                barrier.wait()
                results["post"] = httpx.post(served.admin + "/api/v1/rules", headers=headers, timeout=60,
                                             json={"from": f"/a{n}", "to": f"/b{n}", "status": 308})

            def run_import(file: Path = file, barrier: threading.Barrier = barrier, results: dict = results) -> None:
                barrier.wait()
                results["import"] = cli("rules", "import", str(file), "--database", served.database)

            threads = [threading.Thread(target=post), threading.Thread(target=run_import)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            response = results["post"]
            imported = results["import"]
            assert isinstance(response, httpx.Response)
            landed = [response.status_code == 201, imported.returncode == 0]  # type: ignore[attr-defined]
            assert landed.count(True) == 1, (response.status_code, response.text, imported)
            if response.status_code != 201:
                assert response.status_code == 422
                assert response.json()["errors"][0]["detailKey"] == "redirectory.errors.loop"
            else:
                assert "redirect loop" in imported.stderr  # type: ignore[attr-defined]
        exported = tmp_path / "export.yaml"
        done = cli("rules", "export", "--output", str(exported), "--database", served.database)
        assert done.returncode == 0, done.stderr
        check = cli("rules", "validate", str(exported))
        assert check.returncode == 0, check.stderr
    finally:
        served.stop()


def test_full_validation_agrees_with_what_the_guard_let_in(store: Store, store_url: str) -> None:
    """After a mix of refused and accepted writes, the stored table has no error."""
    rules = [Rule(to=f"/t{i}", source=f"/s{i}") for i in range(30)]
    store.add(rules)
    for i in range(30):
        try:
            store.insert_rule(Rule(to=f"/s{(i + 1) % 30}", source=f"/t{i}", status=308))
        except ChangeRefused:
            pass
    _rev, table = store.load()
    assert [p for p in validate(RuleSet(table.rules)) if p.is_error] == []
