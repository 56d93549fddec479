"""The one exchange model every check reads, whatever the input (live probe, HAR or OpenAPI).

An `Exchange` is one request and its response, linked to the hop before (`previous`) and the
hop after (`next`, the follow-up request to the resolved Location), and, for conditional
requests, to the unconditional 200 it revalidates (`paired`). Live runs add `probes`: the
conditional re-requests made against a 2xx (or a 3xx) to test 304 behaviour. OpenAPI becomes
synthetic exchanges whose response lists the *declared* header fields and carries the
documented operation in `doc`. Pure data, no I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal
from urllib.parse import urljoin, urlsplit, urlunsplit

Source = Literal["live", "har", "openapi"]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        return {"error": 3, "warning": 2, "info": 1}[self.value]


def _get(headers: list[tuple[str, str]], name: str) -> list[str]:
    lname = name.lower()
    return [v for k, v in headers if k.lower() == lname]


@dataclass(slots=True)
class Request:
    method: str
    url: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # None: unknown (OpenAPI) or not recorded

    def header(self, name: str) -> str | None:
        values = _get(self.headers, name)
        return ", ".join(values) if values else None

    def has(self, name: str) -> bool:
        return bool(_get(self.headers, name))

    @property
    def body_hash(self) -> str | None:
        return None if self.body is None else hashlib.sha256(self.body).hexdigest()


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # bytes on the wire after transfer decoding; None: unknown
    body_size: int | None = None  # when only the size is known (HAR)
    trailers: list[tuple[str, str]] = field(default_factory=list)
    declares_content: bool = False  # OpenAPI: `content` documented
    required_headers: frozenset[str] = frozenset()  # OpenAPI: header names marked `required: true`

    def header(self, name: str) -> str | None:
        values = _get(self.headers, name)
        return ", ".join(values) if values else None

    def header_lines(self, name: str) -> list[str]:
        return _get(self.headers, name)

    def has(self, name: str) -> bool:
        return bool(_get(self.headers, name))

    @property
    def content_size(self) -> int | None:
        if self.body is not None:
            return len(self.body)
        return self.body_size


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is: a URL (live, HAR entry) and/or a file, line and JSON pointer."""

    uri: str | None = None
    file: str | None = None
    line: int | None = None
    pointer: str | None = None
    method: str | None = None
    #: the file as named relative to the checked document's directory (its own name for the
    #: document itself): what fingerprints use, so they do not change with the working directory
    name: str | None = None

    def __str__(self) -> str:
        if self.file:
            where = f"{self.file}:{self.line}" if self.line else self.file
            return f"{where} ({self.pointer})" if self.pointer else where
        return f"{self.method} {self.uri}" if self.method else str(self.uri)


@dataclass(slots=True)
class HeaderDoc:
    name: str
    required: bool = False
    format: str | None = None
    example: str | None = None


@dataclass(slots=True)
class ResponseDoc:
    key: str  # "301", "3XX", "default"
    pointer: str
    line: int | None
    headers: dict[str, HeaderDoc] = field(default_factory=dict)  # lower-case names
    content: bool = False
    description: str = ""
    links: int = 0


@dataclass(slots=True)
class OperationDoc:
    """The documented operation an OpenAPI exchange comes from."""

    path: str
    method: str
    pointer: str
    line: int | None
    responses: dict[str, ResponseDoc] = field(default_factory=dict)
    parameters: set[str] = field(default_factory=set)  # lower-case header parameter names
    servers: list[str] = field(default_factory=list)
    #: the whole spec's operations, path -> set of upper-case methods (for target lookups)
    spec_paths: dict[str, set[str]] = field(default_factory=dict)
    deprecated: bool = False  # `deprecated: true`
    deprecated_at: Location | None = None  # where `deprecated` is written


@dataclass(slots=True)
class Exchange:
    request: Request
    response: Response | None  # None: the request failed (see `error`)
    source: Source
    location: Location
    error: str | None = None  # DNS, TLS, timeout... (live)
    previous: Exchange | None = None
    next: Exchange | None = None
    paired: Exchange | None = None  # for a conditional request: the unconditional 2xx
    probe: str | None = None  # live: which conditional re-request this is
    probes: dict[str, Exchange] = field(default_factory=dict)
    options: Exchange | None = None  # live: OPTIONS on a 307/308 target
    doc: OperationDoc | None = None
    response_doc: ResponseDoc | None = None
    ignore: frozenset[str] = frozenset()  # check ids suppressed here (x-redirectory-ignore)
    httplint_notes: list[str] = field(default_factory=list)
    httplint_bad: list[str] = field(default_factory=list)  # BAD notes no id of ours covers (HTTPLINT-BAD)
    cache_control: dict[str, int | str | None] = field(default_factory=dict)  # parsed by httplint
    problems: list[str] = field(default_factory=list)  # OpenAPI: unresolvable $refs met here
    #: live: the probes of this response's `Link: <...>; rel="successor-version"` targets (HEAD,
    #: else GET), each the head of its own hops; not checked themselves (not walked)
    successors: list[Exchange] = field(default_factory=list)
    started: datetime | None = None  # HAR: startedDateTime (the clock when there is no Date)

    @property
    def status(self) -> int | None:
        return None if self.response is None else self.response.status

    @property
    def location_header(self) -> str | None:
        return None if self.response is None else self.response.header("location")

    def resolved_location(self) -> str | None:
        """Location resolved against the request URI (RFC 9110 §10.2.2), or None."""
        lines = self.response.header_lines("location") if self.response is not None else []
        if len(lines) != 1 or not lines[0].strip():
            return None  # none, or several (RDR-LOC-MULTIPLE): nowhere to go
        value = lines[0]
        try:
            return urljoin(self.request.url, value.strip())
        except ValueError:
            return None

    def chain(self) -> Iterator[Exchange]:
        """This exchange and every hop after it (stops on a cycle of objects)."""
        seen: set[int] = set()
        ex: Exchange | None = self
        while ex is not None and id(ex) not in seen:
            seen.add(id(ex))
            yield ex
            ex = ex.next


def without_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", parts.query, ""))


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower(), 0)
    except ValueError:  # a port out of range: an origin of its own (the request will fail and say so)
        port = -1
    return parts.scheme.lower(), f"{(parts.hostname or '').lower()}:{port}"


@dataclass(frozen=True, slots=True)
class Finding:
    id: str
    severity: Severity
    message: str
    fix: str
    location: Location
    source: str  # guide / RFC section
    doc: str  # link to docs/checks.md
    evidence: dict[str, object] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Stable across runs, line shifts and working directories: id, method, URL or file (as
        named relative to the checked document) + JSON pointer."""
        loc = self.location
        key = "|".join([self.id, loc.method or "", loc.uri or "", loc.name or loc.file or "", loc.pointer or ""])
        return hashlib.sha256(key.encode()).hexdigest()[:24]

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "id": self.id,
            "severity": self.severity.value,
            "message": self.message,
            "fix": self.fix,
            "location": {k: v for k, v in (("uri", loc.uri), ("method", loc.method), ("file", loc.file),
                                           ("line", loc.line), ("pointer", loc.pointer)) if v is not None},
            "source": self.source,
            "doc": self.doc,
            "fingerprint": self.fingerprint,
            "evidence": self.evidence,
        }
