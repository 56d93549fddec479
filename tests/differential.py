"""Differential harness for the importers: the real server against `redirectory serve`.

For one real-world redirect file (the corpus in ../shared/corpus, see its README, and the second
root tests/data/real/, laid out the same way), it

1. serves the ORIGINAL with the real server (nginx, or apache2 with mod_alias + mod_rewrite),
   wired minimally: a `server {}` / `<VirtualHost>` around a fragment, `include`s resolved in a
   temporary tree that mirrors the file's repository (the corpus files of the same repository at
   their repository paths, `/etc/nginx/` being the repository root), the repository's companion
   files a fragment needs (the `map` that defines a variable an `if` or a `location` returns, with
   its `default`; the `RewriteMap` a `RewriteRule` calls), and the directives that cannot run
   here stubbed (listen, ssl_*, logs, proxy_pass upstreams, missing includes). The corpus is never written to: only copies are edited;
2. imports the same file with `redirectory rules import FILE --format F` into a fresh SQLite
   database (a refused import is a finding: 0 % agreement, with the importer's message) and runs
   `redirectory serve` on it;
3. sends both the same requests (every literal source path of the file, instances of its prefixes
   and regexes, each with and without `?a=1`, with the trailing slash toggled, a few random paths;
   GET and POST; the Host the file's server_name expects, and each host an Apache
   `RewriteCond %{HTTP_HOST} ^host$` (or `=host`) names for the RewriteRule after it) and compares status and Location.

Normalisation (the gateway's documented behaviour, docs/gateway.md and docs/rules.md): a Location
on the request's own host (`http://host[:port]/p`) equals the absolute path `/p` (the gateway sends
an absolute path when it knows no public URL); the original's 302 answered as 307 is the documented
conversion; two answers that are not redirects (404, 410, 502, 200...) agree whatever their status;
a Location's scheme, host and percent-escapes compare without letter case (RFC 3986 6.2.2.1), and
`{`/`}` as `%7B`/`%7D` (as a client sends them); a path's `//` equals `/` where the original
repeats the slash before a variable (redirectory never adds a `/` to one); Apache's `URL#frag?query`
(the request's query pasted after a target's fragment) equals redirectory's `URL?query#frag`.

Run it: `.venv/bin/python tests/differential.py [--format nginx|apache] [FILE...] [--json OUT]`
(no FILE: every corpus file of the format(s)); tests/test_differential.py holds each file to the
floor recorded in tests/data/differential_floor.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_process import BIN, cli, free_port, start_serve  # noqa: E402

try:  # Python 3.11+
    import re._constants as sre_c
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    import sre_constants as sre_c  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

FORMATS = ("nginx", "apache")
REDIRECTS = frozenset({301, 302, 303, 307, 308})
DEFAULT_HOST = "localhost"
QUERY = "a=1"
METHODS = ("GET", "POST")
MAX_DIFFERENCES = 20
#: Regex sources per file that get requests (a seeded sample beyond): keeps the module within its time budget.
MAX_REGEX_SOURCES = 80
APACHE_MODULES = Path("/usr/lib/apache2/modules")


# -- where things are ---------------------------------------------------------------------------------
def find_corpus() -> Path | None:
    """../shared/corpus next to the repository, else $REDIRECTORY_CORPUS; None when neither exists."""
    candidates = [Path(__file__).resolve().parents[2] / "shared" / "corpus"]
    if os.environ.get("REDIRECTORY_CORPUS"):
        candidates.append(Path(os.environ["REDIRECTORY_CORPUS"]))
    return next((c for c in candidates if c.is_dir()), None)


#: the second corpus root: real files found for this repository, laid out like ../shared/corpus
#: (nginx/, apache/, ...; provenance in its README.md table)
REAL_ROOT = Path(__file__).resolve().parent / "data" / "real"


def corpus_roots() -> list[Path]:
    """Every corpus root there is: find_corpus() (when present), then tests/data/real."""
    return [r for r in (find_corpus(), REAL_ROOT) if r is not None and r.is_dir()]


def corpus_files(corpus: Path, formats: tuple[str, ...] = FORMATS) -> list[str]:
    """`nginx/NAME` and `apache/NAME` of every corpus file, sorted."""
    return [f"{fmt}/{p.name}" for fmt in formats if (corpus / fmt).is_dir()
            for p in sorted((corpus / fmt).iterdir()) if p.is_file()]


def server_binary(fmt: str) -> str | None:
    name = "nginx" if fmt == "nginx" else "apache2"
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/local/sbin/{name}") if Path(p).exists()), None)


def provenance(corpus: Path) -> dict[str, tuple[str, str]]:
    """`nginx/NAME` -> (repository, path in it), from the corpus README's table."""
    out: dict[str, tuple[str, str]] = {}
    readme = corpus / "README.md"
    if not readme.exists():
        return out
    for line in readme.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and "/" in cells[0] and (corpus / cells[0]).is_file():
            out[cells[0]] = (cells[1], cells[2].strip("`"))
    return out


# -- results ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Probe:
    method: str
    host: str
    target: str

    def __str__(self) -> str:
        return f"{self.method} {self.target} (Host: {self.host})"


@dataclass
class FileReport:
    file: str
    format: str
    status: str = "ok"  # ok | import-refused | skipped
    reason: str = ""
    requests: int = 0
    agreed: int = 0
    rules_imported: int = 0
    import_warnings: int = 0
    wiring: list[str] = field(default_factory=list)
    differences: list[dict[str, str]] = field(default_factory=list)
    difference_count: int = 0
    seconds: float = 0.0

    @property
    def agreement(self) -> float:
        return 100.0 * self.agreed / self.requests if self.requests else 100.0

    def summary(self, limit: int = MAX_DIFFERENCES) -> str:
        lines = [f"{self.file}: {self.status} {self.agreement:.1f}% of {self.requests} requests agree"
                 + (f" ({self.reason})" if self.reason else "")]
        lines += [f"  wiring: {w}" for w in self.wiring]
        for d in self.differences[:limit]:
            lines.append(f"  {d['request']}\n      original: {d['original']}\n      redirectory: {d['redirectory']}")
        if self.difference_count > min(limit, len(self.differences)):
            lines.append(f"  ... {self.difference_count - min(limit, len(self.differences))} more differences")
        return "\n".join(lines)

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["agreement"] = round(self.agreement, 2)
        return out


class Unloadable(Exception):
    """The original cannot be served here even with the harness's wiring (the reason)."""


# -- nginx syntax -------------------------------------------------------------------------------------
@dataclass
class Directive:
    name: str
    args: list[str]
    raw: list[str]
    line: int
    block: list[Directive] | None = None


def nginx_parse(text: str) -> list[Directive]:
    """nginx's configuration grammar, enough for real files: words, quotes, blocks, comments."""
    tokens: list[tuple[str, str, int]] = []  # (value, raw, line)
    i, line, n = 0, 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif ch in "{};":
            tokens.append((ch, ch, line))
            i += 1
        elif ch in "\"'":
            j, value = i + 1, []
            while j < n and text[j] != ch:
                if text[j] == "\\" and j + 1 < n:
                    value.append(text[j + 1])
                    j += 2
                    continue
                line += text[j] == "\n"
                value.append(text[j])
                j += 1
            tokens.append(("".join(value), text[i:j + 1], line))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in ";{":
                if text[j] == "$" and text[j + 1:j + 2] == "{":  # ${variable} inside a word
                    j = text.find("}", j) + 1 or n
                    continue
                j += 1
            tokens.append((text[i:j], text[i:j], line))
            i = j

    def block(pos: int) -> tuple[list[Directive], int]:
        out: list[Directive] = []
        words: list[tuple[str, str, int]] = []
        while pos < len(tokens):
            value, raw, ln = tokens[pos]
            if raw == "}" and value == "}":
                return out, pos + 1
            if raw == ";":
                if words:
                    out.append(Directive(words[0][0], [w[0] for w in words[1:]], [w[1] for w in words], words[0][2]))
                words = []
                pos += 1
            elif raw == "{":
                inner, pos = block(pos + 1)
                if words:
                    out.append(Directive(words[0][0], [w[0] for w in words[1:]], [w[1] for w in words], words[0][2], inner))
                words = []
            else:
                words.append((value, raw, ln))
                pos += 1
        return out, pos

    return block(0)[0]


def walk(directives: list[Directive]) -> Iterator[Directive]:
    for d in directives:
        yield d
        if d.block:
            yield from walk(d.block)


def render(d: Directive) -> str:
    head = " ".join(d.raw)
    if d.block is None:
        return head + ";"
    return head + " { " + " ".join(render(x) for x in d.block) + " }"


def strip_comments(text: str) -> str:
    return re.sub(r"(?m)(^|\s)#.*$", r"\1", text)


# -- request generation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Source:
    kind: str  # literal | prefix | regex
    value: str
    host: str | None = None
    case_insensitive: bool = False


PATH_SAFE = "/%:@!$&'()*+,;=-._~"
POOL = "abcdefghijklmnopqrstuvwxyz0123456789-_."


def _in_class(ch: str, items: list[tuple[object, object]]) -> bool:
    negate = False
    member = False
    code = ord(ch)
    for op, av in items:
        if op is sre_c.NEGATE:
            negate = True
        elif op is sre_c.LITERAL:
            member |= code == av
        elif op is sre_c.RANGE:
            lo, hi = av  # type: ignore[misc]
            member |= lo <= code <= hi
        elif op is sre_c.CATEGORY:
            member |= {
                sre_c.CATEGORY_DIGIT: ch.isdigit(), sre_c.CATEGORY_NOT_DIGIT: not ch.isdigit(),
                sre_c.CATEGORY_WORD: ch.isalnum() or ch == "_", sre_c.CATEGORY_NOT_WORD: not (ch.isalnum() or ch == "_"),
                sre_c.CATEGORY_SPACE: ch.isspace(), sre_c.CATEGORY_NOT_SPACE: not ch.isspace(),
            }.get(av, False)  # type: ignore[call-overload]
    return member != negate


def _generate(items: object, rnd: random.Random | None, groups: dict[int, str], repeated: bool = False) -> str:
    """One string the parsed regex matches; `rnd` None: the first branch and fewest repeats. A lone
    `.` outside a repeat is most often a literal dot written unescaped (`/1.5/NEWS.txt`): it gives `.`."""
    out: list[str] = []
    for op, av in items:  # type: ignore[attr-defined]
        if op is sre_c.LITERAL:
            out.append(chr(av))
        elif op is sre_c.NOT_LITERAL:
            out.append("a" if chr(av) != "a" else "b")
        elif op is sre_c.ANY:
            out.append("." if not repeated else "x" if rnd is None else rnd.choice("abcxyz"))
        elif op is sre_c.IN:
            fits = [c for c in POOL if _in_class(c, av)] or [chr(v) for o, v in av if o is sre_c.LITERAL] or ["x"]
            out.append(fits[0] if rnd is None else rnd.choice(fits))
        elif op is sre_c.BRANCH:
            alternatives = av[1]
            out.append(_generate(alternatives[0] if rnd is None else rnd.choice(alternatives), rnd, groups, repeated))
        elif op is sre_c.SUBPATTERN:
            group, _, _, sub = av
            text = _generate(sub, rnd, groups, repeated)
            if group:
                groups[group] = text
            out.append(text)
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            if hi == 1:
                count = lo if rnd is None else rnd.randint(lo, 1)
            else:
                base = max(lo, 1)
                count = base if rnd is None else rnd.randint(base, min(base + 3, hi))
            out.extend(_generate(sub, rnd, groups, hi > 1 or repeated) for _ in range(count))
        elif op is sre_c.GROUPREF:
            out.append(groups.get(av, ""))
        elif op is sre_c.CATEGORY:
            out.append({sre_c.CATEGORY_DIGIT: "7", sre_c.CATEGORY_WORD: "w"}.get(av, "-"))
        elif op is getattr(sre_c, "ATOMIC_GROUP", None):
            out.append(_generate(av, rnd, groups, repeated))
        # AT (anchors), ASSERT, ASSERT_NOT: nothing to emit
    return "".join(out)


def regex_instances(regex: str, rnd: random.Random) -> list[str]:
    """A deterministic handful of strings the regex matches (a crude text when Python cannot parse it)."""
    try:
        parsed = sre_parse.parse(regex)
        found = [_generate(parsed, None, {}), _generate(parsed, rnd, {})]
    except (re.error, RecursionError, TypeError, ValueError, OverflowError):
        found = [re.sub(r"[\^$\\()?*+\[\]|{}]", "", regex)]
    return list(dict.fromkeys(found))


def as_target(path: str) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return quote(path, safe=PATH_SAFE)


def paths_for(source: Source, rnd: random.Random) -> list[str]:
    segment = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(5))
    if source.kind == "literal":
        bases = [source.value]
    elif source.kind == "prefix":
        stem = source.value
        bases = [stem, stem.rstrip("/") + "/" + segment, stem + segment]
    else:
        bases = regex_instances(source.value, rnd)
        if source.case_insensitive:
            bases.append(bases[0].upper())
    out: list[str] = []
    for n, base in enumerate(bases):
        target = as_target(base)
        out.append(target)
        if target != "/" and (source.kind != "prefix" or n == 0):  # a prefix's slash: on the prefix itself
            out.append(target[:-1] if target.endswith("/") else target + "/")
    return out


def build_probes(sources: list[Source], hosts: list[str], seed: int) -> tuple[list[Probe], str | None]:
    """Every variant of every source on its host (GET and POST, with and without the query), the
    GET variants on the other hosts too, and a few random paths on every host; at most
    MAX_REGEX_SOURCES regexes (a seeded sample: the module's time budget), every literal and prefix."""
    rnd = random.Random(seed)
    primary = hosts[0]
    regexes = [i for i, s in enumerate(sources) if s.kind == "regex"]
    note = None
    if len(regexes) > MAX_REGEX_SOURCES:
        dropped = set(regexes) - set(rnd.sample(regexes, MAX_REGEX_SOURCES))
        note = f"requests for a seeded sample of {MAX_REGEX_SOURCES} of the {len(regexes)} regex sources"
        sources = [s for i, s in enumerate(sources) if i not in dropped]
    targets: dict[tuple[str, str], None] = {}
    for source in sources:
        for path in paths_for(source, rnd):
            targets[(source.host or primary, path)] = None
    for _ in range(4):
        word = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6))
        for host in hosts:
            for path in ("/", f"/{word}", f"/{word}/{word}.html", f"/{word}/"):
                targets[(host, path)] = None
    probes: list[Probe] = []
    for host, path in targets:
        for query in ("", "?" + QUERY):
            for method in METHODS:
                probes.append(Probe(method, host, path + query))
        for other in hosts:
            if other != host:
                probes.append(Probe("GET", other, path))
    return list(dict.fromkeys(probes)), note


# -- answers and their comparison ---------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    status: int
    location: str | None

    def __str__(self) -> str:
        return f"{self.status} {self.location}" if self.location is not None else str(self.status)


def fetch_all(port: int, probes: list[Probe], workers: int = 4) -> list[Answer]:
    """Every probe against 127.0.0.1:port, on `workers` keep-alive clients."""
    chunks = [list(range(i, len(probes), workers)) for i in range(workers)]
    answers: list[Answer | None] = [None] * len(probes)

    def run(indexes: list[int]) -> None:
        with httpx.Client(follow_redirects=False, timeout=20) as client:
            for i in indexes:
                probe = probes[i]
                body = b"x=1" if probe.method == "POST" else None
                try:
                    response = client.request(probe.method, f"http://127.0.0.1:{port}{probe.target}",
                                              headers={"Host": probe.host}, content=body)
                    answers[i] = Answer(response.status_code, response.headers.get("location"))
                except httpx.HTTPError as exc:
                    answers[i] = Answer(0, f"<{type(exc).__name__}>")

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, chunks))
    return [a if a is not None else Answer(0, None) for a in answers]


def normalise(answer: Answer, host: str, ports: set[int], target: str = "/") -> Answer:
    """A Location on the request's own host, over http, becomes its absolute path; a relative one
    (nginx sends `rewrite ... index.html permanent` as written) the path a client resolves it to
    against the request's `target` (RFC 9110 10.2.2, RFC 3986 5.2)."""
    if answer.status not in REDIRECTS:
        return Answer(answer.status, None)
    location = answer.location
    if location and not location.startswith("/") and not urlsplit(location).scheme:
        location = urljoin(target, location)
    if location:
        parts = urlsplit(location)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme == "http" and (parts.hostname or "").lower() == host.lower() and port in (None, 80, *ports):
            location = urlunsplit(("", "", parts.path or "/", parts.query, parts.fragment))
        elif parts.netloc:  # scheme and host are case-insensitive (RFC 3986 6.2.2.1): compared lower-cased
            location = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query,
                                   parts.fragment))
    if location:  # percent-escapes compare without case (RFC 3986 6.2.2.1); `{` and `}` as a client sends them
        location = re.sub(r"%[0-9a-fA-F]{2}", lambda m: m.group(0).upper(), location)
        location = location.replace("{", "%7B").replace("}", "%7D")
    return Answer(answer.status, location)


def query_after_fragment(location: str | None) -> str | None:
    """`/p?q#f` written as Apache's mod_alias writes it when its URL has a fragment: `/p#f?q`."""
    if location is None or "#" not in location or "?" not in location.split("#", 1)[0]:
        return location
    before, fragment = location.split("#", 1)
    path, query = before.split("?", 1)
    return f"{path}#{fragment}?{query}"


def without_docroot(answer: Answer, docroot: str | None) -> Answer:
    """Apache's `Location: /DOCROOT/p` (a relative substitution in an .htaccess without RewriteBase)
    as the path `/p` the import sends (intentional, docs/migrating.md Apache)."""
    if docroot and answer.location and answer.location.startswith(docroot + "/"):
        return Answer(answer.status, answer.location[len(docroot):])
    return answer


def agree(original: Answer, ours: Answer) -> bool:
    if original.status not in REDIRECTS and ours.status not in REDIRECTS:
        return True
    same_status = original.status == ours.status or (original.status == 302 and ours.status == 307)
    # intentional (docs/migrating.md): Apache appends the request's query after a fragment of the
    # target, where a client reads it as part of the fragment; redirectory puts it before the fragment
    # intentional (docs/migrating.md): a placeholder's value never adds a second `/` after one
    # (`https://new/$request_uri` sends nginx's `https://new//path`, redirectory `https://new/path`)
    return same_status and (original.location in (ours.location, query_after_fragment(ours.location))
                            or single_slashes(original.location) == ours.location)


def single_slashes(location: str | None) -> str | None:
    """`location` with each run of `/` in its path made one."""
    if location is None:
        return None
    parts = urlsplit(location)
    return urlunsplit(parts._replace(path=re.sub(r"/{2,}", "/", parts.path)))


# -- the real servers ---------------------------------------------------------------------------------
def wait_port(proc: subprocess.Popen[bytes], port: int, what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                text = log.read_text(errors="replace") if log.exists() else ""
                raise RuntimeError(f"{what} did not start (exit {proc.poll()}): {text[-2000:]}") from None
            time.sleep(0.02)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Wired:
    """The original, ready to run: the command, its check command, the hosts to ask, its sources."""

    command: list[str]
    check: list[str]
    log: Path
    hosts: list[str]
    sources: list[Source]
    notes: list[str]
    #: what `rules import` reads instead of the corpus file (nginx: the file in the repository layout,
    #: or the same wiring nginx serves), and its extra arguments (--include-root)
    import_path: Path | None = None
    import_args: list[str] = field(default_factory=list)
    #: Apache, an .htaccess without RewriteBase: the DocumentRoot's filesystem path it puts before a
    #: relative substitution's Location (the import sends the path under `/`: docs/migrating.md)
    docroot: str | None = None


@contextlib.contextmanager
def running(wired: Wired, port: int, what: str) -> Iterator[None]:
    checked = subprocess.run(wired.check, capture_output=True, text=True, timeout=60, check=False)
    if checked.returncode != 0:
        raise Unloadable(f"{what} refuses the wired configuration: {(checked.stderr or checked.stdout).strip()[-600:]}")
    with wired.log.open("ab") as log:
        proc = subprocess.Popen(wired.command, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(proc, port, what, wired.log)
        yield
    finally:
        stop(proc)


# -- nginx wiring -------------------------------------------------------------------------------------
NGINX_MAIN = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server_names_hash_bucket_size 128;
    map_hash_bucket_size 256;
{body}
}}
"""
HTTP_ONLY = {"map", "upstream", "log_format", "proxy_cache_path", "limit_req_zone", "limit_conn_zone", "geo",
             "split_clients", "fastcgi_cache_path", "proxy_cache_key"}
SERVER_LEVEL = {"location", "rewrite", "return", "if", "set", "root", "error_page", "try_files"}


class NginxTree:
    """The repository's corpus files at their repository paths (`/etc/nginx/` = the repository root),
    copied and stubbed for a loopback run."""

    def __init__(self, corpus: Path, name: str, tmp: Path, port: int) -> None:
        self.corpus, self.tmp, self.port = corpus, tmp, port
        self.root = tmp / "etc-nginx"
        self.notes: list[str] = []
        self.file_notes: dict[Path, list[str]] = {}
        self.file_upstreams: dict[Path, set[str]] = {}
        self.upstreams: set[str] = set()
        self.defined_upstreams: set[str] = set()
        origin = provenance(corpus)
        repo, _ = origin.get(name, ("", Path(name).name))
        self.members: dict[str, Path] = {}  # corpus name -> its copy
        for other in corpus_files(corpus, ("nginx",)):
            other_repo, path = origin.get(other, ("", Path(other).name))
            if other == name or (repo and other_repo == repo):
                self.members[other] = self.root / path
        self.original = {copy: corpus / other for other, copy in self.members.items()}
        for copy, source in self.original.items():
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_text(source.read_text(errors="replace"))
        for copy in self.original:
            copy.write_text(self.sanitise(copy.read_text(), copy))

    def resolve(self, target: str) -> Path | None:
        rel = target[len("/etc/nginx/"):] if target.startswith("/etc/nginx/") else target.lstrip("/")
        candidate = self.root / rel
        return candidate if candidate in self.original else None

    def stub(self, target: str, why: str, copy: Path) -> Path:
        stub = self.tmp / "stubs" / re.sub(r"[^\w.-]", "_", target)
        stub.parent.mkdir(parents=True, exist_ok=True)
        stub.write_text(f"# stub for {target}: {why}\n")
        self.file_note(copy, f"include {target}: {why}, stubbed empty")
        return stub

    def file_note(self, copy: Path, note: str) -> None:
        notes = self.file_notes.setdefault(copy, [])
        if note not in notes:
            notes.append(note)

    def serve(self, copies: list[Path]) -> None:
        """Take the notes and upstreams of the files nginx will load."""
        for copy in copies:
            for note in self.file_notes.get(copy, []):
                self.note_once(note)
            self.upstreams |= self.file_upstreams.get(copy, set())

    def sanitise(self, text: str, copy: Path) -> str:
        where = copy.relative_to(self.root)
        text, dropped = drop_plain_beside_tls(text)
        if dropped:
            self.file_note(copy, f"{where}: no TLS here, one port: the plain-http server of {', '.join(dropped)} "
                                 "removed, its https server served (as the import keeps it)")

        def include(m: re.Match[str]) -> str:
            target = m.group(2).strip("\"'")
            found = self.resolve(target)
            if found is None:
                found = self.stub(target, "not in the corpus" if not any(c in target for c in "*?[") else "a glob", copy)
            return f"{m.group(1)}include {found};"

        text = re.sub(r"(^|[\s;{}])include\s+([^;\s]+)\s*;", include, text)
        if re.search(r"(?m)^\s*listen\s", text):
            self.file_note(copy, f"{where}: listen directives replaced by listen 127.0.0.1:<port>")
        text = re.sub(r"(?m)^(\s*)listen\s[^;]*;", r"\1", text)
        # a `server {` directive, not a word ending in `server` (`location = /code-server {`)
        text = re.sub(r"(?<![^\s;{}])server\s*\{", f"server {{ listen 127.0.0.1:{self.port};", text)
        if re.search(r"(?m)^\s*ssl_\w+\s", text):
            self.file_note(copy, f"{where}: ssl_* directives removed")
        text = re.sub(r"(?m)^(\s*)ssl_\w+\s[^;]*;", r"\1", text)
        text = re.sub(r"(?m)^(\s*)access_log\s[^;]*;", r"\1access_log off;", text)
        text = re.sub(r"(?m)^(\s*)error_log\s[^;]*;", r"\1", text)
        # caches, temp and log paths of the real machine: removed (nothing here is cached or logged)
        if re.search(r"(?m)^\s*(?:proxy|fastcgi)_cache(?:_path)?\s", text):
            self.file_note(copy, f"{where}: proxy/fastcgi cache directives removed")
        text = re.sub(r"(?m)^(\s*)(?:proxy|fastcgi)_cache(?:_\w+)?\s[^;]*;", r"\1", text)
        text = re.sub(r"(?m)^(\s*)proxy_cache_path\s+(\S+)",
                      lambda m: f"{m.group(1)}proxy_cache_path {self.tmp}/cache/{Path(m.group(2)).name}", text)
        for m in re.finditer(r"(?m)^\s*upstream\s+(\S+)\s*\{", strip_comments(text)):
            self.defined_upstreams.add(m.group(1))
        for m in re.finditer(r"proxy_pass\s+https?://([A-Za-z0-9.-]+)(?=[/;\s])", strip_comments(text)):
            host = m.group(1)
            if not re.fullmatch(r"[0-9.]+|localhost", host):
                self.file_upstreams.setdefault(copy, set()).add(host)
        return text

    def note_once(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def parsed(self, copy: Path) -> list[Directive]:
        return nginx_parse(self.original[copy].read_text(errors="replace"))

    def included(self, copy: Path, seen: set[Path] | None = None) -> list[Path]:
        """The copy and every corpus file it includes, recursively."""
        seen = seen if seen is not None else set()
        if copy in seen:
            return []
        seen.add(copy)
        out = [copy]
        for d in walk(self.parsed(copy)):
            if d.name == "include" and d.args:
                found = self.resolve(d.args[0])
                if found is not None:
                    out += self.included(found, seen)
        return out

    def upstream_stubs(self) -> str:
        names = sorted(self.upstreams - self.defined_upstreams)
        if names:
            self.note_once(f"proxy_pass upstreams {', '.join(names)} stubbed as a closed loopback port")
        return "\n".join(f"    upstream {n} {{ server 127.0.0.1:9; }}" for n in names)


def _is_tls(server: Directive) -> bool:
    return any(d.name == "listen" and ("ssl" in d.args or (d.args and re.search(r"(?:^|:)443$", d.args[0]) is not None))
               for d in server.block or [])


def drop_plain_beside_tls(text: str) -> tuple[str, list[str]]:
    """`text` without the plain-http `server`s whose one name also has an https server (nginx on
    one port, without TLS, would answer that name with whichever comes first): the import keeps
    the https one, so the harness serves it."""
    servers = [d for d in walk(nginx_parse(text)) if d.name == "server" and d.block is not None]
    names = [[a.lower() for d in s.block or [] if d.name == "server_name" for a in d.args] for s in servers]
    tls_names = {name for s, n in zip(servers, names, strict=True) if _is_tls(s) for name in n}
    # (the import skips a plain-http server for each name an https server answers: dropped when all are)
    drop = {i for i, (s, n) in enumerate(zip(servers, names, strict=True))
            if n and all(name in tls_names for name in n) and not _is_tls(s)}
    if not drop:
        return text, []
    blank = re.sub(r"(?m)(^|\s)(#.*)$", lambda m: m.group(1) + " " * len(m.group(2)), text)
    spans = []
    for k, m in enumerate(re.finditer(r"(?<![^\s;{}])server\s*\{", blank)):
        depth, i = 0, m.end() - 1
        while i < len(blank):
            depth += {"{": 1, "}": -1}.get(blank[i], 0)
            if depth == 0:
                break
            i += 1
        if k in drop:
            spans.append((m.start(), i + 1))
    for start, end in reversed(spans):
        text = text[:start] + "\n" * text.count("\n", start, end) + text[end:]
    return text, sorted({name for i in drop for name in names[i]})


def nginx_kind(directives: list[Directive], path: Path) -> str:
    names = {d.name for d in directives}
    if "server" in names:
        return "http"
    if directives and (path.suffix == ".map" or all(d.name.startswith(("/", "~")) or d.name == "default" for d in directives)):
        return "map-body"
    if names & SERVER_LEVEL:
        return "server"
    if names and names <= HTTP_ONLY | {"include"}:
        return "http"
    return "server"


def map_variables(directives: list[Directive]) -> set[str]:
    return {d.args[1].lstrip("$") for d in walk(directives) if d.name == "map" and len(d.args) >= 2}


def used_variables(directives: list[Directive]) -> set[str]:
    used: set[str] = set()
    for d in walk(directives):
        if d.name in ("return", "rewrite", "if", "set", "proxy_pass"):
            used.update(re.findall(r"\$\{?(\w+)", " ".join(d.args)))
    return used


def nginx_server_names(server: Directive) -> list[str]:
    names: list[str] = []
    for d in server.block or []:
        if d.name == "server_name":
            for name in d.args:
                if name in ("_", "") or name.startswith("~"):
                    continue
                names.append(name.lstrip(".").replace("*.", "www.").replace(".*", ".com"))
    return names


def nginx_sources(tree: NginxTree, copies: list[Path]) -> tuple[list[Source], list[str]]:
    sources: list[Source] = []
    hosts: list[str] = []

    def visit(directives: list[Directive], host: str | None, map_body: bool, seen: set[Path]) -> None:
        for d in directives:
            if map_body and d.name not in ("default", "hostnames", "volatile", "include"):
                key = d.name
                if key.startswith("~*"):
                    sources.append(Source("regex", key[2:], host, True))
                elif key.startswith("~"):
                    sources.append(Source("regex", key[1:], host))
                elif key.startswith("/"):
                    sources.append(Source("literal", key, host))
                continue
            if d.name == "server" and d.block is not None:
                names = nginx_server_names(d)
                hosts.extend(names)
                visit(d.block, names[0] if names else host, False, seen)
                continue
            if d.name == "location" and d.args:
                mod, value = (d.args[0], d.args[1]) if len(d.args) > 1 else ("", d.args[0])
                if mod == "=":
                    sources.append(Source("literal", value, host))
                elif mod in ("~", "~*"):
                    sources.append(Source("regex", value, host, mod == "~*"))
                elif not value.startswith("@"):
                    sources.append(Source("prefix", value, host))
            elif d.name == "rewrite" and d.args:
                sources.append(Source("regex", d.args[0], host))
            elif d.name == "return" and any("$request_uri" in a or "$uri" in a for a in d.args):
                sources.append(Source("prefix", "/", host))
            elif d.name == "include" and d.args:
                found = tree.resolve(d.args[0])
                if found is not None and found not in seen:
                    seen.add(found)
                    parsed = tree.parsed(found)
                    visit(parsed, host, nginx_kind(parsed, found) == "map-body", seen)
                continue
            if d.block is not None:
                visit(d.block, host, d.name == "map", seen)

    for copy in copies:
        parsed = tree.parsed(copy)
        visit(parsed, None, nginx_kind(parsed, copy) == "map-body", {copy})
    return list(dict.fromkeys(sources)), list(dict.fromkeys(hosts))


def wire_nginx(corpus: Path, name: str, tmp: Path, port: int) -> Wired:
    binary = server_binary("nginx")
    if binary is None:
        raise Unloadable("nginx is not installed")
    tree = NginxTree(corpus, name, tmp, port)
    copy = tree.members[name]
    directives = tree.parsed(copy)
    kind = nginx_kind(directives, copy)
    http: list[str] = []
    server: list[str] = []
    served = [copy]
    own = [tree.parsed(c) for c in tree.included(copy)]
    defined = set().union(*(map_variables(p) for p in own))
    used = set().union(*(used_variables(p) for p in own))
    others = [c for c in tree.original if c != copy and "server" not in {d.name for d in tree.parsed(c)}]

    if kind == "map-body":
        # as the repository wires it: the `map` block that includes this file, and the `if` that uses it
        # (the map and its user may be in a site file, one with `server {}`s)
        block = variable = None
        for other in [c for c in tree.original if c != copy]:
            for d in walk(tree.parsed(other)):
                if d.name == "map" and len(d.args) == 2 and any(
                        e.name == "include" and e.args and tree.resolve(e.args[0]) == copy for e in d.block or []):
                    rest = " ".join(render(e) for e in d.block or [] if e.name in ("default", "hostnames"))
                    block, variable = f"map {d.args[0]} {d.args[1]} {{ include {copy}; {rest} }}", d.args[1]
                    tree.note_once(f"wired as {other.relative_to(tree.root)} does: {block.replace(str(copy), copy.name)}")
        if block is None or variable is None:
            raise Unloadable("a bare map body and no corpus file of its repository includes it in a map")
        # its user: an `if ($var)` or a `location` whose `return` sends the variable
        users = [d for other in tree.original if other != copy for d in walk(tree.parsed(other))
                 if d.name in ("if", "location") and d.args and (d.name == "location" or variable in " ".join(d.args))
                 and any(e.name == "return" and variable in " ".join(e.args) for e in d.block or [])]
        if not users:
            raise Unloadable(f"no corpus file of its repository uses {variable} in a return")
        http.append(block)
        server.append(render(users[0]))
        tree.note_once(f"and the server uses it as the repository does: {render(users[0])}")
    else:
        for var in sorted(used - defined):
            for other in others:
                if var in map_variables(tree.parsed(other)) and other not in served:
                    http.append(f"include {other};")
                    served.append(other)
                    tree.note_once(f"${var} is defined by {other.relative_to(tree.root)}: included at http level")
        for var in sorted(defined - used):
            for other in others:
                if other not in served and var in used_variables(tree.parsed(other)):
                    server.append(f"include {other};")
                    served.append(other)
                    tree.note_once(f"${var} is used by {other.relative_to(tree.root)}: included in the server")
        if kind == "http":
            http.append(f"include {copy};")
        else:
            server.append(f"include {copy};")
            tree.note_once("a server-level fragment: wrapped in server { }")
    if kind != "http" or server:
        http.append(f"server {{ listen 127.0.0.1:{port} default_server; server_name {DEFAULT_HOST}; "
                    + " ".join(server) + " }")
    if kind == "http" and "server" not in {d.name for d in directives} and not server:
        http.append(f"server {{ listen 127.0.0.1:{port} default_server; server_name {DEFAULT_HOST}; }}")
    loaded = list(dict.fromkeys(c for s in served for c in tree.included(s)))
    tree.serve(loaded)
    body = "\n".join([tree.upstream_stubs(), *("    " + h for h in http)])
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(tmp=tmp, body=body))
    log = tmp / "nginx.log"
    base = [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log")]
    sources, hosts = nginx_sources(tree, served)
    import_path, import_args = nginx_import_tree(tree, tmp.parent / "import-tree", copy, kind, served, http)
    return Wired(base, [*base, "-t", "-q"], log, hosts or [DEFAULT_HOST], sources, tree.notes, import_path, import_args)


def nginx_import_tree(tree: NginxTree, root: Path, copy: Path, kind: str, served: list[Path],
                      http: list[str]) -> tuple[Path, list[str]]:
    """The repository's corpus files as written, at their repository paths under `root`, and what to
    import: the file itself when nginx serves it alone, else the wiring nginx serves (the companion
    files and the `server {}`) with its includes relative to `root`; imported with --include-root."""
    for wired_copy, original in tree.original.items():
        target = root / wired_copy.relative_to(tree.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, target)
    if kind == "http" and served == [copy]:
        entry = root / copy.relative_to(tree.root)
    else:
        entry = root / ".differential-import.conf"
        entry.write_text("\n".join(http).replace(f"{tree.root}/", "") + "\n")
        tree.note_once("imported as nginx serves it (the same includes and server, in the repository layout)")
    return entry, ["--include-root", str(root)]


# -- Apache wiring ------------------------------------------------------------------------------------
APACHE_MAIN = """\
ServerRoot "{root}"
Listen 127.0.0.1:{port}
PidFile {tmp}/httpd.pid
ErrorLog {tmp}/error.log
LogLevel warn
DefaultRuntimeDir {tmp}
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule alias_module {modules}/mod_alias.so
LoadModule rewrite_module {modules}/mod_rewrite.so
# AddType/AddHandler, Options +Includes and IndexOptions of real .htaccess files (apache/kafka-site,
# apache/maven-site): without these modules Apache answers 500 to every request under the file
LoadModule mime_module {modules}/mod_mime.so
LoadModule include_module {modules}/mod_include.so
LoadModule autoindex_module {modules}/mod_autoindex.so
TypesConfig /dev/null
ServerName {host}
DocumentRoot "{docroot}"
<Directory "{docroot}">
    AllowOverride All
    Require all granted
</Directory>
{body}
"""
# and the directives of modules not loaded here (mod_jk's JkMount of immetoo/cfservers2, mod_proxy,
# mod_wsgi, Passenger): Apache refuses to start on them; they hand paths to a backend, never redirect
APACHE_DROP = re.compile(r"(?im)^\s*(Listen|ErrorLog|CustomLog|TransferLog|LoadModule|PidFile|User|Group|SSL\w*"
                         r"|Jk\w+|Proxy\w+|WSGI\w+|Passenger\w+)\b.*$")


def apache_lines(text: str) -> list[tuple[int, list[str]]]:
    out: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            words = shlex.split(stripped, posix=True)
        except ValueError:
            words = stripped.split()
        if words:
            out.append((number, words))
    return out


Follow = Callable[[str], tuple[list["Source"], list[str]]]
APACHE_STATUS = {"permanent", "temp", "seeother", "gone"}


def apache_sources(text: str, include: Follow | None = None) -> tuple[list[Source], list[str]]:
    sources: list[Source] = []
    hosts: list[str] = []
    host: str | None = None
    named: list[str] = []  # hosts of `RewriteCond %{HTTP_HOST} ^host$` (the RewriteRule after it answers them)
    for _, words in apache_lines(text):
        name = words[0].lower()
        args = words[1:]
        literal = re.fullmatch(r"\^((?:[A-Za-z0-9.-]|\\\.)+)\$?|=([A-Za-z0-9.-]+)", args[1]) if len(args) > 1 else None
        if name == "rewritecond" and args[0].upper() in ("%{HTTP_HOST}", "%{SERVER_NAME}") and literal:
            named.append((literal.group(1) or literal.group(2)).replace("\\.", ".").lower())
        elif name.startswith("<virtualhost"):
            host = None
        elif name == "servername" and args:
            host = args[0].split(":")[0]
            hosts.append(host)
        elif name == "serveralias":  # its literal names answer the same rules (immetoo/cfservers2)
            hosts += [a.split(":")[0] for a in args if not set(a) & set("*?")]
        elif name == "</virtualhost>":
            host = None
        elif name in ("redirect", "redirectpermanent", "redirecttemp", "redirectmatch") and args:
            if args[0].lower() in APACHE_STATUS or args[0].isdigit():
                args = args[1:]
            if not args:
                continue
            if name == "redirectmatch":
                sources.append(Source("regex", args[0], host))
            else:
                sources.append(Source("prefix", args[0], host))
        elif name == "rewriterule" and args:
            pattern = args[0].lstrip("!")
            nocase = len(args) > 2 and re.search(r"\b(NC|nocase)\b", args[2]) is not None
            sources.append(Source("regex", pattern, named[-1] if named else host, nocase))
            hosts += [*([] if hosts or not named else [host or DEFAULT_HOST]), *named]
            named = []
        elif name in ("include", "includeoptional") and args and include is not None:
            more_sources, more_hosts = include(args[0])
            sources += more_sources
            hosts += more_hosts
    return list(dict.fromkeys(sources)), list(dict.fromkeys(hosts))


def wire_apache(corpus: Path, name: str, tmp: Path, port: int) -> Wired:
    binary = server_binary("apache")
    if binary is None:
        raise Unloadable("apache2 is not installed (apt-get install -y apache2)")
    if not (APACHE_MODULES / "mod_rewrite.so").exists():
        raise Unloadable(f"no Apache modules in {APACHE_MODULES}")
    origin = provenance(corpus)
    repo, repo_path = origin.get(name, ("", Path(name).name))
    tree = tmp / "tree"
    members: dict[str, Path] = {}
    for other in corpus_files(corpus, ("apache",)):
        other_repo, path = origin.get(other, ("", Path(other).name))
        if other == name or (repo and other_repo == repo):
            members[other] = tree / path
    copy = members[name]
    notes: list[str] = []
    texts = {other: (corpus / other).read_text(errors="replace") for other in members}
    includes = [w[1].strip("\"'") for t in texts.values() for _, w in apache_lines(t)
                if w[0].lower() in ("include", "includeoptional") and len(w) > 1 and not w[1].startswith("/")]
    # ServerRoot: the directory (the file's own or a parent) where most of the repository's relative
    # Includes find their corpus file (REDIRECTS/sigs.conf is included from the directory above it)
    roots = [copy.parent, *[p for p in copy.parent.parents if p.is_relative_to(tree)]]
    server_root = max(roots, key=lambda r: (sum((r / i) in members.values() for i in includes), -roots.index(r)))
    if server_root != copy.parent:
        notes.append(f"ServerRoot is {server_root.relative_to(tree)}/ of the repository, where its Includes resolve")

    def sanitise(text: str, where: Path) -> str:
        def include(m: re.Match[str]) -> str:
            target = m.group(3).strip("\"'")
            found = (server_root / target) if not target.startswith("/") else Path(target)
            if found not in members.values():
                stub = tmp / "stubs" / re.sub(r"[^\w.-]", "_", target)
                stub.parent.mkdir(parents=True, exist_ok=True)
                stub.write_text(f"# stub for {target}\n")
                notes.append(f"Include {target}: not in the corpus, stubbed empty")
                found = stub
            return f"{m.group(1)}{m.group(2)} {found}"

        text = re.sub(r"(?im)^(\s*)(Include|IncludeOptional)\s+(\S+)", include, text)
        if APACHE_DROP.search(text):
            notes.append(f"{where.name}: Listen/log/LoadModule/User/SSL (and JkMount/Proxy*/WSGI*/Passenger*) directives removed")
        text = APACHE_DROP.sub("", text)
        return re.sub(r"(?i)<VirtualHost\s+[^>]*>", f"<VirtualHost 127.0.0.1:{port}>", text)

    by_path = {path: other for other, path in members.items()}
    pending, loaded = [copy], set()
    while pending:  # the file and what it includes: the files Apache will read
        path = pending.pop()
        if path in loaded:
            continue
        loaded.add(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sanitise(texts[by_path[path]], path))
        for _, words in apache_lines(texts[by_path[path]]):
            if words[0].lower() in ("include", "includeoptional") and len(words) > 1 and (server_root / words[1]) in by_path:
                pending.append(server_root / words[1])

    docroot = tmp / "docroot"
    docroot.mkdir()
    text = texts[name]
    maps: list[str] = []
    if copy.name.startswith(".htaccess") or copy.name.endswith(".htaccess"):
        shutil.copy(copy, docroot / ".htaccess")
        body = ""
        notes.append("an .htaccess file: served as DocumentRoot/.htaccess with AllowOverride All")
    else:
        defined = {words[1].lower() for _, words in apache_lines(text) if words[0].lower() == "rewritemap" and len(words) > 1}
        for used in sorted({u.lower() for u in re.findall(r"\$\{(\w+):", text)} - defined):
            for other, other_text in texts.items():
                found = [w for _, w in apache_lines(other_text) if w[0].lower() == "rewritemap" and len(w) > 2 and w[1].lower() == used]
                if found and other != name:
                    maps.append(" ".join(found[0]))
                    notes.append(f"RewriteMap {used} comes from {Path(origin.get(other, ('', other))[1]).name}: added to the VirtualHost")
                    break
        if re.search(r"(?im)^\s*<VirtualHost", text):
            body = f"Include {copy}"
        else:
            body = (f"<VirtualHost 127.0.0.1:{port}>\n    ServerName {DEFAULT_HOST}\n    DocumentRoot \"{docroot}\"\n"
                    f"    RewriteEngine On\n" + "".join(f"    {m}\n" for m in maps) + f"    Include {copy}\n</VirtualHost>")
            notes.append("server-config directives: wrapped in <VirtualHost> with RewriteEngine On")
    conf = tmp / "httpd.conf"
    conf.write_text(APACHE_MAIN.format(root=server_root, port=port, tmp=tmp, modules=APACHE_MODULES,
                                       host=DEFAULT_HOST, docroot=docroot, body=body))
    # Apache's children drop root for an unprivileged user: they must be able to read the tree
    for path in [tmp, *tmp.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)

    seen: set[Path] = {copy}

    def follow(target: str) -> tuple[list[Source], list[str]]:
        found = server_root / target
        if found in seen or found not in members.values():
            return [], []
        seen.add(found)
        other = next(o for o, p in members.items() if p == found)
        return apache_sources(texts[other], follow)

    sources, hosts = apache_sources(text, follow)
    base = [binary, "-d", str(server_root), "-f", str(conf)]
    # the import reads the repository's files as written, at their repository paths, with the
    # ServerRoot Apache is given as --include-root (its Includes resolve there as in Apache)
    import_tree = tmp.parent / "import-tree"
    for other, path in members.items():
        target = import_tree / path.relative_to(tree)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(texts[other])
    imported = import_tree / copy.relative_to(tree)
    if maps:  # the import gets the same context: those RewriteMap lines (Apache reads them before any request)
        imported.write_text(text + ("" if text.endswith("\n") else "\n") + "".join(f"{m}\n" for m in maps))
        notes.append("the import reads the file with those RewriteMap lines appended")
    import_args = ["--include-root", str(import_tree / server_root.relative_to(tree))]
    htaccess = body == "" and not re.search(r"(?im)^\s*RewriteBase\b", text)
    return Wired([*base, "-DFOREGROUND"], [*base, "-t"], tmp / "apache.log", hosts or [DEFAULT_HOST], sources,
                 list(dict.fromkeys(notes)), imported, import_args, str(docroot) if htaccess else None)


# -- one file -----------------------------------------------------------------------------------------
def import_file(path: Path, fmt: str, database: str, extra: list[str] | None = None) -> tuple[bool, str, int, int]:
    """(accepted, the importer's message, rules imported, warnings)."""
    done = cli("rules", "import", str(path), "--format", fmt, "--database", database, *(extra or []))
    output = (done.stdout + "\n" + done.stderr).strip()
    warnings = sum(1 for line in output.splitlines() if ": warning: " in line)
    imported = re.search(r"imported (\d+) rule", output)
    if done.returncode != 0:
        errors = [line for line in output.splitlines() if ": warning: " not in line and line.strip()]
        message = "; ".join(e.replace(str(path), path.name) for e in errors[-6:])
        return False, message, 0, warnings
    return True, "", int(imported.group(1)) if imported else 0, warnings


def run_file(corpus: Path, name: str, fmt: str | None = None, keep: bool = False) -> FileReport:
    """The differential run of one corpus file (`nginx/NAME` or `apache/NAME`)."""
    fmt = fmt or name.split("/", 1)[0]
    report = FileReport(name, fmt)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="redirectory-differential-"))
    tmp.chmod(0o755)  # Apache's children (an unprivileged user when run as root) read the tree
    try:
        port = free_port()
        (tmp / "orig").mkdir()
        try:
            wired = (wire_nginx if fmt == "nginx" else wire_apache)(corpus, name, tmp / "orig", port)
        except Unloadable as exc:
            report.status, report.reason = "skipped", str(exc)
            return report
        report.wiring = wired.notes
        seed = zlib.crc32(name.encode())
        probes, note = build_probes(wired.sources, wired.hosts, seed)
        if note:
            report.wiring.append(note)
        report.requests = len(probes)
        database = f"sqlite:///{tmp}/imported.db"
        accepted, message, report.rules_imported, report.import_warnings = import_file(
            wired.import_path or corpus / name, fmt, database, wired.import_args)
        if not accepted:
            report.status, report.reason = "import-refused", message
            report.difference_count = len(probes)
            return report
        try:
            with running(wired, port, fmt):
                original = fetch_all(port, probes)
        except Unloadable as exc:
            report.status, report.reason = "skipped", str(exc)
            return report
        gateway = start_serve(tmp, database=database)
        try:
            ours = fetch_all(gateway.port, probes)
        finally:
            gateway.stop()
        ports = {port, gateway.port}
        for probe, theirs, mine in zip(probes, original, ours, strict=True):
            theirs = without_docroot(normalise(theirs, probe.host, ports, probe.target), wired.docroot)
            mine = normalise(mine, probe.host, ports, probe.target)
            if agree(theirs, mine):
                report.agreed += 1
            else:
                report.difference_count += 1
                if len(report.differences) < MAX_DIFFERENCES:
                    report.differences.append({"request": str(probe), "original": str(theirs), "redirectory": str(mine)})
        return report
    finally:
        report.seconds = round(time.monotonic() - started, 2)
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def run_files(items: list[tuple[Path, str, str | None]], jobs: int | None = None,
              keep: bool = False) -> list[FileReport]:
    """run_file for each (corpus, name, format), `jobs` at a time (default: the CPUs, 2 to 4); in order."""
    jobs = jobs or max(2, min(4, os.cpu_count() or 2))
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda item: run_file(*item, keep=keep), items))


# -- the command --------------------------------------------------------------------------------------
def table(reports: list[FileReport]) -> str:
    rows = [("file", "status", "requests", "agree", "rules", "seconds")]
    for r in reports:
        rows.append((r.file, r.status, str(r.requests), f"{r.agreement:.1f}%", str(r.rules_imported), f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
                     for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="corpus files (nginx/NAME, apache/NAME or paths); default: all")
    parser.add_argument("--format", choices=FORMATS, help="only this format (and the format of FILEs outside the corpus)")
    parser.add_argument("--json", type=Path, help="write the reports as JSON to this path")
    parser.add_argument("--differences", type=int, default=5, help="differences to print per file (default 5)")
    parser.add_argument("--jobs", type=int, help="files run at once (default: the CPUs, 2 to 4)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories (to look at the wiring)")
    options = parser.parse_args(argv)
    if not BIN.exists():
        parser.error(f"{BIN} not found: run this with the venv's python (.venv/bin/python tests/differential.py)")
    roots = corpus_roots()
    if not roots:
        parser.error("no corpus: neither ../shared/corpus next to the repository nor $REDIRECTORY_CORPUS nor tests/data/real")
    names: list[tuple[Path, str, str | None]] = []
    for given in options.files:
        path = Path(given)
        found = None if path.is_absolute() else next((r for r in roots if (r / given).is_file()), None)
        if found is not None:
            names.append((found, given, options.format))
        elif path.is_file():
            resolved = path.resolve()
            inside = next((r.resolve() for r in roots if resolved.is_relative_to(r.resolve())), None)
            root = inside or resolved.parent.parent
            names.append((root, str(resolved.relative_to(root)), options.format))
        else:
            parser.error(f"{given}: no such corpus file")
    if not options.files:
        formats = (options.format,) if options.format else FORMATS
        names = [(root, n, None) for root in roots for n in corpus_files(root, formats)]
    reports = run_files(names, options.jobs, keep=options.keep)
    for report in reports:
        print(report.summary(options.differences))
    print()
    print(table(reports))
    if options.json:
        options.json.write_text(json.dumps({"reports": [r.to_json() for r in reports]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
