"""Importers for Cloudflare Bulk Redirects list CSVs and the WordPress Redirection plugin's exports.

What each line or entry becomes and how the rules answer (through the real engine), what is
skipped with a warning naming its line, hypothesis on the parsers (never raise; every problem has
a line), a real Cloudflare list CSV (tests/data/real/) and the CLI end to end: `rules import
--format cloudflare-csv` into SQLite, then a real `redirectory serve` answering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_process import cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import (
    FOREIGN_FORMATS,
    detect_import_format,
    load_any,
    load_cloudflare_csv,
    load_wordpress_redirection,
)
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.validation import validate

REAL = Path(__file__).parent / "data" / "real"


def answer(ruleset: RuleSet, path: str, host: str | None = None, query: str = "") -> tuple[int, str | None]:
    response = Engine(ruleset).decide(Request("GET", path, query, host)).response
    return response.status, dict(response.headers).get("location")


def warnings(problems: list[Problem]) -> dict[int | None, list[str]]:
    out: dict[int | None, list[str]] = {}
    for p in problems:
        assert not p.is_error, p
        out.setdefault(p.line, []).append(p.code or "")
    return out


def valid(ruleset: RuleSet, problems: list[Problem]) -> None:
    errors = [p for p in [*problems, *validate(ruleset, "x")] if p.is_error]
    assert not errors, errors


# -- Cloudflare -----------------------------------------------------------------------------------
def test_cloudflare_formats_are_registered_and_need_format() -> None:
    assert "cloudflare-csv" in FOREIGN_FORMATS and "wordpress-redirection" in FOREIGN_FORMATS
    assert detect_import_format("bulk.csv") is None and detect_import_format("redirection.json") is None


def test_cloudflare_docs_example_lines() -> None:
    text = ("example.com/contacts,https://example.net/contact-us,301,,,,\n"
            "example.com/about,https://example.net/about-us,,FALSE,TRUE,,\n"
            "example.com/docs,https://example.com/draft-docs,302,,TRUE\n")
    ruleset, problems = load_cloudflare_csv(text, "cf.csv")
    valid(ruleset, problems)
    assert [r.to_dict() for r in ruleset.rules] == [
        {"from": "//example.com/contacts", "to": "https://example.net/contact-us", "status": 301, "query": "drop"},
        {"from": "//example.com/about", "to": "https://example.net/about-us", "status": 301, "query": "drop"},
        {"from": "//example.com/docs", "to": "https://example.com/draft-docs", "status": 307, "query": "drop"},
    ]
    assert warnings(problems) == {2: ["import.subdomains"], 3: ["status.302-converted", "import.subdomains"]}
    assert answer(ruleset, "/contacts", "example.com", "a=1") == (301, "https://example.net/contact-us")
    assert answer(ruleset, "/contacts", "other.example")[0] == 404
    assert answer(ruleset, "/contacts/x", "example.com")[0] == 404  # no subpath matching


def test_cloudflare_subpath_matching_and_path_suffix() -> None:
    text = ("source_url,target_url,status_code,preserve_query_string,include_subdomains,subpath_matching,"
            "preserve_path_suffix\n"
            "example.com/a/,https://example.net/b/,308,TRUE,,TRUE,TRUE\n"
            "example.com/c,/d,301,,,true,true\n"
            "example.com/e,/f,301,,,true,false\n"
            "example.com/a/deeper/,/g/,307,,,true,true\n"
            "docs.example.com,https://example.net/docs,301,,,TRUE,TRUE\n")
    ruleset, problems = load_cloudflare_csv(text, "cf.csv")
    valid(ruleset, problems)
    host = "example.com"
    assert answer(ruleset, "/a/", host) == (308, "https://example.net/b/")
    assert answer(ruleset, "/a/x/y", host, "q=1") == (308, "https://example.net/b/x/y?q=1")
    assert answer(ruleset, "/a", host)[0] == 404  # `/a` is not under `/a/`
    assert answer(ruleset, "/a/deeper/z", host) == (307, "/g/z")  # the more specific path wins
    assert answer(ruleset, "/c", host) == (301, "/d")
    assert answer(ruleset, "/c/", host) == (301, "/d/")
    assert answer(ruleset, "/c/x/y", host, "q=1") == (301, "/d/x/y")  # preserve_query_string false
    assert answer(ruleset, "/cc", host)[0] == 404  # whole segments only
    assert answer(ruleset, "/e/x", host) == (301, "/f")  # no suffix
    assert answer(ruleset, "/", "docs.example.com") == (301, "https://example.net/docs")
    assert answer(ruleset, "/guide/x", "docs.example.com") == (301, "https://example.net/docs/guide/x")


def test_cloudflare_lines_it_cannot_represent_are_skipped_with_their_line() -> None:
    text = ("/nohost,/x\n"
            "example.com/q?id=1,/x\n"
            "example.com:8080/p,/x\n"
            "example.com/s,magnet:?xt=urn:x\n"
            "example.com/t,/x,200\n"
            "example.com/u,/x,abc\n"
            "example.com/v,/x,301,maybe\n"
            "example.com/w,/x?y=1,301,TRUE\n"
            "example.com/y,/x,301,,,,,extra\n"
            "http://example.com/ok,/x\n"
            "https://example.com/ok,/other\n")
    ruleset, problems = load_cloudflare_csv(text, "cf.csv")
    valid(ruleset, problems)
    found = warnings(problems)
    assert sorted(found) == list(range(1, 12)), found
    assert found[10] == ["import.scheme"] and "import.duplicate" in found[11]
    assert [r.to_dict()["from"] for r in ruleset.rules] == ["//example.com/ok"]


def test_cloudflare_file_without_redirects_is_an_error() -> None:
    _ruleset, problems = load_cloudflare_csv("/a,/b\n", "cf.csv")
    assert any(p.is_error and p.code == "import.empty" for p in problems)
    _ruleset, problems = load_cloudflare_csv("", "cf.csv")
    assert [p.code for p in problems if p.is_error] == ["import.empty"]


def test_real_cloudflare_list() -> None:
    text = (REAL / "unionai-docs-redirects.csv").read_text()
    ruleset, problems = load_any(text, "cloudflare-csv", "unionai.csv")
    valid(ruleset, problems)
    assert len(ruleset.rules) == 30
    host = "docs.union.ai"
    assert answer(ruleset, "/administration", host) == (307, "https://www.union.ai/docs/byoc/user-guide/administration")
    assert answer(ruleset, "/byoc/api/sdk/x", host, "a=1") == (
        307, "https://www.union.ai/docs/byoc/api-reference/union-sdk/x?a=1")
    assert answer(ruleset, "/unknown/page", host) == (307, "https://www.union.ai/docs/unknown/page")


# -- WordPress Redirection ------------------------------------------------------------------------
def redirect(ident: int, url: str, target: Any = "/new", **fields: Any) -> dict[str, Any]:
    flags = fields.pop("flags", {})
    regex = fields.pop("regex", False)
    return {"id": ident, "url": url, "match_url": "regex" if regex else url.lower(),
            "match_data": {"source": {"flag_query": "exact", "flag_case": False, "flag_trailing": False,
                                      "flag_regex": regex, **flags}},
            "action_code": 301, "action_type": "url", "action_data": {"url": target} if isinstance(target, str)
            else target, "match_type": "url", "title": "", "hits": 0, "regex": regex, "group_id": 1,
            "position": ident, "last_access": "-", "enabled": True, **fields}


def export(*redirects: dict[str, Any], groups: list[dict[str, Any]] | None = None) -> str:
    groups = groups or [{"id": 1, "name": "Redirections", "redirects": len(redirects), "module_id": 1,
                         "moduleName": "WordPress", "enabled": True}]
    return json.dumps({"plugin": {"version": "5.4.2", "date": "Mon, 01 Jan 2024 00:00:00 +0000"},
                       "groups": groups, "redirects": list(redirects)}, indent=4)


def test_wordpress_json_plain_flags() -> None:
    text = export(
        redirect(1, "/old", "/new"),
        redirect(2, "/Case/", "https://example.org/c", flags={"flag_case": True, "flag_trailing": True,
                                                               "flag_query": "pass"}),
        redirect(3, "https://old.example/full?x", "/q"),
        redirect(4, "/ignore", "/i?keep=1", flags={"flag_query": "ignore"}),
    )
    ruleset, problems = load_wordpress_redirection(text, "wp.json")
    valid(ruleset, problems)
    assert answer(ruleset, "/old") == (301, "/new")
    assert answer(ruleset, "/old/")[0] == 404  # the trailing slash counts without flag_trailing
    assert answer(ruleset, "/case/") == (301, "https://example.org/c")
    assert answer(ruleset, "/CASE", query="a=1") == (301, "https://example.org/c?a=1")  # pass
    assert answer(ruleset, "/ignore", query="a=1") == (301, "/i?keep=1")
    found = warnings(problems)
    lines = {line for line, codes in found.items() if "import.conditional" in codes}
    assert len(lines) == 1  # the source with a query, on the line its entry starts
    assert text.splitlines()[lines.pop() - 1].strip() == "{"


def test_wordpress_json_regex_and_order() -> None:
    text = export(
        redirect(1, "^/blog/(\\d+)/(.*)$", "/posts/$2?id=$1", regex=True, action_code=302),
        redirect(2, "/blog/1/x", "/never"),
        redirect(3, "^/prefix", "/newprefix", regex=True),
        redirect(4, "/tag/(.*)", "/topics/$1", regex=True, flags={"flag_case": True}),
        redirect(5, "/look(?=ahead)", "/x", regex=True),
    )
    ruleset, problems = load_wordpress_redirection(text, "wp.json")
    valid(ruleset, problems)
    assert answer(ruleset, "/blog/12/hello") == (307, "/posts/hello?id=12")
    assert answer(ruleset, "/blog/1/x") == (307, "/posts/x?id=1")  # the earlier regex answers it
    assert answer(ruleset, "/prefix/page", query="a=1") == (301, "/newprefix/page?a=1")  # the rest follows
    assert answer(ruleset, "/TAG/a/b") == (301, "/topics/a/b")
    codes = [c for cs in warnings(problems).values() for c in cs]
    assert {"import.shadowed", "import.regex-anchor", "import.regex", "status.302-converted"} <= set(codes)


def test_wordpress_json_skips_what_is_not_a_url_redirect() -> None:
    text = export(
        redirect(1, "/login", {"logged_in": "/a", "logged_out": "/b"}, match_type="login"),
        redirect(2, "/referrer", {"referrer": "x", "url_from": "/a", "url_notfrom": ""}, match_type="referrer"),
        redirect(3, "/gone", {"url": ""}, action_type="error", action_code=410),
        redirect(4, "/missing", {"url": ""}, action_type="error", action_code=404),
        redirect(5, "/random", "", action_type="random"),
        redirect(6, "/pass", "/elsewhere", action_type="pass", action_code=0),
        redirect(7, "/nothing", "", action_type="nothing"),
        redirect(8, "/off", "/x", enabled=False),
        redirect(9, "/group-off", "/x", group_id=2),
        redirect(10, "/kept", "/x"),
        groups=[{"id": 1, "name": "a", "module_id": 1, "enabled": True},
                {"id": 2, "name": "b", "module_id": 1, "enabled": False}],
    )
    ruleset, problems = load_wordpress_redirection(text, "wp.json")
    valid(ruleset, problems)
    assert [r.to_dict()["from"] for r in ruleset.rules] == ["/kept"]
    skipped = [line for line, codes in warnings(problems).items() if any(c != "import.query-exact" for c in codes)]
    assert len(skipped) == 9


def test_wordpress_csv_export() -> None:
    text = ('source,target,regex,code,type,hits,title,status\n'
            '"/old","/new",0,301,"url",0,"","active"\n'
            '"^/cat/(.*)$","/category/$1",1,308,"url",4,"Moved ""cats""","active"\n'
            '"/gone","",0,410,"error",0,"","active"\n'
            '"/off","/x",0,301,"url",0,"","disabled"\n'
            '"/auto/(.*)","/a/$1"\n')
    ruleset, problems = load_wordpress_redirection(text, "wp.csv")
    valid(ruleset, problems)
    assert answer(ruleset, "/old") == (301, "/new")
    assert answer(ruleset, "/cat/x/y") == (308, "/category/x/y")
    assert answer(ruleset, "/auto/z") == (301, "/a/z")  # no regex column: the characters decide
    found = warnings(problems)
    assert "import.status-skipped" in found[4] and "import.disabled" in found[5]
    semicolons, _ = load_wordpress_redirection("/a;/b\n/c;/d\n", "wp.csv")
    assert [r.to_dict()["to"] for r in semicolons.rules] == ["/b", "/d"]


def test_wordpress_empty_or_wrong_files_are_errors() -> None:
    for text in ('{"plugin": {}, "groups": []}', "[1, 2]", "{not json", "", 'source,target\n'):
        _ruleset, problems = load_wordpress_redirection(text, "wp")
        errors = [p for p in problems if p.is_error]
        assert errors and all(p.line for p in errors), (text, problems)


# -- hypothesis: never raise, every problem has a line --------------------------------------------
CELL = st.text(alphabet=st.sampled_from(list("/aZ.:?#{}$^()*\\\",; \n%é1")), max_size=12)
FLAG = st.sampled_from(["", "TRUE", "true", "FALSE", "false", "yes"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.tuples(CELL, CELL, st.sampled_from(["", "301", "302", "307", "308", "410", "x"]),
                               FLAG, FLAG, FLAG, FLAG), max_size=6), raw=st.text(max_size=60))
def test_cloudflare_parser_never_raises(rows: list[tuple[str, ...]], raw: str) -> None:
    for text in ("\n".join(",".join(json.dumps(c) if "," in c else c for c in row) for row in rows), raw):
        ruleset, problems = load_cloudflare_csv(text, "cf.csv")
        assert all(p.line is not None for p in problems), problems
        assert not any(p.code == "internal" for p in problems), problems
        validate(ruleset, "cf.csv")


ENTRY = st.fixed_dictionaries({
    "id": st.integers(0, 5), "url": CELL, "action_code": st.sampled_from([301, 302, 307, 308, 404, 410, "x", None]),
    "action_type": st.sampled_from(["url", "error", "pass", "random", "nothing", None]),
    "action_data": st.one_of(CELL.map(lambda u: {"url": u}), CELL, st.none()),
    "match_type": st.sampled_from(["url", "login", "referrer", None]), "regex": st.booleans(),
    "position": st.integers(0, 5), "enabled": st.booleans(),
    "match_data": st.one_of(st.none(), st.fixed_dictionaries({"source": st.fixed_dictionaries({
        "flag_query": st.sampled_from(["exact", "ignore", "pass", "bogus"]), "flag_case": st.booleans(),
        "flag_trailing": st.booleans(), "flag_regex": st.booleans()})})),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(entries=st.lists(ENTRY, max_size=5), rows=st.lists(st.lists(CELL, max_size=8), max_size=5),
       raw=st.text(max_size=60))
def test_wordpress_parser_never_raises(entries: list[dict[str, Any]], rows: list[list[str]], raw: str) -> None:
    texts = [json.dumps({"plugin": {}, "groups": [], "redirects": entries}, indent=2),
             "\n".join(",".join(json.dumps(c) for c in row) for row in rows), raw]
    for text in texts:
        ruleset, problems = load_wordpress_redirection(text, "wp")
        assert all(p.line is not None for p in problems), problems
        assert not any(p.code == "internal" for p in problems), problems
        validate(ruleset, "wp")


# -- end to end -----------------------------------------------------------------------------------
def test_cli_import_then_serve(tmp_path: Path) -> None:
    csv_file = tmp_path / "bulk.csv"
    csv_file.write_text("example.com/old,https://example.net/new,308,TRUE\n"
                        "example.com/docs/,https://example.net/d/,301,,,TRUE,TRUE\n"
                        "example.com/bad?x=1,/y\n")
    wp_file = tmp_path / "redirection.json"
    wp_file.write_text(export(redirect(1, "^/wp/(.*)$", "/press/$1", regex=True, action_code=308)))
    database = f"sqlite:///{tmp_path}/rules.db"
    done = cli("rules", "import", str(csv_file), "--database", database)
    assert done.returncode != 0 and "nothing was changed" in done.stderr, done.stderr  # .csv alone: our own CSV
    assert "--format cloudflare-csv" in done.stderr and done.stderr.count(f"{csv_file}:1:") == 1, done.stderr
    done = cli("rules", "import", str(csv_file), "--format", "cloudflare-csv", "--database", database)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "imported 3 rule(s)" in done.stdout and f"{csv_file}:3" in done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    done = cli("rules", "import", str(wp_file), "--format", "wordpress-redirection", "--database", database)
    assert done.returncode == 0 and "imported 1 rule(s)" in done.stdout, done.stdout + done.stderr
    served = start_serve(tmp_path, database=database)
    try:
        with httpx.Client(base_url=served.base, follow_redirects=False, timeout=5) as client:
            response = client.get("/old?a=1", headers={"host": "example.com"})
            assert (response.status_code, response.headers["location"]) == (308, "https://example.net/new?a=1")
            response = client.get("/docs/guide/x", headers={"host": "example.com"})
            assert (response.status_code, response.headers["location"]) == (301, "https://example.net/d/guide/x")
            assert client.get("/old", headers={"host": "other.example"}).status_code == 404
            response = client.get("/wp/a/b")
            assert (response.status_code, response.headers["location"]) == (308, "/press/a/b")
    finally:
        served.stop()
    done = cli("rules", "import", str(tmp_path / "missing.csv"), "--format", "wordpress-redirection",
               "--database", database)
    assert done.returncode != 0 and "Traceback" not in done.stderr
