"""The admin REST API over real HTTP against the real `redirectory serve` process.

Test names follow the guide checklist items they check.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

RULES = "rules:\n" + "".join(
    f"  - from: /r{i}\n    to: /t{i}\n    status: {308 if i % 2 else 307}\n"
    f"    tags: [{'even' if i % 2 == 0 else 'odd'}]\n" + ("    note: special\n" if i == 7 else "")
    for i in range(53)
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("admin")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def _key(served: ServeProcess, scope: str) -> str:
    done = cli("keys", "create", f"test-{scope}", "--scope", scope, "--database", served.database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def read_key(served: ServeProcess) -> str:
    return _key(served, "read")


@pytest.fixture
def api(served: ServeProcess, read_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {read_key}"},
                      follow_redirects=False, timeout=10) as client:
        yield client


def assert_error(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-language"] == "en"
    body = r.json()
    assert body["errors"] and body["type"].startswith("urn:") and body["title"] and body["titleKey"]
    assert body["instance"]
    assert "Traceback" not in r.text
    return body


def test_03_api_root_has_an_empty_body(api: httpx.Client) -> None:
    r = api.get("/api/v1")
    assert r.status_code == 204 and r.content == b""


def test_02_unversioned_path_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/api/rules"), 404)


def test_04_trailing_slash_is_not_redirected(api: httpx.Client) -> None:
    r = api.get("/api/v1/rules/")
    assert r.status_code == 404  # never a 3xx to the canonical form, never a duplicate


def test_13_no_credentials_is_401(served: ServeProcess) -> None:
    r = httpx.get(served.admin + "/api/v1/rules")
    body = assert_error(r, 401)
    assert "bearer" in r.headers["www-authenticate"].lower()
    assert body["errors"]


def test_13_unknown_key_is_401(served: ServeProcess) -> None:
    assert_error(httpx.get(served.admin + "/api/v1/rules", headers={"x-api-key": "rdk_nope"}), 401)


def test_51_key_in_the_query_string_is_400(served: ServeProcess, read_key: str) -> None:
    body = assert_error(httpx.get(served.admin + f"/api/v1/rules?api_key={read_key}"), 400)
    assert body["errors"][0]["fields"] == ["api_key"]  # type: ignore[index]


def test_51_key_accepted_in_x_api_key(served: ServeProcess, read_key: str) -> None:
    assert httpx.get(served.admin + "/api/v1/rules", headers={"x-api-key": read_key}).status_code == 200


def test_14_unacceptable_accept_is_406(api: httpx.Client) -> None:
    assert_error(api.get("/api/v1/rules", headers={"accept": "application/xml"}), 406)
    assert api.get("/api/v1/rules", headers={"accept": "application/json;q=0.9, text/html"}).status_code == 200


def test_14_unparseable_content_type_is_415(api: httpx.Client) -> None:
    assert_error(api.post("/api/v1/rules", content=b"<rule/>", headers={"content-type": "application/xml"}), 415)


def test_23_collection_shape_and_24_default_page(api: httpx.Client) -> None:
    r = api.get("/api/v1/rules")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"items", "metadata"}
    pagination = body["metadata"]["pagination"]
    assert pagination["limit"] == 10 and pagination["offset"] == 0
    assert len(body["items"]) == 10
    assert api.get("/api/v1/rules?limit=0").json()["metadata"]["pagination"]["limit"] == 10


def test_26_pagination_metadata_matches_the_guide(api: httpx.Client) -> None:
    p = api.get("/api/v1/rules?offset=13&limit=10").json()["metadata"]["pagination"]
    assert (p["previousOffset"], p["nextOffset"], p["currentPage"], p["pageCount"], p["totalCount"]) == (3, 23, 2, 6, 53)
    first = api.get("/api/v1/rules?offset=0&limit=10").json()["metadata"]["pagination"]
    assert first["previousOffset"] is None and first["nextOffset"] == 10
    last = api.get("/api/v1/rules?offset=50&limit=10").json()["metadata"]["pagination"]
    assert last["nextOffset"] is None and last["currentPage"] == 6


def test_27_out_of_range_page_is_200_empty(api: httpx.Client) -> None:
    r = api.get("/api/v1/rules?offset=100&limit=10")
    assert r.status_code == 200
    body = r.json()
    p = body["metadata"]["pagination"]
    assert body["items"] == [] and p["nextOffset"] is None and p["currentPage"] is None
    assert p["previousOffset"] == 50


def test_25_bad_limits_are_400_listing_every_problem(api: httpx.Client) -> None:
    body = assert_error(api.get("/api/v1/rules?limit=1001&offset=-1"), 400)
    fields = sorted(f for e in body["errors"] for f in e.get("fields", []))  # type: ignore[union-attr]
    assert fields == ["limit", "offset"]
    assert_error(api.get("/api/v1/rules?limit=-5"), 400)


def test_28_filter_without_matches_is_200_empty(api: httpx.Client) -> None:
    body = api.get("/api/v1/rules?q=nothing-like-this").json()
    assert body["items"] == [] and body["metadata"]["pagination"]["totalCount"] == 0


def test_filters_status_tag_and_text(api: httpx.Client) -> None:
    assert {i["status"] for i in api.get("/api/v1/rules?status=307&limit=100").json()["items"]} == {307}
    assert api.get("/api/v1/rules?tag=odd&limit=100").json()["metadata"]["pagination"]["totalCount"] == 26
    found = api.get("/api/v1/rules?q=SPECIAL").json()["items"]
    assert [i["from"] for i in found] == ["/r7"]


def test_29_etags_one_per_item(api: httpx.Client) -> None:
    body = api.get("/api/v1/rules?limit=5").json()
    assert set(body["metadata"]["etags"]) == {i["uuid"] for i in body["items"]}


def test_30_exclude_metadata(api: httpx.Client) -> None:
    assert set(api.get("/api/v1/rules?excludeMetadata=true").json()) == {"items"}


def test_32_33_sorting_is_applied_and_echoed(api: httpx.Client) -> None:
    body = api.get("/api/v1/rules", params={"sort": "status+DESC,from+ASC", "limit": 100}).json()
    statuses = [i["status"] for i in body["items"]]
    assert statuses == sorted(statuses, reverse=True)
    assert body["metadata"]["sortedBy"] == [{"field": "status", "order": "DESC"}, {"field": "from", "order": "ASC"}]
    encoded = api.get("/api/v1/rules?sort=status%2BDESC").json()["metadata"]["sortedBy"]
    assert encoded == [{"field": "status", "order": "DESC"}]
    assert_error(api.get("/api/v1/rules?sort=colour+ASC"), 400)
    assert_error(api.get("/api/v1/rules?sort=status+UP"), 400)


def test_36_item_has_etag_and_last_modified_39_conditional_get(api: httpx.Client) -> None:
    uuid = api.get("/api/v1/rules?limit=1").json()["items"][0]["uuid"]
    r = api.get(f"/api/v1/rules/{uuid}")
    assert r.status_code == 200
    etag, modified = r.headers["etag"], r.headers["last-modified"]
    assert modified.endswith(" GMT")
    again = api.get(f"/api/v1/rules/{uuid}", headers={"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = api.get(f"/api/v1/rules/{uuid}", headers={"if-none-match": f'"other", W/{etag}'})
    assert weak.status_code == 304
    assert api.get(f"/api/v1/rules/{uuid}", headers={"if-modified-since": modified}).status_code == 304
    # If-None-Match that does not match wins over a matching If-Modified-Since (RFC 9110 §13.1.3)
    assert api.get(f"/api/v1/rules/{uuid}", headers={"if-none-match": '"other"', "if-modified-since": modified}).status_code == 200


def test_07_head_works_wherever_get_does(api: httpx.Client) -> None:
    uuid = api.get("/api/v1/rules?limit=1").json()["items"][0]["uuid"]
    for path in ("/api/v1/rules", f"/api/v1/rules/{uuid}"):
        get, head = api.get(path), api.head(path)
        assert head.status_code == get.status_code == 200 and head.content == b""
        assert head.headers.get("etag") == get.headers.get("etag")


def test_06_options_lists_allowed_methods(api: httpx.Client) -> None:
    r = api.options("/api/v1/rules")
    assert r.status_code == 200 and "GET" in r.headers["allow"]


def test_08_unsupported_method_is_405_with_allow(api: httpx.Client) -> None:
    uuid = api.get("/api/v1/rules?limit=1").json()["items"][0]["uuid"]
    r = api.request("TRACE", f"/api/v1/rules/{uuid}")
    assert_error(r, 405)
    assert "GET" in r.headers["allow"]


def test_11_unknown_uuid_is_404(api: httpx.Client) -> None:
    assert_error(api.get("/api/v1/rules/00000000-0000-4000-8000-000000000000"), 404)


def test_40_sensitive_responses_are_not_stored(api: httpx.Client) -> None:
    r = api.get("/api/v1/rules")
    assert "no-store" in r.headers["cache-control"] and r.headers["pragma"] == "no-cache"


def test_46_no_version_strings(api: httpx.Client) -> None:
    for r in (api.get("/api/v1/rules"), api.get("/api/v1/nope")):
        assert "server" not in r.headers or r.headers["server"] == "redirectory"
        assert "x-powered-by" not in r.headers


def test_58_openapi_document_is_served(served: ServeProcess) -> None:
    doc = httpx.get(served.admin + "/api/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/api/v1/rules" in doc["paths"]


def test_16_no_route_answers_302(served: ServeProcess, read_key: str, tmp_path: Path) -> None:
    doc = httpx.get(served.admin + "/api/v1/openapi.json").json()
    headers = {"authorization": f"Bearer {read_key}"}
    for path, ops in doc["paths"].items():
        concrete = path.replace("{rule_id}", "00000000-0000-4000-8000-000000000000")
        for method in [*ops, "trace", "head", "options"]:
            for h in (headers, {}):
                r = httpx.request(method.upper(), served.admin + concrete, headers=h, follow_redirects=False)
                assert r.status_code != 302, (method, path)
    for path in ("/api/v1/rules/", "/api/v1/", "/api/", "/api/v1//rules", "/healthz/"):
        assert httpx.get(served.admin + path, headers=headers, follow_redirects=False).status_code != 302


# -- writes ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def write_key(served: ServeProcess) -> str:
    return _key(served, "write")


@pytest.fixture
def writer(served: ServeProcess, write_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {write_key}"},
                      follow_redirects=False, timeout=30) as client:
        yield client


def test_13_read_key_cannot_write_403(api: httpx.Client) -> None:
    assert_error(api.post("/api/v1/rules", json={"from": "/x", "to": "/y", "status": 308}), 403)


def test_09_create_returns_201_location_etag_and_is_live_in_the_gateway(writer: httpx.Client, served: ServeProcess) -> None:
    import time

    r = writer.post("/api/v1/rules", json={"from": "/created/{id}", "to": "/made/{id}", "status": 308})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/rules/{body['uuid']}"
    assert r.headers["etag"] and r.headers["last-modified"]
    assert body["metadata"]["warnings"] == []
    fetched = writer.get(r.headers["location"])
    assert fetched.status_code == 200 and fetched.headers["etag"] == r.headers["etag"]
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        live = httpx.get(served.base + "/created/42", follow_redirects=False)
        if live.status_code == 308:
            break
        time.sleep(0.05)
    assert live.status_code == 308 and live.headers["location"] == "/made/42"


def test_47_warnings_on_create_do_not_block(writer: httpx.Client) -> None:
    r = writer.post("/api/v1/rules", json={"from": "/warn-me", "to": "/somewhere", "status": 301})
    assert r.status_code == 201
    assert r.json()["metadata"]["warnings"][0]["detailKey"]


def test_44_every_field_problem_in_one_400(writer: httpx.Client) -> None:
    body = assert_error(writer.post("/api/v1/rules", json={"from": "/a b", "to": "", "status": 302, "colour": 1}), 400)
    fields = {f for e in body["errors"] for f in e.get("fields", [])}  # type: ignore[union-attr]
    assert {"status", "colour"} <= fields


def test_13_malformed_json_is_400(writer: httpx.Client) -> None:
    assert_error(writer.post("/api/v1/rules", content=b"{not json", headers={"content-type": "application/json"}), 400)


def test_13_business_rule_violation_is_422(writer: httpx.Client) -> None:
    writer.post("/api/v1/rules", json={"from": "/loop-a", "to": "/loop-b", "status": 308})
    body = assert_error(writer.post("/api/v1/rules", json={"from": "/loop-b", "to": "/loop-a", "status": 308}), 422)
    assert "loop" in json_text(body)


def json_text(body: object) -> str:
    import json

    return json.dumps(body)


def test_38_updates_require_if_match(writer: httpx.Client) -> None:
    created = writer.post("/api/v1/rules", json={"from": "/upd", "to": "/v1", "status": 307})
    uuid, etag = created.json()["uuid"], created.headers["etag"]
    rule = {"from": "/upd", "to": "/v2", "status": 307}
    assert_error(writer.put(f"/api/v1/rules/{uuid}", json=rule), 428)
    assert_error(writer.put(f"/api/v1/rules/{uuid}", json=rule, headers={"if-match": '"stale"'}), 412)
    ok = writer.put(f"/api/v1/rules/{uuid}", json=rule, headers={"if-match": etag})
    assert ok.status_code == 200 and ok.json()["to"] == "/v2" and ok.json()["uuid"] == uuid
    assert ok.headers["etag"] != etag
    # the old ETag is now stale
    assert_error(writer.put(f"/api/v1/rules/{uuid}", json=rule, headers={"if-match": etag}), 412)


def test_10_put_needs_the_whole_rule_and_41_matching_uuid(writer: httpx.Client) -> None:
    created = writer.post("/api/v1/rules", json={"from": "/whole", "to": "/x", "status": 307})
    uuid, etag = created.json()["uuid"], created.headers["etag"]
    assert_error(writer.put(f"/api/v1/rules/{uuid}", json={"status": 308}, headers={"if-match": etag}), 400)
    other = "00000000-0000-4000-8000-000000000000"
    assert_error(writer.put(f"/api/v1/rules/{uuid}", json={"uuid": other, "from": "/whole", "to": "/y", "status": 307},
                            headers={"if-match": etag}), 400)


def test_10_patch_is_json_merge_patch(writer: httpx.Client) -> None:
    created = writer.post("/api/v1/rules", json={"from": "/patch-me", "to": "/x", "status": 307, "note": "n"})
    uuid, etag = created.json()["uuid"], created.headers["etag"]
    r = writer.patch(f"/api/v1/rules/{uuid}", content=b'{"to": "/y", "note": null}',
                     headers={"content-type": "application/merge-patch+json", "if-match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["to"] == "/y" and r.json()["note"] is None and r.json()["from"] == "/patch-me"


def test_11_delete_with_if_match_then_404(writer: httpx.Client, served: ServeProcess) -> None:
    created = writer.post("/api/v1/rules", json={"from": "/delete-me", "to": "/x", "status": 307})
    uuid, etag = created.json()["uuid"], created.headers["etag"]
    assert_error(writer.delete(f"/api/v1/rules/{uuid}"), 428)
    assert_error(writer.delete(f"/api/v1/rules/{uuid}", headers={"if-match": '"stale"'}), 412)
    assert writer.delete(f"/api/v1/rules/{uuid}", headers={"if-match": etag}).status_code == 204
    assert_error(writer.get(f"/api/v1/rules/{uuid}"), 404)
    assert_error(writer.delete(f"/api/v1/rules/{uuid}", headers={"if-match": "*"}), 404)
