"""Real servers on free loopback ports for the `redirectory check` tests: the fixture app
(uvicorn), httpbin and a Flask app using the default `redirect()` (gunicorn)."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from gateway_process import free_port

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start(name: str, cmd: list[str], port: int, tmp: Path, ready_path: str, cwd: Path = TESTS) -> Server:
    log = tmp / f"{name}-{port}.log"
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=str(cwd),
                            env={**os.environ, "PYTHONPATH": str(TESTS)})
    server = Server(name, proc, port, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log.read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", ready_path)
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} not ready:\n{log.read_text()}")


def start_fixture(tmp: Path) -> Server:
    """The fixture app under uvicorn: httptools, no automatic Date (the app writes its own)."""
    port = free_port()
    return _start("fixture", [str(BIN / "uvicorn"), "--app-dir", str(TESTS), "check_fixture_app:app",
                              "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
                              "--no-date-header", "--no-server-header", "--no-access-log"], port, tmp, "/clean/ok")


def start_gunicorn(name: str, target: str, tmp: Path, ready_path: str = "/") -> Server:
    port = free_port()
    return _start(name, [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                         target], port, tmp, ready_path)
