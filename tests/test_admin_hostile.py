"""Hostile clients against the admin API of the real `redirectory serve` (issue 13, points 6, 7, 10).

- JSON nested deeper than `limits.MAX_JSON_DEPTH`, and NUL (or any control character) in a query
  parameter or a JSON string, are 400 naming the field, on SQLite and PostgreSQL alike (they were
  500s: RecursionError, psycopg's DataError), and change nothing;
- a body over its route's limit is 413 in the error format: at once when `Content-Length` says so
  (the body is never sent), and as soon as a chunked body passes it; the process's peak memory
  does not grow by the body's size, and redirects are served all along;
- an API key in the URL is 400 whatever the parameter's name or case, and any value shaped like
  one of our secrets is, whatever it is called.
"""

from __future__ import annotations

import json
import os
import select
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from conftest import PG_ENV, postgres_base_url
from gateway_process import ServeProcess, cli, parse_head, start_serve
from redirectory.admin.limits import BODY_LIMITS, DEFAULT_BODY_LIMIT, MAX_JSON_DEPTH

EXAMPLES = Path(__file__).parent.parent / "examples" / "redirects.yaml"
MIB = 1024 * 1024


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """The real gateway with the guide's examples, on a SQLite file or a fresh PostgreSQL schema."""
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    env = {"REDIRECTORY_ADMIN_RATE_LIMIT": "0"}
    if request.param == "sqlite":
        proc = start_serve(tmp, "--rules", str(EXAMPLES), env=env)
        yield proc
        proc.stop()
        return
    base, reason = postgres_base_url()
    if base is None:
        if os.environ.get(PG_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    libpq = base.set(drivername="postgresql").render_as_string(hide_password=False)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = base.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    try:
        proc = start_serve(tmp, "--rules", str(EXAMPLES), database=url, env=env)
        yield proc
        proc.stop()
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _key(served: ServeProcess, scope: str) -> str:
    done = cli("keys", "create", f"hostile-{scope}-{uuid.uuid4().hex[:6]}", "--scope", scope,
               "--database", served.database)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1].strip()


@pytest.fixture(scope="module")
def admin_key(served: ServeProcess) -> str:
    return _key(served, "admin")


@pytest.fixture
def api(served: ServeProcess, admin_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.admin, headers={"authorization": f"Bearer {admin_key}"}, timeout=30) as client:
        yield client


def error(r: httpx.Response, status: int, key: str) -> dict[str, Any]:
    """The error body, checked: the status, the guide's format, our key, no library text."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["type"] == f"urn:redirectory:error:{key}" and body["errors"] and body["instance"], body
    for text in ("Traceback", "RecursionError", "DataError", "psycopg", "sqlalchemy", "SELECT", "INSERT"):
        assert text not in r.text
    return body


def fields(body: dict[str, Any]) -> list[str]:
    return [name for item in body["errors"] for name in item.get("fields", [])]


def table(api: httpx.Client) -> tuple[int, list[dict[str, Any]]]:
    """(revision, every rule): to show that a refused request changed nothing."""
    rules = api.get("/api/v1/rules", params={"limit": 1000}).json()["items"]
    history = api.get("/api/v1/history", params={"limit": 1}).json()["items"]
    return history[0]["revision"], rules


def a_rule(api: httpx.Client) -> tuple[str, str]:
    """(uuid, ETag) of some rule of the table, for PUT and PATCH."""
    uid = api.get("/api/v1/rules", params={"limit": 1}).json()["items"][0]["uuid"]
    return uid, api.get(f"/api/v1/rules/{uid}").headers["etag"]


# -- point 6: depth and NUL -----------------------------------------------------------------------
def nested(depth: int) -> str:
    """A JSON object whose `note` holds arrays nested so that the document is `depth` deep."""
    return '{"from": "/deep", "to": "/x", "status": 301, "note": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def json_writes(api: httpx.Client) -> list[tuple[str, str, dict[str, str]]]:
    """Every route that takes a JSON body: (method, path, extra headers)."""
    uid, etag = a_rule(api)
    return [("POST", "/api/v1/rules", {}), ("PUT", f"/api/v1/rules/{uid}", {"if-match": etag}),
            ("PATCH", f"/api/v1/rules/{uid}", {"if-match": etag, "content-type": "application/merge-patch+json"}),
            ("POST", "/api/v1/rules-bulk", {}), ("POST", "/api/v1/resolutions", {}),
            ("POST", "/api/v1/api-keys", {})]


def test_json_nested_deeper_than_the_limit_is_400_on_every_json_route(api: httpx.Client) -> None:
    before = table(api)
    bodies = {"1000 deep": nested(1000), "one too deep": nested(MAX_JSON_DEPTH + 1),
              "100,000 unclosed": "[" * 100_000, "deep inside a bulk item": '{"items": [' + nested(40) + "]}"}
    for method, path, headers in json_writes(api):
        for what, body in bodies.items():
            r = api.request(method, path, content=body.encode(),
                            headers={"content-type": "application/json", **headers})
            assert fields(error(r, 400, "jsonTooDeep")) == ["body"], (method, path, what)
        # at the limit the body is parsed, and refused for what it says (not for its depth)
        r = api.request(method, path, content=nested(MAX_JSON_DEPTH).encode(),
                        headers={"content-type": "application/json", **headers})
        assert r.status_code in (400, 422) and r.json()["type"] != "urn:redirectory:error:jsonTooDeep", r.text
    # brackets inside strings are text, not depth
    r = api.post("/api/v1/resolutions", json={"url": "/" + "[" * 5000, "headers": {"X-A": "{" * 5000}})
    assert r.status_code == 200, r.text
    assert table(api) == before


@pytest.mark.parametrize("name", ["q", "tag", "host", "method", "sort", "fields", "limit", "style"])
@pytest.mark.parametrize("value", ["\x00", "a\x00b", "x\x01", "\x1f", "tab\there", "\x7f"])
def test_control_characters_in_a_query_parameter_are_400_naming_it(api: httpx.Client, name: str,
                                                                   value: str) -> None:
    body = error(api.get("/api/v1/rules", params={name: value}), 400, "invalidCharacter")
    assert fields(body) == [name]
    assert "control character" in body["errors"][0]["detail"]


def test_nul_in_other_routes_queries_and_names_is_400(api: httpx.Client) -> None:
    for path, params in [("/api/v1/stats/timeline", {"ruleUuid": "\x00"}), ("/api/v1/stats/rules", {"sort": "\x00"}),
                         ("/api/v1/history", {"excludeMetadata": "\x00"}),
                         ("/api/v1/rules", {"\x00": "1"}), ("/api/v1/rules", {"q": "ok", "tag": "a\x00"})]:
        body = error(api.get(path, params=params), 400, "invalidCharacter")
        assert fields(body) == [name.replace("\x00", "\\u0000") for name, value in params.items()
                                if "\x00" in name + value], (path, params)


def test_a_path_with_a_control_character_is_404_without_a_lookup(api: httpx.Client) -> None:
    for path in ["/api/v1/rules/%00", "/api/v1/api-keys/%00", "/api/v1/history/1%00", "/api/v1/rule-imports/%0a",
                 "/api/v1/rules/abc%7f"]:
        body = error(api.get(path), 404, "notFound")
        assert "\\u00" in body["errors"][0]["detail"], path


def test_nul_in_any_json_string_is_400_naming_the_field_and_changes_nothing(api: httpx.Client) -> None:
    before = table(api)
    uid, etag = a_rule(api)
    rule = {"from": "/nul", "to": "/x", "status": 301}
    cases: list[tuple[str, str, dict[str, str], Any, list[str]]] = [
        ("POST", "/api/v1/rules", {}, {**rule, "note": "a\x00b"}, ["note"]),
        ("POST", "/api/v1/rules", {}, {**rule, "from": "/nul\x00"}, ["from"]),
        ("POST", "/api/v1/rules", {}, {**rule, "to": "/x\x00", "tags": ["ok", "\x00"]}, ["to", "tags.1"]),
        ("PUT", f"/api/v1/rules/{uid}", {"if-match": etag}, {**rule, "note": "\x00"}, ["note"]),
        ("PATCH", f"/api/v1/rules/{uid}", {"if-match": etag, "content-type": "application/merge-patch+json"},
         {"note": "\x00"}, ["note"]),
        ("POST", "/api/v1/rules-bulk", {}, {"items": [rule, {**rule, "uuid": "\x00"}]}, ["items.1.uuid"]),
        ("POST", "/api/v1/rules-bulk", {}, {"items": [rule], "metadata": {"etags": {"\x00": "x"}}},
         ["metadata.etags.\\u0000"]),
        ("POST", "/api/v1/resolutions", {}, {"url": "/a", "headers": {"Host": "h\x00"}}, ["headers.Host"]),
        ("POST", "/api/v1/api-keys", {}, {"name": "ci\x00", "scope": "read"}, ["name"]),
    ]
    for method, path, headers, body, named in cases:
        r = api.request(method, path, content=json.dumps(body).encode(),
                        headers={"content-type": "application/json", **headers})
        assert fields(error(r, 400, "invalidCharacter")) == named, (method, path, body)
    assert table(api) == before
    assert not [k for k in api.get("/api/v1/api-keys", params={"limit": 1000}).json()["items"]
                if k["name"].startswith("ci")]


# -- point 7: body limits -------------------------------------------------------------------------
def rss_kib(served: ServeProcess, field: str = "VmHWM") -> int:
    """The serve process's peak (VmHWM) or current (VmRSS) resident memory, in KiB."""
    status = Path(f"/proc/{served.proc.pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith(field + ":")).split()[1])


def send_head(served: ServeProcess, head: str, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", served.admin_port), timeout=timeout)
    sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (a reset after its answer ends it too)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return data


def assert_413(raw: bytes, path: str, limit: int) -> dict[str, Any]:
    status, headers, body = parse_head(raw)
    assert status == 413, raw[:500]
    assert ("connection", "close") in headers and ("content-language", "en") in headers
    doc: dict[str, Any] = json.loads(body)
    assert doc["type"] == "urn:redirectory:error:contentTooLarge" and doc["title"] == "Content Too Large"
    assert f"{path} takes a body of at most" in doc["errors"][0]["detail"] and str(limit) in doc["errors"][0]["detail"]
    return doc


ROUTES = [("/api/v1/resolutions", "application/json"), ("/api/v1/rules", "application/json"),
          ("/api/v1/rules-bulk", "application/json"), ("/api/v1/rule-imports?format=yaml", "application/yaml"),
          ("/api/v1/api-keys", "application/json")]


def test_a_declared_body_over_the_limit_is_413_at_once_without_sending_it(served: ServeProcess) -> None:
    """Content-Length over the route's limit: 413 before a byte of the body is sent, even
    without a key (nothing is read to find out who is asking)."""
    read_key = _key(served, "read")
    for path, ctype in ROUTES:
        limit = BODY_LIMITS.get(path.partition("?")[0], DEFAULT_BODY_LIMIT)
        for auth in (f"Authorization: Bearer {read_key}\n", ""):
            for declared in (limit + 1, 150 * MIB, 10**15):
                started = time.monotonic()
                sock = send_head(served, f"POST {path} HTTP/1.1\nHost: a\n{auth}Content-Type: {ctype}\n"
                                         f"Content-Length: {declared}\n")
                doc = assert_413(read_all(sock), path.partition("?")[0], limit)
                assert f"declares {declared}" in doc["errors"][0]["detail"]
                assert time.monotonic() - started < 5
    # at the limit, the body is read and judged on what it says
    body = b'{"url": "/api/v1/users/1", "pad": "' + b"x" * (DEFAULT_BODY_LIMIT - 60) + b'"}'
    body = body.ljust(DEFAULT_BODY_LIMIT, b" ")
    r = httpx.post(served.admin + "/api/v1/resolutions", content=body, timeout=30,
                   headers={"authorization": f"Bearer {read_key}", "content-type": "application/json"})
    assert r.status_code == 400 and r.json()["errors"][0]["fields"] == ["pad"], r.text


def stream_chunked(served: ServeProcess, path: str, ctype: str, key: str, total: int) -> tuple[int, bytes]:
    """POST a chunked body of up to `total` bytes, stopping as soon as the server answers:
    (bytes sent, the answer)."""
    sock = send_head(served, f"POST {path} HTTP/1.1\nHost: a\nAuthorization: Bearer {key}\n"
                             f"Content-Type: {ctype}\nTransfer-Encoding: chunked\n", timeout=30)
    chunk = b"x" * 65536
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    while sent < total and not select.select([sock], [], [], 0)[0]:
        try:
            sock.sendall(frame)
        except OSError:  # the server answered and closed
            break
        sent += len(chunk)
    return sent, read_all(sock)


def test_a_chunked_body_over_the_limit_is_413_as_soon_as_it_passes_while_redirects_go_on(
        served: ServeProcess) -> None:
    """The issue's attack: a read-scope key streams 150 MB to /resolutions (and a write key
    more than 64 MiB to /rule-imports). Each is cut off near its limit with 413; the process's
    peak memory does not grow by the body; the redirect port answers all along."""
    read_key, write_key = _key(served, "read"), _key(served, "write")
    answers: list[tuple[int, float]] = []
    stop = threading.Event()

    def redirects() -> None:
        with httpx.Client(base_url=served.base, timeout=10) as client:
            while not stop.is_set():
                started = time.monotonic()
                status = client.get("/api/v1/users/42").status_code
                answers.append((status, time.monotonic() - started))

    watcher = threading.Thread(target=redirects)
    peak_before = rss_kib(served)
    watcher.start()
    try:
        for _ in range(3):
            sent, raw = stream_chunked(served, "/api/v1/resolutions", "application/json", read_key, 150 * MIB)
            doc = assert_413(raw, "/api/v1/resolutions", DEFAULT_BODY_LIMIT)
            assert "passed it after" in doc["errors"][0]["detail"]
            assert sent < 150 * MIB
        peak_small = rss_kib(served)
        limit = BODY_LIMITS["/api/v1/rule-imports"]
        sent, raw = stream_chunked(served, "/api/v1/rule-imports?format=yaml", "application/yaml", write_key,
                                   limit + 8 * MIB)
        assert_413(raw, "/api/v1/rule-imports", limit)
    finally:
        stop.set()
        watcher.join(timeout=30)
    assert answers and {status for status, _ in answers} == {301}, answers[:5]
    # a generous bound for a loaded 2-core machine (the issue saw 641 ms; typical now: a few ms)
    assert max(seconds for _, seconds in answers) < 2.0, max(answers)
    assert peak_small - peak_before < 32 * 1024, (peak_before, peak_small)
    assert rss_kib(served, "VmRSS") < peak_before + 150 * 1024
    # and the admin API still answers
    r = httpx.get(served.admin + "/api/v1/rules", headers={"authorization": f"Bearer {read_key}"}, timeout=10)
    assert r.status_code == 200


def test_an_answer_before_the_end_of_a_chunked_body_closes_the_connection(served: ServeProcess) -> None:
    """A route that answers without reading (here: no key, 401) does not leave the server
    reading the rest of an endless chunked body to keep the connection."""
    sock = send_head(served, "POST /api/v1/rules HTTP/1.1\nHost: a\nContent-Type: application/json\n"
                             "Transfer-Encoding: chunked\n")
    sock.sendall(b"10\r\n" + b"x" * 16 + b"\r\n")
    raw = read_all(sock)  # returns: the server closed
    status, headers, _ = parse_head(raw)
    assert status == 401 and ("connection", "close") in headers


# -- point 10: keys in the URL --------------------------------------------------------------------
SECRET_SHAPED = "rdk_" + "A" * 43


@pytest.mark.parametrize("name", ["api_key", "API_KEY", "Api-Key", "apiKey", "x-api-key", "X-API-KEY", "key", "KEY",
                                  "token", "Token", "access_token", "ACCESS-TOKEN", "auth", "AUTH", "authorization",
                                  "Authorization", "secret", "client_secret", "password", "bearer", "auth.token"])
def test_a_credential_parameter_name_is_400_whatever_its_case(api: httpx.Client, name: str) -> None:
    for value in ("anything", ""):
        body = error(api.get("/api/v1/rules", params={name: value}), 400, "keyInUrl")
        assert fields(body) == [name] and "revoked" in body["errors"][0]["detail"]


@pytest.mark.parametrize("name", ["q", "tag", "foo", "note", "ruleUuid", "filter"])
def test_a_value_shaped_like_our_secret_is_400_whatever_the_parameter(served: ServeProcess, api: httpx.Client,
                                                                      admin_key: str, name: str) -> None:
    for value in (admin_key, SECRET_SHAPED, f"Bearer {admin_key}", "rdk_abcdefgh"):
        assert fields(error(api.get("/api/v1/rules", params={name: value}), 400, "keyInUrl")) == [name]
    # without any header: 400 all the same (the key must not work from the URL, and is named as leaked)
    assert fields(error(httpx.get(served.admin + "/api/v1/rules", params={name: admin_key}), 400,
                        "keyInUrl")) == [name]


def test_a_secret_as_a_bare_query_or_in_the_path_is_400(api: httpx.Client, admin_key: str) -> None:
    body = error(api.get(f"/api/v1/rules?{admin_key}"), 400, "keyInUrl")
    assert fields(body) == ["rdk_..."] and admin_key[4:] not in json.dumps(body)
    assert fields(error(api.get(f"/api/v1/rules/{admin_key}"), 400, "keyInUrl")) == ["path"]
    assert fields(error(api.get(f"/api/v1/api-keys/{SECRET_SHAPED}"), 400, "keyInUrl")) == ["path"]


@pytest.mark.parametrize(("name", "value"), [("q", "rdk_"), ("q", "rdk_short"), ("tag", "monkey"), ("q", "token"),
                                             ("q", "my-api-key-docs"), ("host", "keys.example.com")])
def test_ordinary_parameters_pass(api: httpx.Client, name: str, value: str) -> None:
    assert api.get("/api/v1/rules", params={name: value}).status_code == 200
