"""Netlify `_redirects` lines as rules (see the package docstring)."""

from __future__ import annotations

import re

from redirectory.rules.importers._common import _NAME, _Builder, _path
from redirectory.rules.patterns import valid_host


# -- Netlify -------------------------------------------------------------------------------------
def _load_netlify(b: _Builder, text: str) -> None:
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
        if code in (200, 404):
            kind = "a rewrite (the content is served from TO)" if code == 200 else "a custom 404 page"
            b.warn(number, "import.status-skipped", f"{what}: {code} is {kind}, not a redirect: skipped",
                   name="status")
            continue
        status = b.status(code, number, what)
        if status is None:
            continue
        host = ""
        m = re.match(r"(?i)https?://([^/]+)(/.*)?$", source)
        if m:
            name = m.group(1).lower()
            if not valid_host(name):
                b.warn(number, "import.unsupported", f"{what}: {m.group(1)!r} is not a host name: skipped",
                       name="from")
                continue
            host, source = "//" + name, m.group(2) or "/"
        if not source.startswith("/"):
            b.warn(number, "import.unsupported", f"{what}: FROM must be a path starting with / or a URL: skipped",
                   name="from")
            continue
        segments = source.split("/")
        names: list[str] = []
        converted: list[str] = []
        bad = False
        for i, seg in enumerate(segments):
            if seg == "*":
                if i != len(segments) - 1:
                    bad = True
                    break
                converted.append("{splat:path}")
                names.append("splat")
            elif seg.startswith(":") and _NAME.fullmatch(seg[1:]):
                converted.append("{" + seg[1:] + "}")
                names.append(seg[1:])
            elif "*" in seg:
                bad = True
                break
            else:
                converted.append(_path(seg))
        if bad:
            b.warn(number, "import.unsupported", f"{what}: `*` is only supported as the last segment (/path/*): "
                   "skipped", name="from")
            continue
        pattern = "/".join(converted).replace("{splat:path}", "{rest:path}")
        if ":splat" in target and "splat" not in names:
            b.warn(number, "import.unsupported", f"{what}: TO uses :splat but FROM has no `*` to fill it: skipped",
                   name="to")
            continue

        def placeholder(m: re.Match[str], names: list[str] = names) -> str:
            word = m.group(1)
            if word == "splat" and "splat" in names:
                return "{rest}"
            return "{" + word + "}" if word in names and word != "splat" else m.group(0)

        # only in the path, query and fragment: never in "https://host:port"
        split = re.match(r"(?i)(https?://[^/?#]*)?(.*)$", target, re.DOTALL)
        assert split is not None
        to = (split.group(1) or "") + re.sub(r":([A-Za-z_][A-Za-z0-9_]*)", placeholder, split.group(2))
        b.add(number, {"from": host + pattern, "to": to, "status": status})
