"""Importers for foreign redirect configurations: nginx, Apache, Netlify (`_redirects` and
`netlify.toml`), Vercel, Cloudflare Bulk Redirects lists and WordPress Redirection exports.

Pure (no I/O): text in, `(RuleSet, list[Problem])` out, and never raises on any input; the
files an nginx `include` or Apache `Include` names are read through the caller's `IncludeReader`
(`rulefile.py` does the reading). Each importer converts what it can into rule mappings and runs
them through the same field checks as a rule file (`parsing.rule_from_mapping`); a line that cannot
be represented is skipped with a warning naming its file:line and why, and the rest imports.
Checks across rules (loops, overlaps, allowed hosts) are the validator's, as for any rule file.

The aim of every importer: the imported table answers every request the way the original server
does. docs/migrating.md says, format by format, what becomes a rule, what becomes a warning and
which differences remain on purpose; each module's docstring says where the server's behaviour
needed working out (`_nginx.py`, `_apache.py`, `_netlify.py`, `_vercel.py`, `_cloudflare.py`,
`_wordpress.py`), and `_first_match.py` how a first-match file order becomes rules.

Shared by all (`_common.py`): a 302 becomes 307 with a warning (the guide forbids 302); 301, 303,
307 and 308 are kept, other statuses skipped with a warning; `$1`..`$9` in a target become named
groups (`(?P<g1>...)`, `{g1}`); a later duplicate or a rule that matches its own target is skipped
with a warning naming both lines (the server uses the first); a file that yields no redirect is an
error saying what it holds.
"""

from __future__ import annotations

from redirectory.rules.formats import FOREIGN_FORMATS as FOREIGN_FORMATS
from redirectory.rules.formats import IMPORT_FORMATS as IMPORT_FORMATS
from redirectory.rules.importers._apache import _load_apache, load_apache_included
from redirectory.rules.importers._apache_syntax import IncludeMissing as IncludeMissing
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

