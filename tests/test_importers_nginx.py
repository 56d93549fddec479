"""nginx import answers as nginx does: `return` drops the query, prefixes match longer names,
locations are tried in nginx's order, `rewrite` inside a location, `$host` of a one-name server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from gateway_process import cli
from redirectory.rulefile import read_rule_file
from redirectory.rules.engine import Engine, Request
from redirectory.rules.importers import load_nginx
from redirectory.rules.importers._nginx import _literal_paths
from redirectory.rules.importers._nginx_within import NEVER, within
from redirectory.rules.model import RuleSet
from redirectory.rules.validation import validate


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
            "server { server_name _; return 301 https://www.example$request_uri;\n"
            "  location ~ ^/r { return 301 /r2; } }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source for r in ruleset.rules] == ["//www.example/a"]
    # (the location of line 3 is never reached: the server's own `return` answers first)
    assert [p.line for p in problems if p.code == "import.host"] == [2]


def test_a_dot_name_answers_that_name_and_a_plain_server_beside_an_https_one_is_skipped() -> None:
    text = ("server { listen 80; server_name .example.org; return 301 https://www.example.org$request_uri; }\n"
            "server { listen 443 ssl; server_name .example.org; return 302 https://www.example.org$request_uri; }\n"
            "server { listen 443 ssl; server_name www.example.org; location = /a { return 301 /b; } }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [(r.source or r.source_regex, r.status) for r in ruleset.rules] == [
        ("//example.org/{rest:path}", 307), (r"^//[^/]+\.example\.org(?:/(?P<rest>.*))?$", 307),
        ("//www.example.org/a", 301), (r"^//www\.example\.org/", 404)]
    assert decide(ruleset, "/x?y=1", host="example.org") == (307, "https://www.example.org/x?y=1")
    # its subdomains too, but www.example.org, which the server of that exact name answers
    assert decide(ruleset, "/x?y=1", host="a.b.example.org") == (307, "https://www.example.org/x?y=1")
    assert decide(ruleset, "/x", host="www.example.org") == (404, None)
    assert decide(ruleset, "/a", host="www.example.org") == (301, "/b")
    skipped = [p for p in problems if p.code == "import.host" and p.line == 1]
    assert skipped and "line 2" in skipped[-1].message and "https" in skipped[-1].message


# -- include -------------------------------------------------------------------------------------
def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def decide(ruleset: RuleSet, path: str, host: str = "localhost") -> tuple[int, str | None]:
    path, _, query = path.partition("?")
    decision = Engine(ruleset).decide(Request("GET", path, query=query, host=host))
    return decision.response.status, decision.location


def test_includes_are_read_in_place_also_inside_a_map_relative_to_the_imported_file(tmp_path: Path) -> None:
    write(tmp_path, {
        "site.conf": "include snippets/maps.conf;\nserver {\n  location = /first { return 301 /one; }\n"
                     "  include snippets/redirects.conf;\n}\n",
        "snippets/maps.conf": "map $uri $new {\n  include maps/old.map;\n}\n",
        "snippets/redirects.conf": "if ($new) {\n  return 301 $new;\n}\n",
        "maps/old.map": "/a /b;\n~^/c/(.*)$ /d/$1;\n",
    })
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "nginx")
    assert not [p for p in problems if p.is_error], problems
    assert decide(ruleset, "/a") == (301, "/b")
    assert decide(ruleset, "/c/x") == (301, "/d/x")
    assert decide(ruleset, "/first") == (301, "/one")
    # each rule keeps the line in its own file
    assert sorted(r.line for r in ruleset.rules) == [1, 2, 3]


def test_a_problem_in_an_included_file_names_that_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, {
        "site.conf": "location = /a { return 301 /b; }\ninclude more.conf;\n",
        "more.conf": "# comment\nrewrite ^/x /y last;\nlocation = /c { return 301 /d; }\n",
    })
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "nginx")
    assert [r.source for r in ruleset.rules] == ["/a", "/c"]
    (internal,) = [p for p in problems if p.code == "import.rewrite"]
    assert (internal.source, internal.line) == (str(tmp_path / "more.conf"), 2)
    assert internal.format().startswith(f"{tmp_path / 'more.conf'}:2: ")


def test_a_later_duplicate_in_an_included_file_names_both_files(tmp_path: Path) -> None:
    write(tmp_path, {"site.conf": "location = /a { return 301 /b; }\ninclude more.conf;\n",
                     "more.conf": "\nlocation = /a { return 301 /c; }\n"})
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "nginx")
    assert [r.to for r in ruleset.rules] == ["/b"]  # nginx uses the first
    (dup,) = [p for p in problems if p.code == "import.duplicate"]
    assert dup.source == str(tmp_path / "more.conf") and dup.line == 2
    assert "site.conf:1" in dup.message


def test_a_missing_include_is_a_warning_and_the_rest_imports(tmp_path: Path) -> None:
    write(tmp_path, {"site.conf": "include nowhere.conf;\nlocation = /a { return 301 /b; }\n"})
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "nginx")
    assert [r.source for r in ruleset.rules] == ["/a"]
    (missing,) = [p for p in problems if p.code == "import.include"]
    assert missing.severity == "warning" and missing.line == 1 and "nowhere.conf" in missing.message
    assert "--include-root" in missing.message


def test_include_cycles_stop_and_globs_read_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path, {"site.conf": "include conf.d/*.conf;\ninclude site.conf;\n",
                     "conf.d/b.conf": "location = /x { return 301 /from-b; }\n",
                     "conf.d/a.conf": "location = /x { return 301 /from-a; }\ninclude conf.d/a.conf;\n",
                     "conf.d/none.txt": "location = /y { return 301 /z; }\n"})
    ruleset, problems = read_rule_file(tmp_path / "site.conf", "nginx")
    assert [(r.source, r.to) for r in ruleset.rules] == [("/x", "/from-a")]
    cycles = [p for p in problems if p.code == "import.include"]
    assert len(cycles) == 2 and all("itself" in p.message for p in cycles)


def test_a_bare_map_body_on_its_own_stays_an_error_saying_what_it_is(tmp_path: Path) -> None:
    write(tmp_path, {"old.map": "/a /b;\n/c /d;\n"})
    _, problems = read_rule_file(tmp_path / "old.map", "nginx")
    (error,) = [p for p in problems if p.is_error]
    assert "map" in error.message and "includes it" in error.message


def test_include_root_resolves_relative_and_etc_nginx_names_against_it(tmp_path: Path) -> None:
    write(tmp_path, {"repo/sites/site.conf": "map $uri $new { include /etc/nginx/maps/old.map; }\n"
                                             "server { include snippets/r.conf; }\n",
                     "repo/snippets/r.conf": "if ($new) { return 308 $new; }\n",
                     "repo/maps/old.map": "/a /b;\n"})
    ruleset, problems = read_rule_file(tmp_path / "repo/sites/site.conf", "nginx", include_root=tmp_path / "repo")
    assert [(r.source, r.to, r.status) for r in ruleset.rules] == [("/a", "/b", 308)], problems
    done = cli("rules", "convert", str(tmp_path / "repo/sites/site.conf"), "--from", "nginx", "--to", "json",
               "--include-root", str(tmp_path / "repo"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rules"][0]["from"] == "/a"
    without = cli("rules", "validate", str(tmp_path / "repo/sites/site.conf"), "--format", "nginx")
    assert without.returncode == 1 and "Traceback" not in without.stderr
    assert "no such file" in without.stderr and "no redirect to import" in without.stderr
    wrong = cli("rules", "validate", str(tmp_path / "repo/maps/old.map"), "--format", "netlify",
                "--include-root", str(tmp_path))
    assert wrong.returncode == 1 and "--include-root is for nginx" in wrong.stderr and "Traceback" not in wrong.stderr


# -- what nginx substitutes and matches -----------------------------------------------------------
def test_an_empty_optional_group_substitutes_nothing_as_nginx_does() -> None:
    text = "location ~ ^/(html|HTML)5?(/(.*))?$ { return 301 https://html.example/multipage/$3; }\n"
    assert answer(text, "/html") == (301, "https://html.example/multipage/")
    assert answer(text, "/html5/x/y") == (301, "https://html.example/multipage/x/y")


def test_request_uri_map_keys_match_the_query_as_nginx_does() -> None:
    # nginx compares `map $request_uri` keys with path and query: `/c` answers `/c` alone, `/a?x=1`
    # that path with that query; a regex ending in `$` that matches no `?` answers no query
    text = ("map $request_uri $new { /a?x=1 /b; /c /d; ~^/e/?$ /f; ~^/g/ /h; ~^/(.*)/old/?$ /new/$1; }\n"
            "server { if ($new) { return 301 $new; } }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert not [p for p in problems if p.code == "import.query"], problems
    assert answer(text, "/a?x=1") == (301, "/b")
    assert answer(text, "/a")[0] == 404 and answer(text, "/a?x=2")[0] == 404
    assert answer(text, "/a?x=1&y=2")[0] == 404  # exact: no other parameter
    assert answer(text, "/c") == (301, "/d") and answer(text, "/c?x=1")[0] == 404
    assert answer(text, "/e/") == (301, "/f") and answer(text, "/e?utm=1")[0] == 404
    assert answer(text, "/g/x?y=1") == (301, "/h")  # no `$`: any query
    assert answer(text, "/k/old") == (301, "/new/k") and answer(text, "/k/old?a=1")[0] == 404


def test_request_uri_regex_keys_that_can_take_the_query_read_it_as_nginx_does() -> None:
    # `(.*)` may take the query: the rule's regex reads path and query (regex_query), its group is
    # pasted as received (nginx's `$1` of `$request_uri`), and `return` adds no query of its own
    text = ("map $request_uri $new { ~^/a/(.*)$ /b/$1; ~^/c/?$ /d; ~^/(v|w)/(.+)$ /learn; }\n"
            "server { if ($new) { return 301 $new; } }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert not [p for p in problems if p.code == "import.query"], problems
    by_regex = {r.source_regex: r for r in ruleset.rules}
    assert by_regex["^/a/(?P<g1>.*)$"].regex_query and by_regex["^/a/(?P<g1>.*)$"].query == "drop"
    assert not by_regex["^/c/?$"].regex_query
    assert answer(text, "/a/x") == (301, "/b/x")
    assert answer(text, "/a/x?y=1&z=2") == (301, "/b/x?y=1&z=2")
    assert answer(text, "/c?q=1")[0] == 404
    assert answer(text, "/v/?a=1") == (301, "/learn")  # `(.+)` matched through the query
    assert answer(text, "/v/")[0] == 404



# -- several hosts in one file --------------------------------------------------------------------
MULTI = """\
server { listen 443 ssl; server_name a.example;
  rewrite ^/old/(\\d+)$ https://new.example/$1 permanent;
  rewrite ^/page\\.html/?$ https://new.example/page permanent;
  rewrite ^/file.pdf$ https://new.example/file.pdf permanent;
  rewrite ^ https://new.example/ permanent;
}
server { listen 443 ssl; server_name b.example;
  location = /x { return 301 /y; }
  location /app/ { proxy_pass http://app; }
  location /api/ { proxy_pass http://api; }
  location = /api { return 301 /v2; }
}
"""


def test_a_server_of_one_name_keeps_its_one_path_rewrites_and_its_catch_all_to_its_host() -> None:
    ruleset, problems = load_nginx(MULTI, "n.conf")
    assert decide(ruleset, "/page.html", host="a.example") == (301, "https://new.example/page")
    assert decide(ruleset, "/page.html/", host="a.example") == (301, "https://new.example/page")
    assert decide(ruleset, "/file.pdf", host="a.example") == (301, "https://new.example/file.pdf")
    assert decide(ruleset, "/anything", host="a.example") == (301, "https://new.example/")
    # b.example is not answered by a.example's rules, as in nginx
    assert decide(ruleset, "/anything", host="b.example")[0] == 404
    assert decide(ruleset, "/page.html", host="b.example")[0] == 404
    # the regex rewrite before the catch-all comes first on a.example too: the catch-all is a regex of
    # that host after it (`^//a\.example(?:/)`), in file order
    assert decide(ruleset, "/old/5", host="a.example") == (301, "https://new.example/5")
    assert not any(p.code == "import.order" for p in problems)
    assert any(p.code == "import.regex" and p.line == 4 and "`.`" in p.message for p in problems)


def test_a_passed_prefix_location_with_a_slash_redirects_its_name_without_it() -> None:
    ruleset, _ = load_nginx(MULTI, "n.conf")
    assert decide(ruleset, "/app?q=1", host="b.example") == (301, "/app/?q=1")
    assert decide(ruleset, "/api", host="b.example") == (301, "/v2")  # its own location wins
    assert decide(ruleset, "/x", host="b.example") == (301, "/y")


@given(st.lists(st.text(alphabet="abz09_-~.", min_size=1, max_size=6), min_size=1, max_size=4), st.booleans())
def test_a_regex_read_as_its_paths_matches_exactly_those_paths(segments: list[str], slash: bool) -> None:
    path = "/" + "/".join(segments)
    regex = "^" + re.escape(path).replace("\\~", "~") + ("/?" if slash else "") + "$"
    paths = _literal_paths(regex)
    if any(segment in (".", "..") for segment in segments):
        assert paths is None  # normalised away in requests: left to the regex
        return
    assert paths is not None
    assert all(re.search(regex, p) for p in paths)
    assert paths == ([path, path + "/"] if slash and not path.endswith("/") else [path])
    # what else the regex matches is no path of the same length with another character
    assert not re.search(regex, path + "x") and not re.search(regex, "/x" + path)


def test_a_line_a_rule_cannot_hold_is_skipped_with_a_warning_and_the_rest_imports() -> None:
    text = ("location ~* ^/f { return 301 https://tax..example.org; }\n"
            "location = /a { return 301 /b; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source for r in ruleset.rules] == ["/a"]
    (skipped,) = problems
    assert (skipped.severity, skipped.line) == ("warning", 1) and "tax..example.org" in skipped.message


def test_scheme_of_a_server_that_listens_with_one_scheme_is_that_scheme() -> None:
    def to(listens: str) -> list[str]:
        text = (f"server {{ {listens} server_name a.example; "
                "return 301 $scheme://b.example/x; }\n")
        ruleset, problems = load_nginx(text, "n.conf")
        return [r.to for r in ruleset.rules] or [p.code for p in problems if p.severity == "warning"]

    assert to("listen 80;") == ["http://b.example/x"]
    assert to("") == ["http://b.example/x"]  # no listen: port 80
    assert to("listen 443 ssl;") == ["https://b.example/x"]
    assert to("listen 80; listen 443 ssl;") == ["import.variable"]  # both: $scheme is the request's


def test_an_underscore_host_is_a_host_and_server_name_underscore_the_catch_all() -> None:
    text = ("server { server_name tribunals.example; location ~* ^/f { return 301 https://tax_ut.example.org; } }\n"
            "server { server_name _; location = /a { return 301 /b; } }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    # (and a rule that redirects nothing keeps the catch-all's rules from tribunals.example)
    assert [(r.source or r.source_regex, r.to) for r in ruleset.rules] == [
        (r"^//tribunals\.example(?:/f)", "https://tax_ut.example.org"), (r"^//tribunals\.example/", ""),
        ("/a", "/b")]
    assert decide(ruleset, "/a", host="tribunals.example") == (404, None)
    assert decide(ruleset, "/a", host="other.example") == (301, "/b")


def test_a_rewrite_of_every_path_inside_a_prefix_location_answers_that_location_only() -> None:
    # lbryio/lbry.com's idiom (`location X { rewrite ^(.*)$ URL permanent; }`): $1 is the whole path
    text = ("location /old { rewrite ^(.*)$ https://new.example$1 permanent; }\n"
            "location /p/ { rewrite ^/(.*)$ https://n.example/$1 permanent; }\n"
            "location /gone { rewrite ^(.*)$ /home? permanent; }\n")
    assert answer(text, "/old/x?q=1") == (301, "https://new.example/old/x?q=1")
    assert answer(text, "/p/a") == (301, "https://n.example/p/a")
    assert answer(text, "/gone/y?q=1") == (301, "/home")
    assert answer(text, "/other")[0] == 404


def test_a_location_that_is_not_a_path_is_skipped_with_a_warning_naming_its_line() -> None:
    text = ("location = /b { return 301 /c; }\n"
            "location https://x.example/a { rewrite ^(.*)$ https://y.example permanent; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source for r in ruleset.rules] == ["/b"]
    assert any(p.line == 2 and "never selects it" in p.message for p in problems)
    assert answer(text, "/a")[0] == 404


def test_a_hash_in_a_rewrite_regex_matches_the_path_a_client_sends_with_pct23() -> None:
    # fecgov/fec-proxy: `rewrite ^/pubrec/publicrecordsoffice.shtml#using URL redirect;`
    text = "rewrite ^/a.shtml#using https://n.example/a.shtml#using redirect;\n"
    assert answer(text, "/a.shtml%23using") == (307, "https://n.example/a.shtml#using")
    assert answer(text, "/a.shtml")[0] == 404


def test_the_default_of_a_map_that_a_return_sends_answers_every_other_path() -> None:
    # norangLemon/ginxConf link.norang.io: `map $uri $dest { include ...; default URL; }` + `return 301 $dest;`
    text = ("map $uri $dest { ~^/a/? https://a.example; /b https://b.example; default https://home.example; }\n"
            "server { location / { return 301 $dest; } }\n")
    assert answer(text, "/a/x") == (301, "https://a.example")
    assert answer(text, "/b?q=1") == (301, "https://b.example")
    assert answer(text, "/zzz?q=1") == (301, "https://home.example")
    keep = text.replace("https://home.example;", "https://new.example$request_uri;")
    assert answer(keep, "/zzz?q=1") == (301, "https://new.example/zzz?q=1")
    assert answer(keep, "/a/x") == (301, "https://a.example")
    # in `if ($dest)` an empty default sends nothing: only the entries redirect
    inside = ("map $uri $dest { /b https://b.example; default \"\"; }\n"
              "server { location / { if ($dest) { return 301 $dest; } } }\n")
    assert answer(inside, "/zzz")[0] == 404
    assert answer(inside, "/b") == (301, "https://b.example")


# -- scheme conditions (`if ($scheme = http)`) ---------------------------------------------------
def served(text: str, target: str, scheme: str = "http", host: str = "a.example") -> tuple[int, str | None]:
    ruleset, problems = load_nginx(text, "n.conf")
    assert not [p for p in problems if p.is_error], problems
    path, _, query = target.partition("?")
    decision = Engine(ruleset).decide(Request("GET", path, query=query, host=host, scheme=scheme))
    return decision.response.status, decision.location


SCHEME_IF = """\
server {
    listen 80;
    listen 443 ssl;
    server_name a.example;
    rewrite ^/old$ /new permanent;
    if ($scheme = http) {
        return 301 https://$host$request_uri;
    }
    rewrite ^/later$ /after permanent;
    location = /x { return 301 /y; }
    location /app/ { proxy_pass http://app; }
    location / { rewrite ^/(.*)\\.html$ /$1 permanent; }
}
"""


def test_an_if_on_the_scheme_answers_requests_of_that_scheme_before_any_location() -> None:
    ruleset, problems = load_nginx(SCHEME_IF, "n.conf")
    assert not [p for p in problems + validate(ruleset, "n.conf") if p.is_error], problems
    # http: the `if` runs in the server's rewrite phase, before every location (and the rewrites after it)
    assert served(SCHEME_IF, "/x?q=1") == (301, "https://a.example/x?q=1")
    assert served(SCHEME_IF, "/page.html") == (301, "https://a.example/page.html")
    assert served(SCHEME_IF, "/app") == (301, "https://a.example/app")
    assert served(SCHEME_IF, "/later") == (301, "https://a.example/later")
    assert served(SCHEME_IF, "/old") == (301, "/new")  # the rewrite before it runs first, for both schemes
    # https: never sent to itself; the locations answer as nginx's do
    assert served(SCHEME_IF, "/anything", scheme="https")[0] == 404
    assert served(SCHEME_IF, "/x?q=1", scheme="https") == (301, "/y")
    assert served(SCHEME_IF, "/page.html", scheme="https") == (301, "/page")
    assert served(SCHEME_IF, "/app", scheme="https") == (301, "/app/")
    assert served(SCHEME_IF, "/later", scheme="https") == (301, "/after")
    assert served(SCHEME_IF, "/old", scheme="https") == (301, "/new")


def test_the_scheme_idioms_behind_a_load_balancer_and_inside_a_location() -> None:
    def both(condition: str, inner: str = "return 301 https://$host$request_uri;") -> tuple[object, object]:
        text = ("server { listen 80; server_name a.example;\n"
                f"  location / {{ if {condition} {{ {inner} }} proxy_pass http://app; }}\n"
                "  location = /b { return 301 /c; }\n}\n")
        return served(text, "/p?q=1"), served(text, "/p?q=1", scheme="https")

    sent = (301, "https://a.example/p?q=1")
    assert both('($scheme != "https")') == (sent, (404, None))
    assert both('($http_x_forwarded_proto != "https")') == (sent, (404, None))
    assert both('($http_x_forwarded_proto = "http")') == (sent, (404, None))
    assert both('($https != "on")') == (sent, (404, None))
    assert both("($scheme = http)", "rewrite ^(.*)$ https://$server_name$1 permanent;") == (sent, (404, None))
    assert both("($scheme = http)", "rewrite ^ https://$host$request_uri? permanent;") == (sent, (404, None))
    # an https-only condition: https requests go to http, http ones are left alone
    assert both("($http_x_forwarded_proto = https)", "return 301 http://$host$request_uri;") == (
        (404, None), (301, "http://a.example/p?q=1"))
    # `$scheme = https` in a server that listens for http only is never true (a warning says so)
    assert both("($scheme = https)", "return 301 http://$host$request_uri;") == ((404, None), (404, None))


def test_a_scheme_if_whose_host_is_not_known_sends_to_the_request_s_own_host() -> None:
    text = ("server { listen 80; listen 443 ssl; server_name _;\n"
            "  if ($scheme = http) {\n    return 301 https://$host$request_uri;\n  }\n"
            "  location = /b { return 301 /c; }\n}\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert ("https://{host}/{rest}", "http") in [(r.to, r.scheme) for r in ruleset.rules]
    assert not [p for p in problems if p.severity == "warning" and "host" in p.message], problems
    assert served(text, "/b?q=1", host="x.example") == (301, "https://x.example/b?q=1")
    assert served(text, "/b", scheme="https", host="x.example") == (301, "/c")
    # `$server_name` is the server's first name (`_` here), not the request's: still a warning
    first = text.replace("https://$host$request_uri", "https://$server_name$request_uri")
    _ruleset, problems = load_nginx(first, "n.conf")
    (warning,) = [p for p in problems if p.severity == "warning" and "server_name" in p.message]
    assert warning.line == 3
    # in a server of several names, each name's own: http to https on that name, the rest https only
    named = text.replace("server_name _;", "server_name a.example www.a.example;")
    for host in ("a.example", "www.a.example"):
        assert served(named, "/b?q=1", host=host) == (301, f"https://{host}/b?q=1")
        assert served(named, "/b", scheme="https", host=host) == (301, "/c")
    # a literal host needs no server name
    literal = text.replace("https://$host$request_uri", "https://a.example$request_uri")
    assert served(literal, "/b") == (301, "https://a.example/b")
    assert served(literal, "/b", scheme="https") == (301, "/c")


def test_a_scheme_if_never_true_in_its_server_is_skipped_with_a_warning() -> None:
    text = ("server { listen 443 ssl; server_name a.example;\n"
            "  if ($scheme = http) { return 301 https://$host$request_uri; }\n"
            "  location = /b { return 301 /c; }\n}\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert [(r.source, r.scheme) for r in ruleset.rules] == [("//a.example/b", None)]
    assert [(p.line, p.code) for p in problems] == [(2, "import.conditional")]
    assert "never true" in problems[0].message


def test_other_ifs_stay_skipped_with_a_warning() -> None:
    text = "if ($host = a.example) { return 301 https://b.example$request_uri; }\nlocation = /b { return 301 /c; }\n"
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source for r in ruleset.rules] == ["/b"]
    assert [(p.line, p.code) for p in problems] == [(1, "import.conditional")]


def test_regexes_nginx_tries_before_a_scheme_rule_keep_their_place_for_both_schemes() -> None:
    # a plain-http server of one name: its catch-all to https is for http requests; the locations
    # nginx picks first (a longer prefix, content) still answer http requests
    text = ("server { listen 80; server_name a.example;\n"
            "  location /health { return 200; }\n"
            "  location /p { return 301 /q; }\n"
            "  location / { return 301 https://$host$request_uri; }\n}\n")
    assert served(text, "/health")[0] == 404  # content in nginx: not redirected
    assert served(text, "/healthz/a")[0] == 404
    assert served(text, "/p/1") == (301, "/q")
    assert served(text, "/x?q=1") == (301, "https://a.example/x?q=1")
    assert served(text, "/p/1", scheme="https") == (301, "/q")
    assert served(text, "/x", scheme="https")[0] == 404


# -- a location's rewrite answers that location's paths only -------------------------------------
def test_a_rewrite_in_a_prefix_location_answers_the_paths_of_that_location_only() -> None:
    text = ("location /docs { rewrite ^/(.*)\\.html$ /$1 permanent; }\n"
            "location /q/ { rewrite ^/(.*)/$ /$1 permanent; }\n"
            "location ~ ^/r/ { rewrite ^/(.*)\\.php$ /s/$1 permanent; }\n"
            "location /t { rewrite .*/index\\.html$ /t/ permanent; }\n")
    assert answer(text, "/docs/a.html?x=1") == (301, "/docs/a?x=1")
    assert answer(text, "/docs.html") == (301, "/docs")
    assert answer(text, "/blog/a.html")[0] == 404  # no location of the file: nginx never runs the rewrite
    assert answer(text, "/q/a/") == (301, "/q/a")
    assert answer(text, "/q/") == (301, "/q")  # `^/(.*)/$` matches the location's own path too
    assert answer(text, "/x/a/")[0] == 404
    assert answer(text, "/r/a.php") == (301, "/s/r/a")
    assert answer(text, "/a.php")[0] == 404
    assert answer(text, "/t/x/index.html") == (301, "/t/")
    assert answer(text, "/u/index.html")[0] == 404


def test_a_location_rewrite_that_cannot_be_kept_to_its_location_is_a_warning_naming_its_line() -> None:
    text = ("location /a { rewrite ^/[a-z]+/x$ /b permanent; }\n"
            "location /blog { rewrite ^/news/(.*)$ /n/$1 permanent; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    kept = [p for p in problems if p.code == "import.location"]
    assert [p.line for p in kept] == [1, 2]
    assert "check it" in kept[0].message and "matches no path" in kept[1].message
    assert [r.source_regex for r in ruleset.rules if r.status != 404] == ["^/[a-z]+/x$"]  # imported, as warned


@given(st.text(alphabet="/ax.", max_size=3), st.sampled_from(["(.*)", ".*", "(.+)", ".+", "[a-z]+", ""]),
       st.text(alphabet="/ax.", max_size=3), st.booleans(), st.text(alphabet="/ax.", max_size=4),
       st.lists(st.text(alphabet="/ax.", max_size=6), min_size=1, max_size=8))
def test_a_regex_kept_to_a_prefix_matches_and_captures_as_the_original_there(
        start: str, middle: str, end: str, anchored: bool, prefix: str, tails: list[str]) -> None:
    regex = "^" + re.escape(start) + middle + re.escape(end) + ("$" if anchored else "")
    prefix = "/" + prefix
    kept = within(regex, prefix)
    if kept is None:
        return  # not written: imported as it is, with a warning
    original = re.compile(regex)
    for tail in tails:
        for path in (prefix + tail, "/" + tail):
            inside = original.search(path) if path.startswith(prefix) else None
            if kept == NEVER:
                assert inside is None
                continue
            found = re.search(kept, path)
            assert (found is None) == (inside is None), (regex, prefix, kept, path)
            assert found is None or inside is None or found.groups() == inside.groups()


def test_the_load_balancer_idiom_of_a_real_site_sends_http_to_https_and_leaves_https_alone() -> None:
    # kahihia/perdiem-django perdiem/nginx/investperdiem.com: `location / { if ($http_x_forwarded_proto
    # != "https") { rewrite ^(.*)$ https://$server_name$1 permanent; } proxy_pass ...; }`
    text = (Path(__file__).parent / "data/real/nginx/kahihia__perdiem-django__perdiem__perdiem__nginx__"
            "investperdiem.com").read_text()
    www = "www.investperdiem.com"
    assert served(text, "/artist/a?x=1", host=www) == (301, "https://www.investperdiem.com/artist/a?x=1")
    assert served(text, "/artist/a?x=1", scheme="https", host=www)[0] == 404  # served by the app, not itself
    assert served(text, "/a", host="investperdiem.com") == (301, "https://www.investperdiem.com/a")
    assert served(text, "/a", scheme="https", host="investperdiem.com") == (301, "https://www.investperdiem.com/a")


# -- server names (issue 15) ----------------------------------------------------------------------
SEVERAL_NAMES = """\
server {
    listen 80;
    server_name a.example b.example;
    location = /old { return 301 https://$host/new; }
    location = /first { return 301 https://$server_name/f; }
    rewrite ^/blog/(\\d+)$ /posts/$1 permanent;
    rewrite ^/int/(.*)$ /x/$1 last;
}
"""


def test_a_server_of_several_names_answers_each_name_and_warns_once() -> None:
    ruleset, problems = load_nginx(SEVERAL_NAMES, "n.conf")
    for host in ("a.example", "b.example"):
        assert served(SEVERAL_NAMES, "/old", host=host) == (301, f"https://{host}/new")
        # nginx's $server_name is the first name, whichever the request named
        assert served(SEVERAL_NAMES, "/first", host=host) == (301, "https://a.example/f")
        assert served(SEVERAL_NAMES, "/blog/12", host=host) == (301, "/posts/12")
    assert served(SEVERAL_NAMES, "/old", host="c.example") == (404, None)
    assert [p.line for p in problems if p.code == "import.rewrite"] == [7]  # once, not once per name
    # an https request to its own name on a plain-http server: http requests only
    assert {r.scheme for r in ruleset.rules if r.source and r.source.endswith("/old")} == {"http"}


WILDCARDS = """\
server { server_name *.example.org; location = /x { return 301 /from-wild; } rewrite ^/w/(.*)$ /wild/$1 permanent; }
server { server_name www.example.org; location = /y { return 301 /from-www; } }
server { server_name *.sub.example.org; location = /x { return 301 /from-sub; } }
server { server_name shop.*; location = /x { return 301 /from-shop; } }
server { server_name ~^(www\\.)?(?<domain>.+)$; location = /x { return 301 /from-regex; } }
"""


def test_wildcard_names_answer_in_nginx_order() -> None:
    ruleset, problems = load_nginx(WILDCARDS, "n.conf")
    assert decide(ruleset, "/x", host="a.example.org") == (301, "/from-wild")
    assert decide(ruleset, "/w/p", host="a.b.example.org") == (301, "/wild/p")
    # the exact name's server answers it, whatever it does not redirect
    assert decide(ruleset, "/y", host="www.example.org") == (301, "/from-www")
    assert decide(ruleset, "/x", host="www.example.org") == (404, None)
    # the longest leading wildcard first
    assert decide(ruleset, "/x", host="a.sub.example.org") == (301, "/from-sub")
    assert decide(ruleset, "/w/p", host="a.sub.example.org") == (404, None)
    # a trailing wildcard
    assert decide(ruleset, "/x", host="shop.example.com") == (301, "/from-shop")
    # a regex name is not read: its server's rules answer the hosts no other server names (as nginx
    # does for this regex, which matches every name), with a warning naming its line
    assert decide(ruleset, "/x", host="example.org") == (301, "/from-regex")
    assert decide(ruleset, "/z", host="a.example.org") == (404, None)
    (regex,) = [p for p in problems if p.code == "import.host" and "regex name" in p.message]
    assert regex.line == 5


def test_a_wildcard_rule_cannot_send_to_the_request_host() -> None:
    text = "server { server_name *.example.org; location = /x { return 301 https://$host/y; } }\n"
    ruleset, problems = load_nginx(text, "n.conf")
    assert ruleset.rules == ()
    assert [p.line for p in problems if p.code == "import.host"] == [1]
    # nor a regex that cannot be written after a host: skipped for the name, which the warnings name
    text = "server { server_name *.example.org;\n rewrite ^/a|^/b /c permanent;\n location = /x { return 301 /y; } }\n"
    ruleset, problems = load_nginx(text, "n.conf")
    assert [r.source_regex for r in ruleset.rules] == [r"^//[^/]+\.example\.org/x$"]
    warnings = [p for p in problems if p.code == "import.host"]
    assert {p.line for p in warnings} == {2} and any("skipped" in p.message for p in warnings)
    assert all("*.example.org" in p.message and "invalid" not in p.message for p in warnings)


CERTBOT = """\
server {
    if ($host = www.example.com) {
        return 301 https://$host$request_uri;
    } # managed by Certbot
    if ($http_host = example.com) {
        return 308 https://$host$request_uri;
    } # managed by Certbot
    if ($host != other.example.com) {
        rewrite ^/never$ /x permanent;
    }
    listen 80;
    server_name example.com www.example.com other.example.com;
    location = /page { return 301 /p; }
    return 404; # managed by Certbot
}
server {
    listen 80;
    server_name four.example.com;
    if ($host ~* ^www\\.(.*)$) { return 301 https://$1$request_uri; }
    location = /a { return 301 /b; }
}
"""


def test_certbot_host_conditions_answer_their_host_only() -> None:
    ruleset, problems = load_nginx(CERTBOT, "n.conf")
    assert served(CERTBOT, "/a?b=1", host="www.example.com") == (301, "https://www.example.com/a?b=1")
    assert served(CERTBOT, "/a", host="example.com") == (308, "https://example.com/a")
    # the port-80 server sends http to https on the name itself: https requests are not sent again
    assert served(CERTBOT, "/a", scheme="https", host="www.example.com") == (404, None)
    # other.example.com: the `!=` is false, and `return 404` answers before any location
    assert served(CERTBOT, "/never", host="other.example.com") == (404, None)
    assert served(CERTBOT, "/page", host="other.example.com") == (404, None)
    # a regex condition on the host: a warning naming its line; the rest of the server imports
    assert [p.line for p in problems if p.code == "import.conditional"] == [19]
    assert served(CERTBOT, "/a", host="four.example.com") == (301, "/b")


def test_a_server_level_return_answers_before_any_location() -> None:
    # nginx runs a server's own rewrite directives before it picks a location: `return 404;` too
    fragment = "location = /a { return 301 /b; }\nreturn 301 https://new.example$request_uri;\n"
    assert answer(fragment, "/a?x=1") == (301, "https://new.example/a?x=1")
    assert answer("rewrite ^/r$ /s permanent;\nreturn 404;\nlocation = /a { return 301 /b; }\n", "/a") == (404, None)
    assert answer("rewrite ^/r$ /s permanent;\nreturn 404;\nlocation = /a { return 301 /b; }\n", "/r") == (301, "/s")


def test_a_rewrite_to_a_url_redirects_with_302_whatever_its_flag() -> None:
    # zooniverse/static: `rewrite ^/mwp/files/(.*) http://...$1 last;` before `rewrite ^/mwp/(.*)$ ... permanent;`:
    # nginx cannot rewrite internally to a URL, so `last` and `break` redirect (302) like no flag
    text = ("server {\n    server_name blogs.example.org;\n"
            "    rewrite ^/mwp/files/(.*) http://files.example.org/10/files/$1 last;\n"
            "    rewrite ^/a/(.*) https://a.example.org/$1 break;\n"
            "    rewrite ^/mwp/(.*)$ http://blog.example.org/$1 permanent;\n"
            "    rewrite ^/internal$ /elsewhere last;\n}\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert decide(ruleset, "/mwp/files/x?q=1", host="blogs.example.org") == (
        307, "http://files.example.org/10/files/x?q=1")
    assert decide(ruleset, "/a/b", host="blogs.example.org") == (307, "https://a.example.org/b")
    assert decide(ruleset, "/mwp/post", host="blogs.example.org") == (301, "http://blog.example.org/post")
    # a path replacement with `last` stays an internal rewrite: a warning naming its line
    assert [(p.line, p.code) for p in problems if p.code.startswith("import.")] == [(6, "import.rewrite")]


def test_a_relative_rewrite_target_goes_where_the_client_resolves_it() -> None:
    # nagisa/kazlauskas.me: `rewrite ^/entries.html index.html permanent;` sends `Location: index.html`,
    # which a client resolves against the directory of the path it asked for
    text = ("rewrite ^/entries.html index.html permanent;\n"
            "rewrite ^/docs/old$ new.html?x=1 redirect;\n"
            "rewrite ^/(.*)/z$ x/$1.html permanent;\n"
            "location /l { rewrite ^/l/a b permanent; }\n")
    ruleset, problems = load_nginx(text, "n.conf")
    assert answer(text, "/entries.html?q=1") == (301, "/index.html?q=1")
    assert answer(text, "/entries.htmlx") == (301, "/index.html")
    assert answer(text, "/entries.html/") == (301, "/entries.html/index.html")
    assert answer(text, "/entries.html/a/b") == (301, "/entries.html/a/index.html")
    assert answer(text, "/docs/old") == (307, "/docs/new.html?x=1")
    assert answer(text, "/docs/old/")[0] == 404
    # what cannot be written with its directory: skipped with a warning naming its line
    assert [(p.line, p.code) for p in problems if p.code.startswith("import.")] == [
        (3, "import.rewrite"), (4, "import.rewrite")]
    assert answer(text, "/y/z")[0] == 404
