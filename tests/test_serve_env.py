"""Configuration from the environment (docs/deploy.md): every `serve` option has a REDIRECTORY_…
variable listed in the one table; `serve` runs from examples/redirectory.env with no option; the
systemd unit in the docs is examples/redirectory.service and `systemd-analyze verify` accepts it;
`--version` and shell completion work."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from gateway_process import BIN, cli, free_port
from redirectory.cli import app

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "docs" / "deploy.md"
ENV_FILE = ROOT / "examples" / "redirectory.env"
UNIT = ROOT / "examples" / "redirectory.service"
#: Options whose variable is not REDIRECTORY_<OPTION NAME>: kept for every command that takes it.
RENAMED = {"--database": "REDIRECTORY_DATABASE_URL"}


def serve_options() -> dict[str, Any]:
    """{first option name: the click option} of `redirectory serve`."""
    command: Any = typer.main.get_command(app)
    return {p.opts[0]: p for p in command.commands["serve"].params
            if p.param_type_name == "option" and p.name != "help"}


def documented_table() -> dict[str, tuple[str, str]]:
    """{option: (variable, default)} from the table of docs/deploy.md's configuration section."""
    section = DEPLOY.read_text().split("## Configuration from the environment", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(--[a-z-]+)[^`]*` \| `(REDIRECTORY_[A-Z_]+)` \| (.+?) \|$", section, re.M)
    assert rows, "no table in docs/deploy.md's configuration section"
    table = {option: (variable, default) for option, variable, default in rows}
    assert len(table) == len(rows), "an option is listed twice"
    return table


def test_every_serve_option_has_a_variable_in_the_one_table() -> None:
    options = serve_options()
    table = documented_table()
    assert set(table) == set(options), f"in the docs only: {set(table) - set(options)}; " \
                                       f"undocumented: {set(options) - set(table)}"
    for name, option in options.items():
        expected = RENAMED.get(name, "REDIRECTORY_" + name.removeprefix("--").replace("-", "_").upper())
        assert option.envvar == expected, (name, option.envvar)
        variable, default = table[name]
        assert variable == expected, (name, variable)
        if option.is_flag and isinstance(option.default, bool):
            assert default == ("on" if option.default else "off"), (name, default)
        elif option.default not in (None, ""):
            shown = getattr(option.default, "value", option.default)
            assert default == f"`{shown}`", (name, default, shown)


def env_file() -> dict[str, str]:
    """examples/redirectory.env as systemd's EnvironmentFile= reads it (VARIABLE=value lines)."""
    values = {}
    for line in ENV_FILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep and re.fullmatch(r"REDIRECTORY_[A-Z_]+", key), line
            values[key] = value
    return values


def test_serve_from_the_example_environment_file_alone(tmp_path: Path) -> None:
    settings = env_file()
    known = {option.envvar for option in serve_options().values()}
    assert set(settings) <= known, set(settings) - known
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - from: /old/{rest:path}\n    to: /new/{rest}\n    status: 308\n")
    port, admin_port = free_port(), free_port()
    # where this machine differs from the example's host: the paths, the ports, loopback
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("REDIRECTORY_")}, **settings,
           "REDIRECTORY_RULES": str(rules), "REDIRECTORY_DATABASE_URL": f"sqlite:///{tmp_path}/env.db",
           "REDIRECTORY_HOST": "127.0.0.1", "REDIRECTORY_PORT": str(port), "REDIRECTORY_ADMIN_PORT": str(admin_port)}
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(BIN), "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _ready(admin_port):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        answer = httpx.get(f"http://127.0.0.1:{port}/old/x", timeout=10)
        assert answer.status_code == 308
        assert answer.headers["location"] == settings["REDIRECTORY_PUBLIC_URL"] + "/new/x"  # REDIRECTORY_PUBLIC_URL
        deadline = time.monotonic() + 15
        while '"path":"/old/x"' not in log.read_text():  # REDIRECTORY_ACCESS_LOG, one JSON line
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # REDIRECTORY_LOG_FORMAT=json
    (start,) = [line for line in lines if line.get("event") == "start"]
    assert start["workers"] == int(settings["REDIRECTORY_WORKERS"]) and start["server"] == "httptools"


def _ready(admin_port: int) -> bool:
    try:
        return bool(httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=2).json().get("ready"))
    except (httpx.HTTPError, ValueError):
        return False


@pytest.mark.parametrize(("variable", "value", "option"), [
    ("REDIRECTORY_PORT", "eighty", "--port"),
    ("REDIRECTORY_WORKERS", "0", "--workers"),
    ("REDIRECTORY_ACCESS_LOG", "maybe", "--access-log"),
    ("REDIRECTORY_LOG_FORMAT", "xml", "--log-format"),
])
def test_a_bad_variable_is_a_usage_error_naming_it(variable: str, value: str, option: str) -> None:
    ran = cli("serve", env={variable: value})
    assert ran.returncode == 2 and "Traceback" not in ran.stderr, ran.stderr
    assert option in ran.stderr and variable in ran.stderr, ran.stderr


def test_the_command_line_wins_over_the_environment() -> None:
    # --port from the command line; a bad REDIRECTORY_PORT is never read, a bad --workers still is
    ran = cli("serve", "--port", "8000", "--workers", "0", env={"REDIRECTORY_PORT": "eighty"})
    assert ran.returncode == 2 and "--workers" in ran.stderr and "REDIRECTORY_PORT" not in ran.stderr, ran.stderr


def test_version_and_shell_completion() -> None:
    version = cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"redirectory \d+\.\d+\.\d+\S*\n", version.stdout), version.stdout
    script = cli("--show-completion", "bash")
    assert script.returncode == 0 and "_redirectory_completion" in script.stdout, script.stderr
    completed = cli(env={"_REDIRECTORY_COMPLETE": "complete_bash", "COMP_WORDS": "redirectory ser", "COMP_CWORD": "1"})
    assert completed.stdout.split() == ["serve"], completed
    options = cli(env={"_REDIRECTORY_COMPLETE": "complete_bash", "COMP_WORDS": "redirectory serve --log-f",
                       "COMP_CWORD": "2"})
    assert options.stdout.split() == ["--log-format"], options


def test_the_systemd_unit_in_the_docs_is_the_shipped_one_and_verifies(tmp_path: Path) -> None:
    blocks = re.findall(r"^```ini\n(.*?)^```$", DEPLOY.read_text(), re.M | re.S)
    assert len(blocks) == 1, "docs/deploy.md shows one unit"
    shipped = UNIT.read_text()
    # the shipped file is the documented unit under a few comment lines
    head = shipped.removesuffix(blocks[0])
    assert blocks[0].startswith("[Unit]") and head != shipped, "the docs' unit differs from examples/redirectory.service"
    assert all(line.startswith("# ") for line in head.splitlines()), head
    unit = dict(re.findall(r"^(\w+)=(.*)$", blocks[0], re.M))
    assert unit["EnvironmentFile"] == "/etc/redirectory/redirectory.env" and unit["DynamicUser"] == "yes"
    assert unit["ExecStart"].split()[1:] == ["serve"]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd): the unit is not verified")
    # verify checks that ExecStart's program exists: point it at this virtualenv's redirectory
    local = tmp_path / "redirectory.service"
    local.write_text(shipped.replace(unit["ExecStart"].split()[0], str(BIN)))
    ran = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=60, check=False)
    # systemd warns about a key or value it does not know and still exits 0: any word about our file fails
    complaints = [line for line in (ran.stdout + ran.stderr).splitlines() if "redirectory.service" in line]
    assert ran.returncode == 0 and not complaints, ran.stdout + ran.stderr
