"""Hostile clients against the default server (`--server httptools`), on the real serve process:
a client that pipelines requests and never reads its answers, and more connections than a worker
holds. Everybody else keeps being answered."""

from __future__ import annotations

import re
import select
import socket
import threading
import time
from pathlib import Path

from gateway_process import ServeProcess, start_serve
from redirectory.gateway.http1 import SEND_TIMEOUT

RULES = """\
rules:
  - from: /a/{rest:path}
    to: /b/{rest}
    status: 308
"""
#: 1,000 pipelined requests for a path no rule matches (the 404 answer is the largest there is).
FLOOD = b"GET /nothing/here HTTP/1.1\r\nHost: t\r\n\r\n" * 1000
GOOD_REQUEST = b"GET /a/1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"


def serve(tmp: Path, *args: str) -> ServeProcess:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    return start_serve(tmp, "--rules", str(rules), "--server", "httptools", *args)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def ask(port: int) -> tuple[bytes, float]:
    """One request on a new connection: (the status line, seconds until the answer was complete)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(GOOD_REQUEST)
        raw = b""
        while chunk := sock.recv(4096):
            raw += chunk
    return raw.split(b"\r\n", 1)[0], time.monotonic() - started


class Client(threading.Thread):
    """A well-behaved client asking one request after another until stopped."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.wrong: list[bytes] = []

    def run(self) -> None:
        while not self.stop.is_set():
            status, seconds = ask(self.port)
            self.latencies.append(seconds)
            if not status.startswith(b"HTTP/1.1 308 "):
                self.wrong.append(status)
            self.stop.wait(0.01)


def test_a_client_that_never_reads_is_reset_and_others_keep_their_latency(tmp_path: Path) -> None:
    served = serve(tmp_path)
    try:
        before = rss_mib(served.proc.pid)
        attackers = [socket.create_connection(("127.0.0.1", served.port)) for _ in range(8)]
        for sock in attackers:
            sock.setblocking(False)
        client = Client(served.port)
        started = time.monotonic()
        client.start()
        reset_after: dict[int, float] = {}
        peak = before
        while len(reset_after) < len(attackers) and time.monotonic() - started < SEND_TIMEOUT + 30:
            for i, sock in enumerate(attackers):
                if i in reset_after:
                    continue
                try:
                    sock.send(FLOOD)  # pipelines requests for as long as the server reads them
                except BlockingIOError:
                    pass  # the server has stopped reading from this client
                except OSError:  # ECONNRESET, EPIPE: the server reset the connection
                    reset_after[i] = time.monotonic() - started
            peak = max(peak, rss_mib(served.proc.pid))
            time.sleep(0.05)
        client.stop.set()
        client.join(timeout=15)
        for sock in attackers:
            sock.close()

        assert sorted(reset_after) == list(range(len(attackers))), f"reset: {reset_after}"
        # Reset by the send timeout (after it, not before), within a generous margin of it.
        assert all(SEND_TIMEOUT <= seconds < SEND_TIMEOUT + 10 for seconds in reset_after.values()), reset_after
        assert peak - before < 16, f"RSS grew from {before:.0f} to {peak:.0f} MiB"
        assert client.wrong == []
        latencies = sorted(client.latencies)
        assert len(latencies) >= 20
        p99 = latencies[int(len(latencies) * 0.99)]
        assert p99 < 0.5, f"p99 {p99 * 1000:.0f} ms over {len(latencies)} requests"
        # Logged once for the burst, not once per connection.
        pattern = rf"INFO: worker \d+: reset the connection of 127\.0\.0\.1: it took no byte of its responses for {SEND_TIMEOUT:g} s"
        assert len(served.wait_for_lines(pattern, 1)) == 1
    finally:
        served.stop()


def closed_by_server(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes `sock` (EOF or reset) within `timeout` seconds."""
    if not select.select([sock], [], [], timeout)[0]:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_connections_beyond_the_limit_are_closed_at_once_and_logged_once(tmp_path: Path) -> None:
    limit, extra = 16, 4
    served = serve(tmp_path, "--max-connections", str(limit))
    held: list[socket.socket] = []
    try:
        held = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(limit)]
        over = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(extra)]
        assert all(closed_by_server(sock, timeout=5) for sock in over)
        # The connections within the limit are still open and answered.
        for sock in held:
            sock.sendall(b"GET /a/1 HTTP/1.1\r\nHost: t\r\n\r\n")
        for sock in held:
            assert sock.recv(4096).startswith(b"HTTP/1.1 308 ")
        # More of the same burst: closed too, and still one log line.
        again = [socket.create_connection(("127.0.0.1", served.port), timeout=5) for _ in range(extra)]
        assert all(closed_by_server(sock, timeout=5) for sock in again)
        for sock in over + again:
            sock.close()
        pattern = (rf"WARNING: worker \d+: {limit} connections open, the limit \(--max-connections\): "
                   r"new connections are closed at once until some close")
        assert len(served.wait_for_lines(pattern, 1)) == 1
        # Once the held connections go, a client is served again.
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 10
        while True:
            try:
                status, _ = ask(served.port)
            except ConnectionError:
                status = b""
            if status.startswith(b"HTTP/1.1 308 ") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert status.startswith(b"HTTP/1.1 308 ")
        assert len([line for line in served.output().splitlines() if re.fullmatch(pattern, line)]) == 1
    finally:
        for sock in held:
            sock.close()
        served.stop()
