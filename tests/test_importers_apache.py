"""The Apache importer (`load_apache`) against Apache httpd's own behaviour.

Every expectation here was checked against a real apache2 (mod_alias + mod_rewrite, server
context in a <VirtualHost>), as tests/differential.py does for the corpus files.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rulefile import read_rule_file
from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import IncludeMissing, IncludeReader, load_apache
from redirectory.rules.importers._apache_regex import _implied
from redirectory.rules.model import Problem, RuleSet
from test_export import free_port
from test_export_apache import APACHE, engine_answer, not_found, run_apache, served_answer


def answers(text: str, *targets: str, source: str = "site.conf", host: str | None = None) -> list[str]:
    """`STATUS LOCATION` (or `STATUS`) for each `path[?query]`, as the imported rules answer it."""
    ruleset, problems = load_apache(text, source)
    assert not [p for p in problems if p.is_error], [p.format() for p in problems]
    engine = Engine(ruleset)
    out = []
    for target in targets:
        path, _, query = target.partition("?")
        decision = engine.decide(Request("GET", path, query=query, host=host))
        status = decision.response.status
        out.append(f"{status} {decision.location}" if decision.location else str(status))
    return out


def codes(problems: list[Problem]) -> list[tuple[int | None, str]]:
    """The warnings (a file that yields no rule also gets the error `import.empty`: left out)."""
    return [(p.line, p.code) for p in problems if p.code not in ("status.301-unsafe-method", "import.empty")]


def rules(ruleset: RuleSet) -> list[dict[str, object]]:
    return [r.to_dict() for r in ruleset.rules]


# -- Redirect (mod_alias) ------------------------------------------------------------------------
def test_redirect_matches_whole_segments_and_appends_the_rest_as_apache_does() -> None:
    text = "Redirect 301 /p http://t.example/q\nRedirect 301 /s http://t.example/q/\n"
    assert answers(text, "/p", "/p/", "/p/x/y", "/px", "/s", "/s/x") == [
        "301 http://t.example/q", "301 http://t.example/q/", "301 http://t.example/q/x/y", "404",
        "301 http://t.example/q/", "301 http://t.example/q//x",  # Apache pastes `/x` after `q/`
    ]


def test_redirect_with_a_trailing_slash_does_not_answer_the_bare_path() -> None:
    text = "Redirect 301 /p/ http://t.example/q\n"
    assert answers(text, "/p", "/p/", "/p/x", "/p/x/y/") == [
        "404", "301 http://t.example/q", "301 http://t.example/qx", "301 http://t.example/qx/y/"]
    ruleset, _ = load_apache(text, "x")
    assert [r["from"] for r in rules(ruleset)] == ["/p/", "/p/{seg}/{rest:path}"]


def test_redirect_to_a_bare_host_keeps_the_host_apart_from_the_rest() -> None:
    text = "Redirect 301 /g http://g.example\nRedirect 301 /h/ http://h.example\n"
    assert answers(text, "/g", "/g/x", "/h/", "/h/x") == [
        "301 http://g.example", "301 http://g.example/x", "301 http://h.example", "301 http://h.example/x"]


def test_redirect_appends_the_request_query_only_to_a_url_without_one() -> None:
    text = "Redirect 301 /a http://t.example/a\nRedirect 301 /qq http://t.example/q?z=1\n"
    assert answers(text, "/a/b?x=1", "/qq?x=1", "/qq/z?x=1") == [
        "301 http://t.example/a/b?x=1",
        "301 http://t.example/q?z=1",
        "301 http://t.example/q?z=1/z",  # mod_alias pastes the rest after the URL, query or not
    ]
    ruleset, _ = load_apache(text, "x")
    assert [r.query for r in ruleset.rules] == ["keep", "keep", "drop", "drop"]


def test_redirect_match_drops_the_request_query_when_its_url_has_one() -> None:
    text = "RedirectMatch 301 ^/rm/(.*)$ http://t.example/m?k=$1\nRedirectMatch 301 ^/n/(.*)$ /n2/$1\n"
    assert answers(text, "/rm/abc?a=1", "/n/x?a=1") == ["301 http://t.example/m?k=abc", "301 /n2/x?a=1"]


def test_the_first_redirect_that_matches_wins() -> None:
    text = "Redirect 301 /first http://t.example/first\nRedirect 301 /first/second http://t.example/second\n"
    ruleset, problems = load_apache(text, "x")
    assert codes(problems) == [(2, "import.shadowed")]
    assert "line 1" in problems[-1].message
    assert answers(text, "/first/second/x") == ["301 http://t.example/first/second/x"]
    # the more specific one first: both kept, and the path patterns already pick the one Apache does
    text = "Redirect 301 /a/b http://t.example/ab\nRedirect 301 /a http://t.example/a\n"
    assert answers(text, "/a/b/c", "/a/c") == ["301 http://t.example/ab/c", "301 http://t.example/a/c"]


def test_a_gone_redirect_stops_later_ones_under_it() -> None:
    text = "Redirect gone /dead\nRedirect 301 /dead/inside http://t.example/x\n"
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(1, "import.status-skipped"), (2, "import.shadowed")]


def test_a_redirect_match_before_a_redirect_wins_as_in_apache() -> None:
    text = "RedirectMatch 301 ^/a/(.*)$ http://t.example/m/$1\nRedirect 301 /a/b http://t.example/ab\n"
    assert answers(text, "/a/b/c", "/a/b") == ["301 http://t.example/m/b/c", "301 http://t.example/m/b"]


# -- RewriteRule (mod_rewrite) -------------------------------------------------------------------
def test_an_absolute_substitution_without_r_is_a_302_redirect() -> None:
    ruleset, problems = load_apache("RewriteRule ^/abs(.*)$ http://other.example/abs$1\n", "x")
    assert codes(problems) == [(1, "status.302-converted")]
    assert answers("RewriteRule ^/abs(.*)$ http://other.example/abs$1\n", "/abs/x?a=1") == [
        "307 http://other.example/abs/x?a=1"]


def test_an_absolute_substitution_to_the_server_itself_is_an_internal_rewrite() -> None:
    text = "<VirtualHost *:80>\nServerName a.example\nRewriteRule ^/x$ http://a.example/y\n</VirtualHost>\n"
    _, problems = load_apache(text, "x")
    assert sorted(p.code for p in problems) == ["import.empty", "import.internal"]


def test_rewrite_query_flags() -> None:
    text = (
        "RewriteRule ^/qsa(.*)$ http://o.example/qsa?x=1 [R=301,QSA]\n"
        "RewriteRule ^/noqsa(.*)$ http://o.example/noqsa?x=1 [R=301]\n"
        "RewriteRule ^/drop(.*)$ http://o.example/drop? [R=301]\n"
        "RewriteRule ^/qsd(.*)$ http://o.example/qsd [R=301,QSD]\n"
        "RewriteRule ^/keep(.*)$ http://o.example/keep$1 [R=301]\n"
        "RewriteRule ^/pypi(.*)$ http://o.example/pypi$1?%{QUERY_STRING} [R=301,L]\n"
    )
    assert answers(text, "/qsa/x?a=1", "/noqsa/x?a=1", "/drop/x?a=1", "/qsd?a=1", "/keep/x?a=1",
                   "/pypi/a?b=1", "/pypi/a") == [
        "301 http://o.example/qsa?x=1&a=1",
        "301 http://o.example/noqsa?x=1",
        "301 http://o.example/drop",
        "301 http://o.example/qsd",
        "301 http://o.example/keep/x?a=1",
        "301 http://o.example/pypi/a?b=1",
        "301 http://o.example/pypi/a",
    ]


def test_a_hash_is_escaped_without_ne_and_a_fragment_with_it() -> None:
    ruleset, _ = load_apache("RewriteRule ^/h$ http://o.example/h#x [R=301]\n"
                             "RewriteRule ^/n$ http://o.example/n#x [R=301,NE]\n", "x")
    assert [r.to for r in ruleset.rules] == ["http://o.example/h%23x", "http://o.example/n#x"]


def test_a_rewrite_map_is_skipped_naming_the_map() -> None:
    _, problems = load_apache("RewriteRule ^/a(.*)$ http://x.example/${lowercase:$1} [R=301]\n", "x")
    assert codes(problems) == [(1, "import.variable")]
    assert any("RewriteMap `lowercase`" in p.message for p in problems)


def test_a_proxy_rule_is_not_a_redirect() -> None:
    _, problems = load_apache("RewriteRule ^/p(.*)$ http://backend.example/p$1 [P,L]\n", "x")
    assert [p.code for p in problems] == ["import.empty"]


# -- precedence between the modules --------------------------------------------------------------
def test_mod_rewrite_answers_before_mod_alias_whatever_the_file_order() -> None:
    text = ("Redirect 301 /rw http://alias.example/y\n"
            "RewriteRule ^/rw/a http://other.example/x [R=301]\n")
    assert answers(text, "/rw/a", "/rw/b", "/rw") == [
        "301 http://other.example/x", "301 http://alias.example/y/b", "301 http://alias.example/y"]
    ruleset, _ = load_apache(text, "x")
    by_regex = {r.source_regex: r.priority for r in ruleset.rules if r.source_regex}
    assert by_regex["^/rw/a"] == 1  # the RewriteRule first, whatever the file order


def test_redirects_the_rewrites_cannot_reach_stay_path_patterns() -> None:
    text = "RewriteRule ^/old/(.*)$ /new/$1 [R=301]\nRedirect 301 /docs http://d.example/\n"
    ruleset, _ = load_apache(text, "x")
    assert [(r.source, r.source_regex, r.priority) for r in ruleset.rules] == [
        (None, "^/old/(?P<g1>.*)$", 0), ("/docs", None, 0), ("/docs/{rest:path}", None, 0)]


def test_rewrite_rules_apply_in_file_order_before_a_redirect_match() -> None:
    text = ("RedirectMatch 301 ^/x/(.*)$ http://alias.example/$1\n"
            "RewriteRule ^/x/a$ http://first.example/ [R=301,L]\n"
            "RewriteRule ^/x/.*$ http://second.example/ [R=301,L]\n")
    assert answers(text, "/x/a", "/x/b", "/y") == [
        "301 http://first.example/", "301 http://second.example/", "404"]


# -- RewriteCond ---------------------------------------------------------------------------------
def test_a_host_condition_makes_a_host_specific_rule() -> None:
    text = ("RewriteEngine On\n"
            "RewriteCond %{HTTP_HOST} ^www\\.example\\.com$ [NC]\n"
            "RewriteRule ^(.*)$ https://example.com/$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, ".htaccess")
    assert codes(problems) == []
    assert rules(ruleset) == [{"from": "//www.example.com/{rest:path}", "to": "https://example.com/{rest}",
                               "status": 301}]
    assert answers(text, "/a/b?x=1", source=".htaccess", host="www.example.com") == [
        "301 https://example.com/a/b?x=1"]
    assert answers(text, "/a/b", source=".htaccess", host="other.example") == ["404"]


def test_a_host_condition_on_a_regex_makes_a_host_specific_regex() -> None:
    text = ("RewriteCond %{HTTP_HOST} ^www\\.example\\.com$\n"
            "RewriteRule ^/a/([0-9]+)$ https://example.com/b/$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, "x")
    assert codes(problems) == []
    assert [r.source_regex for r in ruleset.rules] == [r"^//www\.example\.com(?:/a/(?P<g1>[0-9]+)$)"]
    assert answers(text, "/a/1", host="www.example.com") == ["301 https://example.com/b/1"]
    assert answers(text, "/a/1", host="example.com") == ["404"]
    # a regex that cannot follow the host (a `^` inside): skipped, never an any-host rule
    text = text.replace("^/a/([0-9]+)$", "^/a/(x|^y)$")
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(2, "import.host")]


def test_file_existence_conditions_import_with_a_warning() -> None:
    text = ("RewriteCond %{REQUEST_FILENAME} !-f\n"
            "RewriteCond %{REQUEST_FILENAME} !-d\n"
            "RewriteRule ^old/(.*)$ /new/$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, ".htaccess")
    assert codes(problems) == [(1, "import.conditional"), (2, "import.conditional")]
    assert [r.source_regex for r in ruleset.rules] == ["^/old/(?P<g1>.*)$"]


def test_a_condition_the_pattern_already_implies_is_dropped_in_server_context() -> None:
    text = ("RewriteCond %{REQUEST_FILENAME} ^/1.5$\n"
            "RewriteRule ^/1.5$ http://www.example/releases/1.5/ [R=301,L]\n"
            "RewriteCond %{REQUEST_URI} ^/peps\n"
            "RewriteRule ^/peps(.*)$ http://www.example/dev/peps$1 [R=301,L]\n")
    assert answers(text, "/1.5", "/peps/x") == [
        "301 http://www.example/releases/1.5/", "301 http://www.example/dev/peps/x"]
    # a different condition is not implied (and, with `$1`, cannot replace the pattern): skipped
    _, problems = load_apache("RewriteCond %{REQUEST_FILENAME} ^/peps/+$\n"
                              "RewriteRule ^/peps(.*) http://www.example/dev/peps$1 [R=301,L]\n", "x")
    assert codes(problems) == [(2, "import.conditional")]


def test_a_method_condition_becomes_methods() -> None:
    text = "RewriteCond %{REQUEST_METHOD} ^GET$\nRewriteRule ^/pypi(.*)$ http://p.example/pypi$1 [R=301,L]\n"
    ruleset, problems = load_apache(text, "x")
    assert codes(problems) == [] and ruleset.rules[0].methods == ("GET",)


def test_other_conditions_and_or_are_skipped_with_a_warning() -> None:
    text = ("RewriteCond %{HTTP_REFERER} example\n"
            "RewriteRule ^/a$ /b [R=301]\n"
            "RewriteCond %{HTTP_HOST} ^a\\.example$ [OR]\n"
            "RewriteCond %{REQUEST_METHOD} ^GET$\n"
            "RewriteRule ^/c$ /d [R=301]\n"
            "RewriteCond %{HTTP_HOST} !^www\\.example\\.com$\n"
            "RewriteRule ^/e$ /f [R=301]\n")
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(2, "import.conditional"), (5, "import.conditional"), (7, "import.conditional")]
    said = {p.line: p.message for p in problems if p.code == "import.conditional"}
    assert "[OR] (lines 3, 4)" in said[5]
    assert "a negated one" in said[7] and "a rule per host" in said[7]
    referer = next(p for p in problems if p.line == 2)
    assert "HTTP_REFERER" in referer.message and "(line 1)" in referer.message


def test_a_rewrite_rule_with_a_shorter_prefix_still_goes_before_a_redirect_match() -> None:
    text = "RedirectMatch 301 ^/ab(.*)$ http://alias.example/$1\nRewriteRule ^/a http://rw.example/ [R=301]\n"
    assert answers(text, "/abc", "/x") == ["301 http://rw.example/", "404"]


# -- RewriteMap int:tolower ----------------------------------------------------------------------
LOWER = "RewriteRule ^/a/(.*)$ http://x.example/${lc:$1} [R=301,L]\nRewriteMap lc int:tolower\n"


def test_a_tolower_map_imports_for_the_paths_without_capitals() -> None:
    # the map may come after its use: Apache reads every RewriteMap before any request
    assert answers(LOWER, "/a/foo-1.html", "/a/x/y?q=1", "/a/Foo", "/a/%C3%A9") == [
        "301 http://x.example/foo-1.html", "301 http://x.example/x/y?q=1", "404", "404"]
    _, problems = load_apache(LOWER, "x")
    assert codes(problems) == [(1, "import.lowercase")]
    assert "capital" in problems[0].message


def test_a_tolower_map_limits_the_whole_path_not_only_its_group() -> None:
    # with only $1 limited, `/aXy` would match with $1 = "" where Apache captures "Xy" (then "xy")
    text = "RewriteMap lc int:tolower\nRewriteRule ^/a(.*)(.*)$ http://x.example/${lc:$1} [R=301,L]\n"
    assert answers(text, "/axy", "/aXy") == ["301 http://x.example/xy", "404"]


def test_a_tolower_map_that_cannot_be_limited_is_skipped() -> None:
    text = ("RewriteMap lc int:tolower\n"
            "RewriteRule ^/a/(.*)$ http://x.example/${lc:$1} [R=301,NC]\n"  # NC: letters of both cases
            "RewriteRule ^/a/(.*) http://x.example/${lc:$1} [R=301]\n"  # not anchored at the end
            "RewriteRule ^/B/(.*)$ http://x.example/${lc:$1} [R=301]\n")  # a capital of its own
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(2, "import.lowercase"), (3, "import.lowercase"), (4, "import.lowercase")]
    assert all("skipped" in p.message for p in problems if p.code == "import.lowercase")


def test_a_map_not_defined_here_or_of_another_type_is_skipped_saying_so() -> None:
    text = ("RewriteMap ext txt:/etc/map.txt\n"
            "RewriteRule ^/a/(.*)$ http://x.example/${ext:$1} [R=301]\n"
            "RewriteRule ^/b/(.*)$ http://x.example/${nowhere:$1} [R=301]\n")
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(2, "import.variable"), (3, "import.variable")]
    warned = [p.message for p in problems if p.code == "import.variable"]
    assert "`txt:/etc/map.txt`" in warned[0] and "not defined in this file" in warned[1]


# -- RewriteCond on the path ---------------------------------------------------------------------
def test_path_conditions_the_pattern_implies_are_dropped() -> None:
    text = ("RewriteCond %{REQUEST_FILENAME} ^/s/c++-sig.*html$\n"
            "RewriteRule ^/s/c++-sig(.*).html$ http://x.example/cpp$1 [R=301,L]\n"
            "RewriteCond %{REQUEST_FILENAME} .*minutes-.*\n"
            "RewriteRule ^/m/minutes-(.*)$ http://x.example/minutes/$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, "x")
    assert codes(problems) == []
    assert answers(text, "/s/c-sigx.html", "/s/ccc-sig.html", "/m/minutes-2") == [
        "301 http://x.example/cppx", "301 http://x.example/cpp", "301 http://x.example/minutes/2"]


def test_a_narrower_path_condition_becomes_the_rule_regex() -> None:
    text = "RewriteCond %{REQUEST_FILENAME} ^/peps/+$\nRewriteRule ^/peps http://x.example/peps/ [R=301,L]\n"
    assert answers(text, "/peps/", "/peps", "/pepsx", "/peps/x") == ["301 http://x.example/peps/", "404", "404", "404"]
    # with `$N` in the substitution the groups are the pattern's: not replaced, skipped
    _, problems = load_apache(text.replace("peps/ [", "$0 ["), "x")
    assert (2, "import.conditional") in codes(problems)


_ATOMS = st.sampled_from(["a", "b", "/", ".", ".*", "a+", "b?", "(a)", "(.*)", "[ab]", "\\.", "(b|a)"])


@settings(max_examples=300, deadline=None)
@given(cond=st.lists(_ATOMS, max_size=4), pattern=st.lists(_ATOMS, max_size=5),
       anchors=st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()),
       texts=st.lists(st.text("ab/.", max_size=7), min_size=20, max_size=20))
def test_implied_is_never_wrong(cond: list[str], pattern: list[str], anchors: tuple[bool, ...],
                                texts: list[str]) -> None:
    """Whenever `_implied` says every match of the pattern matches the condition, it does."""
    c = ("^" if anchors[0] else "") + "".join(cond) + ("$" if anchors[1] else "")
    p = ("^" if anchors[2] else "") + "".join(pattern) + ("$" if anchors[3] else "")
    if _implied(c, p):
        for text in texts + ["".join(pattern).replace(".*", "").replace("+", "").replace("?", "")]:
            if re.search(p, text):
                assert re.search(c, text), (c, p, text)


def test_an_include_is_a_warning_naming_the_file() -> None:
    text = "Include REDIRECTS/sigs.conf\nRedirect 301 /a http://x.example/a\n"
    _, problems = load_apache(text, "x")
    assert codes(problems) == [(1, "import.include")]
    assert "REDIRECTS/sigs.conf" in problems[0].message


# -- Define and ${NAME} ---------------------------------------------------------------------------
def test_defined_variables_are_substituted_and_undefined_ones_kept_as_apache_does() -> None:
    text = ("Define version 3.9.6\n"
            "Redirect 301 /ref/current/ /ref/${version}/\n"
            "RedirectMatch 301 ^/core/(.*)$ /ref/${missing}/core/$1\n"
            "Undefine version\n"
            "Redirect 301 /later /v/${version}\n")
    assert answers(text, "/ref/current/api", "/core/x", "/later") == [
        "301 /ref/3.9.6/api", "301 /ref/$%7Bmissing%7D/core/x", "301 /v/$%7Bversion%7D"]
    _, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(3, "import.variable"), (5, "import.variable")]
    assert "${missing} is not defined" in next(p.message for p in problems if p.line == 3)


# -- Include / IncludeOptional --------------------------------------------------------------------
def reader(files: dict[str, str]) -> IncludeReader:
    """An include reader over `files` (name -> text): a name is read as written; `*` ends a name
    to take every file that starts with the rest, sorted, as Apache's wildcard does."""

    def read(target: str, including: str) -> list[tuple[str, str]] | str:
        if target.endswith("*"):
            found = sorted(n for n in files if n.startswith(target[:-1]))
            return [(n, files[n]) for n in found] if found else IncludeMissing(f"no file matches {target}")
        if target.endswith(".bin"):
            return f"{target} is not valid UTF-8"
        return [(target, files[target])] if target in files else IncludeMissing(f"no such file {target}")

    return read


def test_included_lines_are_read_in_place_with_the_defines_and_maps_of_the_including_file() -> None:
    files = {
        "REDIRECTS/sigs.conf": "# sigs\nRewriteRule ^/sigs/(.*)$ http://x.example/sigs/${lower:$1} [R=301,L]\n"
                               "Define later /after\nRewriteMap fromsigs int:tolower\n",
        "REDIRECTS/v.conf": "Redirect 301 /v http://x.example/${version}\n",
    }
    text = ("RewriteMap lower int:tolower\nDefine version 3.9\nInclude REDIRECTS/sigs.conf\n"
            "Include REDIRECTS/v.conf\nRedirect 301 /later ${later}\n"
            "RewriteRule ^/m/([a-z]+)$ /n/${fromsigs:$1} [R=301,L]\n")
    origins: list[str] = []
    ruleset, problems = load_apache(text, "site.conf", read=reader(files), origins=origins)
    assert not [p for p in problems if p.is_error], problems
    engine = Engine(ruleset)
    for path, location in [("/sigs/doc-sig", "http://x.example/sigs/doc-sig"), ("/v/a", "http://x.example/3.9/a"),
                           ("/later", "/after"), ("/m/abc", "/n/abc")]:
        assert engine.decide(Request("GET", path)).location == location, path
    # each rule keeps its own file and line
    by_source = {(o, r.line) for o, r in zip(origins, ruleset.rules, strict=True)}
    assert ("REDIRECTS/sigs.conf", 2) in by_source and ("REDIRECTS/v.conf", 1) in by_source
    assert ("site.conf", 5) in by_source and ("site.conf", 6) in by_source
    (lowered,) = [p for p in problems if p.code == "import.lowercase" and p.source == "REDIRECTS/sigs.conf"]
    assert lowered.line == 2 and lowered.format().startswith("REDIRECTS/sigs.conf:2: ")


def test_a_missing_include_is_a_warning_naming_file_and_line_and_includeoptional_is_silent() -> None:
    files = {"conf/a.conf": "Redirect 301 /a /from-a\nInclude conf/gone.conf\nInclude conf/broken.bin\n"}
    text = "IncludeOptional conf/nothing*\nInclude conf/*\nIncludeOptional nowhere.conf\nRedirect 301 /b /c\n"
    ruleset, problems = load_apache(text, "site.conf", read=reader(files))
    assert [r.source for r in ruleset.rules if r.source in ("/a", "/b")] == ["/a", "/b"]
    warned = [(p.source, p.line) for p in problems if p.code == "import.include"]
    assert warned == [("conf/a.conf", 2), ("conf/a.conf", 3)]
    missing, broken = [p for p in problems if p.code == "import.include"]
    assert "no such file conf/gone.conf" in missing.message and "Apache refuses to start" in missing.message
    assert "not valid UTF-8" in broken.message
    # IncludeOptional of an unreadable file is an error in Apache too: a warning
    _, problems = load_apache("IncludeOptional x.bin\nRedirect 301 /b /c\n", "site.conf", read=reader({}))
    assert codes(problems) == [(1, "import.include")]


def test_include_cycles_and_depth_are_bounded() -> None:
    files = {"a.conf": "Redirect 301 /a /x\nInclude b.conf\n", "b.conf": "Include a.conf\nInclude site.conf\n",
             "site.conf": "Include a.conf\n"}
    ruleset, problems = load_apache("Include a.conf\n", "site.conf", read=reader(files))
    assert [r.source for r in ruleset.rules if r.source == "/a"] == ["/a"]
    cycles = [p for p in problems if p.code == "import.include"]
    assert [(p.source, p.line) for p in cycles] == [("b.conf", 1), ("b.conf", 2)]
    assert all("includes itself" in p.message for p in cycles)
    deep = {f"{n}.conf": f"Include {n + 1}.conf\n" for n in range(40)}
    deep["40.conf"] = "Redirect 301 /deep /x\n"
    _, problems = load_apache("Include 0.conf\nRedirect 301 /b /c\n", "site.conf", read=reader(deep))
    assert [p for p in problems if "nested more than" in p.message]


def test_a_later_duplicate_in_an_included_file_names_both_files() -> None:
    files = {"more.conf": "\nRewriteRule ^/a$ /c [R=301,L]\n"}
    text = "RewriteRule ^/a$ /b [R=301,L]\nInclude more.conf\n"
    ruleset, problems = load_apache(text, "site.conf", read=reader(files))
    assert [r.to for r in ruleset.rules] == ["/b"]  # Apache uses the first
    (dup,) = [p for p in problems if p.code == "import.duplicate"]
    assert (dup.source, dup.line) == ("more.conf", 2) and "site.conf:1" in dup.message


def test_without_a_reader_or_in_htaccess_an_include_is_a_warning() -> None:
    text = "Include more.conf\nRedirect 301 /a /b\n"
    _, problems = load_apache(text, "docs/.htaccess", read=reader({"more.conf": "Redirect 301 /c /d\n"}))
    assert codes(problems) == [(1, "import.include")]


lines_st = st.lists(st.sampled_from([
    "Redirect 301 /a http://x.example/a", "RedirectMatch 301 ^/b(.*)$ /c$1", "RewriteRule ^/d/(.*)$ /e/$1 [R=301,L]",
    "RewriteRule ^/a/x$ /f [R=308,L]", "Redirect 308 /a/y /g", "Define v /h", "Redirect 301 /v ${v}",
    "RewriteMap lc int:tolower", "RewriteRule ^/l/([a-z]+)$ /m/${lc:$1} [R=301,L]", "# comment", "",
]), max_size=8)


@settings(max_examples=60, deadline=None)
@given(st.lists(lines_st, min_size=1, max_size=4), st.lists(st.tuples(st.integers(0, 3), st.integers(0, 8)),
                                                            min_size=3, max_size=3))
def test_includes_answer_as_the_configuration_written_out_in_one_file(
    parts: list[list[str]], places: list[tuple[int, int]]
) -> None:
    """Apache reads an Include as if its lines stood there: any split of a configuration into
    included files answers every request as the configuration in one file does."""
    own = [list(p) for p in parts]
    for k in range(1, len(own)):  # file k is included by an earlier file, at some line of it
        host, at = places[k - 1]
        host = host % k
        own[host].insert(min(at, len(own[host])), f"Include part{k}.conf")
    files = {f"part{k}.conf": "\n".join(lines) + "\n" for k, lines in enumerate(own)}

    def expand(lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            out.extend(expand(files[line.split()[1]].splitlines()) if line.startswith("Include ") else [line])
        return out

    included, inc_problems = load_apache(files["part0.conf"], "part0.conf", read=reader(files))
    flat, flat_problems = load_apache("\n".join(expand(own[0])) + "\n", "part0.conf")
    assert sorted(p.code for p in inc_problems) == sorted(p.code for p in flat_problems)
    a, b = Engine(included), Engine(flat)
    for path in ["/a", "/a/x", "/a/y", "/a/z", "/b", "/bq", "/d/1", "/v", "/l/abc", "/l/Abc", "/zz"]:
        one, two = a.decide(Request("GET", path)), b.decide(Request("GET", path))
        assert (one.response.status, one.location) == (two.response.status, two.location), path


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_cli_reads_includes_relative_globbed_missing_optional_and_include_root(tmp_path: Path) -> None:
    write(tmp_path, {
        "repo/legacy/site.conf": ("Define target http://x.example\n"
                                  "Include REDIRECTS/first.conf\n"
                                  "Include conf.d/*.conf\n"
                                  "Include missing.conf\n"
                                  "IncludeOptional optional/*.conf\n"
                                  "IncludeOptional nothere.conf\n"
                                  "Redirect 301 /last ${target}/last\n"),
        "repo/legacy/REDIRECTS/first.conf": "# first\nRewriteRule ^/r/(.*)$ http://x.example/r/$1 [R=301,L]\n",
        "repo/legacy/conf.d/b.conf": "RewriteRule ^/x$ /from-b [R=301,L]\n",
        "repo/legacy/conf.d/a.conf": "\nRewriteRule ^/x$ /from-a [R=301,L]\n",
        "repo/legacy/conf.d/a.conf.txt": "RewriteRule ^/y$ /txt [R=301,L]\n",
        "repo/sites/other.conf": "Include REDIRECTS/first.conf\nInclude /etc/apache2/conf.d/b.conf\n",
    })
    site = tmp_path / "repo/legacy/site.conf"
    done = cli("rules", "convert", str(site), "--from", "apache", "--to", "json")
    assert done.returncode == 0, done.stderr
    assert [(r["from_regex"] if "from_regex" in r else r["from"], r["to"]) for r in json.loads(done.stdout)["rules"]] \
        == [("^/r/(?P<g1>.*)$", "http://x.example/r/{g1}"), ("^/x$", "/from-a"), ("/last", "http://x.example/last"),
            ("/last/{rest:path}", "http://x.example/last/{rest}")]
    assert "Traceback" not in done.stderr
    # the missing Include names its file:line and where it looked; the optional ones say nothing
    missing = [line for line in done.stderr.splitlines() if "missing.conf" in line]
    assert len(missing) == 1 and missing[0].startswith(f"{site}:4: ")
    assert "no such file or directory" in missing[0] and "--include-root" in missing[0]
    assert "optional" not in done.stderr and "nothere" not in done.stderr
    # the later duplicate in b.conf names both files
    (dup,) = [line for line in done.stderr.splitlines() if "b.conf" in line]
    assert dup.startswith(f"{tmp_path / 'repo/legacy/conf.d/b.conf'}:1: ") and "a.conf:2" in dup
    # --include-root: the ServerRoot (relative names and /etc/apache2/...) of a file kept elsewhere
    other = tmp_path / "repo/sites/other.conf"
    rooted = cli("rules", "validate", str(other), "--format", "apache", "--include-root", str(tmp_path / "repo/legacy"))
    assert rooted.returncode == 0, rooted.stderr
    assert "2 rule(s) valid" in rooted.stdout + rooted.stderr
    without = cli("rules", "validate", str(other), "--format", "apache")
    assert without.returncode == 1 and "Traceback" not in without.stderr
    assert f"{other}:1: " in without.stderr and "no redirect to import" in without.stderr
    ruleset, _ = read_rule_file(other, "apache", include_root=tmp_path / "repo/legacy")
    assert [r.to for r in ruleset.rules] == ["http://x.example/r/{g1}", "/from-b"]


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
def test_includes_answer_as_a_real_apache_serves_them(tmp_path: Path) -> None:
    """A configuration split over included files (a glob, a Define and RewriteMaps across files,
    an IncludeOptional of nothing) served by apache2 and imported: the same answers."""
    write(tmp_path, {
        "site.conf": ("RewriteEngine On\nRewriteMap lc int:tolower\nDefine base http://x.example\n"
                      "Include conf/*.conf\nIncludeOptional nothing/*.conf\n"
                      "RewriteRule ^/after/([a-z]+)$ ${base}/after/${lc2:$1} [R=301,L]\n"),
        "conf/a.conf": ("RewriteRule ^/a/([a-z]+)$ ${base}/a/${lc:$1} [R=301,L]\nRewriteMap lc2 int:tolower\n"
                        "Define base http://y.example\n"),
        "conf/b.conf": "RewriteRule ^/a/(.*)$ /shadowed [R=301,L]\nRewriteRule ^/b$ ${base}/b [R=308,L]\n",
    })
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "apache")
    assert not [p for p in problems if p.is_error], problems
    engine = Engine(ruleset)
    port = free_port()
    with run_apache(tmp_path, tmp_path / "site.conf", port):
        for target in ["/a/abc", "/a/x1", "/a/", "/b", "/b?q=1", "/after/xyz", "/after/", "/none"]:
            theirs = not_found(served_answer(port, "GET", target, "localhost"))[:2]
            ours = not_found(engine_answer(engine, "GET", target, "localhost"))[:2]
            assert theirs == ours, target


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
def test_query_string_conditions_answer_as_a_real_apache_serves_them(tmp_path: Path) -> None:
    """The RewriteCond %{QUERY_STRING} idioms become query conditions (`query_match`, `query_exact`):
    `^$`, `^a=1&b=2$`, `(^|&)a=1(&|$)` and `(^|&)a=`; any other stays a skipped condition."""
    write(tmp_path, {"site.conf": (
        "RewriteEngine On\n"
        "RewriteCond %{QUERY_STRING} ^page_id=12$\nRewriteRule ^/$ /about? [R=301,L]\n"
        "RewriteCond %{QUERY_STRING} ^a=1&b=2$\nRewriteRule ^/both$ /both-new [R=301,L]\n"
        "RewriteCond %{QUERY_STRING} (^|&)p=5(&|$)\nRewriteRule ^/index\\.php$ /post-5? [R=301,L]\n"
        "RewriteCond %{QUERY_STRING} ^$\nRewriteRule ^/old$ /new [R=301,L]\n"
        "RewriteCond %{QUERY_STRING} (^|&)ref=\nRewriteRule ^/promo$ /sale [R=307,L]\n"
        "RewriteCond %{QUERY_STRING} id=([0-9]+)\nRewriteRule ^/item$ /item/%1? [R=301,L]\n"
    )})
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "apache")
    assert not [p for p in problems if p.is_error], problems
    assert [r.query_match for r in ruleset.rules] == ["page_id=12", "a=1&b=2", "p=5", None, "ref=*"]
    assert [p.line for p in problems if p.code == "import.variable"] == [13]  # %1: not a rule
    engine = Engine(ruleset)
    port = free_port()
    with run_apache(tmp_path, tmp_path / "site.conf", port):
        for target in ["/?page_id=12", "/?page_id=13", "/?page_id=12&x=1", "/", "/both?a=1&b=2", "/both?a=1",
                       "/index.php?p=5", "/index.php?x=1&p=5&y=2", "/index.php?p=50", "/index.php?xp=5",
                       "/old", "/old?x=1", "/promo?ref=a", "/promo?x=1&ref=", "/promo", "/promo?xref=1"]:
            theirs = not_found(served_answer(port, "GET", target, "localhost"))[:2]
            ours = not_found(engine_answer(engine, "GET", target, "localhost"))[:2]
            assert theirs == ours, target


# -- exclusions: `RewriteRule PATTERN - [L]` -------------------------------------------------------
#: Checked against a real apache2 (test_exclusions_answer_as_a_real_apache_serves_them): the exclusion
#: stops the RewriteRules after it for its paths, not the ones before it, and not mod_alias.
EXCLUSIONS = (
    "RewriteEngine On\n"
    "RewriteRule ^/docs/keep/old$ /docs/new [R=301,L]\n"           # before the exclusion: still wins
    "RewriteRule ^/docs/keep/ - [L]\n"
    "RewriteRule ^/docs/(.*)$ https://new.example/docs/$1 [R=301,L]\n"
    "RewriteRule ^/api/v1/health$ - [END]\n"
    "RewriteRule ^/api/v1/(.*)$ /api/v2/$1 [R=308,L]\n"
    "RewriteCond %{QUERY_STRING} ^debug=1$\n"
    "RewriteRule ^/blog/ - [L]\n"
    "RewriteRule ^/blog/(.*)$ /news/$1 [R=301,L]\n"
    "RewriteRule ^/static/ - [L]\n"
    "RedirectMatch 301 ^/static/old/(.*)$ /assets/$1\n"             # mod_alias runs after mod_rewrite
    "Redirect 301 /static/legacy /assets/legacy\n"
    "RewriteRule ^/(.*)\\.php$ /$1 [R=301,L]\n"
)
EXCLUSION_TARGETS = {
    "/docs/keep/old": "301 /docs/new", "/docs/keep/a": "404", "/docs/keep/": "404",
    "/docs/other": "301 https://new.example/docs/other", "/api/v1/health": "404",
    "/api/v1/health?x=1": "404", "/api/v1/users": "308 /api/v2/users", "/blog/a?debug=1": "404",
    "/blog/a": "301 /news/a", "/blog/a?debug=2": "301 /news/a?debug=2", "/static/a.css": "404",
    "/static/a.php": "404", "/static/old/x.php": "301 /assets/x.php", "/static/legacy/y": "301 /assets/legacy/y",
    "/index.php": "301 /index", "/x/y.php?a=1": "301 /x/y?a=1",
}


def test_an_exclusion_stops_the_rewrite_rules_after_it_and_not_mod_alias() -> None:
    ruleset, problems = load_apache(EXCLUSIONS, "site.conf")
    assert codes(problems) == [], [p.format() for p in problems]
    assert [r.status for r in ruleset.rules].count(404) == 4  # one rule that redirects nothing each
    got = answers(EXCLUSIONS, *EXCLUSION_TARGETS)
    assert dict(zip(EXCLUSION_TARGETS, got, strict=True)) == EXCLUSION_TARGETS


def test_without_the_exclusions_the_later_rules_would_answer() -> None:
    """The exclusions are what keeps those paths: the same file without them redirects them."""
    text = "".join(line + "\n" for line in EXCLUSIONS.splitlines() if " - [" not in line
                   and "QUERY_STRING" not in line)
    assert answers(text, "/docs/keep/a", "/api/v1/health", "/static/a.php") == [
        "301 https://new.example/docs/keep/a", "308 /api/v2/health", "301 /static/a"]


def test_an_exclusion_in_htaccess_and_its_conditions() -> None:
    """Per-directory patterns (no leading slash), `[NC]`, and the conditions rules understand
    (host, method): each exclusion holds only where Apache's would."""
    text = (
        "RewriteEngine On\n"
        "RewriteRule ^index\\.php$ - [L]\n"
        "RewriteRule ^KEEP/ - [NC,L]\n"
        "RewriteCond %{REQUEST_METHOD} ^POST$\n"
        "RewriteRule ^form$ - [L]\n"
        "RewriteRule ^(.*)\\.php$ /$1 [R=301,L]\n"
        "RewriteRule ^(.*)$ https://new.example/$1 [R=301,L]\n"
    )
    ruleset, problems = load_apache(text, "repo/.htaccess")
    assert codes(problems) == []
    assert answers(text, "/index.php", "/keep/a.php", "/Keep/b", "/form", "/a.php", "/x", source="repo/.htaccess") == [
        "404", "404", "404", "301 https://new.example/form", "301 /a", "301 https://new.example/x"]
    engine = Engine(ruleset)
    assert engine.decide(Request("POST", "/form", query="")).response.status == 404


def test_an_exclusion_of_a_named_virtual_host_keeps_the_catch_all_after_it_a_regex() -> None:
    """`^/(.*)$` for one host is a path pattern (`//host/{rest:path}`), which would come before the
    exclusion's regex: after an exclusion it stays a regex, in file order."""
    text = ("<VirtualHost *:80>\nServerName old.example.org\nRewriteEngine On\nRewriteRule ^/static/ - [L]\n"
            "RewriteRule ^/(.*)$ https://new.example.org/$1 [R=301,L]\n</VirtualHost>\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == []
    assert all(r.source_regex is not None for r in ruleset.rules)
    assert answers(text, "/static/a.css", "/x", host="old.example.org") == ["404", "301 https://new.example.org/x"]
    assert answers(text, "/x", host="other.example.org") == ["404"]


def test_an_exclusion_with_a_condition_a_rule_cannot_hold_is_skipped_with_a_warning() -> None:
    text = ("RewriteEngine On\nRewriteCond %{REQUEST_FILENAME} -f [OR]\nRewriteCond %{REQUEST_FILENAME} -d\n"
            "RewriteRule ^ - [L]\nRewriteRule ^/old/(.*)$ /new/$1 [R=301,L]\nRewriteRule ^/a - [S=1]\n"
            "RewriteRule ^/a(.*)$ /b$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(4, "import.conditional"), (6, "import.internal")]
    assert [r.status for r in ruleset.rules] == [301, 301]


def test_a_mod_alias_rule_an_exclusion_and_a_later_rewrite_all_meet_a_warning_says_so() -> None:
    """`RedirectMatch ^/old/(.*)$` meets the exclusion `^/old/keep` (Apache redirects those paths by
    mod_alias) and the catch-all RewriteRule after it (which must come first elsewhere): no rule
    order says both; the exclusion goes first and a warning names the three lines."""
    text = ("RewriteEngine On\nRewriteRule ^/old/keep - [L]\nRewriteRule ^/(.*)\\.php$ /$1 [R=301,L]\n"
            "RedirectMatch 301 ^/old/(.*)$ /new/$1\n")
    _, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(4, "import.order")]
    assert "line 2" in problems[0].message and "line 3" in problems[0].message
    assert answers(text, "/old/x", "/old/x.php", "/old/keep") == ["301 /new/x", "301 /old/x", "404"]


def test_a_query_condition_exclusion_after_an_unconditional_rewrite_keeps_apaches_order() -> None:
    """A rule with query (or scheme) conditions comes before one without (docs/rules.md, Precedence):
    the RewriteRule Apache tries first is written once per scheme, so that it keeps its place."""
    text = ("RewriteEngine On\nRewriteRule ^/a/(.*)$ /b/$1 [R=301,L]\nRewriteCond %{QUERY_STRING} ^x=1$\n"
            "RewriteRule ^/a/ - [L]\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == []
    assert [(r.status, r.scheme) for r in ruleset.rules] == [(301, "http"), (301, "https"), (404, None)]
    assert answers(text, "/a/c?x=1", "/a/c") == ["301 /b/c?x=1", "301 /b/c"]


def test_a_slash_pattern_in_htaccess_never_matches() -> None:
    """In .htaccess Apache matches the path without its leading slash: `^/blog` matches nothing
    (audacity's htdocs/.htaccess has `RewriteRule ^/blog - [L]`)."""
    text = "RewriteEngine On\nRewriteRule ^/blog - [L]\nRewriteRule ^/x /y [R=301,L]\nRewriteRule ^blog(.*) /news$1 [R=301,L]\n"
    _, problems = load_apache(text, ".htaccess")
    assert codes(problems) == [(2, "import.unsupported"), (3, "import.unsupported")]
    assert answers(text, "/blog", "/blogz", "/x", source=".htaccess") == ["301 /news", "301 /newsz", "404"]


def test_a_group_reference_beyond_the_pattern_is_empty_as_in_apache() -> None:
    """`RewriteRule ^tutorials.php help/tutorials$1` (audacity): Apache pastes nothing for `$1`."""
    text = "RewriteEngine On\nRewriteRule ^tutorials.php help/tutorials$1 [R=permanent]\n"
    assert answers(text, "/tutorials.php", "/tutorials.php/x?a=1", source=".htaccess") == [
        "301 /help/tutorials", "301 /help/tutorials?a=1"]


#: camunda-docs' static/.htaccess (issue 15): a `#` in a pattern (Apache matches the decoded path,
#: where a client's `%23` is `#`), in RedirectMatch too, and relative substitutions without RewriteBase
HASH_AND_RELATIVE = (
    "RewriteEngine on\n"
    "RewriteRule ^docs/internal/#back-pressure(.*)$ /docs/internal/#backpressure [R=301,L]\n"
    "RewriteRule ^docs/a[#x]b$ /docs/class [R=301,L]\n"
    "RewriteRule ^docs/zeebe/deps/$ docs/reference/dependencies/ [R=301,L]\n"
    "RedirectMatch 301 ^/old/\\#(.*)$ /new/$1\n"
)
HASH_TARGETS = ["/docs/internal/%23back-pressure", "/docs/internal/%23back-pressurex?a=1", "/docs/internal/",
                "/docs/a%23b", "/docs/axb", "/old/%23p", "/old/p"]


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
def test_a_hash_in_a_pattern_matches_as_a_real_apache_serves_it(tmp_path: Path) -> None:
    """A `#` in a RewriteRule or RedirectMatch regex is the path's `%23`, outside a class and in one."""
    port = free_port()
    ruleset, problems = load_apache(HASH_AND_RELATIVE, ".htaccess")
    assert codes(problems) == [(4, "import.unsupported")], [p.format() for p in problems]
    engine = Engine(ruleset)
    with _apache_with_alias(tmp_path, port, server="", htaccess=HASH_AND_RELATIVE):
        for target in HASH_TARGETS:
            theirs = not_found(served_answer(port, "GET", target, "localhost"))[:2]
            ours = not_found(engine_answer(engine, "GET", target, "localhost"))[:2]
            assert theirs == ours, target
        # without RewriteBase Apache sends the directory's filesystem path (the warning of line 4):
        # the import sends the path under `/`, as the file's author meant
        theirs = served_answer(port, "GET", "/docs/zeebe/deps/", "localhost")[:2]
        assert theirs == (301, f"{tmp_path / 'docroot'}/docs/reference/dependencies/")
    assert answers(HASH_AND_RELATIVE, "/docs/zeebe/deps/", source=".htaccess") == ["301 /docs/reference/dependencies/"]
    based = HASH_AND_RELATIVE.replace("RewriteEngine on\n", "RewriteEngine on\nRewriteBase /\n")
    assert codes(load_apache(based, ".htaccess")[1]) == []


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
@pytest.mark.parametrize("context", ["server", "htaccess"])
def test_exclusions_answer_as_a_real_apache_serves_them(tmp_path: Path, context: str) -> None:
    """EXCLUSIONS served by apache2 (mod_rewrite and mod_alias; in a VirtualHost, and as the
    DocumentRoot's .htaccess with per-directory patterns) and imported: the same answers."""
    text = EXCLUSIONS
    if context == "htaccess":
        text = re.sub(r"(RewriteRule )\^/", r"\1^", text)
    port = free_port()
    ruleset, problems = load_apache(text, ".htaccess" if context == "htaccess" else "site.conf")
    assert not [p for p in problems if p.is_error], problems
    engine = Engine(ruleset)
    with _apache_with_alias(tmp_path, port, server=text if context == "server" else "",
                            htaccess=text if context == "htaccess" else None):
        for target in EXCLUSION_TARGETS:
            theirs = not_found(served_answer(port, "GET", target, "localhost"))[:2]
            ours = not_found(engine_answer(engine, "GET", target, "localhost"))[:2]
            assert theirs == ours, target


@contextlib.contextmanager
def _apache_with_alias(tmp: Path, port: int, server: str, htaccess: str | None) -> Iterator[None]:
    """apache2 with mod_alias and mod_rewrite: `server` in its VirtualHost, `htaccess` (if any) as
    the DocumentRoot's .htaccess (AllowOverride All)."""
    assert APACHE is not None
    docroot = tmp / "docroot"
    docroot.mkdir()
    if htaccess is not None:
        (docroot / ".htaccess").write_text(htaccess)
    modules = "/usr/lib/apache2/modules"
    (tmp / "httpd.conf").write_text(
        f'ServerRoot "{tmp}"\nListen 127.0.0.1:{port}\nPidFile {tmp}/httpd.pid\nErrorLog {tmp}/error.log\n'
        f"DefaultRuntimeDir {tmp}\n"
        + "".join(f"LoadModule {m}_module {modules}/mod_{m}.so\n" for m in ("mpm_event", "authz_core", "alias",
                                                                            "rewrite"))
        + f'ServerName localhost\nDocumentRoot "{docroot}"\n<Directory "{docroot}">\nAllowOverride All\n'
        f"Require all granted\n</Directory>\n<VirtualHost 127.0.0.1:{port}>\nServerName localhost\n"
        f'DocumentRoot "{docroot}"\n{server}</VirtualHost>\n')
    for path in [tmp, *tmp.rglob("*")]:  # Apache's children drop root: they must read the tree
        path.chmod(0o755 if path.is_dir() else 0o644)
    proc = subprocess.Popen([APACHE, "-d", str(tmp), "-f", str(tmp / "httpd.conf"), "-DFOREGROUND"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = tmp / "error.log"
                    pytest.fail(f"apache2 did not start: {log.read_text() if log.exists() else ''}")
                time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -- internal rewrites that end the rules: WordPress's front controller ----------------------------------
#: A typical WordPress site's .htaccess (issue 15): the front controller rewrites every path that is no
#: file or directory to /index.php, so the canonical-host RewriteRule after it redirects only `/` and
#: mod_alias (which runs after mod_rewrite's internal rewrite) still answers its paths.
WORDPRESS = (
    "# BEGIN WordPress\n<IfModule mod_rewrite.c>\nRewriteEngine On\nRewriteBase /\n"
    "RewriteRule ^index\\.php$ - [L]\n"
    "RewriteCond %{REQUEST_FILENAME} !-f\n"
    "RewriteCond %{REQUEST_FILENAME} !-d\n"
    "RewriteRule . /index.php [L]\n"
    "</IfModule>\n# END WordPress\n"
    "Redirect 301 /old-post/ https://example.com/new-post/\n"
    "RedirectMatch 301 ^/category/(.*)$ /topics/$1\n"
    "Redirect 301 /Old-Page.html /new-page\n"
    "RedirectPermanent /docs https://docs.example.com\n"
    "RewriteCond %{HTTP_HOST} ^www\\.example\\.com$ [NC]\n"
    "RewriteRule ^(.*)$ https://example.com/$1 [R=301,L]\n"
    "ErrorDocument 404 /404.html\nOptions -Indexes\n"
)
WORDPRESS_TARGETS = ["/", "/x", "/x/y?a=1", "/index.php", "/index.php/", "/old-post/", "/old-post", "/old-post/a",
                     "/category/x", "/category/", "/Old-Page.html", "/Old-Page.html/a", "/docs", "/docs/a", "/docsx"]
#: In server context the internal rewrite ends the mapping: neither the RewriteRules after it nor
#: mod_alias (`Redirect /a`) answer its paths; `/` (which `^/(.+)$` does not match) still redirects.
FRONT_CONTROLLER_SERVER = (
    "RewriteEngine On\nRewriteRule ^/index\\.php$ - [L]\n"
    "RewriteCond %{REQUEST_FILENAME} !-f\nRewriteCond %{REQUEST_FILENAME} !-d\n"
    "RewriteRule ^/(.+)$ /index.php [L]\n"
    "RewriteRule ^/(.*)$ /z [R=301,L]\nRedirect 301 /a /y\n"
)
#: [END] in .htaccess: the rewritten path is not rewritten again (the rule before it that redirects
#: `x` does not run for it); an unanchored pattern is searched after the leading slash (`/old$`
#: matches `/a/old`, not `/old`).
FRONT_CONTROLLER_END = (
    "RewriteEngine On\nRewriteRule ^x$ /z [R=301,L]\nRewriteRule /old$ /new [R=301,L]\n"
    "RewriteRule ^(keep|a/old)$ - [L]\n"
    "RewriteRule \\.html$ /x [END]\nRewriteRule ^w/(.*)$ https://other.example/$1 [R=301,L]\n"
    "RedirectMatch 301 ^/m/(.*)$ /n/$1\n"
)
FRONT_CONTROLLER_TARGETS = ["/", "/a", "/a/b", "/b", "/x", "/index.php", "/old", "/a/old", "/keep", "/p.html",
                            "/m/p.html", "/m/q", "/q", "/w/p.html", "/w/q"]


def test_a_front_controller_imports_as_a_rule_that_redirects_nothing_with_one_warning() -> None:
    ruleset, problems = load_apache(WORDPRESS, "site/.htaccess")
    assert codes(problems) == [(8, "import.internal")], [p.format() for p in problems]
    assert "lines 6, 7" in problems[0].message and "/index.php" in problems[0].message
    got = answers(WORDPRESS, "/", "/x", "/category/x", "/docs/a", source="site/.htaccess", host="www.example.com")
    assert got == ["301 https://example.com/", "404", "301 /topics/x", "301 https://docs.example.com/a"]
    assert answers(WORDPRESS, "/", "/x", "/old-post/a", source="site/.htaccess", host="example.com") == [
        "404", "404", "301 https://example.com/new-post/a"]
    # without it the canonical-host rule would answer every path of www.example.com first
    without = WORDPRESS.replace("RewriteRule . /index.php [L]\n", "")
    assert answers(without, "/x", "/category/x", source="site/.htaccess", host="www.example.com") == [
        "301 https://example.com/x", "301 https://example.com/category/x"]


def test_an_internal_rewrite_whose_second_pass_redirects_is_not_imported() -> None:
    """In .htaccess the rewritten path goes through the rules again: a rule before the internal
    rewrite that redirects it (Apache then sends /b to /z), mod_alias that redirects it, or the rules
    after it when it does not match that path itself: not imported, a warning names the reason."""
    cases = [  # (the file, the line of the internal rewrite, what the warning says)
        ("RewriteRule ^x$ /z [R=301,L]\nRewriteRule . /x [L]\n", 3, "RewriteRule at line 2 redirects it"),
        ("RewriteRule . /x [L]\nRedirect 301 /x /y\n", 2, "`Redirect` at line 3 redirects it"),
        ("RewriteRule ^a/(.*)$ /x [L]\nRewriteRule ^x$ /z [R=301,L]\n", 2, "the RewriteRules after it may"),
        ("RewriteRule . /x$1 [L]\n", 2, "an internal rewrite: Apache serves another path"),  # not a literal path
    ]
    for text, line, why in cases:
        _, problems = load_apache("RewriteEngine On\n" + text, ".htaccess")
        internal = [p for p in problems if p.code == "import.internal"]
        assert len(internal) == 1 and internal[0].line == line, text
        assert why in internal[0].message and "not imported" in internal[0].message, internal[0].message
    # in server context there is no second pass: imported (and it stops mod_alias)
    text = "RewriteEngine On\nRewriteRule ^/x$ /z [R=301,L]\nRewriteRule . /x [L]\nRewriteRule ^/(.*)$ /w [R=301]\n"
    _, problems = load_apache(text, "a.conf")
    assert [p.line for p in problems if p.code == "import.internal" and "imported as" in p.message] == [3]
    # one that keeps no redirect from its paths: not imported
    ruleset, problems = load_apache("RewriteEngine On\nRewriteRule ^/a$ /b [R=301]\nRewriteRule . /x [L]\n", "a.conf")
    assert [r.status for r in ruleset.rules] == [301]
    assert [(p.line, "no redirect after it" in p.message) for p in problems if p.code == "import.internal"] == [
        (3, True)]


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
@pytest.mark.parametrize(("name", "text", "context", "hosts", "targets"), [
    ("wordpress", WORDPRESS, "htaccess", ["www.example.com", "example.com"], WORDPRESS_TARGETS),
    ("server", FRONT_CONTROLLER_SERVER, "server", ["localhost"], FRONT_CONTROLLER_TARGETS),
    ("end", FRONT_CONTROLLER_END, "htaccess", ["localhost"], FRONT_CONTROLLER_TARGETS),
])
def test_front_controllers_answer_as_a_real_apache_serves_them(
    tmp_path: Path, name: str, text: str, context: str, hosts: list[str], targets: list[str],
) -> None:
    ruleset, problems = load_apache(text, ".htaccess" if context == "htaccess" else "site.conf")
    assert not [p for p in problems if p.is_error], problems
    assert any(p.code == "import.internal" and "imported as" in p.message for p in problems), name
    engine = Engine(ruleset)
    port = free_port()
    with _apache_with_alias(tmp_path, port, server=text if context == "server" else "",
                            htaccess=text if context == "htaccess" else None):
        for host in hosts:
            for target in targets:
                theirs = not_found(served_answer(port, "GET", target, host))[:2]
                ours = not_found(engine_answer(engine, "GET", target, host))[:2]
                assert theirs == ours, (name, host, target)


# -- the http-to-https idioms: scheme conditions -----------------------------------------------------
def decide(ruleset: RuleSet, target: str, host: str | None = None, scheme: str | None = None) -> str:
    """`STATUS LOCATION` (or `STATUS`) for `path[?query]` over `scheme` (None: the gateway's http)."""
    path, _, query = target.partition("?")
    decision = Engine(ruleset).decide(Request("GET", path, query=query, host=host, scheme=scheme))
    status = decision.response.status
    return f"{status} {decision.location}" if decision.location else str(status)


@pytest.mark.parametrize(("cond", "scheme"), [
    ("%{HTTPS} off", "http"), ("%{HTTPS} !=on", "http"), ("%{HTTPS} !on", "http"), ("%{HTTPS} =off", "http"),
    ("%{HTTPS} ^off$ [NC]", "http"), ("%{SERVER_PORT} 80", "http"), ("%{SERVER_PORT} !443", "http"),
    ("%{SERVER_PORT} !^443$", "http"), ("%{REQUEST_SCHEME} =http", "http"), ("%{REQUEST_SCHEME} !https", "http"),
    ("%{HTTP:X-Forwarded-Proto} !https", "http"), ("%{ENV:HTTPS} !=on", "http"),
    ("%{HTTPS} on", "https"), ("%{HTTPS} =on", "https"), ("%{HTTPS} !off", "https"), ("%{SERVER_PORT} ^443$", "https"),
    ("%{REQUEST_SCHEME} =https", "https"), ("%{HTTP:X-Forwarded-Proto} =https", "https"),
])
def test_scheme_idioms_become_a_scheme_condition(cond: str, scheme: str) -> None:
    other = "https" if scheme == "http" else "http"
    text = f"RewriteEngine On\nRewriteCond {cond}\nRewriteRule ^(.*)$ {other}://www.example.com/$1 [R=301,L]\n"
    ruleset, problems = load_apache(text, ".htaccess")
    assert codes(problems) == [], [p.format() for p in problems]
    assert [r.scheme for r in ruleset.rules] == [scheme]
    assert decide(ruleset, "/a?x=1", scheme=scheme) == f"301 {other}://www.example.com/a?x=1"
    assert decide(ruleset, "/a", scheme=other) == "404"  # never sent to itself


def test_a_condition_on_a_scheme_variable_that_says_no_scheme_is_skipped() -> None:
    """`%{REQUEST_SCHEME} http` (unanchored) matches `https` too; `%{SERVER_PORT} ^8080$` neither;
    http and https together never hold."""
    text = ("RewriteCond %{REQUEST_SCHEME} http\nRewriteRule ^/a$ https://x.example/a [R=301]\n"
            "RewriteCond %{SERVER_PORT} ^8080$\nRewriteRule ^/b$ https://x.example/b [R=301]\n"
            "RewriteCond %{HTTPS} off\nRewriteCond %{HTTPS} on\nRewriteRule ^/c$ https://x.example/c [R=301]\n")
    _, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(2, "import.conditional"), (4, "import.conditional"), (7, "import.conditional")]
    assert "no request meets both" in next(p.message for p in problems if p.line == 7)


def test_a_forwarded_proto_equal_to_http_is_read_with_a_warning() -> None:
    """`=http` fails for a request without the header (straight to Apache); redirectory takes those as http."""
    text = "RewriteCond %{HTTP:X-Forwarded-Proto} =http\nRewriteRule ^/(.*)$ https://x.example/$1 [R=301,L]\n"
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(2, "import.scheme")]
    assert [r.scheme for r in ruleset.rules] == ["http"]


def test_a_virtual_host_redirect_to_https_on_its_own_name() -> None:
    """`https://%{HTTP_HOST}%{REQUEST_URI}` (or `%{SERVER_NAME}`) in a <VirtualHost> with one
    ServerName: that name, for that host alone; an https request is not sent to itself."""
    text = ("<VirtualHost *:80>\nServerName www.example.com\nRewriteEngine On\n"
            "RewriteCond %{HTTPS} off\nRewriteRule ^/docs/(.*)$ https://%{HTTP_HOST}/manual/$1 [R=301,L]\n"
            "RewriteCond %{HTTPS} !=on\nRewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [R=301,L]\n"
            "</VirtualHost>\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == [], [p.format() for p in problems]
    assert {r.scheme for r in ruleset.rules} == {"http"}
    host = "www.example.com"
    assert decide(ruleset, "/docs/a?x=1", host) == "301 https://www.example.com/manual/a?x=1"
    assert decide(ruleset, "/p/q?x=1", host) == "301 https://www.example.com/p/q?x=1"
    assert decide(ruleset, "/", host) == "301 https://www.example.com/"
    assert decide(ruleset, "/p/q", host, scheme="https") == "404"
    assert decide(ruleset, "/p/q", "other.example") == "404"


def test_the_request_uri_after_a_narrower_pattern_is_the_whole_path() -> None:
    text = "RewriteCond %{HTTPS} off\nRewriteRule ^/api/(v1|v2)/ https://api.example.com%{REQUEST_URI} [R=308,L]\n"
    ruleset, _ = load_apache(text, "site.conf")
    assert decide(ruleset, "/api/v1/users/7?x=1") == "308 https://api.example.com/api/v1/users/7?x=1"
    assert decide(ruleset, "/api/v3/users") == "404"


def test_a_literal_host_condition_gives_the_target_its_host() -> None:
    text = ("RewriteEngine On\nRewriteCond %{HTTP_HOST} ^old\\.example\\.org$ [NC]\nRewriteCond %{HTTPS} off\n"
            "RewriteRule ^(.*)$ https://%{HTTP_HOST}/$1 [R=301,L]\n"
            "RewriteCond %{HTTP_HOST} ^beam\\.example\\.org [NC]\nRewriteCond %{HTTPS} !on\n"
            "RewriteRule ^(.*)$ https://beam.example.org/$1 [L,R=301]\n")
    ruleset, problems = load_apache(text, ".htaccess")
    assert codes(problems) == []
    assert decide(ruleset, "/a/b", "old.example.org") == "301 https://old.example.org/a/b"
    assert decide(ruleset, "/a/b", "beam.example.org") == "301 https://beam.example.org/a/b"
    assert decide(ruleset, "/a/b", "beam.example.org", scheme="https") == "404"
    assert decide(ruleset, "/a/b", "other.example.org") == "404"


def test_the_request_host_where_it_is_not_known_is_a_warning_naming_the_line() -> None:
    text = ("RewriteEngine On\nRewriteCond %{HTTPS} !=on\nRewriteRule ^ https://%{HTTP_HOST}%{REQUEST_URI} [L,R=301]\n"
            "Redirect 301 /old /new\n")
    ruleset, problems = load_apache(text, "docs/.htaccess")
    assert codes(problems) == [(3, "import.variable")]
    assert "%{HTTP_HOST}, the request's host" in problems[0].message and "ServerName" in problems[0].message
    assert decide(ruleset, "/old/x") == "301 /new/x"  # the rest of the file imports


def test_canonical_host_snippets_say_why_they_cannot_be_rules() -> None:
    """www/non-www: a negated host condition, a target on the condition's group (`%1`), or `[OR]`
    of the scheme and the host: each skipped with a warning that says which."""
    text = ("RewriteCond %{HTTP_HOST} !^www\\. [NC]\nRewriteRule ^(.*)$ https://www.example.com/$1 [R=301,L]\n"
            "RewriteCond %{HTTP_HOST} ^www\\.(.+)$ [NC]\nRewriteRule ^ https://%1%{REQUEST_URI} [R=301,L]\n"
            "RewriteCond %{HTTPS} off [OR]\nRewriteCond %{HTTP_HOST} ^example\\.com$\n"
            "RewriteRule ^(.*)$ https://www.example.com/$1 [R=301,L]\n")
    _, problems = load_apache(text, "site.conf")
    assert codes(problems) == [(2, "import.conditional"), (4, "import.variable"), (7, "import.conditional")]
    said = {p.line: p.message for p in problems}
    assert "negated" in said[2] and "`%1`" not in said[2]
    assert "uses %1, a RewriteCond's group" in said[4]
    assert "[OR] (lines 5, 6)" in said[7]


def test_certbot_redirect_is_a_rule_per_server_name() -> None:
    """certbot's `RewriteCond %{SERVER_NAME} =a [OR]` / `=www.a` in a port-80 <VirtualHost>: a rule per
    name; a `Redirect / https://own-name/` there answers http only (the vhost listens for http)."""
    text = ("<VirtualHost *:80>\nServerName example.com\nServerAlias www.example.com\nRewriteEngine on\n"
            "RewriteCond %{SERVER_NAME} =www.example.com [OR]\nRewriteCond %{SERVER_NAME} =example.com\n"
            "RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]\n</VirtualHost>\n"
            "<VirtualHost *:80>\nServerName shop.example.com\nRedirect permanent / https://shop.example.com/\n"
            "</VirtualHost>\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == [], [p.format() for p in problems]
    assert {r.scheme for r in ruleset.rules} == {"http"}
    for host in ("example.com", "www.example.com", "shop.example.com"):
        assert decide(ruleset, "/a?b=1", host) == f"301 https://{host}/a?b=1"
        assert decide(ruleset, "/a", host, scheme="https") == "404"


def test_a_virtual_host_with_aliases_is_a_rule_per_name() -> None:
    """ServerName + literal ServerAlias names (immetoo/cfservers2 beta.m4n.nl): the vhost's rules
    once per name, `%{HTTP_HOST}` each one's own (Apache answers those names alone); a wildcard
    alias keeps the rules for every host, and their `%{HTTP_HOST}` target skipped (a `{host}` target of
    every host would answer hosts the vhost does not name)."""
    text = ("<VirtualHost *:80>\nServerName api.example.com\nServerAlias m.example.com\nServerAlias mobile.example.com\n"
            "RewriteEngine on\nRewriteRule ^/(.*)$ https://%{HTTP_HOST}/$1 [R=301,NE]\n</VirtualHost>\n"
            "<VirtualHost *:80>\nServerName www.example.org\nServerAlias example.org\n"
            "Redirect 301 /old http://docs.example.com/new\n</VirtualHost>\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert codes(problems) == [], [p.format() for p in problems]
    for host in ("api.example.com", "m.example.com", "mobile.example.com"):
        assert decide(ruleset, "/a/b?x=1", host) == f"301 https://{host}/a/b?x=1"
        assert decide(ruleset, "/a", host, scheme="https") == "404"
    for host in ("www.example.org", "example.org"):
        assert decide(ruleset, "/old/x", host) == "301 http://docs.example.com/new/x"
    assert decide(ruleset, "/a/b", "other.example.com") == "404"
    assert decide(ruleset, "/old", "other.example.com") == "404"
    wildcard = text.replace("ServerAlias m.example.com", "ServerAlias *.example.com")
    ruleset, problems = load_apache(wildcard, "site.conf")
    assert codes(problems) == [(6, "import.variable")]  # a rule of every host would answer more


def test_a_rule_before_a_scheme_rule_keeps_its_place() -> None:
    """A rule with a scheme comes before one without (docs/rules.md): the rule Apache tries first is
    written once per scheme, and keeps its place; so does a Redirect under a host's catch-all."""
    text = ("<VirtualHost *:80>\nServerName blog.example.com\nRewriteEngine on\n"
            "RewriteRule ^/old/(.*)$ /new/$1 [R=301,L]\nRewriteCond %{HTTPS} off\n"
            "RewriteRule ^/(.*)$ https://blog.example.com/$1 [R=301,L]\nRedirect 301 /gone /here\n</VirtualHost>\n")
    ruleset, problems = load_apache(text, "site.conf")
    assert not [p for p in problems if p.code == "import.order"]
    host = "blog.example.com"
    assert decide(ruleset, "/old/a", host) == "301 /new/a"
    assert decide(ruleset, "/old/a", host, scheme="https") == "301 /new/a"
    assert decide(ruleset, "/gone", host) == "301 https://blog.example.com/gone"  # mod_rewrite first
    assert decide(ruleset, "/gone", host, scheme="https") == "301 /here"


def test_an_exclusion_after_a_request_uri_condition_with_nc() -> None:
    """`RewriteCond %{REQUEST_URI} ^/en/ [NC]` + `RewriteRule ^ - [L]`: an exclusion of /en/ in any case."""
    text = ("RewriteEngine On\nRewriteCond %{REQUEST_URI} ^/en/ [NC]\nRewriteRule ^ - [L]\n"
            "RewriteCond %{HTTPS} off\nRewriteRule ^(.*)$ https://www.example.org/$1 [R=301,L]\n")
    ruleset, problems = load_apache(text, ".htaccess")
    assert codes(problems) == []
    assert [decide(ruleset, p) for p in ("/en/a", "/EN/a", "/fr/a")] == [
        "404", "404", "301 https://www.example.org/fr/a"]


@pytest.mark.skipif(APACHE is None, reason="apache2 is not installed (apt-get install -y apache2)")
@pytest.mark.parametrize("context", ["server", "htaccess"])
def test_scheme_idioms_answer_plain_http_as_a_real_apache_serves_them(tmp_path: Path, context: str) -> None:
    """The http-to-https snippets served by apache2 (plain http, as the gateway's own listener) and
    imported: the same answers for each host; the import's https requests are not redirected to themselves."""
    text = (
        "RewriteEngine On\n"
        "RewriteCond %{REQUEST_URI} ^/en/ [NC]\nRewriteRule ^ - [L]\n"
        "RewriteCond %{HTTP_HOST} ^old\\.example\\.org$ [NC]\nRewriteCond %{HTTPS} off\n"
        "RewriteRule ^(.*)$ https://%{HTTP_HOST}/$1 [R=301,L]\n"
        "RewriteCond %{HTTP:X-Forwarded-Proto} !https\nRewriteCond %{HTTP_HOST} ^example\\.org$\n"
        "RewriteRule ^ https://example.org%{REQUEST_URI} [L,R=301]\n"
        "RewriteCond %{SERVER_NAME} =a.example.org [OR]\nRewriteCond %{SERVER_NAME} =b.example.org\n"
        "RewriteCond %{REQUEST_SCHEME} =http\n"
        "RewriteRule ^ https://%{SERVER_NAME}%{REQUEST_URI} [END,NE,R=permanent]\n"
        "RewriteCond %{HTTPS} !=on\nRewriteCond %{HTTP_HOST} ^www\\.example\\.org$\n"
        "RewriteRule ^/?docs/(.*)$ https://www.example.org/manual/$1 [R=308,L]\n"
    )
    if context == "server":
        text = text.replace("^/?docs", "^/docs").replace("^(.*)$", "^/(.*)$")
    ruleset, problems = load_apache(text, "site.conf" if context == "server" else ".htaccess")
    assert codes(problems) == [], [p.format() for p in problems]
    engine = Engine(ruleset)
    targets = ["/", "/a", "/a/b?x=1", "/en/x", "/EN/x", "/docs/x", "/docs/x?y=2"]
    hosts = ["old.example.org", "example.org", "a.example.org", "b.example.org", "www.example.org", "localhost"]
    port = free_port()
    with _apache_with_alias(tmp_path, port, server=text if context == "server" else "",
                            htaccess=text if context == "htaccess" else None):
        for host in hosts:
            for target in targets:
                theirs = not_found(served_answer(port, "GET", target, host))[:2]
                ours = not_found(engine_answer(engine, "GET", target, host))[:2]
                assert theirs == ours, (host, target)
    redirected = [(h, t) for h in hosts for t in targets if engine_answer(engine, "GET", t, h)[0] != 404]
    assert len(redirected) > 20  # the snippets redirect most of these over http
    for host, target in redirected:
        path, _, query = target.partition("?")
        assert engine.decide(Request("GET", path, query, host=host, scheme="https")).outcome != "redirect"
