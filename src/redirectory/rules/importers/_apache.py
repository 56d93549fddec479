"""Apache: `Redirect*`, `RedirectMatch` and `RewriteRule ... [R]` as rules (see the package docstring)."""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _KEPT, _Builder, _path, _regex_rule, _unknown_variables
from redirectory.rules.patterns import valid_host

# -- Apache --------------------------------------------------------------------------------------
_APACHE_STATUS = {"permanent": 301, "temp": 302, "seeother": 303, "gone": 410}
_APACHE_SKIP_CONTAINERS = ("location", "locationmatch", "directory", "directorymatch", "files", "filesmatch",
                           "if", "elseif", "else", "proxy")


def _apache_lines(text: str) -> list[tuple[int, str]]:
    """Logical lines (continuations joined), with the first physical line's number."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        out.append((start, " ".join(pending).strip()))
        pending = []
    if pending:
        out.append((start, " ".join(pending).strip()))
    return out


def _apache_args(text: str) -> list[str]:
    args: list[str] = []
    for m in re.finditer(r'"((?:[^"\\]|\\.)*)"|(\S+)', text):
        if m.group(1) is not None:
            args.append(re.sub(r"\\(.)", r"\1", m.group(1)))
        else:
            args.append(m.group(2))
    return args


def _load_apache(b: _Builder, text: str) -> None:
    containers: list[tuple[str, int, list[str]]] = []  # (name, line, server names)
    conds: list[int] = []
    rewrite_base = "/"
    for line, content in _apache_lines(text):
        if not content or content.startswith("#"):
            continue
        opening = re.fullmatch(r"<\s*([A-Za-z]+)\b([^>]*)>", content)
        if opening:
            containers.append((opening.group(1).lower(), line, []))
            continue
        closing = re.fullmatch(r"</\s*([A-Za-z]+)\s*>", content)
        if closing:
            name = closing.group(1).lower()
            if containers and containers[-1][0] == name:
                containers.pop()
            else:
                b.warn(line, "import.syntax", f"</{closing.group(1)}> closes no open <{closing.group(1)}>: ignored",
                       name="file")
            conds.clear()
            continue
        args = _apache_args(content)
        if not args:
            continue
        directive = args[0].lower()
        args = args[1:]
        if directive in ("servername", "serveralias"):
            for c in reversed(containers):
                if c[0] == "virtualhost":
                    c[2].extend(a if directive == "servername" else "*" + a for a in args)
                    if directive == "serveralias":
                        c[2].append("*")
                    break
            continue
        if directive == "rewritecond":
            conds.append(line)
            continue
        if directive == "rewritebase":
            if len(args) == 1 and args[0].startswith("/"):
                rewrite_base = args[0] if args[0].endswith("/") else args[0] + "/"
            continue
        if directive not in ("redirect", "redirectpermanent", "redirecttemp", "redirectmatch", "rewriterule"):
            continue
        had_conds = bool(conds)
        conds.clear()
        inner = [c for c in containers if c[0] in _APACHE_SKIP_CONTAINERS]
        what = f"`{content}`"
        if inner:
            b.warn(line, "import.container", f"{what} is inside <{inner[-1][0]}> (from line {inner[-1][1]}): "
                   "its condition cannot be expressed as a rule: skipped")
            continue
        host = None
        for c in reversed(containers):
            if c[0] == "virtualhost":
                if len(c[2]) == 1 and valid_host(c[2][0].lower()):
                    host = c[2][0].lower()
                break
        if directive == "rewriterule":
            _apache_rewrite(b, line, what, args, host, had_conds, rewrite_base)
        elif directive == "redirectmatch":
            _apache_redirect_match(b, line, what, args, host)
        else:
            default = {"redirect": 302, "redirectpermanent": 301, "redirecttemp": 302}[directive]
            _apache_redirect(b, line, what, args, host, default, directive == "redirect")


def _apache_status(args: list[str], default: int, allow: bool) -> tuple[int | None, list[str]]:
    if allow and args:
        word = args[0].lower()
        if word in _APACHE_STATUS:
            return _APACHE_STATUS[word], args[1:]
        if word.isdigit() and len(word) == 3:
            return int(word), args[1:]
    return default, args


def _apache_redirect(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, default: int, status_arg: bool
) -> None:
    code, rest = _apache_status(args, default, status_arg)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] /path URL: skipped")
        return
    path, url = rest
    if not path.startswith("/"):
        b.warn(line, "import.unsupported", f"{what}: {path!r} is not a path starting with /: skipped", name="from")
        return
    status = b.status(code, line, what)
    if status is None:
        return
    prefix = f"//{host}" if host else ""  # the URL is literal: `$` is not a variable here
    base = _path(path.rstrip("/"))
    if not path.endswith("/"):
        b.add(line, {"from": prefix + _path(path), "to": url, "status": status})
    b.add(line, {"from": f"{prefix}{base}/{{rest:path}}", "to": url.rstrip("/") + "/{rest}", "status": status})


def _apache_redirect_match(b: _Builder, line: int, what: str, args: list[str], host: str | None) -> None:
    code, rest = _apache_status(args, 302, True)
    assert code is not None
    if code == 410 or (len(rest) == 1 and code not in _KEPT and code != 302):
        b.status(code, line, what)
        return
    if len(rest) != 2:
        b.warn(line, "import.unsupported", f"{what}: expected [status] REGEX URL: skipped")
        return
    regex, url = rest
    status = b.status(code, line, what)
    if status is None:
        return
    if _unknown_variables(b, line, what, url, allow_groups=True):
        return
    if host:
        b.warn(line, "import.host", f"{what}: a regex rule answers every host, not only {host}: check it",
               name="from_regex")
    _regex_rule(b, line, what, regex, url, status)


def _apache_rewrite(
    b: _Builder, line: int, what: str, args: list[str], host: str | None, had_conds: bool, rewrite_base: str
) -> None:
    if len(args) < 2:
        b.warn(line, "import.unsupported", f"{what}: expected PATTERN SUBSTITUTION [flags]: skipped")
        return
    pattern, subst = args[0], args[1]
    flags: list[str] = []
    if len(args) >= 3:
        flags = [f.strip() for f in args[2].strip("[]").split(",") if f.strip()]
    code: int | None = None
    ci = False
    query: str | None = None
    for f in flags:
        name, _, value = f.partition("=")
        lname = name.lower()
        if lname in ("r", "redirect"):
            v = value.lower()
            code = _APACHE_STATUS.get(v) or (int(v) if v.isdigit() and len(v) == 3 else 302 if not v else None)
            if code is None:
                b.warn(line, "import.unsupported", f"{what}: R={value} is not a status: skipped", name="status")
                return
        elif lname in ("nc", "nocase"):
            ci = True
        elif lname in ("qsd", "qsdiscard"):
            query = "drop"
        elif lname in ("g", "gone"):
            code = 410
        elif lname in ("f", "forbidden"):
            return
    if code is None:
        if re.match(r"(?i)https?://", subst):
            b.warn(line, "import.rewrite", f"{what}: an absolute substitution without [R] is a 302 redirect in "
                   "Apache but was skipped: add [R=301] (or 307/308) to import it")
        return  # an internal rewrite, not a redirect
    if had_conds:
        b.warn(line, "import.conditional", f"{what} follows RewriteCond lines: conditions cannot be expressed as "
               "a rule: skipped")
        return
    status = b.status(code, line, what)
    if status is None:
        return
    if subst == "-":
        b.warn(line, "import.unsupported", f"{what}: `-` (no substitution) has no target: skipped", name="to")
        return
    if "%{" in subst or re.search(r"%[0-9]", subst):
        b.warn(line, "import.variable", f"{what}: the substitution uses a server variable or RewriteCond "
               "back-reference, which a rule cannot express: skipped", name="to")
        return
    if _unknown_variables(b, line, what, subst, allow_groups=True):
        return
    if subst.endswith("?"):
        subst, query = subst[:-1], "drop"
    if not subst.startswith("/") and not re.match(r"(?i)https?://", subst):
        subst = rewrite_base + subst  # a relative substitution (.htaccess): under RewriteBase
    if pattern.startswith("!"):
        b.warn(line, "import.unsupported", f"{what}: a negated pattern cannot be expressed as a rule: skipped",
               name="from_regex")
        return
    # per-directory (.htaccess) patterns see the path without its leading slash
    if pattern.startswith("^") and not pattern.startswith("^/"):
        pattern = "^/" + pattern[1:]
    if host:
        b.warn(line, "import.host", f"{what}: a regex rule answers every host, not only {host}: check it",
               name="from_regex")
    _regex_rule(b, line, what, pattern, subst, status, case_insensitive=ci, query=query)
