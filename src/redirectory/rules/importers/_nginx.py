"""nginx: `server`, `location`, `return`, `rewrite` and `map` directives (and the files `include`
names) as rules that answer as nginx does; docs/migrating.md says what becomes a rule and what a
warning."""

from __future__ import annotations

import contextlib
import re
from dataclasses import replace

from redirectory.rules import querymatch
from redirectory.rules.importers._common import (
    _GROUP_REF,
    _Builder,
    _guarded,
    _path,
    _regex_rule,
    _unknown_variables,
    _variables,
)
from redirectory.rules.importers._nginx_export import _EXPORT_CODE, _RETURN_FILE, _read_own_export
from redirectory.rules.importers._nginx_hosts import (
    EXACT_RANK,
    PHASE_SPAN,
    OncePerServer,
    as_host_regex,
    host_if_true,
    if_host,
    placeholder,
    plain_host,
    server_hosts,
    server_names,
    warn_names,
    wildcard,
)
from redirectory.rules.importers._nginx_relative import is_relative, relative_rewrite
from redirectory.rules.importers._nginx_scheme import OTHER, for_own_scheme, give_scheme, split_before_scheme
from redirectory.rules.importers._nginx_syntax import (
    _NGINX_REDIRECT_CODES,
    IncludeReader,
    _collect_maps,
    _Directive,
    _nginx_parse,
    _NginxContext,
    _NginxMap,
    if_scheme,
    rewrite_code,
)
from redirectory.rules.importers._nginx_within import NEVER, location_prefix, within
from redirectory.rules.importers._request_uri import QUERY_INSIDE, QUERY_NONE, query_use
from redirectory.rules.model import Problem, RuleSet
from redirectory.semantics import NOT_REDIRECTED


def load_nginx_included(
    text: str, source: str, read: IncludeReader, origins: list[str] | None = None
) -> tuple[RuleSet, list[Problem]]:
    """`load_nginx` that reads the files `include`d (`read`: see `IncludeReader`), in place as
    nginx does (also inside `map` blocks, and globs); problems in an included file name that file
    and its line. An include that cannot be read is a warning naming it (the rest imports); an
    include of a file already being read (a cycle), or nested more than 16 deep, is not read again.
    `origins` receives the file of each rule."""
    return _guarded(lambda b, t: _load_nginx(b, t, read), text, source, origins)


def _load_nginx(b: _Builder, text: str, read: IncludeReader | None = None) -> None:
    tree = _nginx_parse(text, b, read)
    maps: dict[str, _NginxMap] = {}
    _collect_maps(tree, maps)
    used: set[str] = set()
    if _read_own_export(b, maps):
        b.ours = True
        # the `return`s of our own export read maps chained on the route maps read above
        used.update(name for name in maps if name.startswith("$redirectory_"))
    ranks: dict[int, int] = {}
    top = _NginxContext(hosted=_has_hosted_server(tree), tls_hosts=_https_hosts(tree))
    _nginx_server(b, _reachable(tree, None), top, maps, used, ranks)  # (a server-level fragment's too)
    _fences(b, top.named, ranks)
    _apply_ranks(b, ranks)
    split_before_scheme(b)
    b.found = _what_is_here(tree, maps)


# nginx answers a request with the first of: the server's own `rewrite`s (in file order), the `=`
# location, the longest `^~` prefix, the regex locations (in file order), the longest prefix. A
# rule's raw rank says where it stands; regex rules get `priority` from it (dense, lowest 0).
_PHASE_SERVER, _PHASE_EXACT, _PHASE_STOP, _PHASE_REGEX, _PHASE_PREFIX = 5, 4, 3, 2, 1
_PHASE_SPAN = PHASE_SPAN


def _server_scheme(server: list[_Directive]) -> str | None:
    """What `$scheme` is in every request this server answers: "http" when no `listen` has TLS (no
    `listen` at all is port 80), "https" when every one has; None when it listens for both."""
    listens = [d for d in server if d.name == "listen"]
    tls = [_tls([d]) for d in listens]
    return "https" if tls and all(tls) else "http" if not any(tls) else None


def _tls(server: list[_Directive]) -> bool:
    """The server listens for https (a `listen` with `ssl`, or on port 443)."""
    return any(d.name == "listen" and ("ssl" in d.args or (d.args and re.search(r"(?:^|:)443$", d.args[0])))
               for d in server)


def _https_hosts(block: list[_Directive], found: dict[str, tuple[bool, int]] | None = None
                              ) -> dict[str, tuple[bool, int]]:
    """host -> (True, the line of the first server of that one name that listens for https)."""
    found = {} if found is None else found
    for d in block:
        if d.name == "server" and d.block is not None:
            if _tls(d.block):
                names = server_names(d.block)  # its hosts, and its wildcard names as written
                for host in [*server_hosts(names), *(n.lower() for n in names if wildcard(n) is not None)]:
                    found.setdefault(host, (True, d.line))
        elif d.block is not None and d.name != "map":
            _https_hosts(d.block, found)
    return found


def _has_hosted_server(block: list[_Directive]) -> bool:
    for d in block:
        if d.name == "server" and d.block is not None:
            names = server_names(d.block)
            if server_hosts(names) or any(wildcard(n) is not None for n in names):
                return True
        elif d.block is not None and d.name != "map" and _has_hosted_server(d.block):
            return True
    return False


def _rank(ctx: _NginxContext) -> int:
    # nginx picks the server first: a server of one name before the catch-all ones
    return ctx.host_rank * 10 * _PHASE_SPAN + _phase_rank(ctx)


def _phase_rank(ctx: _NginxContext) -> int:
    if ctx.location is None:
        return _PHASE_SERVER * _PHASE_SPAN
    mod, where = ctx.location
    if mod == "=":
        return _PHASE_EXACT * _PHASE_SPAN
    if mod in ("~", "~*"):
        return _PHASE_REGEX * _PHASE_SPAN
    phase = _PHASE_STOP if mod == "^~" else _PHASE_PREFIX
    return phase * _PHASE_SPAN + min(len(where), _PHASE_SPAN - 1)  # the longest prefix first


def _ranked(b: _Builder, ranks: dict[int, int], before: int, rank: int) -> None:
    """Remember the rank of the rules added since `before` (regex rules only need one)."""
    for k in range(before, len(b.rules)):
        if b.rules[k].source_regex is not None:
            ranks[k] = rank


def _apply_ranks(b: _Builder, ranks: dict[int, int]) -> None:
    dense = {raw: i for i, raw in enumerate(sorted(set(ranks.values())))}
    if len(dense) < 2:
        return  # one phase: file order is nginx's order
    for k, raw in ranks.items():
        b.rules[k] = replace(b.rules[k], priority=dense[raw])


def _server_regexes(block: list[_Directive]) -> list[re.Pattern[str]]:
    """The redirecting `rewrite`s of a server itself, which nginx runs before any location."""
    found = []
    for d in block:
        if d.name == "rewrite" and 2 <= len(d.args) <= 3:
            if rewrite_code(d.args) is not None:
                try:
                    found.append(re.compile(d.args[0]))
                except re.error:
                    continue
    return found


def _nginx_server_names(b: _Builder, d: _Directive, ctx: _NginxContext, maps: dict[str, _NginxMap],
                        used: set[str], ranks: dict[int, int]) -> None:
    """A `server`: imported once per plain name (`_nginx_hosts`), or once for no host."""
    block = d.block or []
    names = server_names(block)
    hosts = server_hosts(names)
    warn_names(b, d.line, names, hosts)
    wildcards = [(name, *w) for name in names if (w := wildcard(name)) is not None]
    if not _tls(block):
        beside = [h for h in hosts if h in ctx.tls_hosts]
        wild = [w for w in wildcards if w[0].lower() in ctx.tls_hosts]
        if beside or wild:
            beside += [w[0].lower() for w in wild]
            wildcards = [w for w in wildcards if w not in wild]
            line = ctx.tls_hosts[beside[0]][1]
            b.warn(d.line, "import.host", f"`server_name {' '.join(names)}` without https: skipped for "
                   f"{', '.join(beside)}; the server of line {line} answers https for "
                   f"{'them' if len(beside) > 1 else beside[0]} and is imported (redirectory answers both "
                   "schemes with one table; a plain-http server of a name that has an https one usually "
                   "only sends to https, which the TLS in front of redirectory does)", name="from")
            hosts = [h for h in hosts if h not in beside]
            if not hosts and not wildcards:
                return
    scheme = _server_scheme(block)
    first = plain_host(names[0]) if names else None
    once = OncePerServer(b)
    already = set(used)  # the maps imported before this server: each pass imports the others for its host
    passes: list[tuple[str | None, str | None, int, str]] = [(h, None, EXACT_RANK, h) for h in hosts]
    for name, matches, order in wildcards:  # imported for a placeholder host, then for the hosts it matches
        passes.append((placeholder(len(ctx.named)), matches, order, name))
        ctx.named.append((name, matches, order, d.line))
    ctx.named.extend((h, re.escape(h), EXACT_RANK, d.line) for h in hosts)
    for host, host_regex, rank, label in passes or [(None, None, 0, "")]:
        before = len(b.rules)
        own = set(already)
        _nginx_server(b, _reachable(block, host), _NginxContext(
            host=host, hosted=ctx.hosted, tls_hosts=ctx.tls_hosts, scheme=scheme, server_name=first,
            host_rank=rank), maps, own, ranks)
        used |= own
        if host is None and len(b.rules) > before:  # rules of every host: the named ones need fences
            ctx.named.append(("", ".*", 0, d.line))
        if host is not None and host_regex is not None:
            as_host_regex(b, before, host, host_regex, label, ranks, 2 * rank * 10 * _PHASE_SPAN)
        elif scheme is not None:
            for_own_scheme(b, before, host, scheme)
        once.next_pass()


def _fences(b: _Builder, named: list[tuple[str, str, int, int]], ranks: dict[int, int]) -> None:
    """nginx answers a name with the server that names it best (`_nginx_hosts`), whatever that one
    redirects: for each name a wildcard of lower rank (or a server without a name, whose rules answer
    any host) also matches, a rule that redirects nothing (status 404) for that name's hosts, after
    all that name's rules, before the others'."""
    for name, host_regex, rank, line in named:
        if not name:
            continue
        sample = name.lower().replace("*.", "a.").replace(".*", ".com")
        sample = "a" + sample if sample.startswith(".") else sample
        if not any(r < rank and re.fullmatch(w, sample) for _n, w, r, _l in named):
            continue
        start = len(b.rules)
        b.add(line, {"from_regex": f"^//{host_regex}/", "status": NOT_REDIRECTED})
        if len(b.rules) > start:
            ranks[start] = 2 * rank * 10 * _PHASE_SPAN - 1


def _reachable(block: list[_Directive], host: str | None) -> list[_Directive]:
    """A server's directives that can answer a request (for `host`): nginx runs the server's own
    rewrite directives in order before choosing a location, so after a `return` there (any status:
    `return 404;` too), or an `if ($host = host)` whose block redirects every request, only the
    rewrite directives before it and it remain."""
    for n, d in enumerate(block):
        answers = d.name == "return" or (
            host is not None and d.name == "if" and d.block is not None and if_host(d.args) is not None
            and host_if_true(d.args, host) and any(_answers_all(x, ("", "/")) for x in d.block))
        if answers:
            return [x for x in block[:n] if x.name != "location"] + [d]
    return block


def _nginx_server(
    b: _Builder, block: list[_Directive], ctx: _NginxContext, maps: dict[str, _NginxMap], used: set[str],
    ranks: dict[int, int],
) -> None:
    ctx.server_rewrites = _server_regexes(block)
    ctx.has_regex = bool(ctx.server_rewrites) or any(
        d.name == "location" and d.block is not None and (d.args[:1] in (["~"], ["~*"]) or
                                                          (d.args and d.args[0].startswith("~")))
        for d in block)
    ctx.has_others = any(d.name == "location" and d.block is not None
                         and _nginx_location(b, d) not in (None, ("", "/"), ("^~", "/")) for d in block)
    before = len(b.rules)
    other = _nginx_walk(b, block, ctx, maps, used, ranks)
    after = len(b.rules)
    _content_locations(b, block, ctx, ranks, before)
    _auto_redirects(b, block, ctx)
    if other is not None:  # after an `if ($scheme = http) { return ...; }`: the server's locations answer https
        give_scheme(b, range(after, len(b.rules)), other)


_EVERY = ("^", "^.*", "^.*$", ".*", "^/", "/", "^(.*)$", "^/(.*)$", "(.*)")


def _answers_all(d: _Directive, location: tuple[str, str]) -> bool:
    """Whether a directive of a location answers every request the location gets (a `return`, or a
    `rewrite` to a redirect whose regex matches all its paths)."""
    if d.name == "return":  # a redirect (`return 301 URL`, `return URL`); `return 500` answers itself
        return bool(d.args) and (d.args[0] in ("301", "302", "303", "307", "308") or not d.args[0].isdigit())
    if d.name != "rewrite" or len(d.args) < 2:
        return False
    if len(d.args) > 3 or rewrite_code(d.args) is None:
        return False
    if d.args[0] in _EVERY:
        return True
    if location[0] == "=":
        try:
            return re.search(d.args[0], location[1]) is not None
        except re.error:
            return False
    return False


def _content_locations(b: _Builder, block: list[_Directive], ctx: _NginxContext, ranks: dict[int, int],
                       before: int) -> None:
    """A location that serves content (`root`, `proxy_pass`...: no `return` for all its paths) keeps
    its paths from the redirects of the locations after it in nginx's order: for each one that comes
    before such a redirect, a rule that redirects nothing (status 404) for its paths, ranked right
    after the redirects of its own `rewrite`s."""
    redirects = [r for k, r in ranks.items()
                 if k >= before and r // 2 % (10 * _PHASE_SPAN) < _PHASE_SERVER * _PHASE_SPAN]
    if not redirects:
        return
    lowest = min(redirects)
    for d in block:
        if d.name != "location" or d.block is None:
            continue
        location = _nginx_location(b, d)
        if location is None or location == ("", "/") or any(_answers_all(x, location) for x in d.block):
            continue
        inner = replace(ctx, location=location)
        rank = 2 * _rank(inner) - 1
        if rank < lowest:
            continue  # no redirect of another location comes after it
        start = len(b.rules)
        _nginx_location_rule(b, d.line, f"location {' '.join(d.args)} (its content)", inner, "", NOT_REDIRECTED,
                             None, False)
        _ranked(b, ranks, start, rank)

#: the directives after which nginx answers `/prefix` with 301 `/prefix/` for `location /prefix/`
_PASSES = frozenset({"proxy_pass", "fastcgi_pass", "uwsgi_pass", "scgi_pass", "memcached_pass", "grpc_pass"})


def _auto_redirects(b: _Builder, block: list[_Directive], ctx: _NginxContext) -> None:
    """nginx's own redirect: a prefix location ending in `/` whose requests are passed on
    (`proxy_pass`...) answers its name without the slash with 301 to the name with it, query kept,
    unless a location names that path itself; a server `rewrite` still comes first."""
    if not ctx.host and ctx.hosted:
        return  # the catch-all server beside named ones: a rule cannot say which hosts (see above)
    locations = [(_nginx_location(b, d), d) for d in block if d.name == "location" and d.block is not None]
    named = {loc[1] for loc, _d in locations if loc is not None and loc[0] in ("", "=", "^~")}
    prefix = f"//{ctx.host}" if ctx.host else ""
    for loc, d in locations:
        if loc is None or loc[0] not in ("", "^~") or not loc[1].startswith("/") or not loc[1].endswith("/"):
            continue
        path = loc[1][:-1]
        if not path or path in named or not any(x.name in _PASSES for x in d.block or []):
            continue
        if any(r.search(path) for r in ctx.server_rewrites):
            continue
        b.add(d.line, {"from": prefix + _path(path), "to": _path(loc[1]), "status": 301})


def _what_is_here(tree: list[_Directive], maps: dict[str, _NginxMap]) -> str:
    """What an nginx file holds, for the error when it yields no redirect."""
    counts: dict[str, int] = {}

    def walk(block: list[_Directive]) -> None:
        for d in block:
            counts[d.name] = counts.get(d.name, 0) + 1
            if d.block is not None and d.name != "map":
                walk(d.block)
            elif d.block is not None:  # a map's entries are not directives; its includes are
                counts["include"] = counts.get("include", 0) + sum(1 for e in d.block if e.name == "include")

    walk(tree)
    bare = [d for d in tree if d.block is None and len(d.args) == 1 and (d.name.startswith(("/", "~", "\\")))]
    if bare and len(bare) * 2 >= len(tree):
        return (f"{len(bare)} `map` entries outside any `map` block (a map body that another file includes): "
                "import the configuration that includes it, whose `map` and `return` say which requests "
                "redirect and with which status; or wrap it as `map $uri $new { ... }` plus `return 301 $new;`")
    unused = [name for name in maps if counts.get("return", 0) == 0 and counts.get("rewrite", 0) == 0]
    parts = [f"{n} `{name}`" for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:6]]
    if "include" in counts:
        parts.append("(`include`d files are not read: import the files they name too, or a file holding them)")
    if unused:
        parts.append(f"(maps {', '.join(unused[:3])} are used by no `return` or `rewrite`)")
    return "directives " + " ".join(parts).replace("` ", "`, ", len(parts) - 1) if parts else ""



def _nginx_walk(
    b: _Builder, block: list[_Directive], ctx: _NginxContext, maps: dict[str, _NginxMap], used: set[str],
    ranks: dict[int, int], in_if: bool = False,
) -> str | None:
    """Add the rules of `block`. Returns the scheme its other rules were given (see `_scheme_if`)."""
    starts: list[int] = []  # where the rules of each directive start
    answered: tuple[int, str] | None = None  # (its index, the other scheme) of a scheme `if` that answers all
    for d in block:
        before = len(b.rules)
        starts.append(before)
        if d.name == "if" and d.block is not None and not in_if and (scheme := if_scheme(d.args)) is not None:
            if _scheme_if(b, d, scheme, ctx, maps, used, ranks) and answered is None:
                answered = (len(starts) - 1, OTHER[scheme])
            continue
        if d.name == "server" and d.block is not None:
            _nginx_server_names(b, d, ctx, maps, used, ranks)
            continue
        if d.name == "if" and d.block is not None and not in_if and if_host(d.args) is not None:
            if ctx.host is None:
                _nginx_walk(b, d.block, ctx, maps, used, ranks, in_if=True)  # skipped, with a warning
            elif host_if_true(d.args, ctx.host):  # the rules of its block, on this host alone
                _nginx_walk(b, d.block, ctx, maps, used, ranks)
            continue
        elif d.name == "location" and d.block is not None:
            location = _nginx_location(b, d)
            if location is not None:
                inner = replace(ctx, location=location)
                _nginx_walk(b, d.block, inner, maps, used, ranks)
            continue
        elif d.name == "if" and d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, ranks, in_if=True)
            continue
        elif d.name in ("map", "upstream", "events", "types", "geo", "split_clients", "limit_except"):
            continue
        elif d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, ranks, in_if)
            continue
        elif d.name == "return":
            _nginx_return(b, d, ctx, maps, used, in_if)
        elif d.name == "rewrite":
            _nginx_rewrite(b, d, ctx, in_if)
        else:
            continue
        _ranked(b, ranks, before, 2 * _rank(ctx))  # even: a location's content (`_content_locations`) ranks odd
    if answered is None:
        return None
    # what nginx runs before the `if` answers both schemes: the rewrite directives before it (a server's
    # locations come after all of them); every other rule of the block answers the other scheme only
    at, other = answered
    ends = [*starts[1:], len(b.rules)]
    both = {n for n in range(at + 1) if n == at or block[n].name != "location" or ctx.location is not None}
    give_scheme(b, (k for n in range(len(block)) if n not in both for k in range(starts[n], ends[n])), other)
    return other if ctx.location is None else None


#: a literal scheme before the server's first name where it has none: `http://${server_name}`
_SCHEME_ON_HOST = re.compile(r"(?i)https?://\$\{?server_name\b")


def _scheme_if(b: _Builder, d: _Directive, scheme: str, ctx: _NginxContext, maps: dict[str, _NginxMap],
               used: set[str], ranks: dict[int, int]) -> bool:
    """`if ($scheme = http) { return 301 https://$host$request_uri; }` (also `!= https`, and
    `$http_x_forwarded_proto`, `$https`): the rules of its block, for requests of `scheme` only. nginx
    runs it in the rewrite phase of its server (before any location) or of its location. Returns
    whether it answers every request of `scheme` there (the caller gives the rest the other scheme)."""
    condition = re.sub(r"\s*\)$", ")", re.sub(r"^\(\s*", "(", " ".join(d.args)))
    if ctx.scheme is not None and ctx.scheme != scheme and "forwarded" not in condition:
        b.warn(d.line, "import.conditional", f"`if {condition}` is never true in this server, which listens "
               f"for {ctx.scheme} only: its block is skipped")
        return False
    start = len(b.rules)
    answers = False
    for x in d.block or []:
        target = ({"return": x.args[-1:], "rewrite": x.args[1:2]}.get(x.name) or [""])[0]
        if _SCHEME_ON_HOST.match(target) and not ctx.host:
            b.warn(x.line, "import.host", f"`{x.name} {' '.join(x.args)}` in `if {condition}`: it sends to "
                   f"{target.split(':')[0].lower()} on the request's own host, which a rule can name only in a "
                   "server with one plain `server_name` (a target on the request's host is a path, which keeps "
                   "the scheme): skipped", name="to")
            continue
        before = len(b.rules)
        _nginx_walk(b, [x], ctx, maps, used, ranks)
        answers = answers or (len(b.rules) > before and _answers_all(x, ctx.location or ("", "/")))
    give_scheme(b, range(start, len(b.rules)), scheme)
    return answers


def _nginx_location(b: _Builder, d: _Directive) -> tuple[str, str] | None:
    args = d.args
    if len(args) == 2 and args[0] in ("=", "~", "~*", "^~"):
        return args[0], args[1]
    if len(args) == 1:
        arg = args[0]
        if arg.startswith("@"):
            return None  # named location: reached only by internal redirects
        for mod in ("~*", "~", "^~", "="):
            if arg.startswith(mod) and len(arg) > len(mod):
                return mod, arg[len(mod):]
        return "", arg
    return None


def _nginx_return(
    b: _Builder, d: _Directive, ctx: _NginxContext, maps: dict[str, _NginxMap], used: set[str], in_if: bool
) -> None:
    args = d.args
    if len(args) == 1 and re.match(r"(?i)https?://|\$scheme", args[0]):
        code, url = 302, args[0]
    elif len(args) == 2 and args[0].isdigit() and len(args[0]) <= 4:
        code, url = int(args[0]), args[1]
    elif len(args) == 1 and args[0] == "410":
        b.status(410, d.line, "`return 410`")
        return
    else:
        if args and args[0].isdigit() and int(args[0][:4]) in _NGINX_REDIRECT_CODES:
            b.warn(d.line, "import.unsupported", f"`return {' '.join(args)}` has no target URL: skipped")
        return
    if code not in _NGINX_REDIRECT_CODES:
        return  # return 200 "text", 403, 404...: not a redirect
    what = f"return {code} {url}"
    url = _request_host(_same_host(url, ctx), ctx)
    # nginx's `return` sends its URL as written: the request's query only where the URL names it
    query: str | None = None if _ARGS.search(url) else "drop"
    keep_args = "$is_args$args" in url
    url = url.replace("$is_args$args", "")
    # `return CODE $var` with `map ... $var { ... }`: one rule per map entry
    if url in maps or (url.startswith("${") and url[2:-1] in maps):
        name = url if url in maps else "$" + url[2:-1]
        _nginx_map_rules(b, d, code, maps[name], ctx, used, name, keep_args)
        if not in_if:
            _map_default(b, d, code, maps[name], ctx, name)
        return
    if re.fullmatch(r"\$redirectory_30[1378]", url):
        if _RETURN_FILE not in used:  # once per file
            used.add(_RETURN_FILE)
            b.warn(d.line, _EXPORT_CODE, f"`{what}` reads the maps of `rules export --format nginx`, which are in "
                   "its other file: import redirectory-map.conf (this file holds no rules)")
        return
    if in_if:
        _skip_in_if(b, d, what)
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    url = re.sub(r"\?\$(?:args|\{args\}|query_string|\{query_string\})$", "", url)
    _nginx_location_rule(b, d.line, what, ctx, url, status, query, keep_args)


def _map_default(b: _Builder, d: _Directive, code: int, m: _NginxMap, ctx: _NginxContext, name: str) -> None:
    """`return CODE $var` outside an `if`: nginx sends the map's `default` for every path of the
    location that no entry matches. A regex rule after the entries' rules (they come first)."""
    value = m.default
    if value is None or not re.match(r"(?i)https?://|/|\$scheme", value):
        return  # no default, or "" / 0 (a map read by an `if`): nothing to send
    what = f"return {code} {name} (its map's `default {value}`, line {m.line})"
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    value = _request_host(_same_host(value, ctx), ctx)
    query = None if _ARGS.search(value) else "drop"
    keep_args = "$is_args$args" in value
    value = re.sub(r"\?\$(?:args|\{args\}|query_string|\{query_string\})$", "", value.replace("$is_args$args", ""))
    if ctx.location not in (None, ("", "/")):
        _nginx_location_rule(b, d.line, what, ctx, value, status, query, keep_args)
        return
    if _other_hosts_only(b, d.line, what, ctx):
        return
    regex = "^/"
    if re.search(r"\$\{?(?:request_uri|uri)\b", value):
        converted = _nginx_uri_target(value, "/{uri}", keep_args)
        if converted is None:
            _unknown_variables(b, d.line, what, value, allow_groups=False)
            return
        value, query = converted[0], converted[1] or query
        regex = "^/(?P<uri>.*)$"
    elif _unknown_variables(b, d.line, what, value, allow_groups=False):
        return
    _regex_rule(b, d.line, f"`{what}`", regex, value, status, query=query, host=ctx.host)


#: variables holding the request's query (or the whole request line, query included)
_ARGS = re.compile(r"\$\{?(?:args|query_string|request_uri|is_args)\b")


def _nginx_location_rule(
    b: _Builder, line: int, what: str, ctx: _NginxContext, url: str, status: int, query: str | None,
    keep_args: bool, rewrite: tuple[str, str] | None = None,
) -> None:
    """A redirect to `url` for the requests the location of `ctx` answers (the whole server at
    its level); `rewrite` is the (regex, replacement) of a `rewrite` that matches them all."""
    loc = ctx.location or ("", "/")
    mod, where = loc
    if mod in ("~", "~*"):
        if _other_hosts_only(b, line, what, ctx):
            return
        whole = None
        if re.search(r"\$\{?(?:request_uri|uri)\b", url):  # the whole path: a group around the regex
            found = _nginx_uri_target(url, "{request_path}", keep_args)
            if found is not None:
                # `https://new$request_uri`: the path (it starts with `/`) right after the host
                url = re.sub(r"^(https?://[^/?#{]+)\{request_path\}", r"\1/{request_path}", found[0])
                query = found[1] or query
                whole = "request_path"
        if _unknown_variables(b, line, what, url, allow_groups=True):
            return
        _regex_rule(b, line, f"`{what}`", where, url, status, case_insensitive=mod == "~*", query=query,
                    whole=whole, host=ctx.host)
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    if not where.startswith("/"):
        b.warn(line, "import.unsupported", f"`{what}`: location {where!r} is not a path: skipped", name="from")
        return
    if mod == "=":
        exact = _nginx_uri_target(url, where, keep_args)
        if exact is None:
            _unknown_variables(b, line, what, url, allow_groups=False)
            return
        to, uri_query = exact
        query = uri_query or query
        if any(r.search(where) for r in ctx.server_rewrites):
            # a `rewrite` of the server that nginx runs first also matches: a regex rule after it
            _regex_rule(b, line, f"`{what}`", f"^{_literal(where)}$", to, status, query=query, host=ctx.host)
            return
        b.add(line, {"from": prefix + _path(where), "to": to, "status": status, "query": query})
        return
    uses_uri = "$request_uri" in url or "${request_uri}" in url or re.search(r"\$\{?uri\b", url)
    everything = ctx.location is None or (where == "/" and (mod == "^~" or not ctx.has_regex))
    if everything and not ctx.host and ctx.hosted:
        b.warn(line, "import.host", f"`{what}`: this server answers the hosts the file's other servers do not "
               "name, which a rule cannot say (a rule for every path would also answer theirs): skipped",
               name="from")
        return
    # `location /` beside others: the paths nginx gives them are left out below (`_content_locations`)
    everything = everything and (ctx.location is None or not ctx.has_others)
    if everything:
        # the server level, or `location /` with nothing before it: every path
        pattern = f"{prefix}/{{rest:path}}"
        to = url
        if uses_uri:
            converted = _nginx_uri_target(url, "/{rest}", keep_args)
            if converted is None:
                _unknown_variables(b, line, what, url, allow_groups=False)
                return
            to, uri_query = converted
            query = uri_query or query
        elif _unknown_variables(b, line, what, url, allow_groups=False):
            return
        b.add(line, {"from": pattern, "to": to, "status": status, "query": query})
        return
    # a prefix location (also ^~) matches every path that starts with it, `/pre` also `/prefix`
    to = url
    if uses_uri:
        converted = _nginx_uri_target(url, "/{uri}", keep_args)
        if converted is None:
            _unknown_variables(b, line, what, url, allow_groups=False)
            return
        to, uri_query = converted
        query = uri_query or query
        regex = f"^/(?P<uri>{_literal(where)[1:]}.*)$"
    else:
        if _unknown_variables(b, line, what, url, allow_groups=False):
            return
        regex = f"^{_literal(where)}"
    _regex_rule(b, line, f"`{what}`", regex, to, status, query=query, host=ctx.host)


#: a regex that matches one path (or it and the same with a slash): `^/a/b\.html$`, `^/a/b/?$`
# (`+` only escaped: bare, it repeats what comes before it)
_LITERAL_REGEX = re.compile(r"\^((?:/(?:[A-Za-z0-9_~%,;:@!=&'-]|\\[.\-_~/+])*)+?)(/\?)?\$")
_DOTTED_REGEX = re.compile(r"\^((?:/(?:[A-Za-z0-9_~%,;:@!=&'-]|\.(?![+*?{])|\\[.\-_~/+])*)+?)(/\?)?\$")


def _literal_paths(regex: str, dots: bool = False) -> list[str] | None:
    """The paths a regex of literal characters matches (`^/a/?$`: `/a` and `/a/`), else None;
    with `dots`, an unescaped `.` (any character) is read as the dot it was most likely written for."""
    m = (_DOTTED_REGEX if dots else _LITERAL_REGEX).fullmatch(regex)
    if m is None:
        return None
    path = re.sub(r"\\(.)", r"\1", m.group(1))
    if any(segment in (".", "..") for segment in path.split("/")):
        return None  # a dot segment: the request's path never holds one (normalised away)
    if not m.group(2):
        return [path]
    return None if path.endswith("/") else [path, path + "/"]


def _literal(path: str) -> str:
    """A literal path (as a `from` path would hold it) as a regex."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", _path(path))


def _request_host(url: str, ctx: _NginxContext) -> str:
    """`https://$host/...` in a server with one name: that name, the only host its rules answer
    (elsewhere `https://{host}/...`, the request's own host); `$scheme://` in a server that listens
    with one scheme only: that scheme."""
    if ctx.scheme:
        url = re.sub(r"^\$(?:scheme|\{scheme\})://", ctx.scheme + "://", url)
    if ctx.server_name:  # nginx's $server_name is the server's first name, whatever the request's
        url = re.sub(r"^(https?://)\$(?:server_name|\{server_name\})(?![A-Za-z0-9_])",
                     lambda m: m.group(1) + str(ctx.server_name), url)
    # where the server's host is not one name: the request's own host (`https://{host}/...`)
    own = str(ctx.host) if ctx.host else "{host}"
    return re.sub(r"^(https?://)\$(?:host|http_host|\{host\}|\{http_host\})(?![A-Za-z0-9_])",
                  lambda m: m.group(1) + own, url)


def _nginx_uri_target(url: str, path: str, keep_args: bool) -> tuple[str, str | None] | None:
    """`url` with $request_uri (query kept) or $uri (query dropped unless $is_args$args
    followed) replaced by `path`; None when another variable remains."""
    query: str | None = None
    out = url
    if "$request_uri" in out or "${request_uri}" in out:
        out = out.replace("${request_uri}", path).replace("$request_uri", path)
    if re.search(r"\$\{?uri\b", out):
        out = re.sub(r"\$\{uri\}|\$uri\b", path, out)
        if keep_args or "?$args" in out or "?$query_string" in out:
            out = out.replace("?$args", "").replace("?$query_string", "")
        else:
            query = "drop"
    if _variables(out):
        return None
    return out, query


def _nginx_map_rules(
    b: _Builder, d: _Directive, code: int, m: _NginxMap, ctx: _NginxContext, used: set[str], name: str,
    keep_args: bool = False,
) -> None:
    if name in used:
        return
    used.add(name)
    if m.source not in ("$uri", "$request_uri", "$document_uri"):
        b.warn(m.line, "import.unsupported", f"`map {m.source} {name}` maps {m.source}, not the path ($uri): "
               "skipped")
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    on_request_uri = m.source == "$request_uri"
    exact_keys = {k.removeprefix("\\") for k, _v, _l in m.entries if not k.startswith("~")}
    earlier: list[re.Pattern[str]] = []  # the regex keys before, but those of one path:
    earlier_paths: set[str] = set()  # the paths those match
    for key, value, line in m.entries:
        what = f"map entry `{key} {value}`"
        status = b.status(code, line, what)
        if status is None:
            continue
        value = _request_host(_same_host(value, ctx), ctx)
        query = None if keep_args or _ARGS.search(value) else "drop"
        if key.startswith("~"):
            ci = key.startswith("~*")
            regex = key[2:] if ci else key[1:]
            if _unknown_variables(b, line, what, value, allow_groups=True):
                continue
            # on $request_uri, a regex that ends with `$` and matches no `?` answers requests
            # without a query only; one that may take the query into what it matches reads the
            # path and query as nginx does (`regex_query`; `_request_uri`)
            use = query_use(regex) if on_request_uri else None
            exact_query = True if use == QUERY_NONE else None
            # in a server of one name, a regex of one path is that path's rule for that host alone
            literal = None if ci else _literal_paths(regex)
            paths = None if ctx.location is not None or not ctx.host else literal
            if use == QUERY_INSIDE:
                _regex_rule(b, line, what, regex, value, status, case_insensitive=ci, query=query, host=ctx.host,
                            regex_query=True)
            elif paths and not any(p in exact_keys or p in earlier_paths or any(e.search(p) for e in earlier)
                                 for p in paths):
                for path in paths:  # nginx's first match for these paths: rules of this host alone
                    b.add(line, {"from": prefix + _path(path), "to": value, "status": status, "query": query,
                                 "query_exact": exact_query})
            else:
                _regex_rule(b, line, what, regex, value, status, case_insensitive=ci, query=query, host=ctx.host,
                            query_exact=bool(exact_query))
            if literal is not None:
                earlier_paths.update(literal)
            else:
                with contextlib.suppress(re.error):
                    earlier.append(re.compile(regex, re.IGNORECASE if ci else 0))
            continue
        if key.startswith("\\"):
            key = key[1:]
        match_query: str | None = None
        if on_request_uri and "?" in key:  # that path with that query (parameters in any order, here)
            key, _q, match_query = key.partition("?")
            try:
                querymatch.parse_text(match_query)
            except querymatch.QueryMatchError as exc:
                b.warn(line, "import.query", f"{what}: the query of the key cannot be matched: {exc}: skipped",
                       name="from")
                continue
        if not key.startswith("/"):
            b.warn(line, "import.unsupported", f"{what}: the key is not a plain path: skipped", name="from")
            continue
        if _unknown_variables(b, line, what, value, allow_groups=False):
            continue
        b.add(line, {"from": prefix + _path(key), "to": value, "status": status, "query": query,
                     "query_match": match_query or None, "query_exact": True if on_request_uri else None})


#: `$scheme://$host` (or `$http_host`, `$server_name`) at the start of a target: the host and scheme
#: the request came with, which a same-host target (a path) keeps.
_SAME_ORIGIN = re.compile(r"\$(?:scheme|\{scheme\})://\$(?:host|http_host|server_name|\{host\}|\{http_host\}|\{server_name\})"
                          r"(?![A-Za-z0-9_])")


def _same_host(url: str, ctx: _NginxContext) -> str:
    """`$scheme://$host/path` → `/path`: a target on the host and scheme of the request
    (`$server_name`, the server's first name, only in the pass of that name)."""
    m = _SAME_ORIGIN.match(url)
    if m is None or ("server_name" in m.group(0) and ctx.server_name != ctx.host):
        return url
    rest = url[m.end():]
    return rest if rest.startswith(("/", "$")) else "/" + rest


def _nginx_rewrite(b: _Builder, d: _Directive, ctx: _NginxContext, in_if: bool) -> None:
    args = d.args
    if len(args) < 2 or len(args) > 3:
        b.warn(d.line, "import.unsupported", "`rewrite` needs REGEX REPLACEMENT [flag]: skipped")
        return
    regex, replacement = args[0], args[1]
    what = f"rewrite {' '.join(args)}"
    # nginx redirects when the replacement starts with http://, https:// or $scheme (whatever the flag)
    code = rewrite_code(args)
    replacement = _request_host(_same_host(replacement, ctx), ctx)
    if code is None:
        b.warn(d.line, "import.rewrite", f"`{what}` is an internal rewrite, not a redirect: skipped "
               "(use `permanent` or `redirect` for a redirect)")
        return
    if in_if:
        _skip_in_if(b, d, what)
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    query = None
    if replacement.endswith("?"):  # nginx does not add the request's query; `$request_uri` holds it
        replacement = replacement[:-1]
        query = None if re.search(r"\$\{?request_uri\b", replacement) else "drop"
    loc = ctx.location
    if is_relative(replacement):  # `index.html`: the client resolves it against the path it asked for
        relative_rewrite(b, d.line, what, regex, replacement, status, query, ctx.host, loc is not None)
        return
    if loc is not None and loc[0] == "=":
        # the location answers one path: the rewrite applies to it or never
        try:
            found = re.search(regex, loc[1])
        except re.error:
            found = None
        if found is None:
            return
        groups = found.groups()
        def group(m: re.Match[str]) -> str:
            n = int(m.group(1) or m.group(2))
            return (groups[n - 1] or "") if 0 < n <= len(groups) else m.group(0)
        replacement = re.sub(r"\$(?:\{([0-9])\}|([0-9]))", group, replacement)
        _nginx_location_rule(b, d.line, what, ctx, replacement, status, query, False)
        return
    if loc is not None and loc[0] in ("", "^~") and not loc[1].startswith("/"):
        b.warn(d.line, "import.unsupported", f"`{what}`: location {loc[1]!r} is not a path, so nginx never "
               "selects it for a request: skipped", name="from")
        return
    every = regex in ("^", "^.*", "^.*$", ".*", "^/", "/") and not re.search(r"\$\{?[0-9]", replacement)
    whole = _captures_as_uri(regex, replacement) if loc is not None else None
    if whole is not None:
        # `location /old { rewrite ^(.*)$ https://new$1 permanent; }`: every path of the location,
        # its capture the whole path ($uri); a rewrite passes the query on unless its target ends in `?`
        _nginx_location_rule(b, d.line, what, ctx, whole, status, query, query is None)
        return
    if every and (loc is not None or ctx.host):
        # a rewrite of every path the location answers (or, in a server of one name, every path of
        # that host: a regex rule would answer every host): the location's rule
        if loc is None:
            shadowed = [r.pattern for r in ctx.server_rewrites[:_index(ctx.server_rewrites, regex)]
                        if _literal_paths(r.pattern, dots=True) is None]
            if shadowed and ctx.host and not _variables(replacement):
                # after the regex rewrites before it: a regex rule of this host, in file order
                _regex_rule(b, d.line, f"`{what}`", "^/", replacement, status, query=query, host=ctx.host)
                return
            if shadowed:
                b.warn(d.line, "import.order", f"`{what}`: a rule for every path of {ctx.host}, which a rule "
                       f"of a path comes before; the regex rewrites before it in this server ({shadowed[0]!r}"
                       f"{' ...' if len(shadowed) > 1 else ''}) are regex rules, which come after it: on "
                       f"{ctx.host} they no longer answer", name="from")
        _nginx_location_rule(b, d.line, what, ctx, replacement, status, query, replacement.endswith("$is_args$args"))
        return
    if _unknown_variables(b, d.line, what, replacement, allow_groups=True):
        return
    if _other_hosts_only(b, d.line, what, ctx):
        return
    ci = False
    if regex.startswith("(?i)"):
        regex, ci = regex[4:], True
    paths = (None if ci or loc is not None or not ctx.host or _GROUP_REF.search(replacement)
             else _literal_paths(regex, dots=True))
    if paths and not any(r.search(p) for r in ctx.server_rewrites[:_index(ctx.server_rewrites, regex)] for p in paths):
        # a server `rewrite` (run before any location) of one path: an exact rule of this host alone
        if _literal_paths(regex) is None:
            b.warn(d.line, "import.regex", f"`{what}`: `.` matches any character in nginx; a regex rule would "
                   f"answer every host, not only {ctx.host}: imported as the path with a dot there (as "
                   "written for), for this host", name="from")
        for path in paths:
            b.add(d.line, {"from": f"//{ctx.host}" + _path(path), "to": replacement, "status": status, "query": query})
        return
    if loc is not None:
        constrained = _in_location(b, d.line, what, regex, loc, ci)
        if constrained is None:
            return
        regex = constrained
    _regex_rule(b, d.line, f"`{what}`", _as_gateway_path(regex), replacement, status, case_insensitive=ci,
                query=query, host=ctx.host)


def _in_location(b: _Builder, line: int, what: str, regex: str, location: tuple[str, str], ci: bool) -> str | None:
    """A location's `rewrite` regex for the paths of that location only (`_nginx_within`): nginx
    runs it only for the requests that selected the location. None: skipped (it matches none)."""
    prefix = location_prefix(location)
    found = within(regex, prefix) if prefix is not None and not ci else None
    where = f"location {location[0]} {location[1]}".replace("location  ", "location ")
    if found == NEVER:
        b.warn(line, "import.location", f"`{what}`: its regex matches no path of `{where}`, the only requests "
               "nginx runs it for: skipped", name="from_regex")
        return None
    if found is None:
        b.warn(line, "import.location", f"`{what}`: nginx runs it only for the paths of `{where}`, and its regex "
               "also matches other paths, which a rule's regex cannot leave out here: imported for every path "
               "it matches, check it", name="from_regex")
        return regex
    return found


def _as_gateway_path(regex: str) -> str:
    """`regex` for the path as the gateway keeps it: nginx matches the decoded path, where a `#`
    (sent as `%23`) is a character; the gateway keeps it as `%23` (docs/rules.md, normalisation)."""
    return re.sub(r"\\?#", "%23", regex)


def _captures_as_uri(regex: str, replacement: str) -> str | None:
    """The replacement of a `rewrite` whose regex matches every path (`^(.*)$`, `^/(.*)$`...) with
    its capture written as `$uri` (the whole path; `/$1` after `^/(.*)$`); None for another regex,
    or when another capture remains."""
    if regex not in _EVERY:
        return None
    out = replacement
    if regex in ("^(.*)$", "(.*)"):
        out = re.sub(r"\$\{1\}|\$1", "$uri", out)
    elif regex == "^/(.*)$":
        out = re.sub(r"/(?:\$\{1\}|\$1)", "$uri", out)
    return None if re.search(r"\$\{?[0-9]", out) else out


def _index(rewrites: list[re.Pattern[str]], regex: str) -> int:
    """Where `regex` is among a server's own rewrites (they come before it), else all of them."""
    return next((i for i, r in enumerate(rewrites) if r.pattern == regex), len(rewrites))


def _other_hosts_only(b: _Builder, line: int, what: str, ctx: _NginxContext) -> bool:
    """A regex rule of a server without one name, in a file whose other servers name their hosts:
    nginx sends it only the requests for other hosts, and a regex rule would answer every host."""
    if ctx.host or not ctx.hosted:
        return False
    b.warn(line, "import.host", f"`{what}`: this server answers the hosts the file's other servers do not name, "
           "and a regex rule would answer theirs too: skipped", name="from_regex")
    return True


def _skip_in_if(b: _Builder, d: _Directive, what: str) -> None:
    b.warn(d.line, "import.conditional", f"`{what}` is inside `if (...)`: a condition cannot be expressed as "
           "a rule: skipped")
