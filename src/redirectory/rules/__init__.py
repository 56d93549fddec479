"""The pure rule engine: model, parsing, validation, compiled matcher and decisions (no I/O)."""

from redirectory.rules.model import Problem, Rule, RuleError, RuleSet

__all__ = ["Problem", "Rule", "RuleError", "RuleSet"]
