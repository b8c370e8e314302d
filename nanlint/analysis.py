"""Analysis of one file: a pure function of its source text and the effective configuration.

Parse with libcst, walk the tree once, keep scopes and bindings for the facts, call every enabled rule's
visitors, then drop suppressed findings. Positions are computed only when something is reported.
:mod:`nanlint.engine` is the import-light face of this module (a fully cached run never loads libcst).
"""
from __future__ import annotations

import functools
import threading
import traceback
import warnings
from typing import Any, Callable

import libcst as cst
from libcst.metadata import CodeRange

from nanlint.facts import Binding, Fact, Facts, Scope
from nanlint.engine import AnalysisOptions, FileResult
from nanlint.positions import positions
from nanlint.findings import Applicability, Confidence, Edit, Finding, Fix, InternalError, Severity, Span
from nanlint.resolver import ImportResolver, Target
from nanlint.rules import all_rules
from nanlint.rules.base import Rule, may_fire
from nanlint.traversal import Plan, concrete_node_types
from nanlint import suppression


class FileContext:
    """What rules see of the file being checked: facts, call targets, positions and the report sink."""

    def __init__(self, source: str, filename: str, module: cst.Module, options: AnalysisOptions):
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
        self._targets: dict[tuple, tuple] = {}
        self.uses_half_precision = options.target_precision in ("float16", "bfloat16") or _mentions_half(source)

    # ---- questions rules ask ----
    def fact(self, expr: cst.BaseExpression) -> Fact:
        return self.facts.of(expr, self.scope)

    def target(self, call: cst.Call) -> Target:
        """Memoized: every rule that visits a call asks this (20 rules: 20 resolutions of one call). The
        key includes the scope and the binding counter, so the answer is the one at this point of the walk;
        the entry keeps the node alive so its id cannot be reused."""
        key = (id(call), self.facts.counter, id(self.scope))
        found = self._targets.get(key)
        if found is None:
            found = self._targets[key] = (call, self.facts.target(call, self.scope))
        return found[1]

    @property
    def current_function(self) -> cst.FunctionDef | None:
        return self.function_stack[-1] if self.function_stack else None

    def position(self, node: cst.CSTNode) -> CodeRange:
        if self._positions is None:  # computed once per file, on the first report
            self._positions = positions(self.module, self.source)
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


@functools.lru_cache(maxsize=None)
def _hook_names(rule_class: type[Rule]) -> tuple[tuple[str, str], ...]:
    """(``visit``/``leave``, node type) for every ``visit_<Node>``/``leave_<Node>`` method of a rule class."""
    concrete = concrete_node_types()
    out = []
    for attr in dir(rule_class):
        kind, _, node_type = attr.partition("_")
        if kind in ("visit", "leave") and node_type in concrete and callable(getattr(rule_class, attr, None)):
            out.append((kind, node_type))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _plan(wanted: frozenset[str]) -> Plan:
    return Plan(wanted)


@functools.lru_cache(maxsize=64)
def _irrelevant(plan: Plan) -> frozenset[type]:
    """Node types the walk need not even enter: not wanted and unable to hold a wanted node."""
    return frozenset(cls for cls in concrete_node_types().values() if not plan.relevant(cls))


# bookkeeping flags per node type
_PUSH_STATEMENT, _FUNCTION, _CLASS, _IMPORT, _BIND = 1, 2, 4, 8, 16


class _Walker:
    """One traversal for all rules: keeps scopes and bindings, then dispatches to rule methods.

    Nodes are visited in libcst's order, but only the types that a rule or the bookkeeping needs; subtrees
    that cannot contain such a type (whitespace, commas, operators) are not entered. A rule method's
    return value is ignored (there is no "skip children" as in ``CSTVisitor``)."""

    def __init__(self, ctx: FileContext, rules: list[Rule], errors: list[InternalError]):
        self.ctx = ctx
        self.errors = errors
        self.visitors: dict[str, list[tuple[Rule, Callable]]] = {}
        self.leavers: dict[str, list[tuple[Rule, Callable]]] = {}
        for rule in rules:
            for kind, node_type in _hook_names(type(rule)):
                table = self.visitors if kind == "visit" else self.leavers
                table.setdefault(node_type, []).append((rule, getattr(rule, f"{kind}_{node_type}")))
        wanted = frozenset(self.visitors) | frozenset(self.leavers) | _BOOKKEEPING
        self.plan = _plan(wanted)
        self.skip = _irrelevant(self.plan)
        self.broken: set[str] = set()
        self._entries: dict[type, tuple] = {}

    def _entry(self, cls: type) -> tuple:
        name = cls.__name__
        flags = 0
        if name in _STATEMENTS:
            flags |= _PUSH_STATEMENT
        if name == "FunctionDef":
            flags |= _FUNCTION
        elif name == "ClassDef":
            flags |= _CLASS
        elif name in ("Import", "ImportFrom"):
            flags |= _IMPORT
        if name in _BINDERS:
            flags |= _BIND
        entry = (self.plan.fields(cls), self.visitors.get(name), self.leavers.get(name), flags)
        self._entries[cls] = entry
        return entry

    def walk(self, node: cst.CSTNode) -> None:
        entry = self._entries.get(type(node)) or self._entry(type(node))
        fields, visitors, leavers, flags = entry
        ctx = self.ctx
        if flags:
            if flags & _PUSH_STATEMENT:
                ctx.statement_stack.append(node)
            if flags & _FUNCTION:
                self._enter_function(node)
            elif flags & _CLASS:
                ctx.class_stack.append(node)
                scope = Scope("class", ctx.scope, node)
                scope.self_attrs = {}
                ctx.scope = scope
            elif flags & _IMPORT:
                ctx.resolver.add(node)
        if visitors:
            self._dispatch(visitors, node)
        walk = self.walk
        skip = self.skip
        for name in fields:
            value = getattr(node, name)
            if type(value) is tuple or type(value) is list:
                for child in value:
                    if type(child) not in skip and isinstance(child, cst.CSTNode):
                        walk(child)
            elif type(value) not in skip and isinstance(value, cst.CSTNode):
                walk(value)
        if leavers:
            self._dispatch(leavers, node)
        if flags:
            if flags & _BIND:
                self._bind(node)
            if flags & _FUNCTION:
                ctx.function_stack.pop()
                ctx.scope = ctx.scope.parent or ctx.module_scope
            elif flags & _CLASS:
                ctx.class_stack.pop()
                ctx.scope = ctx.scope.parent or ctx.module_scope
            if flags & _PUSH_STATEMENT:
                ctx.statement_stack.pop()

    def _dispatch(self, handlers: list, node: cst.CSTNode) -> None:
        for rule, method in handlers:
            if rule.code in self.broken:
                continue
            try:
                method(node)
            except RecursionError:
                raise
            except Exception as exc:  # a bug in one rule must not hide the other findings
                self.broken.add(rule.code)
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                self.errors.append(
                    InternalError(self.ctx.filename, rule.code, f"{type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})")
                )

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
_BOOKKEEPING = _STATEMENTS | _BINDERS | {"Import", "ImportFrom"}
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


_PARSE_LOCK = threading.Lock()


def _no_validation(self: cst.CSTNode) -> None:
    return None


def parse_without_validation(source: str) -> cst.Module:
    """``cst.parse_module`` without re-validating every node the parser builds (about a tenth of the parse
    time; libcst's own comment on ``CSTNode.__post_init__`` calls that work avoidable when parsing): the
    parser only builds valid trees. Nodes created outside this call are validated as usual."""
    with _PARSE_LOCK:
        original = cst.CSTNode.__post_init__
        cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        try:
            return cst.parse_module(source)
        finally:
            cst.CSTNode.__post_init__ = original  # type: ignore[method-assign]


def analyze(source: str, filename: str, options: AnalysisOptions) -> FileResult:
    """Check one file's source. Never raises for any input: parse failures become NAN000 findings and
    exceptions inside rules become :class:`InternalError` entries.

    Rules whose ``triggers`` do not occur in the text cannot fire and are not run; when no enabled rule
    can fire, the libcst parse is skipped and CPython's parser checks the syntax (see :func:`_syntax_ok`)."""
    result = FileResult(filename)
    rule_classes = all_rules()
    enabled = [(code, cls) for code, cls in rule_classes.items() if code in options.codes]
    active = [(code, cls) for code, cls in enabled if may_fire(cls, source)]
    if not active and _syntax_ok(source, filename):
        result.findings.extend(_unsuppressed(source, _NoTree(filename), [], options.codes))
        return result
    try:
        module = parse_without_validation(source)
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
    rules = [cls(ctx, options.rule_options.get(code)) for code, cls in active]
    if rules:
        walker = _Walker(ctx, rules, result.errors)
        try:
            walker.walk(module)
        except RecursionError:
            result.errors.append(InternalError(filename, "engine", "RecursionError: the file nests too deeply to analyze"))
    result.findings.extend(_unsuppressed(source, ctx, ctx.findings, options.codes))
    return result


def _unsuppressed(source: str, ctx, reported: list, codes: frozenset[str]) -> list[Finding]:
    """The findings ``# noqa`` leaves, sorted. Reading the directives tokenizes the whole file (a fifth of
    the parse time on torch's sources), so it is skipped when there is nothing to suppress and NAN002
    (unused ``noqa``) is off: the answer is empty then anyway."""
    if not reported and "NAN002" not in codes:
        return []
    return sorted(suppression.apply(source, ctx, reported, codes), key=Finding.sort_key)


class _NoTree:
    """The context suppression sees when no rule ran (it only needs the file name then)."""

    def __init__(self, filename: str):
        self.filename = filename

    def line_of(self, node):  # pragma: no cover - never called: nothing was reported
        raise AssertionError("no findings without a tree")


def _syntax_ok(source: str, filename: str) -> bool:
    """Whether CPython compiles ``source``. Used only to decide that the libcst parse may be skipped: a
    file CPython rejects still goes through libcst, so NAN000 findings keep libcst's exact message and
    position. What is guaranteed: a file libcst rejects is reported unless CPython accepts it (libcst
    grammar gaps; none known for the syntax of the running CPython); a file both accept is never reported.
    Errors of the compiler proper (``return`` outside a function, ...) also send the file to libcst."""
    try:
        with warnings.catch_warnings():  # invalid escapes etc. must not print SyntaxWarnings
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", dont_inherit=True)  # bytecode: 3x faster than building an ast
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True
