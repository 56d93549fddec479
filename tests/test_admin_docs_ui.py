"""The admin listener's interactive docs page works offline: the real `redirectory serve`, the page
at /api/v1/docs, and every URL it loads (script, style sheet, icon, OpenAPI document) fetched from
the same listener. No URL in the page points anywhere else (no CDN), so a machine without Internet
access gets the whole page.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

import httpx
import pytest

from gateway_process import ServeProcess, start_serve

BROWSER_ACCEPT = {
    "script": "*/*",
    "stylesheet": "text/css,*/*;q=0.1",
    "icon": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5",
}


class Links(HTMLParser):
    """Every URL the page makes the browser load, by kind."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and values.get("src"):
            self.urls.append(("script", values["src"] or ""))
        if tag == "link" and values.get("href"):
            rel = (values.get("rel") or "").lower()
            self.urls.append(("stylesheet" if rel == "stylesheet" else "icon", values["href"] or ""))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = start_serve(tmp_path_factory.mktemp("docs-ui"))
    yield proc
    proc.stop()


def test_docs_page_and_everything_it_loads_come_from_the_listener(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.admin, timeout=10) as client:
        page = client.get("/api/v1/docs", headers={"Accept": "text/html,*/*;q=0.8"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert not re.search(r"(?i)\b(https?:)?//", page.text), "the page names another host"
        parser = Links()
        parser.feed(page.text)
        spec = re.search(r"url: '([^']+)'", page.text)
        assert spec, page.text
        kinds = dict(parser.urls)
        assert set(kinds) == {"script", "stylesheet", "icon"}, parser.urls
        for kind, url in parser.urls:
            assert url.startswith("/") and not url.startswith("//"), url
            asset = client.get(url, headers={"Accept": BROWSER_ACCEPT[kind]})
            assert asset.status_code == 200, (url, asset.status_code, asset.text[:300])
            name = Path(url).name
            assert asset.content == (files("fastapi_offline") / "static" / name).read_bytes(), url
            expected_type = {"script": "text/javascript", "stylesheet": "text/css", "icon": "image/png"}[kind]
            assert asset.headers["content-type"].startswith(expected_type), (url, asset.headers["content-type"])
            assert asset.headers.get("etag"), url
            again = client.get(url, headers={"If-None-Match": asset.headers["etag"]})
            assert again.status_code == 304, url
        assert b"SwaggerUIBundle" in client.get(kinds["script"]).content
        document = client.get(spec.group(1))
        assert document.status_code == 200 and document.json()["openapi"].startswith("3.1")
        assert not any(path.startswith("/swagger-ui") for path in document.json()["paths"])


def test_docs_assets_refuse_other_methods_and_unknown_names(served: ServeProcess) -> None:
    with httpx.Client(base_url=served.admin, timeout=10) as client:
        post = client.post("/swagger-ui/swagger-ui.css")
        assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
        for path in ("/swagger-ui/nothing.js", "/swagger-ui/..%2F__init__.py"):
            missing = client.get(path)
            assert missing.status_code == 404 and missing.json()["titleKey"] == "redirectory.errors.notFound", path
