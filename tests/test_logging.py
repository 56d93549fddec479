"""`serve --log-format text|json`, `--log-level`, the access log's request id and query option, the
start and shutdown lines: on every `--server`, in the real process (docs/deploy.md, "Logs")."""

from __future__ import annotations

import json
import logging
import re
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_process import BIN, ServeProcess, cli, free_port, start_serve
from redirectory import logs, serve
from redirectory.gateway import access
from redirectory.gateway.config import GatewayConfig
from redirectory.store import Store

RULES = """\
rules:
  - from: /old/{rest:path}
    to: /new/{rest}
    status: 308
"""
SANE_ID = "req-42.a_b:c/d+e=f@g~h"
#: Sent as X-Request-ID: not logged as they are (a space, a quote, too long), a new id instead.
INSANE_IDS = ("two words", 'quote"d', "x" * (access.REQUEST_ID_MAX + 1))
SECRETS = ("SECRET-AUTH", "SECRET-COOKIE")
#: Every JSON line has these.
COMMON = {"time", "level", "logger", "pid", "message"}
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def start(tmp: Path, *args: str) -> ServeProcess:
    rules = tmp / "rules.yaml"
    rules.write_text(RULES)
    return start_serve(tmp, "--rules", str(rules), *args)


def send(served: ServeProcess) -> dict[str, httpx.Response]:
    """The requests every variant sends; the responses by what they test."""
    with httpx.Client(base_url=served.base, timeout=10) as client:
        sent = {
            "sane": client.get("/old/sane", headers={"X-Request-ID": SANE_ID, "Authorization": "Bearer SECRET-AUTH"}),
            "query": client.get("/old/query", params={"q": "shown"}, headers={"Cookie": "s=SECRET-COOKIE"}),
            "missing": client.get("/nothing/here"),
        }
        for i, bad in enumerate(INSANE_IDS):
            sent[f"insane{i}"] = client.get(f"/old/insane{i}", headers={"X-Request-ID": bad})
    return sent


def json_lines(output: str) -> list[dict[str, Any]]:
    """Every line of the output as JSON: fails on any line that is not one object."""
    objects = []
    for number, line in enumerate(output.splitlines(), 1):
        try:
            obj = json.loads(line)
        except ValueError:
            pytest.fail(f"line {number} is not JSON: {line!r}\n{output}")
        assert isinstance(obj, dict) and COMMON <= obj.keys(), line
        assert TIME.fullmatch(obj["time"]) and obj["level"] in ("debug", "info", "warning", "error"), line
        objects.append(obj)
    return objects


@pytest.mark.parametrize(("server", "workers"), [("httptools", 2), ("uvicorn", 1), ("granian", 1)])
def test_json_lines_on_every_server(tmp_path: Path, server: str, workers: int) -> None:
    served = start(tmp_path, "--server", server, "--workers", str(workers), "--log-format", "json", "--access-log")
    try:
        with Store.open(served.database) as store:
            (rule,) = store.load()[1].rules
        responses = send(served)
        served.wait_for_lines(r'\{.*"event":"access".*"path":"/old/insane2".*', 1)
        assert served.proc.poll() is None
    finally:
        assert served.stop() == 0
    output = served.output()
    lines = json_lines(output)
    # No X-Request-ID in the answers: a cached 301/308 would replay one request's id to others.
    assert all("x-request-id" not in r.headers for r in responses.values())
    access_lines = {obj["path"]: obj for obj in lines if obj.get("event") == "access"}
    sane = access_lines["/old/sane"]
    assert (sane["method"], sane["status"], sane["rule"], sane["request_id"]) == ("GET", 308, rule.id, SANE_ID)
    assert sane["logger"] == "redirectory.access" and isinstance(sane["duration_ms"], float)
    assert access_lines["/nothing/here"]["rule"] is None and access_lines["/nothing/here"]["status"] == 404
    made = [access_lines[f"/old/insane{i}"]["request_id"] for i in range(len(INSANE_IDS))]
    assert len(set(made)) == len(made) and not set(made) & set(INSANE_IDS), made
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]+", rid) for rid in made), made
    assert "query" not in access_lines["/old/query"] and "shown" not in output  # no query string unless asked
    for secret in SECRETS:
        assert secret not in output
    # the start line, once ready; the shutdown line, last
    (started,) = [obj for obj in lines if obj.get("event") == "start"]
    assert started["rules"] == 1 and started["server"] == server and started["workers"] == workers
    assert started["version"] == cli("--version").stdout.split()[-1]
    assert started["database"] == served.database
    assert started["listeners"] == {"redirects": served.base, "admin": served.admin}
    assert lines[-1]["event"] == "stop" and lines[-1]["signal"] == "SIGTERM", lines[-1]
    # the servers' own loggers come through ours, in JSON too
    loggers = {obj["logger"] for obj in lines}
    own = {"httptools": "redirectory.http1", "uvicorn": "uvicorn.error", "granian": "_granian"}[server]
    assert own in loggers, loggers
    assert {"redirectory.gateway", "redirectory.serve"} <= loggers
    if workers > 1:
        assert len({obj["pid"] for obj in lines if obj["logger"] == "redirectory.gateway"}) == workers


def test_text_with_query_and_log_level_warning(tmp_path: Path) -> None:
    served = start(tmp_path, "--access-log", "--access-log-query", "--log-level", "warning")
    try:
        send(served)
        pattern = r"access method=GET path=/old/query query=q=shown status=308 rule=\S+ duration_ms=\S+ request_id=\S+"
        served.wait_for_lines(pattern, 1)
        served.wait_for_lines(rf"access method=GET path=/old/sane query=- .* request_id={re.escape(SANE_ID)}", 1)
    finally:
        assert served.stop() == 0
    output = served.output()
    assert "INFO:" not in output and "loaded 1 rules" not in output, output  # --log-level warning
    for secret in SECRETS:
        assert secret not in output


def test_a_start_that_fails_says_so_in_json(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        ran = subprocess.run([str(BIN), "serve", "--database", f"sqlite:///{tmp_path}/x.db", "--port", str(port),
                              "--admin-port", str(free_port()), "--log-format", "json"],
                             capture_output=True, text=True, timeout=60, check=False)
    assert ran.returncode == 1 and "Traceback" not in ran.stderr
    (line,) = json_lines(ran.stderr)
    assert line["level"] == "error" and f"cannot listen for redirects on 127.0.0.1:{port}" in line["message"]


def test_bad_log_options_are_usage_errors() -> None:
    for args in (["--log-format", "xml"], ["--log-level", "loud"]):
        ran = cli("serve", *args)
        assert ran.returncode == 2 and args[0] in ran.stderr and "Traceback" not in ran.stderr, ran.stderr


# -- in this process: the formatter, the start line's database, the access line's encoding ------------
def test_start_line_never_shows_a_password(caplog: pytest.LogCaptureFixture) -> None:
    config = GatewayConfig(database="postgresql://app:SECRET-PW@db.internal:5432/rules?password=SECRET-Q&sslmode=require")
    with caplog.at_level(logging.INFO, logger="redirectory.serve"):
        serve._log_start(config, 3)
    (record,) = caplog.records
    text = logs.JsonFormatter().format(record)
    assert "SECRET" not in text and "app:***@db.internal" in text and "sslmode=require" in text, text
    assert json.loads(text)["database"].startswith("postgresql://app:***@db.internal:5432/rules?")


def test_json_formatter_keeps_a_traceback_on_one_line() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %s", ("it",), exc_info=True)
        import sys

        record.exc_info = sys.exc_info()
    text = logs.JsonFormatter().format(record)
    assert "\n" not in text
    obj = json.loads(text)
    assert obj["message"] == "failed: it" and "ValueError: bad" in obj["exception"] and obj["level"] == "error"


def test_json_access_lines_parse_whatever_the_path() -> None:
    access.configure("json", query=True)
    try:
        access.log_request("GET", b'/a"b\\c d\xc3\xa9', 404, None, 0.0, b"\xff bad", b'k="v"')
        line = access._lines.pop()
    finally:
        access.configure("text")
    obj = json.loads(line)
    assert obj["path"] == "/a%22b%5Cc%20d%C3%A9" and obj["query"] == "k=%22v%22" and obj["rule"] is None
    assert re.fullmatch(r"[0-9a-f]{8}-1", obj["request_id"])
