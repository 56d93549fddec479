"""The README's quick start, run as written: `make run`, then each command of the quick start.

Only the ports and the database file are changed (to free ones under a temp dir), through the
Makefile's variables and the REDIRECTORY_DATABASE_URL environment variable.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway_process import free_port

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def quick_start_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def commands(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text and "make test" in text


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (apt-get install make)")
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
def test_quick_start_runs_as_written(tmp_path: Path) -> None:
    port, admin_port = free_port(), free_port()
    database = f"sqlite:///{tmp_path}/quickstart.db"
    venv = Path(sys.executable).parent.parent
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.Popen(
        # -o pyproject.toml: never reinstall into the running venv (it may serve another checkout)
        ["make", "--no-print-directory", "-o", "pyproject.toml", "run", f"VENV={venv}", f"PORT={port}", f"ADMIN_PORT={admin_port}",
         f"DATABASE={database}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"http://127.0.0.1:{admin_port}/healthz", timeout=2).json().get("ready"):
                    break
            except (httpx.HTTPError, ValueError):
                time.sleep(0.2)
        else:
            pytest.fail("make run did not become ready")
        blocks = quick_start_blocks()
        assert len(blocks) >= 2
        ran = 0
        for block in blocks[:2]:
            for line in commands(block):
                command, _, comment = line.partition("#")
                command = command.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
                command = command.replace("127.0.0.1:8001", f"127.0.0.1:{admin_port}")
                command = command.replace(".venv/bin/redirectory", str(venv / "bin" / "redirectory"))
                done = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60,
                                      env={**env, "REDIRECTORY_DATABASE_URL": database}, check=False)
                assert done.returncode == 0, (line, done.stdout, done.stderr)
                ran += 1
                expected = re.match(r"\s*(\d{3})(?: -> (\S+))?", comment)
                if command.startswith("curl -i") and expected:
                    status_line = done.stdout.splitlines()[0]
                    assert f" {expected.group(1)} " in status_line + " ", (line, status_line)
                    if expected.group(2):
                        assert f"\nlocation: {expected.group(2)}\n" in done.stdout.replace("\r", ""), (line, done.stdout)
                if "healthz" in command:
                    assert '"status":"ok"' in done.stdout.replace(" ", "")
        assert ran >= 10
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
