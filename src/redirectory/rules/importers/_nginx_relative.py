"""nginx `rewrite`s to a relative target (`rewrite ^/entries.html index.html permanent;`).

nginx sends such a target as written (`Location: index.html`) and the client resolves it against
the path it asked for (RFC 3986 5.2): `/entries.html` goes to `/index.html`, `/entries.html/x` to
`/entries.html/index.html`. A rule's target is an absolute path, so the import writes the directory
of the request's path into it: a literal path regex (`^/a/b`, `^/a/b$`) becomes a rule for the paths
without a further `/` (their directory is the regex's own) and, unanchored, a rule for the longer
paths whose directory a group takes. Any other regex is skipped with a warning naming its line.
"""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _GROUP_REF, _Builder, _regex_rule

#: `^/literal` (`\x` escapes and `.` allowed), with or without a closing `$`
_LITERAL_START = re.compile(r"\^(/(?:[^\\()\[\]{}*+?|$^]|\\[^A-Za-z0-9])*)(\$?)")
#: a relative reference: neither a path (`/`), nor a URL (`scheme:`), nor a variable (`$scheme...`)
_NOT_RELATIVE = re.compile(r"/|[A-Za-z][A-Za-z0-9+.-]*:|\$")


def is_relative(target: str) -> bool:
    return _NOT_RELATIVE.match(target) is None


def relative_rewrite(b: _Builder, line: int, what: str, regex: str, target: str, status: int,
                     query: str | None, host: str | None, in_location: bool) -> None:
    """The rules for a server-level `rewrite REGEX TARGET` whose TARGET is relative."""
    found = _LITERAL_START.fullmatch(regex)
    head = found.group(1)[:found.group(1).rindex("/") + 1] if found else ""
    directory = re.sub(r"\\(.)", r"\1", head)
    if (found is None or in_location or _GROUP_REF.search(target) or re.search(r"(?<!\\)\.", head)):
        b.warn(line, "import.rewrite", f"`{what}`: nginx sends the relative target {target!r} as written and "
               "the client resolves it against the path it asked for; only a server-level rewrite of a "
               "literal path (`^/a/b`) can be written with its directory: skipped", name="to")
        return
    literal, anchored = found.group(1), found.group(2)
    _regex_rule(b, line, f"`{what}`", f"^{literal}{'$' if anchored else '[^/]*$'}", directory + target,
                status, query=query, host=host)
    if not anchored:  # a longer path with a `/` after the literal: its own directory
        _regex_rule(b, line, f"`{what}`", f"^/({literal[1:]}.*/)[^/]*$", "/$1" + target, status, query=query,
                    host=host)
