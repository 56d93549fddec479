"""Real servers on free loopback ports for the `redirectory check` tests: the fixture app
(uvicorn), httpbin and a Flask app using the default `redirect()` (gunicorn)."""

from __future__ import annotations

import http.client
import os
import ssl
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

    tls: bool = False

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _start(name: str, cmd: list[str], port: int, tmp: Path, ready_path: str, cwd: Path = TESTS,
           tls: bool = False) -> Server:
    log = tmp / f"{name}-{port}.log"
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=str(cwd),
                            env={**os.environ, "PYTHONPATH": str(TESTS)})
    server = Server(name, proc, port, log, tls)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log.read_text()}")
        try:
            conn = (http.client.HTTPSConnection("127.0.0.1", port, timeout=2,
                                                context=ssl._create_unverified_context()) if tls
                    else http.client.HTTPConnection("127.0.0.1", port, timeout=2))
            conn.request("GET", ready_path)
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"{name} not ready:\n{log.read_text()}")


def start_fixture(tmp: Path, tls: tuple[Path, Path] | None = None) -> Server:
    """The fixture app under uvicorn: httptools, no automatic Date (the app writes its own);
    over HTTPS with `tls` = (certificate, key)."""
    port = free_port()
    extra = ["--ssl-certfile", str(tls[0]), "--ssl-keyfile", str(tls[1])] if tls else []
    return _start("fixture", [str(BIN / "uvicorn"), "--app-dir", str(TESTS), "check_fixture_app:app",
                              "--host", "127.0.0.1", "--port", str(port), "--http", "httptools",
                              "--no-date-header", "--no-server-header", "--no-access-log", *extra], port, tmp,
                  "/clean/ok", tls=tls is not None)


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 made with the openssl command."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def start_gunicorn(name: str, target: str, tmp: Path, ready_path: str = "/") -> Server:
    port = free_port()
    return _start(name, [str(BIN / "gunicorn"), "-b", f"127.0.0.1:{port}", "--workers", "1", "--threads", "4",
                         target], port, tmp, ready_path)
