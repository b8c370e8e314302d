"""Helpers the NAN1xx/NAN2xx rules share: the operand of an op, how to describe a fact in a message, and
whether the code around a site already checks the value (an enclosing ``if``, an early ``return``, a
``torch.where`` that selects around it, a NaN repair right after)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

import libcst as cst

from nanlint.facts import F, Fact, arg, constant_value, source_text
from nanlint.findings import Confidence
from nanlint.resolver import Target

if TYPE_CHECKING:
    from nanlint.rules.base import Rule

# Module aliases and builtins never count as the value a condition checks.
_NOT_VALUES = frozenset({"torch", "F", "np", "numpy", "math", "nn", "tf", "jnp", "jax", "K", "self", "len", "abs", "max", "min",
                         "sum", "float", "int", "True", "False", "None", "functional", "special", "linalg"})
_IS_NONE = re.compile(r"[\w.\[\]'\"]+\s+is\s+(not\s+)?None")
_ISINSTANCE = re.compile(r"(isinstance|hasattr|callable)\([^)]*\)")
_ZERO_CHECK = re.compile(r"(==|!=|>=|<=|<|>)\s*-?\d|\bany\(|\ball\(|\.any\b|\.all\b|numel|nonzero|\beps")
_STRUCTURE = re.compile(r"len\([^()]*(\([^()]*\))?[^()]*\)|[\w.]+\.(shape|ndim|dtype|device)(\[[^\]]*\])?|[\w.]+\.(size|dim|ndimension)\([^()]*\)")


def operand(rule: "Rule", call: cst.Call, target: Target | None = None) -> cst.BaseExpression | None:
    """The tensor a unary op acts on: the receiver of ``x.op()``, else the first argument."""
    target = target or rule.target(call)
    if target.namespace == "method":
        return target.receiver
    return arg(call, 0, "input") or arg(call, 0, "x")


def describe(rule: "Rule", expr: cst.BaseExpression, fact: Fact, fallback: str = "a value") -> str:
    """"`p`, a softmax output (line 12)" for messages."""
    text = _short(source_text(expr))
    if fact.origin is None:
        return f"`{text}`, {fallback}"
    what = fact.origin.what
    if fact.origin.node is expr or source_text(fact.origin.node) == source_text(expr):
        return what  # the operand is the call that makes it: "`log` of a `softmax` output"
    try:
        line = rule.ctx.line_of(fact.origin.node)
        return f"`{text}`, {what} (line {line})"
    except Exception:  # a synthetic node (augmented assignment) has no position
        return f"`{text}`, {what}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def confidence_of(fact: Fact, strong: F = F.MAY_ZERO) -> Confidence:
    if fact.is_guess or not fact.has(strong):
        return Confidence.MEDIUM
    if strong == F.MAY_ZERO and fact.has(F.PROB) and not fact.has(F.COUNT):
        return Confidence.MEDIUM  # a probability reaches 0 only by underflow
    return Confidence.HIGH


# ---- what a condition checks ----
def names_in(expr: cst.CSTNode) -> set[str]:
    """Dotted names that occur in an expression (``x``, ``self.mask``), module aliases left out."""
    found: set[str] = set()

    class _Names(cst.CSTVisitor):
        def visit_Attribute(self, node: cst.Attribute) -> bool:
            text = source_text(node)
            if text and "(" not in text and text.split(".")[0] not in _NOT_VALUES or text.startswith("self."):
                found.add(text)
            return True

        def visit_Name(self, node: cst.Name) -> bool:
            if node.value not in _NOT_VALUES:
                found.add(node.value)
            return False

        def visit_Call(self, node: cst.Call) -> bool:
            # the called function is not a value: visit only the receiver of a method and the arguments
            if isinstance(node.func, cst.Attribute):
                node.func.value.visit(self)
            for a in node.args:
                a.value.visit(self)
            return False

    expr.visit(_Names())
    return found


def value_keys(rule: "Rule", expr: cst.BaseExpression) -> tuple[set[str], set[str]]:
    """Texts that name ``expr`` in a condition: its own text and, for a name, what it was bound to (full
    keys); and the values it is computed from (root keys)."""
    full = {source_text(expr)}
    roots = names_in(expr)
    resolved = rule.ctx.facts.resolve(expr, rule.ctx.scope) if isinstance(expr, (cst.Name, cst.Attribute)) else expr
    if resolved is not expr:
        full.add(source_text(resolved))
        roots |= names_in(resolved)
    return {k for k in full if k}, roots


def _expand_test(rule: "Rule", test: cst.BaseExpression) -> cst.BaseExpression | str:
    """``if mask_exists:`` tests what ``mask_exists`` was bound to (``area > 0 and total > 0``)."""
    inner = test.expression if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not) else test
    if isinstance(inner, cst.Name):
        resolved = rule.ctx.facts.resolve(inner, rule.ctx.scope, depth=1)
        if resolved is not inner:
            return source_text(test) + " " + source_text(resolved)
    return test


def _test_mentions(test: cst.BaseExpression | str, full: set[str], roots: set[str]) -> bool:
    text = " ".join((test if isinstance(test, str) else source_text(test)).split())
    text = _IS_NONE.sub(" ", _ISINSTANCE.sub(" ", text))
    for key in full:
        if key and _contains(text, key):
            return True
    values_only = _STRUCTURE.sub(" ", text)  # `x.shape[-3] != 3` checks a layout, not the values of x
    if _ZERO_CHECK.search(values_only):
        return any(_contains(values_only, key) for key in roots)
    return False


def _contains(text: str, key: str) -> bool:
    return re.search(r"(?<![\w.])" + re.escape(key) + r"(?![\w])", text) is not None


def checked_by_condition(rule: "Rule", expr: cst.BaseExpression) -> bool:
    """An enclosing ``if``/``while``/``assert`` or an earlier early exit (``if n == 0: return``) tests the
    value: the programmer handles its zero (or empty) case."""
    full, roots = value_keys(rule, expr)
    ctx = rule.ctx
    for test in _enclosing_tests(ctx, rule):
        if _test_mentions(_expand_test(rule, test), full, roots):
            return True
    for statement in _preceding_statements(ctx):
        if isinstance(statement, cst.If) and _exits(statement.body) and _test_mentions(_expand_test(rule, statement.test), full, roots):
            return True
        if isinstance(statement, cst.SimpleStatementLine):
            for small in statement.body:
                if isinstance(small, cst.Assert) and _test_mentions(small.test, full, roots):
                    return True
                if _check_call_mentions(small, full, roots):
                    return True
    return False


_CHECK_CALL = re.compile(r"(^|_)(assert|check)", re.I)


def _check_call_mentions(small: cst.BaseSmallStatement, full: set[str], roots: set[str]) -> bool:
    """``torch._assert(cond, msg)`` / ``torch_compilable_check(torch.all(d >= 0), msg)``: an assertion by call."""
    if not (isinstance(small, cst.Expr) and isinstance(small.value, cst.Call) and small.value.args):
        return False
    func = small.value.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return bool(_CHECK_CALL.search(name)) and _test_mentions(small.value.args[0].value, full, roots)


def _enclosing_tests(ctx, rule) -> Iterable[cst.BaseExpression]:
    stack = ctx.statement_stack
    start = _function_index(stack)
    for node in stack[start + 1:]:
        if isinstance(node, (cst.If, cst.While)):
            yield node.test
    for node in rule.__dict__.get("_ifexp_stack", ()):
        yield node.test


def _function_index(stack: list) -> int:
    for i in range(len(stack) - 1, -1, -1):
        if isinstance(stack[i], (cst.FunctionDef, cst.ClassDef)):
            return i
    return -1


def _block_statements(parent: cst.CSTNode) -> list[list[cst.CSTNode]]:
    blocks = []
    for attr in ("body", "orelse", "finalbody"):
        child = getattr(parent, attr, None)
        while child is not None:
            body = getattr(child, "body", None)
            if isinstance(child, (cst.IndentedBlock,)):
                blocks.append(list(child.body))
                break
            if isinstance(body, cst.IndentedBlock):
                blocks.append(list(body.body))
            child = getattr(child, "orelse", None) if isinstance(child, cst.If) else None
    for handler in getattr(parent, "handlers", ()) or ():
        if isinstance(handler.body, cst.IndentedBlock):
            blocks.append(list(handler.body.body))
    if isinstance(parent, cst.Module):
        blocks.append(list(parent.body))
    return blocks


def _preceding_statements(ctx) -> Iterable[cst.CSTNode]:
    stack = ctx.statement_stack
    start = _function_index(stack)
    if start < 0:
        return
    for parent, child in zip(stack[start:], stack[start + 1:]):
        for block in _block_statements(parent):
            for i, statement in enumerate(block):
                if statement is child:
                    yield from block[:i]
                    break


def following_statements(ctx) -> list[cst.CSTNode]:
    """Statements after the current one in its block (for a NaN repair right after)."""
    stack = ctx.statement_stack
    if len(stack) < 2:
        return []
    parent, child = stack[-2], stack[-1]
    for block in _block_statements(parent):
        for i, statement in enumerate(block):
            if statement is child:
                return block[i + 1:]
    return []


def _exits(body: cst.BaseSuite) -> bool:
    statements = body.body if isinstance(body, cst.IndentedBlock) else [body]
    if not statements:
        return False
    last = statements[-1]
    small = last.body if isinstance(last, (cst.SimpleStatementLine, cst.SimpleStatementSuite)) else []
    return any(isinstance(s, (cst.Return, cst.Raise, cst.Continue, cst.Break)) for s in small)


def assigned_names(ctx) -> set[str]:
    """Names the current statement assigns."""
    stack = ctx.statement_stack
    if not stack or not isinstance(stack[-1], cst.SimpleStatementLine):
        return set()
    out: set[str] = set()
    for small in stack[-1].body:
        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target] if isinstance(small, (cst.AnnAssign, cst.AugAssign)) else []
        for target in targets:
            if isinstance(target, cst.Name):
                out.add(target.value)
    return out


_REPAIR = re.compile(r"(isnan|nan_to_num|isfinite)\(\s*(?P<name>[\w.]+)")


def repaired_after(ctx) -> bool:
    """The value assigned here is checked for NaN right after (``if torch.isnan(v).any(): v = ...``,
    ``v = torch.nan_to_num(v)``)."""
    names = assigned_names(ctx)
    if not names:
        return False
    for statement in following_statements(ctx)[:4]:
        text = source_text(statement)
        for match in _REPAIR.finditer(text):
            if match.group("name").split(".")[0] in names:
                return True
    return False


# ---- torch.where branches ----
WHERE_NAMESPACES = frozenset({"torch", "tf", "jax"})


def is_where(rule: "Rule", call: cst.Call) -> bool:
    target = rule.target(call)
    return target.op == "where" and target.namespace in WHERE_NAMESPACES and len(call.args) == 3


class WhereTracker:
    """Mixin: keeps the stack of ``torch.where`` calls being visited, so a rule can leave a site inside a
    branch to NAN241 (the branch trap) when the condition tests the same value."""

    def visit_IfExp(self, node: cst.IfExp) -> None:
        self.__dict__.setdefault("_ifexp_stack", []).append(node)

    def leave_IfExp(self, node: cst.IfExp) -> None:
        stack = self.__dict__.setdefault("_ifexp_stack", [])
        if stack and stack[-1] is node:
            stack.pop()

    def track_enter(self, node: cst.Call) -> None:
        stack = self.__dict__.setdefault("_where_stack", [])
        if is_where(self, node):
            stack.append(node)

    def track_leave(self, node: cst.Call) -> None:
        stack = self.__dict__.setdefault("_where_stack", [])
        if stack and stack[-1] is node:
            stack.pop()

    def in_related_where(self, expr: cst.BaseExpression) -> bool:
        """Inside a branch of a ``where`` whose condition names a value ``expr`` is computed from."""
        stack = self.__dict__.get("_where_stack") or []
        if not stack:
            return False
        names = names_in(expr)
        resolved = self.ctx.facts.resolve(expr, self.ctx.scope) if isinstance(expr, cst.Name) else expr
        if resolved is not expr:
            names |= names_in(resolved)
        for call in stack:
            if names & names_in(call.args[0].value):
                return True
        return False


def is_constant(expr: cst.BaseExpression) -> bool:
    return constant_value(expr) is not None


def in_no_grad(ctx) -> bool:
    """Inside ``@torch.no_grad()`` / ``@torch.inference_mode()`` or a ``with torch.no_grad():`` block, where
    gradient-only hazards cannot happen (optimizer steps, evaluation, buffers)."""
    for node in ctx.statement_stack:
        if isinstance(node, cst.FunctionDef):
            for decorator in node.decorators:
                text = source_text(decorator.decorator)
                if "no_grad" in text or "inference_mode" in text:
                    return True
        elif isinstance(node, cst.With):
            for item in node.items:
                text = source_text(item.item)
                if "no_grad" in text or "inference_mode" in text:
                    return True
    return False


def weak_zero(fact: Fact, squares_count: bool = False) -> bool:
    """A zero guessed from `1 - x` of an unknown x (or, unless ``squares_count``, from a square of an unknown):
    too weak to report outside a log (or a root)."""
    if not fact.may_be_zero_guess:
        return False
    return fact.has(F.COMPLEMENT) or (fact.has(F.SQUARE) and not squares_count)


_INT_CAST_METHODS = frozenset({"long", "int", "short", "byte", "floor", "ceil", "round", "trunc"})
_INT_DTYPES = ("long", "int64", "int32", "int16", "int8", "uint8", "int")


def inside_integer_cast(rule: "Rule", node: cst.CSTNode) -> bool:
    """``node`` sits inside ``(...).long()`` / ``.to(torch.long)`` / ``floor(...)`` in the current statement: the
    value becomes an integer index (T5's relative-position buckets), carries no gradient, and a -inf there is
    selected away."""
    stack = rule.ctx.statement_stack
    if not stack:
        return False
    statement = stack[-1]
    found = []

    class _Casts(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> bool:
            if found:
                return False
            func = call.func
            name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
            is_cast = name in _INT_CAST_METHODS or (
                name in ("to", "type") and any(source_text(a.value).split(".")[-1] in _INT_DTYPES for a in call.args)
            )
            if is_cast and _contains_node(call, node):
                found.append(call)
                return False
            return True

    statement.visit(_Casts())
    return bool(found)


def cast_to_integer_after(rule: "Rule", lookahead: int = 5) -> bool:
    """The value the current statement assigns is cast to an integer index a few statements later, through a
    chain of reassignments (T5-style relative-position buckets: ``l = log(r / m)`` ... ``(m + l).to(torch.long)``)."""
    tracked = assigned_names(rule.ctx)
    if not tracked:
        return False
    for statement in following_statements(rule.ctx)[:lookahead]:
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        casts: list[cst.Call] = []

        class _Casts(cst.CSTVisitor):
            def visit_Call(self, call: cst.Call) -> bool:
                if _is_integer_cast(call):
                    casts.append(call)
                return True

        statement.visit(_Casts())
        if any(names_in(call) & tracked for call in casts):
            return True
        for small in statement.body:
            if isinstance(small, cst.Assign) and names_in(small.value) & tracked:
                tracked |= {t.target.value for t in small.targets if isinstance(t.target, cst.Name)}
    return False


def _is_integer_cast(call: cst.Call) -> bool:
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name in _INT_CAST_METHODS or (
        name in ("to", "type") and any(source_text(a.value).split(".")[-1] in _INT_DTYPES for a in call.args)
    )


def _contains_node(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    hit = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if hit:
                return False
            if node is target:
                hit.append(node)
                return False
            return True

    root.visit(_Find())
    return bool(hit)


# ---- is this code differentiated? ----
_PREPROCESSING_BASE = re.compile(r"(FeatureExtractor|Processor|Processing|Transform|Tokenizer|Collator|Dataset|Sampler)s?(Mixin|Base)?$")
_MODULE_BASE = re.compile(r"(^|\.)(Module|Function|\w*Loss|\w*Layer|\w*Model|PreTrainedModel|\w*Cell|LightningModule|Model)$")
_LOSS_NAME = re.compile(r"loss|criterion|objective|penalt|regulari[sz]", re.I)
_GRAD_EVIDENCE = re.compile(r"\.backward\(|requires_grad|\bParameter\(|\bautograd\.|\bGradientTape\b|\bjax\.grad\b|\bvalue_and_grad\b")
_MODULE_CLASS = re.compile(r"^class\s+\w+\(([^)]*\.)?(Module|Function|\w*Loss|LightningModule)\)", re.M)
_file_evidence: dict[int, tuple[str, bool]] = {}


def _bases(node: cst.ClassDef) -> list[str]:
    return [source_text(base.value) for base in node.bases]


def differentiable_context(rule: "Rule") -> bool:
    """Evidence that the code around the site is differentiated, for hazards that exist only in the backward
    pass: a method of an ``nn.Module`` / ``autograd.Function`` / loss class (or of any class in a file that
    imports ``torch.nn``), a loss-like function, or a file that calls ``backward()`` / uses ``requires_grad`` /
    ``Parameter`` / defines a Module. Never under ``no_grad`` nor in a preprocessing class (feature extractors,
    processors, transforms), whose outputs are data."""
    ctx = rule.ctx
    if not ctx.resolver.imports_autograd or in_no_grad(ctx):
        return False
    for klass in reversed(ctx.class_stack):
        if any(_PREPROCESSING_BASE.search(base) for base in _bases(klass)) or _PREPROCESSING_BASE.search(klass.name.value):
            return False
    names = [f.name.value for f in ctx.function_stack] + [c.name.value for c in ctx.class_stack]
    if any(_LOSS_NAME.search(name) for name in names):
        return True
    if any(f.name.value in ("forward", "backward", "call", "training_step") for f in ctx.function_stack):
        return True  # the protocol of nn.Module / autograd.Function / Keras layers / Lightning
    if ctx.class_stack and any(_MODULE_BASE.search(base) for base in _bases(ctx.class_stack[-1])):
        return True
    if (ctx.class_stack or _is_method(ctx.current_function)) and _imports_modules(ctx):
        return True  # a method in a file of modules: model code
    return _file_differentiated(ctx)


def _is_method(function: cst.FunctionDef | None) -> bool:
    params = function.params.params if function is not None else ()
    return bool(params) and params[0].name.value == "self"


def _imports_modules(ctx) -> bool:
    return any(module.startswith("torch.nn") or module.endswith((".Module", ".Function")) for module in ctx.resolver.aliases.values())


def _file_differentiated(ctx) -> bool:
    key = id(ctx.source)
    found = _file_evidence.get(key)
    if found is None or found[0] is not ctx.source:
        if len(_file_evidence) > 64:
            _file_evidence.clear()
        found = (ctx.source, bool(_GRAD_EVIDENCE.search(ctx.source) or _MODULE_CLASS.search(ctx.source)))
        _file_evidence[key] = found
    return found[1]


# ops whose output carries a gradient only if their input does (casts, reshapes, reductions, repeats)
_VALUE_PRESERVING = frozenset({"float", "double", "half", "long", "int", "to", "type", "sum", "mean", "flatten", "view",
                               "reshape", "squeeze", "unsqueeze", "clone", "contiguous", "any", "all", "count_nonzero",
                               "repeat", "repeat_interleave", "expand", "permute", "transpose", "abs", "pow", "square"})
_CONSTANT_MAKERS = frozenset({"arange", "linspace", "logspace", "meshgrid", "ones", "zeros", "ones_like", "zeros_like",
                              "eye", "full", "size", "numel", "len", "count_nonzero", "detach"})


def carries_no_gradient(rule: "Rule", expr: cst.BaseExpression, depth: int = 6) -> bool:
    """``expr`` is computed only from comparisons, index grids (``arange``), sizes and literals: no gradient
    flows through it (``area_i / area_u`` with both sums of ``logits > t``; convit's distances of an index grid)."""
    if constant_value(expr) is not None or isinstance(expr, cst.Comparison):
        return True
    if isinstance(expr, (cst.Name, cst.Attribute)):
        if depth <= 0:
            return False
        resolved = rule.ctx.facts.resolve(expr, rule.ctx.scope, depth=1)
        if resolved is expr:
            fact = rule.fact(expr)
            return fact.has(F.COUNT) and not fact.has(F.GUESS)
        return carries_no_gradient(rule, resolved, depth - 1)
    if isinstance(expr, cst.BinaryOperation):
        return carries_no_gradient(rule, expr.left, depth) and carries_no_gradient(rule, expr.right, depth)
    if isinstance(expr, cst.UnaryOperation):
        return carries_no_gradient(rule, expr.expression, depth)
    if isinstance(expr, cst.Call):
        target = rule.target(expr)
        if target.base_op in _CONSTANT_MAKERS and target.namespace in ("torch", "numpy", "method", "builtin"):
            return True
        if target.base_op in _VALUE_PRESERVING:
            if target.namespace == "method" and target.receiver is not None:
                return carries_no_gradient(rule, target.receiver, depth)
            if target.namespace in ("torch", "numpy"):
                first = arg(expr, 0, "input")
                return first is not None and carries_no_gradient(rule, first, depth)
    return False
