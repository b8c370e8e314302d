"""What rules see of the file being checked: values, ops, positions, the code around the site, and the
report sink. One per file; the walk keeps its stacks and its current frame up to date."""
from __future__ import annotations

import re
from typing import Any

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodeRange

from nanlint.analysis import domain as d
from nanlint.analysis.domain import Tier, Value
from nanlint.analysis.evaluate import Evaluator, Frame
from nanlint.analysis.gradient import no_grad_here
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
        self._positions: Any = None
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

    def reaches(self, evidence) -> bool:
        return evidence is not None and evidence.tier >= self.tier

    # ---- positions ----
    def position(self, node: cst.CSTNode) -> CodeRange:
        if self._positions is None:
            self._positions = positions(self.module, self.source)
        return self._positions[node]

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
        finding = Finding(code=rule.code, name=doc.name, message=message, filename=self.filename, span=self.span(node),
                          severity=severity or Severity(doc.severity), confidence=confidence, fix=fix, hint=hint)
        self.findings.append((finding, statement))

    def replacement_fix(self, node: cst.CSTNode, replacement: cst.CSTNode | str, message: str,
                        applicability: Applicability) -> Fix | None:
        """A fix that replaces ``node``'s source with ``replacement``; None (no fix) when the replacement is not
        an expression that parses, or when it would delete a comment written inside ``node``."""
        text = replacement if isinstance(replacement, str) else self.fix_text(replacement, at=node)
        if not _keeps_comments(node, text, self._source_of(node)):
            return None
        return Fix(message=message, edits=(Edit(self.span(node), text),), applicability=applicability)

    def fix_text(self, node: cst.CSTNode, at: cst.CSTNode | None = None) -> str:
        """``node``'s code as it reads where ``at`` (default: ``node`` itself) stands in the file: a line
        continued inside brackets keeps the indentation of the block around it (``code_for`` writes it as if
        at module level)."""
        path = self._path_to(at if at is not None else node)
        if path is None:
            return self.module.code_for_node(node)
        indent = [block.indent if block.indent is not None else self.module.default_indent
                  for block in path if isinstance(block, cst.IndentedBlock)]
        state = CodegenState(default_indent=self.module.default_indent, default_newline=self.module.default_newline)
        state.indent_tokens.extend(indent)
        node._codegen(state)
        return "".join(state.tokens)

    # ---- names a fix may write ----
    def spelling(self, qualname: str, at: cst.CSTNode) -> str | None:
        """How the code at ``at`` can name the module (or module attribute) ``qualname`` without a new import:
        through a module-level import of it or of a parent module (``F`` for ``torch.nn.functional`` after
        ``import torch.nn.functional as F``, else ``torch.nn.functional`` after ``import torch``), whose name
        is bound at module level only by that import and is not shadowed at ``at`` (by a parameter, a local,
        a nested or function-local import, a class attribute, a comprehension variable). None when there is
        no such name: a fix must then not be offered."""
        best: str | None = None
        for local, module in self._module_imports().items():
            if qualname == module:
                candidate = local
            elif qualname.startswith(module + "."):
                candidate = local + qualname[len(module):]
            else:
                continue
            if self.bound_to_module(local, at) and (best is None or len(candidate) < len(best)):
                best = candidate
        return best

    def refers_to_module(self, expr: cst.BaseExpression, qualname: str, at: cst.CSTNode | None = None) -> bool:
        """Whether the dotted name ``expr`` (``F.softmax``, ``torch.log``), written at ``at`` (default: at
        itself), names ``qualname``'s module or something in it through a module-level import that nothing
        shadows there, so that a fix may reuse its head name."""
        parts = _dotted_parts(expr)
        if not parts:
            return False
        module = self._module_imports().get(parts[0])
        if module is None or not self.bound_to_module(parts[0], at if at is not None else expr):
            return False
        full = ".".join([module, *parts[1:]])
        return full == qualname or full.startswith(qualname + ".")

    def bound_to_module(self, name: str, at: cst.CSTNode) -> bool:
        """``name`` is bound at module level only by unconditional imports of one module, and no scope around
        ``at`` (function, lambda, comprehension, or the class body it is directly in) binds it."""
        if name not in self._module_imports() or name in self._globals_declared():
            return False
        path = self._path_to(at)
        if path is None:
            return False
        in_function = False
        for scope in reversed(path[:-1]):
            if isinstance(scope, cst.Module):
                break
            if isinstance(scope, cst.ClassDef):
                if not in_function and self._binds(scope, name):
                    return False
                continue
            if isinstance(scope, _SCOPE_NODES):
                if self._binds(scope, name):
                    return False
                if isinstance(scope, (cst.FunctionDef, cst.Lambda)):
                    in_function = True
        return True

    def _binds(self, scope: cst.CSTNode, name: str) -> bool:
        text = self._source_of(scope)
        if text is not None and not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
            return False  # the name is not even written in the scope
        return name in _bindings(scope, self._bindings_cache())

    def _offsets(self, node: cst.CSTNode) -> tuple[int, int] | None:
        """``node``'s start and end offsets in the source (None when positions cannot say)."""
        if self._positions is None:
            self._positions = positions(self.module, self.source)
        ranges = getattr(self._positions, "_ranges", None)
        if ranges is not None:
            return ranges.get(node)
        try:
            pos = self.position(node)
        except KeyError:
            return None
        starts = self._line_offsets()
        return starts[pos.start.line - 1] + pos.start.column, starts[pos.end.line - 1] + pos.end.column

    def _line_offsets(self) -> list[int]:
        found = getattr(self, "_line_offsets_memo", None)
        if found is None:
            found = self._line_offsets_memo = [0] + [m.end() for m in _NEWLINE.finditer(self.source)]
        return found

    def _source_of(self, node: cst.CSTNode) -> str | None:
        span = self._offsets(node)
        return self.source[span[0]:span[1]] if span is not None else None

    def _bindings_cache(self) -> dict:
        """Per file: id(scope node) -> its bindings (the nodes live as long as this context)."""
        found = getattr(self, "_bindings_memo", None)
        if found is None:
            found = self._bindings_memo = {}
        return found

    def _module_imports(self) -> dict[str, str]:
        """local name -> module, for names bound at module level only by imports of that one module, at least
        one of them unconditional (directly in the module body, not under ``if``/``try``)."""
        found = getattr(self, "_imports_cache", None)
        if found is not None:
            return found
        bindings = _bindings(self.module, self._bindings_cache())
        unconditional: set[str] = set()
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        unconditional.update(name for name, _ in _imported(small))
        found = {}
        if "*" not in bindings:  # a star import may bind anything
            for name, entries in bindings.items():
                modules = {module for kind, module in entries if kind == "import"}
                if name in unconditional and len(modules) == 1 and all(kind == "import" for kind, _ in entries):
                    found[name] = modules.pop()
        self._imports_cache = found
        return found

    def _globals_declared(self) -> set[str]:
        found = getattr(self, "_globals_cache", None)
        if found is None:
            found = set()
            if "global" not in self.source:
                self._globals_cache = found
                return found

            class _Globals(cst.CSTVisitor):
                def visit_Global(self, node: cst.Global) -> None:
                    found.update(item.name.value for item in node.names)

            self.module.visit(_Globals())
            self._globals_cache = found
        return found

    def _path_to(self, target: cst.CSTNode) -> list[cst.CSTNode] | None:
        """The nodes from the module down to ``target`` (found by position, then identity)."""
        paths = getattr(self, "_paths_memo", None)
        if paths is None:
            paths = self._paths_memo = {}
        if id(target) in paths:
            return paths[id(target)]
        goal = self._offsets(target)
        if goal is None:
            return None
        start, end = goal
        memo = getattr(self, "_children_memo", None)
        if memo is None:
            memo = self._children_memo = {}
        found = None
        stack: list[tuple[cst.CSTNode, list[cst.CSTNode]]] = [(self.module, [self.module])]
        while stack:
            node, path = stack.pop()
            if node is target:
                found = path
                break
            children = memo.get(id(node))
            if children is None:
                children = memo[id(node)] = node.children  # libcst builds the list on each access
            for child in reversed(children):
                span = self._offsets(child)
                if child is target or (span is not None and span[0] <= start and span[1] >= end):
                    stack.append((child, path + [child]))
        paths[id(target)] = found
        return found

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
        return f"{evidence.why} (line {line})" if line is not None else evidence.why


_NEWLINE = re.compile(r"\r\n?|\n")  # the line breaks libcst counts
_SCOPE_NODES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)


def _comments(node: cst.CSTNode) -> list[str]:
    found: list[str] = []

    class _Comments(cst.CSTVisitor):
        def visit_Comment(self, comment: cst.Comment) -> None:
            found.append(comment.value)

    node.visit(_Comments())
    return found


def _keeps_comments(node: cst.CSTNode, text: str, source: str | None = None) -> bool:
    """The replacement ``text`` parses as an expression (when ``node`` is one) and keeps every comment
    written inside ``node``."""
    if source is not None and "#" not in source:
        before: list[str] = []
    else:
        before = _comments(node)
    if not before and (source is not None or not isinstance(node, cst.BaseExpression)):
        return True  # nothing to lose (the replacement is built from the expression's own parts)
    if not isinstance(node, cst.BaseExpression):
        return not before
    try:
        after = _comments(cst.parse_expression(text))
    except Exception:  # noqa: BLE001 - libcst raises ParserSyntaxError and, on odd input, others
        return False
    remaining = list(after)
    for comment in before:
        if comment not in remaining:
            return False
        remaining.remove(comment)
    return True


def _dotted_parts(expr: cst.BaseExpression) -> list[str] | None:
    parts: list[str] = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return parts[::-1]


def _imported(node: cst.Import | cst.ImportFrom) -> list[tuple[str, str | None]]:
    """(local name, module or attribute it binds; None for a relative import) for each name an import binds;
    ``("*", None)`` for a star import."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = ".".join(_dotted_parts(alias.name) or [])
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                out.append((alias.asname.name.value, full))
            else:
                head = full.split(".")[0]
                out.append((head, head))
        return out
    if isinstance(node.names, cst.ImportStar):
        return [("*", None)]
    module = None if node.relative or node.module is None else ".".join(_dotted_parts(node.module) or [])
    for alias in node.names:
        name = ".".join(_dotted_parts(alias.name) or [])
        local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
        out.append((local, f"{module}.{name}" if module else None))
    return out


def _target_names(target: cst.CSTNode) -> list[str]:
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in _target_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return _target_names(target.value)
    return []


def _bindings(scope: cst.CSTNode, cache: dict | None = None) -> dict[str, list[tuple[str, str | None]]]:
    """name -> [(kind, module)] for the names ``scope`` binds itself: kind ``import`` (with the module or
    attribute imported) or ``other`` (a parameter, an assignment, a loop or ``with`` target, a nested ``def``
    or ``class``, a walrus, ``del``, ``global``...). Nested scopes are not entered."""
    if cache is not None and id(scope) in cache:
        return cache[id(scope)]
    names: dict[str, list[tuple[str, str | None]]] = {}

    def bind(name: str, kind: str = "other", module: str | None = None) -> None:
        names.setdefault(name, []).append((kind, module))

    class _Walrus(cst.CSTVisitor):
        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            for name in _target_names(node.target):
                bind(name)

    class _Binder(cst.CSTVisitor):
        def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
            if node is scope:
                return True
            bind(node.name.value)
            return False

        def visit_ClassDef(self, node: cst.ClassDef) -> bool:
            if node is scope:
                return True
            bind(node.name.value)
            return False

        def visit_Lambda(self, node: cst.Lambda) -> bool:
            return node is scope

        def _comprehension(self, node) -> bool:
            if node is scope:
                return True
            node.visit(_Walrus())  # a walrus in a comprehension binds in the scope around it
            return False

        visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

        def visit_CompFor(self, node: cst.CompFor) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_Param(self, node: cst.Param) -> None:
            bind(node.name.value)

        def visit_Assign(self, node: cst.Assign) -> None:
            for target in node.targets:
                for name in _target_names(target.target):
                    bind(name)

        def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_AugAssign(self, node: cst.AugAssign) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_For(self, node: cst.For) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_WithItem(self, node: cst.WithItem) -> None:
            if node.asname is not None:
                for name in _target_names(node.asname.name):
                    bind(name)

        def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
            if node.name is not None:
                for name in _target_names(node.name.name):
                    bind(name)

        def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_Del(self, node: cst.Del) -> None:
            for name in _target_names(node.target):
                bind(name)

        def visit_Global(self, node: cst.Global) -> None:
            for item in node.names:
                bind(item.name.value)

        def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
            for item in node.names:
                bind(item.name.value)

        def visit_MatchAs(self, node) -> None:
            if node.name is not None:
                bind(node.name.value)

        def visit_MatchStar(self, node) -> None:
            if node.name is not None:
                bind(node.name.value)

        def visit_MatchMapping(self, node) -> None:
            if node.rest is not None:
                bind(node.rest.value)

        def visit_Import(self, node: cst.Import) -> None:
            for local, module in _imported(node):
                bind(local, "import", module)

        def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
            for local, module in _imported(node):
                bind(local, "import" if module is not None else "other", module)

    scope.visit(_Binder())
    if cache is not None:
        cache[id(scope)] = names
    return names


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
