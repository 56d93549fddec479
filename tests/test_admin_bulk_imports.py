"""`rules-bulk` and `rule-imports` over real HTTP against the real `redirectory serve` process."""

from __future__ import annotations

import time
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


def wait_for_report(api: httpx.Client, location: str, timeout: float = 120) -> httpx.Response:
    """Poll an import: 202 while it runs, then 303 See Other to the report."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = api.get(location)
        if r.status_code == 303:
            assert r.content == b""
            report = api.get(r.headers["location"])
            assert report.status_code == 200
            return report
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "RUNNING" and "progress" in r.json()
        time.sleep(0.2)
    raise AssertionError("the import did not finish")


def test_35_import_of_100k_rules_202_then_303_to_the_report(api: httpx.Client, served: ServeProcess) -> None:
    count = total(api)
    lines = ["from,to,status"] + [f"/imported/{i},/moved/{i},308" for i in range(100_000)]
    r = api.post("/api/v1/rule-imports", content="\n".join(lines).encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 202, r.text
    assert r.headers["location"].startswith("/api/v1/rule-imports/")
    report = wait_for_report(api, r.headers["location"], timeout=300).json()
    assert report["status"] == "SUCCEEDED" and report["added"] == 100_000 and report["revision"]
    assert total(api) == count + 100_000
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live = httpx.get(served.base + "/imported/99999", follow_redirects=False)
        if live.status_code == 308:
            break
        time.sleep(0.2)
    assert live.headers["location"] == "/moved/99999"


def test_failed_import_changes_nothing_and_reports_why(api: httpx.Client, served: ServeProcess) -> None:
    count, rev = total(api), revision(api, served)
    lines = ["from,to,status"] + [f"/half/{i},/h/{i},308" for i in range(5000)] + ["/half/bad,/h/bad,302"]
    r = api.post("/api/v1/rule-imports?format=csv", content="\n".join(lines).encode(),
                 headers={"content-type": "text/plain"})
    assert r.status_code == 202
    report = wait_for_report(api, r.headers["location"]).json()
    assert report["status"] == "FAILED" and report["added"] == 0
    assert any("302" in e["detail"] for e in report["errors"])
    assert total(api) == count and revision(api, served) == rev
    # valid rows, but a loop with a rule already in the table: refused as a whole
    yaml = b"rules:\n  - from: /fresh\n    to: /fresh2\n    status: 308\n  - from: /elsewhere\n    to: /base\n    status: 308\n"
    r = api.post("/api/v1/rule-imports", content=yaml, headers={"content-type": "application/yaml"})
    report = wait_for_report(api, r.headers["location"]).json()
    assert report["status"] == "FAILED" and "loop" in str(report["errors"])
    assert total(api) == count


def test_import_needs_a_known_format(api: httpx.Client) -> None:
    r = api.post("/api/v1/rule-imports", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and r.json()["errors"][0]["fields"] == ["format"]
    assert api.post("/api/v1/rule-imports", content=b"x", headers={"content-type": "image/png"}).status_code == 415
    assert api.get("/api/v1/rule-imports/00000000-0000-4000-8000-000000000000").status_code == 404


def test_import_of_an_nginx_config_converts_302_to_307_with_a_warning(api: httpx.Client, served: ServeProcess) -> None:
    conf = b"server {\n  location = /from-nginx { return 301 /to-nginx; }\n  location = /temp { return 302 /elsewhere-temp; }\n}\n"
    r = api.post("/api/v1/rule-imports?format=nginx", content=conf, headers={"content-type": "text/plain"})
    assert r.status_code == 202, r.text
    report = wait_for_report(api, r.headers["location"]).json()
    assert report["status"] == "SUCCEEDED" and report["added"] == 2, report
    assert any("302" in w["detail"] for w in report["metadata"]["warnings"])
    found = {i["from"]: i["status"] for i in api.get("/api/v1/rules?q=nginx").json()["items"]}
    assert found["/from-nginx"] == 301
    temp = api.get("/api/v1/rules?q=elsewhere-temp").json()["items"]
    assert [i["status"] for i in temp] == [307]


def test_a_dry_run_answers_the_plan_and_changes_nothing(api: httpx.Client, served: ServeProcess) -> None:
    count, rev = total(api), revision(api, served)
    rules = "".join(f"  - from: /planned/{i}\n    to: /plan/{i}\n    status: 308\n" for i in range(28))
    yaml = ("allowed_hosts: [plan.example.org]\nrules:\n" + rules
            + "  - from: /planned/away\n    to: https://plan.example.org/away\n    status: 301\n"  # 301, every method: a warning
            + "  - from: /planned/q\n    to: /plan/q\n    status: 307\n    query_match: {id: '*'}\n"
            + "    query: {strip: [utm_*], pass: unmatched}\n")
    r = api.post("/api/v1/rule-imports?dryRun=true", content=yaml, headers={"content-type": "application/yaml"})
    assert r.status_code == 202 and r.json()["dryRun"] is True, r.text
    report = wait_for_report(api, r.headers["location"]).json()
    assert (report["status"], report["dryRun"], report["added"], report["changed"], report["removed"],
            report["revision"]) == ("SUCCEEDED", True, 30, 0, 0, None), report
    plan = report["plan"]
    assert len(plan["added"]) == 20 and plan["changed"] == [] and plan["removed"] == []
    first = plan["added"][0]
    assert (first["index"], first["line"], first["from"], first["to"], first["status"]) == (0, 3, "/planned/0", "/plan/0", 308)
    assert "uuid" not in first and [p["index"] for p in plan["added"]] == list(range(20))
    assert plan["allowedHosts"] == {"before": [], "after": ["plan.example.org"]}
    warning = next(w for w in report["metadata"]["warnings"] if "301" in w["detail"])
    assert warning["index"] == 28 and "upload:89: status" in warning["detail"], warning  # the line of the field
    # nothing was written: the table, its revision and the gateway are as they were
    assert total(api) == count and revision(api, served) == rev
    assert httpx.get(served.base + "/planned/1", follow_redirects=False).status_code == 404
    # a plan that finds problems reports them all, with their lines, and writes nothing either
    bad = b"rules:\n  - from: /fine\n    to: /ok\n    status: 308\n  - from: /elsewhere\n    to: /base\n    status: 308\n" \
          b"  - from: /temp\n    to: /t\n    status: 302\n"
    r = api.post("/api/v1/rule-imports?dryRun=true&format=yaml", content=bad, headers={"content-type": "text/plain"})
    failed = wait_for_report(api, r.headers["location"]).json()
    assert failed["status"] == "FAILED" and failed["added"] == 0 and failed["plan"]["added"] == []
    details = " ".join(e["detail"] for e in failed["errors"])
    assert "upload:10: status: 302" in details and "loop" in details and "/elsewhere (line 5)" in details, failed["errors"]
    assert total(api) == count and revision(api, served) == rev
    # the same file, for real: what the plan said
    r = api.post("/api/v1/rule-imports", content=yaml, headers={"content-type": "application/yaml"})
    done = wait_for_report(api, r.headers["location"]).json()
    assert (done["status"], done["dryRun"], done["added"]) == ("SUCCEEDED", False, 30) and "plan" not in done
    assert total(api) == count + 30 and revision(api, served) == rev + 1
    wrong = api.post("/api/v1/rule-imports?dryRun=yes", content=yaml, headers={"content-type": "application/yaml"})
    assert wrong.status_code == 400 and wrong.json()["errors"][0]["fields"] == ["dryRun"]
