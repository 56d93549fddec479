"""Importers for foreign redirect configurations: nginx, Apache and Netlify `_redirects`.

Pure (no I/O): text in, `(RuleSet, list[Problem])` out, and never raises on any input. Each
importer converts what it can into rule mappings and runs them through the same field checks
as a rule file (`parsing.rule_from_mapping`); what it cannot convert is skipped with a warning
that names the line and says what would work instead. Checks across rules (loops, overlaps,
allowed hosts) are the validator's, as for any rule file (`rulefile.read_rule_file`).

Every importer:
- turns a 302 into a 307 (temporary, same method and body) with a warning per rule
  (code `status.302-converted`): 302 is refused by redirectory; use 303 instead when the
  original redirect sent a client from a POST to its result;
- keeps 301, 303, 307 and 308, and skips 410 and any other status with a warning;
- turns `$1`..`$9` in a target into named groups: the regex's capturing groups are rewritten
  as `(?P<g1>...)`, `(?P<g2>...)` (named groups keep their names) and `$N` becomes `{gN}`.

nginx (`load_nginx`):
- `server { server_name a.example; ... }` with exactly one plain name makes its rules
  host-specific (`//a.example/...`); otherwise they answer any host;
- `location = /exact { return CODE URL; }` → an exact rule;
- `location /prefix { return CODE URL; }` → `/prefix/{rest:path}` → URL (a static URL: nginx's
  prefix also matches `/prefixes`, which a rule cannot express); `$request_uri` in URL becomes
  the request path (`/prefix/{rest}`, query kept), `$uri` the same with the query dropped;
  a `return` directly in `server { }` is the prefix `/`;
- `location ~ REGEX` / `location ~* REGEX` (case-insensitive) with `return CODE URL` → a regex rule;
- `rewrite REGEX REPLACEMENT permanent|redirect;` → a regex rule (301 / 302→307); a replacement
  starting with http(s):// and no flag is a 302; `last`/`break` rewrites are internal (skipped
  with a warning); a replacement ending in `?` drops the request's query;
- `map $uri $var { /a /b; ~regex /c/$1; }` used by `return CODE $var;` (usually inside
  `if ($var) { ... }`) → one rule per entry (`default` and `hostnames` are ignored);
- the maps of our own export (`rules export --format nginx`) → the exported rules again, methods
  included: each distinct entry of a precedence step is one rule, whose methods are those of the
  classes of methods whose maps hold it (see `_read_own_export`); what does not read back exactly
  is skipped with a warning;
- other variables (`$host`, `$scheme`, `$args`...) in a target, `return` inside other `if`
  blocks, named locations, and `return`s with a non-redirect status: skipped (a warning for
  those that redirect). Other directives are ignored silently.

Apache (`load_apache`, `_apache.py`): `Redirect*` (whole-segment prefixes, mod_alias's query
rules), `RedirectMatch` and `RewriteRule` (with `R`, or an absolute substitution to another host),
the common `RewriteCond` idioms, mod_rewrite before mod_alias: see `_apache.py` and docs/rules.md.

Netlify `netlify.toml` (`load_netlify_toml`) and Vercel `vercel.json` (`load_vercel`): see
`_netlify.py`, `_vercel.py` and docs/rules.md.

Cloudflare Bulk Redirects list CSV (`load_cloudflare_csv`, `--format cloudflare-csv`) and the
WordPress Redirection plugin's JSON or CSV export (`load_wordpress_redirection`, `--format
wordpress-redirection`): see `_cloudflare.py`, `_wordpress.py` and docs/rules.md. Their file names
say nothing certain (`.csv`, `.json`), so they always need the format.

Every foreign format: a later duplicate or a rule that matches its own target is skipped with a
warning (the server uses the first); a file that yields no redirect is an error saying what it holds.

Netlify (`load_netlify`): `FROM TO [STATUS][!]` per line; `*` at the end of FROM →
`{rest:path}`, `:splat` → `{rest}`, `:name` → `{name}`; a FROM that is a full URL makes the rule
host-specific; default status 301; `!` (force) is accepted (redirectory always redirects);
200 (rewrite), 404 (custom page) and query or condition parameters are skipped with a warning.
"""

from __future__ import annotations

from redirectory.rules.formats import FOREIGN_FORMATS as FOREIGN_FORMATS
from redirectory.rules.formats import IMPORT_FORMATS as IMPORT_FORMATS
from redirectory.rules.importers._apache import IncludeMissing as IncludeMissing
from redirectory.rules.importers._apache import _load_apache, load_apache_included
from redirectory.rules.importers._cloudflare import _load_cloudflare_csv
from redirectory.rules.importers._common import _guarded, _Loader
from redirectory.rules.importers._netlify import _load_netlify, _load_netlify_toml
from redirectory.rules.importers._nginx import _load_nginx, load_nginx_included
from redirectory.rules.importers._nginx_syntax import IncludeReader as IncludeReader
from redirectory.rules.importers._vercel import _load_vercel
from redirectory.rules.importers._wordpress import _load_wordpress
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.parsing import loads


# -- public API ----------------------------------------------------------------------------------
def load_any(text: str, fmt: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Parse `text` in any import format: yaml/json/csv (rule files) or nginx/apache/netlify."""
    if fmt == "yaml":
        return loads(text, "yaml", source)
    if fmt == "json":
        return loads(text, "json", source)
    if fmt == "csv":
        return loads(text, "csv", source)
    loader = _LOADERS.get(fmt)
    if loader is None:
        return RuleSet(), [
            Problem(
                "error",
                "file",
                f"unknown import format {fmt!r}: use one of {', '.join(IMPORT_FORMATS)}",
                code="format",
                source=source,
            )
        ]
    return loader(text, source)


def load_nginx(text: str, source: str = "<input>", read: IncludeReader | None = None,
               origins: list[str] | None = None) -> tuple[RuleSet, list[Problem]]:
    """Redirects in an nginx configuration (see the module docstring for what maps). With `read`
    (the caller's file access, see `IncludeReader`), `include`s are read in place as nginx does, and
    `origins` receives the file of each rule; without it, an `include` is a warning."""
    if read is None:
        return _guarded(_load_nginx, text, source)
    return load_nginx_included(text, source, read, origins)


def load_apache(text: str, source: str = "<input>", read: IncludeReader | None = None,
                origins: list[str] | None = None) -> tuple[RuleSet, list[Problem]]:
    """Redirects in an Apache configuration or `.htaccess` file. With `read` (the caller's file
    access, see `IncludeReader`; a name matching nothing is an `IncludeMissing`), `Include`s are read
    in place as Apache does, and `origins` receives the file of each rule; without it, an `Include`
    is a warning."""
    if read is None:
        return _guarded(_load_apache, text, source)
    return load_apache_included(text, source, read, origins)


def load_netlify(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a Netlify `_redirects` file."""
    return _guarded(_load_netlify, text, source)


def load_netlify_toml(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a `netlify.toml` (its `[[redirects]]` tables)."""
    return _guarded(_load_netlify_toml, text, source)


def load_vercel(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a `vercel.json` (`redirects`, and legacy `routes` that redirect)."""
    return _guarded(_load_vercel, text, source)


def load_cloudflare_csv(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a Cloudflare Bulk Redirects list CSV (see `_cloudflare.py`)."""
    return _guarded(_load_cloudflare_csv, text, source)


def load_wordpress_redirection(text: str, source: str = "<input>") -> tuple[RuleSet, list[Problem]]:
    """Redirects in a WordPress Redirection plugin export, JSON or CSV (see `_wordpress.py`)."""
    return _guarded(_load_wordpress, text, source)


def detect_import_format(name: str) -> str | None:
    """The foreign format a file name implies (`_redirects`, `.htaccess`, `netlify.toml`,
    `vercel.json`), else None."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    if base.endswith("_redirects"):
        return "netlify"
    if base.endswith("netlify.toml"):
        return "netlify-toml"
    if base.endswith("vercel.json"):
        return "vercel"
    if base == ".htaccess" or base.endswith(".htaccess"):
        return "apache"
    return None



_LOADERS: dict[str, _Loader] = {"nginx": load_nginx, "apache": load_apache, "netlify": load_netlify,
                                 "netlify-toml": load_netlify_toml, "vercel": load_vercel,
                                 "cloudflare-csv": load_cloudflare_csv,
                                 "wordpress-redirection": load_wordpress_redirection}

