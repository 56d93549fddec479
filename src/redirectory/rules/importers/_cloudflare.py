"""Cloudflare Bulk Redirects list CSV (`--format cloudflare-csv`) as rules.

Each line is `SOURCE_URL,TARGET_URL[,STATUS_CODE,PRESERVE_QUERY_STRING,INCLUDE_SUBDOMAINS,
SUBPATH_MATCHING,PRESERVE_PATH_SUFFIX]`, as the Cloudflare dashboard imports it: only the two URLs
are required, an empty or missing status is 301, an empty or missing flag is false (`TRUE`/`true`,
`FALSE`/`false`). Cloudflare's CSV has no header row; a first row naming the columns (`source_url,
target_url,...`, in any order, as the list's API fields are called) is read as one.

What Cloudflare does, and the rule that does the same:
- the source URL names a host and a path (the scheme is optional): `example.com/old` →
  `from: //example.com/old`. Cloudflare refuses a query, a fragment, a port or user information in
  a source URL; such a line is skipped with a warning, as is a source without a host (it could
  never match: Cloudflare matches the request's full URL);
- without subpath matching the path must be the same (trailing slash and letter case included);
- with `subpath_matching`, the path and every path under it match (whole segments): `/a` →
  `//host/a` plus `//host/a/{rest:path}`; `/a/` → `//host/a/` plus `//host/a/{seg}/{rest:path}`
  (`/a` itself is not under `/a/`). With `preserve_path_suffix` the unmatched rest of the path is
  appended to the target's path (before its query), as Cloudflare appends it; without, every
  subpath goes to the target as written. The more specific path wins, as in Cloudflare;
- `preserve_query_string` true → `query: keep` (Cloudflare refuses a target with a query of its
  own then: skipped with a warning); false → `query: drop`, the target's own query only;
- status 301, 307, 308 kept, 302 → 307 (with the usual warning); any other status is skipped;
- a source URL with `http://` or `https://` matches only that scheme in Cloudflare; a rule answers
  both (a warning says so); `include_subdomains` also matches every subdomain in Cloudflare; the
  rule answers the named host only (a warning says so: add rules for the subdomains you use);
- a later line with the same source is skipped with a warning naming both (Cloudflare refuses a
  list with two redirects of the same source URL).
"""

from __future__ import annotations

import csv
import io
import re

from redirectory.rules.importers._common import _Builder, _path
from redirectory.rules.model import Problem
from redirectory.rules.patterns import valid_host

_COLUMNS = ("source_url", "target_url", "status_code", "preserve_query_string", "include_subdomains",
            "subpath_matching", "preserve_path_suffix")
_TRUE = ("TRUE", "true")
_FALSE = ("FALSE", "false", "")
_SOURCE = re.compile(r"(?i)(?:(https?)://)?([^/?#]*)(.*)$", re.DOTALL)


def _load_cloudflare_csv(b: _Builder, text: str) -> None:
    columns: tuple[str, ...] = _COLUMNS
    rows = 0
    for start, cells in _csv_rows(b, text):
        if not any(cell.strip() for cell in cells):
            continue
        if rows == 0 and cells and cells[0].strip().lower() in ("source_url", "source url", "source"):
            header = [cell.strip().lower().replace(" ", "_") for cell in cells]
            unknown = [name for name in header if name not in _COLUMNS]
            if unknown or "source_url" not in header or "target_url" not in header:
                b.warn(start, "import.syntax", f"header row: unknown column {unknown[0]!r} (columns: "
                       f"{', '.join(_COLUMNS)}): the file is read without a header" if unknown else
                       "header row: source_url and target_url are required: the file is read without a header")
            else:
                columns = tuple(header)
            rows += 1
            continue
        rows += 1
        _row(b, start, dict(zip(columns, cells, strict=False)), len(cells) > len(columns))
    if not b.rules and not b.found:
        b.found = f"{rows} CSV row(s) and no redirect Cloudflare would run" if rows else "no CSV rows"


def _csv_rows(b: _Builder, text: str) -> list[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on; a malformed file is an error on its line."""
    out: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as exc:
        b.problems.append(Problem("error", "file", f"not valid CSV: {exc}", line=reader.line_num or start,
                                  code="syntax", source=b.source))
    return out


def _flag(b: _Builder, line: int, what: str, row: dict[str, str], name: str) -> bool | None:
    value = row.get(name, "").strip()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    b.warn(line, "import.syntax", f"{what}: {name} must be TRUE, true, FALSE, false or empty, not {value!r}: skipped")
    return None


def _note(b: _Builder, line: int, code: str, message: str, name: str = "from") -> None:
    """A warning whose message is the same on every line it concerns (the CLI counts them once)."""
    b.problems.append(Problem("warning", name, message, line=line, code=code, source=b.source))


def _row(b: _Builder, line: int, row: dict[str, str], extra: bool) -> None:
    source, target = row.get("source_url", "").strip(), row.get("target_url", "").strip()
    what = f"`{source}`"
    if extra:
        b.warn(line, "import.syntax", f"{what}: more than the {len(_COLUMNS)} columns Cloudflare reads "
               f"({', '.join(_COLUMNS)}): skipped")
        return
    if not source or not target:
        b.warn(line, "import.syntax", f"{what}: a line needs SOURCE_URL,TARGET_URL: skipped")
        return
    flags = {name: _flag(b, line, what, row, name) for name in _COLUMNS[3:]}
    if any(value is None for value in flags.values()):
        return
    code_text = row.get("status_code", "").strip() or "301"
    if not code_text.isdigit():
        b.warn(line, "import.syntax", f"{what}: status_code must be 301, 302, 307 or 308, not {code_text!r}: skipped",
               name="status")
        return
    m = _SOURCE.match(source)
    assert m is not None
    scheme, host, path = m.group(1), m.group(2).lower(), m.group(3) or "/"
    if "?" in path or "#" in path:
        b.warn(line, "import.unsupported", f"{what}: Cloudflare refuses a query or fragment in a source URL "
               "(the query is never matched): skipped", name="from")
        return
    if not host:
        b.warn(line, "import.unsupported", f"{what}: the source URL needs a host name (`example.com/path`): "
               "Cloudflare matches the request's full URL: skipped", name="from")
        return
    if "@" in host or ":" in host or not valid_host(host):
        b.warn(line, "import.unsupported", f"{what}: {host!r} is not a host name Cloudflare matches (no port, "
               "user information or wildcard): skipped", name="from")
        return
    if not target.lower().startswith(("http://", "https://", "/")) or target.startswith("//"):
        b.warn(line, "import.unsupported", f"{what}: the target {target!r} is not an http(s) URL or a path, "
               "which is all redirectory sends: skipped", name="to")
        return
    keep_query = bool(flags["preserve_query_string"])
    base, tail = _split_target(target)
    if keep_query and "?" in tail:
        b.warn(line, "import.unsupported", f"{what}: Cloudflare refuses a target with a query when "
               "preserve_query_string is true: skipped", name="to")
        return
    status = b.status(int(code_text), line, what)
    if status is None:
        return
    if scheme:
        _note(b, line, "import.scheme", f"a source URL with {scheme.lower()}:// matches only that scheme in "
              "Cloudflare: the rule answers http and https")
    if flags["include_subdomains"]:
        _note(b, line, "import.subdomains", "include_subdomains: Cloudflare also matches every subdomain; the "
              "rule answers the named host only (add rules for the subdomains you use)")
    prefix = "//" + host
    from_path = _path(path)
    common = {"status": status, "query": "keep" if keep_query else "drop"}
    target = base + tail
    b.add(line, {"from": prefix + from_path, "to": target, **common})
    if not flags["subpath_matching"]:
        return
    suffix = bool(flags["preserve_path_suffix"])
    if from_path == "/":  # `example.com` (no path): the whole path follows; `example.com/`: what follows the /
        rest = "/{rest}" if not m.group(3) else "{rest}"
        b.add(line, {"from": prefix + "/{rest:path}", "to": base + rest + tail if suffix else target, **common})
    elif from_path.endswith("/"):
        b.add(line, {"from": prefix + from_path + "{seg}/{rest:path}",
                     "to": base + "{seg}/{rest}" + tail if suffix else target, **common})
    else:
        b.add(line, {"from": prefix + from_path + "/{rest:path}", "to": base + "/{rest}" + tail if suffix else target,
                     **common})


def _split_target(target: str) -> tuple[str, str]:
    """(scheme, host and path; query and fragment) of a target, braces percent-encoded (a rule's
    target reads `{name}` as a placeholder; Cloudflare sends them as written)."""
    target = target.replace("{", "%7B").replace("}", "%7D")
    m = re.match(r"(?i)(https?://[^/?#]*)?([^?#]*)(.*)$", target, re.DOTALL)
    assert m is not None
    authority, path, tail = m.group(1) or "", m.group(2), m.group(3)
    if authority and not path:
        path = "/"
    return authority + path, tail
