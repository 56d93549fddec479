"""What an Apache regex says about the paths it matches, for the Apache importer: whether a
`RewriteCond` on the path adds anything to the rule's pattern (`_implied`, through the literal
runs every match holds, `_skeleton`), the literal text every match starts with, a pattern a path
pattern can hold (`_as_pattern`), the paths without capitals an `int:tolower` map leaves alone,
and PCRE's possessive quantifiers read as RE2 can. Pure; each answer errs on the safe side (None,
False) when the regex is not one this reading covers."""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _path

_LITERAL = re.compile(r"\\([^A-Za-z0-9])|([A-Za-z0-9/_~%=,;:@&!'-])")


def _literal_prefix(regex: str) -> str | None:
    """The literal text every match of an anchored regex starts with; None when not anchored."""
    if not regex.startswith("^") or "|" in regex:
        return None
    out: list[str] = []
    i = 1
    while i < len(regex):
        m = _LITERAL.match(regex, i)
        if m is None:
            break
        if regex[m.end() : m.end() + 1] in ("?", "*", "{"):
            break
        out.append(m.group(1) or m.group(2))
        i = m.end()
    return "".join(out)


def _implied(cond: str, pattern: str) -> bool:
    """Whether every path the rule's `pattern` matches also matches the condition's regex: the same
    regex, `^`/`.*`, or a condition made of literal parts joined by `.*` (`^/a`, `^/a.*html$`,
    `.*minutes-.*`) that every match of the pattern holds in that order (`_skeleton`)."""
    if cond in (pattern, ".*", "^", ""):
        return True
    cut = _shared_start(cond, pattern)
    if cut > 1 and cond.startswith("^"):  # the same regex text first (`^/c++-sig`): compare what follows
        return _implied("^" + cond[cut:], "^" + pattern[cut:])
    anchored_start = cond.startswith("^") and not cond.startswith("^.*")
    anchored_end = cond.endswith("$") and not cond.endswith(".*$") and not cond.endswith("\\$")
    pieces = []
    for text in cond.removeprefix("^").removesuffix("$" if anchored_end else "").split(".*"):
        if re.search(r"[][()*+?{|]|\\[A-Za-z0-9]", text):
            return False  # a class, group, quantifier or escape class: a requirement the skeleton drops
        found = _skeleton(text) if text else (False, [], False)
        if found is None or len(found[1]) > 1 or (text and not found[1]):
            return False
        if text:
            pieces.append(found[1][0])
    skeleton = _skeleton(pattern)
    if skeleton is None or not pieces:
        return skeleton is not None and not anchored_start and not anchored_end
    starts, runs, ends = skeleton
    if not runs:
        return False
    last = (len(runs) - 1, len(runs[-1]))  # where the pieces must end by (exclusive)
    if anchored_end:
        tail = pieces.pop()
        if not ends or not _fits(tail, runs[-1], len(runs[-1]) - len(tail)):
            return False
        last = (len(runs) - 1, len(runs[-1]) - len(tail))
    run, at = 0, 0
    for n, piece in enumerate(pieces):
        if n == 0 and anchored_start:
            if not starts or not _fits(piece, runs[0], 0):
                return False
            at = len(piece)
            continue
        while True:  # the first place in a run where the piece fits, from (run, at) on
            if run > last[0]:
                return False
            limit = last[1] if run == last[0] else len(runs[run])
            spot = next((i for i in range(at, limit - len(piece) + 1) if _fits(piece, runs[run], i)), None)
            if spot is not None:
                at = spot + len(piece)
                break
            run, at = run + 1, 0
    if anchored_start and not pieces:  # the only piece was the tail: it must also be the start
        return starts and ends and len(runs) == 1 and last == (0, 0)
    return (run, at) <= last


def _shared_start(first: str, second: str) -> int:
    """The length of the longest start the two regexes share as a whole regex: balanced, no
    alternation, and followed by no quantifier in either (so each is that start, then the rest)."""
    best = 0
    depth = 0
    i = 0
    while i < min(len(first), len(second)) and first[i] == second[i]:
        c = first[i]
        if c == "|":
            break
        if depth == 0 and all(i >= len(r) or r[i] not in "*+?{" for r in (first, second)):
            best = i
        if c == "\\":
            if first[i + 1 : i + 2] != second[i + 1 : i + 2]:
                break
            i += 2
            continue
        if c == "[":
            end = _class_end(first, i)
            if end is None or first[i:end] != second[i:end]:
                break
            i = end
            continue
        depth += {"(": 1, ")": -1}.get(c, 0)
        i += 1
    else:
        if depth == 0 and all(i >= len(r) or r[i] not in "*+?{" for r in (first, second)):
            best = i
    return best


def _fits(piece: list[str | None], run: list[str | None], at: int) -> bool:
    """Whether the condition's atoms `piece` (None: `.`) match every text `run` has at `at` on."""
    if at < 0 or at + len(piece) > len(run):
        return False
    return all(want is None or want == got for want, got in zip(piece, run[at:], strict=False))


def _skeleton(regex: str) -> tuple[bool, list[list[str | None]], bool] | None:
    """What every match of `regex` holds: runs of atoms (a character, or None for an unrepeated `.`)
    in order, and whether the first run starts the match (`^`) and the last ends it (`$`). Anything
    else (a class, an escape such as `\\d`, a repeated or optional part) separates runs. None for
    an alternation or a regex this reading does not cover."""
    starts = regex.startswith("^")
    body = regex[1:] if starts else regex
    ends = body.endswith("$") and not body.endswith("\\$")
    body = body[:-1] if ends else body
    flat: list[str | None | bool] = []  # atoms, False for a gap
    opened: list[int] = []
    i = 0
    while i < len(body):
        c = body[i]
        size = 1
        atom: str | None | bool
        if c == "\\":
            escaped = body[i + 1 : i + 2]
            atom = escaped if escaped and not escaped.isalnum() else False
            size = 2
        elif c == ".":
            atom = None
        elif c == "[":
            end = _class_end(body, i)
            if end is None:
                return None
            atom, size = False, end - i
        elif c == "(":
            if body.startswith("(?", i) and not body.startswith("(?:", i):
                return None
            opened.append(len(flat))
            i += 3 if body.startswith("(?:", i) else 1
            continue
        elif c == ")":
            if not opened:
                return None
            begin = opened.pop()
            i += 1
            if i < len(body) and body[i] in "*?{+":
                flat[begin:] = [*flat[begin:], False] if body[i] == "+" else [False]
                i = _after_quantifier(body, i)
            continue
        elif c in "|^$*+?{":
            return None
        else:
            atom = c
        i += size
        if i < len(body) and body[i] in "*?{+":
            flat.extend([atom, False] if body[i] == "+" else [False])
            i = _after_quantifier(body, i)
        else:
            flat.append(atom)
    if opened:
        return None
    runs: list[list[str | None]] = [[]]
    for item in flat:
        if item is False:
            runs.append([])
        else:
            runs[-1].append(item)  # type: ignore[arg-type]
    starts = starts and bool(runs[0])
    ends = ends and bool(runs[-1])
    return starts, [r for r in runs if r], ends


def _after_quantifier(regex: str, i: int) -> int:
    """The index after the quantifier at `i` (`*`, `+`, `?`, `{m,n}`) and a lazy or possessive mark."""
    if regex[i] == "{":
        close = regex.find("}", i)
        i = close + 1 if close != -1 else len(regex)
    else:
        i += 1
    return i + 1 if i < len(regex) and regex[i] in "?+" else i


def _as_pattern(regex: str, target: str) -> tuple[str, str] | None:
    """A regex (over the full path) as a path pattern with the same matches, and the target with `$1`
    as its placeholder: only the forms a host condition usually guards."""
    if regex in ("^/(.*)$", "^/(.*)", "^/?(.*)$", "^/?(.*)", "^(.*)$", "^(.*)"):
        lead = "/" if regex.startswith("^(") else ""  # `^(.*)` holds the leading slash
        return "/{rest:path}", re.sub(r"\$\{?1\}?(?![0-9])", lead + "{rest}", target)
    if re.search(r"\$\{?[0-9]", target):
        return None
    if regex in ("", "^", "^/", ".*", "^.*", "^.*$", "^/.*", "^/.*$"):
        return "/{rest:path}", target
    if regex in ("^/$", "^/?$", "^$"):
        return "/", target
    m = re.fullmatch(r"\^((?:/(?:[A-Za-z0-9_~-]|\\\.)+)+/?)\$", regex)
    if m:
        return _path(m.group(1).replace("\\.", ".")), target
    return None


_MAP_CALL = re.compile(r"\$\{([A-Za-z0-9_]+):\$(?:([0-9])|\{([0-9])\})\}")


def _lowered(subst: str, maps: dict[str, str]) -> tuple[str, set[int]]:
    """The substitution with each `${map:$N}` of an `int:tolower` map as `$N`, and those N."""
    groups: set[int] = set()

    def call(m: re.Match[str]) -> str:
        if maps.get(m.group(1)) != "int:tolower":
            return m.group(0)
        number = m.group(2) or m.group(3)
        groups.add(int(number))
        return "$" + number

    return _MAP_CALL.sub(call, subst), groups


def _class_end(regex: str, start: int) -> int | None:
    """The index just after the character class that opens at `start`."""
    i = start + 1
    if regex.startswith("^", i):
        i += 1
    if regex.startswith("]", i):
        i += 1
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex.startswith("[:", i) and (close := regex.find(":]", i + 2)) != -1:
            i = close + 2
            continue
        if regex[i] == "]":
            return i + 1
        i += 1
    return None


_NO_CAPITAL_ESCAPES = {"d": r"\d", "s": r"\s", "W": r"\W", "w": "[0-9a-z_]", "S": r"[^\sA-Z]", "D": "[^0-9A-Z]"}


def _without_capitals(text: str) -> str | None:
    """A regex that matches what `text` matches except strings holding a capital letter (A-Z); None
    when that cannot be written simply (a capital in the regex itself, a class of capitals...)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            escaped = text[i + 1 : i + 2]
            if escaped.isalpha():
                if escaped not in _NO_CAPITAL_ESCAPES:
                    return None
                out.append(_NO_CAPITAL_ESCAPES[escaped])
            else:
                out.append(text[i : i + 2])
            i += 2
            continue
        if c == "[":
            end = _class_end(text, i)
            if end is None:
                return None
            body = text[i + 1 : end - 1]
            if body.startswith("^"):
                rest = "\\]" + body[2:] if body.startswith("^]") else body[1:]
                out.append("[^A-Z" + rest + "]")
            elif re.search(r"[A-Z\\:]|[!-@]-[\[-~]", body):
                return None  # capitals, escapes, [:classes:] or a range across the capitals
            else:
                out.append(text[i:end])
            i = end
            continue
        if c == ".":
            out.append(r"[^A-Z\n]")
        elif "A" <= c <= "Z":
            return None
        elif c == "(" and text.startswith("(?", i) and not text.startswith(("(?P<", "(?<", "(?'", "(?:"), i):
            return None  # inline flags such as (?i) would fold the capitals back in
        else:
            out.append(c)
        i += 1
    return "".join(out)


_POSSESSIVE = re.compile(r"(?<!\\)([A-Za-z0-9/_~-])([+*?])\+(?=([A-Za-z0-9/_~-]|\$?$))")


def _possessive_as_greedy(pattern: str) -> str:
    """PCRE's possessive `c++` (RE2 has none) as `c+` where that changes nothing: a single literal
    character repeated, followed by a different literal character or the end (`^/c++-sig`): greedy
    matching never gives any back there either."""
    return _POSSESSIVE.sub(lambda m: m.group(0)[:-1] if m.group(3) != m.group(1) else m.group(0), pattern)


def _capital_free(pattern: str) -> str | None:
    """`pattern` limited to paths without a capital letter A-Z; None if that cannot be written.

    Only for a pattern anchored at both ends (`^...$`) with no capital of its own: it then matches
    exactly the paths the original matches that hold no capital, and on those every way of matching
    is the original's, so each group captures what Apache's would (no capital: lower-casing it
    changes nothing). Limiting only the lower-cased group would not do: `^/a(.*)(.*)$` would then
    capture `""` from `/aXy` where Apache captures `Xy`."""
    if not pattern.startswith("^") or not pattern.endswith("$") or pattern.endswith("\\$"):
        return None
    return _without_capitals(pattern)


def _hash_as_escape(regex: str) -> str:
    """`regex` for the path as the gateway keeps it: Apache matches the decoded path, where a `#`
    (sent as `%23`) is a character; the gateway keeps it as `%23` (docs/rules.md, normalisation).
    A `#` (or `\\#`) becomes `%23` (camunda-docs' `^docs/.../internal-processing/#handling-back-pressure$`),
    a class with one `(?:%23|[rest])`; a negated class (`[^#]`) is left as written."""
    out: list[str] = []
    i = 0
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            pair = regex[i : i + 2]
            out.append("%23" if pair == "\\#" else pair)
            i += 2
        elif c == "[":
            after = _class_end(regex, i)
            if after is None:
                return "".join(out) + regex[i:]
            end = after - 1
            body = regex[i + 1 : end]
            members = body.replace("\\#", "#")
            if body.startswith("^") or "#" not in members:
                out.append(regex[i : end + 1])
            else:
                rest = re.sub(r"(?<!\\)#", "", body.replace("\\#", ""))
                out.append(f"(?:%23|[{rest}])" if rest else "%23")
            i = end + 1
        else:
            out.append("%23" if c == "#" else c)
            i += 1
    return "".join(out)

