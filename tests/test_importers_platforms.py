"""Importers for hosting platforms' files: Netlify's `netlify.toml` and Vercel's `vercel.json`.

What each entry becomes (exact rule, placeholder pattern or RE2 regex), how a rule answers, what is
skipped with a warning naming the line, and a file with no redirect at all being an error that
names what the file holds instead. The real files of `../shared/corpus/other/` when present."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import detect_import_format, load_any
from redirectory.rules.model import RuleSet

CORPUS = Path(os.environ.get("REDIRECTORY_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")


def rules(ruleset: RuleSet) -> list[dict[str, Any]]:
    return [r.to_dict() for r in ruleset.rules]


def answer(ruleset: RuleSet, path: str) -> tuple[int, str | None]:
    response = Engine(ruleset).decide(Request("GET", path)).response
    return response.status, dict(response.headers).get("location")


def vercel(*redirects: dict[str, Any], **top: Any) -> str:
    return json.dumps({**top, "redirects": list(redirects)}, indent=2)


def test_vercel_sources_become_exact_placeholder_and_regex_rules() -> None:
    text = vercel(
        {"source": "/old", "destination": "/new"},
        {"source": "/blog/:slug", "destination": "/news/:slug", "permanent": False},
        {"source": "/docs/:path*", "destination": "/documentation/:path*"},
        {"source": "/p/:id(\\d{1,})", "destination": "/posts/:id", "statusCode": 301},
        {"source": "/legacy/(.*)", "destination": "https://old.example/$1"},
        {"source": "/x/:a+", "destination": "/y/:a"},
        {"source": "/o/:v?", "destination": "/w"},
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [p for p in problems if p.severity == "error"] == []
    assert rules(ruleset)[:3] == [
        {"from": "/old", "to": "/new", "status": 308},
        {"from": "/blog/{slug}", "to": "/news/{slug}", "status": 307},
        {"from": "/docs/{path:path}", "to": "/documentation/{path}", "status": 308},
    ]
    assert answer(ruleset, "/old") == (308, "/new")
    assert answer(ruleset, "/blog/hello") == (307, "/news/hello")
    assert answer(ruleset, "/docs") == (308, "/documentation")
    assert answer(ruleset, "/docs/a/b") == (308, "/documentation/a/b")
    assert answer(ruleset, "/p/12") == (301, "/posts/12")
    assert answer(ruleset, "/p/ab")[0] == 404
    assert answer(ruleset, "/legacy/a/b") == (308, "https://old.example/a/b")
    assert answer(ruleset, "/x")[0] == 404  # `+`: one segment or more
    assert answer(ruleset, "/x/1/2") == (308, "/y/1/2")
    assert answer(ruleset, "/o") == (308, "/w") and answer(ruleset, "/o/v") == (308, "/w")


def test_vercel_skips_what_a_rule_cannot_express_and_names_the_line() -> None:
    text = vercel(
        {"source": "/cond", "destination": "/c", "has": [{"type": "query", "key": "x"}]},
        {"source": "/modules/:path((?!_stacks_).*)", "destination": "/m/:path*", "permanent": False},
        {"source": "/t", "destination": "/u", "statusCode": 302},
        {"source": "/ok", "destination": "/fine"},
        trailingSlash=False,
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert rules(ruleset) == [{"from": "/t", "to": "/u", "status": 307}, {"from": "/ok", "to": "/fine", "status": 308}]
    lines = text.splitlines()
    by_code = {p.code: p for p in problems}
    assert '"/cond"' in lines[by_code["import.conditional"].line - 1]
    assert "(?!" in lines[by_code["import.regex"].line - 1] and "look-around" in by_code["import.regex"].message
    assert '"/t"' in lines[by_code["status.302-converted"].line - 1]
    assert "trailingSlash" in lines[by_code["import.unsupported"].line - 1]


def test_vercel_legacy_routes_that_redirect_are_anchored_regex_rules() -> None:
    text = json.dumps({"routes": [{"src": "/r/(.*)", "status": 301, "headers": {"Location": "/s/$1"}},
                                  {"src": "/api/(.*)", "dest": "/api/index.js"}]})
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert answer(ruleset, "/r/q") == (301, "/s/q")
    assert answer(ruleset, "/x/r/q")[0] == 404


def test_files_without_redirects_are_errors_that_say_what_they_hold() -> None:
    _, problems = load_any(json.dumps({"buildCommand": "x", "headers": []}), "vercel", "vercel.json")
    assert [(p.severity, p.code) for p in problems] == [("error", "import.empty")]
    assert '"buildCommand", "headers"' in problems[0].message
    _, problems = load_any('[build]\npublish = "public"\n[[headers]]\nfor = "/*"\n', "netlify-toml", "netlify.toml")
    assert [(p.severity, p.code) for p in problems] == [("error", "import.empty")]
    assert "[build], [headers]" in problems[0].message
    _, problems = load_any("[build\n", "netlify-toml", "netlify.toml")
    assert problems[0].severity == "error" and problems[0].line == 1


def test_netlify_toml_redirects_read_as_the_redirects_lines_they_stand_for() -> None:
    text = """[build]
  publish = "public"

[[redirects]]
  from = "/blog/*"
  to = "/news/:splat"

[[redirects]]
  from = "/users/:id"
  to = "/u/:id"
  status = 302
  force = true

[[redirects]]
  from = "/store"
  to = "/shop"
  query = {id = ":id"}

[[redirects]]
  from = "/app/*"
  to = "/index.html"
  status = 200
"""
    ruleset, problems = load_any(text, "netlify-toml", "netlify.toml")
    assert rules(ruleset) == [
        {"from": "/blog/{rest:path}", "to": "/news/{rest}", "status": 301},
        {"from": "/users/{id}", "to": "/u/{id}", "status": 307},
    ]
    assert [(p.code, p.line) for p in problems if p.code != "status.301-unsafe-method"] == [
        ("status.302-converted", 8), ("import.conditional", 14), ("import.status-skipped", 19)]
    assert answer(ruleset, "/blog/a/b") == (301, "/news/a/b")


def test_the_file_name_names_the_platform() -> None:
    assert detect_import_format("site/vercel.json") == "vercel"
    assert detect_import_format("netlify.toml") == "netlify-toml"
    assert detect_import_format("public/_redirects") == "netlify"


PARAM = st.from_regex(r"[a-z]{1,6}", fullmatch=True)


@given(static=st.lists(PARAM, min_size=1, max_size=3), value=st.lists(PARAM, min_size=0, max_size=3))
def test_a_trailing_star_parameter_matches_zero_or_more_segments(static: list[str], value: list[str]) -> None:
    prefix = "/" + "/".join(static)
    ruleset, _ = load_any(vercel({"source": prefix + "/:rest*", "destination": "/to/:rest*"}), "vercel", "v.json")
    path = prefix + "".join("/" + v for v in value)
    assert answer(ruleset, path) == (308, "/to" + "".join("/" + v for v in value))


@pytest.mark.skipif(not (CORPUS / "other").is_dir(), reason=f"the shared corpus is not at {CORPUS}")
def test_real_platform_files(tmp_path: Path) -> None:
    done = cli("rules", "validate", str(CORPUS / "other" / "facebook__react-native-website__vercel.json"))
    assert done.returncode == 0 and "104 rule(s) valid" in done.stdout, done.stdout + done.stderr
    done = cli("rules", "validate", str(CORPUS / "other" / "gohugoio__hugoDocs__netlify.toml"))
    assert done.returncode == 1 and "no [[redirects]] in this netlify.toml (found [build]" in done.stderr
