"""Host-specific regex rules: a `from_regex` that starts with `^//` is matched against
`//host/path`, after the host's exact and pattern rules and before any-host rules (docs/rules.md,
Precedence). The importers write one for a regex of an nginx server or Apache virtual host of one
name (`importers._common._host_form`)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_process import cli, start_serve
from redirectory.rules.engine import Engine, Request
from redirectory.rules.export import nginx
from redirectory.rules.export_apache import apache
from redirectory.rules.importers._common import _host_form
from redirectory.rules.matcher import Matcher
from redirectory.rules.model import Rule
from redirectory.rules.parsing import loads
from redirectory.rules.validation import validate

TABLE = r"""
rules:
  - from: //a.example/x/exact
    to: /host-exact
    status: 308
  - from: //a.example/x/{p}/tail
    to: /host-pattern
    status: 308
  - from_regex: ^//a\.example/x/(?P<rest>.*)$
    to: /host-regex/{rest}
    status: 308
  - from: /x/any
    to: /any-exact
    status: 308
  - from_regex: ^/x/(?P<rest>.*)$
    to: /any-regex/{rest}
    status: 308
  - from_regex: ^//(www\.)?b\.example/(?P<rest>.*)$
    to: https://c.example/{rest}
    status: 308
"""


def answer(engine: Engine, host: str | None, path: str) -> str | None:
    return engine.decide(Request("GET", path, host=host)).location


def test_precedence_host_exact_pattern_regex_then_any_host() -> None:
    ruleset, problems = loads(TABLE, "yaml", "t.yaml")
    assert not [p for p in validate(ruleset, "t.yaml") if p.is_error]
    engine = Engine(ruleset)
    assert answer(engine, "a.example", "/x/exact") == "/host-exact"
    assert answer(engine, "a.example", "/x/1/tail") == "/host-pattern"
    assert answer(engine, "a.example", "/x/any") == "/host-regex/any"  # before any-host rules
    assert answer(engine, "A.Example:8080", "/x/y") == "/host-regex/y"  # host compared as normalised
    assert answer(engine, "other.example", "/x/any") == "/any-exact"
    assert answer(engine, "other.example", "/x/y") == "/any-regex/y"
    assert answer(engine, None, "/x/y") == "/any-regex/y"
    assert answer(engine, "www.b.example", "/q") == "https://c.example/q"  # a host written as a regex
    assert answer(engine, "b.example", "/q") == "https://c.example/q"
    assert answer(engine, "xb.example", "/q") is None


def test_a_host_regex_that_loops_is_an_error() -> None:
    ruleset, _ = loads("rules:\n  - from_regex: ^//a\\.example/p/(?P<x>.*)$\n    to: /p/{x}\n    status: 308\n",
                       "yaml", "t.yaml")
    assert [p.code for p in validate(ruleset, "t.yaml") if p.is_error] == ["loop"]


def test_exports_carry_host_regexes_of_a_literal_host_and_name_the_others() -> None:
    """Real nginx and Apache answer them as the gateway does: tests/test_export_differential.py."""
    ruleset, _ = loads(TABLE, "yaml", "t.yaml")
    for export, code in ((nginx(ruleset), "nginx.host-regex"), (apache(ruleset), "apache.host-regex")):
        (skipped,) = export.skipped  # the host written as a regex: ^//(www\.)?b\.example/
        assert skipped.code == code and "b\\.example" in skipped.message
    assert '"~^a\\\\.example(?=/)/x/(.*)$"' in nginx(ruleset).map_conf
    assert "RewriteCond %{HTTP_HOST} ^a\\.example" in apache(ruleset).conf


# -- the importers' host form ----------------------------------------------------------------------
_ATOMS = st.sampled_from(["a", "b", "/", ".", ".*", "a+", "b?", "(a)", "(b|a)", "[ab]", r"\.", "$", "x"])


@settings(max_examples=300, deadline=None)
@given(atoms=st.lists(_ATOMS, min_size=1, max_size=5), anchored=st.booleans(),
       paths=st.lists(st.text("ab/.x", min_size=0, max_size=6).map(lambda t: "/" + t), min_size=5, max_size=10),
       hosts=st.lists(st.sampled_from(["h.example", "h.examplea", "a.h.example", "g.example"]), min_size=1))
def test_host_form_answers_the_regex_for_its_host_alone(atoms: list[str], anchored: bool, paths: list[str],
                                                         hosts: list[str]) -> None:
    regex = ("^" if anchored else "") + "".join(atoms)
    try:
        re.compile(regex)
    except re.error:
        return
    form = _host_form(regex, "h.example", None)
    if form is None:
        return
    matcher = Matcher([Rule(to="/t", source_regex=form, status=308, id="r")])
    for host in hosts:
        for path in paths:
            want = host == "h.example" and re.search(regex, path) is not None
            assert (matcher.match(path, "GET", host) is not None) == want, (regex, form, host, path)


def test_an_nginx_server_of_one_name_imports_host_regexes(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text("server {\n  server_name a.example;\n"
                    "  location ~* \\.(css|js)$ { return 301 https://cdn.example$request_uri; }\n"
                    "  rewrite ^/old/(.*)$ /new/$1 permanent;\n}\n")
    database = f"sqlite:///{tmp_path}/rules.db"
    done = cli("rules", "import", str(conf), "--format", "nginx", "--database", database)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "answers every host" not in done.stderr
    served = start_serve(tmp_path, database=database)
    try:
        with httpx.Client(base_url=served.base, follow_redirects=False, timeout=5) as client:
            response = client.get("/old/a", headers={"host": "a.example"})
            assert (response.status_code, response.headers["location"]) == (301, "/new/a")
            response = client.get("/s/site.CSS?v=1", headers={"host": "a.example"})
            assert (response.status_code, response.headers["location"]) == (301, "https://cdn.example/s/site.CSS?v=1")
            assert client.get("/old/a", headers={"host": "b.example"}).status_code == 404
            assert client.get("/s/site.css", headers={"host": "b.example"}).status_code == 404
    finally:
        served.stop()

