"""nginx import answers as nginx does: `return` drops the query, prefixes match longer names,
locations are tried in nginx's order, `rewrite` inside a location, `$host` of a one-name server."""

from __future__ import annotations

from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import load_nginx


def answer(text: str, path: str) -> tuple[int, str | None]:
    ruleset, _problems = load_nginx(text, "n.conf")
    path, _, query = path.partition("?")
    decision = Engine(ruleset).decide(Request("GET", path, query=query))
    return decision.response.status, decision.location


def test_return_drops_the_query_unless_the_url_names_it() -> None:
    text = ("location = /a { return 301 /b; }\n"
            "location = /c { return 301 https://n.example$request_uri; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.query for r in ruleset.rules] == ["drop", "keep"]
    assert answer(text, "/a?x=1") == (301, "/b")


def test_a_prefix_location_matches_longer_names() -> None:
    text = "location ^~ /ftp/doc { return 301 https://www.python.org$request_uri; }\n"
    assert answer(text, "/ftp/dociiaal") == (301, "https://www.python.org/ftp/dociiaal")
    assert answer(text, "/ftp/do")[0] == 404


def test_regex_locations_before_plain_prefixes_and_server_rewrites_first() -> None:
    text = ("rewrite ^/x/first$ /from-rewrite permanent;\n"
            "location /x { return 301 /from-prefix; }\n"
            "location ~ ^/x/r { return 301 /from-regex; }\n"
            "location ^~ /x/stop { return 301 /from-stop; }\n"
            "location = /x/first { return 301 /from-exact; }\n")
    assert answer(text, "/x/first") == (301, "/from-rewrite")
    assert answer(text, "/x/rr") == (301, "/from-regex")
    assert answer(text, "/x/stopper") == (301, "/from-stop")
    assert answer(text, "/xy") == (301, "/from-prefix")


def test_rewrite_inside_an_exact_location_answers_that_path_only() -> None:
    text = "location = / { rewrite ^ /en permanent; }\n"
    ruleset, _ = load_nginx(text, "n.conf")
    assert [(r.source, r.to) for r in ruleset.rules] == [("/", "/en")]
    assert answer(text, "/other")[0] == 404


def test_host_of_a_one_name_server_is_that_name() -> None:
    text = "server { server_name a.example; location = /h { return 301 https://$host/x; } }\n"
    ruleset, _ = load_nginx(text, "n.conf")
    assert ruleset.rules[0].to == "https://a.example/x"


def test_catch_all_server_beside_named_servers_is_skipped_with_a_warning() -> None:
    text = ("server { server_name www.example; location = /a { return 301 /b; } }\n"
            "server { server_name .example; return 301 https://www.example$request_uri; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source for r in ruleset.rules] == ["//www.example/a"]
    assert any(p.line == 2 and p.code == "import.host" for p in problems)
