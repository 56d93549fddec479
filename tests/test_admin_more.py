"""The admin API's api-keys, history, resolutions and rate limiting, over real HTTP against the
real `redirectory serve` process.

Test names follow the guide checklist items they check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve
from redirectory.rules.model import Rule, RuleSet
from redirectory.store import Store

RULES = "rules:\n" + "".join(f"  - from: /h{i}\n    to: /t{i}\n    status: 308\n" for i in range(5)) + (
    "  - from: /users/{id}\n    to: /v2/users/{id}\n    status: 301\n"
)
UNKNOWN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("admin-more")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def _key(served: ServeProcess, scope: str, name: str | None = None) -> str:
    done = cli("keys", "create", name or f"more-{scope}", "--scope", scope, "--database", served.database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def admin_key(served: ServeProcess) -> str:
    return _key(served, "admin")


@pytest.fixture(scope="module")
def read_key(served: ServeProcess) -> str:
    return _key(served, "read")


@pytest.fixture(scope="module")
def write_key(served: ServeProcess) -> str:
    return _key(served, "write", "more-writer")


def _client(served: ServeProcess, key: str) -> httpx.Client:
    return httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {key}"},
                        follow_redirects=False, timeout=30)


@pytest.fixture
def admin(served: ServeProcess, admin_key: str) -> Iterator[httpx.Client]:
    with _client(served, admin_key) as client:
        yield client


@pytest.fixture
def reader(served: ServeProcess, read_key: str) -> Iterator[httpx.Client]:
    with _client(served, read_key) as client:
        yield client


@pytest.fixture
def writer(served: ServeProcess, write_key: str) -> Iterator[httpx.Client]:
    with _client(served, write_key) as client:
        yield client


def assert_error(r: httpx.Response, status: int) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-language"] == "en"
    body = r.json()
    assert body["errors"] and body["type"].startswith("urn:") and body["title"] and body["titleKey"]
    assert body["instance"]
    assert "Traceback" not in r.text
    return body


def fields_of(body: dict[str, object]) -> set[str]:
    return {f for e in body["errors"] for f in e.get("fields", [])}  # type: ignore[attr-defined]


# -- api-keys ------------------------------------------------------------------------------------
def test_09_create_key_is_201_with_location_and_the_secret_once(admin: httpx.Client, served: ServeProcess) -> None:
    r = admin.post("/api/v1/api-keys", json={"name": "ci-deployer", "scope": "write"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/api/v1/api-keys/{body['uuid']}"
    assert r.headers["etag"] and r.headers["last-modified"].endswith(" GMT")
    assert body["secret"].startswith("rdk_") and body["prefix"] == body["secret"][:12]
    assert (body["name"], body["scope"], body["lastUsedAt"]) == ("ci-deployer", "write", None)
    assert "revoked" not in body and "secretHash" not in body
    fetched = admin.get(r.headers["location"])
    assert fetched.status_code == 200 and "secret" not in fetched.json()
    assert body["secret"] not in fetched.text
    with _client(served, body["secret"]) as new:
        assert new.get("/api/v1/rules").status_code == 200


def test_13_api_keys_need_the_admin_scope(reader: httpx.Client, writer: httpx.Client, served: ServeProcess) -> None:
    assert_error(reader.get("/api/v1/api-keys"), 403)
    assert_error(writer.post("/api/v1/api-keys", json={"name": "x", "scope": "admin"}), 403)
    assert_error(httpx.get(served.admin + "/api/v1/api-keys"), 401)


def test_44_every_key_field_problem_in_one_400(admin: httpx.Client) -> None:
    body = assert_error(admin.post("/api/v1/api-keys", json={"name": "  ", "scope": "root", "colour": 1}), 400)
    assert fields_of(body) == {"name", "scope", "colour"}
    body = assert_error(admin.post("/api/v1/api-keys", json={}), 400)
    assert fields_of(body) == {"name", "scope"}
    assert_error(admin.post("/api/v1/api-keys", content=b"{nope", headers={"content-type": "application/json"}), 400)


def test_14_key_create_with_xml_is_415(admin: httpx.Client) -> None:
    assert_error(admin.post("/api/v1/api-keys", content=b"<k/>", headers={"content-type": "application/xml"}), 415)


def test_23_26_key_collection_is_paginated_and_holds_no_secrets(admin: httpx.Client) -> None:
    for i in range(3):
        assert admin.post("/api/v1/api-keys", json={"name": f"page-{i}", "scope": "read"}).status_code == 201
    r = admin.get("/api/v1/api-keys")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"items", "metadata"}
    total = body["metadata"]["pagination"]["totalCount"]
    assert total >= 6 and body["metadata"]["pagination"]["limit"] == 10
    assert "secret" not in r.text and "hash" not in r.text.lower()
    assert set(body["metadata"]["etags"]) == {i["uuid"] for i in body["items"]}
    created = [i["createdAt"] for i in body["items"]]
    assert created == sorted(created, reverse=True)  # newest first
    p = admin.get("/api/v1/api-keys?limit=2&offset=2").json()["metadata"]["pagination"]
    assert (p["previousOffset"], p["nextOffset"], p["currentPage"]) == (0, 4, 2)
    out = admin.get("/api/v1/api-keys?offset=1000")
    assert out.status_code == 200 and out.json()["items"] == [] and out.json()["metadata"]["pagination"]["currentPage"] is None
    assert_error(admin.get("/api/v1/api-keys?limit=1001"), 400)
    assert set(admin.get("/api/v1/api-keys?excludeMetadata=true").json()) == {"items"}


def test_11_38_revoke_needs_if_match_then_the_key_gets_401(admin: httpx.Client, served: ServeProcess) -> None:
    made = admin.post("/api/v1/api-keys", json={"name": "to-revoke", "scope": "read"})
    uuid, secret, etag = made.json()["uuid"], made.json()["secret"], made.headers["etag"]
    with _client(served, secret) as victim:
        assert victim.get("/api/v1/rules").status_code == 200
        assert_error(admin.delete(f"/api/v1/api-keys/{uuid}"), 428)
        assert_error(admin.delete(f"/api/v1/api-keys/{uuid}", headers={"if-match": '"stale"'}), 412)
        current = admin.get(f"/api/v1/api-keys/{uuid}").headers["etag"]
        r = admin.delete(f"/api/v1/api-keys/{uuid}", headers={"if-match": current})
        assert r.status_code == 204 and r.content == b""
        assert_error(victim.get("/api/v1/rules"), 401)
    # A revoked key is gone from the API (schemathesis' use-after-free check); the CLI still lists it.
    assert etag  # the creation ETag was usable until then
    assert_error(admin.get(f"/api/v1/api-keys/{uuid}"), 404)
    assert_error(admin.options(f"/api/v1/api-keys/{uuid}"), 404)
    assert_error(admin.delete(f"/api/v1/api-keys/{uuid}", headers={"if-match": "*"}), 404)
    assert uuid not in {i["uuid"] for i in admin.get("/api/v1/api-keys?limit=1000").json()["items"]}
    listed = cli("keys", "list", "--json", "--database", served.database)
    assert any(k["id"] == uuid and k["revoked_at"] for k in json.loads(listed.stdout))
    assert_error(admin.delete(f"/api/v1/api-keys/{UNKNOWN}", headers={"if-match": "*"}), 404)
    assert_error(admin.get(f"/api/v1/api-keys/{UNKNOWN}"), 404)
    assert_error(admin.get("/api/v1/api-keys/not%00a-key"), 404)


def test_36_39_key_item_etag_and_conditional_get(admin: httpx.Client, admin_key: str) -> None:
    uuid = admin.get("/api/v1/api-keys?limit=1").json()["items"][0]["uuid"]
    r = admin.get(f"/api/v1/api-keys/{uuid}")
    again = admin.get(f"/api/v1/api-keys/{uuid}", headers={"if-none-match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_06_07_08_key_options_head_and_405(admin: httpx.Client) -> None:
    assert admin.options("/api/v1/api-keys").headers["allow"] == "GET, HEAD, POST, OPTIONS"
    uuid = admin.get("/api/v1/api-keys?limit=1").json()["items"][0]["uuid"]
    assert admin.options(f"/api/v1/api-keys/{uuid}").headers["allow"] == "GET, HEAD, DELETE, OPTIONS"
    for path in ("/api/v1/api-keys", f"/api/v1/api-keys/{uuid}"):
        get, head = admin.get(path), admin.head(path)
        assert head.status_code == get.status_code == 200 and head.content == b""
    r = admin.put(f"/api/v1/api-keys/{uuid}", json={"name": "x", "scope": "read"})
    assert_error(r, 405)
    assert r.headers["allow"] == "GET, HEAD, DELETE, OPTIONS"
    assert_error(admin.delete("/api/v1/api-keys"), 405)


def test_40_key_responses_are_not_stored(admin: httpx.Client) -> None:
    r = admin.post("/api/v1/api-keys", json={"name": "nostore", "scope": "read"})
    assert "no-store" in r.headers["cache-control"] and r.headers["pragma"] == "no-cache"
    assert "no-store" in admin.get("/api/v1/api-keys").headers["cache-control"]


# -- history -------------------------------------------------------------------------------------
def test_history_lists_revisions_newest_first_with_changes(writer: httpx.Client, reader: httpx.Client) -> None:
    created = writer.post("/api/v1/rules", json={"from": "/hist-a", "to": "/hist-b", "status": 307})
    assert created.status_code == 201
    body = reader.get("/api/v1/history").json()
    newest = body["items"][0]
    assert newest["revision"] == created.json()["revision"]
    assert newest["actor"] == "api:more-writer" and newest["at"].endswith("Z") and newest["summary"]
    assert newest["changeCount"] == 1
    [change] = newest["changes"]
    assert change["op"] == "add" and change["ruleUuid"] == created.json()["uuid"] and change["before"] is None
    assert change["after"]["from"] == "/hist-a" and change["after"]["uuid"] == created.json()["uuid"]
    revisions = [i["revision"] for i in body["items"]]
    assert revisions == sorted(revisions, reverse=True)
    first = reader.get(f"/api/v1/history/{revisions[-1]}")
    assert first.status_code == 200 and first.headers["etag"] and first.headers["last-modified"]


def test_23_26_27_history_pagination(reader: httpx.Client) -> None:
    body = reader.get("/api/v1/history?limit=1").json()
    p = body["metadata"]["pagination"]
    assert len(body["items"]) == 1 and p["limit"] == 1 and p["offset"] == 0 and p["totalCount"] >= 1
    assert set(body["metadata"]["etags"]) == {str(body["items"][0]["revision"])}
    out = reader.get("/api/v1/history?offset=100000")
    assert out.status_code == 200 and out.json()["items"] == [] and out.json()["metadata"]["pagination"]["nextOffset"] is None
    assert fields_of(assert_error(reader.get("/api/v1/history?limit=-1&offset=-1"), 400)) == {"limit", "offset"}


def test_23_26_a_revision_pages_through_its_changes(reader: httpx.Client) -> None:
    first = reader.get("/api/v1/history/1").json()  # `serve --rules`: the six rules of RULES
    assert first["changeCount"] == 6 and len(first["changes"]) == 6
    page = reader.get("/api/v1/history/1/changes?limit=4").json()
    assert [c["op"] for c in page["items"]] == ["add"] * 4
    assert page["metadata"]["pagination"] == {"offset": 0, "limit": 4, "previousOffset": None, "nextOffset": 4,
                                              "currentPage": 1, "pageCount": 2, "totalCount": 6}
    rest = reader.get("/api/v1/history/1/changes?limit=4&offset=4").json()
    assert len(rest["items"]) == 2
    assert [c["ruleUuid"] for c in page["items"] + rest["items"]] == [c["ruleUuid"] for c in first["changes"]]
    assert_error(reader.get("/api/v1/history/999999/changes"), 404)
    assert reader.options("/api/v1/history/1/changes").headers["allow"] == "GET, HEAD, OPTIONS"


def test_11_unknown_revision_is_404(reader: httpx.Client, writer: httpx.Client) -> None:
    for bad in ("999999", "0", "abc", "-1", "1.5"):
        assert_error(reader.get(f"/api/v1/history/{bad}"), 404)
        assert_error(writer.post(f"/api/v1/history/{bad}/restore"), 404)


def test_restore_makes_the_table_what_it_was_as_a_new_revision(writer: httpx.Client, reader: httpx.Client,
                                                              served: ServeProcess) -> None:
    made = writer.post("/api/v1/rules", json={"from": "/restore-me", "to": "/there", "status": 308})
    uuid, etag, at = made.json()["uuid"], made.headers["etag"], made.json()["revision"]
    before = sorted(i["from"] for i in reader.get("/api/v1/rules?limit=1000").json()["items"])
    assert writer.delete(f"/api/v1/rules/{uuid}", headers={"if-match": etag}).status_code == 204
    writer.post("/api/v1/rules", json={"from": "/after-the-fact", "to": "/x", "status": 307})
    assert_error(reader.post(f"/api/v1/history/{at}/restore"), 403)
    r = writer.post(f"/api/v1/history/{at}/restore")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["plan"] == {"added": 1, "changed": 0, "removed": 1} and body["restoredFrom"] == at
    newest = reader.get("/api/v1/history?limit=1").json()["items"][0]
    assert body["revision"] == newest["revision"] > at and newest["actor"] == "api:more-writer"
    assert sorted(c["op"] for c in newest["changes"]) == ["add", "remove"]
    after = sorted(i["from"] for i in reader.get("/api/v1/rules?limit=1000").json()["items"])
    assert after == before
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        live = httpx.get(served.base + "/restore-me", follow_redirects=False)
        if live.status_code == 308:
            break
        time.sleep(0.05)
    assert live.status_code == 308 and live.headers["location"] == "/there"
    again = writer.post(f"/api/v1/history/{body['revision']}/restore").json()
    assert again["plan"] == {"added": 0, "changed": 0, "removed": 0} and again["revision"] == body["revision"]


def test_06_07_08_history_options_head_and_405(reader: httpx.Client) -> None:
    assert reader.options("/api/v1/history").headers["allow"] == "GET, HEAD, OPTIONS"
    assert reader.options("/api/v1/history/1").headers["allow"] == "GET, HEAD, OPTIONS"
    assert reader.options("/api/v1/history/1/restore").headers["allow"] == "POST, OPTIONS"
    for path in ("/api/v1/history", "/api/v1/history/1"):
        get, head = reader.get(path), reader.head(path)
        assert head.status_code == get.status_code == 200 and head.content == b""
    assert_error(reader.post("/api/v1/history", json={}), 405)
    r = reader.get("/api/v1/history/1/restore")
    assert_error(r, 405)
    assert r.headers["allow"] == "POST, OPTIONS"


def test_05_safe_methods_change_nothing(served: ServeProcess, reader: httpx.Client, admin: httpx.Client) -> None:
    def snapshot() -> tuple[object, ...]:
        with Store.open(served.database) as store:
            revision, table = store.load()
            keys = [(k.id, k.revoked_at) for k in store.list_keys()]
        return revision, table, keys

    before = snapshot()
    for client, path in ((reader, "/api/v1/history"), (reader, "/api/v1/history/1"),
                         (admin, "/api/v1/api-keys"), (reader, "/api/v1/resolutions")):
        for method in ("GET", "HEAD", "OPTIONS"):
            client.request(method, path)
    assert snapshot() == before


def test_ruleset_at_replays_the_change_log(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path}/s.db") as store:
        store.upgrade()
        one = RuleSet((Rule(to="/b", source="/a", status=308), Rule(to="/d", source_regex="^/c", status=307)),
                      ("a.example",))
        _plan, rev1 = store.apply(one)
        _plan, rev2 = store.apply(RuleSet((Rule(to="/z", source="/a", status=308),)))
        assert store.ruleset_at(0).rules == ()
        at1 = store.ruleset_at(rev1)
        assert [r.to_dict() for r in at1.rules] == [r.to_dict() for r in one.rules]
        assert at1.allowed_hosts == ("a.example",)
        assert [r.to_dict() for r in store.ruleset_at(rev2).rules] == [{"from": "/a", "to": "/z", "status": 308}]
        assert store.ruleset_at(rev2).allowed_hosts == ()
        with pytest.raises(LookupError):
            store.ruleset_at(rev2 + 1)


# -- resolutions ---------------------------------------------------------------------------------
def test_resolution_is_the_rules_test_explanation(reader: httpx.Client, served: ServeProcess) -> None:
    r = reader.post("/api/v1/resolutions", json={"url": "http://api.example.com/users/42?x=1", "method": "GET",
                                                 "headers": {"Host": "api.example.com"}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["outcome"] == "redirect" and body["response"]["status"] == 301
    assert body["rule"]["from"] == "/users/{id}" and body["values"] == {"id": "42"}
    cli_doc = json.loads(cli("rules", "test", "http://api.example.com/users/42?x=1", "-H", "Host: api.example.com",
                             "--json", "--database", served.database).stdout)
    assert body == cli_doc
    miss = reader.post("/api/v1/resolutions", json={"url": "/nothing/here"})
    assert miss.status_code == 200 and miss.json()["outcome"] == "no-rule" and miss.json()["rule"] is None


def test_resolution_follows_table_changes(reader: httpx.Client, writer: httpx.Client) -> None:
    """The compiled table is kept between resolutions, and rebuilt when a change lands."""
    ask = {"url": "/resolve-me-later", "method": "GET"}
    assert reader.post("/api/v1/resolutions", json=ask).json()["response"]["status"] == 404
    made = writer.post("/api/v1/rules", json={"from": "/resolve-me-later", "to": "/now", "status": 307})
    assert made.status_code == 201
    after = reader.post("/api/v1/resolutions", json=ask).json()
    assert after["response"]["status"] == 307 and after["rule"]["id"] == made.json()["uuid"]


def test_44_resolution_problems_in_one_400(reader: httpx.Client) -> None:
    body = assert_error(reader.post("/api/v1/resolutions", json={"method": "G E T", "headers": [], "x": 1}), 400)
    assert fields_of(body) == {"url", "method", "headers", "x"}
    assert_error(reader.post("/api/v1/resolutions", json={"url": "ftp://h/x"}), 400)
    assert_error(reader.post("/api/v1/resolutions", content=b"url=/x",
                             headers={"content-type": "application/x-www-form-urlencoded"}), 415)


def test_06_08_resolutions_options_and_405(reader: httpx.Client, served: ServeProcess) -> None:
    assert reader.options("/api/v1/resolutions").headers["allow"] == "POST, OPTIONS"
    r = reader.get("/api/v1/resolutions")
    assert_error(r, 405)
    assert r.headers["allow"] == "POST, OPTIONS"
    assert_error(httpx.post(served.admin + "/api/v1/resolutions", json={"url": "/h1"}), 401)


# -- 302 nowhere, including the new routes --------------------------------------------------------
def test_16_no_new_route_answers_302(served: ServeProcess, admin_key: str) -> None:
    doc = httpx.get(served.admin + "/api/v1/openapi.json").json()
    headers = {"authorization": f"Bearer {admin_key}"}
    paths = [p for p in doc["paths"] if p.startswith(("/api/v1/api-keys", "/api/v1/history", "/api/v1/resolutions"))]
    assert len(paths) == 7  # api-keys (2), history (4 with changes and restore), resolutions
    for path, field in (("/api/v1/api-keys", "scope"), ("/api/v1/resolutions", "url")):
        schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert field in schema["required"]
    for path in paths:
        concrete = path.replace("{key_id}", UNKNOWN).replace("{revision}", "999999")
        for method in [*doc["paths"][path], "trace", "head", "options"]:
            for h in (headers, {}):
                r = httpx.request(method.upper(), served.admin + concrete, headers=h, follow_redirects=False)
                assert r.status_code != 302, (method, path)
                assert not 300 <= r.status_code < 400 or r.status_code == 304


# -- rate limiting -------------------------------------------------------------------------------
def test_57_authenticated_responses_carry_rate_limit_headers(admin: httpx.Client, served: ServeProcess) -> None:
    secret = admin.post("/api/v1/api-keys", json={"name": "headers", "scope": "read"}).json()["secret"]
    with _client(served, secret) as fresh:  # a new key: its window starts with its first request
        first, second = fresh.get("/api/v1/rules"), fresh.get("/api/v1/history")
        assert first.headers["x-ratelimit-limit"] == "600"
        assert (first.headers["x-ratelimit-remaining"], second.headers["x-ratelimit-remaining"]) == ("599", "598")
        reset = int(first.headers["x-ratelimit-reset"])
        assert time.time() + 50 <= reset <= time.time() + 61  # UTC epoch seconds, end of the window
        assert "x-ratelimit-limit" in fresh.options("/api/v1/rules").headers
        missing = fresh.get(f"/api/v1/rules/{UNKNOWN}")  # errors too
        assert missing.status_code == 404 and missing.headers["x-ratelimit-remaining"] == "596"
        assert "x-ratelimit-limit" in fresh.head("/api/v1/rules").headers
    anonymous = httpx.get(served.admin + "/api/v1/rules")
    assert anonymous.status_code == 401 and "x-ratelimit-limit" not in anonymous.headers
    unknown = httpx.get(served.admin + "/api/v1/rules", headers={"x-api-key": "rdk_" + "A" * 43})
    assert unknown.status_code == 401 and "x-ratelimit-limit" not in unknown.headers


def test_rate_limit_windows_and_setting() -> None:
    from redirectory.admin.ratelimit import FixedWindow, parse_limit

    now = [1000.0]
    limiter = FixedWindow(2, 60, clock=lambda: now[0])
    assert [limiter.hit("a").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("b").remaining == 1  # per key
    refused = limiter.hit("a")
    assert (refused.remaining, refused.reset, refused.retry_after) == (0, 1060, 60)
    now[0] = 1060.0
    assert limiter.hit("a").allowed and limiter.hit("a").reset == 1120
    assert parse_limit(None) == (600, 60) and parse_limit("100") == (100, 60) and parse_limit("5/10s") == (5, 10)
    assert parse_limit("0") == (0, 60)
    for bad in ("x", "-1", "5/0"):
        with pytest.raises(ValueError):
            parse_limit(bad)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("admin-limited")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REDIRECTORY_ADMIN_RATE_LIMIT", "3/600")
        proc = start_serve(tmp, "--rules", str(rules))
    yield proc
    proc.stop()


def test_57_over_the_limit_is_429_with_retry_after(limited: ServeProcess) -> None:
    one, two = _key(limited, "read", "limited-1"), _key(limited, "read", "limited-2")
    with _client(limited, one) as client:
        remaining = [int(client.get("/api/v1/rules").headers["x-ratelimit-remaining"]) for _ in range(3)]
        assert remaining == [2, 1, 0]
        r = client.get("/api/v1/rules")
        body = assert_error(r, 429)
        assert body["titleKey"] == "redirectory.errors.tooManyRequests"
        retry = int(r.headers["retry-after"])
        assert 1 <= retry <= 600
        assert r.headers["x-ratelimit-limit"] == "3" and r.headers["x-ratelimit-remaining"] == "0"
        assert int(r.headers["x-ratelimit-reset"]) >= time.time()
        assert "no-store" in r.headers["cache-control"]
    with _client(limited, two) as other:  # per key: another key is not limited
        assert other.get("/api/v1/rules").status_code == 200
    assert httpx.get(limited.admin + "/healthz").status_code == 200  # not an API route, not limited
