"""The Rule base class: one small class per rule; its metadata and examples live in ``rules/CODE-*.toml``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import libcst as cst

from nanlint.findings import Applicability, Confidence, Fix, Severity

if TYPE_CHECKING:
    from nanlint.analysis.context import FileContext
    from nanlint.analysis.domain import Value
    from nanlint.analysis.opcall import OpCall
    from nanlint.catalog import RuleDoc
    from nanlint.resolver import Target


class Rule:
    """Subclasses set ``code`` and define ``visit_<NodeType>`` / ``leave_<NodeType>`` methods.

    The engine walks each file once and calls every enabled rule's methods for each node; a rule asks the
    analysis what a value is (``self.value(expr)``) and what op a node applies (``self.op(node)``) instead of
    re-deriving it. A ``contextual`` rule is also run over a function's body once per call site in the file
    that passes it something known.
    """

    code: ClassVar[str] = ""
    doc: ClassVar["RuleDoc"]
    #: option name -> default value; ``[tool.nanlint.rules.CODE]`` may override these (same types)
    default_options: ClassVar[dict[str, Any]] = {}
    #: Text that must occur in a file's source for this rule to possibly fire (any one of them, plain
    #: substrings, case-sensitive). ``None`` (the default) means the rule may fire on any file. Files where no
    #: enabled rule's triggers occur are not parsed by libcst at all, so be generous.
    triggers: ClassVar[tuple[str, ...] | None] = None
    contextual: ClassVar[bool] = False

    def __init__(self, ctx: "FileContext", options: dict[str, Any] | None = None) -> None:
        self.ctx = ctx
        self.options = {**self.default_options, **(options or {})}

    # ---- questions ----
    def value(self, expr: cst.BaseExpression) -> "Value":
        return self.ctx.value(expr)

    def op(self, node: cst.CSTNode) -> "OpCall | None":
        return self.ctx.op(node)

    def target(self, call: cst.Call) -> "Target":
        return self.ctx.target(call)

    def text(self, node: cst.CSTNode) -> str:
        return self.ctx.text(node)

    # ---- reporting ----
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
