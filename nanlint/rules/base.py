"""The Rule base class: one small class per rule; its metadata and examples live in ``rules/CODE-*.toml``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from nanlint.findings import Applicability, Confidence, Fix, Severity

if TYPE_CHECKING:
    from nanlint.catalog import RuleDoc
    from nanlint.engine import FileContext
    from nanlint.facts import Fact
    from nanlint.resolver import Target


class Rule:
    """Subclasses set ``code`` and define ``visit_<NodeType>`` / ``leave_<NodeType>`` methods.

    The engine walks each file once and calls every enabled rule's methods for each node; rules ask the
    shared :class:`~nanlint.facts.Facts` what a value is instead of re-deriving it.
    """

    code: ClassVar[str] = ""
    doc: ClassVar["RuleDoc"]
    #: option name -> default value; ``[tool.nanlint.rules.CODE]`` may override these (same types)
    default_options: ClassVar[dict[str, Any]] = {}
    #: Text that must occur in a file's source for this rule to possibly fire (any one of them, plain
    #: substrings, case-sensitive), e.g. ``("log",)`` for a rule about ``log``/``log2``/``log10``.
    #: ``None`` (the default) means the rule may fire on any file. Files where no enabled rule's triggers
    #: occur are not parsed by libcst at all, so be generous: list the op names as they appear in source
    #: (method names, function names, module aliases do not matter: ``"log"`` matches ``F.log``, ``x.log()``).
    triggers: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, ctx: "FileContext", options: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.options = {**self.default_options, **(options or {})}

    # ---- helpers for subclasses ----
    def fact(self, expr: cst.BaseExpression) -> "Fact":
        return self.ctx.fact(expr)

    def target(self, call: cst.Call) -> "Target":
        return self.ctx.target(call)

    def report(
        self,
        node: cst.CSTNode,
        message: str,
        *,
        fix: Fix | None = None,
        confidence: Confidence = Confidence.HIGH,
        severity: Severity | None = None,
        hint: str | None = None,
    ) -> None:
        self.ctx.report(self, node, message, fix=fix, confidence=confidence, severity=severity, hint=hint)

    def replace(
        self,
        node: cst.CSTNode,
        replacement: cst.CSTNode | str,
        message: str,
        applicability: Applicability = Applicability.SAFE,
    ) -> Fix:
        """A fix that replaces ``node``'s source with ``replacement`` (a node or source text)."""
        return self.ctx.replacement_fix(node, replacement, message, applicability)


def may_fire(rule_class: type[Rule], source: str) -> bool:
    """Whether ``rule_class`` can possibly report anything on ``source``, judged by its ``triggers``."""
    triggers = rule_class.triggers
    if triggers is None:
        return True
    return any(token in source for token in triggers)
