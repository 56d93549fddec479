"""End-to-end: the real `redirectory serve` process over real HTTP on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, cli, parse_head, raw_request, start_serve

RULES = """\
allowed_hosts: [bar.example.internal]
rules:
  - from: /api/v1/users/{rest:path}
    to: /api/v2/users/{rest}
    status: 301
    methods: [GET, HEAD]
    cache: 86400
  - from: /api/v1/users/{rest:path}
    to: /api/v2/users/{rest}
    status: 308
    methods: [POST, PUT, PATCH, DELETE]
  - from: /apiFoo/v1/{rest:path}
    to: https://bar.example.internal/apiBar/v1/{rest}
    status: 307
  - from: /jobs/{id}/run
    to: /jobs/{id}/result
    status: 303
    methods: [POST]
  - from_regex: '^/legacy/(?P<id>[0-9]+)$'
    to: /items/{id}
    status: 308
    query: drop
  - from: /r/{rest:path}
    to: /{rest}
    status: 308
  - from: //tenant.example.com/home
    to: /tenant-home
    status: 308
  - from: /home
    to: /any-home
    status: 308
  - from: /later
    to: /soon
    status: 307
    starts: 2999-01-01T00:00:00Z
"""


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("gw")
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    served = start_serve(tmp, "--rules", str(rules))
    yield served
    served.stop()


@pytest.fixture
def client(gateway: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base, follow_redirects=False, timeout=10) as c:
        yield c


def _one(headers: httpx.Headers, name: str) -> str:
    values = headers.get_list(name)
    assert len(values) == 1, (name, values)
    return values[0]


def test_301_has_location_empty_body_cache_and_date(client: httpx.Client) -> None:
    r = client.get("/api/v1/users/42")
    assert r.status_code == 301
    assert _one(r.headers, "location") == "/api/v2/users/42"
    assert r.headers["content-length"] == "0" and r.content == b""
    assert r.headers["cache-control"] == "max-age=86400"
    assert r.headers["date"]
    assert r.headers["server"] == "redirectory"


def test_path_placeholder_keeps_trailing_form(client: httpx.Client) -> None:
    assert client.get("/api/v1/users").headers["location"] == "/api/v2/users"
    assert client.get("/api/v1/users/").headers["location"] == "/api/v2/users/"
    assert client.get("/api/v1/users/a/b").headers["location"] == "/api/v2/users/a/b"


def test_query_is_kept_by_default_and_dropped_on_request(client: httpx.Client) -> None:
    assert client.get("/api/v1/users/1?x=1&y=2").headers["location"] == "/api/v2/users/1?x=1&y=2"
    assert client.get("/legacy/7?x=1").headers["location"] == "/items/7"


def test_post_to_307_rule_gets_307_and_keeps_method(client: httpx.Client) -> None:
    r = client.post("/apiFoo/v1/something", content=b'{"a":1}', headers={"content-type": "application/json"})
    assert r.status_code == 307
    assert _one(r.headers, "location") == "https://bar.example.internal/apiBar/v1/something"
    assert r.content == b"" and r.headers["content-length"] == "0"
    assert "cache-control" not in r.headers  # temporary: not cacheable unless a rule says so


def test_post_to_moved_endpoint_gets_308_not_301(client: httpx.Client) -> None:
    r = client.post("/api/v1/users", content=b"{}")
    assert r.status_code == 308
    assert r.headers["cache-control"] == "max-age=3600"  # default for permanent without `cache`


def test_303_has_location_and_no_body_on_the_wire(gateway: ServeProcess) -> None:
    raw = raw_request(
        gateway.port,
        b"POST /jobs/9/run HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    )
    status, headers, body = parse_head(raw)
    assert status == 303
    assert dict(headers)["location"] == "/jobs/9/result"
    assert dict(headers)["content-length"] == "0"
    assert body == b""


def test_303_rule_does_not_answer_get(client: httpx.Client) -> None:
    assert client.get("/jobs/9/run").status_code == 404


def test_head_is_answered_like_get_without_body(gateway: ServeProcess) -> None:
    get = parse_head(raw_request(gateway.port, b"GET /api/v1/users/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    head = parse_head(raw_request(gateway.port, b"HEAD /api/v1/users/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    assert head[0] == get[0] == 301
    strip = {"date"}
    assert [h for h in head[1] if h[0] not in strip] == [h for h in get[1] if h[0] not in strip]
    assert head[2] == b""
    miss = parse_head(raw_request(gateway.port, b"HEAD /nothing HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"))
    assert miss[0] == 404 and miss[2] == b""


def test_keep_alive_survives_a_request_body(gateway: ServeProcess) -> None:
    raw = raw_request(
        gateway.port,
        b"POST /apiFoo/v1/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello"
        b"GET /api/v1/users/2 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    assert raw.count(b"HTTP/1.1 307") == 1 and raw.count(b"HTTP/1.1 301") == 1


def test_unmatched_gets_404_in_the_guide_error_format(client: httpx.Client) -> None:
    r = client.get("/no/such/thing")
    assert r.status_code == 404
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-language"] == "en"
    body = r.json()
    assert body["errors"] and body["errors"][0]["detail"]
    assert body["errors"][0]["detailKey"]
    for key in ("type", "title", "titleKey", "instance"):
        assert body[key]
    assert ":" in body["type"]  # an absolute URI


def test_no_version_strings(client: httpx.Client, gateway: ServeProcess) -> None:
    for r in (client.get("/api/v1/users/1"), client.get("/nope"), httpx.get(gateway.admin + "/healthz")):
        assert r.headers.get("server") in (None, "redirectory")
        assert "x-powered-by" not in r.headers
        assert "uvicorn" not in r.text.lower() and "python" not in r.text.lower()


def test_rule_outside_its_window_does_not_match(client: httpx.Client) -> None:
    assert client.get("/later").status_code == 404


def test_host_specific_rule_wins_for_its_host(client: httpx.Client) -> None:
    assert client.get("/home", headers={"host": "tenant.example.com"}).headers["location"] == "/tenant-home"
    assert client.get("/home", headers={"host": "TENANT.example.com:8000"}).headers["location"] == "/tenant-home"
    assert client.get("/home", headers={"host": "other.example.com"}).headers["location"] == "/any-home"


def test_placeholder_values_cannot_make_an_open_redirect(client: httpx.Client) -> None:
    for path in ("/r/%2F%2Fevil.example", "/r//evil.example", "/r/%5Cevil.example", "/r/%2Fevil.example/x"):
        location = client.get(path).headers["location"]
        assert location.startswith("/") and not location.startswith("//"), (path, location)
        assert "\\" not in location


def test_crlf_in_query_is_encoded_not_injected(gateway: ServeProcess) -> None:
    raw = raw_request(
        gateway.port,
        b"GET /api/v1/users/1?a=%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    status, headers, _ = parse_head(raw)
    assert status == 301
    assert "set-cookie" not in dict(headers)
    assert dict(headers)["location"] == "/api/v2/users/1?a=%0D%0ASet-Cookie:x"


def test_invalid_percent_encoding_is_400_not_500(client: httpx.Client) -> None:
    r = client.get("/api/v1/users/%zz")
    assert r.status_code == 400
    assert r.json()["errors"][0]["detailKey"] == "redirectory.errors.invalidPath"


def test_non_utf8_bytes_in_path_never_500(gateway: ServeProcess) -> None:
    raw = raw_request(gateway.port, b"GET /api/v1/users/\xff\xfe HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    status, headers, _ = parse_head(raw)
    assert status in (301, 400, 404), raw[:200]
    if status == 301:
        assert dict(headers)["location"] == "/api/v2/users/%FF%FE"


@pytest.mark.parametrize("length", [9000, 60000])
def test_over_long_paths_are_414_or_404_never_500(gateway: ServeProcess, length: int) -> None:
    path = "/api/v1/users/" + "a" * length
    raw = raw_request(gateway.port, f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
    status = int(raw.split(b" ", 2)[1]) if raw else 0
    assert status in (414, 404, 400, 431), raw[:200]


def test_healthz_reports_revision_and_rule_count(gateway: ServeProcess) -> None:
    health = gateway.health()
    assert health["status"] == "ok"
    assert health["rules"] == 9
    assert isinstance(health["revision"], int) and health["revision"] >= 1


def test_rules_apply_on_the_live_database_is_served_within_one_second(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a\n    to: /b\n    status: 308\n")
    served = start_serve(tmp_path, "--rules", str(rules))
    try:
        with httpx.Client(base_url=served.base, timeout=5) as c:
            assert c.get("/a").headers["location"] == "/b"
            rules.write_text("rules:\n  - from: /a\n    to: /c\n    status: 308\n  - from: /new\n    to: /x\n    status: 307\n")
            failures = 0
            done = cli("rules", "apply", str(rules), "--database", served.database)
            assert done.returncode == 0, done.stderr
            applied = time.monotonic()
            seen_new = None
            while time.monotonic() - applied < 3:
                r = c.get("/a")
                failures += r.status_code not in (308,)
                if r.headers.get("location") == "/c" and c.get("/new").status_code == 307:
                    seen_new = time.monotonic() - applied
                    break
                time.sleep(0.02)
            assert seen_new is not None and seen_new < 1.0, seen_new
            assert failures == 0
    finally:
        served.stop()


def test_hits_are_counted_and_flushed(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a\n    to: /b\n    status: 308\n")
    served = start_serve(tmp_path, "--rules", str(rules))
    try:
        with httpx.Client(base_url=served.base, timeout=5) as c:
            for _ in range(57):
                c.get("/a")
            for _ in range(3):
                c.get("/missing")
    finally:
        assert served.stop() == 0
    stats = cli("rules", "stats", "--json", "--database", served.database)
    assert stats.returncode == 0, stats.stderr
    data = json.loads(stats.stdout)
    assert [r["hits"] for r in data["rules"]] == [57]
    assert {p["path"]: p["hits"] for p in data["unmatched"]}["/missing"] == 3


def test_public_url_makes_location_absolute(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a\n    to: /b\n    status: 308\n")
    served = start_serve(tmp_path, "--rules", str(rules), "--public-url", "https://api.example.com")
    try:
        assert httpx.get(served.base + "/a?q=1").headers["location"] == "https://api.example.com/b?q=1"
    finally:
        served.stop()


def test_forwarded_headers_only_from_trusted_proxies(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a\n    to: /b\n    status: 308\n")
    fwd = {"x-forwarded-proto": "https", "x-forwarded-host": "api.example.com"}
    served = start_serve(tmp_path, "--rules", str(rules), "--forwarded-allow-ips", "127.0.0.1")
    try:
        assert httpx.get(served.base + "/a", headers=fwd).headers["location"] == "https://api.example.com/b"
        # an unusable forwarded host is ignored, never copied into Location
        assert httpx.get(served.base + "/a", headers={"x-forwarded-host": "a b/c"}).headers["location"] == "/b"
    finally:
        served.stop()
    untrusted = start_serve(tmp_path, "--rules", str(rules), "--forwarded-allow-ips", "10.0.0.0/8")
    try:
        assert httpx.get(untrusted.base + "/a", headers=fwd).headers["location"] == "/b"
    finally:
        untrusted.stop()


@pytest.mark.parametrize("server", ["uvicorn", "granian"])
def test_asgi_server_options_serve_the_same_answers(tmp_path: Path, server: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a/{x}\n    to: /b/{x}\n    status: 308\n")
    served = start_serve(tmp_path, "--rules", str(rules), "--server", server)
    try:
        r = httpx.get(served.base + "/a/%2Fx")
        assert r.status_code == 308 and r.headers["location"] == "/b/%2Fx"
        assert r.headers["server"] == "redirectory"
        miss = httpx.get(served.base + "/nope")
        assert miss.status_code == 404 and miss.json()["errors"]
    finally:
        assert served.stop() == 0


def test_two_workers_share_the_table(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /a\n    to: /b\n    status: 308\n")
    served = start_serve(tmp_path, "--rules", str(rules), "--workers", "2")
    try:
        with httpx.Client(base_url=served.base, timeout=5) as c:
            assert all(c.get("/a").status_code == 308 for _ in range(20))
    finally:
        served.stop()
