"""Reading a rule file: the only file I/O around the pure parser and validator."""

from __future__ import annotations

import fnmatch
import glob
import heapq
import operator
import os
from dataclasses import replace
from itertools import islice
from pathlib import Path

from redirectory.rules.export import MAP_FILE
from redirectory.rules.importers import (
    IMPORT_FORMATS,
    IncludeMissing,
    IncludeReader,
    detect_import_format,
    load_any,
    load_apache,
    load_nginx,
)
from redirectory.rules.model import Problem, RuleSet
from redirectory.rules.parsing import detect_format
from redirectory.rules.validation import validate


def read_rule_file(path: str | Path, fmt: str | None = None,
                   include_root: str | Path | None = None) -> tuple[RuleSet, list[Problem]]:
    """Parse and validate a rule file, or a foreign redirect configuration (nginx, apache,
    netlify: see `rules.importers`). Problems name `FILE:LINE`; nothing here raises on bad input.

    Without `fmt` the name decides: .yaml/.yml, .json, .csv, `_redirects` (netlify) and
    `.htaccess` (apache); a `.conf` file may be nginx or Apache, so it needs `fmt`.

    nginx `include`s and Apache `Include`/`IncludeOptional` are read (see `nginx_include_reader`,
    `apache_include_reader`): relative names against `include_root`, else against the directory of
    the file imported."""
    name = str(path)
    chosen = fmt or detect_import_format(name) or detect_format(name)
    if include_root is not None and chosen not in ("nginx", "apache"):
        return RuleSet(), [_file_problem(name, "--include-root is for nginx and Apache configuration (their "
                                             "`include`s): drop it, or pass --format nginx or --format apache")]
    if include_root is not None and not Path(include_root).is_dir():
        return RuleSet(), [_file_problem(name, f"--include-root {include_root}: not a directory (give the "
                                             "directory the file's relative `include`s are relative to)")]
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
    if chosen in ("nginx", "apache"):
        origins: list[str] = []
        root = Path(include_root) if include_root is not None else Path(path).parent
        if chosen == "nginx":
            ruleset, problems = load_nginx(text, name, nginx_include_reader(root, include_root is not None), origins)
        else:
            ruleset, problems = load_apache(text, name, apache_include_reader(root, include_root is not None),
                                            origins)
        del text
        validated = [replace(p, source=origins[p.index]) if p.index is not None and p.index < len(origins)
                     and origins[p.index] != name else p for p in validate(ruleset, name)]
        return ruleset, in_line_order(list(problems), validated)
    ruleset, problems = load_any(text, chosen, name)
    del text  # nor the text once parsed: validation is the peak
    return ruleset, in_line_order(list(problems), validate(ruleset, name))


#: nginx's configuration prefix on most systems: absolute includes under it resolve against --include-root
NGINX_PREFIX = "/etc/nginx/"


def nginx_include_reader(root: Path, rooted: bool) -> IncludeReader:
    """How `include NAME;` is read on import. nginx resolves a relative NAME against its
    configuration prefix (not the including file's directory): here against `root` (the directory
    of the file imported, or --include-root). With --include-root (`rooted`), an absolute NAME under
    /etc/nginx/ also resolves against it, so a repository of configuration reads as installed; other
    absolute names are read as written. A NAME with `*`, `?` or `[` is a glob, its files read in
    sorted order as nginx does (matching none is fine); a missing plain NAME is a warning."""

    def read(target: str, including: str) -> list[tuple[str, str]] | str:
        if rooted and target.startswith(NGINX_PREFIX):
            where = root / target[len(NGINX_PREFIX):]
        else:
            where = Path(target) if Path(target).is_absolute() else root / target
        if any(c in target for c in "*?["):
            names = sorted(glob.glob(str(where)))
            if not names:
                return []
        else:
            names = [str(where)]
        out: list[tuple[str, str]] = []
        for found in names:
            try:
                out.append((found, Path(found).read_bytes().decode("utf-8-sig")))
            except IsADirectoryError:
                return f"{found} is a directory"
            except FileNotFoundError:
                hint = "" if rooted else "; pass --include-root DIR when the includes are relative to another directory"
                return f"no such file {found}{hint}"
            except OSError as exc:
                return f"cannot read {found}: {exc.strerror or exc}"
            except UnicodeDecodeError as exc:
                return f"{found} is not valid UTF-8 (byte offset {exc.start})"
        return out

    return read


#: Apache's ServerRoot on Debian and on Red Hat: absolute `Include`s under them resolve against --include-root
APACHE_ROOTS = ("/etc/apache2/", "/etc/httpd/")
#: Apache reads an included directory's subdirectories too; an import stops this deep
_MAX_DIRECTORY_DEPTH = 16


def apache_include_reader(root: Path, rooted: bool) -> IncludeReader:
    """How `Include NAME` and `IncludeOptional NAME` are read on import, as Apache 2.4 reads them.
    Apache resolves a relative NAME against its ServerRoot: here against `root` (the directory of
    the file imported, or --include-root). With --include-root (`rooted`), an absolute NAME under
    /etc/apache2/ or /etc/httpd/ also resolves against it, so a repository of configuration reads as
    installed; other absolute names are read as written. `*`, `?` and `[...]` are wildcards in any
    component of NAME (not matching a leading `.`), their matches read in sorted order; a wildcard
    in a directory component matches directories only. A directory is read whole: every file in
    it and in its subdirectories, sorted, as Apache does. A NAME that matches nothing is an
    `IncludeMissing` (a warning for `Include`, which Apache refuses; nothing for `IncludeOptional`)."""

    def read(target: str, including: str) -> list[tuple[str, str]] | str:
        prefix = next((p for p in APACHE_ROOTS if rooted and target.startswith(p)), None)
        if prefix is not None:
            base, rest = root, target[len(prefix):]
        elif Path(target).is_absolute():
            base, rest = Path(Path(target).anchor), target[len(Path(target).anchor):]
        else:
            base, rest = root, target
        where = base / rest
        hint = "" if rooted else "; pass --include-root DIR when the includes are relative to another directory"
        matched = _apache_matches(base, [part for part in rest.split("/") if part not in ("", ".")])
        if matched is None:
            if not where.exists():
                return IncludeMissing(f"no such file or directory {where}{hint}")
            matched = [where]
        elif not matched:
            return IncludeMissing(f"no file or directory matches {where}{hint}")
        out: list[tuple[str, str]] = []
        for found in _apache_files(matched, 0):
            try:
                out.append((found, Path(found).read_bytes().decode("utf-8-sig")))
            except FileNotFoundError:
                return IncludeMissing(f"no such file {found}{hint}")
            except OSError as exc:
                return f"cannot read {found}: {exc.strerror or exc}"
            except UnicodeDecodeError as exc:
                return f"{found} is not valid UTF-8 (byte offset {exc.start})"
        return out

    return read


def _apache_matches(base: Path, parts: list[str]) -> list[Path] | None:
    """The paths `base/parts...` names when a part holds a wildcard (sorted, as Apache's
    `fnmatch` walk finds them; a part before the last matches directories only); None without one."""
    if not any(_wildcard(part) for part in parts):
        return None
    found = [base]
    for n, part in enumerate(parts):
        last = n == len(parts) - 1
        step: list[Path] = []
        for where in found:
            if not _wildcard(part):
                step.append(where / part)
                continue
            try:
                names = sorted(entry.name for entry in os.scandir(where))
            except OSError:
                continue
            for entry in names:
                if (entry.startswith(".") and not part.startswith(".")) or not fnmatch.fnmatchcase(
                        entry, part.replace("[^", "[!")):
                    continue
                if last or (where / entry).is_dir():
                    step.append(where / entry)
        found = [p for p in step if last or p.is_dir()]
    return [p for p in found if p.exists()]


def _wildcard(part: str) -> bool:
    return "*" in part or "?" in part or ("[" in part and "]" in part[part.index("["):])


def _apache_files(paths: list[Path], depth: int) -> list[str]:
    """The files to read for these paths: a file itself; a directory, every entry in it in sorted
    order (`.` files too, as Apache reads them), subdirectories in place."""
    out: list[str] = []
    for path in paths:
        if path.is_dir() and depth < _MAX_DIRECTORY_DEPTH:
            try:
                entries = sorted(os.listdir(path))
            except OSError:
                out.append(str(path))  # reading it says why
                continue
            out.extend(_apache_files([path / e for e in entries], depth + 1))
        elif not path.is_dir():
            out.append(os.path.normpath(path))
    return out


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
