"""The three example apps on real servers (uvicorn for FastAPI, gunicorn for Flask and Django):
the guide's cases end to end, every response checked with httplint (no BAD note), and the rule
table's answers compared with a real `redirectory serve` gateway."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from httplint import HttpRequestLinter, HttpResponseLinter, levels

from gateway_process import free_port, start_serve
from redirectory.rulefile import read_rule_file
from redirectory.rules.model import Rule
from redirectory.store import Store

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
RULES = EXAMPLES / "redirects.yaml"
BIN = Path(sys.executable).parent


@dataclass
class Reply:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class App:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    database: str | None = None

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None) -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            sent = {"Host": f"127.0.0.1:{self.port}", **(headers or {})}
            if body is not None:
                sent.setdefault("Content-Type", "application/json")
            conn.request(method, path, body=body, headers=sent)
            raw = conn.getresponse()
            reply = Reply(raw.status, raw.reason, raw.getheaders(), raw.read())
        finally:
            conn.close()
        lint(method, f"http://127.0.0.1:{self.port}{path}", sent, reply)
        return reply


def lint(method: str, uri: str, headers: dict[str, str], reply: Reply) -> None:
    """httplint over the exchange: no BAD note (warnings and infos are allowed)."""
    request = HttpRequestLinter()
    request.process_request_topline(method.encode(), uri.encode(), b"HTTP/1.1")
    request.process_headers([(k.encode(), v.encode()) for k, v in headers.items()])
    request.finish_content(True)
    response = HttpResponseLinter(_related=request)
    response.is_head_response = method == "HEAD"
    response.process_response_topline(b"HTTP/1.1", str(reply.status).encode(), reply.reason.encode())
    response.process_headers([(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers])
    response.feed_content(reply.body)
    response.finish_content(True)
    bad = [f"{n.__class__.__name__}: {n.summary}" for n in response.notes if n.level == levels.BAD]
    assert not bad, f"{method} {uri} -> {reply.status}: {bad}"


_TAKEN: set[int] = set()


def _spawn(name: str, tmp: Path, env: dict[str, str]) -> App:
    port = free_port()
    while port in _TAKEN:  # three apps start at once: never hand two of them the same free port
        port = free_port()
    _TAKEN.add(port)
    log = tmp / f"{name}.log"
    if name == "fastapi":
        cmd = [str(BIN / "uvicorn"), "--app-dir", str(EXAMPLES), "fastapi_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--no-access-log"]
    else:
        target = "flask_app:app" if name == "flask" else "django_app.wsgi:application"
        # one process (the example keeps its users in memory), four threads
        cmd = [str(BIN / "gunicorn"), "--chdir", str(EXAMPLES), "-b", f"127.0.0.1:{port}",
               "--workers", "1", "--threads", "4", target]
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, **env}, cwd=str(ROOT))
    return App(name, port, proc, log, env.get("REDIRECTORY_DATABASE"))


def _wait(app: App, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.proc.poll() is not None:
            raise RuntimeError(f"{app.name} exited:\n{app.log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", app.port, timeout=2)
            conn.request("GET", "/api/v2/countries")
            response = conn.getresponse()
            server = (response.getheader("server") or "").lower()
            expected = "uvicorn" if app.name == "fastapi" else "gunicorn"
            if response.status == 200 and expected in server:  # this app, not another on a reused port
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{app.name} not ready:\n{app.log.read_text()}")


def _stop(app: App) -> None:
    if app.proc.poll() is None:
        app.proc.terminate()
        try:
            app.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            app.proc.kill()
            app.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, App]]:
    tmp = tmp_path_factory.mktemp("toolkit-apps")
    database = f"sqlite:///{tmp}/rules.db"
    ruleset, _ = read_rule_file(RULES)
    with Store.open(database) as store:
        store.upgrade()
        store.apply(ruleset)
    started = {
        "fastapi": _spawn("fastapi", tmp, {"REDIRECTORY_DATABASE": database}),  # the store, reloaded live
        "flask": _spawn("flask", tmp, {"REDIRECTORY_RULES": str(RULES)}),
        "django": _spawn("django", tmp, {"REDIRECTORY_JOBS_DB": f"sqlite:///{tmp}/jobs.db",
                                         "DJANGO_SETTINGS_MODULE": "django_app.settings"}),
    }
    try:
        for app in started.values():
            _wait(app)
        yield started
    finally:
        for app in started.values():
            _stop(app)


NAMES = ["fastapi", "flask", "django"]


@pytest.mark.parametrize("name", NAMES)
def test_rule_table_cases(apps: dict[str, App], name: str) -> None:
    app = apps[name]
    r = app.request("GET", "/api/v1/users/42")  # guide: v1 -> v2, 301
    assert (r.status, r.header("location"), r.body) == (301, "/api/v2/users/42", b"")
    assert r.header("cache-control") == "max-age=86400"
    r = app.request("HEAD", "/api/v1/users/42")
    assert r.status == 301
    r = app.request("POST", "/api/v1/users/42", body=b"{}")  # the same move keeps POST: 308
    assert r.status == 308
    r = app.request("PUT", "/apiFoo/v1/something?x=1", body=b"{}")  # guide: apiFoo -> apiBar, 307
    assert (r.status, r.header("location")) == (307, "https://bar.example.internal/apiBar/v1/something?x=1")
    r = app.request("POST", "/api/v1/reports/9/generate")  # controller -> result, 303 (rule)
    assert (r.status, r.header("location"), r.body) == (303, "/api/v1/reports/9/result", b"")


@pytest.mark.parametrize("name", NAMES)
def test_controller_see_other(apps: dict[str, App], name: str) -> None:
    r = apps[name].request("POST", "/api/v2/users/42/activate")
    assert (r.status, r.header("location"), r.body) == (303, "/api/v2/users/42", b"")
    assert r.header("content-type") is None


@pytest.mark.parametrize("name", NAMES)
def test_conditional_get_and_guarded_writes(apps: dict[str, App], name: str) -> None:
    app = apps[name]
    first = app.request("GET", "/api/v2/users/42")
    etag, last_modified = first.header("etag"), first.header("last-modified")
    assert first.status == 200 and etag and last_modified
    r = app.request("GET", "/api/v2/users/42", {"If-None-Match": f'"nope", {etag}'})
    assert (r.status, r.body, r.header("etag")) == (304, b"", etag)
    assert r.header("content-type") is None and r.header("content-length") in (None, "0")
    r = app.request("GET", "/api/v2/users/42", {"If-Modified-Since": last_modified})
    assert r.status == 304
    r = app.request("GET", "/api/v2/users/42", {"If-None-Match": '"nope"', "If-Modified-Since": last_modified})
    assert r.status == 200  # If-None-Match present: If-Modified-Since ignored
    r = app.request("PUT", "/api/v2/users/42", body=b'{"firstName": "Augusta"}')
    assert r.status == 428 and json.loads(r.body)["errors"][0]["status"] == 428
    r = app.request("PUT", "/api/v2/users/42", {"If-Match": '"0"'}, body=b'{"firstName": "Augusta"}')
    assert r.status == 412
    r = app.request("PUT", "/api/v2/users/42", {"If-Match": etag}, body=b'{"firstName": "Augusta"}')
    assert r.status == 200 and json.loads(r.body)["firstName"] == "Augusta"
    assert r.header("etag") != etag
    r = app.request("GET", "/api/v2/users/42", {"If-None-Match": etag})
    assert r.status == 200  # the old ETag no longer matches


@pytest.mark.parametrize("name", NAMES)
def test_etag_from_the_body(apps: dict[str, App], name: str) -> None:
    app = apps[name]
    first = app.request("GET", "/api/v2/countries")
    etag = first.header("etag")
    assert first.status == 200 and etag and not etag.startswith("W/")
    r = app.request("GET", "/api/v2/countries", {"If-None-Match": "W/" + etag})  # weak comparison
    assert (r.status, r.body, r.header("etag")) == (304, b"", etag)


@pytest.mark.parametrize("name", NAMES)
def test_long_running_operation(apps: dict[str, App], name: str) -> None:
    app = apps[name]
    r = app.request("POST", "/api/v2/reports")
    assert r.status == 202
    location = r.header("location")
    assert location and location.startswith("/operations/")
    seen = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = app.request("GET", location)
        seen.append(r.status)
        if r.status != 202:
            break
        assert json.loads(r.body)["state"] == "running"
        time.sleep(0.05)
    assert r.status == 303 and r.body == b"" and seen[0] == 202
    result = app.request("GET", r.header("location") or "")
    assert result.status == 200 and json.loads(result.body)["lines"] == 3


@pytest.mark.parametrize("name", ["flask", "django"])
def test_framework_302_is_rewritten(apps: dict[str, App], name: str) -> None:
    app = apps[name]
    r = app.request("GET", "/legacy/login")
    assert r.status == 307 and (r.header("location") or "").endswith("/api/v2/users/42")
    r = app.request("POST", "/legacy/login")
    assert r.status == 303 and r.body == b""


def test_store_changes_reach_the_app_live(apps: dict[str, App]) -> None:
    app = apps["fastapi"]
    assert app.request("GET", "/brand-new").status == 404
    assert app.database is not None
    with Store.open(app.database) as store:
        store.add([Rule(source="/brand-new", to="/api/v2/countries", status=308)])
    deadline = time.monotonic() + 10
    while (r := app.request("GET", "/brand-new")).status != 308:
        assert time.monotonic() < deadline, "the new rule never reached the app"
        time.sleep(0.1)
    assert r.header("location") == "/api/v2/countries"


def test_same_answers_as_the_gateway(apps: dict[str, App], tmp_path: Path) -> None:
    gateway = start_serve(tmp_path, "--rules", str(RULES))
    try:
        for method, path in [("GET", "/api/v1/users/7?a=b"), ("DELETE", "/api/v1/users/7"),
                             ("GET", "/apiFoo/v1/x/y"), ("POST", "/api/v1/reports/3/generate"),
                             ("GET", "/legacy/items/12")]:
            conn = http.client.HTTPConnection("127.0.0.1", gateway.port, timeout=10)
            conn.request(method, path)
            raw = conn.getresponse()
            expected = (raw.status, raw.getheader("location"), raw.getheader("cache-control"), raw.read())
            conn.close()
            for name in NAMES:
                r = apps[name].request(method, path)
                assert (r.status, r.header("location"), r.header("cache-control"), r.body) == expected, name
    finally:
        gateway.stop()
