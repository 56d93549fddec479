"""Invalid fields are 400 with every problem at once; conflicts with the table stay 422.

Real `redirectory serve` over HTTP: single writes (POST, PUT, PATCH), rules-bulk and rule-imports
all classify a problem the same way (`validation.TABLE_CODES`), and an import's `index` is the
rule's position in the uploaded file, not in the table.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

TABLE = "allowed_hosts: [ok.example]\nrules:\n" + "".join(
    f"  - from: /stored/{i}\n    to: /kept/{i}\n    status: 308\n" for i in range(20)
) + "  - from: /ring/a\n    to: /ring/b\n    status: 308\n"
BAD_TO = "/b 1"  # a space: not a valid target


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("field-errors")
    rules = tmp / "rules.yaml"
    rules.write_text(TABLE)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def api(served: ServeProcess) -> Iterator[httpx.Client]:
    done = cli("keys", "create", "fields", "--scope", "write", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}, timeout=60) as client:
        yield client


def total(api: httpx.Client) -> int:
    return int(api.get("/api/v1/rules").json()["metadata"]["pagination"]["totalCount"])


def problems(r: httpx.Response, status: int) -> dict[str, list[str]]:
    """field -> detailKeys of a guide-format error answer with `status`."""
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"].startswith("urn:redirectory:error:") and body["instance"] and body["errors"]
    assert r.headers["content-language"] == "en" and "Traceback" not in r.text
    out: dict[str, list[str]] = {}
    for error in body["errors"]:
        assert error["detail"] and error["detailKey"].startswith("redirectory.errors.")
        for name in error["fields"]:
            out.setdefault(name, []).append(error["detailKey"])
    return out


@pytest.mark.parametrize(("rule", "fields"), [
    ({"from": "/f/1", "to": BAD_TO, "status": 302}, {"to", "status"}),
    ({"to": BAD_TO, "status": 302}, {"from", "to", "status"}),
    ({"from": "/f/{id}", "to": "/g/{nope}"}, {"to"}),
    ({"from": "/f/{id}", "to": "/g/{nope}", "methods": []}, {"to", "methods"}),
    ({"from": "/f/3", "to": "https://elsewhere.example/x", "status": 308}, {"to"}),
    ({"from": "/f/4", "to": "https://elsewhere.example/{x}", "status": 308, "colour": "red"}, {"to", "colour"}),
    ({"fromRegex": "^/r/(?P<id>[0-9]+)$", "to": "/s/{other}", "status": 308}, {"to"}),
    # an invalid `from` hides no problem with `to` and invents none (no placeholder check without it)
    ({"from": "/a b/{id}", "to": "/x/{id}", "status": 308}, {"from"}),
    ({"from": "/a b/{id}", "to": BAD_TO, "status": 308}, {"from", "to"}),
])
def test_post_with_invalid_fields_is_400_listing_every_problem(api: httpx.Client, rule: dict[str, Any],
                                                               fields: set[str]) -> None:
    count = total(api)
    found = problems(api.post("/api/v1/rules", json=rule), 400)
    assert set(found) == fields
    assert all(set(keys) == {"redirectory.errors.invalidField"} for name, keys in found.items() if name != "colour")
    assert found.get("colour", ["redirectory.errors.unknownField"]) == ["redirectory.errors.unknownField"]
    assert total(api) == count


def test_conflicts_with_the_table_stay_422(api: httpx.Client) -> None:
    loop = problems(api.post("/api/v1/rules", json={"from": "/ring/b", "to": "/ring/a", "status": 308}), 422)
    assert loop == {"to": ["redirectory.errors.loop"]}
    duplicate = problems(api.post("/api/v1/rules", json={"from": "/stored/1", "to": "/x", "status": 308}), 422)
    assert duplicate == {"from": ["redirectory.errors.duplicate"]}
    self_loop = problems(api.post("/api/v1/rules", json={"from": "/self", "to": "/self", "status": 308}), 422)
    assert list(self_loop) == ["to"]


def test_put_and_patch_report_every_field_problem(api: httpx.Client) -> None:
    made = api.post("/api/v1/rules", json={"from": "/edit/{id}", "to": "/edited/{id}", "status": 307})
    assert made.status_code == 201, made.text
    where, etag = made.headers["location"], made.headers["etag"]
    put = api.put(where, json={"from": "/edit/{id}", "to": "/x/{other}", "status": 302}, headers={"if-match": etag})
    assert set(problems(put, 400)) == {"to", "status"}
    incomplete = api.put(where, json={"status": 302, "colour": 1}, headers={"if-match": etag})
    found = problems(incomplete, 400)
    assert incomplete.json()["type"].endswith(":incompleteRepresentation")
    assert set(found) == {"to", "from", "status", "colour"}
    assert found["to"] == found["from"] == ["redirectory.errors.missingField"]  # said once, not twice
    patch = api.patch(where, json={"to": BAD_TO, "status": 302, "cache": -1},
                      headers={"if-match": etag, "content-type": "application/merge-patch+json"})
    assert set(problems(patch, 400)) == {"to", "status", "cache"}
    host = api.patch(where, json={"to": "https://elsewhere.example/{id}"},
                     headers={"if-match": etag, "content-type": "application/merge-patch+json"})
    assert set(problems(host, 400)) == {"to"}
    assert api.get(where).headers["etag"] == etag  # nothing changed


def test_bulk_reports_every_field_problem_of_every_item(api: httpx.Client) -> None:
    count = total(api)
    r = api.post("/api/v1/rules-bulk", json={"items": [
        {"from": "/bulk-f/0", "to": "/fine", "status": 308},
        {"from": "/bulk-f/1", "to": BAD_TO, "status": 302},
        {"from": "/bulk-f/2", "to": "https://elsewhere.example/", "status": 308},
        {"from": "/bulk-f/{id}", "to": "/g/{nope}", "status": 308},
    ]})
    assert r.status_code == 400, r.text
    found = sorted((e["index"], e["fields"][0], e["status"], e["detailKey"]) for e in r.json()["errors"])
    key = "redirectory.errors.invalidField"
    assert found == [(1, "status", 400, key), (1, "to", 400, key), (2, "to", 400, key), (3, "to", 400, key)]
    assert total(api) == count
    conflict = api.post("/api/v1/rules-bulk", json={"items": [
        {"from": "/bulk-f/3", "to": "/fine", "status": 308},
        {"from": "/ring/b", "to": "/ring/a", "status": 308},
    ]})
    assert conflict.status_code == 422, conflict.text
    # the loop runs through a stored rule, which the validator may name as its start (no index then)
    assert [(e.get("index", 1), e["status"], e["detailKey"]) for e in conflict.json()["errors"]] == [
        (1, 422, "redirectory.errors.loop")]
    assert "/ring/b" in conflict.json()["errors"][0]["detail"]
    one_by_one = api.post("/api/v1/rules-bulk?atomic=false", json={"items": [
        {"from": "/bulk-f/4", "to": BAD_TO, "status": 302},
        {"from": "/bulk-f/5", "to": "/fine", "status": 308},
        {"from": "/ring/b", "to": "/ring/a", "status": 308},
    ]})
    assert one_by_one.status_code == 200, one_by_one.text
    body = one_by_one.json()
    assert [i["from"] for i in body["items"]] == ["/bulk-f/5"]
    assert sorted((e["index"], e["fields"][0], e["status"]) for e in body["errors"]) == [
        (0, "status", 400), (0, "to", 400), (2, "to", 422)]
    assert total(api) == count + 1


def report(api: httpx.Client, content: bytes, content_type: str = "application/yaml") -> dict[str, Any]:
    r = api.post("/api/v1/rule-imports", content=content, headers={"content-type": content_type})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = api.get(r.headers["location"])
        if status.status_code == 303:
            done = api.get(status.headers["location"])
            assert done.status_code == 200
            return dict(done.json())
        assert status.status_code == 202, status.text
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_import_reports_every_problem_with_its_index_in_the_file(api: httpx.Client) -> None:
    count = total(api)
    upload = (
        b"rules:\n"
        b"  - from: /imp/0\n    to: /fine/0\n    status: 308\n"              # 0: fine
        b"  - from: /imp/1\n    to: /fine/1\n    status: 302\n"              # 1: 302 (parser)
        b"  - from: /imp/2\n    to: /b 2\n    status: 308\n"                 # 2: space in to (validator)
        b"  - from: /imp/{id}\n    to: /g/{nope}\n    status: 308\n"         # 3: undefined placeholder
        b"  - from: /imp/4\n    to: https://elsewhere.example/\n    status: 308\n"  # 4: host not allowed
        b"  - from: /ring/b\n    to: /ring/a\n    status: 308\n"             # 5: loop with the table
        b"  - from: /stored/3\n    to: /again\n    status: 308\n"            # 6: duplicate of a stored rule
    )
    done = report(api, upload)
    assert done["status"] == "FAILED" and done["added"] == 0
    found = sorted((e.get("index"), e["status"], e["detailKey"]) for e in done["errors"]
                   if e["detailKey"] != "redirectory.errors.loop")
    field = "redirectory.errors.invalidField"
    assert found == [(1, 400, field), (2, 400, field), (3, 400, field), (4, 400, field),
                     (6, 422, "redirectory.errors.duplicate")]
    loops = [e for e in done["errors"] if e["detailKey"] == "redirectory.errors.loop"]
    assert len(loops) == 1 and loops[0]["status"] == 422 and loops[0].get("index") in (None, 5)
    assert "upload:" in done["errors"][0]["detail"]  # each problem names its line
    assert total(api) == count


def test_import_index_counts_the_file_from_zero(api: httpx.Client) -> None:
    done = report(api, b"from,to,status\n/imp-csv/0,/x/0,308\n/imp-csv/1,/x/{y},308\n", "text/csv")
    assert done["status"] == "FAILED"
    assert [(e["index"], e["fields"], e["status"]) for e in done["errors"]] == [(1, ["to"], 400)]
