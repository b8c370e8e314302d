"""Transfer functions of constructors, clamps, selections between values, products of matrices and vectors.

Constructors say what a fresh tensor holds: ``zeros`` is a buffer of exact zeros (until it is written),
``rand`` samples [0, 1) and returns exactly 0 now and then, ``randn`` is a Gaussian draw (never all 0, negative
half the time), ``arange`` starts at 0. Clamps bound a value and, at a bound the input crosses, make it
*reached* exactly (``clamp(min=0)`` is 0 for every negative input). A product of unit vectors is a cosine,
which is +-1 for parallel vectors and rounds past 1.
"""
from __future__ import annotations

import math
from dataclasses import replace

import libcst as cst

from nanlint.analysis import domain as d
from nanlint.analysis.domain import INF, Evidence, Tier, Value, stronger
from nanlint.analysis.opcall import OpCall
from nanlint.analysis.reduce import mask_value


def _requires_grad(call: OpCall) -> bool:
    return call.keyword_true("requires_grad")


def construct(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    grad = True if _requires_grad(call) else False
    dtype = _dtype_of(call)
    if fn == "zeros":
        fill = Evidence(Tier.PLAUSIBLE, f"`{text}` is a buffer of zeros", node, "fill")
        return replace(d.constant(0.0, node), points=((0.0, fill),), vanish=fill, grad=grad, dtype=dtype, desc=f"`{text}`", role=None)
    if fn == "ones":
        return replace(d.constant(1.0, node), grad=grad, dtype=dtype, desc=f"`{text}`", role=None)
    if fn in ("full", "fill"):
        fill = call.arg("fill_value") or call.arg("value")
        if fill is None:
            rest = call.extra_positional
            fill = rest[0] if rest else None
        v = call.ev.value(fill) if fill is not None else d.UNKNOWN
        if v.const == 0:
            ev_ = Evidence(Tier.PLAUSIBLE, f"`{text}` is a buffer of zeros", node, "fill")
            return replace(v, points=((0.0, ev_),), vanish=ev_, grad=grad, node=node, desc=f"`{text}`")
        return replace(v, grad=grad or v.grad, node=node, items=None, desc=v.desc or f"`{text}`")
    if fn == "empty":
        return Value(grad=grad, node=node, dtype=dtype)
    if fn in ("rand", "uniform"):
        lo, hi = 0.0, 1.0
        if fn == "uniform":
            lo_v, hi_v = call.extra_positional[:1], call.extra_positional[1:2]
            a = call.ev.number(call.keyword("a") or call.keyword("low") or call.keyword("from") or (lo_v[0] if lo_v else None))
            b = call.ev.number(call.keyword("b") or call.keyword("high") or call.keyword("to") or (hi_v[0] if hi_v else None))
            lo, hi = (a if a is not None else 0.0), (b if b is not None else 1.0)
        out = Value(lo=lo, hi=hi, hi_open=True, role=d.RANDOM, grad=False, dtype=dtype, node=node, desc=f"uniform noise (`{text}`)")
        return out.with_point(lo, Evidence(Tier.PLAUSIBLE, f"`{text}` samples [{lo:g}, {hi:g}) and returns exactly {lo:g} now and then", node, "uniform"))
    if fn == "randn":
        return Value(role=d.RANDOM, grad=False, dtype=dtype, node=node, desc=f"a Gaussian draw (`{text}`)",
                     below=Evidence(Tier.PLAUSIBLE, f"`{text}` is negative half the time", node, "gaussian"))
    if fn == "exponential":
        return Value(lo=0.0, lo_open=True, role=d.RANDOM, grad=False, node=node, desc=f"exponential noise (`{text}`)")
    if fn == "bernoulli":
        return mask_value(node, f"`{text}`")
    if fn == "randint":
        return Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node).with_point(
            0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` draws 0", node, "index"))
    if fn in ("arange", "linspace", "logspace"):
        return _grid(call, fn, node, text, grad, dtype)
    if fn == "eye":
        return Value(lo=0.0, hi=1.0, integer=True, grad=False, node=node, desc=f"`{text}`",
                     points=((0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is 0 off the diagonal", node, "fill")),))
    if fn == "tensor":
        data = call.arg("data") or (call.extra_positional[0] if call.extra_positional else None)
        if data is None:
            return Value(grad=grad, node=node)
        v = call.ev.value(data)
        if v.items is not None:
            v = d.join_all(v.items)
        elif v.element is not None:  # torch.tensor([n for n in range(k)]): what each element is
            v = replace(v.element, empty=None)
        return replace(v, grad=grad or (v.grad if call.name == "from_numpy" else False) if grad else False, node=node,
                       items=None, dtype=dtype or v.dtype, module=None)
    if fn == "parameter":
        data = call.arg("data") or (call.extra_positional[0] if call.extra_positional else None)
        v = call.ev.value(data) if data is not None else d.UNKNOWN
        # a learned weight drifts from its initial bounds; what its initial value reaches, it reaches at step 0
        return Value(points=v.points, vanish=v.vanish, role=d.PARAMETER, grad=not call.keyword("requires_grad") or _requires_grad(call),
                     node=node, desc=f"a parameter (`{text}`)", dtype=v.dtype)
    return d.UNKNOWN


def _dtype_of(call: OpCall) -> str | None:
    dtype = call.keyword("dtype")
    if dtype is None:
        return None
    text = call.ev.text(dtype)
    for name in ("bfloat16", "float16", "half", "float64", "double", "float32", "complex", "int", "long", "bool", "uint8"):
        if name in text:
            return {"half": "float16", "double": "float64", "long": "int", "uint8": "int"}.get(name, name)
    return None


def _grid(call: OpCall, fn: str, node, text: str, grad: bool, dtype) -> Value:
    args = [a for a in (call.arg("start"), call.arg("end"), call.arg("step")) if a is not None]
    nums = [call.ev.number(a) for a in args]
    if fn == "arange":
        if len(nums) == 1:
            start, end = 0.0, nums[0]
        elif len(nums) >= 2:
            start, end = nums[0], nums[1]
        else:
            start, end = 0.0, None
        lo = start if start is not None else -INF
        hi = end if end is not None else INF
        integer = all(n is not None and float(n).is_integer() for n in nums) and "float" not in (dtype or "")
        if start is not None and end is not None and end < start:
            lo, hi = end, start
        out = Value(lo=lo, hi=hi, hi_open=end is not None and end >= (start or 0), integer=integer, role=d.INDEX,
                    grad=grad, dtype=dtype, node=node, desc=f"an index grid (`{text}`)")
        if start == 0:
            out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` starts at 0", node, "index"))
        return out
    start, end = (nums + [None, None])[:2]
    if start is None or end is None:
        return Value(grad=grad, role=d.INDEX, node=node)
    lo, hi = min(start, end), max(start, end)
    if fn == "logspace":
        return Value(lo=10 ** lo if lo < 300 else INF, hi=10 ** hi if hi < 300 else INF, grad=grad, node=node, role=d.INDEX)
    out = Value(lo=lo, hi=hi, grad=grad, node=node, dtype=dtype, role=d.INDEX, desc=f"a grid (`{text}`)")
    if 0.0 in (start, end):
        out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` includes 0", node, "index"))
    return out


def stack(call: OpCall) -> Value:
    seq = call.arg("tensors")
    if seq is None:
        return d.UNKNOWN
    v = call.ev.value(seq)
    if v.items:
        out = d.join_all(v.items)
        vanish = None
        if all(i.vanish is not None for i in v.items):
            vanish = min((i.vanish for i in v.items), key=lambda e: e.tier)
        return replace(out, items=None, vanish=vanish, node=call.node, desc=out.desc)
    return replace(v, items=None, node=call.node)


def clamp(call: OpCall) -> Value:
    x = call.input
    side = call.spec.param("side")
    node, text = call.node, call.text()
    lo_expr = hi_expr = None
    if side == "min":
        lo_expr = call.arg("other")
    elif side == "max":
        hi_expr = call.arg("other")
    elif side == "threshold":
        lo_expr = call.arg("threshold")
    else:
        lo_expr, hi_expr = call.arg("min"), call.arg("max")
    lo_v = call.ev.value(lo_expr) if lo_expr is not None and not _is_none(lo_expr) else None
    hi_v = call.ev.value(hi_expr) if hi_expr is not None and not _is_none(hi_expr) else None
    if side in ("min", "max"):
        other = lo_v if side == "min" else hi_v
        return pick(x, other, node, text, largest=side == "min") if other is not None else x
    return bound(x, lo_v, hi_v, node, text)


def _is_none(expr) -> bool:
    return isinstance(expr, cst.Name) and expr.value == "None"


def pick(a: Value, b: Value, node, text: str, largest: bool) -> Value:
    """``max(a, b)`` / ``min(a, b)`` elementwise: a constant side is a clamp; otherwise each side's exact
    points survive where the other side can be beyond them."""
    if b.const is not None:
        return bound(a, b if largest else None, None if largest else b, node, text)
    if a.const is not None:
        return bound(b, a if largest else None, None if largest else a, node, text)
    if largest:
        lo, lo_open = (a.lo, a.lo_open) if a.lo > b.lo else (b.lo, b.lo_open)
        hi, hi_open = (a.hi, a.hi_open) if a.hi > b.hi else (b.hi, b.hi_open)
        keep = lambda p, other: p >= other.lo
    else:
        lo, lo_open = (a.lo, a.lo_open) if a.lo < b.lo else (b.lo, b.lo_open)
        hi, hi_open = (a.hi, a.hi_open) if a.hi < b.hi else (b.hi, b.hi_open)
        keep = lambda p, other: p <= other.hi
    points: dict[float, Evidence] = {}
    for p, e in a.points:
        if keep(p, b):
            points[p] = stronger(points.get(p), e)
    for p, e in b.points:
        if keep(p, a):
            points[p] = stronger(points.get(p), e)
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, points=tuple(points.items()), node=node,
                grad=d.join_grad(a.grad, b.grad), integer=a.integer and b.integer,
                below=(a.below and b.below) if largest else stronger(a.below, b.below),
                large=stronger(a.large, b.large) if largest else (a.large and b.large),
                vanish=(a.vanish and b.vanish) if largest else stronger(a.vanish, b.vanish))
    return out.with_point(0.0, None) if out.nonzero else out


def bound(x: Value, lo_v: Value | None, hi_v: Value | None, node, text: str) -> Value:
    """``x`` clamped to [lo_v, hi_v] (either may be missing or itself a tensor)."""
    out = replace(x, node=node, items=None, dist=False, desc=x.desc)
    points = list(x.points)
    if lo_v is not None:
        bound_lo = lo_v.const if lo_v.const is not None else lo_v.lo
        bound_lo_open = lo_v.lo_open if lo_v.const is None else False
        if bound_lo > out.lo or (bound_lo == out.lo and bound_lo_open):
            out = replace(out, lo=bound_lo, lo_open=bound_lo_open)
        if lo_v.const is not None and x.lo < lo_v.const:
            # clamp's backward passes 0 where its input was out of range: only an input that reaches the bound
            # itself (x.at(bound)) carries an inf gradient at the bound back to x
            points.append((lo_v.const, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly {lo_v.const:g} wherever its input is below it", node, "clamp",
                                                selects=x.at(lo_v.const) is None)))
        if out.nonneg:
            out = replace(out, below=None)
        if out.positive:
            out = replace(out, vanish=None)
        if lo_v.zero is not None and lo_v.const is None:  # clamp(min=eps) where eps can vanish
            points.append((0.0, lo_v.zero))
    if hi_v is not None:
        bound_hi = hi_v.const if hi_v.const is not None else hi_v.hi
        bound_hi_open = hi_v.hi_open if hi_v.const is None else False
        if bound_hi < out.hi or (bound_hi == out.hi and bound_hi_open):
            out = replace(out, hi=bound_hi, hi_open=bound_hi_open)
        if hi_v.const is not None and x.hi > hi_v.const:
            points.append((hi_v.const, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly {hi_v.const:g} wherever its input is above it", node, "clamp",
                                                selects=x.at(hi_v.const) is None)))
        if out.hi < math.inf:
            out = replace(out, large=None)
    if out.lo >= -1 and out.hi <= 1:
        out = replace(out, beyond=None)
    merged: dict[float, Evidence] = {}
    for p, e in points:
        if out.contains(p):  # clamp(-1 + eps, 1 - eps) keeps a cosine off +-1
            merged[p] = stronger(merged.get(p), e)
    return replace(out, points=tuple(merged.items()))


def linear(call: OpCall) -> Value:
    node, text = call.node, call.text()
    operands = [call.arg(a) for a in call.spec.args if call.arg(a) is not None]
    if call.name == "einsum":
        operands = [a for a in call.extra_positional if not isinstance(a, (cst.SimpleString, cst.ConcatenatedString))]
        equation = call.arg("equation") or (call._positional[0] if call._positional else None)
        if not operands and call._positional:
            operands = [a for a in call._positional[1:]]
    values = [call.ev.value(o) for o in operands[:3]]
    grad = None
    for v in values:
        grad = d.join_grad(grad, v.grad) if grad is not None else v.grad
    if call.name in ("linear", "conv1d", "conv2d", "conv3d", "embedding", "bilinear", "conv_transpose1d", "conv_transpose2d", "scaled_dot_product_attention"):
        grad = True if grad is None else grad
    out = Value(grad=grad, node=node, desc=f"a product (`{text}`)", role=d.ACTIVATION)
    if len(values) >= 2 and values[0].unit and values[1].unit:
        why = f"`{text}` is a cosine of unit vectors: exactly +-1 for parallel vectors"
        return replace(out, lo=-1.0, hi=1.0, desc=f"a cosine (`{text}`, a product of normalized vectors)", role=None,
                       beyond=Evidence(Tier.PLAUSIBLE, f"`{text}`, a product of unit vectors, rounds past +-1 for nearly parallel vectors", node, "rounding"),
                       points=((1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel")), (-1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel"))))
    if len(operands) >= 2 and call.ev.text(operands[0]) == call.ev.text(operands[1]) and call.name in ("einsum", "dot", "vdot", "inner"):
        x = values[0]
        out = replace(out, lo=0.0, desc=f"a squared norm (`{text}`)", role=None)
        return out.with_point(0.0, x.vanish) if x.vanish is not None else out
    if values and all(v.nonneg for v in values):
        out = replace(out, lo=0.0)
        vanishing = [v.vanish for v in values if v.vanish is not None]
        if vanishing:
            out = out.with_point(0.0, max(vanishing, key=lambda e: e.tier))
    vanishing = [v.vanish for v in values if v.vanish is not None]
    if vanishing:
        strongest = max(vanishing, key=lambda e: e.tier)
        out = replace(out, vanish=strongest)
        if all(v.nonneg for v in values) or len(values) >= 1:
            out = out.with_point(0.0, strongest)
    if values and values[0].role == d.DATA and call.name not in ("linear", "embedding"):
        out = replace(out, role=d.DATA if all(v.grad is False for v in values[1:]) else d.ACTIVATION)
    return out


def normalize(call: OpCall) -> Value:
    x = call.input
    return Value(lo=-1.0, hi=1.0, unit=True, grad=x.grad, dtype=x.dtype, node=call.node, vanish=x.vanish,
                 role=x.role if x.role in (d.DATA, d.ACTIVATION) else None, desc=f"unit vectors (`{call.text()}`)")


def cosine(call: OpCall) -> Value:
    node, text = call.node, call.text()
    a, b = call.val("x1"), call.val("x2")
    why = f"`{text}` is exactly +-1 for parallel (or identical) vectors"
    return Value(lo=-1.0, hi=1.0, grad=d.join_grad(a.grad, b.grad), node=node, desc=f"a cosine similarity (`{text}`)",
                 beyond=Evidence(Tier.PLAUSIBLE, f"`{text}` rounds past +-1 for nearly parallel vectors", node, "rounding"),
                 points=((1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel")), (-1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel"))))


def where(call: OpCall) -> Value:
    a, b = call.arg("input"), call.arg("other")
    if a is None or b is None:
        cond = call.arg("condition")
        return Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=call.node,
                     empty=Evidence(Tier.PLAUSIBLE, f"`{call.text()}` is empty when the condition holds nowhere", call.node, "empty",
                                    call.ev.emptiness_root(cond)))
    out = d.join(call.ev.value(a), call.ev.value(b))
    return replace(out, node=call.node, items=None)


def masked_fill(call: OpCall) -> Value:
    x, fill = call.input, call.val("value")
    return replace(d.join(x, replace(fill, role=x.role, desc=x.desc)), node=call.node, desc=x.desc, role=x.role, items=None)


_CASTS = {"half": "float16", "float16": "float16", "bfloat16": "bfloat16", "float": "float32", "float32": "float32",
          "double": "float64", "float64": "float64", "long": "int", "int": "int", "int64": "int", "int32": "int", "bool": "bool"}


def identity(call: OpCall) -> Value:
    x = call.input
    if call.arg("input") is None:
        return d.UNKNOWN
    out = replace(x, node=call.node if x.node is None else x.node)
    if call.name == "dropout":
        out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{call.text()}` zeroes elements", call.node, "dropout"))
    return out


def cast(x: Value, method: str, call: OpCall | None) -> Value:
    """``x.half()``, ``x.float()``, ``x.to(torch.float16)``, ``x.long()``, ``x.bool()``."""
    if method in ("reshape", "view", "unflatten") and call is not None:
        x = _binned_rows(x, call)
    dtype = _CASTS.get(method)
    if method in ("to", "type") and call is not None:
        for a in call._positional + list(call._keywords.values()):
            text = call.ev.text(a)
            for key, value in _CASTS.items():
                if text.endswith(key) or text.endswith(key + "Tensor") or text == f"'{key}'":
                    dtype = value
    if dtype is None:
        return x
    out = replace(x, dtype=dtype)
    if dtype in ("int", "bool"):
        out = replace(out, integer=True, grad=False)
        if dtype == "bool" or x.role == d.MASK:
            out = replace(out, role=d.MASK)
    return out


def _binned_rows(x: Value, call: OpCall) -> Value:
    """A histogram reshaped into rows (``bincount(t * n + p).reshape(n, n)``, a confusion matrix): each row is
    a block of bins, all empty for a class absent from the batch, so a row's sum can be 0."""
    empty = x.zero
    if empty is None or empty.kind != "empty-bin" or x.vanish is not None:
        return x
    shape = call._positional
    if len(shape) == 1 and isinstance(shape[0], (cst.Tuple, cst.List)):
        shape = [e.value for e in shape[0].elements]
    if len(shape) < 2:
        return x
    why = f"a row of the histogram `{call.text()}` is all 0 for a class absent from the batch"
    return replace(x, vanish=Evidence(empty.tier, why, call.node, "empty-bin", empty.root))


def detach(call: OpCall) -> Value:
    return replace(call.input, grad=False)


def loss(call: OpCall) -> Value:
    x = call.input
    return Value(lo=0.0, grad=x.grad if x.grad is not None else True, node=call.node, desc=f"a loss (`{call.text()}`)")


def atan2(call: OpCall) -> Value:
    return Value(lo=-math.pi, hi=math.pi, grad=d.join_grad(call.input.grad, call.val("other").grad), node=call.node)


def xlogy(call: OpCall) -> Value:
    return Value(grad=d.join_grad(call.input.grad, call.val("other").grad), node=call.node)
