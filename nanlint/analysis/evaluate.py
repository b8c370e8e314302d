"""The evaluator: the abstract value of any expression, on demand, memoized.

``value(node, frame)`` dispatches on the node: literals are constants, names go through :mod:`flow` (their
reaching definitions, refined by the guards on the way), calls through the op table (or, for the file's own
functions, classes and modules, through :mod:`calls`), operators through :mod:`arith`. A *frame* is a scope
(a function, the module) with, optionally, values its parameters were given by one call site: the same
function body evaluates differently when ``entropy(F.softmax(x))`` passes it a probability.

Evaluation is lazy: only what the rules ask about, and what that depends on, is computed. A definition read
while it is being evaluated (the back edge of ``s += x`` in a loop) is skipped by the joins and the update
widened; anything nested too deeply to follow is unknown. Names and definitions are evaluated in
:mod:`name_values`, attributes, calls and operators in :mod:`call_values` (mixins of the Evaluator); the values
of functions, classes and modules are in :mod:`objects`.
"""
from __future__ import annotations

from dataclasses import replace

import libcst as cst

from nanlint.analysis import domain as d, guards as guard_mod, members, optable as ops
from nanlint.analysis.call_values import CallValues
from nanlint.analysis.domain import UNKNOWN, Evidence, Tier, Value
from nanlint.analysis.flow import FlowBuilder, Guard, ScopeFlow
from nanlint.analysis.name_values import CYCLE, NameValues, element_of, item_of  # noqa: F401 (re-exported)
from nanlint.analysis.objects import Frame, Instance, LocalClass, LocalFunction, NNModule  # noqa: F401 (re-exported)
from nanlint.analysis.opcall import OpCall, bind
from nanlint.analysis.reduce import mask_value
from nanlint.analysis.syntax import literal_value
from nanlint.resolver import ImportResolver, Target, dotted

_NO_CUT = 1 << 30
_KEYED_OPERATORS = {cst.Subtract: "-", cst.Add: "+", cst.Multiply: "*"}
ARRAY_NAMESPACES = frozenset({"torch", "method", "numpy", "math", "tf", "jax", "scipy"})
_BINARY = {cst.Add: "add", cst.Subtract: "sub", cst.Multiply: "mul", cst.Divide: "div", cst.Power: "pow",
           cst.MatrixMultiply: "matmul", cst.FloorDivide: "floor_divide", cst.Modulo: "remainder"}
_AUG = {cst.AddAssign: "add", cst.SubtractAssign: "sub", cst.MultiplyAssign: "mul", cst.DivideAssign: "div",
        cst.PowerAssign: "pow", cst.MatrixMultiplyAssign: "matmul", cst.FloorDivideAssign: "floor_divide",
        cst.ModuloAssign: "remainder"}



class Evaluator(NameValues, CallValues):
    def __init__(self, module: cst.Module, resolver: ImportResolver, code_for):
        from nanlint.analysis.calls import Calls
        from nanlint.analysis.scopes import Scopes

        self.module = module
        self.resolver = resolver
        self.code_for = code_for
        self.scopes = Scopes(module, resolver)
        self.calls = Calls(self)
        self.memo: dict[tuple, Value] = {}
        #: keys being evaluated -> their depth; a value read while an enclosing key is active sees that key cut
        #: (UNKNOWN, or CYCLE for a definition) and is kept only until the outermost evaluation ends
        self.active: dict[tuple, int] = {}
        self._lowest_cut = _NO_CUT
        self._provisional: dict[tuple, Value] = {}
        self._no_grad_frames: dict = {}
        self.masked = False  # evaluating the elements a `where` masks out
        self.extra: tuple = ()  # guards carried into a definition evaluated for a use under them
        self._frames: list[Frame] = []
        self.base_frame: Frame | None = None  # the frame of the code the rules are looking at
        self._texts: dict[int, str] = {}
        self._opcalls: dict[tuple, OpCall | None] = {}
        self._targets: dict[int, Target] = {}
        self._constraints: dict[tuple, list] = {}
        self._def_memo: dict[tuple, Value] = {}
        self._name_sets: dict[int, set[str]] = {}
        self._tests: dict[int, dict] = {}
        #: source-order generations (see _edge_tests): which assignment of a name a test comes after
        self.def_generation: dict[int, int] = {}
        self.test_generation: dict[int, int] = {}
        self._flows: dict[int, ScopeFlow] = {}
        self._default_frames: dict[int, Frame] = {}

    # ---- frames ----
    def flow_of(self, scope_node: cst.CSTNode) -> ScopeFlow:
        found = self._flows.get(id(scope_node))
        if found is None:
            parent_node = self.scopes.parent_scope(scope_node)
            parent = self.flow_of(parent_node) if parent_node is not None else None
            found = FlowBuilder(self.resolver, scope_node, parent, self.where_shape).build()
            self._flows[id(scope_node)] = found
        return found

    def frame_of(self, scope_node: cst.CSTNode | None) -> Frame:
        scope_node = scope_node if scope_node is not None else self.module
        found = self._default_frames.get(id(scope_node))
        if found is None:
            found = Frame(self.flow_of(scope_node), None, (id(scope_node),), cls=self.scopes.class_of(scope_node))
            self._default_frames[id(scope_node)] = found
        return found

    @property
    def frame(self) -> Frame:
        if self._frames:
            return self._frames[-1]
        return self.base_frame if self.base_frame is not None else self.frame_of(self.module)

    def push(self, frame: Frame) -> None:
        self._frames.append(frame)

    def pop(self) -> None:
        self._frames.pop()

    # ---- small helpers ----
    def text(self, node: cst.CSTNode | None) -> str:
        if node is None:
            return ""
        found = self._texts.get(id(node))
        if found is None:
            name = dotted(node) if isinstance(node, cst.BaseExpression) else None
            if name is not None:
                found = name
            elif _long_chain(node):
                found = self._chain_text(node)
            else:
                try:
                    found = " ".join(self.code_for(node).split())
                except Exception:
                    found = ""
                while found.startswith("(") and found.endswith(")") and _balanced(found[1:-1]):
                    found = found[1:-1].strip()
            self._texts[id(node)] = found
        return found

    def _chain_text(self, node: cst.CSTNode) -> str:
        """``a + b + … + z`` for an operator chain too long to print: the chain's ends, so that texts stay
        linear in the chain's length (every link asks for its own text)."""
        first = last = node
        while isinstance(first, _CHAINS):
            first = first.left
        while isinstance(last, _CHAINS):
            last = last.right
        op = self.code_for(node.operator).strip() if hasattr(node, "operator") else "…"
        return f"{self.text(first)} {op} … {op} {self.text(last)}"

    def key(self, expr: cst.BaseExpression) -> str | None:
        """The key a guard constrains: a name, ``self.x``, or a dotted chain (``x.data`` is ``x``)."""
        while isinstance(expr, cst.Attribute) and expr.attr.value in ("data", "T", "mT"):
            expr = expr.value
        operator = _KEYED_OPERATORS.get(type(expr.operator)) if isinstance(expr, cst.BinaryOperation) else None
        if operator is not None:  # `maxa - mina`, `tp + fp`, `w * h`: tested as spelled
            left, right = self.key(expr.left), self.key(expr.right)
            return f"{left} {operator} {right}" if left and right else None
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.BitInvert, cst.Not)):  # `~keep`
            inner = self.key(expr.expression)
            return f"~{inner}" if inner else None
        if isinstance(expr, cst.Subscript):  # one entry at a literal index: `fps[-1]`, `bounds[0]`
            base = dotted(expr.value) if isinstance(expr.value, (cst.Name, cst.Attribute)) else None
            element = expr.slice[0].slice.value if len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index) else None
            index = literal_value(element) if element is not None else None
            if base and isinstance(element, cst.Comparison):  # a selection, `prec[prec > -1]`: tested as spelled
                return f"{base}[{self.text(element)}]"
            return f"{base}[{int(index)}]" if base and index is not None and float(index).is_integer() else None
        return dotted(expr) if isinstance(expr, (cst.Name, cst.Attribute)) else None

    def number(self, expr: cst.BaseExpression | None, frame: Frame | None = None) -> float | None:
        if expr is None:
            return None
        literal = literal_value(expr)
        if literal is not None:
            return literal
        v = self.value(expr, frame)
        return v.const

    def is_pure(self, expr: cst.BaseExpression) -> bool:
        return isinstance(expr, (cst.Name, cst.Attribute, cst.Subscript))

    def resolved(self, expr: cst.BaseExpression | None, depth: int = 4) -> cst.BaseExpression | None:
        """A name followed to the single expression it was bound to (a few steps)."""
        flow = self.frame.flow
        for _ in range(depth):
            if not isinstance(expr, (cst.Name, cst.Attribute)):
                return expr
            reaches = flow.uses.get(id(expr))
            if not reaches or len({id(r[0]) for r in reaches}) != 1:
                return expr
            definition = reaches[0][0]
            if definition.kind != "assign" or definition.path or not isinstance(definition.value, cst.BaseExpression):
                return expr
            expr = definition.value
        return expr

    def resolved_name(self, expr):
        return expr

    def target(self, call: cst.Call) -> Target:
        found = self._targets.get(id(call))
        if found is None:
            found = self._targets[id(call)] = self.resolver.target(call)
        return found

    def where_shape(self, call: cst.Call) -> int:
        """For the flow pass: 1 for ``where(c, a, b)``, 2 for ``a.where(c, b)``, 3 for ``x.masked_fill(m, v)``."""
        target = self.target(call)
        op = ops.canonical(target.op)
        if op == "where":
            if target.namespace in ("torch", "numpy", "tf", "jax") and len(call.args) == 3:
                return 1
            if target.namespace == "method" and len(call.args) == 2:
                return 2
        if op == "masked_fill" and target.namespace == "method" and len(call.args) >= 2:
            return 3
        return 0

    def opcall(self, node: cst.CSTNode, frame: Frame | None = None) -> OpCall | None:
        """The op-table view of a call or operator, or None when it is no op of the table."""
        key = id(node)
        if key in self._opcalls:
            site = self._opcalls[key]
            if site is not None and frame is not None and site.frame is not frame:
                site = OpCall(site.node, site.spec, site.namespace, self, site._bound, site._positional, site._keywords, frame)
            return site
        site = self._make_opcall(node)
        self._opcalls[key] = site
        return site

    def _make_opcall(self, node: cst.CSTNode) -> OpCall | None:
        if isinstance(node, cst.BinaryOperation):
            name = _BINARY.get(type(node.operator))
            if name is None:
                return None
            spec = ops.OPS[name]
            names = spec.args
            return OpCall(node, spec, "operator", self, {names[0]: node.left, names[1]: node.right}, [node.left, node.right], {})
        if isinstance(node, cst.AugAssign):
            name = _AUG.get(type(node.operator))
            if name is None:
                return None
            spec = ops.OPS[name]
            return OpCall(node, spec, "operator", self, {spec.args[0]: node.target, spec.args[1]: node.value}, [node.target, node.value], {})
        if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
            return OpCall(node, ops.OPS["neg"], "operator", self, {"input": node.expression}, [node.expression], {})
        if not isinstance(node, cst.Call):
            return None
        target = self.target(node)
        namespace = target.namespace
        if namespace == "builtin":
            op = {"abs": "abs", "pow": "pow", "round": "round", "len": "len", "float": "float"}.get(target.op)
            if op is None:
                return None
            spec = ops.OPS[op]
        elif namespace in ARRAY_NAMESPACES:
            spec = ops.lookup(target.op)
            if spec is None:
                return None
        else:
            return None
        bound = bind(spec, namespace, node, target.receiver)
        if bound is None:
            return None
        args, positional, keywords = bound
        if namespace == "method" and spec.transfer in (ops.MATH, ops.ACT, ops.LOGPROB) and positional and spec.name not in ("softplus",):
            return None  # `self.log("loss", v)`, `logger.exp(...)`: not the tensor op
        if namespace == "method" and spec.transfer == ops.MATH and spec.name in ("log", "exp", "sqrt") and keywords:
            return None
        return OpCall(node, spec, namespace, self, args, positional, keywords)

    def opcall_as(self, node: cst.Call, op: str, frame: Frame | None = None) -> OpCall | None:
        """``node`` bound to the op-table entry ``op`` (for spellings the resolver files elsewhere)."""
        spec = ops.OPS.get(op)
        bound = bind(spec, "torch", node, None) if spec is not None else None
        if bound is None:
            return None
        return OpCall(node, spec, "torch", self, *bound, frame)

    def guard_constraints(self, guard: Guard, frame: Frame, holds: bool | None = None) -> list:
        holds = guard.holds if holds is None else holds
        key = (id(guard.test), holds, frame.key)
        found = self._constraints.get(key)
        if found is None:
            self._constraints[key] = []  # a guard that mentions itself
            found = guard_mod.constraints(self, frame, guard.test, holds)
            # a positive count or sum rooted in a mask says the mask is not all False
            extra = []
            for c in found:
                if c.source is not None and (c.nonzero or (c.bound == 0 and c.op in (cst.GreaterThan, cst.NotEqual))):
                    v = self.value(c.source, frame)
                    zero = v.zero
                    if zero is not None and zero.root and zero.root != c.key:
                        extra.append(guard_mod.Constraint(zero.root, not_all_zero=True, nonempty=True))
                    if v.empty is not None and v.empty.root:
                        extra.append(guard_mod.Constraint(v.empty.root, not_all_zero=True, nonempty=True))
            found = found + extra
            self._constraints[key] = found
        return found

    # ---- values ----
    def value(self, node: cst.BaseExpression | None, frame: Frame | None = None) -> Value:
        if node is None:
            return UNKNOWN
        frame = frame or self.frame
        key = (id(node), frame.key, self.masked, self.extra)
        found = self.remembered(self.memo, key)
        if found is not None:
            return found
        if self.cut(key):
            return UNKNOWN
        self._frames.append(frame)
        outer = self.enter(key)
        try:
            found = self._eval(node, frame)
            if found.grad is not False and self._without_grad(frame):
                found = replace(found, grad=False)  # computed where no gradient flows (a scheduler's step, no_grad)
        except RecursionError:
            found = UNKNOWN
        finally:
            self._frames.pop()
            self.leave(key, outer, found, self.memo)
        return found

    def _without_grad(self, frame: Frame) -> bool:
        found = self._no_grad_frames.get(frame.key)
        if found is None:
            found = self._no_grad_frames[frame.key] = self.calls.without_grad(frame)
        return found

    # ---- cycles ----
    def remembered(self, memo: dict, key) -> Value | None:
        """What ``memo`` holds for ``key``, for good or for the outermost evaluation running now."""
        found = memo.get(key)
        return found if found is not None else self._provisional.get((id(memo), key))

    def cut(self, key) -> bool:
        """``key`` is being evaluated further up (a loop's back edge, a value that reads itself): the read is
        cut, and what is computed under the cut is provisional."""
        depth = self.active.get(key)
        if depth is None:
            return False
        self._lowest_cut = min(self._lowest_cut, depth)
        return True

    def enter(self, key) -> int:
        outer = self._lowest_cut
        self._lowest_cut = _NO_CUT
        self.active[key] = len(self.active)
        return outer

    def leave(self, key, outer: int, found, memo: dict) -> None:
        """Memoize ``found``, for good when no key above this one was cut while computing it; otherwise only
        for the rest of the outermost evaluation (a later question must not see a value a cycle truncated)."""
        depth = self.active.pop(key)
        lowest = self._lowest_cut
        self._lowest_cut = min(outer, lowest) if lowest < depth else outer
        if found is None:
            return
        if lowest < depth:
            self._provisional[(id(memo), key)] = found
        else:
            memo[key] = found
        if not self.active:
            self._provisional.clear()

    def masked_out(self, node: cst.BaseExpression, frame: Frame | None = None, condition: cst.CSTNode | None = None) -> Value:
        """The value for the elements a ``where`` masks out (its ``condition`` negated; every where's when it is
        None): computed, then discarded in the forward pass, but differentiated in the backward pass."""
        saved = self.masked
        self.masked = id(condition) if condition is not None else True
        try:
            return self.value(node, frame)
        finally:
            self.masked = saved

    def _eval(self, node, frame: Frame) -> Value:
        if isinstance(node, (cst.Integer, cst.Float)):
            try:
                return d.constant(float(node.evaluated_value), node)
            except (ValueError, OverflowError):
                return UNKNOWN
        if isinstance(node, cst.Name):
            return self._name(node, frame)
        if isinstance(node, cst.Attribute):
            return self._attribute(node, frame)
        if isinstance(node, cst.Call):
            return self._call(node, frame)
        if isinstance(node, cst.BinaryOperation):
            return self._binary(node, frame)
        if isinstance(node, cst.UnaryOperation):
            return self._unary(node, frame)
        if isinstance(node, cst.Subscript):
            from nanlint.analysis.indexing import subscript

            return subscript(self, node, frame)
        if isinstance(node, cst.Comparison):
            out = mask_value(node, f"`{self.text(node)}`", self._comparison_root(node))
            if members.compares_with_own_values(self, frame, node):  # labels == c for c in unique(labels)
                out = replace(out, vanish=None, desc=f"a mask that holds a True (`{self.text(node)}` compares with its own values)")
            return out
        if isinstance(node, cst.IfExp):
            taken = self._branch_taken(node)
            if taken is not None:
                return self.value(node.body if taken else node.orelse, frame)
            return d.join(self.value(node.body, frame), self.value(node.orelse, frame))
        if isinstance(node, cst.BooleanOperation):
            return d.join(self.value(node.left, frame), self.value(node.right, frame))
        if isinstance(node, (cst.Tuple, cst.List)):
            items = tuple(self.value(e.value, frame) for e in node.elements if not isinstance(e, cst.StarredElement))
            if any(isinstance(e, cst.StarredElement) for e in node.elements):
                return Value(node=node)
            return Value(items=items, node=node, element=d.join_all(items) if items else None)
        if isinstance(node, cst.Dict):
            entries = []
            for element in node.elements:
                if isinstance(element, cst.DictElement) and isinstance(element.key, cst.SimpleString):
                    entries.append((element.key.evaluated_value, self.value(element.value, frame)))
            return Value(entries=tuple(entries), node=node)
        if isinstance(node, (cst.ListComp, cst.GeneratorExp, cst.SetComp)):
            element = self.value(node.elt, frame)
            filtered = any(comp.ifs for comp in _fors(node))
            empty = Evidence(Tier.PLAUSIBLE, f"the filtered list `{self.text(node)}` can be empty", node, "empty") if filtered else None
            return Value(element=element, empty=empty, node=node, desc=f"a list (`{self.text(node)}`)")
        if isinstance(node, cst.NamedExpr):
            return self.value(node.value, frame)
        if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
            return Value(grad=False, node=node)
        return UNKNOWN

    def emptiness_root(self, cond: cst.BaseExpression | None) -> str | None:
        """The key a guard must name to show a selection by ``cond`` is not empty: the compared name for a
        comparison (``x.flatten() > 0`` -> ``x``), else the condition's own text."""
        if cond is None:
            return None
        if isinstance(cond, cst.Comparison):
            root = self._comparison_root(cond)
            if root is not None:
                return root
        return self.text(cond)

    def _comparison_root(self, node: cst.Comparison) -> str | None:
        """The name whose emptiness the comparison's emptiness is: ``label.flatten() > 0`` is all False when
        ``label`` is all 0, so ``if np.sum(label) == 0: continue`` clears it."""
        left = node.left
        while True:
            if isinstance(left, cst.Subscript):
                left = left.value
            elif isinstance(left, cst.Call) and isinstance(left.func, cst.Attribute) and left.func.attr.value in ops.IDENTITY_METHODS:
                left = left.func.value
            else:
                break
        return self.key(left) if isinstance(left, (cst.Name, cst.Attribute)) else None



def _fors(node):
    comp = node.for_in
    while comp is not None:
        yield comp
        comp = comp.inner_for_in


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


_CHAINS = (cst.BinaryOperation, cst.BooleanOperation)
#: operator chains longer than this print as their ends (generated sums of thousands of terms)
_MAX_CHAIN = 64


def _long_chain(node: cst.CSTNode) -> bool:
    n = 0
    for side in ("left", "right"):
        part = node
        while isinstance(part, _CHAINS):
            part = getattr(part, side)
            n += 1
            if n > _MAX_CHAIN:
                return True
    return False
