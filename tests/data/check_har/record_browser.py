"""Record tests/data/check_har/playwright-chromium.har: a real Chromium, driven by Playwright,
against a real `redirectory serve` (examples/redirects.yaml; the admin listener's docs page for
static files with validators). Not run by the suite (it needs Chromium); run it by hand:

    apt-get install -y chromium
    python3 -m venv /tmp/pw && /tmp/pw/bin/pip install playwright
    /tmp/pw/bin/python tests/data/check_har/record_browser.py .venv/bin/redirectory

The browsing: a 301 followed by the browser, the docs page loaded twice (revalidations and cache
hits), the 301 again (now from the browser's cache), a POST answered 303 and one answered 308
(fetch follows both), and a 307 to a host that does not resolve (a failed request). Bodies are
omitted (their sizes are kept): the assets would weigh 2 MB.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main(binary: str) -> None:
    port, admin = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        serve = subprocess.Popen([binary, "serve", "--rules", str(REPO / "examples" / "redirects.yaml"),
                                  "--database", f"sqlite:///{tmp}/r.db", "--port", str(port),
                                  "--admin-port", str(admin)])
        try:
            for _ in range(200):
                try:
                    if httpx.get(f"http://127.0.0.1:{admin}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            base, docs = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin}/api/v1/docs"
            out = HERE / "playwright-chromium.har"
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
                context = browser.new_context(record_har_path=str(out), record_har_content="omit")
                page = context.new_page()
                page.goto(base + "/api/v1/users/42")
                page.goto(docs, wait_until="networkidle")
                page.reload(wait_until="networkidle")
                page.goto(base + "/api/v1/users/42")
                page.evaluate("""async () => {
                    await fetch('/api/v1/reports/7/generate', {method: 'POST', body: '{"a": 1}',
                                headers: {'Content-Type': 'application/json'}});
                    await fetch('/api/v1/users', {method: 'POST', body: '{"name": "Ada"}',
                                headers: {'Content-Type': 'application/json'}});
                    try { await fetch('/apiFoo/v1/something', {method: 'POST', body: 'x'}); } catch (e) {}
                }""")
                context.close()
                browser.close()
            print(f"wrote {out}")
        finally:
            serve.terminate()
            serve.wait(timeout=30)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(REPO / ".venv" / "bin" / "redirectory"))
