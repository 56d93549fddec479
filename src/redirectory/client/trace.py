"""The record of how a request travelled: every hop, where it came from, and why it was followed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import httpx

from redirectory.semantics import TABLE

__all__ = ["Hop", "Trace"]

HopKind = Literal["network", "memory", "forgotten", "stopped"]


@dataclass(frozen=True, slots=True)
class Hop:
    """One step. `kind`: "network" (a 3xx the server sent), "memory" (a remembered permanent move,
    no request sent), "forgotten" (a remembered target answered 404/410: the move was forgotten and
    the original URL asked again), "stopped" (a redirect that was not followed, and why)."""

    kind: HopKind
    method: str
    url: str
    status: int | None
    next_method: str | None
    next_url: str | None
    why: str
    notes: tuple[str, ...] = ()
    warning: str | None = None


@dataclass
class Trace:
    """Every hop of one `send()`, the redirect responses received (oldest first) and the outcome."""

    method: str
    url: str
    hops: list[Hop] = field(default_factory=list)
    responses: list[httpx.Response] = field(default_factory=list)
    final_status: int | None = None
    final_method: str | None = None
    final_url: str | None = None

    @property
    def remembered_hops(self) -> int:
        return sum(1 for hop in self.hops if hop.kind == "memory")

    def explain(self) -> str:
        lines = [f"{self.method} {self.url}"]
        for number, hop in enumerate(self.hops, start=1):
            status = "" if hop.status is None else f"{hop.status} {_reason(hop.status)}"
            if hop.kind == "memory":
                head = f"{status} (remembered, no request sent)"
            elif hop.kind == "forgotten":
                head = f"{status} from {hop.method} {hop.url}: remembered target is gone"
            elif hop.kind == "stopped":
                head = f"{status} from {hop.method} {hop.url}: not followed"
            else:
                head = f"{status} from {hop.method} {hop.url}"
            if hop.next_url is not None:
                head += f" -> {hop.next_method} {hop.next_url}"
            lines.append(f"  {number}. {head}")
            lines.append(f"     why: {hop.why}")
            lines.extend(f"     {note}" for note in hop.notes)
            if hop.warning:
                lines.append(f"     warning: {hop.warning}")
        if self.final_status is not None:
            final = f"{self.final_status} {_reason(self.final_status)}".rstrip()
            lines.append(f"  => {final} ({self.final_method} {self.final_url})")
        return "\n".join(lines)


def _reason(status: int) -> str:
    entry = TABLE.get(status)
    if entry is not None:
        return entry.reason
    return httpx.codes.get_reason_phrase(status)


def until(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
