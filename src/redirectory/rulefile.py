"""Reading a rule file: the only file I/O around the pure parser and validator."""

from __future__ import annotations

import heapq
import operator
from itertools import islice
from pathlib import Path

from redirectory.rules.export import MAP_FILE
from redirectory.rules.importers import IMPORT_FORMATS, detect_import_format, load_any
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.parsing import detect_format
from redirectory.rules.validation import validate

FORMATS: tuple[str, ...] = ("yaml", "json", "csv")


def read_rule_file(path: str | Path, fmt: str | None = None) -> tuple[RuleSet, list[Problem]]:
    """Parse and validate a rule file, or a foreign redirect configuration (nginx, apache,
    netlify: see `rules.importers`). Problems name `FILE:LINE`; nothing here raises on bad input.

    Without `fmt` the name decides: .yaml/.yml, .json, .csv, `_redirects` (netlify) and
    `.htaccess` (apache); a `.conf` file may be nginx or Apache, so it needs `fmt`."""
    name = str(path)
    chosen = fmt or detect_import_format(name) or detect_format(name)
    if chosen is None:
        if name.lower().endswith(".conf"):
            return RuleSet(), [_file_problem(name, "a .conf file may be nginx or Apache configuration: "
                                                 "pass --format nginx or --format apache")]
        return RuleSet(), [_file_problem(name, "cannot tell the format from the file name: "
                                             "use .yaml, .yml, .json or .csv (or _redirects, .htaccess, "
                                             "netlify.toml, vercel.json), "
                                             "or pass --format")]
    if chosen not in IMPORT_FORMATS:
        return RuleSet(), [_file_problem(name, f"unknown format '{chosen}': use one of {', '.join(IMPORT_FORMATS)}")]
    if chosen == "nginx" and Path(path).is_dir():
        # The directory `rules export --format nginx -o DIR` wrote: its map file holds the rules.
        map_file = Path(path) / MAP_FILE
        if not map_file.is_file():
            return RuleSet(), [_file_problem(name, f"a directory: give an nginx configuration file, or a directory "
                                                 f"holding {MAP_FILE} (as `rules export --format nginx -o DIR` "
                                                 "writes it)")]
        return read_rule_file(map_file, chosen)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        return RuleSet(), [_file_problem(name, f"cannot read the file: {exc.strerror or exc}")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return RuleSet(), [Problem("error", "file", f"not valid UTF-8 (byte offset {exc.start})",
                                   line=line, code="encoding", source=name)]
    del data  # the bytes are not needed once decoded: do not hold a second copy of a large file
    ruleset, problems = load_any(text, chosen, name)
    del text  # nor the text once parsed: validation is the peak
    return ruleset, in_line_order(list(problems), validate(ruleset, name))


def in_line_order(parsed: list[Problem], validated: list[Problem]) -> list[Problem]:
    """`parsed + validated` sorted by (line, field), ties in that order: what a stable sort gives.

    `validated` comes sorted by line from `validate`; a million warnings on as many lines are
    not sorted again (checked in one pass), only merged with the parser's few problems."""
    parsed.sort(key=_line_order)
    lines = [p.line or 0 for p in validated]
    if not all(map(operator.lt, lines, islice(lines, 1, None))):
        validated.sort(key=_line_order)  # problems that share a line: by field, stably
    del lines
    if not parsed:
        return validated
    if not validated:
        return parsed
    return list(heapq.merge(parsed, validated, key=_line_order))  # ties: `parsed` first


def _line_order(p: Problem) -> tuple[int, str]:
    return (p.line if p.line is not None else 0, p.field)


def _file_problem(name: str, message: str) -> Problem:
    return Problem("error", "file", message, code="file", source=name)
