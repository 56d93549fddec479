"""Every check, registered by importing its module (ids from docs/checks.md)."""

from redirectory.check.checks import codes, conditional, lifecycle, location, spec
from redirectory.check.registry import CHECKS

__all__ = ["CHECKS", "codes", "conditional", "lifecycle", "location", "spec"]
