"""Value facts: a small abstract domain that says what an expression is, shared by every rule.

Facts are inferred lazily, on demand, when a rule asks about an expression, and memoized per node. Names
resolve through the bindings the engine records while it walks the file in source order (local and
augmented assignments, tuple unpacking, module constants, ``self.attr`` set in any method), so the fact a
rule sees at a use is the one of the latest assignment before it. Element assignments that repair a value
(``x[x == 0] = eps``) refine the fact of the name for the uses after them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from enum import IntFlag

import libcst as cst

from nanlint.resolver import ImportResolver, Target, dotted


class F(IntFlag):
    """Must-flags hold for every value; may-flags say a hazard value is reachable."""

    NONE = 0
    PROB = 1 << 0  # in [0, 1]
    NONNEG = 1 << 1  # >= 0
    POSITIVE = 1 << 2  # > 0, kept away from zero (an eps, a literal, a size)
    GUARDED = 1 << 3  # an eps was added or a clamp applied
    UNIT = 1 << 4  # in [-1, 1] (cosine, tanh, sin)
    BOUNDED = 1 << 5  # bounded above by something small (clamp(max=), tanh, sigmoid, log_softmax)
    LOGSPACE = 1 << 6  # log-probabilities (log_softmax, logsigmoid): <= 0
    COUNT = 1 << 7  # an integer count or size
    CONST = 1 << 8  # a literal number
    NORMALIZED = 1 << 9  # unit-norm vectors (F.normalize)
    EPS = 1 << 10  # a small positive constant meant as a guard (1e-8, `eps`, `finfo(dtype).eps`)
    COMPLEMENT = 1 << 12  # `1 - x` of an x we know nothing of: 0 only if x reaches 1 (bias corrections rarely do)
    SQUARE = 1 << 13  # a zero guessed only because a square is 0 where its base is (x / s**2 is rarely a hazard)
    SELECTED = 1 << 11  # computed from elements picked by a test on themselves (x[x < 1]): the domain was chosen
    ELEMENTWISE_ABS = 1 << 15  # a zero guessed only because |x| is 0 where x is: no likelier than x itself
    UNSIGNED = 1 << 14  # a zero guessed only because a sum/peak of values of unknown sign is 0 when they all are
    # may-flags
    MAY_ZERO = 1 << 16  # can realistically be exactly 0
    MAY_ONE = 1 << 17  # can be exactly +-1 (probabilities, cosines)
    MAY_NEG = 1 << 18  # can go slightly negative through rounding (1 - cos**2)
    MAY_EMPTY = 1 << 19  # a selection that can hold no element (x[mask])
    GUESS_ZERO = 1 << 20  # may be 0 by a weaker argument (a sum of values of unknown sign, an amplitude)
    GUESS = 1 << 21  # some of these facts come from a name (``cosine``, ``eps``): report with medium confidence


MUST = F.PROB | F.NONNEG | F.POSITIVE | F.GUARDED | F.UNIT | F.BOUNDED | F.LOGSPACE | F.COUNT | F.CONST | F.NORMALIZED | F.EPS | F.SELECTED
MAY = F.MAY_ZERO | F.MAY_ONE | F.MAY_NEG | F.MAY_EMPTY | F.GUESS_ZERO | F.GUESS | F.COMPLEMENT | F.SQUARE | F.UNSIGNED | F.ELEMENTWISE_ABS
ZEROISH = F.MAY_ZERO | F.GUESS_ZERO
WEAK = F.COMPLEMENT | F.SQUARE | F.UNSIGNED | F.ELEMENTWISE_ABS  # markers of how weak a guessed zero is; they travel with it
PROB_FACTS = F.PROB | F.NONNEG | F.BOUNDED | F.MAY_ZERO | F.MAY_ONE
COUNT_FACTS = F.COUNT | F.NONNEG | F.MAY_ZERO


@dataclass(frozen=True)
class Origin:
    """Where a fact comes from, for messages: "`p` is a softmax output (line 12)"."""

    what: str
    node: cst.CSTNode = field(compare=False, hash=False)


@dataclass(frozen=True)
class Fact:
    flags: F = F.NONE
    origin: Origin | None = None
    value: float | None = None  # literal numeric value, when known
    module_op: str | None = None  # the value is an nn.Module instance whose call behaves like this op

    def has(self, flags: F) -> bool:
        return bool(self.flags & flags) if flags else False

    def all(self, flags: F) -> bool:
        return (self.flags & flags) == flags

    @property
    def is_probability(self) -> bool:
        return bool(self.flags & F.PROB)

    @property
    def may_be_zero(self) -> bool:
        return bool(self.flags & F.MAY_ZERO) and not (self.flags & (F.POSITIVE | F.GUARDED))

    @property
    def is_guarded(self) -> bool:
        return bool(self.flags & (F.GUARDED | F.POSITIVE))

    @property
    def may_be_zero_guess(self) -> bool:
        """Zero is reachable by a weaker argument only (a sum of values of unknown sign, a name)."""
        return bool(self.flags & F.GUESS_ZERO) and not (self.flags & (F.POSITIVE | F.GUARDED | F.MAY_ZERO))

    @property
    def may_be_negative(self) -> bool:
        return bool(self.flags & F.MAY_NEG) and not (self.flags & (F.POSITIVE | F.NONNEG))

    @property
    def is_guess(self) -> bool:
        return bool(self.flags & F.GUESS)

    @property
    def is_nonzero(self) -> bool:
        """Known to stay away from zero: positive, or guarded and not said to reach zero."""
        return bool(self.flags & (F.POSITIVE | F.GUARDED)) and not (self.flags & (F.MAY_ZERO | F.GUESS_ZERO)) or (
            self.value is not None and self.value != 0
        )

    def with_flags(self, add: F = F.NONE, remove: F = F.NONE) -> "Fact":
        return replace(self, flags=(self.flags | add) & ~remove)


UNKNOWN = Fact()


def meet(a: Fact, b: Fact) -> Fact:
    """The fact of a value that is either a or b: must-flags both share, may-flags either has."""
    flags = (a.flags & b.flags & MUST) | ((a.flags | b.flags) & MAY)
    origin = a.origin or b.origin
    if b.flags & ZEROISH and not a.flags & ZEROISH and b.origin is not None:
        origin = b.origin  # name the branch that brings the hazard
    return Fact(flags, origin)


EPS_NAME = re.compile(r"(^|_)(eps|epsilon|tiny|smooth|smoothing|delta|min_val|min_value|stability|numerical_stab\w*)(_|$|\d)", re.I)
MASK_NAME = re.compile(r"(^|_)(mask|masks|valid|keep|pos|neg|positive|negative|sel|selected|idx|indices|weight_mask)(_|$)", re.I)
# one position along a dim (`x[batch_idx]` in a loop over the batch), not a selection that can be empty
POSITION_NAME = re.compile(r"^(batch|b|bs|sample|head|layer|step|seq|token|query|key|row|col|t|i|j|k|n)_?(idx|index)$", re.I)
COSINE_NAME = re.compile(r"(^|_)(cos|cosine|cos_theta|cos_sim|cosine_sim|cosine_similarity|costheta)(_|$)", re.I)
AMPLITUDE_CALL = re.compile(r"(amplitude|magnitude|energy|(^|_)rms($|_)|(^|_)count($|_)|(^|_)counts($|_))", re.I)

# ---- op tables (canonical op names, namespace-independent) ----
PROB_OPS = frozenset({"softmax", "sigmoid", "expit", "softmin", "gumbel_softmax", "Softmax", "Sigmoid", "Softmax2d", "Softmin", "hardsigmoid", "Hardsigmoid"})
SUM_TO_ONE_OPS = frozenset({"softmax", "softmin", "gumbel_softmax", "Softmax", "Softmax2d", "Softmin"})
RAND_OPS = frozenset({"rand", "rand_like", "uniform", "random", "random_sample"})
LOGSPACE_OPS = frozenset({"log_softmax", "logsigmoid", "LogSoftmax", "LogSigmoid"})
NONNEG_OPS = frozenset({"abs", "absolute", "square", "relu", "relu6", "ReLU", "ReLU6", "exp", "exp2", "softplus", "Softplus", "cosh", "sqrt", "rsqrt", "hypot", "fabs"})
MAY_ZERO_NONNEG_OPS = frozenset({"abs", "absolute", "square", "relu", "relu6", "ReLU", "ReLU6", "sqrt", "hypot", "fabs"})
NORM_OPS = frozenset({"norm", "vector_norm", "matrix_norm", "frobenius_norm", "nuclear_norm", "dist", "cdist", "pdist", "pairwise_distance"})
SPREAD_OPS = frozenset({"std", "var", "nanstd", "nanvar", "std_mean", "var_mean", "reduce_std", "reduce_variance"})
COUNT_OPS = frozenset({"count_nonzero", "numel", "nelement", "bincount", "histc", "nnz"})
REDUCE_OPS = frozenset({"sum", "nansum", "mean", "nanmean", "cumsum", "amax", "max", "amin", "min", "prod", "reduce_sum", "reduce_mean", "median", "logsumexp", "reduce_max"})
UNIT_OPS = frozenset({"cos", "sin", "tanh", "Tanh", "cosine_similarity", "CosineSimilarity", "hardtanh", "Hardtanh", "softsign", "erf"})
LINEAR_OPS = frozenset({"matmul", "mm", "bmm", "einsum", "dot", "vdot", "inner", "linear", "mv", "tensordot", "conv1d", "conv2d", "conv3d", "baddbmm", "addmm"})
ONES_OPS = frozenset({"ones", "ones_like", "new_ones"})
ZEROS_OPS = frozenset({"zeros", "zeros_like", "new_zeros"})
PRESERVE_METHODS = frozenset({
    "float", "double", "half", "bfloat16", "to", "type", "type_as", "detach", "clone", "contiguous", "cpu", "cuda",
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "permute", "transpose", "t", "flatten",
    "expand", "expand_as", "repeat", "gather", "index_select", "narrow", "masked_select", "flip", "roll",
    "squeeze_", "unsqueeze_", "data", "item", "tolist", "numpy", "astype", "requires_grad_", "movedim", "chunk",
    "split", "unbind", "select", "take_along_dim", "tile", "diagonal", "triu", "tril", "asarray", "array", "tensor",
    "as_tensor", "from_numpy", "stack", "cat", "concat", "concatenate", "squeeze", "atleast_1d", "broadcast_to",
    "values", "mT", "repeat_interleave", "scalar_tensor", "new_tensor",
})
SIZE_ATTRS = frozenset({"shape", "size"})
CLAMP_OPS = frozenset({"clamp", "clip", "clamp_", "clip_", "clip_by_value"})
NAMED_CONSTANTS = {"pi": 3.141592653589793, "e": 2.718281828459045, "tau": 6.283185307179586}
# the cheapest first check of a file or expression: the text of an eps guard
SMALL = 0.1  # a positive constant below this, added to a value of unknown sign, is an eps guard, not an offset


def literal_value(expr: cst.BaseExpression) -> float | None:
    """The value of a numeric literal (``1e-8``, ``-3``, ``2 ** 10`` is not folded)."""
    if isinstance(expr, (cst.Integer, cst.Float)):
        try:
            return float(expr.evaluated_value)
        except (ValueError, OverflowError):
            return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        inner = literal_value(expr.expression)
        if inner is None:
            return None
        return -inner if isinstance(expr.operator, cst.Minus) else inner
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "float" and expr.args:
        arg = expr.args[0].value
        if isinstance(arg, cst.SimpleString):
            text = arg.evaluated_value.strip().lower() if isinstance(arg.evaluated_value, str) else ""
            try:
                return float(text)
            except ValueError:
                return None
        return literal_value(arg)
    if isinstance(expr, cst.Attribute) and expr.attr.value == "inf" and dotted(expr) in ("math.inf", "np.inf", "numpy.inf", "torch.inf"):
        return float("inf")
    return None


def constant_value(expr: cst.BaseExpression | None) -> float | None:
    """Like :func:`literal_value`, and folds arithmetic on literals (``1 / 3``, ``1 - 1e-7``, ``2 ** -0.5``)
    and the named constants ``math.pi`` / ``np.pi`` / ``math.e``."""
    if expr is None:
        return None
    value = literal_value(expr)
    if value is not None:
        return value
    if isinstance(expr, cst.BinaryOperation):
        left, right = constant_value(expr.left), constant_value(expr.right)
        if left is None or right is None:
            return None
        op = expr.operator
        try:
            if isinstance(op, cst.Add):
                return left + right
            if isinstance(op, cst.Subtract):
                return left - right
            if isinstance(op, cst.Multiply):
                return left * right
            if isinstance(op, cst.Divide) and right != 0:
                return left / right
            if isinstance(op, cst.Power) and abs(right) < 64:
                result = left ** right
                return float(result) if isinstance(result, (int, float)) else None
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = constant_value(expr.expression)
        return -inner if inner is not None else None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value in ("math", "np", "numpy", "torch"):
        return NAMED_CONSTANTS.get(expr.attr.value)
    return None


def arg(call: cst.Call, index: int, keyword: str | None = None) -> cst.BaseExpression | None:
    """The call's positional argument ``index`` or keyword ``keyword``."""
    positional = 0
    for a in call.args:
        if a.keyword is not None:
            if keyword is not None and a.keyword.value == keyword:
                return a.value
            continue
        if a.star:
            return None
        if positional == index:
            return a.value
        positional += 1
    return None


_EMPTY_MODULE = cst.Module(body=[])


def source_text(node: cst.CSTNode) -> str:
    """The source text of a node, without surrounding whitespace or parentheses (for comparing expressions)."""
    name = dotted(node) if isinstance(node, cst.BaseExpression) else None
    if name is not None:
        return name
    try:
        text = _EMPTY_MODULE.code_for_node(node)
    except Exception:  # a node that cannot print on its own
        return ""
    text = " ".join(text.split())
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


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


def _strip_parens(expr: cst.BaseExpression) -> cst.BaseExpression:
    return expr


@dataclass
class Binding:
    index: int
    value: cst.BaseExpression | None  # None: bound to something unknown (a parameter, a loop variable)
    scope: "Scope"


class Scope:
    """Bindings of one function (or the module, or a class's ``self`` attributes)."""

    def __init__(self, kind: str, parent: "Scope | None" = None, node: cst.CSTNode | None = None):
        self.kind = kind
        self.parent = parent
        self.node = node
        self.bindings: dict[str, list[Binding]] = {}
        self.self_attrs: dict[str, list[Binding]] | None = None  # set for class scopes

    def bind(self, name: str, binding: Binding) -> None:
        self.bindings.setdefault(name, []).append(binding)

    def lookup(self, name: str, at: int | None) -> Binding | None:
        scope: Scope | None = self
        while scope is not None:
            found = scope.bindings.get(name)
            if found:
                if at is None or scope is not self:
                    return found[-1]
                for binding in reversed(found):
                    if binding.index < at:
                        return binding
                return None
            if scope.kind == "class":  # class bodies do not enclose their methods' names
                scope = scope.parent
                continue
            scope = scope.parent
        return None


@dataclass
class _Refinement:
    """``x[index] = value`` inside a function: repairs (or spoils) some elements of ``x``."""

    statement: cst.CSTNode
    index: cst.BaseExpression
    value: cst.BaseExpression


class Facts:
    """Answers what an expression is. One instance per file; the engine keeps its scopes up to date."""

    def __init__(self, resolver: ImportResolver):
        self.resolver = resolver
        self._memo: dict[int, Fact] = {}
        self._active: set[int] = set()
        self.counter = 0
        self._refinements: dict[int, dict[str, list[_Refinement]]] = {}
        self._order: dict[int, dict[int, int]] = {}
        self._unpackings: dict[int, dict[str, list]] = {}
        self._targets: dict[int, tuple[cst.Call, Target]] = {}
        self._synthetic: dict[tuple[int, int], cst.Subscript] = {}
        self._function_scopes: dict[int, Scope] = {}
        self._module_functions: dict[int, dict[str, cst.FunctionDef]] = {}

    # ---- public questions ----
    def of(self, expr: cst.BaseExpression, scope: Scope, at: int | None = None) -> Fact:
        key = id(expr)
        cached = self._memo.get(key)
        if cached is not None:
            return cached
        if key in self._active:  # a cycle through bindings (x = f(x) in a loop)
            return UNKNOWN
        self._active.add(key)
        try:
            fact = self._infer(expr, scope, self.counter + 1 if at is None else at)
        finally:
            self._active.discard(key)
        self._memo[key] = fact
        return fact

    def target(self, call: cst.Call, scope: Scope) -> Target:
        """What a call calls, looking through names bound to module instances (``self.act = nn.Sigmoid()``).
        Memoized per call node: every rule asks about every call."""
        key = id(call)
        found = self._targets.get(key)
        if found is not None and found[0] is call:
            return found[1]
        target = self._target(call, scope)
        self._targets[key] = (call, target)
        return target

    def _target(self, call: cst.Call, scope: Scope) -> Target:
        target = self.resolver.target(call)
        if target.namespace in ("local", "method") or (target.namespace == "other" and target.qualname is None):
            held = self._module_of(call.func, scope)
            if held is not None:
                return Target("nn", held, None, None)
        return target

    def binding_value(self, name: cst.Name, scope: Scope, at: int | None = None) -> tuple[cst.BaseExpression, Scope] | None:
        binding = scope.lookup(name.value, self.counter + 1 if at is None else at)
        if binding is None or binding.value is None:
            return None
        return binding.value, binding.scope

    def resolve(self, expr: cst.BaseExpression, scope: Scope, depth: int = 4) -> cst.BaseExpression:
        """The expression a local name (or ``self.attr``) was last bound to, followed a few steps; else ``expr``."""
        for _ in range(depth):
            if isinstance(expr, cst.Name):
                found = self.binding_value(expr, scope)
            elif isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
                binding = self._self_attr(expr.attr.value, scope)
                found = (binding.value, binding.scope) if binding is not None and binding.value is not None else None
            else:
                return expr
            if found is None:
                return expr
            expr, scope = found
        return expr

    # ---- inference ----
    def _module_of(self, func: cst.BaseExpression, scope: Scope) -> str | None:
        if isinstance(func, (cst.Name, cst.Attribute)):
            fact = self._lookup_fact(func, scope, self.counter + 1)
            if fact is not None:
                return fact.module_op
        return None

    def _lookup_fact(self, expr: cst.BaseExpression, scope: Scope, at: int) -> Fact | None:
        if isinstance(expr, cst.Name):
            binding = scope.lookup(expr.value, at)
        elif isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            binding = self._self_attr(expr.attr.value, scope)
        else:
            return None
        if binding is None:
            return None
        if binding.value is None and isinstance(expr, cst.Name):
            unpacked = self._unpacked_value(expr, binding)
            if unpacked is not None:
                fact = self.of(unpacked, binding.scope, binding.index)
            else:
                fact = self._parameter_default(expr, binding)
        elif binding.value is None:
            fact = None
        else:
            fact = self.of(binding.value, binding.scope, binding.index)
        if isinstance(expr, cst.Name):
            fact = self._refine(expr, binding, fact or UNKNOWN, scope)
        return fact

    def _parameter_default(self, name: cst.Name, binding: Binding) -> Fact | None:
        """A parameter's default value says what it usually is (``eps=1e-8``); its literal value stays
        unknown, since a caller can pass another."""
        function = binding.scope.node
        if not isinstance(function, cst.FunctionDef):
            return None
        params = function.params
        for param in (*params.posonly_params, *params.params, *params.kwonly_params):
            if param.name.value == name.value and param.default is not None:
                fact = self.of(param.default, binding.scope.parent or binding.scope, binding.index)
                # a default says the parameter is a positive setting (eps=1e-8, scale=2.0), not that it is a
                # probability or may be 0: callers pass other values, and 0 often means "off"
                flags = fact.flags & (F.POSITIVE | F.NONNEG | F.EPS | F.GUARDED) if fact.has(F.POSITIVE) else F.NONE
                return Fact(flags, Origin(f"the default of `{name.value}`", param.default) if flags else None)
        return None

    def _unpacked_value(self, name: cst.Name, binding: Binding) -> cst.BaseExpression | None:
        """``a, b = f(x)``: the engine binds ``b`` to nothing; recover ``f(x)[1]`` from the latest such
        assignment before the use (a stand-in until the engine records element bindings itself)."""
        function = binding.scope.node
        if not isinstance(function, cst.FunctionDef):
            return None
        table = _per_function(self._unpackings, function, _collect_unpackings)
        candidates = table.get(name.value)
        if not candidates:
            return None
        if len(candidates) == 1:
            best = (0, candidates[0][1], candidates[0][2])  # one unpacking of this name: no order needed
        else:
            order = self._preorder_of(function)
            use = order.get(id(name))
            if use is None:
                return None
            best = None
            for statement, value, position in candidates:
                where = order.get(id(statement), -1)
                if where < use and (best is None or where > best[0]):
                    best = (where, value, position)
            if best is None:
                return None
        key = (id(best[1]), best[2])
        node = self._synthetic.get(key)
        if node is None:
            node = cst.Subscript(value=best[1], slice=[cst.SubscriptElement(cst.Index(cst.Integer(str(best[2]))))])
            self._synthetic[key] = node
        return node

    def _local_return(self, call: cst.Call, scope: Scope, at: int) -> Fact | None:
        """The fact of what a function defined in this file returns (its single ``return``), evaluated with
        its own assignments."""
        if not isinstance(call.func, cst.Name):
            return None
        module_scope = scope
        while module_scope.parent is not None:
            module_scope = module_scope.parent
        module = module_scope.node
        if not isinstance(module, cst.Module):
            return None
        function = self._functions_of(module).get(call.func.value)
        if function is None:
            return None
        returns = _returns(function.body)
        if len(returns) != 1 or returns[0].value is None:
            return None
        inner = self._function_scopes.get(id(function))
        if inner is None:
            inner = Scope("function", module_scope, function)
            for param in (*function.params.posonly_params, *function.params.params, *function.params.kwonly_params):
                inner.bind(param.name.value, Binding(0, None, inner))
            for index, (target, value) in enumerate(_simple_assignments(function.body), start=1):
                inner.bind(target, Binding(index, value, inner))
            self._function_scopes[id(function)] = inner
        return self.of(returns[0].value, inner, 1 << 30)

    def _functions_of(self, module: cst.Module) -> dict[str, cst.FunctionDef]:
        found = self._module_functions.get(id(module))
        if found is None:
            found = {s.name.value: s for s in module.body if isinstance(s, cst.FunctionDef)}
            self._module_functions[id(module)] = found
        return found

    @staticmethod
    def _self_attr(attr: str, scope: Scope | None) -> Binding | None:
        while scope is not None and scope.kind != "class":
            scope = scope.parent
        if scope is None or scope.self_attrs is None:
            return None
        found = scope.self_attrs.get(attr)
        return found[-1] if found else None

    # ---- element assignments that repair a value: x[x == 0] = eps ----
    def _refine(self, name: cst.Name, binding: Binding, fact: Fact, scope: Scope) -> Fact:
        function = binding.scope.node
        if not isinstance(function, cst.FunctionDef):
            return fact
        table = _per_function(self._refinements, function, _collect_refinements)
        found = table.get(name.value)
        if not found:
            return fact
        order = self._preorder_of(function)
        use = order.get(id(name))
        if use is None:
            return fact
        start = _first_ordered(binding.value, order)
        for refinement in found:
            where = order.get(id(refinement.statement), -1)
            if start < where < use:
                fact = self._apply_refinement(name, fact, refinement, binding.scope)
        return fact

    def _preorder_of(self, function: cst.FunctionDef) -> dict[int, int]:
        """Each node's rank in ``function``'s source order, computed once per function."""
        order = self._order.get(id(function))
        if order is None:
            order = _preorder(function)
            self._order[id(function)] = order
        return order

    def _apply_refinement(self, name: cst.Name, fact: Fact, refinement: _Refinement, scope: Scope) -> Fact:
        index = refinement.index
        if isinstance(index, cst.Call) and self.resolver.target(index).op in ("where", "nonzero") and index.args:
            index = index.args[0].value
        value = self.of(refinement.value, scope, self.counter + 1)
        if isinstance(index, cst.Comparison) and source_text(index.left) == name.value and len(index.comparisons) == 1:
            op = index.comparisons[0].operator
            bound = constant_value(index.comparisons[0].comparator)
            bound_fact = self.of(index.comparisons[0].comparator, scope, self.counter + 1)
            catches_zero = (
                (isinstance(op, cst.Equal) and bound == 0)
                or (isinstance(op, (cst.LessThan,)) and (bound_fact.has(F.POSITIVE) or (bound is not None and bound > 0)))
                or (isinstance(op, cst.LessThanEqual) and (bound_fact.has(F.NONNEG) or (bound is not None and bound >= 0)))
            )
            if catches_zero and value.is_nonzero:
                keep = fact.flags & (F.NONNEG | F.PROB | F.UNIT | F.BOUNDED | F.COUNT)
                return Fact(keep | F.GUARDED | (F.POSITIVE if value.has(F.POSITIVE) and fact.has(F.NONNEG) else F.NONE),
                            Origin(f"`{name.value}` with its zeros replaced (`{source_text(refinement.statement).split(chr(10))[0]}`)", refinement.statement))
            return fact
        if value.value == 0 and not isinstance(index, (cst.SimpleString, cst.Integer, cst.Slice, cst.ConcatenatedString)):
            return fact.with_flags(F.MAY_ZERO, F.POSITIVE | F.GUARDED)  # x[mask] = 0
        return fact

    def _infer(self, expr: cst.BaseExpression, scope: Scope, at: int) -> Fact:
        value = constant_value(expr)
        if value is not None:
            flags = F.CONST
            if value > 0:
                flags |= F.POSITIVE | F.NONNEG
                if value < SMALL:
                    flags |= F.EPS
            elif value == 0:
                flags |= F.NONNEG | F.MAY_ZERO
            if 0 <= value <= 1:
                flags |= F.PROB
            if -1 <= value <= 1:
                flags |= F.UNIT
            return Fact(flags, None, value)
        if isinstance(expr, cst.Name):
            found = self._lookup_fact(expr, scope, at)
            if not self._opaque(expr, found, scope, at):
                if found is not None and EPS_NAME.search(expr.value) and not found.flags & (ZEROISH | F.MAY_NEG) and found.value is None:
                    # `eps = scale(eps, shape)`: still an eps, unless its value is known to reach 0
                    return found.with_flags(F.POSITIVE | F.GUARDED | F.NONNEG | F.EPS)
                return found or UNKNOWN
            return self._named(expr.value, expr) or found or UNKNOWN
        if isinstance(expr, cst.Attribute):
            attr = expr.attr.value
            if attr in ("eps", "tiny", "smallest_normal") and isinstance(expr.value, cst.Call):
                return Fact(F.POSITIVE | F.GUARDED | F.NONNEG | F.EPS, Origin(f"`finfo(...).{attr}`", expr))
            if attr in PRESERVE_METHODS or attr == "T":  # x.data, x.T, x.values
                return self.of(expr.value, scope, at)
            found = self._lookup_fact(expr, scope, at)
            if found is not None and (found.flags or found.module_op or found.value is not None):
                return found
            return self._named(attr, expr) or found or UNKNOWN
        if isinstance(expr, cst.Subscript):
            base = expr.value
            if isinstance(base, cst.Attribute) and base.attr.value in SIZE_ATTRS:
                return Fact(F.COUNT | F.NONNEG | F.POSITIVE, Origin("a size", expr))
            if isinstance(base, cst.Call) and isinstance(base.func, cst.Attribute) and base.func.attr.value == "size":
                return Fact(F.COUNT | F.NONNEG | F.POSITIVE, Origin("a size", expr))
            if len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index) and isinstance(expr.slice[0].slice.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
                return UNKNOWN  # a dict entry (state["exp_avg_sq"]) says nothing of the other entries
            if isinstance(base, cst.Call) and isinstance(base.func, cst.Name) and len(expr.slice) == 1 and isinstance(expr.slice[0].slice, cst.Index):
                position = constant_value(expr.slice[0].slice.value)
                element = self._returned_element(base, position, scope, at) if position is not None else None
                if element is not None:
                    return element
            inner = self.of(base, scope, at)
            if self._is_mask_index(expr, scope, at):
                index = expr.slice[0].slice.value
                if isinstance(index, cst.Comparison) and source_text(index.left) == source_text(base):
                    return Fact(F.SELECTED | (inner.flags & (F.NONNEG | F.PROB)) | F.MAY_EMPTY, inner.origin)
                return inner.with_flags(F.MAY_EMPTY)
            return inner.with_flags(remove=F.MAY_EMPTY)
        if isinstance(expr, cst.Call):
            return self._call(expr, scope, at)
        if isinstance(expr, cst.BinaryOperation):
            return self._binary(expr, scope, at)
        if isinstance(expr, cst.UnaryOperation):
            inner = self.of(expr.expression, scope, at)
            if isinstance(expr.operator, cst.Minus):
                flags = (F.BOUNDED if inner.has(F.NONNEG) else F.NONE) | (inner.flags & (ZEROISH | F.UNIT | F.GUARDED | F.GUESS))
                if inner.has(F.POSITIVE):
                    flags |= F.GUARDED
                return Fact(flags, inner.origin)
            return inner
        if isinstance(expr, cst.IfExp):
            return meet(self.of(expr.body, scope, at), self.of(expr.orelse, scope, at))
        if isinstance(expr, cst.Comparison):
            return Fact(F.NONNEG | F.PROB | F.MAY_ZERO | F.MAY_ONE, Origin("a comparison", expr))
        return UNKNOWN

    def _opaque(self, name: cst.Name, found: Fact | None, scope: Scope, at: int) -> bool:
        """A name says more than its value when the value is a lookup or a call we know nothing of
        (``group["eps"]``, ``cfg.eps``, ``outputs.float()``), or a parameter."""
        if found is not None and (found.flags & ~F.CONST or found.module_op):
            return False
        binding = scope.lookup(name.value, at)
        if binding is None or binding.value is None:
            return True
        return isinstance(binding.value, (cst.Subscript, cst.Attribute, cst.Call, cst.Name))

    def _named(self, name: str, node: cst.CSTNode) -> Fact | None:
        """What a value's name says, when nothing else is known about it."""
        if EPS_NAME.search(name):
            return Fact(F.POSITIVE | F.GUARDED | F.NONNEG | F.EPS, Origin(f"`{name}`", node))
        if COSINE_NAME.search(name):
            return Fact(F.UNIT | F.BOUNDED | F.MAY_ONE | F.GUESS, Origin(f"`{name}` (by its name, a cosine)", node))
        return None

    def _is_mask_index(self, expr: cst.Subscript, scope: Scope, at: int) -> bool:
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return False
        index = expr.slice[0].slice.value
        if isinstance(index, cst.Comparison):
            return True
        if isinstance(index, cst.Name) and MASK_NAME.search(index.value) and not POSITION_NAME.search(index.value):
            return True
        if isinstance(index, cst.Name):
            found = self._lookup_fact(index, scope, at)
            return bool(found and found.origin and found.origin.what == "a comparison")
        return False

    def _call(self, call: cst.Call, scope: Scope, at: int) -> Fact:
        target = self.target(call, scope)
        op, ns = target.op, target.namespace

        if ns == "nn" and call.func is not None and target.qualname is not None:
            # constructing a module: remember what calling it does
            if op == "Sequential":
                last = self._sequential_last(call)
                return Fact(module_op=last)
            return Fact(module_op=op)
        if ns in ("nn",) and target.qualname is None:
            # calling a held module instance
            return self._op_fact(op, call, scope, at, target)
        if ns in ("local", "other"):
            return self._named_call(op, call, scope, at)
        if not (target.is_array_op or ns in ("builtin",)):
            return UNKNOWN
        return self._op_fact(op, call, scope, at, target)

    def _returned_element(self, call: cst.Call, position: float, scope: Scope, at: int) -> Fact | None:
        if self.target(call, scope).namespace != "local":
            return None
        module_scope = scope
        while module_scope.parent is not None:
            module_scope = module_scope.parent
        if not isinstance(module_scope.node, cst.Module):
            return None
        function = self._functions_of(module_scope.node).get(call.func.value)
        if function is None:
            return None
        returns = _returns(function.body)
        if len(returns) != 1 or not isinstance(returns[0].value, cst.Tuple):
            return None
        elements = returns[0].value.elements
        index = int(position)
        if not 0 <= index < len(elements) or isinstance(elements[index], cst.StarredElement):
            return None
        self._local_return(call, scope, at)  # builds the function's scope
        inner = self._function_scopes.get(id(function))
        return self.of(elements[index].value, inner, 1 << 30) if inner is not None else None

    def _named_call(self, op: str, call: cst.Call, scope: Scope, at: int) -> Fact:
        """A project's own function: its name can say it returns a magnitude (``compute_amplitude``) or a
        squared norm (``batched_dot_product(w, w)``)."""
        if "dot" in op.lower():
            first, second = arg(call, 0), arg(call, 1)
            if first is not None and second is not None and source_text(first) == source_text(second):
                return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"a squared norm (`{op}` of a vector with itself)", call))
        if isinstance(call.func, cst.Name) and self.resolver.target(call).namespace == "local":
            returned = self._local_return(call, scope, at)
            if returned is not None and returned.flags:
                return returned
        if AMPLITUDE_CALL.search(op) and not any(self.of(a.value, scope, at).has(F.EPS) for a in call.args):
            return Fact(F.NONNEG | F.GUESS_ZERO | F.GUESS, Origin(f"an amplitude (`{op}`), 0 for a silent or all-zero input", call))
        return UNKNOWN

    def _sequential_last(self, call: cst.Call) -> str | None:
        layers = [a.value for a in call.args if a.keyword is None and not a.star]
        if not layers or not isinstance(layers[-1], cst.Call):
            return None
        return self.resolver.target(layers[-1]).op

    def _subject(self, call: cst.Call, target: Target, scope: Scope, at: int) -> Fact:
        """The fact of the tensor an op acts on: the receiver of a method, else the first argument."""
        node = self.subject_node(call, target)
        return self.of(node, scope, at) if node is not None else UNKNOWN

    @staticmethod
    def subject_node(call: cst.Call, target: Target) -> cst.BaseExpression | None:
        if target.namespace == "method" and target.receiver is not None:
            return target.receiver
        first = arg(call, 0, "input")
        if first is None:
            first = arg(call, 0, "x")
        return first

    def _second(self, call: cst.Call, target: Target, keyword: str = "other") -> cst.BaseExpression | None:
        return arg(call, 0, keyword) if target.namespace == "method" else arg(call, 1, keyword)

    def _op_fact(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        what = f"a `{op}` output"
        origin = Origin(what, call)
        base = target.base_op
        if op in PROB_OPS:
            return Fact(PROB_FACTS, origin)
        if op == "epsilon" and not call.args:  # keras.backend.epsilon()
            return Fact(F.POSITIVE | F.GUARDED | F.NONNEG | F.EPS, Origin("`epsilon()`", call))
        if op in RAND_OPS and target.namespace != "method":
            return Fact(F.PROB | F.NONNEG | F.MAY_ZERO, Origin("`torch.rand` noise", call))
        if op in LOGSPACE_OPS:
            return Fact(F.LOGSPACE | F.BOUNDED, origin)
        if op == "normalize":
            return Fact(F.NORMALIZED | F.BOUNDED | F.UNIT, origin)
        if op in UNIT_OPS:
            return Fact(F.UNIT | F.BOUNDED | F.MAY_ONE | (F.MAY_ZERO if op != "cos" else F.NONE), origin)
        if op == "sign":
            return Fact(F.UNIT | F.BOUNDED | F.MAY_ZERO | F.MAY_ONE, Origin("a `sign` output (0 at 0)", call))
        if op in NORM_OPS:
            return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"a norm (`{op}`)", call))
        if op in SPREAD_OPS:
            return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"a `{op}`", call))
        if op in COUNT_OPS or (op == "len" and target.namespace == "builtin"):
            subject = arg(call, 0)
            if op == "len":
                may_zero = subject is not None and self._maybe_empty_collection(subject, scope, at)
            elif op in ("numel", "nelement", "size"):
                # a tensor's element count is 0 only for an empty selection
                may_zero = self._subject(call, target, scope, at).has(F.MAY_EMPTY)
            else:
                may_zero = True
            flags = F.COUNT | F.NONNEG | (F.MAY_ZERO if may_zero else F.POSITIVE)
            return Fact(flags, Origin(f"a count (`{op}`)", call))
        if op in ("size", "dim", "ndimension") and target.namespace == "method":
            return Fact(F.COUNT | F.NONNEG | F.POSITIVE, Origin("a size", call))
        if op in ONES_OPS or (op in ("full", "full_like", "new_full") and self._fill_positive(call, target, scope, at)):
            return Fact(F.POSITIVE | F.NONNEG | F.GUARDED, Origin(f"`{op}`", call))
        if op in ZEROS_OPS:
            return Fact(F.NONNEG | F.MAY_ZERO | F.PROB, Origin(f"`{op}`", call))
        if op in ("tensor", "as_tensor", "scalar_tensor", "new_tensor", "asarray", "array", "float32", "float64") and call.args:
            first = arg(call, 0, "data")
            if first is not None and (constant_value(first) is not None or isinstance(first, (cst.Name, cst.Attribute))):
                return self.of(first, scope, at)  # torch.tensor(1.0), torch.tensor(eps)
        if op in CLAMP_OPS or base in ("clamp_min", "clamp_max", "maximum", "fmax", "max", "minimum", "min", "where", "threshold", "masked_fill"):
            return self._guard_op(base if base in ("clamp_min", "masked_fill") else op, call, scope, at, target)
        if base in ("mul", "multiply", "div", "divide", "true_divide", "add", "sub", "subtract"):
            other = self._second(call, target)
            if other is not None:
                left = self.subject_node(call, target)
                if left is not None:
                    operator = {"mul": cst.Multiply(), "multiply": cst.Multiply(), "div": cst.Divide(), "divide": cst.Divide(),
                                "true_divide": cst.Divide(), "add": cst.Add(), "sub": cst.Subtract(), "subtract": cst.Subtract()}[base]
                    return self._combine(self.of(left, scope, at), self.of(other, scope, at), operator, left, other, call)
        if op in LINEAR_OPS:
            return self._linear(op, call, scope, at, target)
        if op in ("log", "log2", "log10", "log1p"):
            return self._log_fact(op, call, scope, at, target)
        if op == "exp":
            x = self.subject_node(call, target)
            if isinstance(x, cst.UnaryOperation) and isinstance(x.operator, cst.Minus) and self.of(x.expression, scope, at).has(F.NONNEG):
                return Fact(F.PROB | F.NONNEG | F.BOUNDED | F.MAY_ONE, Origin("`exp(-x)` of x >= 0, in (0, 1]", call))
        if op in NONNEG_OPS:
            flags = F.NONNEG | (F.MAY_ZERO if op in MAY_ZERO_NONNEG_OPS else F.NONE)
            if op in ("sqrt", "abs", "absolute", "fabs"):
                inner = self._subject(call, target, scope, at)
                flags = F.NONNEG | (inner.flags & (ZEROISH | F.POSITIVE | F.GUARDED | F.GUESS | F.SELECTED | WEAK))
                if op != "sqrt" and not inner.flags & (F.POSITIVE | F.GUARDED | F.SELECTED | ZEROISH):
                    flags |= F.GUESS_ZERO | F.ELEMENTWISE_ABS  # |x| is 0 exactly where x is: as likely as x itself
                return Fact(flags, inner.origin if inner.flags & ZEROISH and inner.origin else origin)
            return Fact(flags, origin)
        if op in REDUCE_OPS:
            return self._reduce(op, call, scope, at, target)
        if op in ("pow", "float_power"):
            exponent = arg(call, 1, "exponent") if target.namespace != "method" else arg(call, 0, "exponent")
            return self._power(self._subject(call, target, scope, at), exponent, scope, at, call)
        if op in ("topk", "sort", "kthvalue", "msort", "cummax"):
            inner = self._subject(call, target, scope, at)  # the values keep their facts (indices are ints)
            if op == "topk" and self._sums_to_one(inner, scope):
                return inner.with_flags(F.POSITIVE)  # the top values of a distribution over n are >= 1/n
            return inner
        if op in PRESERVE_METHODS or op in ("nan_to_num",):
            if op in ("stack", "cat", "concat", "concatenate", "tensor", "as_tensor", "array", "asarray"):
                return UNKNOWN
            return self._subject(call, target, scope, at)
        return UNKNOWN

    def _peak_of_unit_circle(self, call: cst.Call, target: Target, scope: Scope) -> bool:
        """``v.abs().max(-1)`` where ``v = stack([t.cos(), t.sin()], -1)``: cos and sin of one angle are never both 0."""
        node = self.subject_node(call, target)
        if not isinstance(node, cst.Call):
            return False
        inner_target = self.target(node, scope)
        if inner_target.base_op not in ("abs", "absolute"):
            return False
        vector = self.resolve(self.subject_node(node, inner_target) or node, scope)
        if not isinstance(vector, cst.Call) or self.target(vector, scope).op not in ("stack", "cat", "concatenate"):
            return False
        items = arg(vector, 0, "tensors")
        if not isinstance(items, (cst.List, cst.Tuple)):
            return False
        angles: dict[str, set[str]] = {}
        for element in items.elements:
            if isinstance(element.value, cst.Call):
                element_target = self.target(element.value, scope)
                if element_target.base_op in ("cos", "sin"):
                    angle = self.subject_node(element.value, element_target)
                    if angle is not None:
                        angles.setdefault(source_text(angle), set()).add(element_target.base_op)
        return any(ops == {"cos", "sin"} for ops in angles.values())

    def _sums_to_one(self, fact: Fact, scope: Scope) -> bool:
        """A softmax output: its values sum to 1 along a dim, so their peak (max, top-k values) is never 0."""
        if not fact.has(F.PROB) or fact.origin is None or not isinstance(fact.origin.node, cst.Call):
            return False
        return self.target(fact.origin.node, scope).op in SUM_TO_ONE_OPS

    def _fill_positive(self, call: cst.Call, target: Target, scope: Scope, at: int) -> bool:
        fill = arg(call, 1, "fill_value") if target.namespace != "method" else arg(call, 1, "fill_value")
        return fill is not None and self.of(fill, scope, at).has(F.POSITIVE)

    def _reduce(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        inner = self._subject(call, target, scope, at)
        what = f"a `{op}` output"
        if op in ("mean", "nanmean", "amax", "amin", "max", "min", "median", "reduce_mean", "reduce_max"):
            keep = inner.flags & (F.PROB | F.NONNEG | F.POSITIVE | F.GUARDED | ZEROISH | F.UNIT | F.BOUNDED | F.GUESS | WEAK)
        else:
            keep = inner.flags & (F.NONNEG | F.POSITIVE | F.GUARDED | ZEROISH | F.COUNT | F.GUESS | WEAK)
            if inner.has(F.PROB) and not inner.has(F.COUNT) and not (target.namespace == "method" and self._looks_like_mask(target.receiver)):
                # a sum of probabilities is 0 only when every term underflows
                keep = (keep & ~ZEROISH) | F.NONNEG
            if inner.has(F.COUNT) or (target.namespace == "method" and self._looks_like_mask(target.receiver)):
                keep |= F.COUNT | F.NONNEG | F.MAY_ZERO
        keep &= ~(F.COMPLEMENT | F.ELEMENTWISE_ABS)  # a sum of `1 - x` terms is a sum of values of unknown sign: its own guess
        # (and the peak of |x| is a scale that is 0 for an all-zero input: a guess of its own, unlike |x| itself)
        if op == "logsumexp":
            keep &= ~ZEROISH
        elif op in ("prod", "cumsum", "amin", "min", "median"):
            pass  # zero where the values are; no guess of their own
        elif not keep & (F.POSITIVE | F.GUARDED | F.MAY_ZERO) and op not in ("mean", "nanmean", "reduce_mean") and not inner.has(F.NONNEG) and not inner.has(F.LOGSPACE) and target.namespace != "builtin":
            # a sum or peak of values of unknown sign: 0 when every element is (an empty mask, a silent signal)
            keep |= F.GUESS_ZERO | F.UNSIGNED
        if op in ("max", "amax", "reduce_max") and (self._sums_to_one(inner, scope) or self._peak_of_unit_circle(call, target, scope)):
            keep |= F.POSITIVE  # the peak of a distribution over n values is >= 1/n; max(|cos t|, |sin t|) >= 1/sqrt(2)
        if not keep:
            return UNKNOWN
        if inner.origin and keep & (F.MAY_ZERO | F.PROB | F.NONNEG):
            description = f"a `{op}` of {inner.origin.what}"
        else:
            description = f"a `{op}`" + (" of values of unknown sign (0 when they all are)" if keep & F.GUESS_ZERO else "")
        return Fact(F(keep), Origin(description, call))

    def _linear(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        """matmul / einsum / linear: a cosine when both sides are unit vectors; 0 when a side is 0; an eps added
        inside does not keep the output away from 0 (a row of the other side can be 0)."""
        operands = [a.value for a in call.args if a.keyword is None and not a.star and not isinstance(a.value, cst.SimpleString)]
        if target.namespace == "method" and target.receiver is not None:
            operands = [target.receiver, *operands]
        facts = [self.of(o, scope, at) for o in operands[:3]]
        if len(facts) >= 2 and facts[0].has(F.NORMALIZED) and facts[1].has(F.NORMALIZED):
            return Fact(F.UNIT | F.BOUNDED | F.MAY_ONE, Origin("a cosine (a product of normalized vectors)", call))
        if any(f.has(F.MAY_ZERO) and not f.is_guarded for f in facts):
            flags = F.MAY_ZERO | (F.NONNEG if all(f.has(F.NONNEG) for f in facts) else F.NONE)
            zero = next(f for f in facts if f.has(F.MAY_ZERO))
            return Fact(flags, zero.origin or Origin(f"a `{op}`", call))
        if any(f.has(F.NONNEG) for f in facts):
            flags = F.GUESS_ZERO | (F.NONNEG if all(f.has(F.NONNEG) for f in facts) else F.NONE)
            return Fact(flags, Origin(f"a `{op}` of non-negative values (0 where the other factor is; an eps inside it does not guard the result)", call))
        return UNKNOWN

    def _log_fact(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        operand = self.subject_node(call, target)
        if operand is None:
            return UNKNOWN
        inner = self.of(operand, scope, at)
        if op == "log1p":
            if inner.has(F.POSITIVE):
                return Fact(F.POSITIVE | F.NONNEG, None)
            if inner.has(F.NONNEG):
                return Fact(F.NONNEG | (inner.flags & ZEROISH), Origin("a `log1p` of a value that may be 0", call))
            return Fact(F.GUESS_ZERO, Origin("a `log1p` (0 where its input is 0)", call))
        if inner.has(F.PROB) and not inner.has(F.POSITIVE):
            return Fact(F.LOGSPACE | F.BOUNDED | F.MAY_ZERO, Origin(f"a `{op}` of {inner.origin.what if inner.origin else 'a probability'}", call))
        shifted = _plus_constant(operand)
        if shifted is not None:
            rest, constant = shifted
            rest_fact = self.of(rest, scope, at)
            if constant > 1 and rest_fact.has(F.NONNEG):
                return Fact(F.POSITIVE | F.NONNEG, None)
            if constant == 1:
                if rest_fact.has(F.POSITIVE):
                    return Fact(F.POSITIVE | F.NONNEG, None)
                if rest_fact.has(F.NONNEG):
                    return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"`{op}(1 + x)`, 0 where x is 0", call))
                return Fact(F.GUESS_ZERO, Origin(f"`{op}(x + 1)`, 0 where x is 0", call))
        return UNKNOWN

    def _looks_like_mask(self, expr: cst.BaseExpression | None) -> bool:
        if isinstance(expr, cst.Name):
            return bool(MASK_NAME.search(expr.value))
        if isinstance(expr, cst.Attribute):
            return bool(MASK_NAME.search(expr.attr.value))
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("float", "long", "int", "sum", "to", "type"):
            return self._looks_like_mask(expr.func.value)
        if isinstance(expr, (cst.Comparison,)):
            return True
        return False

    def _maybe_empty_collection(self, expr: cst.BaseExpression, scope: Scope, at: int) -> bool:
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            return any(f.ifs for f in _comp_fors(expr))
        if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "filter":
            return True
        if isinstance(expr, cst.Name):
            found = self.binding_value(expr, scope, at)
            if found is not None:
                return self._maybe_empty_collection(found[0], found[1], at)
        return False

    # ---- guards: where, clamp, max ----
    def where_fact(self, cond: cst.BaseExpression, a: cst.BaseExpression, b: cst.BaseExpression, scope: Scope, at: int, node: cst.CSTNode) -> Fact:
        """``where(cond, a, b)``: a guard when each branch is away from zero where it is selected, for example
        ``where(x == 0, ones_like(x), x)`` or ``where(x.abs() > eps, x, eps)``."""
        fa, fb = self.of(a, scope, at), self.of(b, scope, at)
        true_nonzero, false_nonzero, positive_true, positive_false = self._condition_guards(cond, scope, at)
        a_text, b_text = source_text(a), source_text(b)
        a_ok = fa.is_nonzero or (a_text in true_nonzero)
        b_ok = fb.is_nonzero or (b_text in false_nonzero)
        if a_ok and b_ok:
            flags = F.GUARDED
            a_pos = fa.has(F.POSITIVE) or a_text in positive_true
            b_pos = fb.has(F.POSITIVE) or b_text in positive_false
            if a_pos and b_pos:
                flags |= F.POSITIVE | F.NONNEG
            flags |= fa.flags & fb.flags & (F.NONNEG | F.PROB | F.UNIT | F.BOUNDED)
            return Fact(flags, Origin("a `where` guard", node))
        merged = meet(fa, fb)
        if a_text in true_nonzero or a_text in positive_true:
            merged = meet(fa.with_flags(remove=ZEROISH | F.MAY_NEG), fb)
        if b_text in false_nonzero or b_text in positive_false:
            merged = meet(fa, fb.with_flags(remove=ZEROISH | F.MAY_NEG))
        return merged

    def _condition_guards(self, cond: cst.BaseExpression, scope: Scope, at: int) -> tuple[set[str], set[str], set[str], set[str]]:
        """Texts of the expressions a condition keeps away from zero (nonzero) or above zero (positive), in
        the branch taken when it holds and in the other one."""
        true_nz: set[str] = set()
        false_nz: set[str] = set()
        true_pos: set[str] = set()
        false_pos: set[str] = set()
        if isinstance(cond, cst.Name):
            found = self.binding_value(cond, scope, at)
            if found is not None and isinstance(found[0], cst.Comparison):
                cond = found[0]
        if not isinstance(cond, cst.Comparison) or len(cond.comparisons) != 1:
            return true_nz, false_nz, true_pos, false_pos
        left, op, right = cond.left, cond.comparisons[0].operator, cond.comparisons[0].comparator
        lv, rv = constant_value(left), constant_value(right)
        lf = self.of(left, scope, at) if lv is None else None
        rf = self.of(right, scope, at) if rv is None else None
        # normalize to "subject op bound"
        flipped = {cst.GreaterThan: cst.LessThan, cst.LessThan: cst.GreaterThan, cst.GreaterThanEqual: cst.LessThanEqual,
                   cst.LessThanEqual: cst.GreaterThanEqual, cst.Equal: cst.Equal, cst.NotEqual: cst.NotEqual}
        if lv is not None or (lf is not None and lf.has(F.CONST | F.EPS)):
            subject, bound_value, bound_fact, kind = right, lv, lf, flipped.get(type(op))
        else:
            subject, bound_value, bound_fact, kind = left, rv, rf, type(op)
        if kind is None:
            return true_nz, false_nz, true_pos, false_pos
        nonneg_bound = (bound_value is not None and bound_value >= 0) or (bound_fact is not None and bound_fact.has(F.NONNEG))
        pos_bound = (bound_value is not None and bound_value > 0) or (bound_fact is not None and bound_fact.has(F.POSITIVE))
        inner = _abs_operand(subject)
        texts = {source_text(subject)} if inner is None else {source_text(inner)}
        if kind is cst.GreaterThan and nonneg_bound or kind is cst.GreaterThanEqual and pos_bound:
            true_nz |= texts
            if inner is None:
                true_pos |= texts
        elif kind is cst.NotEqual and bound_value == 0:
            true_nz |= texts
        elif kind is cst.Equal and bound_value == 0:
            false_nz |= texts
        elif kind is cst.LessThanEqual and nonneg_bound or kind is cst.LessThan and pos_bound:
            false_nz |= texts
            if inner is None:
                false_pos |= texts
        return true_nz, false_nz, true_pos, false_pos

    def _guard_op(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        subject = self._subject(call, target, scope, at)
        if op == "where":
            cond, a, b = arg(call, 0, "condition"), arg(call, 1, "input"), arg(call, 2, "other")
            if cond is None or a is None or b is None:
                return UNKNOWN
            return self.where_fact(cond, a, b, scope, at, call)
        if op == "masked_fill":
            if target.namespace != "method" or target.receiver is None:
                return UNKNOWN
            cond, value = arg(call, 0, "mask"), arg(call, 1, "value")
            if cond is None or value is None:
                return UNKNOWN
            return self.where_fact(cond, value, target.receiver, scope, at, call)
        if op in ("clamp_max", "clamp_max_"):
            return Fact((subject.flags & MUST) | F.BOUNDED | (subject.flags & ZEROISH), subject.origin)
        if op in ("max", "maximum", "fmax", "clamp_min", "clamp_min_", "threshold") and target.namespace in ("builtin", "torch", "numpy", "method", "tf", "jax", "math"):
            other = arg(call, 1, "other") if target.namespace != "method" else arg(call, 0, "other")
            if op in ("clamp_min", "clamp_min_"):
                other = arg(call, 0, "min") if target.namespace == "method" else arg(call, 1, "min")
            if op == "max" and target.namespace == "builtin" and other is not None:
                # max(a, b) is symmetric: a positive side makes it positive
                first = self.of(arg(call, 0), scope, at)
                second = self.of(other, scope, at)
                if first.has(F.POSITIVE) and not second.has(F.POSITIVE):
                    return self._lower_bound(second, first, call)
                return self._lower_bound(first, second, call)
            if op == "max" and (other is None or _is_dim_argument(call, other)):
                return self._reduce("max", call, scope, at, target)  # x.max(), torch.max(x, 1), x.max(dim=-1)
            return self._lower_bound(subject, self.of(other, scope, at), call)
        if op in ("min", "minimum"):
            other = arg(call, 1, "other") if target.namespace != "method" else arg(call, 0, "other")
            if target.namespace == "builtin" and other is not None:
                first, second = self.of(arg(call, 0), scope, at), self.of(other, scope, at)
                flags = first.flags & second.flags & (F.NONNEG | F.PROB)
                flags |= (first.flags | second.flags) & (ZEROISH | F.MAY_NEG)
                origin = second.origin if second.flags & ZEROISH else first.origin
                return Fact(flags | F.BOUNDED, origin)
            if other is None or _is_dim_argument(call, other):
                return self._reduce("min", call, scope, at, target)
            return Fact((subject.flags & (F.NONNEG | F.PROB | F.MAY_ZERO)) | F.BOUNDED, subject.origin)
        # clamp / clip
        if target.namespace == "method":
            low, high = arg(call, 0, "min"), arg(call, 1, "max")
        else:
            low, high = arg(call, 1, "min"), arg(call, 2, "max")
            if low is None:
                low = arg(call, 1, "a_min") or arg(call, 1, "clip_value_min")
                high = high or arg(call, 2, "a_max") or arg(call, 2, "clip_value_max")
        fact = subject
        if low is not None and not _is_none(low):
            fact = self._lower_bound(subject, self.of(low, scope, at), call)
        if high is not None and not _is_none(high):
            hv = _bound_value(high, scope, at, self, upper=True)
            lv = _bound_value(low, scope, at, self, upper=False) if low is not None else None
            flags = fact.flags | F.BOUNDED
            if lv is not None and hv is not None and -1 < lv and hv < 1:
                flags = (flags | F.GUARDED | F.UNIT) & ~F.MAY_ONE
            elif hv is not None and hv <= 1 and lv is not None and lv >= -1:
                flags |= F.UNIT
            fact = Fact(flags, fact.origin)
        return fact

    def _lower_bound(self, subject: Fact, bound: Fact, call: cst.Call) -> Fact:
        keep = subject.flags & (F.PROB | F.BOUNDED | F.UNIT | F.COUNT)
        if bound.has(F.POSITIVE) and not bound.has(ZEROISH):
            return Fact(keep | F.NONNEG | F.POSITIVE | F.GUARDED, Origin("a clamp away from 0", call))
        if bound.value == 0 or bound.has(ZEROISH):
            # clamp(min=0): the bound sits on the singular point; it stays "may be zero"
            what = "a `clamp(min=0)`" if bound.value == 0 else f"a lower bound that may itself be 0 ({bound.origin.what if bound.origin else 'a value that may be 0'})"
            zero = F.MAY_ZERO if bound.value == 0 or bound.has(F.MAY_ZERO) else (F.GUESS_ZERO | (bound.flags & (WEAK | F.GUESS)))
            return Fact(keep | F.NONNEG | zero, Origin(what, call))
        if bound.flags & (F.NONNEG | F.MAY_NEG) or bound.value is not None:
            return Fact(keep | (subject.flags & ZEROISH), subject.origin)
        # clamp(min=threshold) with a bound we know nothing of: the author set a floor on purpose
        return Fact(keep | F.GUARDED | F.GUESS, Origin("a clamp to a lower bound", call))

    # ---- arithmetic ----
    def _power(self, base: Fact, exponent: cst.BaseExpression | None, scope: Scope, at: int, node: cst.CSTNode) -> Fact:
        value = constant_value(exponent) if exponent is not None else None
        if base.has(F.SELECTED):
            return Fact(F.SELECTED | (F.NONNEG if value is not None and value % 2 == 0 else F.NONE), None)
        if value is None:
            if base.has(F.NONNEG):
                return Fact(F.NONNEG | (base.flags & (ZEROISH | F.POSITIVE)), base.origin)
            return UNKNOWN
        if value == 0:
            return Fact(F.POSITIVE | F.NONNEG, None)
        if value > 0 and value % 2 == 0:
            if base.has(F.POSITIVE):
                zero = F.POSITIVE
            elif base.flags & ZEROISH:
                zero = base.flags & ZEROISH
            else:
                zero = F.GUESS_ZERO | F.SQUARE  # 0 exactly where the base is: as likely as the base being 0
            flags = F.NONNEG | zero
            flags |= base.flags & F.GUESS
            if base.has(F.PROB):
                flags |= F.PROB | (base.flags & F.MAY_ONE)
            if base.has(F.UNIT):
                flags |= F.BOUNDED | (base.flags & F.MAY_ONE)  # cos**2 in [0, 1]; 1 - cos**2 is where rounding bites
                if base.has(F.GUARDED) and not base.has(F.MAY_ONE):
                    flags |= F.UNIT | F.GUARDED  # clamped strictly inside (-1, 1): the square stays below 1
            if base.has(F.POSITIVE) and base.has(F.GUARDED):
                flags |= F.GUARDED
            return Fact(flags, Origin("a square", node) if not base.has(F.POSITIVE) else base.origin)
        if 0 < value < 1:
            return Fact(F.NONNEG | (base.flags & (ZEROISH | F.POSITIVE | F.GUARDED | F.GUESS | WEAK)), base.origin)
        if value < 0:
            return Fact(base.flags & (F.NONNEG | F.POSITIVE), base.origin)
        return Fact(base.flags & (F.NONNEG | F.POSITIVE | F.PROB | ZEROISH | F.GUARDED), base.origin)

    def _binary(self, expr: cst.BinaryOperation, scope: Scope, at: int) -> Fact:
        op = expr.operator
        if isinstance(op, cst.Power):
            return self._power(self.of(expr.left, scope, at), expr.right, scope, at, expr)
        left, right = self.of(expr.left, scope, at), self.of(expr.right, scope, at)
        return self._combine(left, right, op, expr.left, expr.right, expr)

    def _combine(self, left: Fact, right: Fact, op: cst.BaseBinaryOp, left_node: cst.BaseExpression, right_node: cst.BaseExpression, expr: cst.CSTNode) -> Fact:
        if (left.flags | right.flags) & F.SELECTED and (left.has(F.CONST) or right.has(F.CONST) or (left.flags & right.flags & F.SELECTED)):
            # arithmetic on values chosen by a test on themselves: their domain was checked there
            return Fact(F.SELECTED | (left.flags & right.flags & F.NONNEG), None)
        fact = self._combine_values(left, right, op, left_node, right_node, expr)
        return fact

    def _combine_values(self, left: Fact, right: Fact, op: cst.BaseBinaryOp, left_node: cst.BaseExpression, right_node: cst.BaseExpression, expr: cst.CSTNode) -> Fact:
        if isinstance(op, cst.Add):
            for a, b in ((left, right), (right, left)):
                if b.has(F.POSITIVE) and (a.has(F.NONNEG) or b.has(F.EPS) or b.value is None):
                    flags = F.GUARDED
                    if a.has(F.NONNEG):
                        flags |= F.NONNEG | F.POSITIVE
                    if a.has(F.COUNT) and b.has(F.COUNT):
                        flags |= F.COUNT
                    return Fact(flags, a.origin)
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                zero = left.flags & right.flags & ZEROISH
                if left.has(F.PROB) and right.has(F.PROB) and not (left.flags | right.flags) & F.COUNT:
                    zero = F.NONE  # a sum of probability terms is 0 only if every one underflows
                weak = (left.flags | right.flags) & WEAK if zero else F.NONE
                return Fact(F.NONNEG | zero | weak | (left.flags & right.flags & F.COUNT), left.origin or right.origin)
            if left.has(F.POSITIVE) or right.has(F.POSITIVE):
                return UNKNOWN  # an offset (x + 1) on a value of unknown sign
            return UNKNOWN
        if isinstance(op, cst.Subtract):
            lv = left.value
            if lv is not None and lv >= 1 and right.has(F.UNIT) and right.has(F.GUARDED) and not right.has(F.MAY_ONE) and right.value is None:
                return Fact(F.POSITIVE | F.NONNEG | F.GUARDED | F.BOUNDED, Origin("`1 - x` with x clamped below 1", expr))
            if lv == 1 and right.has(F.PROB) and not right.has(F.CONST):
                what = f"`1 - p` of {right.origin.what}" if right.origin else "`1 - p`"
                flags = PROB_FACTS | (F.GUARDED if right.has(F.POSITIVE) and right.has(F.GUARDED) else F.NONE)
                return Fact(flags, Origin(what, expr))
            if lv is not None and lv > 0 and right.has(F.NONNEG) and right.has(F.MAY_ONE):
                # 1 - cos**2: in [0, 1] mathematically, slightly negative after rounding
                return Fact(F.MAY_ZERO | F.MAY_NEG | F.BOUNDED | (right.flags & F.GUESS), Origin("`1 - x**2` of a cosine", expr))
            if right.has(F.POSITIVE) and right.value is not None and left.has(F.COUNT):
                return Fact(F.COUNT | F.NONNEG | F.GUESS_ZERO | F.COMPLEMENT, Origin("a count minus one (0 for a single item)", expr))
            if lv is not None and lv > 0 and right.has(F.NONNEG) and not right.flags & (F.CONST | F.EPS | F.POSITIVE):
                return Fact(F.GUESS_ZERO | F.MAY_NEG | F.BOUNDED | F.GUESS | F.COMPLEMENT, Origin(f"`{_num(lv)} - x` with x >= 0, which reaches 0 and can go below", expr))
            if _is_square(left_node) and not right.has(F.CONST) and right.value is None:
                return Fact(F.MAY_ZERO | F.MAY_NEG | F.GUESS, Origin("a difference with a square (`a**2 - b`), which can round below 0", expr))
            if lv == 1 and not right.flags & (F.CONST | F.LOGSPACE) and not right.has(F.BOUNDED):
                return Fact(F.GUESS_ZERO | F.COMPLEMENT, Origin("`1 - x`, which is 0 at x = 1", expr))
            return UNKNOWN
        if isinstance(op, cst.Multiply):
            if left.has(F.PROB) and right.has(F.PROB):
                return Fact(PROB_FACTS, left.origin or right.origin)
            zero = (left.flags | right.flags) & ZEROISH
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                flags = F.NONNEG | zero | ((left.flags | right.flags) & (WEAK | F.GUESS) if zero else F.NONE)
                if zero & F.MAY_ZERO:
                    flags &= ~WEAK  # one factor is 0 for real: the product is
                if left.has(F.POSITIVE) and right.has(F.POSITIVE):
                    flags |= F.POSITIVE | ((left.flags | right.flags) & F.GUARDED)
                    flags &= ~ZEROISH
                if left.has(F.COUNT) and right.has(F.COUNT):
                    flags |= F.COUNT
                origin = right.origin if right.flags & ZEROISH and not left.flags & ZEROISH else left.origin or right.origin
                return Fact(flags, origin)
            if _same_expr(left_node, right_node):
                return Fact(F.NONNEG | ((left.flags & ZEROISH) or (F.GUESS_ZERO | F.SQUARE)), Origin("a square", expr))
            if left.has(F.POSITIVE) and left.value is not None:
                return right.with_flags(remove=F.CONST | F.EPS) if right.value is None else Fact(right.flags & ~F.CONST)
            if right.has(F.POSITIVE) and right.value is not None:
                return left.with_flags(remove=F.CONST | F.EPS) if left.value is None else Fact(left.flags & ~F.CONST)
            if zero & F.MAY_ZERO:
                source = left if left.flags & F.MAY_ZERO else right
                if source.has(F.PROB) and not source.has(F.COUNT):
                    return UNKNOWN  # a probability is 0 only by underflow; scaled by an unknown, nothing is left of it
                return Fact(F.MAY_ZERO, source.origin)
            return UNKNOWN
        if isinstance(op, (cst.Divide, cst.FloorDivide)):
            if left.value == 1 and _is_one_plus_exp(right_node):
                return Fact(PROB_FACTS, Origin("a hand-written sigmoid", expr))
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                flags = F.NONNEG | (left.flags & (ZEROISH | F.GUARDED | WEAK | F.GUESS))
                if right.origin and "sum" in right.origin.what and not right.value and left.has(F.NONNEG) and not right.has(F.GUARDED):
                    flags |= F.PROB  # x / x.sum(): a normalized distribution
                if left.has(F.POSITIVE) and right.has(F.POSITIVE):
                    flags |= F.POSITIVE
                if left.has(F.COUNT) and right.has(F.COUNT) and isinstance(op, cst.FloorDivide):
                    flags |= F.COUNT
                return Fact(flags, left.origin)
            if right.has(F.POSITIVE) and (right.value is not None or right.has(F.COUNT)):
                return left.with_flags(remove=F.CONST | F.EPS | F.COUNT) if left.value is None else Fact(left.flags & ~(F.CONST | F.EPS))
            # x / y is 0 exactly where x is, and away from 0 where x is
            return Fact(left.flags & (ZEROISH | F.GUARDED | F.GUESS | WEAK), left.origin)
        return UNKNOWN


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _bound_value(expr: cst.BaseExpression, scope: Scope, at: int, facts: "Facts", upper: bool) -> float | None:
    """A clamp bound's value; ``1 - eps`` / ``-1 + eps`` with an eps-like name count as just inside +-1."""
    value = constant_value(expr)
    if value is not None:
        return value
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Add, cst.Subtract)):
        edge = constant_value(expr.left)
        if edge is not None and abs(edge) == 1 and facts.of(expr.right, scope, at).has(F.EPS):
            inward = -1 if isinstance(expr.operator, cst.Subtract) else 1
            return edge + inward * 1e-7
    return None


def _is_dim_argument(call: cst.Call, other: cst.BaseExpression) -> bool:
    """``x.max(-1)`` / ``torch.max(x, 1)`` reduce over a dimension; ``torch.max(x, y)`` is elementwise."""
    value = constant_value(other)
    if value is not None and float(value).is_integer() and not isinstance(other, cst.Float):
        return True
    return any(a.keyword is not None and a.keyword.value in ("dim", "axis") for a in call.args)


def _is_none(expr: cst.BaseExpression) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def _comp_fors(expr) -> list:
    out = []
    node = expr.for_in
    while node is not None:
        out.append(node)
        node = node.inner_for_in
    return out


def _same_expr(a: cst.BaseExpression, b: cst.BaseExpression) -> bool:
    name_a, name_b = dotted(a), dotted(b)
    return name_a is not None and name_a == name_b


def _is_square(expr: cst.BaseExpression) -> bool:
    """``x ** 2``, ``x * x``, ``pow(x, 2)``, ``x.pow(2)``, ``square(x)``."""
    if isinstance(expr, cst.BinaryOperation):
        if isinstance(expr.operator, cst.Power) and constant_value(expr.right) == 2:
            return True
        if isinstance(expr.operator, cst.Multiply) and _same_expr(expr.left, expr.right):
            return True
        return False
    if isinstance(expr, cst.Call):
        func = expr.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if name == "square":
            return True
        if name == "pow":
            exponent = arg(expr, 0) if isinstance(func, cst.Attribute) and len(expr.args) == 1 else arg(expr, 1)
            return constant_value(exponent) == 2 if exponent is not None else False
    return False


def _abs_operand(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """``x`` for ``abs(x)`` / ``torch.abs(x)`` / ``x.abs()``, else None."""
    if isinstance(expr, cst.Call):
        func = expr.func
        if isinstance(func, cst.Attribute) and func.attr.value in ("abs", "absolute"):
            if not expr.args:
                return func.value
            return expr.args[0].value
        if isinstance(func, cst.Name) and func.value == "abs" and expr.args:
            return expr.args[0].value
    return None


def _plus_constant(expr: cst.BaseExpression) -> tuple[cst.BaseExpression, float] | None:
    """``(x, c)`` for ``x + c`` or ``c + x`` with a numeric constant c."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        right = constant_value(expr.right)
        if right is not None:
            return expr.left, right
        left = constant_value(expr.left)
        if left is not None:
            return expr.right, left
    return None


def _is_one_plus_exp(expr: cst.BaseExpression) -> bool:
    """``1 + exp(-z)`` (either order)."""
    if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add)):
        return False
    for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
        if literal_value(a) == 1 and isinstance(b, cst.Call):
            func = b.func
            name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
            if name == "exp":
                return True
    return False


# ---- element assignments (refinements) ----
def _per_function(cache: dict[int, dict], function: cst.FunctionDef, collect) -> dict:
    """The table ``collect(function.body, table)`` fills, built once per function and kept in ``cache``."""
    table = cache.get(id(function))
    if table is None:
        table = {}
        collect(function.body, table)
        cache[id(function)] = table
    return table


def _collect_refinements(body: cst.BaseSuite, table: dict[str, list[_Refinement]]) -> None:
    """``name[index] = value`` statements of a function body, nested blocks included, nested functions not."""
    statements = body.body if isinstance(body, (cst.IndentedBlock,)) else [body] if isinstance(body, cst.SimpleStatementSuite) else []
    if isinstance(body, cst.SimpleStatementSuite):
        statements = [body]
    for statement in statements:
        if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in statement.body:
                if isinstance(small, (cst.Assign, cst.AnnAssign)):
                    targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                    for target in targets:
                        if isinstance(target, cst.Subscript) and isinstance(target.value, cst.Name) and small.value is not None:
                            if len(target.slice) == 1 and isinstance(target.slice[0].slice, cst.Index):
                                table.setdefault(target.value.value, []).append(
                                    _Refinement(small, target.slice[0].slice.value, small.value)
                                )
            continue
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            continue
        for attr in ("body", "orelse", "finalbody"):
            child = getattr(statement, attr, None)
            if child is None:
                continue
            if isinstance(child, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                _collect_refinements(child, table)
            elif hasattr(child, "body") and isinstance(getattr(child, "body"), (cst.IndentedBlock, cst.SimpleStatementSuite)):
                _collect_refinements(child.body, table)  # Else / Finally wrappers, elif chains
                if isinstance(child, cst.If):
                    orelse = child.orelse
                    while orelse is not None:
                        _collect_refinements(orelse.body, table)
                        orelse = getattr(orelse, "orelse", None)
        for handler in getattr(statement, "handlers", ()) or ():
            _collect_refinements(handler.body, table)


def _statements(body: cst.BaseSuite):
    """Statements of a block and of the blocks nested in it (nested functions and classes left out)."""
    if isinstance(body, cst.SimpleStatementSuite):
        yield body
        return
    for statement in getattr(body, "body", ()):
        yield statement
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef, cst.SimpleStatementLine)):
            continue
        for attr in ("body", "orelse", "finalbody"):
            child = getattr(statement, attr, None)
            while child is not None:
                inner = child if isinstance(child, (cst.IndentedBlock, cst.SimpleStatementSuite)) else getattr(child, "body", None)
                if isinstance(inner, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                    yield from _statements(inner)
                child = getattr(child, "orelse", None) if isinstance(child, cst.If) else None
        for handler in getattr(statement, "handlers", ()) or ():
            yield from _statements(handler.body)


def _small_statements(body: cst.BaseSuite):
    for statement in _statements(body):
        if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            yield from statement.body


def _collect_unpackings(body: cst.BaseSuite, table: dict[str, list]) -> None:
    for small in _small_statements(body):
        if isinstance(small, cst.Assign) and not isinstance(small.value, (cst.Tuple, cst.List)):
            for target in small.targets:
                if isinstance(target.target, (cst.Tuple, cst.List)):
                    elements = target.target.elements
                    if any(isinstance(e, cst.StarredElement) for e in elements):
                        continue
                    for i, element in enumerate(elements):
                        if isinstance(element.value, cst.Name):
                            table.setdefault(element.value.value, []).append((small, small.value, i))


def _returns(body: cst.BaseSuite) -> list[cst.Return]:
    return [s for s in _small_statements(body) if isinstance(s, cst.Return)]


def _simple_assignments(body: cst.BaseSuite):
    """``name = value`` pairs of a function body in source order (for evaluating what it returns)."""
    for small in _small_statements(body):
        if isinstance(small, cst.Assign):
            for target in small.targets:
                if isinstance(target.target, cst.Name):
                    yield target.target.value, small.value
                elif isinstance(target.target, (cst.Tuple, cst.List)) and isinstance(small.value, (cst.Tuple, cst.List)):
                    names, values = target.target.elements, small.value.elements
                    if len(names) == len(values):
                        for name, value in zip(names, values):
                            if isinstance(name.value, cst.Name) and not isinstance(value, cst.StarredElement):
                                yield name.value.value, value.value
        elif isinstance(small, cst.AnnAssign) and small.value is not None and isinstance(small.target, cst.Name):
            yield small.target.value, small.value


_ORDER_PLAN = None


def _preorder(function: cst.FunctionDef) -> dict[int, int]:
    """Source order of the names and assignments of a function (enough to tell which of two statements
    comes first); other nodes are not entered unless they can hold one."""
    global _ORDER_PLAN
    if _ORDER_PLAN is None:
        from nanlint.traversal import Plan

        _ORDER_PLAN = Plan({"Name", "Assign", "AnnAssign", "AugAssign", "Subscript"})
    from nanlint.traversal import iter_nodes

    order: dict[int, int] = {}
    for entering, node in iter_nodes(function, _ORDER_PLAN):
        if entering:
            order[id(node)] = len(order)
    return order


def _first_ordered(node: cst.CSTNode | None, order: dict[int, int]) -> int:
    """The order of a node, or of the first ordered node inside it (a binding's value), else -1."""
    if node is None:
        return -1
    found = order.get(id(node))
    if found is not None:
        return found
    best: list[int] = []

    class _First(cst.CSTVisitor):
        def on_visit(self, inner: cst.CSTNode) -> bool:
            if best:
                return False
            position = order.get(id(inner))
            if position is not None:
                best.append(position)
                return False
            return True

    node.visit(_First())
    return best[0] if best else -1
