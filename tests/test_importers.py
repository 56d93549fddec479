"""Importers for nginx, Apache and Netlify redirect configurations (`rules.importers`)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rulefile import read_rule_file
from redirectory.rules.importers import (
    IMPORT_FORMATS,
    detect_import_format,
    load_any,
    load_apache,
    load_netlify,
    load_nginx,
)
from redirectory.rules.model import Problem, Rule, RuleSet
from redirectory.rules.parsing import loads
from redirectory.rules.validation import validate


def rules_of(ruleset: RuleSet) -> list[tuple[int | None, dict[str, Any]]]:
    return [(r.line, r.to_dict()) for r in ruleset.rules]


def warnings_of(problems: list[Problem]) -> list[tuple[int | None, str]]:
    """The warnings; no error but the one a file that yields no rule at all gets (`import.empty`)."""
    assert all(not p.is_error or p.code == "import.empty" for p in problems), [p.format() for p in problems]
    return [(p.line, p.code) for p in problems if p.code != "import.empty"]


# -- dispatch ------------------------------------------------------------------------------------
def test_formats_and_dispatch() -> None:
    assert IMPORT_FORMATS == ("yaml", "json", "csv", "nginx", "apache", "netlify", "netlify-toml", "vercel",
                              "cloudflare-csv", "wordpress-redirection")
    yaml_text = "rules:\n  - from: /a\n    to: /b\n"
    assert load_any(yaml_text, "yaml", "f") == loads(yaml_text, "yaml", "f")
    assert load_any("from,to\n/a,/b\n", "csv", "f")[0].rules[0].to == "/b"
    assert load_any('{"rules": []}', "json", "f") == (RuleSet(), [])
    assert load_any("location = /a { return 301 /b; }", "nginx", "f")[0].rules[0].source == "/a"
    assert load_any("Redirect 301 /a /b", "apache", "f")[0].rules[0].source == "/a"
    assert load_any("/a /b", "netlify", "f")[0].rules[0].source == "/a"
    ruleset, problems = load_any("x", "caddy", "f")
    assert ruleset == RuleSet() and problems[0].is_error and "nginx, apache, netlify" in problems[0].message


def test_detect_by_name() -> None:
    assert detect_import_format("site/_redirects") == "netlify"
    assert detect_import_format("/srv/www/.htaccess") == "apache"
    assert detect_import_format("nginx.conf") is None


# -- nginx ---------------------------------------------------------------------------------------
NGINX_CONF = r"""# a comment
map $uri $new_uri {
    default "";
    /old-a      /new-a;       # an exact entry
    "/old b"    /new-b;
    ~^/cat/(\d+)$ /category/$1;
}
server {
    listen 80;
    server_name a.example;
    location = /exact { return 301 /target; }
    location /pre { return 308 https://x.example/landing; }
    location /all/ { return 301 https://new.example$request_uri; }
    location ~ ^/item/([0-9]+)/(\w+)$ { return 307 /items/$1?tab=$2; }
    location ~* "^/CI/(.*)$" { return 308 /ci/$1; }
    rewrite ^/rw/(.*)$ /rewritten/$1 permanent;
    rewrite ^/int/(.*)$ /internal/$1 last;
    if ($new_uri) { return 301 $new_uri; }
    location /h { return 301 https://$host/x; }
    location /hello { return 200 "hello"; }
    proxy_pass http://backend;
}
server {
    server_name b.example c.example;
    location = /multi { return 303 /m; }
    return 410;
}
"""


def test_nginx_constructs() -> None:
    ruleset, problems = load_nginx(NGINX_CONF, "n.conf")
    assert rules_of(ruleset) == [
        # nginx's `return` drops the request's query unless its URL names it ($request_uri, $args...);
        # a prefix location also matches longer names (`/pre` matches `/prefix`): a regex, ordered by
        # `priority` as nginx picks (server rewrites and `if`s, `=`, `^~`, regex locations, prefixes)
        (4, {"from": "//a.example/old-a", "to": "/new-a", "status": 301, "query": "drop"}),
        (5, {"from": "//a.example/old%20b", "to": "/new-b", "status": 301, "query": "drop"}),
        (6, {"from_regex": r"^//a\.example(?:/cat/(?P<g1>\d+)$)", "to": "/category/{g1}", "status": 301,
             "query": "drop", "priority": 5}),
        (11, {"from": "//a.example/exact", "to": "/target", "status": 301, "query": "drop"}),
        # a regex of a server of one name is host-specific: matched against //a.example/path
        (12, {"from_regex": r"^//a\.example(?:/pre)", "to": "https://x.example/landing", "status": 308,
              "query": "drop", "priority": 1}),
        (13, {"from_regex": r"^//a\.example(?:/(?P<uri>all/.*)$)", "to": "https://new.example/{uri}",
              "status": 301, "priority": 2}),
        (14, {"from_regex": r"^//a\.example(?:/item/(?P<g1>[0-9]+)/(?P<g2>\w+)$)", "to": "/items/{g1}?tab={g2}",
              "status": 307, "query": "drop", "priority": 4}),
        # line 15, `~* ^/CI/(.*)$` -> /ci/$1, would match its own target again (nginx loops too): skipped
        (16, {"from_regex": r"^//a\.example(?:/rw/(?P<g1>.*)$)", "to": "/rewritten/{g1}", "status": 301,
              "priority": 5}),
        # $host in a server of one name is that name
        # a plain-http server (no `listen`: port 80) sending to https on its own name: http requests only
        (19, {"from_regex": r"^//a\.example(?:/h)", "to": "https://a.example/x", "status": 301, "query": "drop",
              "scheme": "http"}),
        # `location /hello` answers itself (200) before `location /h` for its paths: not redirected; one
        # rule per scheme, as redirectory tries the regex with a scheme (line 19) before one without
        (20, {"from_regex": r"^//a\.example(?:/hello)", "to": "", "status": 404, "scheme": "http", "priority": 3}),
        (20, {"from_regex": r"^//a\.example(?:/hello)", "to": "", "status": 404, "scheme": "https", "priority": 3}),
        # line 25: the server's own `return 410` (line 26) answers every request of b.example and
        # c.example before nginx picks a location: /multi is never redirected
    ]
    assert warnings_of(problems) == [
        (15, "import.loop"),
        (17, "import.rewrite"),
        (26, "import.status-skipped"),
    ]
    by_line = {p.line: p for p in problems}
    assert by_line[17].message.startswith("line 17: ") and "internal rewrite" in by_line[17].message
    assert by_line[26].format("n.conf").startswith("n.conf:26: status: warning: line 26: `return 410`")


def test_nginx_302_becomes_307_with_a_warning_per_rule() -> None:
    text = (
        "location = /a { return 302 /b; }\n"
        "rewrite ^/t/(.*)$ /temp/$1 redirect;\n"
        "location = /c { return https://c.example/; }\n"  # a bare URL is a 302
    )
    ruleset, problems = load_nginx(text, "n.conf")
    assert rules_of(ruleset) == [
        (1, {"from": "/a", "to": "/b", "status": 307, "query": "drop"}),  # nginx's `return` drops the query
        (2, {"from_regex": "^/t/(?P<g1>.*)$", "to": "/temp/{g1}", "status": 307}),
        (3, {"from": "/c", "to": "https://c.example/", "status": 307, "query": "drop"}),
    ]
    assert warnings_of(problems) == [(1, "status.302-converted"), (2, "status.302-converted"),
                                     (3, "status.302-converted")]
    first = problems[0]
    assert first.field == "status" and first.message.startswith("line 1: `return 302 /b`: 302 became 307")
    assert "use 303 instead" in first.message


def test_nginx_uri_variables_and_server_level_return() -> None:
    text = (
        "server {\n"
        "  server_name old.example;\n"
        "  location = /e { return 308 https://n.example$uri; }\n"
        "  location = /f { return 308 https://n.example$uri$is_args$args; }\n"
        "}\n"
        "server {\n"
        "  server_name older.example;\n"
        "  location = /g { return 308 https://n.example$uri; }\n"
        "  return 301 https://new.example$request_uri;\n"
        "}\n"
    )
    ruleset, problems = load_nginx(text, "n.conf")
    assert problems == []
    assert rules_of(ruleset) == [
        (3, {"from": "//old.example/e", "to": "https://n.example/e", "status": 308, "query": "drop"}),
        (4, {"from": "//old.example/f", "to": "https://n.example/f", "status": 308}),
        # the server's own `return` answers every request before nginx picks a location: /g too
        (9, {"from": "//older.example/{rest:path}", "to": "https://new.example/{rest}", "status": 301}),
    ]


def test_nginx_skips_what_it_cannot_express() -> None:
    text = (
        "location = /a { if ($arg_x) { return 301 /b; } }\n"
        "location = /c { return 301 $scheme://c.example/; }\n"
        "location ~ ^/d/(.*)$ { return 301 /e/$2; }\n"
        "location = /g { return 300 /h; }\n"
        "location @named { return 301 /n; }\n"
        "map $http_host $v { a.example /x; }\n"
        "location = /i { return 301 $v; }\n"
        "location = /j { return 301; }\n"
        "rewrite ^/k$ /l;\n"
    )
    ruleset, problems = load_nginx(text, "n.conf")
    assert ruleset.rules == ()
    assert warnings_of(problems) == [
        (1, "import.conditional"),
        (2, "import.variable"),
        (3, "import.group"),
        (4, "import.status-skipped"),
        (6, "import.unsupported"),
        (8, "import.unsupported"),
        (9, "import.rewrite"),
    ]


def test_nginx_syntax_problems_are_warnings() -> None:
    ruleset, problems = load_nginx("server {\n location = /a { return 301 /b; }\n", "n.conf")
    assert [r.source for r in ruleset.rules] == ["/a"]
    assert warnings_of(problems) == [(1, "import.syntax")]
    _, problems = load_nginx('}\nreturn 301 "/x\n', "n.conf")
    assert warnings_of(problems) == [(1, "import.syntax"), (2, "import.syntax"), (2, "import.syntax")]
    assert any("never closed" in p.message for p in problems)


def test_nginx_conversion_errors_come_from_the_rule_checks() -> None:
    ruleset, problems = load_nginx("location = /a { return 301 /b; }\nlocation = /b { return 308 /a; }\n", "n.conf")
    assert problems == []
    found = validate(ruleset, "n.conf")
    assert any(p.code == "loop" and p.is_error and p.line in (1, 2) for p in found)


# -- Apache --------------------------------------------------------------------------------------
APACHE_CONF = r"""# Apache
Redirect /a http://x.example/b
Redirect permanent /docs/ https://docs.example/
RedirectPermanent /p /q
RedirectTemp /t /u
Redirect gone /dead
Redirect seeother /s /see
Redirect 308 "/with space" /w
RedirectMatch 301 ^/img/(.*)\.gif$ /images/$1.png
RewriteEngine on
RewriteRule ^old/(.*)$ /new/$1 [R=301,L]
RewriteRule ^nc$ /nocase [NC,R=308,QSD]
RewriteRule ^int$ /int2 [L]
RewriteCond %{HTTP_HOST} ^www\. [NC]
RewriteRule ^(.*)$ https://example.com/$1 [R=301,L]
<VirtualHost *:80>
  ServerName v.example
  Redirect 301 /v \
      /vv
  <Location /loc>
    Redirect /loc /x
  </Location>
</VirtualHost>
"""


def test_apache_constructs() -> None:
    ruleset, problems = load_apache(APACHE_CONF, "site.conf")
    assert rules_of(ruleset) == [
        (2, {"from": "/a", "to": "http://x.example/b", "status": 307}),
        (2, {"from": "/a/{rest:path}", "to": "http://x.example/b/{rest}", "status": 307}),
        # Apache: `Redirect /docs/ URL` does not answer `/docs`, and pastes the rest after URL
        (3, {"from": "/docs/", "to": "https://docs.example/", "status": 301}),
        (3, {"from": "/docs/{seg}/{rest:path}", "to": "https://docs.example/{seg}/{rest}", "status": 301}),
        (4, {"from": "/p", "to": "/q", "status": 301}),
        (4, {"from": "/p/{rest:path}", "to": "/q/{rest}", "status": 301}),
        (5, {"from": "/t", "to": "/u", "status": 307}),
        (5, {"from": "/t/{rest:path}", "to": "/u/{rest}", "status": 307}),
        (7, {"from": "/s", "to": "/see", "status": 303}),
        (7, {"from": "/s/{rest:path}", "to": "/see/{rest}", "status": 303}),
        (8, {"from": "/with%20space", "to": "/w", "status": 308}),
        (8, {"from": "/with%20space/{rest:path}", "to": "/w/{rest}", "status": 308}),
        (9, {"from_regex": r"^/img/(?P<g1>.*)\.gif$", "to": "/images/{g1}.png", "status": 301}),
        (11, {"from_regex": "^/old/(?P<g1>.*)$", "to": "/new/{g1}", "status": 301}),
        (12, {"from_regex": "^/nc$", "to": "/nocase", "status": 308, "query": "drop", "case_insensitive": True}),
        (18, {"from": "//v.example/v", "to": "/vv", "status": 301}),
        (18, {"from": "//v.example/v/{rest:path}", "to": "/vv/{rest}", "status": 301}),
    ]
    assert warnings_of(problems) == [
        (2, "status.302-converted"),
        (5, "status.302-converted"),
        (6, "import.status-skipped"),
        (13, "import.internal"),
        (15, "import.conditional"),
        (21, "import.container"),
    ]
    by_line = {p.line: p for p in problems}
    assert "RewriteCond" in by_line[15].message and by_line[15].message.startswith("line 15: ")
    assert "<location>" in by_line[21].message


def test_apache_redirect_without_status_and_rewrite_r_alone_are_302() -> None:
    ruleset, problems = load_apache("Redirect /a /b\nRewriteRule ^/c$ /d [R]\nRedirectMatch ^/e(.*) /f$1\n", "x")
    assert [(r.from_text, r.status) for r in ruleset.rules] == [
        ("/a", 307), ("/a/{rest:path}", 307), ("^/c$", 307), ("^/e(?P<g1>.*)", 307)]
    assert warnings_of(problems) == [(1, "status.302-converted"), (2, "status.302-converted"),
                                     (3, "status.302-converted")]
    ruleset, problems = load_apache("Redirect 308 /price https://x.example/$5\n", "x")  # literal: no groups
    assert problems == [] and ruleset.rules[0].to == "https://x.example/$5"


def test_apache_htaccess_relative_substitutions_use_rewrite_base() -> None:
    text = "RewriteRule ^a/(.*)$ b/$1 [R=308]\nRewriteBase /shop\nRewriteRule ^c$ d [R=301,L]\n"
    ruleset, problems = load_apache(text, ".htaccess")
    assert problems == []
    assert rules_of(ruleset) == [
        (1, {"from_regex": "^/a/(?P<g1>.*)$", "to": "/b/{g1}", "status": 308}),
        (3, {"from_regex": "^/c$", "to": "/shop/d", "status": 301}),
    ]


def test_apache_skips() -> None:
    text = (
        "RewriteRule ^a$ /internal [L]\n"  # an absolute URL on another host would be a 302 (Apache)
        "RewriteRule ^b$ /%{HTTP_HOST}/b [R=301]\n"
        "Redirect 301 relative /x\n"
        "RedirectMatch 301 ^/c$ /d$3\n"
        "Redirect 404 /e\n"
        "RewriteRule ^f$ - [R=301]\n"
    )
    ruleset, problems = load_apache(text, "x")
    assert ruleset.rules == ()
    assert warnings_of(problems) == [
        (1, "import.internal"),
        (2, "import.variable"),
        (3, "import.unsupported"),
        (4, "import.group"),
        (5, "import.status-skipped"),
        (6, "import.unsupported"),
    ]


# -- Netlify -------------------------------------------------------------------------------------
NETLIFY = """# Netlify
/home /  301
/blog/* /news/:splat
/users/:id/profile /u/:id 302
/shop/* https://shop.example:8443/:splat 301!
https://old.example/* https://new.example/:splat 308
/spa/* /index.html 200
/store id=:id /blog/:id 301
/cn /china 302 Country=cn
/gone /x 410
/missing /404.html 404
/a/*/b /c
/nosplat /x/:splat
"""


def test_netlify_constructs() -> None:
    ruleset, problems = load_netlify(NETLIFY, "_redirects")
    # lines 2-5 come before line 6 on old.example too: each also has a copy for that host (left out here)
    assert {x[1]["from"] for x in rules_of(ruleset) if x[0] != 6 and x[1]["from"].startswith("//")} == {
        "//old.example/home", "//old.example/home/", "//old.example/blog/{rest:path}",
        "//old.example/users/{id}/profile", "//old.example/users/{id}/profile/", "//old.example/shop/{rest:path}"}
    assert [x for x in rules_of(ruleset) if x[0] == 6 or not x[1]["from"].startswith("//")] == [
        (2, {"from": "/home", "to": "/", "status": 301}),
        (2, {"from": "/home/", "to": "/", "status": 301}),  # Netlify matches with or without the slash
        (3, {"from": "/blog/{rest:path}", "to": "/news/{rest}", "status": 301}),
        (4, {"from": "/users/{id}/profile", "to": "/u/{id}", "status": 307}),
        (4, {"from": "/users/{id}/profile/", "to": "/u/{id}", "status": 307}),
        (5, {"from": "/shop/{rest:path}", "to": "https://shop.example:8443/{rest}", "status": 301}),
        (6, {"from": "//old.example/{rest:path}", "to": "https://new.example/{rest}", "status": 308}),
    ]
    assert warnings_of(problems) == [
        (4, "status.302-converted"),
        (7, "import.status-skipped"),
        (8, "import.conditional"),
        (9, "import.conditional"),
        (10, "import.status-skipped"),
        (11, "import.status-skipped"),
        (12, "import.unsupported"),
        (13, "import.unsupported"),
    ]
    by_line = {p.line: p for p in problems}
    assert ":splat" in by_line[13].message
    assert "rewrite" in by_line[7].message and "not a redirect" in by_line[7].message
    assert "410 Gone" in by_line[10].message


# -- rulefile and the validator ------------------------------------------------------------------
def test_read_rule_file_detects_and_validates(tmp_path: Path) -> None:
    redirects = tmp_path / "_redirects"
    redirects.write_text("/a /b\n/b /a\n")
    _, problems = read_rule_file(redirects)
    assert any(p.code == "loop" and p.is_error for p in problems)
    htaccess = tmp_path / ".htaccess"
    htaccess.write_text("RedirectPermanent /x /y\n")
    ruleset, problems = read_rule_file(htaccess)
    assert [p for p in problems if p.is_error] == [] and len(ruleset.rules) == 2
    assert {p.code for p in problems} == {"status.301-unsafe-method"}  # Apache redirects every method
    conf = tmp_path / "site.conf"
    conf.write_text("location = /a { return 308 /b; }\n")
    _, problems = read_rule_file(conf)
    assert problems[0].is_error and "--format nginx or --format apache" in problems[0].message
    ruleset, problems = read_rule_file(conf, "nginx")
    assert problems == [] and ruleset.rules[0].to == "/b"
    _, problems = read_rule_file(conf, "caddy")
    assert "unknown format 'caddy'" in problems[0].message


# -- never raises --------------------------------------------------------------------------------
SETTINGS = settings(
    max_examples=int(os.environ.get("REDIRECTORY_FUZZ_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
PIECES = [
    "server", "server_name a.example;", "location", "=", "~", "~*", "^~", "/a", "/b/", "{", "}", ";", "\n", " ",
    "return", "301", "302", "307", "410", "https://x.example", "$1", "$request_uri", "$uri", "$host", "rewrite",
    "permanent", "redirect", "map $uri $v", "$v", "if ($v)", '"', "'", "#", "\\", "(", ")", "[", "]", "(?P<n>",
    "^/(.*)$", "Redirect", "RedirectMatch", "RedirectPermanent", "RewriteRule", "RewriteCond", "[R=301,L]", "[R]",
    "<VirtualHost *:80>", "</VirtualHost>", "<Location />", "ServerName", "gone", "seeother", "/*", ":splat",
    ":id", "200", "404", "!", "Country=us", "a=b", "https://old.example/*", "\t", "\r\n",
]


def check_result(result: tuple[RuleSet, list[Problem]]) -> None:
    ruleset, problems = result
    assert isinstance(ruleset, RuleSet)
    assert all(isinstance(p, Problem) and p.code != "internal" for p in problems), [p.format() for p in problems]
    assert all(isinstance(r, Rule) for r in ruleset.rules)
    assert all(p.line is not None for p in problems if p.code != "format")


@SETTINGS
@given(text=st.text(), fmt=st.sampled_from(["nginx", "apache", "netlify", "netlify-toml", "vercel"]))
def test_no_text_makes_an_importer_raise(text: str, fmt: str) -> None:
    check_result(load_any(text, fmt, "fuzz"))


@SETTINGS
@given(pieces=st.lists(st.sampled_from(PIECES), max_size=40), fmt=st.sampled_from(["nginx", "apache", "netlify"]))
def test_no_config_like_text_makes_an_importer_raise(pieces: list[str], fmt: str) -> None:
    check_result(load_any(" ".join(pieces), fmt, "fuzz"))


# -- CLI -----------------------------------------------------------------------------------------
def test_cli_imports_nginx_into_sqlite_and_rules_test_answers(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path}/t.db"
    conf = tmp_path / "old-site.conf"
    conf.write_text(
        "server {\n"
        "    listen 80;\n"
        "    location = /old/page { return 302 /new/page; }\n"
        "    location ~ ^/legacy/([0-9]+)$ { return 301 /items/$1; }\n"
        "}\n"
    )
    done = cli("rules", "import", str(conf), "--database", database)
    assert done.returncode == 1 and "--format nginx or --format apache" in done.stderr
    done = cli("rules", "import", str(conf), "--format", "nginx", "--database", database)
    assert done.returncode == 0, done.stderr
    assert "imported 2 rule(s)" in done.stdout
    assert f"{conf}:3: status: warning: line 3: `return 302 /new/page`: 302 became 307" in done.stderr
    test = cli("rules", "test", "/old/page", "--database", database)
    assert test.returncode == 0, test.stderr
    assert "HTTP/1.1 307 Temporary Redirect" in test.stdout and "location: /new/page" in test.stdout
    test = cli("rules", "test", "/legacy/42", "--database", database)
    assert "HTTP/1.1 301 Moved Permanently" in test.stdout and "location: /items/42" in test.stdout
    strict = cli("rules", "import", str(conf), "--format", "nginx", "--strict", "--database", f"sqlite:///{tmp_path}/s.db")
    assert strict.returncode == 1


def test_cli_import_help_names_the_formats() -> None:
    done = cli("rules", "import", "--help")
    assert done.returncode == 0
    text = re.sub(r"-\s+", "-", " ".join(done.stdout.split()))  # rich wraps after a hyphen
    assert f"{', '.join(IMPORT_FORMATS[:-1])} or {IMPORT_FORMATS[-1]}" in text


def test_nginx_scheme_and_host_of_the_request_make_a_same_host_target() -> None:
    text = ("location = / { return 302 $scheme://$host/3/; }\n"
            "location ~ ^/(fr|ja)/$ { return 301 $scheme://$http_host/$1/3/; }\n"
            "rewrite ^/old$ $scheme://$host/new;\n"
            "location = /h { return 301 $scheme://$hostname/x; }\n")
    ruleset, problems = load_nginx(text, "site.conf")
    assert [(r.source or r.source_regex, r.to, r.status) for r in ruleset.rules] == [
        ("/", "/3/", 307), ("^/(?P<g1>fr|ja)/$", "/{g1}/3/", 301), ("^/old$", "/new", 307)]
    assert any(p.line == 4 and "$scheme" in p.message for p in problems)  # $hostname is not the request's host


def test_cli_convert_writes_the_table_without_a_database(tmp_path: Path) -> None:
    conf = tmp_path / "site.conf"
    conf.write_text("location = /a { return 301 /b; }\nlocation = /c { return 302 /d; }\n")
    done = cli("rules", "convert", str(conf), "--from", "nginx", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rules:\n- from: /a\n  to: /b\n  status: 301\n")
    assert f"{conf}:2: status: warning: line 2: `return 302 /d`: 302 became 307" in done.stderr
    assert list(tmp_path.iterdir()) == [conf]  # no database made
    done = cli("rules", "convert", str(conf), "--from", "nginx", "--to", "csv", "-o", str(tmp_path / "out.csv"))
    assert done.returncode == 0 and "converted 2 rule(s)" in done.stderr
    assert (tmp_path / "out.csv").read_text().splitlines()[1].startswith("/a,,/b,301")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - from: /x\n    to: /x\n")
    done = cli("rules", "convert", str(bad), "-o", str(tmp_path / "bad.json"))
    assert done.returncode == 1 and not (tmp_path / "bad.json").exists() and "bad.yaml:2" in done.stderr
    done = cli("rules", "convert", str(conf), "--from", "nginx", "--to", "xml")
    assert done.returncode == 2 and "--to: 'xml' is not one of yaml, json, csv, nginx" in done.stderr


def test_a_file_that_yields_no_redirect_is_an_error_that_says_what_it_holds() -> None:
    bare = "# 301 redirects\n/old /new;\n~^/a/(.*)$ /b/$1;\n"
    _, problems = load_nginx(bare, "legacy.map")
    assert [(p.severity, p.code, p.line) for p in problems] == [("error", "import.empty", 1)]
    assert "2 `map` entries outside any `map` block" in problems[0].message
    _, problems = load_nginx("map $request_uri $new {\n  include maps/legacy.map;\n}\n", "maps.conf")
    assert problems[-1].code == "import.empty" and "`include`d files are not read" in problems[-1].message
    _, problems = load_apache("RewriteEngine On\nRewriteRule ^a$ /b [L]\n", ".htaccess")
    assert [p.code for p in problems if p.is_error] == ["import.empty"]
    ruleset, problems = load_netlify("/a /b 200\n/c /d\n", "_redirects")
    assert [r.source for r in ruleset.rules] == ["/c", "/c/"] and not any(p.is_error for p in problems)


def test_foreign_duplicates_and_loops_are_skipped_naming_both_lines() -> None:
    text = ("Redirect 301 /a https://new.example/a\n"
            "Redirect 301 /b https://new.example/b\n"
            "Redirect 301 /a https://other.example/a\n")
    ruleset, problems = load_apache(text, ".htaccess")
    assert [(r.source, r.to) for r in ruleset.rules] == [
        ("/a", "https://new.example/a"), ("/a/{rest:path}", "https://new.example/a/{rest}"),
        ("/b", "https://new.example/b"), ("/b/{rest:path}", "https://new.example/b/{rest}")]
    skipped = [p for p in problems if p.code == "import.duplicate"]
    assert {p.line for p in skipped} == {3} and all("(line 1)" in p.message for p in skipped)
    assert not any(p.is_error for p in problems)
    ruleset, problems = load_nginx("location = /x { return 301 /x; }\nlocation = /y { return 301 /z; }\n", "n.conf")
    assert [r.source for r in ruleset.rules] == ["/y"]
    assert [(p.line, p.code) for p in problems if p.code.startswith("import.")] == [(1, "import.loop")]
    ruleset, problems = loads("rules:\n  - from: /a\n    to: /b\n  - from: /a\n    to: /c\n", "yaml")
    assert [p.code for p in validate(ruleset) if p.is_error] == ["duplicate"]  # native rule files stay strict
