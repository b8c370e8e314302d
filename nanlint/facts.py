"""Value facts: a small abstract domain that says what an expression is, shared by every rule.

Facts are inferred lazily, on demand, when a rule asks about an expression, and memoized per node. Names
resolve through the bindings the engine records while it walks the file in source order (local and
augmented assignments, tuple unpacking, module constants, ``self.attr`` set in any method), so the fact a
rule sees at a use is the one of the latest assignment before it.
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
    # may-flags
    MAY_ZERO = 1 << 16  # can realistically be exactly 0
    MAY_ONE = 1 << 17  # can be exactly +-1 (probabilities, cosines)
    MAY_NEG = 1 << 18  # can go slightly negative through rounding (1 - cos**2)
    MAY_EMPTY = 1 << 19  # a selection that can hold no element (x[mask])


MUST = F.PROB | F.NONNEG | F.POSITIVE | F.GUARDED | F.UNIT | F.BOUNDED | F.LOGSPACE | F.COUNT | F.CONST | F.NORMALIZED
MAY = F.MAY_ZERO | F.MAY_ONE | F.MAY_NEG | F.MAY_EMPTY
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

    def with_flags(self, add: F = F.NONE, remove: F = F.NONE) -> "Fact":
        return replace(self, flags=(self.flags | add) & ~remove)


UNKNOWN = Fact()


def meet(a: Fact, b: Fact) -> Fact:
    """The fact of a value that is either a or b: must-flags both share, may-flags either has."""
    flags = (a.flags & b.flags & MUST) | ((a.flags | b.flags) & MAY)
    return Fact(flags, a.origin or b.origin)


EPS_NAME = re.compile(r"(^|_)(eps|epsilon|tiny|smooth|smoothing|delta|min_val|min_value|stability|numerical_stab\w*)(_|$|\d)", re.I)
MASK_NAME = re.compile(r"(^|_)(mask|masks|valid|keep|pos|neg|positive|negative|sel|selected|idx|indices|weight_mask)(_|$)", re.I)

# ---- op tables (canonical op names, namespace-independent) ----
PROB_OPS = frozenset({"softmax", "sigmoid", "expit", "softmin", "gumbel_softmax", "Softmax", "Sigmoid", "Softmax2d", "Softmin", "hardsigmoid", "Hardsigmoid"})
RAND_OPS = frozenset({"rand", "rand_like", "uniform"})
LOGSPACE_OPS = frozenset({"log_softmax", "logsigmoid", "LogSoftmax", "LogSigmoid"})
NONNEG_OPS = frozenset({"abs", "absolute", "square", "relu", "relu6", "ReLU", "ReLU6", "exp", "exp2", "softplus", "Softplus", "cosh", "sqrt"})
MAY_ZERO_NONNEG_OPS = frozenset({"abs", "absolute", "square", "relu", "relu6", "ReLU", "ReLU6", "sqrt"})
NORM_OPS = frozenset({"norm", "vector_norm", "matrix_norm", "frobenius_norm", "nuclear_norm", "dist", "cdist", "pdist", "pairwise_distance"})
SPREAD_OPS = frozenset({"std", "var", "nanstd", "nanvar", "std_mean", "var_mean"})
COUNT_OPS = frozenset({"count_nonzero", "numel", "nelement", "bincount", "histc", "nnz"})
REDUCE_OPS = frozenset({"sum", "nansum", "mean", "nanmean", "cumsum", "amax", "max", "amin", "min", "prod", "reduce_sum", "reduce_mean", "median", "logsumexp"})
UNIT_OPS = frozenset({"cos", "sin", "tanh", "Tanh", "cosine_similarity", "CosineSimilarity", "hardtanh", "Hardtanh", "softsign", "erf"})
PRESERVE_METHODS = frozenset({
    "float", "double", "half", "bfloat16", "to", "type", "type_as", "detach", "clone", "contiguous", "cpu", "cuda",
    "view", "view_as", "reshape", "reshape_as", "squeeze", "unsqueeze", "permute", "transpose", "t", "flatten",
    "expand", "expand_as", "repeat", "gather", "index_select", "narrow", "masked_select", "flip", "roll",
    "squeeze_", "unsqueeze_", "data", "item", "tolist", "numpy", "astype", "requires_grad_", "movedim", "chunk",
    "split", "unbind", "select", "take_along_dim", "tile", "diagonal", "triu", "tril", "asarray", "array", "tensor",
    "as_tensor", "from_numpy", "stack", "cat", "concat", "concatenate", "squeeze", "atleast_1d", "broadcast_to",
})
SIZE_ATTRS = frozenset({"shape", "size"})
CLAMP_OPS = frozenset({"clamp", "clip", "clamp_", "clip_", "clip_by_value"})


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


class Facts:
    """Answers what an expression is. One instance per file; the engine keeps its scopes up to date."""

    def __init__(self, resolver: ImportResolver):
        self.resolver = resolver
        self._memo: dict[int, Fact] = {}
        self._active: set[int] = set()
        self.counter = 0

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
        """What a call calls, looking through names bound to module instances (``self.act = nn.Sigmoid()``)."""
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
        if binding is None or binding.value is None:
            return None
        return self.of(binding.value, binding.scope, binding.index)

    @staticmethod
    def _self_attr(attr: str, scope: Scope | None) -> Binding | None:
        while scope is not None and scope.kind != "class":
            scope = scope.parent
        if scope is None or scope.self_attrs is None:
            return None
        found = scope.self_attrs.get(attr)
        return found[-1] if found else None

    def _infer(self, expr: cst.BaseExpression, scope: Scope, at: int) -> Fact:
        value = literal_value(expr)
        if value is not None:
            flags = F.CONST
            if value > 0:
                flags |= F.POSITIVE | F.NONNEG
            elif value == 0:
                flags |= F.NONNEG | F.MAY_ZERO
            if 0 <= value <= 1:
                flags |= F.PROB
            return Fact(flags, None, value)
        if isinstance(expr, cst.Name):
            if EPS_NAME.search(expr.value):
                return Fact(F.POSITIVE | F.GUARDED | F.NONNEG, Origin(f"`{expr.value}`", expr))
            found = self._lookup_fact(expr, scope, at)
            return found if found is not None else UNKNOWN
        if isinstance(expr, cst.Attribute):
            attr = expr.attr.value
            if attr in ("eps", "tiny") or EPS_NAME.search(attr):
                return Fact(F.POSITIVE | F.GUARDED | F.NONNEG, Origin(f"`{attr}`", expr))
            if attr in PRESERVE_METHODS:  # x.data, x.T
                return self.of(expr.value, scope, at)
            if attr == "T":
                return self.of(expr.value, scope, at)
            found = self._lookup_fact(expr, scope, at)
            if found is not None:
                return found
            if isinstance(expr.value, cst.Name) and expr.value.value.isupper() is False and attr.isupper():
                return UNKNOWN
            return UNKNOWN
        if isinstance(expr, cst.Subscript):
            base = expr.value
            if isinstance(base, cst.Attribute) and base.attr.value == "shape":
                return Fact(F.COUNT | F.NONNEG | F.POSITIVE, Origin("a size", expr))
            inner = self.of(base, scope, at)
            if self._is_mask_index(expr, scope, at):
                return inner.with_flags(F.MAY_EMPTY)
            return inner.with_flags(remove=F.MAY_EMPTY)
        if isinstance(expr, cst.Call):
            return self._call(expr, scope, at)
        if isinstance(expr, cst.BinaryOperation):
            return self._binary(expr, scope, at)
        if isinstance(expr, cst.UnaryOperation):
            inner = self.of(expr.expression, scope, at)
            if isinstance(expr.operator, cst.Minus):
                return Fact(F.BOUNDED if inner.has(F.NONNEG) else F.NONE, inner.origin)
            return inner
        if isinstance(expr, cst.IfExp):
            return meet(self.of(expr.body, scope, at), self.of(expr.orelse, scope, at))
        if isinstance(expr, cst.Comparison):
            return Fact(F.NONNEG | F.PROB | F.MAY_ZERO | F.MAY_ONE, Origin("a comparison", expr))
        return UNKNOWN

    def _is_mask_index(self, expr: cst.Subscript, scope: Scope, at: int) -> bool:
        if len(expr.slice) != 1 or not isinstance(expr.slice[0].slice, cst.Index):
            return False
        index = expr.slice[0].slice.value
        if isinstance(index, cst.Comparison):
            return True
        if isinstance(index, cst.Name) and MASK_NAME.search(index.value):
            return True
        if isinstance(index, cst.Name):
            found = self._lookup_fact(index, scope, at)
            return bool(found and found.origin and found.origin.what == "a comparison")
        return False

    def _call(self, call: cst.Call, scope: Scope, at: int) -> Fact:
        target = self.target(call, scope)
        op, ns = target.op, target.namespace
        what = f"a `{op}` output"

        if ns == "nn" and call.func is not None and target.qualname is not None:
            # constructing a module: remember what calling it does
            if op == "Sequential":
                last = self._sequential_last(call)
                return Fact(module_op=last)
            return Fact(module_op=op)
        if ns in ("nn",) and target.qualname is None:
            # calling a held module instance
            return self._op_fact(op, call, scope, at, target)
        if not (target.is_array_op or ns in ("builtin",)):
            return UNKNOWN
        return self._op_fact(op, call, scope, at, target)

    def _sequential_last(self, call: cst.Call) -> str | None:
        layers = [a.value for a in call.args if a.keyword is None and not a.star]
        if not layers or not isinstance(layers[-1], cst.Call):
            return None
        return self.resolver.target(layers[-1]).op

    def _subject(self, call: cst.Call, target: Target, scope: Scope, at: int) -> Fact:
        """The fact of the tensor an op acts on: the receiver of a method, else the first argument."""
        if target.namespace == "method" and target.receiver is not None:
            return self.of(target.receiver, scope, at)
        first = arg(call, 0, "input")
        if first is None:
            first = arg(call, 0, "x")
        return self.of(first, scope, at) if first is not None else UNKNOWN

    def _op_fact(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        what = f"a `{op}` output"
        origin = Origin(what, call)
        if op in PROB_OPS:
            return Fact(PROB_FACTS, origin)
        if op in RAND_OPS and target.namespace != "method":
            return Fact(F.PROB | F.NONNEG | F.MAY_ZERO, Origin("`torch.rand` noise", call))
        if op in LOGSPACE_OPS:
            return Fact(F.LOGSPACE | F.BOUNDED, origin)
        if op == "normalize":
            return Fact(F.NORMALIZED | F.BOUNDED | F.UNIT, origin)
        if op in UNIT_OPS:
            return Fact(F.UNIT | F.BOUNDED | F.MAY_ONE | (F.MAY_ZERO if op != "cos" else F.NONE), origin)
        if op in NORM_OPS:
            return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"a norm (`{op}`)", call))
        if op in SPREAD_OPS:
            return Fact(F.NONNEG | F.MAY_ZERO, Origin(f"a `{op}`", call))
        if op in COUNT_OPS or (op == "len" and target.namespace == "builtin"):
            subject = arg(call, 0)
            may_zero = op != "len" or (subject is not None and self._maybe_empty_collection(subject, scope, at))
            flags = F.COUNT | F.NONNEG | (F.MAY_ZERO if may_zero else F.POSITIVE)
            return Fact(flags, Origin(f"a count (`{op}`)", call))
        if op in ("size", "dim", "ndimension") and target.namespace == "method":
            return Fact(F.COUNT | F.NONNEG | F.POSITIVE, Origin("a size", call))
        if op in CLAMP_OPS or op in ("clamp_min", "clamp_min_", "clamp_max", "maximum", "fmax", "max", "minimum", "min", "where", "threshold"):
            return self._guard_op(op, call, scope, at, target)
        if op in NONNEG_OPS:
            flags = F.NONNEG | (F.MAY_ZERO if op in MAY_ZERO_NONNEG_OPS else F.NONE)
            if op == "sqrt":
                inner = self._subject(call, target, scope, at)
                flags = F.NONNEG | (inner.flags & (F.MAY_ZERO | F.POSITIVE | F.GUARDED))
            return Fact(flags, origin)
        if op in REDUCE_OPS:
            inner = self._subject(call, target, scope, at)
            if op in ("mean", "nanmean", "amax", "amin", "max", "min", "median", "reduce_mean"):
                keep = inner.flags & (F.PROB | F.NONNEG | F.POSITIVE | F.GUARDED | F.MAY_ZERO | F.UNIT | F.BOUNDED)
            else:
                keep = inner.flags & (F.NONNEG | F.POSITIVE | F.GUARDED | F.MAY_ZERO | F.COUNT)
                if inner.has(F.PROB):
                    keep |= F.NONNEG | F.MAY_ZERO
                if inner.has(F.COUNT) or (target.namespace == "method" and self._looks_like_mask(target.receiver)):
                    keep |= F.COUNT | F.NONNEG | F.MAY_ZERO
            if not keep:
                return UNKNOWN
            what = inner.origin.what if inner.origin else what
            return Fact(F(keep), Origin(f"a `{op}` of {what}" if inner.origin else f"a `{op}`", call))
        if op in PRESERVE_METHODS or op in ("pow", "float_power") :
            if op in ("pow", "float_power"):
                exponent = arg(call, 1, "exponent") if target.namespace != "method" else arg(call, 0, "exponent")
                return self._power(self._subject(call, target, scope, at), exponent, scope, at, call)
            if op in ("stack", "cat", "concat", "concatenate", "tensor", "as_tensor", "array", "asarray"):
                return UNKNOWN
            return self._subject(call, target, scope, at)
        if op in ("log1p", "log", "log2", "log10"):
            return UNKNOWN
        if op == "finfo" or op == "iinfo":
            return UNKNOWN
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

    def _guard_op(self, op: str, call: cst.Call, scope: Scope, at: int, target: Target) -> Fact:
        subject = self._subject(call, target, scope, at)
        if op == "where":
            cond, a, b = arg(call, 0, "condition"), arg(call, 1, "input"), arg(call, 2, "other")
            if a is None or b is None:
                return UNKNOWN
            fa, fb = self.of(a, scope, at), self.of(b, scope, at)
            merged = meet(fa, fb)
            if isinstance(cond, cst.Comparison):
                merged = merged.with_flags(F.GUARDED, F.MAY_ZERO | F.MAY_NEG)
            return merged
        if op in ("clamp_max",):
            return Fact((subject.flags & MUST) | F.BOUNDED, subject.origin)
        if op in ("max", "maximum", "fmax", "clamp_min", "clamp_min_", "threshold") and target.namespace in ("builtin", "torch", "numpy", "method", "tf", "jax", "math"):
            other = arg(call, 1, "other") if target.namespace != "method" else arg(call, 0, "other")
            if op in ("clamp_min", "clamp_min_"):
                other = arg(call, 0, "min") if target.namespace == "method" else arg(call, 1, "min")
            if other is None:
                # a reduction (x.max(), torch.max(x))
                return Fact(subject.flags & (F.NONNEG | F.PROB | F.POSITIVE | F.GUARDED | F.MAY_ZERO), subject.origin)
            return self._lower_bound(subject, self.of(other, scope, at), call)
        if op in ("min", "minimum"):
            other = arg(call, 1, "other") if target.namespace != "method" else arg(call, 0, "other")
            if other is None:
                return Fact(subject.flags & (F.NONNEG | F.PROB | F.MAY_ZERO | F.COUNT), subject.origin)
            bound = self.of(other, scope, at)
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
            hv = literal_value(high)
            lv = literal_value(low) if low is not None else None
            flags = fact.flags | F.BOUNDED
            if lv is not None and hv is not None and -1 < lv and hv < 1:
                flags = (flags | F.GUARDED | F.UNIT) & ~F.MAY_ONE
            elif hv is not None and hv <= 1 and lv is not None and lv >= -1:
                flags |= F.UNIT
            fact = Fact(flags, fact.origin)
        return fact

    def _lower_bound(self, subject: Fact, bound: Fact, call: cst.Call) -> Fact:
        keep = subject.flags & (F.PROB | F.BOUNDED | F.UNIT | F.COUNT)
        if bound.has(F.POSITIVE):
            return Fact(keep | F.NONNEG | F.POSITIVE | F.GUARDED, subject.origin)
        if bound.value == 0:
            # clamp(min=0): the bound sits on the singular point; it stays "may be zero"
            return Fact(keep | F.NONNEG | F.MAY_ZERO, Origin("a `clamp(min=0)`", call))
        return Fact(keep | (subject.flags & F.MAY_ZERO), subject.origin)

    def _power(self, base: Fact, exponent: cst.BaseExpression | None, scope: Scope, at: int, node: cst.CSTNode) -> Fact:
        value = literal_value(exponent) if exponent is not None else None
        if value is None:
            return UNKNOWN
        if value == 2 or (value > 0 and value % 2 == 0):
            flags = F.NONNEG | (F.MAY_ZERO if not base.has(F.POSITIVE) else F.POSITIVE)
            if base.has(F.UNIT | F.PROB):
                flags |= F.PROB | F.MAY_ONE
            return Fact(flags, base.origin or Origin("a square", node))
        if 0 < value < 1:
            return Fact(F.NONNEG | (base.flags & (F.MAY_ZERO | F.POSITIVE | F.GUARDED)), base.origin)
        return Fact(base.flags & (F.NONNEG | F.POSITIVE | F.PROB), base.origin)

    def _binary(self, expr: cst.BinaryOperation, scope: Scope, at: int) -> Fact:
        op = expr.operator
        if isinstance(op, cst.Power):
            return self._power(self.of(expr.left, scope, at), expr.right, scope, at, expr)
        left, right = self.of(expr.left, scope, at), self.of(expr.right, scope, at)
        if isinstance(op, cst.Add):
            for a, b in ((left, right), (right, left)):
                if b.has(F.POSITIVE):
                    flags = F.GUARDED
                    if a.has(F.NONNEG):
                        flags |= F.NONNEG | F.POSITIVE
                    if a.has(F.COUNT) and b.has(F.COUNT):
                        flags |= F.COUNT
                    return Fact(flags, a.origin)
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                return Fact(F.NONNEG | ((left.flags | right.flags) & F.MAY_ZERO) | (left.flags & right.flags & F.COUNT), left.origin or right.origin)
            return UNKNOWN
        if isinstance(op, cst.Subtract):
            lv = left.value
            if lv == 1 and right.has(F.PROB):
                return Fact(PROB_FACTS, Origin(f"`1 - p` of {right.origin.what}" if right.origin else "`1 - p`", expr))
            if lv == 1 and right.has(F.NONNEG) and right.has(F.MAY_ONE):
                # 1 - cos**2: in [0, 1] mathematically, slightly negative after rounding
                return Fact(F.MAY_ZERO | F.MAY_NEG | F.BOUNDED, Origin("`1 - x**2` of a cosine", expr))
            if right.has(F.POSITIVE) and right.value is not None and left.has(F.COUNT):
                return Fact(F.COUNT | F.NONNEG | F.MAY_ZERO, Origin("a count minus one", expr))
            return UNKNOWN
        if isinstance(op, cst.Multiply):
            if left.has(F.PROB) and right.has(F.PROB):
                return Fact(PROB_FACTS, left.origin or right.origin)
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                flags = F.NONNEG | ((left.flags | right.flags) & F.MAY_ZERO)
                if left.has(F.POSITIVE) and right.has(F.POSITIVE):
                    flags |= F.POSITIVE | ((left.flags | right.flags) & F.GUARDED)
                    flags &= ~F.MAY_ZERO
                if left.has(F.COUNT) and right.has(F.COUNT):
                    flags |= F.COUNT
                return Fact(flags, left.origin or right.origin)
            if _same_expr(expr.left, expr.right):
                return Fact(F.NONNEG | F.MAY_ZERO, Origin("a square", expr))
            if left.has(F.POSITIVE) and left.value is not None:
                return right
            if right.has(F.POSITIVE) and right.value is not None:
                return left
            return UNKNOWN
        if isinstance(op, (cst.Divide, cst.FloorDivide)):
            if left.value == 1 and _is_one_plus_exp(expr.right):
                return Fact(PROB_FACTS, Origin("a hand-written sigmoid", expr))
            if left.has(F.NONNEG) and right.has(F.NONNEG):
                flags = F.NONNEG | (left.flags & F.MAY_ZERO)
                if right.origin and "sum" in right.origin.what and not right.value:
                    flags |= F.PROB  # x / x.sum(): a normalized distribution
                if left.has(F.POSITIVE) and right.has(F.POSITIVE):
                    flags |= F.POSITIVE
                return Fact(flags, left.origin)
            if right.has(F.POSITIVE) and right.value is not None:
                return left  # dividing by a positive constant keeps sign facts
            return UNKNOWN
        return UNKNOWN


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
