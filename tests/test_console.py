"""The web console (`/console/` on the admin listener), driven in a real headless Chromium.

One real `redirectory serve` (SQLite file), one real admin key (`redirectory keys create`), one
browser (Debian's /usr/bin/chromium through Playwright; `playwright install` is never needed) for
the whole module. The console talks to the admin API only; the tests check what it did through
the API and the real gateway. Every page is photographed into docs/console/*.png for
docs/console.md, so the docs show the product as it is.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway_process import ServeProcess, cli, start_serve

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright: make dev installs it (pip install -e '.[browser]')")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no chromium: apt-get install chromium (.ci/run does)", allow_module_level=True)

expect = playwright_api.expect
Page = playwright_api.Page

SHOTS = Path(__file__).resolve().parent.parent / "docs" / "console"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = '"><img src=x onerror=alert(1)>'
XSS_TARGET = '/xss/landed?q=<script>alert(1)</script>#"><img/src=x/onerror=alert(1)>'  # a valid target: no spaces


def wait_for(condition: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Console:
    """The page, the server and an API client with the same key, plus what the browser reported."""

    def __init__(self, page: Page, served: ServeProcess, key: str):
        self.page = page
        self.served = served
        self.key = key
        self.api = httpx.Client(base_url=served.admin, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", self._console)

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _console(self, message: Any) -> None:
        # A 4xx answer to fetch() is logged by Chromium as "Failed to load resource": an expected
        # API answer (a 400 the page shows), not a script error. Everything else counts.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.errors.append(message.text)

    def go(self, fragment: str) -> None:
        url = f"{self.served.admin}/console/#/{fragment}"
        if self.page.url == url:
            self.page.reload()  # the same fragment again: no navigation otherwise
        else:
            self.page.goto(url)
        self.sign_in_if_asked()

    def sign_in_if_asked(self) -> None:
        heading = self.page.locator("main h1")
        expect(heading).to_be_visible()
        if heading.inner_text() == "Sign in":
            self.page.get_by_label("API key", exact=True).fill(self.key)
            self.page.get_by_role("button", name="Sign in").click()
            expect(self.page.get_by_role("button", name="Sign out")).to_be_visible()

    def shot(self, name: str, full_page: bool = True) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)

    def rule(self, source: str) -> dict[str, Any] | None:
        items = self.api.get("/api/v1/rules", params={"q": source, "limit": 100}).json()["items"]
        return next((r for r in items if r["from"] == source), None)

    def create(self, **fields: Any) -> dict[str, Any]:
        answer = self.api.post("/api/v1/rules", json=fields)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def gateway(self, path: str, method: str = "GET") -> httpx.Response:
        return httpx.request(method, self.served.base + path, timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("console"))
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def admin_key(served: ServeProcess) -> str:
    made = cli("keys", "create", "console-admin", "--scope", "admin", "--database", served.database)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


@pytest.fixture(scope="module")
def console(served: ServeProcess, admin_key: str) -> Iterator[Console]:
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-GB")
        context.set_default_timeout(10_000)
        page = context.new_page()
        yield Console(page, served, admin_key)
        context.close()
        browser.close()


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_console_is_served_with_a_strict_policy(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.admin, timeout=10) as client:
        page = client.get("/console/", headers={"Accept": "text/html"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        csp = page.headers["content-security-policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'",
                          "base-uri 'none'", "form-action 'self'", "connect-src 'self'"):
            assert directive in csp, csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        parser = Tags()
        parser.feed(page.text)
        scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
        assert scripts and all(attrs.get("src") for attrs in scripts), "an inline script"
        assert not any(tag == "style" or "style" in attrs for tag, attrs in parser.tags), "an inline style"
        assert not re.search(r"(?i)\b(https?:)?//", page.text), "the page names another host"
        for name in ("console.js", "api.js", "dom.js", "rules.js", "lifecycle.js", "resolve.js", "traffic.js", "history.js",
                     "import.js", "keys.js", "console.css"):
            asset = client.get(f"/console/{name}")
            assert asset.status_code == 200, name
            kind = "text/css" if name.endswith(".css") else "text/javascript"
            assert asset.headers["content-type"].startswith(kind), (name, asset.headers["content-type"])
            assert asset.headers["content-security-policy"] == csp and asset.headers["x-content-type-options"] == "nosniff"
            assert "innerHTML" not in asset.text and "insertAdjacentHTML" not in asset.text and "eval(" not in asset.text
            assert client.get(f"/console/{name}", headers={"If-None-Match": asset.headers["etag"]}).status_code == 304
        for path in ("/console", "/console/nothing.js", "/console/..%2F__init__.py"):
            assert client.get(path).status_code == 404, path
        post = client.post("/console/")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


def test_sign_in_with_the_keyboard_and_sign_out(console: Console) -> None:
    page = console.page
    page.goto(f"{console.served.admin}/console/")
    key_field = page.get_by_label("API key", exact=True)
    expect(key_field).to_be_focused()
    page.keyboard.type("rdk_not_a_real_key_000000000")
    page.keyboard.press("Enter")
    expect(page.locator("[data-error-for=key]")).to_contain_text("unknown or revoked")
    expect(key_field).to_have_attribute("aria-invalid", "true")
    key_field.fill("")
    console.shot("sign-in")
    key_field.focus()
    page.keyboard.type(console.key)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()
    expect(page.get_by_role("link", name="API keys")).to_be_visible()  # an admin key sees the keys page
    assert console.key not in page.url
    assert page.evaluate("Object.values(sessionStorage)") == [console.key]
    assert page.evaluate("document.cookie") == ""
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    console.go("rules")
    expect(page.get_by_role("heading", name="Rules")).to_be_visible()


def test_create_a_rule_and_the_gateway_serves_it(console: Console) -> None:
    page = console.page
    console.go("rules")
    page.get_by_role("link", name="New rule").click()
    page.get_by_label("Source path (from)").fill("/shop/old/{id}")
    page.get_by_label("Target (to)").fill("/shop/new/{id}")
    page.get_by_label("Status").select_option("308")
    page.get_by_label("Tags").fill("shop, console")
    page.get_by_label("Note").fill("moved by the console test")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice-ok")).to_contain_text("Created")
    row = page.locator("table.rules tbody tr", has_text="/shop/old/{id}")
    expect(row).to_contain_text("/shop/new/{id}")
    expect(row).to_contain_text("308")
    expect(row).to_contain_text("shop, console")
    answer = wait_for(lambda: (r := console.gateway("/shop/old/42")).status_code == 308 and r, what="the gateway's 308")
    assert answer.headers["location"] == "/shop/new/42"
    console.create(**{"from": "/docs/{page}", "to": "/manual/{page}", "status": 301, "methods": ["GET", "HEAD"]})
    console.create(**{"from": "/api/v1/users/{rest:path}", "to": "/api/v2/users/{rest}", "status": 308, "tags": ["api"]})
    console.go("rules")
    expect(page.locator("table.rules tbody tr")).to_have_count(3)
    page.get_by_role("link", name="Source").click()  # sort by source
    expect(page.locator("th[aria-sort=ascending]")).to_contain_text("Source")
    expect(page.locator("table.rules tbody tr").first).to_contain_text("/api/v1/users/")
    page.get_by_label("Search").fill("manual")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("table.rules tbody tr")).to_have_count(1)
    console.go("rules")
    console.shot("rules")


def test_an_invalid_rule_shows_the_field_error_and_a_duplicate_links_the_other_rule(console: Console) -> None:
    page = console.page
    console.go("rules/new")
    page.get_by_label("Source path (from)").fill("no-slash")
    page.get_by_label("Target (to)").fill("/somewhere")
    page.get_by_role("button", name="Create").click()
    error = page.locator("[data-error-for=from]")
    expect(error).to_contain_text("must start with '/'")
    expect(page.get_by_label("Source path (from)")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Source path (from)")).to_be_focused()
    console.shot("rule-invalid")
    page.get_by_label("Source path (from)").fill("/shop/old/{id}")
    page.get_by_label("Status").select_option("308")
    page.get_by_role("button", name="Create").click()
    expect(error).to_contain_text("duplicate rule")
    other = console.rule("/shop/old/{id}")
    assert other is not None
    link = error.get_by_role("link", name=other["uuid"])
    expect(link).to_have_attribute("href", f"#/rules/edit/{other['uuid']}")
    link.click()
    expect(page.get_by_label("Target (to)")).to_have_value("/shop/new/{id}")


def test_an_edit_conflict_is_explained_with_the_current_version(console: Console) -> None:
    page = console.page
    rule = console.rule("/docs/{page}")
    assert rule is not None
    console.go(f"rules/edit/{rule['uuid']}")
    page.get_by_label("Note").fill("my edit")
    etag = console.api.get(f"/api/v1/rules/{rule['uuid']}").headers["etag"]
    theirs = console.api.patch(f"/api/v1/rules/{rule['uuid']}", content=json.dumps({"to": "/handbook/{page}"}),
                               headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
    assert theirs.status_code == 200, theirs.text
    page.get_by_role("button", name="Save").click()
    conflict = page.locator(".conflict")
    expect(conflict).to_contain_text("412")
    expect(conflict).to_contain_text("changed by someone else")
    expect(conflict.locator("tr.differs", has_text="Target")).to_contain_text("/handbook/{page}")
    console.shot("rule-conflict")
    page.get_by_role("button", name="Load the current version (drop my changes)").click()
    expect(page.get_by_label("Target (to)")).to_have_value("/handbook/{page}")
    page.get_by_label("Note").fill("my edit, on the current version")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice-ok")).to_contain_text("Saved")
    stored = console.api.get(f"/api/v1/rules/{rule['uuid']}").json()
    assert (stored["to"], stored["note"]) == ("/handbook/{page}", "my edit, on the current version")


def test_test_a_url_and_share_it(console: Console) -> None:
    page = console.page
    console.go("test")
    page.get_by_label("URL").fill("http://api.example.com/api/v1/users/42/posts?x=1")
    page.get_by_label("Method").select_option("POST")
    page.get_by_role("button", name="Test").click()
    result = page.locator(".result")
    expect(result).to_contain_text("Matched")
    expect(result.locator("pre.response")).to_contain_text("HTTP/1.1 308")
    expect(result.locator("pre.response")).to_contain_text("location: /api/v2/users/42/posts?x=1")
    expect(result).to_contain_text("rest = 42/posts")
    shared = page.url
    assert "method=POST" in shared and "url=" in shared and console.key not in shared
    console.shot("test-url")
    page.goto("about:blank")
    page.goto(shared)
    console.sign_in_if_asked()
    expect(page.locator(".result pre.response")).to_contain_text("HTTP/1.1 308")
    expect(page.get_by_label("Method")).to_have_value("POST")


def test_turn_a_404_into_a_rule(console: Console) -> None:
    page = console.page
    for _ in range(3):
        assert console.gateway("/legacy/pricing").status_code == 404
    wait_for(lambda: any(p["path"] == "/legacy/pricing" and p["hits"] == 3 for p in
                         console.api.get("/api/v1/stats/unmatched-paths").json()["items"]), what="the 404s counted")
    console.go("traffic")
    row = page.locator("table.unmatched tr", has_text="/legacy/pricing")
    expect(row).to_contain_text("3")
    expect(page.locator("svg.chart")).to_be_visible()
    console.shot("traffic")
    row.get_by_role("link", name="Redirect /legacy/pricing").click()
    expect(page.get_by_role("heading", name="New rule")).to_be_visible()
    expect(page.get_by_label("Source path (from)")).to_have_value("/legacy/pricing")
    page.get_by_label("Target (to)").fill("/pricing")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice-ok")).to_contain_text("Created")
    answer = wait_for(lambda: (r := console.gateway("/legacy/pricing")).status_code == 301 and r, what="the new rule live")
    assert answer.headers["location"] == "/pricing"
    shop = console.rule("/shop/old/{id}")
    assert shop is not None
    wait_for(lambda: any(r["uuid"] == shop["uuid"] and r["hits"] for r in console.api.get("/api/v1/stats/rules").json()["items"]),
             what="the rule's hit counted")
    console.go(f"traffic?interval=minute&rule={shop['uuid']}")  # one rule's chart
    expect(page.locator("main h2").first).to_contain_text("Hits per minute: /shop/old/{id}")
    expect(page.locator("svg.chart title").first).to_contain_text("Hits of the rule: 1 hits")
    expect(page.get_by_label("Hits of", exact=True)).to_have_value(shop["uuid"])


def test_restore_a_revision_after_seeing_what_it_undoes(console: Console) -> None:
    page = console.page
    made = console.create(**{"from": "/restore/me", "to": "/restored", "status": 301})
    kept_at = made["revision"]
    etag = console.api.get(f"/api/v1/rules/{made['uuid']}").headers["etag"]
    assert console.api.delete(f"/api/v1/rules/{made['uuid']}", headers={"If-Match": etag}).status_code == 204
    wait_for(lambda: console.gateway("/restore/me").status_code == 404, what="the deleted rule gone")
    console.go("history")
    revision = page.locator(f"li.revision[data-revision='{kept_at + 1}']")
    expect(revision).to_contain_text("Removed")
    expect(revision.locator(".diff .removed").first).to_be_visible()
    console.shot("history")
    page.get_by_role("button", name=f"Restore revision {kept_at}", exact=True).click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Revision {kept_at + 1}")
    expect(dialog).to_contain_text("/restore/me")
    console.shot("history-restore", full_page=False)
    page.keyboard.press("Escape")  # keyboard: Esc cancels, nothing restored
    expect(dialog).to_have_count(0)
    assert console.rule("/restore/me") is None
    page.get_by_role("button", name=f"Restore revision {kept_at}", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name=f"Restore revision {kept_at}").click()
    expect(page.locator(".notice-ok")).to_contain_text(f"Restored revision {kept_at}")
    assert console.rule("/restore/me") is not None
    wait_for(lambda: console.gateway("/restore/me").status_code == 301, what="the restored rule live")


def test_import_shows_the_plan_first_then_cancel_or_apply(console: Console, tmp_path: Path) -> None:
    page = console.page
    good = tmp_path / "rules.csv"
    good.write_text("from,to,status,methods\n/catalog/{rest:path},/api/v2/catalog/{rest},308,\n"
                    "/exports/{id}/run,/exports/{id}/file,303,POST\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - from: /fine\n    to: /ok\n  - from: /broken\n    to: /x\n    status: 302\n")
    count = console.api.get("/api/v1/rules").json()["metadata"]["pagination"]["totalCount"]
    revision = console.served.health()["revision"]
    console.go("import")
    page.get_by_label("Rule file", exact=True).set_input_files(str(bad))
    page.get_by_role("button", name="Show the plan").click()
    plan = page.locator(".plan")
    expect(plan).to_contain_text("bad.yaml cannot be imported")
    expect(plan.locator(".problems").first).to_contain_text("upload:6: status: 302")
    expect(plan.get_by_role("button", name=re.compile("^Apply"))).to_have_count(0)
    page.get_by_label("Rule file", exact=True).set_input_files(str(good))
    page.get_by_role("button", name="Show the plan").click()
    expect(plan).to_contain_text("would add 2 rules")
    rows = plan.locator("table.plan-table tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text("/exports/{id}/file")
    expect(rows.nth(1)).to_contain_text("POST")
    apply = plan.get_by_role("button", name="Apply: import 2 rules")
    expect(apply).to_be_focused()
    console.shot("import-plan")
    plan.get_by_role("button", name="Cancel").click()
    expect(page.locator(".report")).to_contain_text("Cancelled: nothing was imported from rules.csv")
    assert console.rule("/catalog/{rest:path}") is None  # the plan wrote nothing
    assert console.api.get("/api/v1/rules").json()["metadata"]["pagination"]["totalCount"] == count
    assert console.served.health()["revision"] == revision
    page.get_by_role("button", name="Show the plan").click()
    plan.get_by_role("button", name="Apply: import 2 rules").click()
    report = page.locator(".report")
    expect(report).to_contain_text("2 rules added")
    expect(report).to_contain_text("SUCCEEDED")
    expect(plan).to_be_empty()
    console.shot("import")
    assert console.rule("/catalog/{rest:path}") is not None
    assert console.served.health()["revision"] == revision + 1
    wait_for(lambda: console.gateway("/catalog/shoes").status_code == 308, what="the imported rule live")


def test_a_rule_with_a_query_condition_and_policy_through_the_form(console: Console) -> None:
    page = console.page
    console.go("rules/new")
    page.get_by_label("Source path (from)").fill("/index.php")
    page.get_by_label("Target (to)").fill("/about")
    page.get_by_label("Status").select_option("308")
    page.get_by_label("Only when the query has").fill("page_id=12")
    expect(page.get_by_label("Strip these parameters")).to_be_hidden()
    page.get_by_label("Query string passed on").select_option("policy")
    page.get_by_label("Strip these parameters").fill("utm source")  # a space: not a parameter name
    page.get_by_label("Pass on").select_option("unmatched")
    expect(page.get_by_label("Names passed on")).to_be_hidden()
    page.get_by_role("button", name="Create").click()
    error = page.locator("[data-error-for=query]")
    expect(error).to_contain_text("'utm source' is not a parameter name")
    expect(page.get_by_label("Query string passed on")).to_be_focused()
    console.shot("rule-query")
    page.get_by_label("Strip these parameters").fill("utm_*, gclid")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice-ok")).to_contain_text("Created")
    row = page.locator("table.rules tbody tr", has_text="/index.php")
    expect(row.locator(".query-cond")).to_have_text("only with ?page_id=12")
    expect(row.locator(".query-policy")).to_have_text("query: strip gclid, utm_*; pass all but the matched ones")
    stored = console.rule("/index.php")
    assert stored is not None
    assert (stored["queryMatch"], stored["query"]) == ({"page_id": "12"}, {"pass": "unmatched", "strip": ["gclid", "utm_*"]})
    answer = wait_for(lambda: (r := console.gateway("/index.php?page_id=12&utm_source=mail&lang=en")).status_code == 308 and r,
                      what="the gateway's 308")
    assert answer.headers["location"] == "/about?lang=en"  # stripped, matched: not passed on
    assert console.gateway("/index.php?page_id=13").status_code == 404  # the condition is not met
    console.go(f"rules/edit/{stored['uuid']}")
    expect(page.locator(".rule-summary")).to_contain_text("/index.php (only with ?page_id=12)")
    expect(page.get_by_label("Query string passed on")).to_have_value("policy")
    expect(page.get_by_label("Strip these parameters")).to_have_value("gclid, utm_*")
    expect(page.get_by_label("Pass on")).to_have_value("unmatched")
    page.get_by_label("No other query parameters allowed").check()
    page.get_by_label("Pass on").select_option("names")
    page.get_by_label("Names passed on").fill("lang")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice-ok")).to_contain_text("Saved")
    wait_for(lambda: console.gateway("/index.php?page_id=12&lang=en").status_code == 404, what="the exact rule live")
    answer = console.gateway("/index.php?page_id=12&utm_medium=x")  # stripped first: still exact
    assert answer.status_code == 308 and answer.headers["location"] == "/about"


def test_a_rule_that_redirects_nothing(console: Console) -> None:
    page = console.page
    console.create(**{"from": "/legacy/{rest:path}", "to": "/current/{rest}", "status": 308})
    wait_for(lambda: console.gateway("/legacy/health").status_code == 308, what="the pattern rule live")
    console.go("rules/new")
    page.get_by_label("Source path (from)").fill("/legacy/health")
    page.get_by_label("Target (to)").fill("/left/over")  # hidden once 404 is chosen, and not sent
    page.get_by_label("Status").select_option("404")
    expect(page.get_by_label("Target (to)")).to_be_hidden()
    page.get_by_label("Note").fill("the old health check is not moved")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice-ok")).to_contain_text("Created")
    row = page.locator("table.rules tbody tr", has_text="/legacy/health")
    expect(row.locator(".not-redirected")).to_have_text("not redirected (404)")
    wait_for(lambda: console.gateway("/legacy/health").status_code == 404, what="the 404 rule live")
    assert console.gateway("/legacy/other").status_code == 308
    console.go("rules?sort=updatedAt+DESC&limit=10")  # the newest: with the query rule of the test before
    expect(page.locator("table.rules .not-redirected")).to_have_count(1)
    console.shot("rules-query-404")
    stored = console.rule("/legacy/health")
    assert stored is not None and (stored["status"], stored["to"]) == (404, "")
    console.go(f"rules/edit/{stored['uuid']}")
    expect(page.locator(".rule-summary")).to_contain_text("404: not redirected")
    expect(page.get_by_label("Target (to)")).to_be_hidden()
    page.get_by_label("Status").select_option("307")
    expect(page.get_by_label("Target (to)")).to_be_visible()
    page.get_by_label("Status").select_option("404")
    page.get_by_label("Note").fill("still not moved")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice-ok")).to_contain_text("Saved")
    assert console.api.get(f"/api/v1/rules/{stored['uuid']}").json()["note"] == "still not moved"



def test_a_rule_with_a_phase_and_a_sunset_through_the_form(console: Console) -> None:
    page = console.page
    console.go("rules/new")
    page.get_by_label("Source path (from)").fill("/api/v0/{rest:path}")
    page.get_by_label("Target (to)").fill("/api/v3/{rest}")
    page.get_by_label("Status", exact=True).select_option("307")
    page.get_by_role("button", name="Add a phase").click()  # the keyboard's way too: the new row takes the focus
    starts = page.get_by_label("Starts (UTC), phase 1")
    expect(starts).to_be_focused()
    starts.fill("2020-01-01T00:00")  # already started: the gateway answers with the phase
    page.get_by_label("Status, phase 1").select_option("308")
    page.get_by_label("Sunset (UTC)").fill("2027-06-01T00:00")
    page.get_by_role("button", name="Add a link").click()
    page.get_by_label("Relation, link 1").fill("successor-version")
    page.get_by_label("URL, link 1").fill("/api/v3")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".notice-ok")).to_contain_text("Created")
    row = page.locator("table.rules tbody tr", has_text="/api/v0/{rest:path}")
    expect(row.locator(".phases-text")).to_have_text("308 from 2020-01-01")
    expect(row.locator(".lifecycle-text")).to_have_text("sunset 2027-06-01")
    stored = console.rule("/api/v0/{rest:path}")
    assert stored is not None
    assert (stored["status"], stored["phases"], stored["sunset"], stored["links"]) == (
        307, [{"starts": "2020-01-01T00:00:00Z", "status": 308}], "2027-06-01T00:00:00Z", {"successor-version": "/api/v3"})
    answer = wait_for(lambda: (r := console.gateway("/api/v0/users/7", "POST")).status_code == 308 and r,
                      what="the gateway's 308 of the phase")
    assert answer.headers["location"] == "/api/v3/users/7"
    assert answer.headers["sunset"] == "Tue, 01 Jun 2027 00:00:00 GMT"
    assert '</api/v3>; rel="successor-version"' in answer.headers["link"]
    console.go(f"rules/edit/{stored['uuid']}")
    expect(page.locator(".rule-summary")).to_contain_text("308 from 2020-01-01")
    expect(page.get_by_label("Starts (UTC), phase 1")).to_have_value("2020-01-01T00:00")
    expect(page.get_by_label("Sunset (UTC)")).to_have_value("2027-06-01T00:00")
    expect(page.get_by_label("URL, link 1")).to_have_value("/api/v3")
    console.shot("rule-lifecycle")


def test_phases_out_of_order_show_the_error_beside_the_group(console: Console) -> None:
    page = console.page
    stored = console.rule("/api/v0/{rest:path}")
    if stored is None:  # run alone
        stored = console.create(**{"from": "/api/v0/{rest:path}", "to": "/api/v3/{rest}", "status": 307})
    console.go(f"rules/edit/{stored['uuid']}")
    page.get_by_role("button", name="Add a phase").click()
    page.get_by_role("button", name="Add a phase").click()
    last = len(stored["phases"] or []) + 2
    page.get_by_label(f"Starts (UTC), phase {last - 1}").fill("2028-01-01T00:00")
    page.get_by_label(f"Starts (UTC), phase {last}").fill("2027-01-01T00:00")  # earlier than the one before
    page.get_by_role("button", name="Save").click()
    error = page.locator("fieldset.phases [data-error-for=phases]")
    expect(error).to_contain_text("list the phases in time order")
    group = page.get_by_role("group", name="Phases")
    expect(group).to_have_attribute("aria-invalid", "true")
    expect(group).to_be_focused()
    console.shot("rule-phases-invalid")
    page.get_by_role("button", name=f"Remove phase {last}").click()  # the focus goes to the row now last
    expect(page.get_by_label(f"Starts (UTC), phase {last - 1}")).to_be_focused()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".notice-ok")).to_contain_text("Saved")
    phases = console.api.get(f"/api/v1/rules/{stored['uuid']}").json()["phases"]
    assert phases[-1] == {"starts": "2028-01-01T00:00:00Z", "status": 308}

def test_api_keys_create_shown_once_and_revoke(console: Console) -> None:
    page = console.page
    console.go("keys")
    page.get_by_label("Name").fill("console-reader")
    page.get_by_label("Scope").select_option("read")
    page.get_by_role("button", name="Create key").click()
    secret = page.get_by_label("Secret")
    expect(secret).to_be_visible()
    value = secret.input_value()
    assert value.startswith("rdk_")
    assert httpx.get(console.served.admin + "/api/v1/rules", headers={"Authorization": f"Bearer {value}"}).status_code == 200
    row = page.locator("tbody tr", has_text="console-reader")
    expect(row).to_contain_text("read")
    console.shot("keys")
    console.go("keys")
    expect(page.get_by_label("Secret")).to_have_count(0)  # shown once
    page.get_by_role("button", name="Revoke console-reader").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.locator("tbody tr", has_text="console-reader")).to_have_count(0)
    assert httpx.get(console.served.admin + "/api/v1/rules", headers={"Authorization": f"Bearer {value}"}).status_code == 401


def test_the_xss_strings_stay_text_everywhere(console: Console) -> None:
    page = console.page
    note = f"{XSS_SCRIPT} {XSS_IMG}"
    made = console.create(**{"from": "/unsafe/{id}", "to": XSS_TARGET, "status": 307, "note": note, "tags": [XSS_SCRIPT]})
    # No clearing first: no script error and no alert/confirm dialog in any test of the module so far.
    console.go("rules?q=unsafe")
    row = page.locator("table.rules tbody tr", has_text="/unsafe/{id}")
    expect(row.locator(".note")).to_have_text(note)
    expect(row.locator("code.target")).to_have_text(XSS_TARGET)
    expect(row).to_contain_text(XSS_SCRIPT)  # the tag
    console.go(f"rules/edit/{made['uuid']}")
    expect(page.get_by_label("Note")).to_have_value(note)
    expect(page.get_by_label("Target (to)")).to_have_value(XSS_TARGET)
    console.go("test?url=/unsafe/1")
    expect(page.locator(".result")).to_contain_text(XSS_TARGET)
    console.go("history")
    expect(page.locator("li.revision").first).to_contain_text(XSS_SCRIPT)
    console.go("traffic")
    expect(page.locator(".never-hit")).to_contain_text(XSS_TARGET)
    assert page.locator("main img, main script").count() == 0
    assert console.dialogs == [], console.dialogs
    assert console.errors == [], console.errors


def test_every_page_passes_axe(console: Console, tmp_path: Path) -> None:
    """axe-core (WCAG 2 A and AA rules) finds nothing on any page, nor on a form showing errors (with
    every query control shown), nor on an import's plan."""
    axe_module = pytest.importorskip("axe_playwright_python.sync_playwright", reason="the browser extra installs axe")
    axe = axe_module.Axe()
    page = console.page
    if console.rule("/axe/{page}") is None:  # something in the table and the history, when run alone
        console.create(**{"from": "/axe/{page}", "to": "/checked/{page}", "status": 308, "note": "for axe"})
    found = {}
    options = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
               "resultTypes": ["violations"]}
    for fragment, ready in [("rules", "table.rules"), ("rules/new", "form.rule-form"), ("test?url=/docs/intro", ".result pre"),
                            ("traffic", "svg.chart"), ("history", "li.revision"), ("import", "form"), ("keys", "tbody tr")]:
        console.go(fragment)
        expect(page.locator(ready).first).to_be_visible()
        if fragment == "rules/new":
            page.get_by_label("Query string passed on").select_option("policy")
            page.get_by_label("Pass on").select_option("names")
            page.get_by_role("button", name="Add a phase").click()  # a phase row and a link row, checked too
            page.get_by_role("button", name="Add a link").click()
            page.get_by_role("button", name="Create").click()
            expect(page.locator("[data-error-for=from]")).to_be_visible()
        if fragment == "import":
            planned = tmp_path / "axe.yaml"
            planned.write_text("rules:\n  - from: /axe/planned\n    to: /axe/done\n    status: 301\n")
            page.get_by_label("Rule file", exact=True).set_input_files(str(planned))
            page.get_by_role("button", name="Show the plan").click()
            expect(page.locator(".plan table")).to_be_visible()
        result = axe.run(page, options=options)
        assert result.response["testEngine"]["name"] == "axe-core"
        violations = result.response["violations"]
        if violations:
            found[fragment] = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    console.go("rules")
    page.get_by_role("button", name=re.compile("^Delete ")).first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    violations = axe.run(page, options=options).response["violations"]
    if violations:
        found["delete dialog"] = [(v["id"], v["impact"]) for v in violations]
    page.keyboard.press("Escape")
    assert not found, found


def test_delete_a_rule_after_confirming(console: Console) -> None:
    page = console.page
    made = console.create(**{"from": "/delete/me", "to": "/deleted", "status": 308})
    console.go("rules?q=/delete/me")
    page.get_by_role("button", name="Delete /delete/me").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("/deleted")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice first
    dialog.get_by_role("button", name="Delete").click()
    expect(page.locator(".notice-ok")).to_contain_text("Deleted the rule")
    expect(page.locator("table.rules tbody tr")).to_have_count(0)
    assert console.api.get(f"/api/v1/rules/{made['uuid']}").status_code == 404
    assert console.dialogs == [] and console.errors == [], (console.dialogs, console.errors)
