"""schemathesis against the admin API's served OpenAPI document, with its default checks.

The real `redirectory serve` process, its document at /api/v1/openapi.json, an admin key, and
the `schemathesis run` command line as a user would run it. Bounded (examples per operation,
one worker, a fixed seed) so the suite stays fast and the run repeatable; set
REDIRECTORY_SCHEMATHESIS_EXAMPLES and REDIRECTORY_SCHEMATHESIS_SEED to explore further.
The few statuses the checks are told to expect besides their defaults, and why, are in
tests/schemathesis.toml.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_process import ServeProcess, cli, start_serve

HERE = Path(__file__).parent
SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
EXAMPLES = os.environ.get("REDIRECTORY_SCHEMATHESIS_EXAMPLES", "15")
SEED = os.environ.get("REDIRECTORY_SCHEMATHESIS_SEED", "20261124")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    tmp = tmp_path_factory.mktemp("openapi")
    rules = HERE.parent / "examples" / "redirects.yaml"
    # The rate limit is a feature under test elsewhere; here it would only turn cases into 429s.
    proc = start_serve(tmp, "--rules", str(rules), env={"REDIRECTORY_ADMIN_RATE_LIMIT": "0"})
    yield proc
    proc.stop()


def test_schemathesis_default_checks_find_nothing(served: ServeProcess, tmp_path: Path) -> None:
    if not SCHEMATHESIS.exists():
        pytest.skip("schemathesis is not installed (make test installs it with the dev dependencies)")
    done = cli("keys", "create", "schemathesis", "--scope", "admin", "--database", served.database)
    assert done.returncode == 0, done.stderr
    key = done.stdout.strip().splitlines()[-1].strip()
    run = subprocess.run(
        [str(SCHEMATHESIS), "--no-color", "--config-file", str(HERE / "schemathesis.toml"), "run",
         f"{served.admin}/api/v1/openapi.json", "--header", f"Authorization: Bearer {key}",
         "--max-examples", EXAMPLES, "--seed", SEED, "--workers", "1", "--max-failures", "20",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": ""},
    )
    summary = run.stdout[-6000:]
    assert run.returncode == 0, f"schemathesis found failures:\n{summary}\n{run.stderr[-2000:]}"
    assert "46/46" in run.stdout or "Tested:" in run.stdout, summary


def test_our_own_checker_finds_nothing_to_warn_about(served: ServeProcess, tmp_path: Path) -> None:
    """Dogfood: `redirectory check --openapi` on the admin API's own document (infos allowed:
    its Location headers are documented as relative references, which they are)."""
    import httpx

    doc = tmp_path / "admin-openapi.json"
    doc.write_text(httpx.get(f"{served.admin}/api/v1/openapi.json", timeout=30).text)
    done = cli("check", "--openapi", str(doc), "--fail-on", "warning", "--format", "json")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
