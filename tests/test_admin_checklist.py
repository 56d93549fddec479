"""The guide checklist items not covered by the resource
tests, over real HTTP against the real `redirectory serve` process. Each test is named after
the item it checks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

RULES = "rules:\n" + "".join(f"  - from: /c{i}\n    to: /d{i}\n    status: 308\n    note: n{i}\n" for i in range(3))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("checklist")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin(served: ServeProcess) -> Iterator[httpx.Client]:
    done = cli("keys", "create", "checklist", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"}, timeout=30) as client:
        yield client


def _error(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["errors"] and r.headers["content-language"] == "en"
    return body


def test_01_every_endpoint_is_under_a_version(admin: httpx.Client) -> None:
    paths = admin.get("/api/v1/openapi.json").json()["paths"]
    assert paths and all(re.match(r"^/api/v[1-9][0-9]*/", p) for p in paths)
    _error(admin.get("/api/v1.2/rules"), 404)
    _error(admin.get("/api/v0/rules"), 404)


def test_06_options_on_an_unknown_item_is_404(admin: httpx.Client) -> None:
    _error(admin.options(f"/api/v1/rules/{uuid.uuid4()}"), 404)
    first = admin.get("/api/v1/rules?limit=1").json()["items"][0]["uuid"]
    r = admin.options(f"/api/v1/rules/{first}")
    assert r.status_code == 200 and r.headers["allow"] == "GET, HEAD, PUT, PATCH, DELETE, OPTIONS"


def test_06_options_on_every_resource_lists_exactly_its_methods(admin: httpx.Client) -> None:
    paths = admin.get("/api/v1/openapi.json").json()["paths"]
    for path, operations in paths.items():
        if "{" in path:
            continue
        r = admin.options(path)
        assert r.status_code == 200, path
        declared = {m.upper() for m in operations if m in ("get", "head", "post", "put", "patch", "delete", "options")}
        assert set(r.headers["allow"].split(", ")) == declared, path


def test_08_unsupported_method_is_405_even_with_a_foreign_body(admin: httpx.Client) -> None:
    r = admin.put("/api/v1/rule-imports", content=b"x: 1", headers={"content-type": "application/yaml"})
    assert _error(r, 405) and r.headers["allow"] == "POST, OPTIONS"
    r = admin.post("/api/v1/stats", content=b"<x/>", headers={"content-type": "application/xml"})
    assert _error(r, 405) and r.headers["allow"] == "GET, HEAD, OPTIONS"


def test_12_no_forbidden_status_codes(admin: httpx.Client) -> None:
    """206, 416, 409, 410 and 302 never come back, even for requests that invite them."""
    some = admin.get("/api/v1/rules?limit=1").json()["items"][0]
    answers = [
        admin.get("/api/v1/rules", headers={"range": "items=0-5"}),
        admin.get(f"/api/v1/rules/{some['uuid']}", headers={"range": "bytes=0-10"}),
        admin.get(f"/api/v1/rules/{some['uuid']}", headers={"range": "bytes=900-1000"}),
        admin.post("/api/v1/rules", json={"from": some["from"], "to": "/elsewhere", "status": 308}),  # duplicate
    ]
    made = admin.post("/api/v1/rules", json={"from": "/gone-soon", "to": "/x", "status": 307})
    admin.delete(made.headers["location"], headers={"if-match": made.headers["etag"]})
    answers.append(admin.get(made.headers["location"]))  # deleted: 404, not 410
    statuses = [r.status_code for r in answers]
    assert not {206, 416, 409, 410, 302} & set(statuses), statuses
    assert statuses[3] == 422 and statuses[4] == 404


def test_31_style_compact_and_fields_keep_uuid(admin: httpx.Client) -> None:
    compact = admin.get("/api/v1/rules?style=compact").json()
    assert set(compact["items"][0]) == {"uuid", "from", "fromRegex", "to", "status", "enabled"}
    picked = admin.get("/api/v1/rules?fields=to,note").json()
    assert all(set(i) == {"uuid", "to", "note"} for i in picked["items"])
    one = picked["items"][0]
    item = admin.get(f"/api/v1/rules/{one['uuid']}?fields=status")
    assert item.json() == {"uuid": one["uuid"], "status": 308}
    # The ETag is the full representation's, so it serves an update's If-Match.
    full = admin.get(f"/api/v1/rules/{one['uuid']}")
    assert item.headers["etag"] == full.headers["etag"] == picked["metadata"]["etags"][one["uuid"]]
    bad = _error(admin.get("/api/v1/rules?style=tiny&fields=colour,to"), 400)
    assert sorted(f for e in bad["errors"] for f in e["fields"]) == ["fields", "style"]


def test_34_search_with_q_and_attribute_filters(admin: httpx.Client) -> None:
    found = admin.get("/api/v1/rules?q=N1").json()  # free text, case-insensitive, over from/to/note
    assert [i["note"] for i in found["items"]] == ["n1"]
    none = admin.get("/api/v1/rules?q=nothing-like-this&status=308")
    assert none.status_code == 200 and none.json()["items"] == []


def test_37_etag_changes_with_the_representation_and_is_opaque(admin: httpx.Client) -> None:
    made = admin.post("/api/v1/rules", json={"from": "/etag-probe", "to": "/a", "status": 307})
    before = made.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', before)  # a hash, not a counter or a timestamp
    changed = admin.patch(made.headers["location"], json={"to": "/b"},
                          headers={"if-match": before, "content-type": "application/merge-patch+json"})
    assert changed.status_code == 200 and changed.headers["etag"] != before
    forged = admin.patch(made.headers["location"], json={"to": "/c"},
                         headers={"if-match": '"00000000000000000000000000000000"',
                                  "content-type": "application/merge-patch+json"})
    _error(forged, 412)


def test_42_43_error_format(admin: httpx.Client) -> None:
    body = _error(admin.post("/api/v1/rules", json={"from": "relative", "to": "", "status": 302, "colour": 1}), 400)
    assert body["type"].startswith("urn:redirectory:error:") and body["title"] and body["titleKey"]
    uuid.UUID(body["instance"])
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", body["timestamp"])
    assert len(body["errors"]) >= 3
    for error in body["errors"]:
        assert error["detail"] and error["detailKey"].startswith("redirectory.errors.")
        assert isinstance(error.get("fields", []), list)


def test_45_error_instance_is_in_the_server_log(admin: httpx.Client, served: ServeProcess) -> None:
    body = _error(admin.get(f"/api/v1/rules/{uuid.uuid4()}"), 404)
    assert body["instance"] in served.output()


def test_52_exposed_ids_are_random_uuids(admin: httpx.Client) -> None:
    ids = [i["uuid"] for i in admin.get("/api/v1/rules?limit=100").json()["items"]]
    assert ids and all(uuid.UUID(i).version == 4 for i in ids)
    assert len(set(ids)) == len(ids)


def test_54_cors_is_off_by_default(admin: httpx.Client) -> None:
    r = admin.get("/api/v1/rules", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in r.headers
    pre = admin.options("/api/v1/rules", headers={"origin": "https://evil.example",
                                                  "access-control-request-method": "DELETE"})
    assert "access-control-allow-origin" not in pre.headers


def test_55_json_timestamps_and_nulls(admin: httpx.Client) -> None:
    r = admin.get("/api/v1/rules?limit=1")
    assert r.headers["content-type"] == "application/json"
    item = r.json()["items"][0]
    assert item["fromRegex"] is None and item["starts"] is None  # nulls are sent, not omitted
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", item["createdAt"])


def test_56_content_language_and_unsupported_accept_language_is_406(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/rules").headers["content-language"] == "en"
    for accepted in ("en", "en-GB", "fr;q=0.9, en;q=0.1", "*", "EN-us"):
        assert admin.get("/api/v1/rules", headers={"accept-language": accepted}).status_code == 200, accepted
    for refused in ("fr-BE", "nl-BE, fr;q=0.5", "en;q=0, de"):
        body = _error(admin.get("/api/v1/rules", headers={"accept-language": refused}), 406)
        assert body["errors"][0]["fields"] == ["Accept-Language"]


def test_15_a_server_error_says_nothing_about_why(admin: httpx.Client, served: ServeProcess) -> None:
    """A real fault: a row whose JSON column another program broke. The 500 names nothing."""
    import sqlite3

    made = admin.post("/api/v1/rules", json={"from": "/broken-row", "to": "/x", "status": 307}).json()
    path = served.database.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("UPDATE rules SET methods = ? WHERE id = ?", ("{not json", made["uuid"]))
    try:
        r = admin.get(f"/api/v1/rules/{made['uuid']}")
        assert r.status_code == 500
        body = r.json()
        assert body["errors"] == [{"detail": "The server could not complete the request",
                                   "detailKey": "redirectory.errors.internal"}]
        text = r.text.lower() + str(r.headers).lower()
        for leak in ("traceback", "json", "decode", "sqlalchemy", "sqlite", "select", "python", "uvicorn",
                     "starlette", "fastapi", "line "):
            assert leak not in text.replace("application/json", ""), leak
        assert body["instance"] in served.output()  # operators find the cause in the log
    finally:
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM rules WHERE id = ?", (made["uuid"],))
