"""OpenAPI document problems met while building exchanges (an id of ours beyond §6)."""

from __future__ import annotations

from collections.abc import Iterator

from redirectory.check.model import Exchange
from redirectory.check.profiles import Profile
from redirectory.check.registry import E, Hit, W, check


@check("OAS-REF-UNRESOLVED", "$ref that cannot be resolved", E, inputs="O", source="OpenAPI 3.0/3.1 ($ref)")
def ref_unresolved(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    for problem in ex.problems:
        yield Hit(problem, "point $ref at an existing local component (`#/components/...`)")


@check("HTTPLINT-BAD", "httplint finds a protocol error", W, inputs="PH",
       source="RFC 9110/9111/9112 as httplint applies them (https://github.com/mnot/httplint)")
def httplint_bad(ex: Exchange, profile: Profile) -> Iterator[Hit]:
    for note in ex.httplint_bad:
        yield Hit(f"httplint: {note}", "fix the header field httplint names (see its note)")
