"""Transfer functions of elementwise unary ops: math functions, activations, probabilities.

Each function maps the input's bounds (through its monotone pieces), its exactly reached points (``f(p)``),
and its all-zero / constant evidence (kept where ``f(0) == 0`` / always), and adds the evidence the op itself
creates: ``relu`` is exactly 0 for every negative input, ``sigmoid`` and ``softmax`` underflow to exactly 0
and round to exactly 1 once their inputs are far enough apart, ``tanh`` and ``erf`` round to exactly +-1.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

from nanlint.analysis import domain as d
from nanlint.analysis.domain import Evidence, Tier, Value
from nanlint.analysis.intervals import INF, monotone

# float32: exp overflows above 88.72; sigmoid(x) rounds to exactly 1.0 above ~16.6 and underflows to exactly 0
# below about -103.9 (the smallest subnormal is exp(-103.97)); tanh rounds to +-1 beyond ~9.01; erf beyond ~3.92.
EXP_MAX = 88.72
SIGMOID_ONE = 16.7
UNDERFLOW = 103.9
TANH_ONE = 9.02
ERF_ONE = 3.92


def _log(x: float) -> float:
    return -INF if x == 0 else math.log(x)


def _rsqrt(x: float) -> float:
    return INF if x == 0 else 1 / math.sqrt(x)


def _logit(x: float) -> float:
    if x <= 0:
        return -INF
    if x >= 1:
        return INF
    return math.log(x / (1 - x))


def _atanh(x: float) -> float:
    if x <= -1:
        return -INF
    if x >= 1:
        return INF
    return math.atanh(x)


def _sigmoid(x: float) -> float:
    if x < -700:
        return 0.0
    return 1 / (1 + math.exp(-x))


#: name -> (f, increasing, lowest valid input, highest valid input, f(-inf), f(inf))
MONOTONE: dict[str, tuple[Callable[[float], float], bool, float, float, float | None, float | None]] = {
    "exp": (math.exp, True, -INF, INF, 0.0, INF),
    "exp2": (lambda x: 2.0 ** x, True, -INF, INF, 0.0, INF),
    "expm1": (math.expm1, True, -INF, INF, -1.0, INF),
    "log": (_log, True, 0.0, INF, None, INF),
    "log2": (lambda x: _log(x) / math.log(2), True, 0.0, INF, None, INF),
    "log10": (lambda x: _log(x) / math.log(10), True, 0.0, INF, None, INF),
    "log1p": (lambda x: -INF if x == -1 else math.log1p(x), True, -1.0, INF, None, INF),
    "sqrt": (math.sqrt, True, 0.0, INF, None, INF),
    "rsqrt": (_rsqrt, False, 0.0, INF, None, 0.0),
    "cbrt": (lambda x: math.copysign(abs(x) ** (1 / 3), x), True, -INF, INF, -INF, INF),
    "logit": (_logit, True, 0.0, 1.0, None, None),
    "acos": (math.acos, False, -1.0, 1.0, None, None),
    "asin": (math.asin, True, -1.0, 1.0, None, None),
    "atanh": (_atanh, True, -1.0, 1.0, None, None),
    "erfinv": (lambda x: _atanh(x), True, -1.0, 1.0, None, None),  # same shape, same edges
    "acosh": (lambda x: math.acosh(x), True, 1.0, INF, None, INF),
    "atan": (math.atan, True, -INF, INF, -math.pi / 2, math.pi / 2),
    "tanh": (math.tanh, True, -INF, INF, -1.0, 1.0),
    "erf": (math.erf, True, -INF, INF, -1.0, 1.0),
    "erfc": (math.erfc, False, -INF, INF, 2.0, 0.0),
    "sinh": (math.sinh, True, -INF, INF, -INF, INF),
    "floor": (math.floor, True, -INF, INF, -INF, INF),
    "ceil": (math.ceil, True, -INF, INF, -INF, INF),
    "round": (round, True, -INF, INF, -INF, INF),
    "trunc": (math.trunc, True, -INF, INF, -INF, INF),
    "sigmoid": (_sigmoid, True, -INF, INF, 0.0, 1.0),
    "relu": (lambda x: max(x, 0.0), True, -INF, INF, 0.0, INF),
    "relu6": (lambda x: min(max(x, 0.0), 6.0), True, -INF, INF, 0.0, 6.0),
    "softplus": (lambda x: x if x > 30 else math.log1p(math.exp(x)), True, -INF, INF, 0.0, INF),
    "softsign": (lambda x: x / (1 + abs(x)), True, -INF, INF, -1.0, 1.0),
    "hardtanh": (lambda x: min(max(x, -1.0), 1.0), True, -INF, INF, -1.0, 1.0),
    "hardsigmoid": (lambda x: min(max(x / 6 + 0.5, 0.0), 1.0), True, -INF, INF, 0.0, 1.0),
}
#: where f(0) == 0 an all-zero input stays all-zero
ZERO_PRESERVING = frozenset({
    "sqrt", "cbrt", "asin", "atanh", "atan", "tanh", "erf", "sinh", "floor", "ceil", "round", "trunc", "relu", "relu6",
    "softsign", "hardtanh", "sin", "tan", "sign", "leaky", "gelu", "silu", "mish", "elu", "selu", "hardswish", "erfinv",
    "expm1", "frac", "standardize",
})
#: lower bounds of activations that are not monotone: gelu >= -0.17, silu >= -0.28, ...
FLOORS = {"gelu": -0.17, "silu": -0.2785, "mish": -0.3089, "elu": -1.0, "selu": -1.7581, "hardswish": -0.375}
INTEGER_VALUED = frozenset({"floor", "ceil", "round", "trunc", "sign"})


def apply(fn: str, x: Value, node, text: str) -> Value:
    """The value of ``fn(x)`` elementwise."""
    lo, hi, lo_open, hi_open = _bounds(fn, x)
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, grad=x.grad, dtype=x.dtype, node=node,
                integer=fn in INTEGER_VALUED, desc=f"a `{fn}` output", op=fn)
    out = replace(out, points=_mapped_points(fn, x))
    if x.vanish is not None:
        out = replace(out, vanish=x.vanish) if fn in ZERO_PRESERVING else replace(out, constant=x.vanish)
    if x.constant is not None:
        out = replace(out, constant=x.constant)
    if x.const is not None:
        f = MONOTONE.get(fn)
        try:
            value = f[0](x.const) if f is not None else None
        except (ValueError, OverflowError, ZeroDivisionError):
            value = None
        if value is not None and math.isfinite(value):
            return d.constant(value, node)
    return _created(fn, x, out, node, text)


def _bounds(fn: str, x: Value) -> tuple[float, float, bool, bool]:
    if fn in ("sin", "cos"):
        return -1.0, 1.0, False, False
    if fn == "tan":
        return -INF, INF, False, False
    if fn == "sign":
        return (0.0 if x.nonneg else -1.0), (0.0 if x.nonpos else 1.0), False, False
    if fn == "frac":
        return 0.0, 1.0, False, True
    if fn == "leaky":
        return (-INF if x.lo < 0 else x.lo), (INF if x.hi > 0 else x.hi), False, False
    if fn in FLOORS:
        return max(FLOORS[fn], x.lo if x.lo >= 0 else FLOORS[fn]), (x.hi if x.hi >= 0 else 0.0), False, False
    if fn == "standardize" or fn not in MONOTONE:
        return -INF, INF, False, False
    f, increasing, valid_lo, valid_hi, at_neg, at_pos = MONOTONE[fn]
    lo, lo_open, hi, hi_open = x.lo, x.lo_open, x.hi, x.hi_open
    if lo < valid_lo:  # values outside the domain give NaN; the bounds are those of the valid part
        lo, lo_open = valid_lo, False
    if hi > valid_hi:
        hi, hi_open = valid_hi, False
    if lo > hi:
        return -INF, INF, False, False
    out = monotone(f, lo, hi, lo_open, hi_open, increasing, at_neg, at_pos)
    if fn in ("tanh", "erf", "sigmoid", "softsign", "hardtanh", "hardsigmoid", "relu", "relu6", "erfc"):
        # these saturate: in floating point the limits are reached exactly
        out = (out[0], out[1], out[2] and out[0] not in (-1.0, 0.0), out[3] and out[1] not in (1.0, 2.0, 6.0))
    if fn in ("exp", "exp2", "softplus") and out[0] == 0.0:
        out = (0.0, out[1], True, out[3])  # they underflow to 0 only for inputs far below (evidence says when)
    return out


def _mapped_points(fn: str, x: Value) -> tuple:
    out = []
    f = MONOTONE.get(fn)
    for p, evidence in x.points:
        if fn in ("sin", "tan", "sign", "leaky", "standardize") or fn in FLOORS:
            if p == 0:
                out.append((0.0, evidence))
            elif fn == "sign":
                out.append((math.copysign(1.0, p), evidence))
            continue
        if fn == "cos":
            if p == 0:
                out.append((1.0, evidence))
            continue
        if f is None:
            continue
        try:
            value = f[0](p)
        except (ValueError, OverflowError, ZeroDivisionError):
            continue
        if value is not None and math.isfinite(value):
            out.append((float(value), evidence))
    return tuple(out)


def _created(fn: str, x: Value, out: Value, node, text: str) -> Value:
    """Evidence the op itself creates."""
    if fn == "relu" or fn == "relu6":
        if not x.positive:
            # relu's backward passes 0 where its input was <= 0: an inf gradient arriving at its 0s is dropped
            out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly 0 wherever its input is negative", node, "relu", selects=True))
            if out.vanish is None and not x.nonneg:
                out = replace(out, vanish=Evidence(Tier.DEGENERATE, f"`{text}` is all 0 for a dead unit", node, "relu"))
        return replace(out, role=x.role if x.role in (d.ACTIVATION, d.DATA) else d.ACTIVATION if x.grad else x.role)
    if fn in ("exp", "exp2"):
        if x.large is not None:
            out = replace(out, large=x.large)
        if x.hi > EXP_MAX and x.const is None:
            # exactly inf, which a reciprocal (1 / (1 + exp(-z))) turns into exactly 0
            # scores and signals reach 88.7; a schedule or setting computed without gradient (np.exp of a
            # config's log-SNR grid) does so only when the configuration itself is extreme
            computed = x.grad is False and x.role not in (d.DATA, d.ACTIVATION) and x.large is None
            tier = Tier.DEGENERATE if computed else Tier.PLAUSIBLE
            out = out.with_point(INF, Evidence(tier, f"`{text}` overflows to inf for inputs above {EXP_MAX:g}", node, "overflow"))
        if x.role == d.LOGPROB or (x.hi <= 0 and x.lo == -INF and x.informative):
            out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` underflows to exactly 0 for inputs below -104", node, "underflow"))
            out = replace(out, role=d.PROBABILITY) if x.hi <= 0 else out
        return out
    if fn in ("sigmoid", "hardsigmoid"):
        out = replace(out, role=d.PROBABILITY, desc=f"a `{fn}` output")
        threshold_lo, threshold_hi = (-3.0, 3.0) if fn == "hardsigmoid" else (-UNDERFLOW, SIGMOID_ONE)
        if x.lo < threshold_lo and x.const is None:
            out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` underflows to exactly 0 for large negative inputs", node, "underflow"))
        if x.hi > threshold_hi and x.const is None:
            out = out.with_point(1.0, Evidence(Tier.PLAUSIBLE, f"`{text}` rounds to exactly 1 for inputs above {threshold_hi:g}", node, "saturate"))
        return out
    if fn in ("tanh", "erf", "hardtanh"):
        edge = {"tanh": TANH_ONE, "erf": ERF_ONE, "hardtanh": 1.0}[fn]
        if x.hi > edge and x.const is None:
            out = out.with_point(1.0, Evidence(Tier.PLAUSIBLE, f"`{text}` rounds to exactly 1 for inputs above {edge:g}", node, "saturate"))
        if x.lo < -edge and x.const is None:
            out = out.with_point(-1.0, Evidence(Tier.PLAUSIBLE, f"`{text}` rounds to exactly -1 for inputs below -{edge:g}", node, "saturate"))
        return out
    if fn == "softplus" and x.lo < -UNDERFLOW:
        return out.with_point(0.0, Evidence(Tier.DEGENERATE, f"`{text}` underflows to 0 for inputs below -104", node, "underflow"))
    if fn == "erfc" and x.hi > 10:
        return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` underflows to exactly 0 for inputs above 10", node, "underflow"))
    if fn == "det":
        out = Value(grad=x.grad, node=node, desc="a determinant")
        out = replace(out, below=Evidence(Tier.PLAUSIBLE, f"`{text}` is negative for a reflection", node, "det"))
        return out.with_point(0.0, Evidence(Tier.DEGENERATE, f"`{text}` is 0 for a singular matrix", node, "det"))
    if fn in ("floor", "round", "trunc") and x.informative and x.contains(0.0) and x.zero is None and x.const is None:
        return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` rounds small values to exactly 0", node, "rounding"))
    if fn == "log" and x.role == d.PROBABILITY:
        return replace(out, role=d.LOGPROB)
    if fn in ZERO_PRESERVING and x.role in (d.DATA, d.ACTIVATION, d.RANDOM):
        return replace(out, role=x.role)
    return out


def softmax(x: Value, node, text: str, fn: str = "softmax") -> Value:
    """``softmax``: values in [0, 1] that sum to 1; exactly 0 once the inputs spread over ~104 (underflow),
    exactly 1 when one input dominates (saturation)."""
    out = Value(lo=0.0, hi=1.0, role=d.PROBABILITY, dist=True, grad=x.grad, dtype=x.dtype, node=node, desc=f"a `{fn}` output", op=fn)
    spread = x.hi - x.lo
    if x.const is not None or x.vanish is not None and x.vanish.tier == Tier.PLAUSIBLE and not x.informative:
        return out
    if spread > UNDERFLOW or not x.informative:
        out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` underflows to exactly 0 for scores far below the row's largest", node, "underflow"))
        out = out.with_point(1.0, Evidence(Tier.PLAUSIBLE, f"`{text}` rounds to exactly 1 when one score dominates its row", node, "saturate"))
    elif spread > 17:
        out = out.with_point(0.0, Evidence(Tier.DEGENERATE, f"`{text}` underflows to 0 in float16 for scores 17 below the row's largest", node, "underflow"))
    return out


def logprob(x: Value, node, fn: str) -> Value:
    out = Value(lo=-INF, hi=0.0, role=d.LOGPROB, grad=x.grad, dtype=x.dtype, node=node, desc=f"a `{fn}` output", op=fn)
    return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"a `{fn}` output is exactly 0 when it saturates", node, "saturate"))
