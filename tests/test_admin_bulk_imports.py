"""`rules-bulk` and `rule-imports` over real HTTP against the real `redirectory serve` process."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("bulk")
    rules = tmp / "rules.yaml"
    rules.write_text("rules:\n  - from: /base\n    to: /elsewhere\n    status: 308\n")
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def key(served: ServeProcess) -> str:
    done = cli("keys", "create", "bulk", "--scope", "write", "--database", served.database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture
def api(served: ServeProcess, key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"},
                      follow_redirects=False, timeout=120) as client:
        yield client


def total(api: httpx.Client) -> int:
    return int(api.get("/api/v1/rules").json()["metadata"]["pagination"]["totalCount"])


def revision(api: httpx.Client, served: ServeProcess) -> int:
    return int(httpx.get(served.admin + "/healthz").json()["revision"])


def test_48_bulk_create_and_update_is_200_and_one_revision(api: httpx.Client, served: ServeProcess) -> None:
    before = revision(api, served)
    r = api.post("/api/v1/rules-bulk", json={"items": [
        {"from": "/bulk/a", "to": "/x/a", "status": 308},
        {"from": "/bulk/b", "to": "/x/b", "status": 307},
    ]})
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [i["from"] for i in items] == ["/bulk/a", "/bulk/b"]
    assert revision(api, served) == before + 1
    etags = r.json()["metadata"]["etags"]
    first = items[0]
    update = {**{k: v for k, v in first.items() if k in ("from", "status")}, "uuid": first["uuid"], "to": "/y/a"}
    r = api.post("/api/v1/rules-bulk", json={"items": [update, {"from": "/bulk/c", "to": "/x/c", "status": 308}],
                                            "metadata": {"etags": {first["uuid"]: etags[first["uuid"]]}}})
    assert r.status_code == 200, r.text
    assert r.json()["items"][0]["uuid"] == first["uuid"] and r.json()["items"][0]["to"] == "/y/a"
    assert revision(api, served) == before + 2


def test_49_atomic_bulk_refuses_everything_and_errors_carry_index(api: httpx.Client, served: ServeProcess) -> None:
    count, rev = total(api), revision(api, served)
    r = api.post("/api/v1/rules-bulk", json={"items": [
        {"from": "/ok/1", "to": "/fine", "status": 308},
        {"from": "/bad", "to": "/nope", "status": 302},
        {"from": "/ok/2", "to": "/fine2", "status": 308, "colour": "red"},
    ]})
    assert r.status_code == 400
    indexes = sorted({e["index"] for e in r.json()["errors"]})
    assert indexes == [1, 2]
    assert total(api) == count and revision(api, served) == rev


def test_49_atomic_bulk_business_conflict_is_422(api: httpx.Client) -> None:
    r = api.post("/api/v1/rules-bulk", json={"items": [
        {"from": "/cyc/a", "to": "/cyc/b", "status": 308},
        {"from": "/cyc/b", "to": "/cyc/a", "status": 308},
    ]})
    assert r.status_code == 422
    assert all("index" in e for e in r.json()["errors"])


def test_49_non_atomic_bulk_gives_items_and_errors(api: httpx.Client) -> None:
    count = total(api)
    r = api.post("/api/v1/rules-bulk?atomic=false", json={"items": [
        {"from": "/na/1", "to": "/n1", "status": 308},
        {"from": "/na/2", "to": "/n2", "status": 302},
        {"from": "/na/3", "to": "/n3", "status": 307},
    ]})
    assert r.status_code == 200
    body = r.json()
    assert [i["from"] for i in body["items"]] == ["/na/1", "/na/3"]
    assert [e["index"] for e in body["errors"]] == [1]
    assert total(api) == count + 2


def test_bulk_update_needs_the_etag(api: httpx.Client) -> None:
    item = api.get("/api/v1/rules?limit=1").json()["items"][0]
    body = {"items": [{"uuid": item["uuid"], "from": item["from"], "to": "/changed", "status": item["status"]}]}
    assert api.post("/api/v1/rules-bulk", json=body).status_code == 428
    body["metadata"] = {"etags": {item["uuid"]: '"stale"'}}
    assert api.post("/api/v1/rules-bulk", json=body).status_code == 412
