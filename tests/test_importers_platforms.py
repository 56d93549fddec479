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
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import detect_import_format, load_any
from redirectory.rules.model import RuleSet
from redirectory.rules.validation import validate

CORPUS = Path(os.environ.get("REDIRECTORY_CORPUS") or Path(__file__).resolve().parents[2] / "shared" / "corpus")


def rules(ruleset: RuleSet) -> list[dict[str, Any]]:
    return [r.to_dict() for r in ruleset.rules]


def answer(ruleset: RuleSet, path: str, host: str | None = None) -> tuple[int, str | None]:
    response = Engine(ruleset).decide(Request("GET", path, host=host)).response
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
        # `:path*` is a regex: Vercel matches strictly, `/docs` and `/docs/a/b` but not `/docs/`
        {"from_regex": "^/docs(?P<path>/[^/#?]+?(?:/[^/#?]+?)*)?$", "to": "/documentation{path}", "status": 308},
    ]
    assert answer(ruleset, "/old") == (308, "/new")
    assert answer(ruleset, "/old/")[0] == 404 and answer(ruleset, "/blog/hello/")[0] == 404
    assert answer(ruleset, "/docs/")[0] == 404 and answer(ruleset, "/docs/a/")[0] == 404
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
        {"from": "/users/{id}/", "to": "/u/{id}", "status": 307},  # Netlify ignores the trailing slash
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


# -- first match and the trailing slash --------------------------------------------------------------
def test_a_later_netlify_line_an_earlier_one_covers_is_skipped_naming_both() -> None:
    """kubernetes/website `_redirects` lines 61-63: Netlify sends every path under
    /docs/admin/resourcequota/ to line 61's target, so lines 62 and 63 are never used."""
    real = Path(__file__).parent / "data" / "real" / "netlify" / "kubernetes__website__static___redirects"
    ruleset, problems = load_any(real.read_text(), "netlify", "_redirects")
    shadowed = {p.line: p.message for p in problems if p.code == "import.shadowed"}
    assert "line 61 (`/docs/admin/resourcequota/*`)" in shadowed[62] and 63 in shadowed
    assert answer(ruleset, "/docs/admin/resourcequota/walkthrough/") == (301, "/docs/concepts/policy/resource-quotas/")
    assert answer(ruleset, "/docs/admin/resource-quota") == (301, "/docs/concepts/policy/resource-quotas/")


def test_netlify_ignores_the_trailing_slash_and_keeps_file_order() -> None:
    text = ("/events/ /calendar\n"  # also /events
            "/a/:x /one/:x\n"
            "/:y/b /two/:y\n"  # same precedence as line 2 in redirectory: priorities keep the file's order
            "/:p/:q /three\n"
            "/c/* /four/:splat\n"  # more specific than line 4 in redirectory: a regex after it
            "https://h.example/* https://new.example/:splat\n")  # on h.example, lines 1-5 still come first
    ruleset, problems = load_any(text, "netlify", "_redirects")
    assert [p for p in problems if p.is_error] == [] and [p for p in validate(ruleset, "_r") if p.is_error] == []
    assert answer(ruleset, "/events") == answer(ruleset, "/events/") == (301, "/calendar")
    assert answer(ruleset, "/a/b") == (301, "/one/b") and answer(ruleset, "/z/b/") == (301, "/two/z")
    assert answer(ruleset, "/c/d") == (301, "/three") and answer(ruleset, "/c/d/e") == (301, "/four/d/e")
    assert answer(ruleset, "/c") == (301, "/four")
    assert answer(ruleset, "/events", "h.example") == (301, "/calendar")
    # line 5 is a regex rule after line 4; on h.example its copy, and line 6 after it, are host-specific
    # regexes (`^//h\.example...`), tried after the host's own copies of lines 1-4 and in file order
    assert [r.source_regex for r in ruleset.rules if r.source_regex] == [
        r"^/c(?P<rest>/.*)?$", r"^//h\.example(?:/c(?P<rest>/.*)?$)", r"^//h\.example(?:(?P<rest>/.*)?$)"]
    assert [(p.line, p.code) for p in problems if p.code.startswith("import.")] == []
    assert answer(ruleset, "/c/d/e", "h.example") == (301, "/four/d/e")
    assert answer(ruleset, "/c/d", "h.example") == (301, "/three")
    assert answer(ruleset, "/x/y/z", "h.example") == (301, "https://new.example/x/y/z")
    ruleset, problems = load_any(text.replace("/c/* /four/:splat\n", ""), "netlify", "_redirects")
    assert answer(ruleset, "/x/y/z", "h.example") == (301, "https://new.example/x/y/z")
    assert answer(ruleset, "/x/y", "h.example") == answer(ruleset, "/x/y") == (301, "/three")


def test_vercel_uses_the_first_match_trpc() -> None:
    """trpc/trpc www/vercel.json: `/docs/v10/:path*` comes before three `/docs/v10/<page>` redirects,
    so Vercel sends /docs/v10/invalidateQueries to /docs/invalidateQueries."""
    real = Path(__file__).parent / "data" / "real" / "other" / "trpc__trpc__www__vercel.json"
    ruleset, problems = load_any(real.read_text(), "vercel", "vercel.json")
    assert [p for p in problems if p.is_error] == []
    assert answer(ruleset, "/docs/v10/invalidateQueries") == (308, "/docs/invalidateQueries")
    assert len([p for p in problems if p.code == "import.shadowed"]) >= 3


NETLIFY_SEGMENT = st.sampled_from(["a", "b", ":x"])
NETLIFY_LINE = st.tuples(st.sampled_from(["", "https://h.example"]), st.lists(NETLIFY_SEGMENT, max_size=3),
                         st.booleans(), st.booleans())  # host, segments, splat, trailing slash
PATH = st.tuples(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), st.booleans(),
                 st.sampled_from(["h.example", "o.example"]))


def netlify_first_match(lines: list[tuple[str, list[str], bool, bool]], host: str, path: str) -> tuple[int, str | None]:
    """Netlify's answer, by its documented rules: the first line that matches the path (trailing
    slash ignored) on that host; `:splat` is what follows the line's segments, as the request has it."""
    segs = [s for s in path.split("/")[1:] if s]
    for i, (line_host, pattern, splat, _slash) in enumerate(lines):
        if line_host and line_host != "https://" + host:
            continue
        if len(segs) < len(pattern) or (not splat and len(segs) != len(pattern)):
            continue
        values: dict[str, str] = {}
        if all(p == s or (p.startswith(":") and values.setdefault(p, s) is not None) for p, s in zip(pattern, segs, strict=False)):
            target = f"https://e.example/t{i}" + ("/" + values.get(":x", "") if ":x" in pattern else "")
            if splat:
                rest = path.split("/", len(pattern) + 1)
                target += "/" + rest[-1] if len(rest) > len(pattern) + 1 else ""
            return 301, target
    return 404, None


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(NETLIFY_LINE, max_size=6), paths=st.lists(PATH, min_size=1, max_size=8))
def test_netlify_import_answers_like_first_match(lines: list[tuple[str, list[str], bool, bool]],
                                                 paths: list[tuple[list[str], bool, str]]) -> None:
    text = ""
    for i, (host, segments, splat, slash) in enumerate(lines):
        source = host + "/" + "/".join(segments + (["*"] if splat else []))
        source = source + "/" if slash and not source.endswith("/") else source
        target = f"https://e.example/t{i}" + ("/:x" if ":x" in segments else "") + ("/:splat" if splat else "")
        text += f"{source} {target} 301\n"
    assume(all(segments.count(":x") < 2 for _, segments, _, _ in lines))  # a name twice: not Netlify syntax
    ruleset, problems = load_any(text, "netlify", "_redirects") if lines else (RuleSet(), [])
    assert [p.format() for p in problems if p.is_error and p.code != "import.empty"] == []
    assert [p.format() for p in validate(ruleset, "_redirects") if p.is_error] == []
    # lines that cannot be ordered (a host-specific one after an any-host regex rule) are skipped with a
    # warning: the paths they would answer are not compared
    unordered = {f"https://e.example/t{p.line - 1}" for p in problems if p.code == "import.order" and p.line}
    for segments, slash, host in paths:
        path = "/" + "/".join(segments) + ("/" if slash and segments else "")
        expected = netlify_first_match(lines, host, path)
        if not any((expected[1] or "").startswith(t + "/") or expected[1] == t for t in unordered):
            assert answer(ruleset, path, host) == expected, (text, host, path)


VERCEL_LINE = st.tuples(st.lists(st.sampled_from(["a", "b", ":x"]), max_size=3), st.booleans(), st.booleans())


def vercel_first_match(lines: list[tuple[list[str], bool, bool]], path: str) -> tuple[int, str | None]:
    """Vercel's answer: path-to-regexp in strict mode (the trailing slash as written; `/:p*` zero or
    more non-empty segments), the first redirect that matches; an absent `:p*` drops its slash."""
    segs = path.split("/")[1:]
    for i, (pattern, star, slash) in enumerate(lines):
        fixed = pattern + ([""] if slash and not star else [])
        fixed = fixed or ([] if star else [""])
        if len(segs) < len(fixed) or (not star and len(segs) != len(fixed)):
            continue
        rest = segs[len(fixed):]
        if star and "" in rest:
            continue
        values: dict[str, str] = {}
        if all(p == s or (p == ":x" and s != "" and values.setdefault(p, s) is not None)
               for p, s in zip(fixed, segs, strict=False)):
            target = f"https://e.example/t{i}" + ("/" + values[":x"] if ":x" in pattern else "")
            return 308, target + ("/" + "/".join(rest) if star and rest else "")
    return 404, None


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(VERCEL_LINE, max_size=6),
       paths=st.lists(st.tuples(st.lists(st.sampled_from(["a", "b", "c"]), max_size=3), st.booleans()),
                      min_size=1, max_size=8))
def test_vercel_import_answers_like_first_match(lines: list[tuple[list[str], bool, bool]],
                                                paths: list[tuple[list[str], bool]]) -> None:
    assume(lines and all(segments.count(":x") < 2 for segments, _, _ in lines))
    redirects = []
    for i, (segments, star, slash) in enumerate(lines):
        source = "/" + "/".join(segments + ([":p*"] if star else []))
        source = source + "/" if slash and not star and not source.endswith("/") else source
        if star and not segments:
            source = "/:p*"
        target = f"https://e.example/t{i}" + ("/:x" if ":x" in segments else "") + ("/:p*" if star else "")
        redirects.append({"source": source, "destination": target})
    text = vercel(*redirects)
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [p.format() for p in problems if p.is_error and p.code != "import.empty"] == []
    assert [p.format() for p in validate(ruleset, "vercel.json") if p.is_error] == []
    for segments, slash in paths:
        path = "/" + "/".join(segments) + ("/" if slash and segments else "")
        assert answer(ruleset, path) == vercel_first_match(lines, path), (text, path)
