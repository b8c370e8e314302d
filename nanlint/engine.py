"""Analysis of one file: a pure function of its source text and the effective configuration.

Parse with libcst, walk the tree once, keep scopes and bindings for the facts, call every enabled rule's
visitors, then drop suppressed findings. Positions are computed only when something is reported.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import libcst as cst
from libcst.metadata import CodeRange, MetadataWrapper, PositionProvider

from nanlint.facts import Binding, Fact, Facts, Scope
from nanlint.findings import Applicability, Confidence, Edit, Finding, Fix, InternalError, Severity, Span
from nanlint.resolver import ImportResolver, Target
from nanlint.rules import all_rules
from nanlint.rules.base import Rule
from nanlint import suppression


@dataclass
class FileResult:
    filename: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)


class FileContext:
    """What rules see of the file being checked: facts, call targets, positions and the report sink."""

    def __init__(self, source: str, filename: str, module: cst.Module, options: "AnalysisOptions"):
        self.source = source
        self.filename = filename
        self.module = module
        self.options = options
        self.resolver = ImportResolver()
        self.facts = Facts(self.resolver)
        self.module_scope = Scope("module", None, module)
        self.scope = self.module_scope
        self.statement_stack: list[cst.CSTNode] = []
        self.function_stack: list[cst.FunctionDef] = []
        self.class_stack: list[cst.ClassDef] = []
        self.findings: list[tuple[Finding, cst.CSTNode | None]] = []
        self._positions: Any = None
        self.uses_half_precision = options.target_precision in ("float16", "bfloat16") or _mentions_half(source)

    # ---- questions rules ask ----
    def fact(self, expr: cst.BaseExpression) -> Fact:
        return self.facts.of(expr, self.scope)

    def target(self, call: cst.Call) -> Target:
        return self.facts.target(call, self.scope)

    @property
    def current_function(self) -> cst.FunctionDef | None:
        return self.function_stack[-1] if self.function_stack else None

    def position(self, node: cst.CSTNode) -> CodeRange:
        if self._positions is None:
            self._positions = MetadataWrapper(self.module, unsafe_skip_copy=True).resolve(PositionProvider)
        return self._positions[node]

    def span(self, node: cst.CSTNode) -> Span:
        pos = self.position(node)
        return Span(pos.start.line, pos.start.column + 1, pos.end.line, pos.end.column + 1)

    def line_of(self, node: cst.CSTNode) -> int:
        return self.position(node).start.line

    def code_for(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # ---- reporting ----
    def report(
        self,
        rule: Rule,
        node: cst.CSTNode,
        message: str,
        *,
        fix: Fix | None,
        confidence: Confidence,
        severity: Severity | None,
        hint: str | None,
    ) -> None:
        doc = rule.doc
        statement = self.statement_stack[-1] if self.statement_stack else None
        finding = Finding(
            code=rule.code,
            name=doc.name,
            message=message,
            filename=self.filename,
            span=self.span(node),
            severity=severity or Severity(doc.severity),
            confidence=confidence,
            fix=fix,
            hint=hint,
        )
        self.findings.append((finding, statement))

    def replacement_fix(self, node: cst.CSTNode, replacement: cst.CSTNode | str, message: str, applicability: Applicability) -> Fix:
        text = replacement if isinstance(replacement, str) else self.module.code_for_node(replacement)
        return Fix(message=message, edits=(Edit(self.span(node), text),), applicability=applicability)


def _mentions_half(source: str) -> bool:
    return any(token in source for token in ("float16", "bfloat16", ".half()", "autocast", "GradScaler", "fp16", "amp."))


@dataclass(frozen=True)
class AnalysisOptions:
    """The part of the configuration that the analysis of one file depends on."""

    codes: frozenset[str]
    rule_options: dict = field(default_factory=dict, hash=False, compare=False)
    target_precision: str | None = None


class _Walker(cst.CSTVisitor):
    """One traversal for all rules: keeps scopes and bindings, then dispatches to rule methods."""

    def __init__(self, ctx: FileContext, rules: list[Rule], errors: list[InternalError]):
        super().__init__()
        self.ctx = ctx
        self.errors = errors
        self.visitors: dict[str, list[tuple[Rule, Callable]]] = {}
        self.leavers: dict[str, list[tuple[Rule, Callable]]] = {}
        for rule in rules:
            for attr in dir(type(rule)):
                if attr.startswith("visit_"):
                    self.visitors.setdefault(attr[6:], []).append((rule, getattr(rule, attr)))
                elif attr.startswith("leave_"):
                    self.leavers.setdefault(attr[6:], []).append((rule, getattr(rule, attr)))
        self.broken: set[str] = set()

    def _dispatch(self, table: dict, node: cst.CSTNode) -> None:
        handlers = table.get(type(node).__name__)
        if not handlers:
            return
        for rule, method in handlers:
            if rule.code in self.broken:
                continue
            try:
                method(node)
            except Exception as exc:  # a bug in one rule must not hide the other findings
                self.broken.add(rule.code)
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                self.errors.append(
                    InternalError(self.ctx.filename, rule.code, f"{type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})")
                )

    def on_visit(self, node: cst.CSTNode) -> bool:
        ctx = self.ctx
        kind = type(node).__name__
        if kind in _STATEMENTS:
            ctx.statement_stack.append(node)
        if kind == "FunctionDef":
            self._enter_function(node)
        elif kind == "ClassDef":
            ctx.class_stack.append(node)
            scope = Scope("class", ctx.scope, node)
            scope.self_attrs = {}
            ctx.scope = scope
        elif kind in ("Import", "ImportFrom"):
            ctx.resolver.add(node)
        self._dispatch(self.visitors, node)
        return True

    def on_leave(self, original_node: cst.CSTNode) -> None:
        ctx = self.ctx
        kind = type(original_node).__name__
        self._dispatch(self.leavers, original_node)
        if kind in _BINDERS:
            self._bind(original_node)
        if kind == "FunctionDef":
            ctx.function_stack.pop()
            ctx.scope = ctx.scope.parent or ctx.module_scope
        elif kind == "ClassDef":
            ctx.class_stack.pop()
            ctx.scope = ctx.scope.parent or ctx.module_scope
        if kind in _STATEMENTS:
            ctx.statement_stack.pop()

    # ---- bindings ----
    def _enter_function(self, node: cst.FunctionDef) -> None:
        ctx = self.ctx
        ctx.function_stack.append(node)
        scope = Scope("function", ctx.scope, node)
        ctx.facts.counter += 1
        params = node.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            scope.bind(param.name.value, Binding(ctx.facts.counter, None, scope))
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                scope.bind(star.name.value, Binding(ctx.facts.counter, None, scope))
        ctx.scope = scope

    def _bind(self, node: cst.CSTNode) -> None:
        ctx = self.ctx
        facts = ctx.facts
        facts.counter += 1
        index = facts.counter
        if isinstance(node, cst.Assign):
            for target in node.targets:
                self._bind_target(target.target, node.value, index)
        elif isinstance(node, cst.AnnAssign):
            self._bind_target(node.target, node.value, index)
        elif isinstance(node, cst.AugAssign):
            value = cst.BinaryOperation(left=node.target, operator=_AUG_TO_BIN.get(type(node.operator), cst.Add)(), right=node.value)
            self._bind_target(node.target, value, index)
        elif isinstance(node, cst.For):
            self._bind_target(node.target, None, index)
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            self._bind_target(node.asname.name, None, index)
        elif isinstance(node, cst.NamedExpr):
            self._bind_target(node.target, node.value, index)

    def _bind_target(self, target: cst.BaseExpression, value: cst.BaseExpression | None, index: int) -> None:
        ctx = self.ctx
        if isinstance(target, cst.Name):
            ctx.scope.bind(target.value, Binding(index, value, ctx.scope))
        elif isinstance(target, (cst.Tuple, cst.List)):
            values = value.elements if isinstance(value, (cst.Tuple, cst.List)) else None
            for i, element in enumerate(target.elements):
                element_value = None
                if values is not None and len(values) == len(target.elements) and not isinstance(element, cst.StarredElement):
                    element_value = values[i].value
                self._bind_target(element.value, element_value, index)
        elif isinstance(target, cst.Attribute) and isinstance(target.value, cst.Name) and target.value.value == "self":
            scope = ctx.scope
            while scope is not None and scope.kind != "class":
                scope = scope.parent
            if scope is not None and scope.self_attrs is not None:
                scope.self_attrs.setdefault(target.attr.value, []).append(Binding(index, value, ctx.scope))


_STATEMENTS = frozenset({
    "SimpleStatementLine", "If", "For", "While", "With", "Try", "FunctionDef", "ClassDef", "Match", "TryStar",
})
_BINDERS = frozenset({"Assign", "AnnAssign", "AugAssign", "For", "WithItem", "NamedExpr"})
_AUG_TO_BIN = {
    cst.AddAssign: cst.Add, cst.SubtractAssign: cst.Subtract, cst.MultiplyAssign: cst.Multiply,
    cst.DivideAssign: cst.Divide, cst.PowerAssign: cst.Power, cst.FloorDivideAssign: cst.FloorDivide,
}


def _syntax_error_finding(filename: str, exc: cst.ParserSyntaxError) -> Finding:
    message = exc.message.strip().splitlines()[0] if exc.message else "invalid syntax"
    line, column = max(exc.raw_line, 1), exc.raw_column + 1
    return Finding(
        code="NAN000",
        name="syntax-error",
        message=f"SyntaxError: {message}",
        filename=filename,
        span=Span(line, column, line, column),
        severity=Severity.ERROR,
    )


def analyze(source: str, filename: str, options: AnalysisOptions) -> FileResult:
    """Check one file's source. Never raises for any input: parse failures become NAN000 findings and
    exceptions inside rules become :class:`InternalError` entries."""
    result = FileResult(filename)
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        if "NAN000" in options.codes:
            result.findings.append(_syntax_error_finding(filename, exc))
        return result
    except (RecursionError, MemoryError, ValueError) as exc:
        result.findings.append(
            Finding("NAN000", "syntax-error", f"could not parse: {type(exc).__name__}", filename, Span(1, 1, 1, 1), Severity.ERROR)
        )
        return result
    ctx = FileContext(source, filename, module, options)
    rule_classes = all_rules()
    rules = [cls(ctx, options.rule_options.get(code)) for code, cls in rule_classes.items() if code in options.codes]
    if rules:
        walker = _Walker(ctx, rules, result.errors)
        try:
            module.visit(walker)
        except RecursionError:
            result.errors.append(InternalError(filename, "engine", "RecursionError: the file nests too deeply to analyze"))
    findings = suppression.apply(source, ctx, ctx.findings, options.codes)
    result.findings.extend(sorted(findings, key=Finding.sort_key))
    return result


def iter_codes(findings: Iterable[Finding]) -> set[str]:
    return {f.code for f in findings}
