"""The WordPress "Redirection" plugin's exports (`--format wordpress-redirection`) as rules.

Both of the plugin's export files are read (the format is told by the content): its JSON
(`{"plugin": ..., "groups": [...], "redirects": [...]}`) and its CSV (`source,target,regex,code,type,
hits,title,status`; the header row is optional, and `;` or `|` separate the cells when `,` yields
nothing, as the plugin's own CSV import tries them).

What the plugin does, and the rule that does the same:
- redirects run in the plugin's order (`position`, then `id`); a later one with the same source is
  skipped with a warning naming both;
- a plain source is the path (`https://old.example/x` means the path `/x` on any host: the plugin
  compares paths only). `flag_case` → `case_insensitive`; `flag_trailing` (ignore a trailing
  slash) → a rule for the path with and one without the slash;
- `flag_query`: `exact` (the plugin's default) and `ignore` → `query: drop` (the target as written),
  `pass` → `query: keep` (the request's parameters added, the target's own win). A source with a
  query (`/old?id=1`) is skipped with a warning (a rule never matches the query). With `exact` the
  plugin redirects only requests without a query (other than the source's); a rule also answers
  `/old?x=1`: a warning says so;
- a regex source (`regex: true` or `flag_regex`) is PCRE matched anywhere in the request URL, and
  only the matched part is replaced (`preg_replace`): `^/old/(.*)$` → `/new/$1` becomes
  `from_regex: ^(?:/old/(?P<g1>.*))$`, `to: /new/{g1}`; a regex without `$` keeps the unmatched
  rest of the path (`^/old` → `/new` sends `/old/x` to `/new/x`, as the plugin does: `{wp_rest}`);
  a regex without `^` is anchored at the start of the path here (a warning says so: the plugin also
  matches it further in). The request's query is kept (the plugin leaves it where the regex did not
  replace it). A regex RE2 cannot run is skipped with a warning;
- a plain redirect that an earlier regex redirect already answers is skipped with a warning naming
  the regex's line (the plugin uses the earlier one); one the regex answers only in part becomes a
  regex rule `^/path$` in the plugin's order;
- action codes 301, 303, 307, 308 kept, 302 → 307 with the usual warning; 404, 410 and other
  codes, action types other than `url` (`error`, `random`, `pass`, `nothing`), match types other
  than `url` (`login`, `referrer`, `agent`, `header`, `cookie`, `role`, `server`, `ip`, `page`,
  `language`, `custom`), disabled redirects and redirects of a disabled group are skipped, each
  with a warning naming its line and why.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from typing import Any

from redirectory.rules.importers._common import _Builder, _path, _regex_rule
from redirectory.rules.model import Problem

#: The plugin's own defaults for a redirect's source flags (`Red_Source_Flags`).
_DEFAULT_FLAGS: dict[str, Any] = {"flag_query": "exact", "flag_case": False, "flag_trailing": False,
                                  "flag_regex": False}
_QUERY_MODES = ("exact", "ignore", "pass")
_CSV_REGEX_CHARS = set("()[]$^*")


@dataclass
class _Entry:
    line: int
    what: str
    source: str
    target: str
    regex: bool
    code: int
    action_type: str
    match_type: str
    enabled: bool
    flags: dict[str, Any]
    order: tuple[int, ...]
    why_disabled: str = "disabled in the plugin"


def _load_wordpress(b: _Builder, text: str) -> None:
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        entries = _json_entries(b, text)
    else:
        entries = _csv_entries(b, text)
    if entries is None:
        return
    _emit(b, entries)
    if not b.rules and not b.found:
        b.found = f"{len(entries)} redirect(s) and none the plugin sends as a URL redirect" if entries \
            else "no redirects"


# -- JSON -----------------------------------------------------------------------------------------
def _json_entries(b: _Builder, text: str) -> list[_Entry] | None:
    try:
        doc = json.loads(text)
    except ValueError as exc:
        line = getattr(exc, "lineno", 1)
        b.problems.append(Problem("error", "file", f"not valid JSON: {exc}", line=line, code="syntax",
                                  source=b.source))
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("redirects"), list):
        found = ", ".join(f'"{key}"' for key in doc) if isinstance(doc, dict) else type(doc).__name__
        b.problems.append(Problem("error", "file", "not a Redirection plugin JSON export: expected an object with "
                                  f'a "redirects" list (found {found or "nothing"})', line=1, code="import.empty",
                                  source=b.source))
        return None
    disabled_groups: set[Any] = set()
    for group in doc.get("groups") or []:
        if isinstance(group, dict) and (group.get("enabled") is False or group.get("status") == "disabled"):
            disabled_groups.add(group.get("id"))
    redirects = doc["redirects"]
    lines = _entry_lines(text, "redirects", len(redirects))
    entries = []
    for index, (line, item) in enumerate(zip(lines, redirects, strict=True)):
        entry = _json_entry(b, line, index, item, disabled_groups)
        if entry is not None:
            entries.append(entry)
    return entries


def _json_entry(b: _Builder, line: int, index: int, item: Any, disabled_groups: set[Any]) -> _Entry | None:
    if not isinstance(item, dict):
        b.warn(line, "import.syntax", "a redirect must be an object with url and action_data: skipped")
        return None
    source = item.get("url")
    what = f"redirect {json.dumps(source)}"
    if not isinstance(source, str):
        b.warn(line, "import.syntax", f"{what}: `url` must be a string: skipped", name="from")
        return None
    data = item.get("action_data")
    target = data.get("url") if isinstance(data, dict) else data
    match_data = item.get("match_data")
    flags = dict(_DEFAULT_FLAGS)
    given = match_data.get("source") if isinstance(match_data, dict) else None
    if isinstance(given, dict):
        if given.get("flag_query") in _QUERY_MODES:
            flags["flag_query"] = given["flag_query"]
        for key in ("flag_case", "flag_trailing", "flag_regex"):
            if isinstance(given.get(key), bool):
                flags[key] = given[key]
    regex = item.get("regex") is True or item.get("regex") in (1, "1") or flags["flag_regex"] is True
    code = item.get("action_code", 301)
    try:
        code = int(code)
    except (TypeError, ValueError):
        b.warn(line, "import.syntax", f"{what}: action_code {code!r} is not a number: skipped", name="status")
        return None
    position, ident = item.get("position", 0), item.get("id", 0)
    order = (position if isinstance(position, int) else 0, ident if isinstance(ident, int) else 0, index)
    enabled = item.get("enabled", True) is not False and item.get("status", "enabled") != "disabled"
    entry = _Entry(line, what, source, target if isinstance(target, str) else "", regex, code,
                   str(item.get("action_type") or "url"), str(item.get("match_type") or "url"), enabled, flags, order)
    if enabled and item.get("group_id") in disabled_groups:
        entry.enabled, entry.why_disabled = False, f"its group ({item.get('group_id')}) is disabled in the plugin"
    return entry


def _entry_lines(text: str, key: str, count: int) -> list[int]:
    """The line where each object of the top-level array `key` starts (scanning JSON strings and nesting)."""
    m = re.search(r'"' + re.escape(key) + r'"\s*:\s*\[', text)
    if m is None:
        return [1] * count
    lines: list[int] = []
    depth = 0
    i, n = m.end(), len(text)
    line = text.count("\n", 0, i) + 1
    while i < n and len(lines) < count:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c in "{[":
            if depth == 0:
                lines.append(line)
            depth += 1
        elif c in "}]":
            if depth == 0:
                break
            depth -= 1
        elif depth == 0 and c not in " \t\r,":
            lines.append(line)  # a scalar entry
            while i + 1 < n and text[i + 1] not in ",]\n":
                i += 1
        i += 1
    first = text.count("\n", 0, m.start()) + 1
    return lines if len(lines) == count else [first] * count


# -- CSV ------------------------------------------------------------------------------------------
def _csv_entries(b: _Builder, text: str) -> list[_Entry] | None:
    rows: list[tuple[int, list[str]]] = []
    for separator in (",", ";", "|"):
        rows = _csv_rows(text, separator)
        if any(len(cells) > 1 for _line, cells in rows):
            break
    entries = []
    for index, (line, cells) in enumerate(rows):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) < 2:
            b.warn(line, "import.syntax", f"`{cells[0]}`: expected source,target[,regex,code,type,hits,title,status]: "
                   "skipped")
            continue
        if cells[0] == "source" or cells[1] == "target":
            continue  # the header row the plugin writes (and skips)
        source, target = cells[0].strip(), cells[1].strip()
        what = f"`{source}`"
        regex = cells[2].strip() == "1" if len(cells) > 2 and cells[2].strip() else bool(_CSV_REGEX_CHARS & set(source))
        code_text = cells[3].strip() if len(cells) > 3 else ""
        code = int(code_text) if code_text.isdigit() and 100 <= int(code_text) <= 599 else 301
        action_type = cells[4].strip() if len(cells) > 4 and cells[4].strip() else ("error" if 400 < code < 500
                                                                                  else "url")
        enabled = not (len(cells) > 7 and cells[7].strip() == "disabled")
        flags = dict(_DEFAULT_FLAGS, flag_regex=regex)
        entries.append(_Entry(line, what, source, target, regex, code, action_type, "url", enabled, flags,
                              (line, index)))
    return entries


def _csv_rows(text: str, separator: str) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    start = 1
    try:
        for cells in reader:
            out.append((start, cells))
            start = reader.line_num + 1
    except csv.Error:  # the plugin's fgetcsv reads on; what follows a broken quote is one cell
        pass
    return out


# -- rules ----------------------------------------------------------------------------------------
def _note(b: _Builder, line: int, code: str, message: str, name: str = "from") -> None:
    """A warning whose message is the same on every line it concerns (the CLI counts them once)."""
    b.problems.append(Problem("warning", name, message, line=line, code=code, source=b.source))


def _emit(b: _Builder, entries: list[_Entry]) -> None:
    regexes: list[tuple[_Entry, re.Pattern[str] | None]] = []
    for entry in sorted(entries, key=lambda e: e.order):
        if not _runs(b, entry):
            continue
        status = b.status(entry.code, entry.line, entry.what)
        if status is None:
            continue
        target = entry.target.strip().replace("{", "%7B").replace("}", "%7D")
        if not target.lower().startswith(("http://", "https://", "/")) or target.startswith("//"):
            b.warn(entry.line, "import.unsupported", f"{entry.what}: the target {entry.target!r} is not an http(s) URL "
                   "or a path starting with /: skipped", name="to")
            continue
        if entry.regex:
            _regex(b, entry, target, status)
            try:
                regexes.append((entry, re.compile(entry.source, re.IGNORECASE if entry.flags["flag_case"] else 0)))
            except (re.error, RecursionError, OverflowError):
                regexes.append((entry, None))
        else:
            _plain(b, entry, target, status, regexes)


def _runs(b: _Builder, entry: _Entry) -> bool:
    """Whether the plugin sends this redirect as a URL redirect at all (a warning when not)."""
    if not entry.enabled:
        b.warn(entry.line, "import.disabled", f"{entry.what}: {entry.why_disabled}: skipped")
        return False
    if entry.match_type != "url":
        b.warn(entry.line, "import.conditional", f"{entry.what}: match type {entry.match_type!r} (a condition on "
               "the request beyond its URL) cannot be expressed as a rule: skipped")
        return False
    if entry.action_type == "error":
        b.warn(entry.line, "import.status-skipped", f"{entry.what}: the plugin answers {entry.code} (an error page), "
               "not a redirect: skipped", name="status")
        return False
    if entry.action_type != "url":
        kind = {"pass": "serves the target's content (a pass-through)", "random": "redirects to a random post",
                "nothing": "does nothing"}.get(entry.action_type, "is not a URL redirect")
        b.warn(entry.line, "import.unsupported", f"{entry.what}: action type {entry.action_type!r} {kind}: skipped")
        return False
    if not entry.source.strip():
        b.warn(entry.line, "import.syntax", f"{entry.what}: the source is empty: skipped", name="from")
        return False
    if not entry.target.strip():
        b.warn(entry.line, "import.syntax", f"{entry.what}: the target is empty: skipped", name="to")
        return False
    return True


def _regex(b: _Builder, entry: _Entry, target: str, status: int) -> None:
    body = entry.source
    if body.startswith("^"):
        body = body[1:]
    else:
        _note(b, entry.line, "import.regex-anchor", "a regex without ^ matches anywhere in the URL in the plugin "
              "(keeping what comes before the match); the rule matches it at the start of the path only",
              name="from_regex")
    rest = not (body.endswith("$") and not body.endswith("\\$"))
    if not rest:
        body = body[:-1]
    regex = f"^(?:{body})" + ("(?P<wp_rest>.*)" if rest else "") + "$"
    count = len(b.rules)
    _regex_rule(b, entry.line, entry.what, regex, target + ("{wp_rest}" if rest else ""), status,
                case_insensitive=bool(entry.flags["flag_case"]), query="keep")
    _reorder(b, count, entry.order)


def _reorder(b: _Builder, count: int, order: tuple[int, ...]) -> None:
    """Rules added since `count` take the plugin's order (position, id), not their line."""
    for k in range(count, len(b.rules)):
        b.order[k] = (*order, b.order[k][-1])


def _plain(b: _Builder, entry: _Entry, target: str, status: int,
           regexes: list[tuple[_Entry, re.Pattern[str] | None]]) -> None:
    source = entry.source.strip()
    m = re.match(r"(?i)https?://[^/]*(.*)$", source, re.DOTALL)
    if m:
        source = m.group(1) or "/"
    path, _, query = source.partition("?")
    if query:
        b.warn(entry.line, "import.conditional", f"{entry.what}: matching the query ({query}) cannot be expressed "
               "as a rule (a rule never matches the query): skipped", name="from")
        return
    if not path.startswith("/"):
        b.warn(entry.line, "import.unsupported", f"{entry.what}: the source must be a path starting with /: skipped",
               name="from")
        return
    mode = entry.flags["flag_query"]
    variants = [path]
    if entry.flags["flag_trailing"] and path != "/":
        variants.append(path[:-1] if path.endswith("/") else path + "/")
    case = bool(entry.flags["flag_case"])
    shadowed: dict[str, _Entry] = {}
    risky = False
    for variant in variants:
        for earlier, pattern in regexes:
            if pattern is None:
                continue
            if pattern.search(variant):
                shadowed.setdefault(variant, earlier)
            elif case and re.search(pattern.pattern, variant, re.IGNORECASE):
                risky = True
    if len(shadowed) == len(variants) and not case:
        earlier = shadowed[variants[0]]
        b.warn(entry.line, "import.shadowed", f"{entry.what}: the regex redirect of line {earlier.line} (earlier in "
               "the plugin's order) answers it first: skipped")
        return
    if mode == "exact":
        _note(b, entry.line, "import.query-exact", 'flag_query "exact": the plugin redirects only requests without a '
              "query string; the rule also answers requests with one (sending them to the target without it)")
    common = {"to": target, "status": status, "query": "keep" if mode == "pass" else "drop",
              "case_insensitive": True if case else None}
    count = len(b.rules)
    for variant in variants:
        if variant in shadowed:
            continue
        if shadowed or risky:
            b.add(entry.line, {"from_regex": "^" + re.escape(_path(variant)) + "$", **common})
        else:
            b.add(entry.line, {"from": _path(variant), **common})
    _reorder(b, count, entry.order)
