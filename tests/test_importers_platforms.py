"""Importers for hosting platforms' files: Netlify's `netlify.toml` and Vercel's `vercel.json`.

What each entry becomes (exact rule, placeholder pattern or RE2 regex), how a rule answers, what is
skipped with a warning naming the line, and a file with no redirect at all being an error that
names what the file holds instead. The real files of `../shared/corpus/other/` when present."""

from __future__ import annotations

import itertools
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


def answer(ruleset: RuleSet, path: str, host: str | None = None, query: str = "") -> tuple[int, str | None]:
    response = Engine(ruleset).decide(Request("GET", path, query=query, host=host)).response
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
        {"source": "/cond", "destination": "/c", "has": [{"type": "header", "key": "x-flag"}]},
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


# -- `has` conditions on the query and the host --------------------------------------------------------
def test_vercel_has_on_the_query_and_the_host_become_query_match_and_host_rules() -> None:
    text = vercel(
        {"source": "/search", "has": [{"type": "query", "key": "q"}], "destination": "/find"},
        {"source": "/promo", "has": [{"type": "query", "key": "ref", "value": "twitter"}],
         "destination": "/social", "statusCode": 301},
        {"source": "/v/:id", "has": [{"type": "query", "key": "v", "value": "^1\\.0$"},
                                     {"type": "query", "key": "lang"}], "destination": "/v1/:id"},
        {"source": "/docs/:path*", "has": [{"type": "host", "value": "www.example.com"}],
         "destination": "https://example.com/docs/:path*"},
        {"source": "/", "has": [{"type": "host", "value": "old\\.example\\.com"}], "destination": "https://:host/new"},
        {"source": "/search", "destination": "/all"},
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [p.format() for p in problems] == []
    assert rules(ruleset) == [
        {"from": "/search", "to": "/find", "status": 308, "query_match": {"q": "*"}},
        {"from": "/promo", "to": "/social", "status": 301, "query_match": {"ref": "twitter"}},
        {"from": "/v/{id}", "to": "/v1/{id}", "status": 308, "query_match": {"lang": "*", "v": "1.0"}},
        {"from_regex": r"^//www\.example\.com(?:/docs(?P<path>/[^/#?]+?(?:/[^/#?]+?)*)?$)",
         "to": "https://example.com/docs{path}", "status": 308},
        {"from": "//old.example.com/", "to": "https://old.example.com/new", "status": 308},  # `:host`: the host
        {"from": "/search", "to": "/all", "status": 308},
    ]
    assert [p.format() for p in validate(ruleset, "vercel.json") if p.is_error] == []
    # the request's query is passed on, as Vercel passes it
    assert answer(ruleset, "/search", query="q=shoes&page=2") == (308, "/find?q=shoes&page=2")
    assert answer(ruleset, "/search", query="page=2") == (308, "/all?page=2")
    assert answer(ruleset, "/search") == (308, "/all")
    assert answer(ruleset, "/promo", query="ref=twitter")[0] == 301
    assert answer(ruleset, "/promo", query="ref=twitterx")[0] == 404
    assert answer(ruleset, "/v/7", query="lang=en&v=1.0") == (308, "/v1/7?lang=en&v=1.0")
    assert answer(ruleset, "/v/7", query="v=1.0")[0] == 404 and answer(ruleset, "/v/7", query="v=1x0&lang=en")[0] == 404
    assert answer(ruleset, "/docs/a/b", "www.example.com") == (308, "https://example.com/docs/a/b")
    assert answer(ruleset, "/docs", "WWW.example.com:8080") == (308, "https://example.com/docs")
    assert answer(ruleset, "/docs/a", "example.com")[0] == 404 and answer(ruleset, "/docs/a")[0] == 404
    assert answer(ruleset, "/", "old.example.com") == (308, "https://old.example.com/new")
    assert answer(ruleset, "/", "new.example.com")[0] == 404


def test_vercel_has_that_a_rule_cannot_express_is_skipped_naming_the_line_and_why() -> None:
    text = vercel(
        {"source": "/a", "has": [{"type": "query", "key": "id", "value": "(?<id>\\d+)"}], "destination": "/b/:id"},
        {"source": "/c", "has": [{"type": "query", "key": "v", "value": "1.0"}], "destination": "/d"},
        {"source": "/e", "has": [{"type": "host", "value": "(?<sub>.*)\\.example\\.com"}], "destination": "/f"},
        {"source": "/g", "has": [{"type": "header", "key": "x-beta"}], "destination": "/h"},
        {"source": "/i", "has": [{"type": "cookie", "key": "session", "value": "1"}], "destination": "/j"},
        {"source": "/k", "missing": [{"type": "query", "key": "x"}], "destination": "/l"},
        {"source": "/m", "has": [{"type": "host", "value": "WWW.example.com"}], "destination": "/n"},
        {"source": "/o", "has": [{"type": "query", "key": "p", "value": "1"},
                                 {"type": "query", "key": "p", "value": "2"}], "destination": "/q"},
        {"source": "/r", "has": [{"type": "query", "key": "term"}], "destination": "/s?find=:term"},
        {"source": "/t", "has": [{"type": "path", "value": "x"}], "destination": "/u"},
        {"source": "/ok", "has": [{"type": "query", "key": "x"}, {"type": "query", "key": "x", "value": "1"}],
         "destination": "/fine"},
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert rules(ruleset) == [{"from": "/ok", "to": "/fine", "status": 308, "query_match": {"x": "1"}}]
    lines = text.splitlines()
    found = {lines[p.line - 1].split('"source": ')[1].split(",")[0]: (p.code, p.message) for p in problems if p.line}
    assert set(found) == {f'"/{c}"' for c in "acegikmort"}
    assert all(code == "import.conditional" for code, _ in found.values() if code != "import.syntax")
    assert "regex" in found['"/a"'][1] and "regex" in found['"/c"'][1] and "regex" in found['"/e"'][1]
    assert "header" in found['"/g"'][1] and "cookie" in found['"/i"'][1] and "`missing`" in found['"/k"'][1]
    assert "lower-case" in found['"/m"'][1] and "never applies" in found['"/o"'][1]
    assert "`:term`" in found['"/r"'][1] and found['"/t"'][0] == "import.syntax"


def test_vercel_first_match_with_conditions() -> None:
    text = vercel(
        {"source": "/a/:x", "destination": "/one/:x"},
        {"source": "/:y/b", "has": [{"type": "query", "key": "q"}], "destination": "/two/:y"},  # ranks equal: regex
        {"source": "/c", "destination": "/three"},
        {"source": "/c", "has": [{"type": "query", "key": "q"}], "destination": "/never"},  # line 3 covers it
        {"source": "/d", "has": [{"type": "query", "key": "q"}], "destination": "/four"},
        {"source": "/d", "destination": "/five"},  # no cover: a conditional redirect covers no other
        {"source": "/p/:id(\\d+)", "destination": "/six/:id"},
        {"source": "/p/:slug", "has": [{"type": "query", "key": "q"}], "destination": "/seven"},  # after a regex
        {"source": "/w/:x", "has": [{"type": "host", "value": "h.example"}], "destination": "/eight"},
        {"source": "/r/:id(\\d+)", "destination": "/nine/:id"},
        {"source": "/r/:s", "has": [{"type": "host", "value": "h.example"}], "destination": "/ten"},  # after a copy
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [p.format() for p in validate(ruleset, "vercel.json") if p.is_error] == []
    assert [(p.code, entry_at(text, p.line)) for p in problems] == [("import.shadowed", 3), ("import.order", 7)]
    assert f"line {line_of(text, 2)} (`/c`)" in problems[0].message
    assert f"line {line_of(text, 6)} (`/p/:id(\\d+)`)" in problems[1].message
    assert answer(ruleset, "/a/b", query="q=1") == (308, "/one/b?q=1")
    assert answer(ruleset, "/z/b", query="q=1") == (308, "/two/z?q=1") and answer(ruleset, "/z/b")[0] == 404
    assert answer(ruleset, "/c", query="q=1") == (308, "/three?q=1")
    assert answer(ruleset, "/d", query="q=1") == (308, "/four?q=1") and answer(ruleset, "/d") == (308, "/five")
    assert answer(ruleset, "/p/12", query="q=1") == (308, "/six/12?q=1")
    assert answer(ruleset, "/w/x", "h.example") == (308, "/eight") and answer(ruleset, "/w/x")[0] == 404
    # on h.example, line 10 is copied as a host-specific regex, tried before line 11 (a host's regex)
    assert answer(ruleset, "/r/12", "h.example") == answer(ruleset, "/r/12") == (308, "/nine/12")
    assert answer(ruleset, "/r/ab", "h.example") == (308, "/ten") and answer(ruleset, "/r/ab")[0] == 404


VERCEL_HAS_LINE = st.tuples(
    st.lists(st.sampled_from(["a", ":x"]), max_size=2), st.booleans(), st.booleans(),
    st.lists(st.tuples(st.sampled_from(["q", "r"]), st.sampled_from([None, "1", "2"])), max_size=2),
    st.sampled_from([None, "h.example"]))
#: every path of up to three segments `a`/`b` (with and without a trailing slash), with these queries, on
#: the redirects' host and another: the requests the redirects of `VERCEL_HAS_LINE` can tell apart
VERCEL_PATHS = ["/"] + [p + slash for n in (1, 2, 3) for p in ("/" + "/".join(s) for s in itertools.product("ab", repeat=n))
                        for slash in ("", "/")]
VERCEL_QUERIES = [[], [("q", "1")], [("r", "2")], [("q", "2"), ("r", "1")], [("s", "1")]]


def vercel_has_first_match(lines: list[Any], path: str, query: list[tuple[str, str]],
                           host: str) -> tuple[int, str | None]:
    """Vercel's answer with `has` (Next.js `matchHas`): the first redirect whose path matches (as
    `vercel_first_match`) and whose every item holds: a query parameter present with a non-empty
    value, or with the value given; the Host. The request's query is passed on."""
    params = dict(query)
    for i, (segments, star, slash, conditions, line_host) in enumerate(lines):
        if line_host not in (None, host):
            continue
        if not all(params.get(key) and value in (None, params[key]) for key, value in conditions):
            continue
        status, target = vercel_first_match([(segments, star, slash)], path)
        if target is not None:
            target = target.replace("/t0", f"/t{i}", 1)
            return status, target + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    return 404, None


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(VERCEL_HAS_LINE, min_size=1, max_size=6))
def test_vercel_import_with_has_answers_like_first_match(lines: list[Any]) -> None:
    assume(all(segments.count(":x") < 2 for segments, *_ in lines))
    redirects = []
    for i, (segments, star, slash, conditions, host) in enumerate(lines):
        source = "/" + "/".join(segments + ([":p*"] if star else []))
        source = source + "/" if slash and not star and not source.endswith("/") else source
        target = f"https://e.example/t{i}" + ("/:x" if ":x" in segments else "") + ("/:p*" if star else "")
        has = [{"type": "query", "key": key, **({"value": value} if value else {})} for key, value in conditions]
        has += [{"type": "host", "value": host}] if host else []
        redirects.append({"source": source, "destination": target, **({"has": has} if has else {})})
    text = vercel(*redirects)
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [p.format() for p in problems if p.is_error and p.code != "import.empty"] == []  # all skipped: empty
    assert [p.format() for p in validate(ruleset, "vercel.json") if p.is_error] == []
    # redirects that redirectory's precedence cannot place after an earlier one are skipped with a
    # warning (`import.order`): the requests Vercel answers with them are not compared
    unordered = {entry_at(text, p.line) for p in problems if p.code == "import.order" and p.line}
    engine = Engine(ruleset)
    for path, query, host in itertools.product(VERCEL_PATHS, VERCEL_QUERIES, ["h.example", "o.example"]):
        expected = vercel_has_first_match(lines, path, query, host)
        if expected[1] is not None and int(expected[1].split("/")[3][1:].split("?")[0]) in unordered:
            continue
        response = engine.decide(Request("GET", path, query="&".join(f"{k}={v}" for k, v in query), host=host)).response
        assert (response.status, dict(response.headers).get("location")) == expected, (text, host, path, query)


def entry_at(text: str, line: int | None) -> int:
    """The index of the redirect whose `"source"` is on `line` of a `vercel()` text."""
    assert line is not None and '"source"' in text.splitlines()[line - 1]
    return sum('"source"' in row for row in text.splitlines()[:line]) - 1


def line_of(text: str, index: int) -> int:
    """The line of the `index`th redirect's `"source"` in a `vercel()` text."""
    return [n for n, row in enumerate(text.splitlines(), 1) if '"source"' in row][index]


def test_a_host_redirect_that_cannot_follow_an_earlier_any_host_one_is_skipped() -> None:
    """Line 2's copy for h.example (a conditional regex) cannot follow line 1 (an unconditional regex
    of that host): on h.example, line 3 would then answer before line 2, so it is skipped."""
    on_h = [{"type": "host", "value": "h.example"}]
    text = vercel(
        {"source": "/a/:p*", "has": on_h, "destination": "https://e.example/one"},
        {"source": "/:x", "has": [{"type": "query", "key": "q"}], "destination": "https://e.example/two"},
        {"source": "/:x", "has": on_h, "destination": "https://e.example/three"},
    )
    ruleset, problems = load_any(text, "vercel", "vercel.json")
    assert [(p.code, entry_at(text, p.line)) for p in problems] == [("import.order", 2)]
    assert f"line {line_of(text, 1)} (`/:x`)" in problems[0].message
    assert answer(ruleset, "/a", "h.example", "q=1") == (308, "https://e.example/one?q=1")
    assert answer(ruleset, "/b", "h.example", "q=1") == answer(ruleset, "/b", query="q=1") == (308, "https://e.example/two?q=1")
