"""Run the real `redirectory serve` process on free loopback ports, for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

BIN = Path(sys.executable).parent / "redirectory"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed `redirectory` command; never raises on a non-zero exit."""
    full_env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    return subprocess.run([str(BIN), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout, check=False)


@dataclass
class ServeProcess:
    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    database: str
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    #: The admin listener's certificate when it serves HTTPS (`start_serve(admin_tls=...)`).
    admin_ca: Path | None = None

    @property
    def admin(self) -> str:
        scheme = "https" if self.admin_ca else "http"
        return f"{scheme}://127.0.0.1:{self.admin_port}"

    def health(self) -> dict[str, object]:
        verify = ssl.create_default_context(cafile=str(self.admin_ca)) if self.admin_ca else True
        return httpx.get(self.admin + "/healthz", timeout=5, verify=verify).json()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_lines(self, pattern: str, count: int, timeout: float = 15) -> list[re.Match[str]]:
        """The output's lines matching the regex `pattern` in full, once there are `count` of them."""
        compiled = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = [m for line in self.output().splitlines() if (m := compiled.fullmatch(line))]
            if len(found) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if len(found) < count:
            raise AssertionError(f"{len(found)} of {count} lines match {pattern!r} after {timeout}s:\n{self.output()}")
        return found


def start_serve(tmp: Path, *args: str, database: str | None = None, timeout: float = 60,
                env: dict[str, str] | None = None, admin_tls: tuple[Path, Path] | None = None) -> ServeProcess:
    """Start `redirectory serve` and wait until it is ready; `admin_tls` = (certificate, key) files."""
    database = database or f"sqlite:///{tmp}/gateway.db"
    if admin_tls:
        args = (*args, "--admin-tls-cert", str(admin_tls[0]), "--admin-tls-key", str(admin_tls[1]))
    port, admin_port = free_port(), free_port()
    log = tmp / f"serve-{port}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [str(BIN), "serve", "--database", database, "--port", str(port), "--admin-port", str(admin_port), *args],
        stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    served = ServeProcess(proc, port, admin_port, database, log, admin_tls[0] if admin_tls else None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{served.output()}")
        try:
            if served.health().get("ready"):
                return served
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    served.stop()
    raise RuntimeError(f"serve did not become ready in {timeout}s:\n{served.output()}")


def raw_request(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send raw bytes, read until the server closes (send `Connection: close`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def parse_head(raw: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    return status, headers, body
