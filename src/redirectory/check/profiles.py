"""Profiles: `house` (the REST design guide, the default) and `rfc` (RFC 9110/9111 levels only),
plus the switches the guide leaves open (308 policy, relative Location, chain length)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ProfileName = Literal["house", "rfc"]
Policy308 = Literal["allow", "info", "warning", "error"]

PROFILES: tuple[str, ...] = ("house", "rfc")
POLICIES_308: tuple[str, ...] = ("allow", "info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Profile:
    name: ProfileName = "house"
    policy_308: Policy308 = "info"  # allow: no finding at all
    absolute_location: bool = False  # True: a relative Location is an error
    max_hops: int = 5  # a longer chain is a warning (RFC 9110 §15.4: older specs said 5)
    allowed_origins: frozenset[str] = field(default_factory=frozenset)  # "https://host[:port]"
    long_cache_seconds: int = 86400  # S307-UNEXPECTED-CACHE threshold
    #: "now" for DEP-SUNSET-PASSED when a response has no Date (None: the clock when checking)
    now: datetime | None = None

    @property
    def house(self) -> bool:
        return self.name == "house"
