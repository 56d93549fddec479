"""Real loopback servers for the redirect client's tests (a pytest plugin: `pytest_plugins = ["client_servers"]`).

- `edge`: tests/client_edge_app.py under uvicorn, on two http ports (two origins) and one https port
  with a throw-away self-signed certificate (openssl);
- `httpbin_url`: httpbin under gunicorn;
- `gateway`: our own `redirectory serve`, with rules whose targets are on the edge app.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_process import ServeProcess, free_port, start_serve

HERE = Path(__file__).parent


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path, verify: ssl.SSLContext | bool = True,
          timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            httpx.get(url, timeout=2, verify=verify)
            return
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError(f"server at {url} not ready in {timeout}s:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Edge:
    port: int
    other_port: int
    https_port: int
    cert: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def other(self) -> str:
        """A second origin (another port) served by the same app."""
        return f"http://127.0.0.1:{self.other_port}"

    @property
    def secure(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def control(self, key: str, **state: Any) -> None:
        httpx.post(f"{self.base}/control/{key}", json=state, timeout=5).raise_for_status()

    def hits(self, key: str) -> dict[str, int]:
        result: dict[str, int] = httpx.get(f"{self.base}/hits/{key}", timeout=5).json()
        return result


@pytest.fixture(scope="session")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    tmp = tmp_path_factory.mktemp("edge")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    edge = Edge(free_port(), free_port(), free_port(), cert)
    log = tmp / "edge.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "client_edge_app.py"), "--port", str(edge.port), "--port",
             str(edge.other_port), "--https-port", str(edge.https_port), "--cert", str(cert), "--key", str(key)],
            stdout=handle, stderr=subprocess.STDOUT,
        )
    try:
        _wait(f"{edge.base}/echo/", proc, log)
        _wait(f"{edge.other}/echo/", proc, log)
        _wait(f"{edge.secure}/echo/", proc, log, verify=edge.ssl_context)
        yield edge
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def httpbin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("httpbin")
    port = free_port()
    log = tmp / "httpbin.log"
    with log.open("wb") as handle:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "8",
             "--log-level", "warning", "httpbin:app"],
            stdout=handle, stderr=subprocess.STDOUT, cwd=tmp,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/get", proc, log)
        yield url
    finally:
        _stop(proc)


GATEWAY_RULES = """\
rules:
  - from: /api/v1/users/{{rest:path}}
    to: {edge}/echo/api/v2/users/{{rest}}
    status: 301
    methods: [GET, HEAD]
    cache: 86400
  - from: /api/v1/users/{{rest:path}}
    to: {edge}/echo/api/v2/users/{{rest}}
    status: 308
    methods: [POST, PUT, PATCH, DELETE]
    cache: 86400
  - from: /apiFoo/v1/{{rest:path}}
    to: {edge}/echo/apiBar/v1/{{rest}}
    status: 307
  - from: /api/v1/reports/{{id}}/generate
    to: {edge}/echo/api/v1/reports/{{id}}/result
    status: 303
    methods: [POST]
  - from: /hop/one
    to: /hop/two
    status: 308
    cache: 120
  - from: /hop/two
    to: {edge}/echo/hop/three
    status: 308
"""


@pytest.fixture(scope="session")
def gateway(tmp_path_factory: pytest.TempPathFactory, edge: Edge) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("gateway")
    rules = tmp / "rules.yaml"
    rules.write_text(GATEWAY_RULES.format(edge=edge.base))
    served = start_serve(tmp, "--rules", str(rules))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def key() -> str:
    """A fresh name for per-test state on the edge app."""
    return uuid.uuid4().hex[:12]
