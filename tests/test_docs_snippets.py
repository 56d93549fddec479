"""Every shell and Python snippet in README.md, docs/*.md and bench/README.md runs as written.

What a user types is run, in order per file, in a fresh checkout-like directory (a `.venv` link to
this virtualenv, copies of `examples/`, the Makefile and pyproject.toml), with the virtualenv's
`bin` on PATH as after `source .venv/bin/activate`:

- ```sh/```bash blocks run as one bash script each (`set -eu -o pipefail`: an unset variable or a
  failing command fails the block); variables set by a block are seen by the file's later blocks;
- ```console blocks run their `$ ` lines, and every output line they show must appear in the real
  output (`...` or `…` in a shown line stands for any text);
- ```python blocks run twice with the virtualenv's python (an example must survive being run again);
- a block that mentions the quick start's gateway (127.0.0.1:8000/8001, `redirectory rules|keys|db`)
  first gets `make run` started in the background, as the README's quick start says;
- `curl` fails the block on an HTTP status >= 400 the block does not expect (see `http-errors`).

The only change to the text is the ports: each documented port (8000, 8001, 8080-8083) is replaced
by a free one, the same in every block of a file, so the test runs beside a real `make run`.

A block is steered by HTML comments on the lines right before its fence:

- `<!-- docs-test: skip (why) -->`: not run; the reason is the pytest skip message;
- `<!-- docs-test: background -->`: a long-running server the doc starts: run in the background
  until the file's last block is done; the next block runs once the ports it names accept connections;
- `<!-- docs-test: file NAME -->`: the block's text is the file NAME (written before later blocks run);
- `<!-- docs-test: exit N -->`: the block must exit with status N (a documented failure);
- `<!-- docs-test: http-errors 404 ... -->`: HTTP statuses >= 400 the block's curl commands expect.
Each failure names the file:line of the block (and of the failing line when bash can tell).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway_process import free_port

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
RUN = {"sh", "bash", "console", "python"}
#: Ports the docs name, each replaced by a free port (per file) before a block runs.
DOC_PORTS = (8000, 8001, 8080, 8081, 8082, 8083)
PORT_MENTION = r"(?:(?<=127\.0\.0\.1:)|(?<=localhost:)|(?<=--port )|(?<=--admin-port )|(?<=-b 127\.0\.0\.1:)|(?<=_PORT=)){}\b"
#: A block that talks to the quick start's gateway or its database.
NEEDS_GATEWAY = re.compile(r"127\.0\.0\.1:800[01]\b|\bredirectory (?:rules|keys|db)\b")
FENCE = re.compile(r"^```([\w-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
WORDS = {"skip", "background", "file", "exit", "http-errors"}
BLOCK_TIMEOUT = 60

CURL_SHIM = """#!{python}
# docs-test: the real curl, but an HTTP status >= 400 the block does not expect fails it (exit 22)
import os, re, subprocess, sys
MARK = "docs-test-http-status:"
done = subprocess.run([{curl!r}, *sys.argv[1:], "-w", "%{{stderr}}\\n" + MARK + "%{{http_code}}\\n"],
                      stderr=subprocess.PIPE)
err = done.stderr.decode(errors="replace")
statuses = [int(s) for s in re.findall(MARK + r"(\\d{{3}})", err)]
sys.stderr.write(re.sub(r"\\n?" + MARK + r"\\d{{3}}\\n", "", err))
allowed = {{int(s) for s in os.environ.get("DOCS_TEST_HTTP_ERRORS", "").split()}}
bad = [s for s in statuses if s >= 400 and s not in allowed]
if done.returncode == 0 and bad:
    sys.stderr.write(f"docs-test: curl got HTTP {{bad[0]}} (not expected by this block): curl {{' '.join(sys.argv[1:])}}\\n")
    sys.exit(22)
sys.exit(done.returncode)
"""


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence
    lang: str
    text: str
    directives: tuple[tuple[str, str], ...]

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    def directive(self, word: str) -> str | None:
        return next((arg for name, arg in self.directives if name == word), None)


def parse_directive(text: str) -> tuple[str, str]:
    word, _, arg = text.partition(" ")
    return word, arg.strip()


def blocks_of(doc: Path) -> list[Block]:
    lines = doc.read_text().split("\n")
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        directives = []
        k = i - 1
        while k >= 0 and (m := DIRECTIVE.match(lines[k])):
            directives.insert(0, parse_directive(m.group(1)))
            k -= 1
        found.append(Block(doc, i + 1, fence.group(1), "\n".join(lines[i + 1:end]) + "\n", tuple(directives)))
        i = end + 1
    return found


ALL_BLOCKS = [block for doc in DOCS for block in blocks_of(doc)]
RUNNABLE = [b for b in ALL_BLOCKS if b.lang in RUN or b.directive("file") is not None]


def test_directives_are_known_and_attached() -> None:
    """Every docs-test comment sits right above a fence and says something this test understands."""
    problems = []
    attached = {(b.doc, b.line - 1 - n) for b in ALL_BLOCKS for n in range(len(b.directives))}
    for doc in DOCS:
        for number, line in enumerate(doc.read_text().split("\n"), 1):
            if "docs-test:" in line and (doc, number) not in attached:
                problems.append(f"{doc.relative_to(ROOT)}:{number}: a docs-test comment not right above a fence")
    for block in ALL_BLOCKS:
        for word, arg in block.directives:
            if word not in WORDS:
                problems.append(f"{block.where}: unknown docs-test directive {word!r} (valid: {', '.join(sorted(WORDS))})")
            if word == "skip" and not re.fullmatch(r"\(.+\)", arg):
                problems.append(f"{block.where}: `skip` needs a reason in parentheses")
            if word in ("file", "exit", "http-errors") and not arg:
                problems.append(f"{block.where}: `{word}` needs an argument")
    assert not problems, "\n".join(problems)
    assert len([b for b in RUNNABLE if b.directive("skip") is None]) >= 30


def wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"{what}: nothing listens on port {port} after {timeout} s:\n{log.read_text(errors='replace')[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def run_in_own_group(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a block; on timeout, end it and everything it started (a server a block should not have started)."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        err += f"\ndocs-test: still running after {BLOCK_TIMEOUT} s (a server? mark the block background)"
        return subprocess.CompletedProcess(args, -9, out, err)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the block left running in the background
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@dataclass
class Session:
    """One doc file's run: its checkout, its ports, its shell variables, its background servers."""

    doc: Path
    home: Path
    ports: dict[int, int] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    background: list[subprocess.Popen[bytes]] = field(default_factory=list)
    gateway: bool = False
    failed: str | None = None

    @classmethod
    def create(cls, doc: Path, home: Path) -> Session:
        checkout = home / "checkout"
        checkout.mkdir()
        (checkout / ".venv").symlink_to(VENV)
        shutil.copytree(ROOT / "examples", checkout / "examples", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("Makefile", "pyproject.toml"):
            shutil.copy2(ROOT / name, checkout / name)
        os.utime(checkout / "pyproject.toml", (0, 0))  # older than .venv/.installed: make never reinstalls
        shims = home / "bin"
        shims.mkdir()
        curl = shutil.which("curl")
        if curl:
            (shims / "curl").write_text(CURL_SHIM.format(python=sys.executable, curl=curl))
            (shims / "curl").chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIRECTORY_", "PYTEST_", "VIRTUAL_ENV"))}
        env.update(PATH=f"{shims}:{VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}", NO_COLOR="1", COLUMNS="200")
        return cls(doc, checkout, env=env)

    def port(self, documented: int) -> int:
        if documented not in self.ports:
            self.ports[documented] = free_port()
        return self.ports[documented]

    def localise(self, text: str) -> str:
        """The block as run: each documented port replaced by this file's free port for it."""
        for documented in DOC_PORTS:
            pattern = PORT_MENTION.format(documented)
            if re.search(pattern, text):
                text = re.sub(pattern, str(self.port(documented)), text)
        return text

    def log(self, name: str) -> Path:
        return self.home.parent / f"{name}.log"

    def start_gateway(self) -> None:
        """`make run` (the quick start's first step), on this file's ports for 8000 and 8001."""
        self.gateway = True
        port, admin = self.port(8000), self.port(8001)
        log = self.log("make-run")
        proc = subprocess.Popen(
            # -o pyproject.toml: never reinstall into this virtualenv (the checkout's copy is newer)
            ["make", "--no-print-directory", "-o", "pyproject.toml", "run", f"PORT={port}", f"ADMIN_PORT={admin}"],
            cwd=self.home, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(proc)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"make run exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=2).json().get("ready"):
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"make run was not ready after 90 s:\n{log.read_text(errors='replace')[-3000:]}")

    def close(self) -> None:
        for proc in reversed(self.background):
            stop(proc)
        self.background.clear()

    # --- running blocks -------------------------------------------------------------------

    def run(self, block: Block) -> None:
        text = self.localise(block.text)
        name = block.directive("file")
        if name is not None:
            (self.home / name).write_text(block.text)
            return
        if block.lang != "python" and not self.gateway and NEEDS_GATEWAY.search(block.text):
            self.start_gateway()
        if block.lang == "python":
            self.run_python(block, text)
        elif block.directive("background") is not None:
            self.run_background(block, text)
        else:
            self.run_shell(block, text)

    def run_python(self, block: Block, text: str) -> None:
        script = self.home / f"docs_snippet_{block.doc.stem.replace('-', '_')}_{block.line}.py"
        script.write_text(text)
        for attempt in ("first", "second"):
            done = run_in_own_group([str(self.home / ".venv" / "bin" / "python"), script.name], cwd=self.home,
                                    env=self.env)
            assert done.returncode == 0, (f"{block.where}: the Python block failed on its {attempt} run "
                                          f"(exit {done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")

    def script(self, block: Block, text: str) -> tuple[str, int]:
        """A bash script for the block, and how many lines precede the block's own text."""
        if block.lang == "console":
            commands = [line[2:] for line in text.split("\n") if line.startswith("$ ")]
            body = "\n".join(commands) + "\n"
        else:
            body = text
        head = ("set -eu -o pipefail\nset -a\n"
                "trap 'echo \"docs-test: failed at block line $((LINENO - 3))\" >&2' ERR\n")
        return head + body, 3

    def run_background(self, block: Block, text: str) -> None:
        script, _ = self.script(block, text)
        log = self.log(f"background-{block.line}")
        proc = subprocess.Popen(["bash", "-c", script], cwd=self.home, env=self.env, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.background.append(proc)
        ports = [self.ports[p] for p in DOC_PORTS if re.search(PORT_MENTION.format(p), block.text)]
        assert ports, f"{block.where}: a background block must name the port it listens on"
        for port in ports:
            wait_for_port(port, proc, log, block.where)

    def run_shell(self, block: Block, text: str) -> None:
        script, _ = self.script(block, text)
        state = self.home.parent / "state.env"
        script += f'\nenv -0 > "{state}"\n'
        expected_exit = int(block.directive("exit") or 0)
        env = {**self.env, "DOCS_TEST_HTTP_ERRORS": block.directive("http-errors") or ""}
        done = run_in_own_group(["bash", "-c", script], cwd=self.home, env=env)
        failed_at = re.search(r"docs-test: failed at block line (\d+)", done.stderr)
        where = block.where if not failed_at else f"{block.doc.relative_to(ROOT)}:{block.line + int(failed_at.group(1))}"
        assert done.returncode == expected_exit, (
            f"{where}: the block exited {done.returncode}, expected {expected_exit}:\n"
            f"--- stdout\n{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}")
        if expected_exit == 0:
            for pair in state.read_bytes().split(b"\0"):
                name, _, value = pair.decode(errors="replace").partition("=")
                if name and name not in ("PWD", "OLDPWD", "SHLVL", "_", "DOCS_TEST_HTTP_ERRORS"):
                    self.env[name] = value
        if block.lang == "console":
            self.check_transcript(block, done.stdout + done.stderr)

    @staticmethod
    def check_transcript(block: Block, output: str) -> None:
        actual = [line.rstrip() for line in output.splitlines()]
        missing = []
        for shown in block.text.split("\n"):
            if not shown.strip() or shown.startswith("$ "):
                continue
            pattern = ".*".join(re.escape(part) for part in re.split(r"\.\.\.|…", shown.rstrip()))
            if not any(re.fullmatch(pattern, line) for line in actual):
                missing.append(shown)
        assert not missing, (f"{block.where}: the real output has no line like these shown lines:\n"
                             + "\n".join(missing) + "\n--- real output\n" + output[-3000:])


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[Path, Session]]:
    opened: dict[Path, Session] = {}
    yield opened
    for session in opened.values():
        session.close()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed (apt-get install make)")
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)")
@pytest.mark.parametrize("block", RUNNABLE, ids=[b.where for b in RUNNABLE])
def test_block_runs_as_written(block: Block, sessions: dict[Path, Session],
                               tmp_path_factory: pytest.TempPathFactory) -> None:
    reason = block.directive("skip")
    if reason is not None:
        pytest.skip(f"{block.where}: {reason.strip('()')}")
    session = sessions.get(block.doc)
    if session is None:
        for other in sessions.values():  # one file at a time: stop the previous file's servers
            other.close()
        session = sessions[block.doc] = Session.create(block.doc, tmp_path_factory.mktemp(block.doc.stem))
    if session.failed:
        pytest.skip(f"{block.where}: not run: an earlier block of this file failed ({session.failed})")
    try:
        session.run(block)
    except BaseException:
        session.failed = block.where
        raise
