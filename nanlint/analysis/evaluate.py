"""The evaluator: the abstract value of any expression, on demand, memoized.

``value(node, frame)`` dispatches on the node: literals are constants, names go through :mod:`flow` (their
reaching definitions, refined by the guards on the way), calls through the op table (or, for the file's own
functions, classes and modules, through :mod:`calls`), operators through :mod:`arith`. A *frame* is a scope
(a function, the module) with, optionally, values its parameters were given by one call site: the same
function body evaluates differently when ``entropy(F.softmax(x))`` passes it a probability.

Evaluation is lazy: only what the rules ask about, and what that depends on, is computed. Cycles (``x = f(x)``
in a loop) evaluate to unknown; so does anything nested too deeply to follow.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import libcst as cst

from nanlint.analysis import construct, domain as d, guards as guard_mod, names, optable as ops
from nanlint.analysis import arith
from nanlint.analysis.domain import UNKNOWN, Evidence, Tier, Value
from nanlint.analysis.flow import Def, FlowBuilder, Guard, ScopeFlow, is_project_call, self_key
from nanlint.analysis.opcall import OpCall, bind
from nanlint.analysis.reduce import mask_value
from nanlint.analysis import members
from nanlint.analysis.einops_ops import einops_value
from nanlint.analysis.transfer import transfer
from nanlint.analysis.syntax import literal_value
from nanlint.resolver import ImportResolver, Target, dotted

ARRAY_NAMESPACES = frozenset({"torch", "method", "numpy", "math", "tf", "jax", "scipy"})
NO_GRAD_NAMESPACES = frozenset({"numpy", "math", "scipy"})
_BINARY = {cst.Add: "add", cst.Subtract: "sub", cst.Multiply: "mul", cst.Divide: "div", cst.Power: "pow",
           cst.MatrixMultiply: "matmul", cst.FloorDivide: "floor_divide", cst.Modulo: "remainder"}
_AUG = {cst.AddAssign: "add", cst.SubtractAssign: "sub", cst.MultiplyAssign: "mul", cst.DivideAssign: "div",
        cst.PowerAssign: "pow", cst.MatrixMultiplyAssign: "matmul", cst.FloorDivideAssign: "floor_divide",
        cst.ModuloAssign: "remainder"}
_NAMED_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}
_MAX_DEPTH = 3  # call frames followed into the file's own functions
_TEST_PLAN = None


@dataclass(frozen=True, eq=False)
class Frame:
    flow: ScopeFlow
    bindings: dict | None = None  # parameter name -> Value, from one call site
    key: tuple = ()
    call: cst.Call | None = None
    caller: "Frame | None" = None
    depth: int = 0
    cls: cst.ClassDef | None = None

    @property
    def function(self) -> cst.CSTNode:
        return self.flow.node


@dataclass(frozen=True, eq=False)
class NNModule:
    """An ``nn.X(...)`` instance: calling it does ``op`` (or runs ``layers`` in order)."""

    name: str
    layers: tuple = ()
    call: cst.Call | None = None


@dataclass(frozen=True, eq=False)
class LocalFunction:
    fn: cst.FunctionDef
    cls: cst.ClassDef | None = None
    bound_self: bool = False


@dataclass(frozen=True, eq=False)
class LocalClass:
    cls: cst.ClassDef


@dataclass(frozen=True, eq=False)
class Instance:
    cls: cst.ClassDef


class Evaluator:
    def __init__(self, module: cst.Module, resolver: ImportResolver, code_for):
        from nanlint.analysis.calls import Calls
        from nanlint.analysis.scopes import Scopes

        self.module = module
        self.resolver = resolver
        self.code_for = code_for
        self.scopes = Scopes(module, resolver)
        self.calls = Calls(self)
        self.memo: dict[tuple, Value] = {}
        self.active: set[tuple] = set()
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
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Subtract):  # `maxa - mina`
            left, right = self.key(expr.left), self.key(expr.right)
            return f"{left} - {right}" if left and right else None
        if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.BitInvert, cst.Not)):  # `~keep`
            inner = self.key(expr.expression)
            return f"~{inner}" if inner else None
        if isinstance(expr, cst.Subscript):  # one entry at a literal index: `fps[-1]`, `bounds[0]`
            base = dotted(expr.value) if isinstance(expr.value, (cst.Name, cst.Attribute)) else None
            index = literal_value(expr.slice[0].slice.value) if len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index) else None
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
        found = self.memo.get(key)
        if found is not None:
            return found
        if key in self.active:
            return UNKNOWN
        self.active.add(key)
        self._frames.append(frame)
        try:
            found = self._eval(node, frame)
        except RecursionError:
            found = UNKNOWN
        finally:
            self._frames.pop()
            self.active.discard(key)
        self.memo[key] = found
        return found

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

    # ---- names ----
    def _name(self, node: cst.Name, frame: Frame) -> Value:
        name = node.value
        if name in ("True", "False"):
            return replace(d.constant(1.0 if name == "True" else 0.0, node), integer=True)
        if name == "None":
            return Value(node=node, grad=False)
        reaches = frame.flow.uses.get(id(node))
        if reaches is None:
            return self._outer(name, frame, node)
        out = None
        for definition, guards in reaches:
            carried = self._carried(definition, guards, name, frame)
            if carried:
                saved = self.extra
                self.extra = saved + carried
                try:
                    v = self.definition_value(definition, frame)
                finally:
                    self.extra = saved
            else:
                v = self.definition_value(definition, frame)
            if v is CYCLE:
                continue
            v = _rooted(v, name)
            if self.extra:
                guards = guards + self.extra
            v = self._tested(v, name, frame, definition)
            if guards:
                v = guard_mod.apply_guards(self, frame, v, name, guards)
            out = v if out is None else d.join(out, v)
        if out is None:
            return UNKNOWN
        if names.opaque(out):
            passed_on = self._passed_on(reaches, name, frame)
            if passed_on is not None:
                return passed_on
            found = names.named(name, node) or self._named_alias(name, frame, node)
            if found is not None and found.role != d.EPS and self._computed_here(reaches, frame):
                return out  # the code's own arithmetic, only imprecisely known: the name is no evidence of 0
            return found or out
        return out

    def _computed_here(self, reaches, frame: Frame) -> bool:
        """Every definition reaching the use is arithmetic the analysis followed (``counts = counts /
        counts.sum(1)``, ``counts += 1``): a name describes what the code cannot see into (a parameter, an
        attribute, a helper's result), not a value the code computed itself."""
        for definition, _ in reaches:
            value = definition.value
            if definition.kind == "aug":
                continue
            if definition.kind != "assign" or definition.path:
                return False
            if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation)):
                continue
            site = self.opcall(value, frame) if isinstance(value, cst.Call) else None
            if site is not None and site.spec.transfer not in ("identity", "detach"):
                continue  # a cast or a view is the same value: its name still speaks for it
            return False
        return True

    def _passed_on(self, reaches, name: str, frame: Frame) -> Value | None:
        """``count = broadcast(count, ref=out)``: a helper of the project that takes the name's own value and gives it
        back under the same name (a broadcast, a cast, a move to a device) is read as keeping it, so what is
        known of the value passed in (a count clamped to >= 1) wins over what the name alone would suggest."""
        found = None
        for definition, _ in reaches:
            call = definition.value
            if definition.kind != "assign" or definition.path or not is_project_call(self.resolver, call):
                return None
            passed = [a.value for a in call.args if isinstance(a.value, cst.Name) and a.value.value == name]
            if not passed:
                return None
            v = self.value(passed[0], frame)
            if names.opaque(v):
                return None
            found = v if found is None else d.join(found, v)
        return found

    def _named_alias(self, name: str, frame: Frame, node) -> Value | None:
        """``self.softmax = input``: another name the code gives the same value says what it is."""
        for definition_list in frame.flow.defs.values():
            for definition in definition_list:
                if definition.kind == "assign" and not definition.path and isinstance(definition.value, cst.Name) and definition.value.value == name:
                    found = names.named(definition.name.rpartition(".")[2], node)
                    if found is not None:
                        return found
        return None

    def _tested(self, v: Value, key: str, frame: Frame, definition: Def | None = None) -> Value:
        """The function's own code compares ``key`` with an edge (``norm == 0``, ``r >= 1``, ``x < eps``,
        even after the use, as a repair): the author knows the edge is reached. A test inside the expression
        that redefines ``key`` (``d = where(d == 0, 1, d)``) is about the old value, which it repairs."""
        tests = self.scopes_tests(frame.flow.node).get(key)
        if not tests:
            return v
        repaired = _comparisons_in(definition.value) if definition is not None and isinstance(definition.value, cst.CSTNode) else ()
        born = self.def_generation.get(id(definition.node)) if definition is not None else None
        for edge, test in tests:
            if id(test) in repaired:
                continue
            if born is not None and self.test_generation.get(id(test), 0) < born:
                continue  # the test is about an earlier value of the name, which this definition replaced
            why = f"the code itself tests `{self.text(test)}`"
            evidence = Evidence(Tier.PLAUSIBLE, why, test, "tested", root=key)
            if edge == 0.0 and v.zero is None and not v.nonzero:
                v = v.with_point(0.0, evidence)
            elif edge in (1.0, -1.0) and v.at(edge) is None:
                v = v.with_point(edge, evidence)
                if v.beyond is None:
                    v = replace(v, beyond=evidence)
        return v

    def scopes_tests(self, scope_node) -> dict:
        found = self._tests.get(id(scope_node))
        if found is None:
            found = self._tests[id(scope_node)] = _edge_tests(self, scope_node)
        return found

    def _branch_taken(self, node: cst.IfExp) -> bool | None:
        """``s = total if use_cuda else 0`` read under ``if use_cuda:``: the use's own guard on the same test
        decides which arm the value came from (True: the body, False: the else arm, None: either)."""
        test = self.text(node.test)
        for guard in self.extra:
            if guard.kind not in ("if", "while", "assert", "exit", "ifexp", "and", "or"):
                continue
            holds, _ = guard_mod.effective(self, guard)
            tested = guard.test
            while isinstance(tested, cst.UnaryOperation) and isinstance(tested.operator, cst.Not):
                tested, holds = tested.expression, not holds
            if self.text(tested) == test:
                return holds
        return None

    def _carried(self, definition: Def, guards, name: str, frame: Frame) -> tuple:
        """Guards on the way to this use that constrain what the definition was computed from (``y = x**2 - 1``
        used under ``where(x > 1, y.sqrt(), 0)``): the definition is evaluated under them too."""
        if not guards or definition.kind != "assign" or len(self.extra) > 3 or not isinstance(definition.value, cst.BaseExpression):
            return ()
        names = self._names_in(definition.value)
        out = []
        for guard in guards:
            holds, _ = guard_mod.effective(self, guard)
            keys = {c.key for c in self.guard_constraints(guard, frame, holds)}
            if name not in keys and keys & names and guard not in self.extra:
                out.append(guard)
        return tuple(out)

    def _names_in(self, expr: cst.BaseExpression) -> set[str]:
        found = self._name_sets.get(id(expr))
        if found is None:
            found = set()
            stack = [expr]
            while stack:
                node = stack.pop()
                if isinstance(node, (cst.Name, cst.Attribute)):
                    k = dotted(node)
                    if k:
                        found.add(k)
                        if isinstance(node, cst.Name):
                            continue
                for child in node.children:
                    stack.append(child)
            self._name_sets[id(expr)] = found
        return found

    def _outer(self, name: str, frame: Frame, node) -> Value:
        """A name not bound on the way here: a closure variable, a module constant, an import, a builtin."""
        flow = frame.flow
        if flow.defs.get(name):
            return self._join_defs(flow.defs[name], frame, name)
        parent = flow.parent
        while parent is not None:
            if isinstance(parent.node, cst.ClassDef):
                parent = parent.parent
                continue
            defs = parent.defs.get(name)
            if defs:
                return self._join_defs(defs, self.frame_of(parent.node), name)
            parent = parent.parent
        return UNKNOWN

    def _join_defs(self, defs: list[Def], frame: Frame, name: str) -> Value:
        out = None
        for definition in defs[-8:]:
            v = self.definition_value(definition, frame)
            if v is CYCLE:
                continue
            v = _rooted(v, name)
            out = v if out is None else d.join(out, v)
        return out or UNKNOWN

    def definition_value(self, definition: Def, frame: Frame) -> Value:
        key = (id(definition), frame.key, self.masked, self.extra)
        found = self._def_memo.get(key)
        if found is not None:
            return found
        if key in self.active:
            return CYCLE  # the back edge of a loop (s += x reads s): the join skips it, the update widens
        self.active.add(key)
        try:
            found = self._definition(definition, frame)
            if definition.no_grad:
                found = replace(found, grad=False)
        except RecursionError:
            found = UNKNOWN
        finally:
            self.active.discard(key)
        self._def_memo[key] = found
        return found

    def _definition(self, definition: Def, frame: Frame) -> Value:
        kind = definition.kind
        if kind == "assign":
            v = self.value(definition.value, frame)
            for step in definition.path:
                v = element_of(v) if step == "element" else item_of(v, step)
            return v
        if kind == "aug":
            statement = definition.value
            site = self.opcall(statement, frame)
            out = transfer(site) if site is not None else UNKNOWN
            return _accumulated(self, statement, out, frame) if site is not None else out
        if kind == "param":
            return self.calls.parameter(definition, frame)
        if kind == "entry":  # `self.x` as the method found it
            found = self.calls.class_attribute(frame.cls, definition.name.partition(".")[2]) if frame.cls is not None else None
            if found is not None:
                return found
            attr = definition.name.partition(".")[2]
            return names.named(attr, definition.node) or Value(role=d.PARAMETER, node=definition.node)
        if kind == "self":
            cls = frame.cls
            return Value(module=Instance(cls), node=definition.node) if cls is not None else UNKNOWN
        if kind == "mutate":
            return self.value(definition.value, frame)
        if kind == "subscript":
            from nanlint.analysis.indexing import subscript_write

            return subscript_write(self, definition, frame)
        if kind == "function":
            return Value(module=LocalFunction(definition.value, self.scopes.class_of(definition.value)), node=definition.node, grad=False)
        if kind == "class":
            return Value(module=LocalClass(definition.value), node=definition.node, grad=False)
        return UNKNOWN

    # ---- attributes ----
    def _attribute(self, node: cst.Attribute, frame: Frame) -> Value:
        attr = node.attr.value
        key = self_key(node)
        if key is not None:
            reaches = frame.flow.uses.get(id(node))
            if reaches is not None:
                out = None
                for definition, guards in reaches:
                    v = self.definition_value(definition, frame)
                    if v is CYCLE:
                        continue
                    v = _rooted(v, key)
                    if guards:
                        v = guard_mod.apply_guards(self, frame, v, key, guards)
                    out = v if out is None else d.join(out, v)
                if out is not None or not reaches:
                    return out or UNKNOWN
                # only the loop's own update reaches here: what the attribute held on entry is the class's
            if frame.cls is not None:
                found = self.calls.class_attribute(frame.cls, attr)
                if found is not None:
                    return _rooted(found, key)
            # set nowhere in this file: module state (a parameter, a buffer, a setting), not a per-call activation
            return names.named(attr, node) or Value(role=d.PARAMETER, node=node)
        qualified = self.resolver.qualify(node)
        if qualified is not None:
            return _module_constant(qualified, node)
        base = node.value
        if isinstance(base, cst.Call) and attr in ("eps", "tiny", "smallest_normal", "min", "max", "resolution"):
            return _finfo(self, base, attr, node)
        if attr in ("T", "mT", "H", "mH", "real", "imag"):
            return self.value(base, frame)
        if attr == "data":
            return replace(self.value(base, frame), grad=False)
        if attr in ("shape",):
            return Value(lo=1.0, integer=True, role=d.SIZE, grad=False, node=node, desc=f"the shape of `{self.text(base)}`")
        if attr in ("ndim", "size") and not isinstance(node, cst.Call):
            return Value(lo=1.0 if attr == "ndim" else 0.0, integer=True, role=d.SIZE, grad=False, node=node)
        if attr in ("values", "indices"):
            v = self.value(base, frame)
            if v.items is not None and len(v.items) == 2:
                return v.items[0 if attr == "values" else 1]
            return v if attr == "values" else Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
        if attr in ("grad",):
            owner = self.value(base, frame)
            why = f"`{self.text(node)}` is all 0 for a parameter that received no gradient"
            return Value(node=node, desc=f"the gradient `{self.text(node)}`", single=owner.single, grad=False,
                         vanish=Evidence(Tier.PLAUSIBLE, why, node, "zero-gradient", root=self.key(node)))
        if attr in ("dtype", "device", "is_cuda", "requires_grad"):
            return Value(grad=False, node=node)
        base_value = self.value(base, frame)
        if isinstance(base_value.module, Instance):
            found = self.calls.class_attribute(base_value.module.cls, attr)
            if found is not None:
                return found
        if base_value.module is None and isinstance(base, (cst.Name, cst.Attribute)):
            return names.named(attr, node) or UNKNOWN
        return UNKNOWN

    # ---- calls ----
    def _call(self, node: cst.Call, frame: Frame) -> Value:
        target = self.target(node)
        ns = target.namespace
        if target.op in ("rearrange", "repeat", "reduce"):
            qualified = self.resolver.qualify(node.func) or ""
            if qualified.startswith("einops."):
                found = einops_value(self, node, qualified, frame)
                if found is not None:
                    return found
        local = self.calls.evaluate(node, target, frame)
        if local is not None:
            return local
        if ns == "nn":
            return self.calls.nn_module(node, target, frame)
        if ns in ("method", "local", "other") and node.args and node.args[0].keyword is None and names.MOVE_CALL.search(target.op or ""):
            return replace(self.value(node.args[0].value, frame), node=node)  # c_f.to_device(x, device=...): x, elsewhere
        if ns == "method":
            op = target.op
            base = ops.canonical(op)
            if op in ops.IDENTITY_METHODS or base in ops.IDENTITY_METHODS or base in ("float", "long", "int", "bool"):
                receiver = target.receiver
                v = self.value(receiver, frame) if receiver is not None else UNKNOWN
                site = self.opcall(node, frame)
                return construct.cast(v, base, site if site is not None else _cast_site(self, node, frame))
            if op in ("parameters", "named_parameters") and not node.args:
                single = Evidence(Tier.PLAUSIBLE, "a parameter can hold a single element (a scalar weight, a bias of size 1)", node, "single")
                param = Value(role=d.PARAMETER, grad=True, node=node, desc="a parameter", single=single)
                element = param if op == "parameters" else Value(items=(Value(grad=False), param))
                return Value(element=element, node=node)
            if op in ("items", "keys", "get", "split", "join", "format", "append", "extend", "pop", "update", "copy_"):
                return UNKNOWN
        if ns == "builtin":
            out = self._builtin(node, target, frame)
            if out is not None:
                return out
        site = self.opcall(node, frame)
        if site is not None:
            if ns == "numpy" and site.spec.transfer in (ops.REDUCE, ops.NORM, ops.SPREAD) and site.arg("input") is not None:
                out = self._numpy_statistic(site, frame)
            else:
                out = transfer(site)
            if ns in NO_GRAD_NAMESPACES:
                out = replace(out, grad=False)
            return out
        if ns in ("local", "other"):
            args = [a.value for a in node.args if a.keyword is None and not a.star]
            if ("dot" in target.op.lower() or "inner" in target.op.lower()) and len(args) == 2 and self.text(args[0]) == self.text(args[1]):
                x = self.value(args[0], frame)  # a helper's dot product of a vector with itself: a squared norm
                out = Value(lo=0.0, grad=x.grad, node=node, desc=f"a squared norm (`{self.text(node)}`)", vanish=x.vanish)
                return out.with_point(0.0, x.vanish) if x.vanish is not None else out
            named = names.named_call(target.op, node, self.text(node))
            if named is not None:
                return named
        return UNKNOWN

    def _numpy_statistic(self, site: OpCall, frame: Frame) -> Value:
        """A NumPy statistic of an array nothing else is known of: NumPy code computes on data (images,
        frames, signals), which can be constant or all 0."""
        x = site.arg("input")
        v = self.value(x, frame)
        if not names.opaque(v):
            return transfer(site)
        data = names.data_argument(self.text(x), x)
        data = replace(data, desc=f"`{self.text(x)}` (a NumPy array of data)")
        key = ("numpy", id(x), frame.key)
        self.memo[(id(x), frame.key, self.masked, self.extra)] = data
        try:
            return transfer(site)
        finally:
            self.memo[(id(x), frame.key, self.masked, self.extra)] = v

    def _builtin(self, node: cst.Call, target: Target, frame: Frame) -> Value | None:
        op = target.op
        args = [a.value for a in node.args if a.keyword is None and not a.star]
        if op in ("max", "min") and len(args) >= 2:
            values = [self.value(a, frame) for a in args]
            out = values[0]
            for other in values[1:]:
                out = construct.pick(out, other, node, self.text(node), largest=op == "max")
            return out
        if op in ("sum", "max", "min") and len(args) == 1:
            seq = self.value(args[0], frame)
            element = seq.element or (d.join_all(seq.items) if seq.items else None)
            if element is None:
                return UNKNOWN
            if op == "sum":
                out = replace(element, node=node, items=None, element=None, desc=f"a sum (`{self.text(node)}`)")
                if seq.empty is not None:
                    out = out.with_point(0.0, Evidence(seq.empty.tier, f"{seq.empty.why}, and the sum of nothing is 0", node, "empty"))
                return out
            return replace(element, node=node)
        if op == "int":
            v = self.value(args[0], frame) if args else UNKNOWN
            return replace(v, integer=True, grad=False)
        if op == "range":
            nums = [self.number(a, frame) for a in args]
            start = nums[0] if len(nums) >= 2 else 0.0
            element = Value(lo=start if start is not None else -d.INF, integer=True, role=d.INDEX, grad=False, node=node)
            if start == 0:
                element = element.with_point(0.0, Evidence(Tier.PLAUSIBLE, "range starts at 0", node, "index"))
            return Value(element=element, node=node, grad=False)
        if op in ("enumerate",) and args:
            seq = self.value(args[0], frame)
            index = Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
            return Value(element=Value(items=(index, element_of(seq))), node=node)
        if op == "zip":
            return Value(element=Value(items=tuple(element_of(self.value(a, frame)) for a in args)), node=node)
        if op in ("list", "tuple", "sorted", "reversed", "set") and args:
            return self.value(args[0], frame)
        return None

    # ---- operators ----
    def _binary(self, node: cst.BinaryOperation, frame: Frame) -> Value:
        op = node.operator
        if isinstance(op, (cst.BitAnd, cst.BitOr, cst.BitXor)):
            left, right = self.value(node.left, frame), self.value(node.right, frame)
            if left.role == d.MASK or right.role == d.MASK:
                return mask_value(node, f"`{self.text(node)}`")
            return Value(integer=left.integer and right.integer, grad=False, node=node)
        site = self.opcall(node, frame)
        if site is None:
            return UNKNOWN
        value = transfer(site)
        if isinstance(op, cst.Subtract):
            key = self.key(node)
            if key is not None:  # `if maxa - mina == 0: return` guards the difference itself
                value = self.expression_guards(node, key, value, frame)
        return value

    def expression_guards(self, node: cst.BaseExpression, key: str, value: Value, frame: Frame) -> Value:
        """``value`` of a keyed expression (``fps[-1]``, ``maxa - mina``) under the guards on the path to it:
        those that reach its first name."""
        first = node
        while not isinstance(first, cst.Name):
            if isinstance(first, cst.BinaryOperation):
                first = first.left
            elif isinstance(first, (cst.Subscript, cst.Attribute)):
                first = first.value
            else:
                return value
        reaches = frame.flow.uses.get(id(first))
        if not reaches:
            return value
        out = None
        for _, guards in reaches:
            v = guard_mod.apply_guards(self, frame, value, key, guards) if guards else value
            out = v if out is None else d.join(out, v)
        return out if out is not None else value

    def _unary(self, node: cst.UnaryOperation, frame: Frame) -> Value:
        op = node.operator
        if isinstance(op, cst.Minus):
            return arith.negate(self.value(node.expression, frame), node)
        if isinstance(op, cst.Plus):
            return self.value(node.expression, frame)
        inner = self.value(node.expression, frame)
        if (isinstance(op, cst.BitInvert) and inner.role == d.MASK) or isinstance(op, cst.Not):
            return self._negated_mask(node, frame)
        return UNKNOWN

    def _negated_mask(self, node: cst.UnaryOperation, frame: Frame) -> Value:
        """``~keep``: a mask of its own, rooted in ``~keep``, so that a guard on a name bound to it
        (``drop = ~keep; if drop.any():``) clears its emptiness where the guard held."""
        key = self.key(node)
        out = mask_value(node, f"`{self.text(node)}`", root=key)
        reaches = frame.flow.uses.get(id(node.expression)) if isinstance(node.expression, cst.Name) else None
        if key is None or not reaches or len(reaches) != 1:
            return out
        guards = reaches[0][1] + self.extra
        return guard_mod.apply_guards(self, frame, out, key, guards) if guards else out


def _cast_site(ev: Evaluator, node: cst.Call, frame: Frame) -> OpCall:
    positional = [a.value for a in node.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    return OpCall(node, ops.OPS["float"], "method", ev, {}, positional, keywords, frame)


def _rooted(v: Value, key: str) -> Value:
    """Evidence that comes from this value's own emptiness is rooted in the name that holds it."""
    changes = {}
    if v.vanish is not None and v.vanish.root is None:
        changes["vanish"] = replace(v.vanish, root=key)
    if v.empty is not None and v.empty.root is None:
        changes["empty"] = replace(v.empty, root=key)
    if v.single is not None and v.single.root is None:
        changes["single"] = replace(v.single, root=key)
    if changes:
        zero = v.zero
        if zero is not None and zero.root is None and v.vanish is not None and zero is v.vanish:
            changes["points"] = tuple((p, changes["vanish"] if p == 0 else e) for p, e in v.points)
        return replace(v, **changes)
    return v


CYCLE = Value()  # a definition read while it is being evaluated: the loop's back edge, skipped by the joins


def _accumulated(ev: "Evaluator", statement: cst.AugAssign, out: Value, frame: Frame) -> Value:
    """``s += x`` computed from the value before the first pass (the back edge is skipped) is widened to
    what the loop can accumulate: a total that grows is unbounded above, one that shrinks unbounded below. Its
    other facts stay: a running sum from 0 of counts that can be 0 is 0 when every count was 0."""
    op = statement.operator
    if not isinstance(op, (cst.AddAssign, cst.SubtractAssign)) or not _may_repeat(ev, statement, frame):
        return out
    inc = ev.value(statement.value, frame)
    up, down = (inc.hi > 0, inc.lo < 0) if isinstance(op, cst.AddAssign) else (inc.lo < 0, inc.hi > 0)
    changes = {}
    if up and out.hi < math.inf:
        changes.update(hi=math.inf, hi_open=False, large=None, const=None)
    if down and out.lo > -math.inf:
        changes.update(lo=-math.inf, lo_open=False, const=None)
    return replace(out, **changes) if changes else out


def _may_repeat(ev: "Evaluator", statement: cst.AugAssign, frame: Frame) -> bool:
    """The update runs more than once: its target reads its own result (a loop's back edge), or it is an
    attribute a method updates on every call (``self.total += n``)."""
    target = statement.target
    if not isinstance(target, cst.Name):
        return isinstance(target, cst.Attribute)
    return any(r[0].node is statement for r in frame.flow.uses.get(id(target), ()))


def element_of(v: Value) -> Value:
    if v.element is not None:
        return v.element
    if v.items:
        return d.join_all(v.items)
    if v.role in (d.DATA, d.ACTIVATION, d.PROBABILITY, d.MASK, d.SIZE):
        return replace(v, items=None, empty=None)
    return UNKNOWN


def item_of(v: Value, index: int) -> Value:
    if v.items is not None and -len(v.items) <= index < len(v.items):
        return v.items[index]
    if v.element is not None:
        return v.element
    if v.role == d.SIZE:  # `n, c, h, w = x.shape`: each entry is a size, as `x.shape[0]` is
        return replace(v, items=None, desc=f"an entry of {v.desc}" if v.desc else None)
    return UNKNOWN


def _module_constant(qualified: str, node) -> Value:
    head, _, name = qualified.rpartition(".")
    if head in ("math", "numpy", "torch", "cmath", "jax.numpy") and name in _NAMED_CONSTANTS:
        value = _NAMED_CONSTANTS[name]
        if math.isnan(value):
            return Value(node=node, grad=False)
        if math.isinf(value):
            return Value(lo=value, hi=value, const=value, grad=False, node=node, role=d.LITERAL)
        return d.constant(value, node)
    if head in ("torch", "numpy") and name in ("float16", "half", "bfloat16", "float32", "float64"):
        return Value(grad=False, node=node)
    return UNKNOWN


_FINFO = {"float16": {"eps": 2 ** -10, "tiny": 2 ** -14, "min": -65504.0, "max": 65504.0},
          "bfloat16": {"eps": 2 ** -7, "tiny": 2 ** -126, "min": -3.39e38, "max": 3.39e38},
          "float32": {"eps": 2 ** -23, "tiny": 2 ** -126, "min": -3.4028234663852886e38, "max": 3.4028234663852886e38},
          "float64": {"eps": 2 ** -52, "tiny": 2 ** -1022, "min": -1.7976931348623157e308, "max": 1.7976931348623157e308}}


def _finfo(ev: Evaluator, call: cst.Call, attr: str, node) -> Value:
    func = ev.target(call)
    if func.op != "finfo":
        return names.named(attr, node) or UNKNOWN
    dtype = ev.text(call.args[0].value) if call.args else "float32"
    table = next((v for k, v in _FINFO.items() if dtype.endswith(k) or (k == "float16" and dtype.endswith("half"))), None)
    if attr in ("eps", "tiny", "smallest_normal", "resolution"):
        value = table.get("tiny" if attr == "smallest_normal" else attr, 1e-7) if table else None
        out = Value(lo=0.0, lo_open=True, role=d.EPS, grad=False, node=node, desc=f"`finfo(...).{attr}`")
        return replace(out, lo=value, hi=value, const=value) if value is not None else out
    if table is None:
        return Value(lo=-d.INF if attr == "min" else 0, grad=False, node=node, desc=f"`finfo(...).{attr}`", role=d.LITERAL,
                     hi=0 if attr == "min" else d.INF)
    return replace(d.constant(table[attr], node), desc=f"`finfo({dtype}).{attr}`")


_EDGES = (0.0, 1.0, -1.0)


def _comparisons_in(expr: cst.CSTNode) -> frozenset[int]:
    """Ids of the comparisons inside one expression."""
    found = []

    class _Collect(cst.CSTVisitor):
        def visit_Comparison(self, node: cst.Comparison) -> None:
            found.append(id(node))

    expr.visit(_Collect())
    return frozenset(found)


def _edge_tests(ev: Evaluator, scope_node) -> dict:
    """``key -> [(edge, comparison)]`` for comparisons of a name with 0, +-1 or an eps in this scope."""
    from nanlint.traversal import Plan, iter_nodes

    out: dict = {}
    global _TEST_PLAN
    if _TEST_PLAN is None:
        _TEST_PLAN = Plan({"Comparison", "FunctionDef", "Lambda", "If", "Assert", "Assign", "AugAssign", "AnnAssign"})
    plan = _TEST_PLAN
    body = getattr(scope_node, "body", None)
    if body is None or isinstance(scope_node, cst.Module):
        return out
    rejected: set[int] = set()  # `if w <= 0: raise`, `assert w > 0`: the code refuses the edge, it does not meet it
    generation: dict[str, int] = {}  # how many times each key was assigned so far, in source order
    for entering, node in iter_nodes(body, plan):
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            if not entering:
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for t in targets:
                    k = ev.key(t)
                    if k is not None:
                        generation[k] = generation.get(k, 0) + 1
                        ev.def_generation[id(node)] = generation[k]
            continue
        if entering and (isinstance(node, cst.Assert) or isinstance(node, cst.If) and _raises(node.body)):
            rejected |= _comparisons_in(node.test)
            continue
        if not entering or not isinstance(node, cst.Comparison) or len(node.comparisons) != 1 or id(node) in rejected:
            continue
        target = node.comparisons[0]
        if isinstance(target.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)):
            continue
        for side, other in ((node.left, target.comparator), (target.comparator, node.left)):
            key = ev.key(side)
            if key is None:
                continue
            number = literal_value(other)
            if number == 0 and _sign_test(target.operator, key_left=side is node.left):
                continue  # `x >= 0`, `x < 0`: the author checks the sign, which says nothing of 0 being met
            if number is None and isinstance(other, (cst.Name, cst.Attribute)) and names.EPS_NAME.search(ev.text(other)):
                number = 0.0
            if number is not None and number in _EDGES:
                out.setdefault(key, []).append((number, node))
                ev.test_generation[id(node)] = generation.get(key, 0)
    return out


def _raises(body) -> bool:
    statements = getattr(body, "body", ())
    last = statements[-1] if statements else None
    return isinstance(last, cst.SimpleStatementLine) and any(isinstance(small, cst.Raise) for small in last.body)


def _sign_test(operator, key_left: bool) -> bool:
    """Whether ``key <op> 0`` (or ``0 <op> key``) separates the negatives from [0, inf): ``>=`` and ``<``."""
    if not key_left:
        operator = {cst.GreaterThanEqual: cst.LessThanEqual, cst.LessThan: cst.GreaterThan,
                    cst.LessThanEqual: cst.GreaterThanEqual, cst.GreaterThan: cst.LessThan}.get(type(operator), type(operator))()
    return isinstance(operator, (cst.GreaterThanEqual, cst.LessThan))


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
