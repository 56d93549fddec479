"""Netlify `_redirects` lines and `netlify.toml` `[[redirects]]` as rules (docs/migrating.md).

Netlify matches as follows, and the import answers the same:
- the first redirect in file order that matches the path wins (`_first_match`): a later one that an
  earlier one fully covers is skipped with a warning naming both lines, a later one an earlier one
  partly covers is ordered after it (`priority`, or a regex rule where ranks cannot);
- the trailing slash does not matter: Netlify's CDN normalises the URL before the redirect rules
  run ("Trailing slash" in Netlify's redirect options), so `/events/` and `/events` match both
  `/events` and `/events/`: such a redirect becomes two rules (`/events`, `/events/`), and
  `/:name` ones two patterns; `/blog/*` already matches `/blog`, `/blog/` and everything below
  (the splat keeps what follows `/blog/`, a trailing slash included).
"""

from __future__ import annotations

import re
import tomllib

from redirectory.rules.importers._common import _NAME, _Builder, _path
from redirectory.rules.importers._first_match import ANY, Candidate, Shape, resolve
from redirectory.rules.model import Problem
from redirectory.rules.patterns import valid_host


# -- Netlify -------------------------------------------------------------------------------------
def _load_netlify(b: _Builder, text: str) -> None:
    found: list[Candidate] = []
    _read_netlify(b, text, found)
    resolve(b, found)


def _read_netlify(b: _Builder, text: str, found: list[Candidate]) -> None:
    for number, raw in enumerate(text.splitlines(), 1):
        content = raw.strip()
        if not content or content.startswith("#"):
            continue
        if " #" in content:
            content = content.split(" #", 1)[0].strip()
        parts = content.split()
        what = f"`{content}`"
        if len(parts) < 2:
            b.warn(number, "import.syntax", f"{what}: expected FROM TO [STATUS]: skipped")
            continue
        source = parts[0]
        index = 1
        while index < len(parts) and "=" in parts[index] and not parts[index].startswith(("/", "http")):
            index += 1
        if index > 1:
            b.warn(number, "import.conditional", f"{what}: query parameter matching ({parts[1]}) cannot be "
                   "expressed as a rule: skipped")
            continue
        if index >= len(parts):
            b.warn(number, "import.syntax", f"{what}: expected FROM TO [STATUS]: skipped")
            continue
        target = parts[index]
        rest = parts[index + 1 :]
        code = 301
        if rest and re.fullmatch(r"[0-9]{3}!?", rest[0]):
            code = int(rest[0][:3])
            rest = rest[1:]
        if rest:
            b.warn(number, "import.conditional", f"{what}: conditions ({' '.join(rest)}) cannot be expressed as a "
                   "rule: skipped")
            continue
        _netlify_rule(b, found, number, what, source, target, code)


def _netlify_rule(b: _Builder, found: list[Candidate], number: int, what: str, source: str, target: str,
                  code: int) -> None:
    """One Netlify redirect (a `_redirects` line or a `[[redirects]]` table) as a rule, or a warning."""
    if code in (200, 404):
        kind = "a rewrite (the content is served from TO)" if code == 200 else "a custom 404 page"
        b.warn(number, "import.status-skipped", f"{what}: {code} is {kind}, not a redirect: skipped", name="status")
        return
    status = b.status(code, number, what)
    if status is None:
        return
    host = ""
    m = re.match(r"(?i)https?://([^/]+)(/.*)?$", source)
    if m:
        name = m.group(1).lower()
        if not valid_host(name):
            b.warn(number, "import.unsupported", f"{what}: {m.group(1)!r} is not a host name: skipped",
                   name="from")
            return
        host, source = "//" + name, m.group(2) or "/"
    if not source.startswith("/"):
        b.warn(number, "import.unsupported", f"{what}: FROM must be a path starting with / or a URL: skipped",
               name="from")
        return
    source = source.rstrip("/") or "/"  # Netlify matches with and without the trailing slash
    segments = [seg for seg in source.split("/")[1:] if seg]
    names: list[str] = []
    converted: list[str] = []
    segs: list[str | None] = []
    tail = False
    for i, seg in enumerate(segments):
        if seg == "*" and i == len(segments) - 1:
            tail = True
            names.append("splat")
        elif seg.startswith(":") and _NAME.fullmatch(seg[1:]):
            converted.append("{" + seg[1:] + "}")
            segs.append(None)
            names.append(seg[1:])
        elif "*" in seg:
            b.warn(number, "import.unsupported", f"{what}: `*` is only supported as the last segment (/path/*): "
                   "skipped", name="from")
            return
        else:
            converted.append(_path(seg))
            segs.append(converted[-1])
    if ":splat" in target and "splat" not in names:
        b.warn(number, "import.unsupported", f"{what}: TO uses :splat but FROM has no `*` to fill it: skipped",
               name="to")
        return

    def placeholder(m: re.Match[str], names: list[str] = names) -> str:
        word = m.group(1)
        if word == "splat" and "splat" in names:
            return "{rest}"
        return "{" + word + "}" if word in names and word != "splat" else m.group(0)

    # only in the path, query and fragment: never in "https://host:port"
    split = re.match(r"(?i)(https?://[^/?#]*)?(.*)$", target, re.DOTALL)
    assert split is not None
    origin = split.group(1) or ""
    path = re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", placeholder, split.group(2))
    to = origin + path
    base = "/" + "/".join(converted)
    if tail:
        plain = [host + base.rstrip("/") + "/{rest:path}"]
    else:
        plain = [host + base] + ([host + base + "/"] if converted else [])
    found.append(Candidate(number, what, Shape(tuple(segs), ANY if tail else None, host[2:]),
                           [{"from": f, "to": to, "status": status} for f in plain],
                           _regex_form(converted, tail, origin, path, status),
                           source))


def _regex_form(converted: list[str], tail: bool, origin: str, path: str,
                status: int) -> tuple[str, str, int] | None:
    """The redirect as a regex rule (ordered after earlier ones), None when the splat's value
    cannot be placed as the pattern places it."""
    regex = "^" + "".join("/" + (f"(?P<{seg[1:-1]}>[^/]+)" if seg.startswith("{") else re.escape(seg))
                          for seg in converted)
    regex += "(?P<rest>/.*)?$" if tail else ("/?$" if converted else "/$")
    if tail:
        # the group holds the slash before the splat: an absent splat drops it, as `{rest:path}` does
        head = re.match(r"[^?#]*", path)
        assert head is not None
        if path.count("{rest}") != head.group(0).count("/{rest}"):
            return None
        keep = origin and path.startswith("/{rest}")
        path = ("/{rest}" + path[7:].replace("/{rest}", "{rest}")) if keep else path.replace("/{rest}", "{rest}")
    return regex, origin + path, status


# -- netlify.toml ---------------------------------------------------------------------------------
#: Keys of a `[[redirects]]` table that restrict when it applies: a rule cannot express them.
_TOML_CONDITIONS = ("query", "conditions", "signed")
#: Keys that change nothing a redirect answers here.
_TOML_IGNORED = ("force", "headers")
_TOML_REDIRECTS = re.compile(r"^[ \t]*\[\[[ \t]*redirects[ \t]*\]\]", re.MULTILINE)


def _load_netlify_toml(b: _Builder, text: str) -> None:
    """`[[redirects]]` tables of a `netlify.toml`, each as the `_redirects` line it stands for."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        b.problems.append(Problem("error", "file", f"not valid TOML: {exc}", line=_toml_error_line(exc),
                                  code="syntax", source=b.source))
        return
    redirects = doc.get("redirects")
    if not redirects:
        found = ", ".join(f"[{key}]" for key in doc) or "nothing"
        b.problems.append(Problem(
            "error", "file", f"no [[redirects]] in this netlify.toml (found {found}): nothing to import; "
            "a `_redirects` file is read with --format netlify", line=1, code="import.empty", source=b.source))
        return
    if not isinstance(redirects, list):
        b.problems.append(Problem("error", "redirects", "`redirects` must be an array of tables ([[redirects]])",
                                  line=1, code="type", source=b.source))
        return
    candidates: list[Candidate] = []
    headers = [text.count("\n", 0, m.start()) + 1 for m in _TOML_REDIRECTS.finditer(text)]
    if len(headers) != len(redirects):  # an inline array: every entry on the line `redirects` starts
        start = re.search(r"^[ \t]*redirects[ \t]*=", text, re.MULTILINE)
        headers = [text.count("\n", 0, start.start()) + 1 if start else 1] * len(redirects)
    for number, entry in zip(headers, redirects, strict=True):
        what = "[[redirects]]"
        if not isinstance(entry, dict):
            b.warn(number, "import.syntax", f"{what}: expected a table with from and to: skipped")
            continue
        source, target, code = entry.get("from"), entry.get("to"), entry.get("status", 301)
        what = f"[[redirects]] from = {source!r}"
        if not isinstance(source, str) or not isinstance(target, str):
            b.warn(number, "import.syntax", f"{what}: `from` and `to` must both be strings: skipped")
            continue
        if not isinstance(code, int) or isinstance(code, bool):
            b.warn(number, "import.syntax", f"{what}: `status` must be a number such as 301: skipped", name="status")
            continue
        conditions = [key for key in _TOML_CONDITIONS if entry.get(key)]
        if conditions:
            b.warn(number, "import.conditional", f"{what}: {', '.join(conditions)} cannot be expressed as a rule: "
                   "skipped")
            continue
        unknown = sorted(set(entry) - {"from", "to", "status", *_TOML_CONDITIONS, *_TOML_IGNORED})
        if unknown:
            b.warn(number, "import.unknown-key", f"{what}: unknown key {unknown[0]!r}: ignored")
        _netlify_rule(b, candidates, number, what, source.strip(), target.strip(), code)
    resolve(b, candidates)


def _toml_error_line(exc: tomllib.TOMLDecodeError) -> int:
    m = re.search(r"\(at line ([0-9]+)", str(exc))
    return int(m.group(1)) if m else 1
