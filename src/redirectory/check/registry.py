"""The check registry: each check is a pure function over one exchange, registered with its id,
its severity under each profile, the inputs it runs on, its source (guide / RFC) and doc link."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from redirectory.check.model import Exchange, Location, Severity, Source
from redirectory.check.profiles import Profile

#: Where each check is documented (in the repository; the anchor is the lower-case id).
DOCS = "docs/checks.md"


@dataclass(frozen=True, slots=True)
class Hit:
    """What a check reports; the runner turns it into a Finding (severity, location, doc)."""

    message: str
    fix: str
    severity: Severity | None = None  # overrides the profile's level for this hit
    evidence: dict[str, object] | None = None
    location: Location | None = None  # overrides the exchange's (an OpenAPI operation's own line)


CheckFn = Callable[[Exchange, Profile], Iterable[Hit]]


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    house: Severity
    rfc: Severity | None  # None: a house rule, off under the `rfc` profile
    inputs: frozenset[Source]
    source: str
    fn: CheckFn

    def severity(self, profile: Profile) -> Severity | None:
        return self.house if profile.house else self.rfc

    @property
    def doc(self) -> str:
        return f"{DOCS}#{self.id.lower()}"


CHECKS: dict[str, Check] = {}


def check(id: str, title: str, house: Severity, *, rfc: Severity | None = None, house_only: bool = False,
          inputs: str = "PHO", source: str) -> Callable[[CheckFn], CheckFn]:
    """Register a check; `inputs` is a subset of P (live probe), H (HAR), O (OpenAPI); `rfc`
    defaults to `house`; `house_only` turns the check off under the `rfc` profile."""
    names: dict[str, Source] = {"P": "live", "H": "har", "O": "openapi"}

    def register(fn: CheckFn) -> CheckFn:
        if id in CHECKS:
            raise ValueError(f"duplicate check id {id}")
        level = None if house_only else (rfc or house)
        CHECKS[id] = Check(id, title, house, level, frozenset(names[c] for c in inputs), source, fn)
        return fn

    return register


E, W, I = Severity.ERROR, Severity.WARNING, Severity.INFO  # noqa: E741
