"""nginx: `server`, `location`, `return`, `rewrite` and `map` directives as rules (see the package
docstring for what maps)."""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _Builder, _path, _regex_rule, _unknown_variables, _variables
from redirectory.rules.importers._nginx_export import _EXPORT_CODE, _RETURN_FILE, _read_own_export
from redirectory.rules.importers._nginx_syntax import (
    _NGINX_REDIRECT_CODES,
    _collect_maps,
    _Directive,
    _nginx_parse,
    _NginxContext,
    _NginxMap,
)
from redirectory.rules.patterns import valid_host


def _load_nginx(b: _Builder, text: str) -> None:
    tree = _nginx_parse(text, b)
    maps: dict[str, _NginxMap] = {}
    _collect_maps(tree, maps)
    used: set[str] = set()
    if _read_own_export(b, maps):
        b.ours = True
        # the `return`s of our own export read maps chained on the route maps read above
        used.update(name for name in maps if name.startswith("$redirectory_"))
    _nginx_walk(b, tree, _NginxContext(), maps, used)
    b.found = _what_is_here(tree, maps)


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
    in_if: bool = False,
) -> None:
    for d in block:
        if d.name == "server" and d.block is not None:
            names = [a for d2 in d.block if d2.name == "server_name" for a in d2.args]
            host = None
            if len(names) == 1 and valid_host(names[0].lower()):
                host = names[0].lower()
            _nginx_walk(b, d.block, _NginxContext(host=host), maps, used)
        elif d.name == "location" and d.block is not None:
            location = _nginx_location(b, d)
            if location is not None:
                _nginx_walk(b, d.block, _NginxContext(ctx.host, location), maps, used)
        elif d.name == "if" and d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, in_if=True)
        elif d.name in ("map", "upstream", "events", "types", "geo", "split_clients", "limit_except"):
            continue
        elif d.block is not None:
            _nginx_walk(b, d.block, ctx, maps, used, in_if)
        elif d.name == "return":
            _nginx_return(b, d, ctx, maps, used, in_if)
        elif d.name == "rewrite":
            _nginx_rewrite(b, d, ctx, in_if)


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
    url = _same_host(url)
    keep_args = "$is_args$args" in url
    url = url.replace("$is_args$args", "")
    # `return CODE $var` with `map ... $var { ... }`: one rule per map entry
    if url in maps or (url.startswith("${") and url[2:-1] in maps):
        name = url if url in maps else "$" + url[2:-1]
        _nginx_map_rules(b, d, code, maps[name], ctx, used, name)
        return
    if re.fullmatch(r"\$redirectory_30[1378]", url):
        if _RETURN_FILE not in used:  # once per file
            used.add(_RETURN_FILE)
            b.warn(d.line, _EXPORT_CODE, f"`{what}` reads the maps of `rules export --format nginx`, which are in "
                   "its other file: import redirectory-map.conf (this file holds no rules)")
        return
    if in_if:
        b.warn(d.line, "import.conditional", f"`{what}` is inside `if (...)`: a condition cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    loc = ctx.location or ("", "/")
    mod, where = loc
    if mod in ("~", "~*"):
        if ctx.host:
            b.warn(d.line, "import.host", f"`{what}`: a regex rule answers every host, not only {ctx.host}: "
                   "check it", name="from_regex")
        if _unknown_variables(b, d.line, what, url, allow_groups=True):
            return
        _regex_rule(b, d.line, f"`{what}`", where, url, status, case_insensitive=mod == "~*")
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    if not where.startswith("/"):
        b.warn(d.line, "import.unsupported", f"`{what}`: location {where!r} is not a path: skipped", name="from")
        return
    query: str | None = None
    if mod == "=":
        exact = _nginx_uri_target(url, where, keep_args)
        if exact is None:
            _unknown_variables(b, d.line, what, url, allow_groups=False)
            return
        to, query = exact
        b.add(d.line, {"from": prefix + _path(where), "to": to, "status": status, "query": query})
        return
    # prefix location (also ^~ and the server level): everything under it
    base = where.rstrip("/")
    pattern = f"{prefix}{_path(base)}/{{rest:path}}"
    if "$request_uri" in url or "$uri" in url:
        converted = _nginx_uri_target(url, base + "/{rest}", keep_args)
        if converted is None:
            _unknown_variables(b, d.line, what, url, allow_groups=False)
            return
        to, query = converted
    else:
        if _unknown_variables(b, d.line, what, url, allow_groups=False):
            return
        to = url
    b.add(d.line, {"from": pattern, "to": to, "status": status, "query": query})


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
    b: _Builder, d: _Directive, code: int, m: _NginxMap, ctx: _NginxContext, used: set[str], name: str
) -> None:
    if name in used:
        return
    used.add(name)
    if m.source not in ("$uri", "$request_uri", "$document_uri"):
        b.warn(m.line, "import.unsupported", f"`map {m.source} {name}` maps {m.source}, not the path ($uri): "
               "skipped")
        return
    prefix = f"//{ctx.host}" if ctx.host else ""
    for key, value, line in m.entries:
        what = f"map entry `{key} {value}`"
        status = b.status(code, line, what)
        if status is None:
            continue
        value = _same_host(value)
        if key.startswith("~"):
            ci = key.startswith("~*")
            regex = key[2:] if ci else key[1:]
            if _unknown_variables(b, line, what, value, allow_groups=True):
                continue
            _regex_rule(b, line, what, regex, value, status, case_insensitive=ci)
            continue
        if key.startswith("\\"):
            key = key[1:]
        if not key.startswith("/") or (m.source == "$request_uri" and "?" in key):
            b.warn(line, "import.unsupported", f"{what}: the key is not a plain path: skipped", name="from")
            continue
        if _unknown_variables(b, line, what, value, allow_groups=False):
            continue
        b.add(line, {"from": prefix + _path(key), "to": value, "status": status})


#: `$scheme://$host` (or `$http_host`, `$server_name`) at the start of a target: the host and scheme
#: the request came with, which a same-host target (a path) keeps.
_SAME_ORIGIN = re.compile(r"\$(?:scheme|\{scheme\})://\$(?:host|http_host|server_name|\{host\}|\{http_host\}|\{server_name\})"
                          r"(?![A-Za-z0-9_])")


def _same_host(url: str) -> str:
    """`$scheme://$host/path` → `/path`: a target on the host and scheme of the request."""
    m = _SAME_ORIGIN.match(url)
    if m is None:
        return url
    rest = url[m.end():]
    return rest if rest.startswith(("/", "$")) else "/" + rest


def _nginx_rewrite(b: _Builder, d: _Directive, ctx: _NginxContext, in_if: bool) -> None:
    args = d.args
    if len(args) < 2 or len(args) > 3:
        b.warn(d.line, "import.unsupported", "`rewrite` needs REGEX REPLACEMENT [flag]: skipped")
        return
    regex, replacement = args[0], args[1]
    flag = args[2] if len(args) == 3 else None
    what = f"rewrite {' '.join(args)}"
    # nginx redirects when the replacement starts with http://, https:// or $scheme
    absolute = re.match(r"(?i)https?://|\$scheme", replacement) is not None
    replacement = _same_host(replacement)
    if flag == "permanent":
        code = 301
    elif flag == "redirect" or (flag is None and absolute):
        code = 302
    else:
        b.warn(d.line, "import.rewrite", f"`{what}` is an internal rewrite, not a redirect: skipped "
               "(use `permanent` or `redirect` for a redirect)")
        return
    if in_if:
        b.warn(d.line, "import.conditional", f"`{what}` is inside `if (...)`: a condition cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, d.line, f"`{what}`")
    if status is None:
        return
    query = None
    if replacement.endswith("?"):
        replacement = replacement[:-1]
        query = "drop"
    if _unknown_variables(b, d.line, what, replacement, allow_groups=True):
        return
    if ctx.host:
        b.warn(d.line, "import.host", f"`{what}`: a regex rule answers every host, not only {ctx.host}: check it",
               name="from_regex")
    ci = False
    if regex.startswith("(?i)"):
        regex, ci = regex[4:], True
    _regex_rule(b, d.line, f"`{what}`", regex, replacement, status, case_insensitive=ci, query=query)
