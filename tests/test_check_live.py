"""`redirectory check URL...` against real servers on loopback: httpbin and a Flask app using the
default `redirect()` (both flagged S302-FORBIDDEN), our own gateway `redirectory serve` and the
toolkit examples (clean: no error, no warning)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema_rs
import pytest
import yaml
from typer.testing import CliRunner

from check_servers import Server, start_fixture, start_gunicorn
from gateway_process import start_serve
from redirectory.check.report.jsonout import JSON_SCHEMA
from redirectory.cli import app
from test_toolkit_examples import RULES, App
from test_toolkit_examples import apps as apps  # noqa: F401 - the module-scoped fixture, reused

FAST = ["--rate", "0", "--timeout", "5", "--format", "json"]


def check(*args: str) -> tuple[int, dict[str, object]]:
    """`redirectory check` in process (the subprocess runs are in test_check_cli.py)."""
    result = CliRunner().invoke(app, ["check", *FAST, *args])
    assert result.exit_code in (0, 1), (result.exit_code, result.output, result.exception)
    report = json.loads(result.stdout)
    jsonschema_rs.validator_for(JSON_SCHEMA).validate(report)
    return result.exit_code, report


def ids(report: dict[str, object]) -> set[str]:
    return {f["id"] for f in report["findings"]}  # type: ignore[index, union-attr]


def serious(report: dict[str, object]) -> list[tuple[str, str]]:
    return [(f["id"], f["message"]) for f in report["findings"] if f["severity"] != "info"]  # type: ignore[index, union-attr]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    tmp = tmp_path_factory.mktemp("check-live")
    started: dict[str, Server] = {}
    try:
        started["httpbin"] = start_gunicorn("httpbin", "httpbin:app", tmp, "/get")
        started["flask"] = start_gunicorn("flask", "check_flask_redirect_app:app", tmp, "/new")
        started["fixture"] = start_fixture(tmp)
        yield started
    finally:
        for server in started.values():
            server.stop()


def test_httpbin_302_is_forbidden(servers: dict[str, Server]) -> None:
    base = servers["httpbin"].base
    code, report = check(f"{base}/redirect-to?url=/get&status_code=302")
    assert code == 1 and "S302-FORBIDDEN" in ids(report)
    finding = next(f for f in report["findings"] if f["id"] == "S302-FORBIDDEN")  # type: ignore[union-attr]
    assert finding["severity"] == "error" and "303" in finding["message"] and "307" in finding["message"]
    code, report = check(f"{base}/redirect-to?url=/get&status_code=307", f"{base}/redirect/7")
    assert "S302-FORBIDDEN" in ids(report) and "RDR-CHAIN" in ids(report)  # /redirect/N answers 302s, 7 hops
    code, report = check("--profile", "rfc", f"{base}/redirect-to?url=/get&status_code=302")
    assert "S302-FORBIDDEN" not in ids(report)  # a house rule only


def test_flask_default_redirect_is_flagged(servers: dict[str, Server]) -> None:
    code, report = check(servers["flask"].base + "/old")
    assert code == 1
    assert {"S302-FORBIDDEN", "RDR-LOC-RELATIVE"} <= ids(report)


def test_our_gateway_is_clean(servers: dict[str, Server], tmp_path: Path) -> None:
    api = servers["fixture"].base
    rules = yaml.safe_load(RULES.read_text())  # the example rules, plus three to a live API
    rules["allowed_hosts"].append("127.0.0.1")
    rules["rules"] += [{"from": "/moved", "to": f"{api}/clean/ok", "status": 301, "methods": ["GET", "HEAD"],
                        "cache": 3600},
                       {"from": "/elsewhere", "to": f"{api}/clean/ok", "status": 307},
                       {"from": "/echo", "to": f"{api}/clean/echo", "status": 307}]
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    gateway = start_serve(tmp_path, "--rules", str(path))
    try:
        allow = ["--allow-origin", api]
        code, report = check(*allow, gateway.base + "/moved", gateway.base + "/elsewhere")
        assert (code, report["findings"]) == (0, [])
        code, report = check(*allow, "--method", "POST", "--data", "{}", "--allow-unsafe", "--allow-host",
                             "127.0.0.1", gateway.base + "/echo")
        assert (code, report["findings"]) == (0, [])
        # the example rules: every hop is right; their targets live on a backend this test does not run
        code, report = check("--allow-origin", "https://bar.example.internal", gateway.base + "/api/v1/users/42",
                             gateway.base + "/legacy/items/7", gateway.base + "/apiFoo/v1/something")
        assert code == 0 and {i for i, _ in serious(report)} == {"RDR-TARGET-UNREACHABLE"}
    finally:
        gateway.stop()


@pytest.mark.parametrize("name", ["fastapi", "flask", "django"])
def test_toolkit_examples_are_clean(apps: dict[str, App], name: str) -> None:  # noqa: F811
    """The examples served as in test_toolkit_examples.py (its `apps` fixture, module-scoped here)."""
    base = f"http://127.0.0.1:{apps[name].port}"
    code, report = check(f"{base}/api/v1/users/42", f"{base}/api/v2/countries", f"{base}/api/v2/users/42",
                         f"{base}/legacy/login")
    assert code == 0 and serious(report) == []
    assert len(report["targets"]) == 4  # type: ignore[arg-type]
