"""What rules see of the file being checked: values, ops, positions, the code around the site, and the
report sink. One per file; the walk keeps its stacks and its current frame up to date."""
from __future__ import annotations

from typing import Any

import libcst as cst
from libcst.metadata import CodeRange

from nanlint.analysis import domain as d
from nanlint.analysis import fixtext
from nanlint.analysis.bindings import ModuleNames
from nanlint.analysis.domain import Tier, Value
from nanlint.analysis.evaluate import Evaluator, Frame
from nanlint.analysis.gradient import no_grad_here
from nanlint.analysis.locate import Locator
from nanlint.analysis.opcall import OpCall
from nanlint.findings import Applicability, Confidence, Edit, Finding, Fix, Severity, Span
from nanlint.options import AnalysisOptions
from nanlint.positions import positions
from nanlint.resolver import ImportResolver, Target


class FileContext:
    def __init__(self, source: str, filename: str, module: cst.Module, options: AnalysisOptions):
        self.source = source
        self.filename = filename
        self.module = module
        self.options = options
        self.resolver = ImportResolver()
        self.ev = Evaluator(module, self.resolver, module.code_for_node)
        self.statement_stack: list[cst.CSTNode] = []
        self.function_stack: list[cst.FunctionDef] = []
        self.class_stack: list[cst.ClassDef] = []
        self.findings: list[tuple[Finding, cst.CSTNode | None]] = []
        self._frame: Frame = self.ev.frame_of(module)
        self._reported: set[tuple] = set()
        self._last_fact: dict | None = None  # the evidence the last message was built from (ctx.why)
        self._positions: Any = None
        self._locate = Locator(module, source, self._positions_map)
        self._names = ModuleNames(module, source, self._locate)
        #: the weakest evidence the selected rules report (``degenerate`` with ``strict = true``)
        self.tier = Tier.DEGENERATE if getattr(options, "strict", False) else Tier.PLAUSIBLE

    @property
    def frame(self) -> Frame:
        return self._frame

    @frame.setter
    def frame(self, frame: Frame) -> None:
        self._frame = frame
        self.ev.base_frame = frame

    # ---- questions rules ask ----
    def value(self, expr: cst.BaseExpression) -> Value:
        return self.ev.value(expr, self.frame)

    def masked_out(self, expr: cst.BaseExpression, condition: cst.CSTNode | None = None) -> Value:
        return self.ev.masked_out(expr, self.frame, condition)

    def op(self, node: cst.CSTNode) -> OpCall | None:
        return self.ev.opcall(node, self.frame)

    def target(self, call: cst.Call) -> Target:
        return self.ev.target(call)

    def text(self, node: cst.CSTNode) -> str:
        return self.ev.text(node)

    @property
    def current_function(self) -> cst.FunctionDef | None:
        return self.function_stack[-1] if self.function_stack else None

    @property
    def in_call_context(self) -> bool:
        return self.frame.call is not None and self.frame.bindings is not None and self.frame.key[:1] == ("site",)

    def gradient_possible(self) -> bool:
        """Whether a gradient can flow through the code here (not under ``no_grad``, in a backward pass, in
        a data-processing class, or in a file with no autograd framework)."""
        return self.resolver.imports_autograd and not no_grad_here(self)

    def grad_flows(self, value: Value) -> bool:
        return value.grad is not False and self.gradient_possible()

    def grad_reaches(self, value: Value, evidence) -> bool:
        """A gradient flows into ``value`` and is not dropped at the edge ``evidence`` names (relu's select)."""
        return self.grad_flows(value) and not (evidence is not None and evidence.selects)

    def reaches(self, evidence) -> bool:
        return evidence is not None and evidence.tier >= self.tier

    # ---- positions ----
    def position(self, node: cst.CSTNode) -> CodeRange:
        return self._positions_map()[node]

    def _positions_map(self) -> Any:
        if self._positions is None:
            self._positions = positions(self.module, self.source)
        return self._positions

    def span(self, node: cst.CSTNode) -> Span:
        pos = self.position(node)
        return Span(pos.start.line, pos.start.column + 1, pos.end.line, pos.end.column + 1)

    def line_of(self, node: cst.CSTNode) -> int | None:
        try:
            return self.position(node).start.line
        except KeyError:
            return None

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # ---- reporting ----
    def report(self, rule, node: cst.CSTNode, message: str, *, fix: Fix | None, confidence: Confidence,
               severity: Severity | None, hint: str | None) -> None:
        key = (rule.code, id(node))
        if key in self._reported:
            return
        self._reported.add(key)
        if self.in_call_context:
            line = self.line_of(self.frame.call)
            if line is not None:
                message = f"{message} (with the arguments passed at line {line})"
            fix = None
        statement = self.statement_stack[-1] if self.statement_stack else None
        doc = rule.doc
        extra = {"fact": self._last_fact} if self._last_fact is not None else {}
        self._last_fact = None
        finding = Finding(code=rule.code, name=doc.name, message=message, filename=self.filename, span=self.span(node),
                          severity=severity or Severity(doc.severity), confidence=confidence, fix=fix, hint=hint,
                          extra=extra)
        self.findings.append((finding, statement))

    def replacement_fix(self, node: cst.CSTNode, replacement: cst.CSTNode | str, message: str,
                        applicability: Applicability) -> Fix | None:
        """A fix that replaces ``node``'s source with ``replacement``; None (no fix) when the replacement is not
        an expression that parses, or when it would delete a comment written inside ``node``."""
        text = replacement if isinstance(replacement, str) else self.fix_text(replacement, at=node)
        if not fixtext.keeps_comments(node, text, self._locate.source_of(node)):
            return None
        return Fix(message=message, edits=(Edit(self.span(node), text),), applicability=applicability)

    def fix_text(self, node: cst.CSTNode, at: cst.CSTNode | None = None) -> str:
        """``node``'s code as it reads where ``at`` (default: ``node`` itself) stands in the file (indented as
        the block around it)."""
        return fixtext.fix_text(self.module, node, self._locate.path_to(at if at is not None else node))

    # ---- names a fix may write (see :mod:`nanlint.analysis.bindings`) ----
    def spelling(self, qualname: str, at: cst.CSTNode) -> str | None:
        """How the code at ``at`` names the module ``qualname`` through an unshadowed module-level import
        (``F`` for ``torch.nn.functional``); None: no fix may be offered."""
        return self._names.spelling(qualname, at)

    def refers_to_module(self, expr: cst.BaseExpression, qualname: str, at: cst.CSTNode | None = None) -> bool:
        """Whether the dotted name ``expr``, written at ``at`` (default: itself), names ``qualname`` or
        something in it through a module-level import that nothing shadows there."""
        return self._names.refers_to_module(expr, qualname, at if at is not None else expr)

    def bound_to_module(self, name: str, at: cst.CSTNode) -> bool:
        """``name`` is bound at module level only by unconditional imports of one module, and no scope around
        ``at`` binds it."""
        return self._names.bound_to_module(name, at)

    # ---- messages ----
    def describe(self, expr: cst.BaseExpression, value: Value, fallback: str = "a value") -> str:
        """"`p`, a `softmax` output (line 12)" for messages."""
        text = _short(self.text(expr))
        what = value.desc
        if what is None:
            return f"`{text}`, {fallback}"
        if value.node is expr or (what.startswith("`") and what.endswith("`") and what.strip("`") == text):
            return what
        line = self.line_of(value.node) if value.node is not None else None
        here = self.line_of(expr)
        if line is not None and line != here:
            return f"`{text}`, {what} (line {line})"
        if what.startswith("`" + text + "`") or text in what:
            return what
        return f"`{text}`, {what}"

    def why(self, evidence) -> str:
        """The evidence's sentence, with the line it came from when that is not the reported line."""
        line = self.line_of(evidence.node) if evidence.node is not None else None
        self._last_fact = {"kind": evidence.kind, "tier": evidence.tier.name.lower(), "line": line}
        return f"{evidence.why} (line {line})" if line is not None else evidence.why


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def confidence_of(evidence, value: Value | None = None) -> Confidence:
    if evidence is None:
        return Confidence.MEDIUM
    if evidence.kind.startswith("name") or evidence.tier < Tier.PLAUSIBLE:
        return Confidence.MEDIUM
    if value is not None and value.role == d.PROBABILITY and evidence.kind in ("underflow", "saturate"):
        return Confidence.HIGH
    return Confidence.HIGH
