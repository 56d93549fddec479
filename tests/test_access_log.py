"""`serve --access-log`: one line per request, in one format, on every `--server` (the real process)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, raw_request, start_serve
from redirectory.gateway.access import shown_path
from redirectory.store import Store

RULES = """\
rules:
  - from: /old/{rest:path}
    to: /new/{rest}
    status: 308
"""

#: An access line for any request but the serving process's own readiness probe.
LINE = (r"access method=(?P<method>\S+) path=(?!/\.well-known/)(?P<path>\S+) status=(?P<status>\d{3}) "
        r"rule=(?P<rule>\S+) duration_ms=(?P<ms>\d+\.\d{3}) request_id=(?P<request_id>\S+)")
LINE_RE = re.compile(LINE)
SECRETS = ("SECRET-AUTH", "SECRET-COOKIE", "SECRET-QUERY")


def serve(tmp: Path, server: str, workers: int, *extra: str) -> ServeProcess:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    return start_serve(tmp, "--rules", str(rules), "--server", server, "--workers", str(workers), *extra)


def send_requests(served: ServeProcess) -> None:
    """A redirect carrying credentials, a 404, a redirect with a query string, a HEAD."""
    with httpx.Client(base_url=served.base, timeout=10) as client:
        credentials = {"Authorization": "Bearer SECRET-AUTH", "Cookie": "session=SECRET-COOKIE"}
        assert client.get("/old/users/42", headers=credentials).status_code == 308
        assert client.get("/nothing/here").status_code == 404
        assert client.get("/old/search", params={"token": "SECRET-QUERY"}).status_code == 308
        assert client.head("/old/head").status_code == 308


def stopped_output(served: ServeProcess) -> str:
    """The whole output, final: after the process has exited."""
    assert served.stop() == 0
    return served.output()


@pytest.mark.parametrize(("server", "workers"), [("httptools", 1), ("httptools", 2), ("uvicorn", 1), ("granian", 1)],
                         ids=["httptools", "httptools-2-workers", "uvicorn", "granian"])
def test_one_line_per_request_with_its_fields(tmp_path: Path, server: str, workers: int) -> None:
    served = serve(tmp_path, server, workers, "--access-log")
    try:
        with Store.open(served.database) as store:
            (rule,) = store.load()[1].rules
        send_requests(served)
        served.wait_for_lines(LINE, 4)
    finally:
        output = stopped_output(served)
    lines = {m["path"]: m for line in output.splitlines() if (m := LINE_RE.fullmatch(line))}
    assert sorted(lines) == ["/nothing/here", "/old/head", "/old/search", "/old/users/42"], output
    # Exactly one line per request: neither uvicorn's nor granian's own access log is on.
    assert sum("/nothing/here" in line for line in output.splitlines()) == 1, output
    expected = {
        "/old/users/42": ("GET", "308", rule.id),
        "/nothing/here": ("GET", "404", "-"),
        "/old/search": ("GET", "308", rule.id),
        "/old/head": ("HEAD", "308", rule.id),
    }
    for path, (method, status, rule_id) in expected.items():
        line = lines[path]
        assert (line["method"], line["status"], line["rule"]) == (method, status, rule_id), line.group(0)
        assert 0 <= float(line["ms"]) < 10_000
    for secret in SECRETS:
        assert secret not in output


def test_httptools_logs_malformed_and_pipelined_requests(tmp_path: Path) -> None:
    served = serve(tmp_path, "httptools", 1, "--access-log")
    try:
        assert b" 400 " in raw_request(served.port, b"NOT HTTP AT ALL\r\n\r\n")
        pipelined = raw_request(served.port, b"GET /old/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                                             b"GET /old/p2?k=SECRET-QUERY HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert pipelined.count(b"HTTP/1.1 308 ") == 2
        served.wait_for_lines(LINE, 3)
    finally:
        output = stopped_output(served)
    found = [m.group(0).rsplit(" duration_ms=", 1)[0] for line in output.splitlines() if (m := LINE_RE.fullmatch(line))]
    assert found[0] == "access method=- path=- status=400 rule=-", output
    assert [line.split(" rule=")[0] for line in found[1:]] == [
        "access method=GET path=/old/p1 status=308", "access method=GET path=/old/p2 status=308"], output
    assert "SECRET-QUERY" not in output


@pytest.mark.parametrize("server", ["httptools", "uvicorn", "granian"])
def test_no_access_lines_without_the_option(tmp_path: Path, server: str) -> None:
    served = serve(tmp_path, server, 1)
    try:
        send_requests(served)
    finally:
        output = stopped_output(served)
    assert "loaded 1 rules" in output  # the workers' log is captured: an access line would be there
    assert not [line for line in output.splitlines() if line.startswith("access ") or "/nothing/here" in line], output


def test_a_path_is_always_one_field() -> None:
    assert shown_path(b"/a/b%20c") == "/a/b%20c"
    assert shown_path(b"/a b\tc\r\n\x7f\xc3\xa9") == "/a%20b%09c%0D%0A%7F%C3%A9"

