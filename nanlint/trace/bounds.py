"""Upper bounds on |x| of an op's result, from the bounds of its inputs: the monitor's cheap proof that a result
is finite without scanning it (CPU path).

An input scanned by the monitor is bounded by its largest |value|; the result of ``mm`` of finite inputs is
bounded by ``K * |A|max * |B|max`` (K the inner size), of ``add`` by ``|a|max + |alpha| * |b|max``, of a
selection (``cat``, ``where``, ``relu``, ``index``) by the largest input or constant, of ``sigmoid``/``tanh``/
``softmax`` by 1. Finite inputs whose result's bound lies well inside its dtype's range (1/8 of its largest
finite value, far more than rounding can add) cannot give an inf or a NaN: the result is recorded as finite with
that bound and not scanned. A bound that grows too large (a long chain of products, any float16 arithmetic near
its 65504) only means the next result is scanned, which gives a tight bound again. Ops without a rule here are
scanned as before.

Each rule takes the op's ``args``, ``kwargs`` and ``b``, a dict from ``id`` of each floating-point tensor argument to
its bound (None when unknown; integer tensors are absent, so a rule that needs a float one gets None), and returns
the bound of the result, or None."""
from __future__ import annotations

import torch

LIMIT = {dtype: torch.finfo(dtype).max / 8 for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}
FLOATS = frozenset(LIMIT)
_Tensor = torch.Tensor


def _arg(args, kwargs, index, name, default=None):
    if index < len(args):
        return args[index]
    return kwargs.get(name, default)


def _value(v, b):
    """Bound of one argument: a tensor's (None if unknown), a number's magnitude, None otherwise."""
    if isinstance(v, _Tensor):
        return b.get(id(v))
    if isinstance(v, (int, float)):
        return abs(v)
    return None


def _scale(v) -> float | None:
    """A scalar multiplier (alpha, beta, value): its magnitude, 1 when absent, None when not a plain number."""
    if v is None:
        return 1.0
    if isinstance(v, (int, float)):
        return abs(float(v))
    return None


def flat_arguments(args, kwargs):
    """Every argument of an op call, the items of its lists and tuples in place of them."""
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a
    for a in kwargs.values():
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a


def select(args, kwargs, b):
    """The result's values are input values or constants (index tensors and masks are not values)."""
    m = 1.0
    for v in flat_arguments(args, kwargs):
        if isinstance(v, _Tensor):
            if v.dtype in FLOATS:
                x = b.get(id(v))
                if x is None:
                    return None
                if x > m:
                    m = x
            elif v.is_floating_point() or v.is_complex():
                return None
        elif isinstance(v, (int, float)):
            x = abs(v)
            if x > m:
                m = x
            elif x != x:  # a NaN constant: the result may hold it
                return None
    return m


def _overwritten(args, kwargs, b):
    """``fill_(self, value)``, ``copy_(self, src)``, ``bernoulli_(self, p)``: the old values of ``self`` do not count."""
    return select(args[1:], kwargs, b)


def _unit(args, kwargs, b):
    return 1.0


def _plus_one(args, kwargs, b):
    m = select(args, kwargs, b)
    return None if m is None else m + 1.0


def _scaled_select(args, kwargs, b):
    """elu, gelu, silu: |f(x)| <= max(1, |x|) times the op's scales."""
    m = 1.0
    for v in flat_arguments(args, kwargs):
        x = _value(v, b) if isinstance(v, (_Tensor, int, float)) else 1.0
        if x is None or x != x:
            return None
        m *= max(1.0, x)
    return m


def _relu6(args, kwargs, b):
    m = select(args, kwargs, b)
    return None if m is None else max(m, 6.0)


def _add(args, kwargs, b):
    if len(args) == 2 and not kwargs:
        x, y = _value(args[0], b), _value(args[1], b)
        return None if x is None or y is None else x + y
    x, y = _value(_arg(args, kwargs, 0, "self"), b), _value(_arg(args, kwargs, 1, "other"), b)
    alpha = _scale(_arg(args, kwargs, 2, "alpha"))
    if x is None or y is None or alpha is None:
        return None
    return (x + y) * max(1.0, alpha)


def _mul(args, kwargs, b):
    if len(args) == 2:
        x, y = _value(args[0], b), _value(args[1], b)
    else:
        x, y = _value(_arg(args, kwargs, 0, "self"), b), _value(_arg(args, kwargs, 1, "other"), b)
    return None if x is None or y is None else x * y


def _div(args, kwargs, b):
    """Only by a constant that is not 0 (a tensor denominator can hold a 0)."""
    x, d = _value(_arg(args, kwargs, 0, "self"), b), _arg(args, kwargs, 1, "other")
    if x is None or not isinstance(d, (int, float)) or d == 0:
        return None
    return x / abs(d) + 1.0  # + 1: a rounding mode (floor) can move the quotient by up to 1


def _inner(t) -> int | None:
    return t.shape[-1] if isinstance(t, _Tensor) and t.dim() >= 1 else None


def _mm(args, kwargs, b):
    a, c = _arg(args, kwargs, 0, "self"), _arg(args, kwargs, 1, "mat2")
    x, y, k = _value(a, b), _value(c, b), _inner(a)
    return None if x is None or y is None or k is None else k * x * y


def _addmm(args, kwargs, b):
    """addmm(self, mat1, mat2, beta, alpha) and baddbmm(self, batch1, batch2, beta, alpha)."""
    bias, m1, m2 = (_arg(args, kwargs, i, n) for i, n in ((0, "self"), (1, "mat1"), (2, "mat2")))
    if m1 is None:
        m1, m2 = kwargs.get("batch1"), kwargs.get("batch2")
    z, x, y, k = _value(bias, b), _value(m1, b), _value(m2, b), _inner(m1)
    beta, alpha = _scale(_arg(args, kwargs, 3, "beta")), _scale(_arg(args, kwargs, 4, "alpha"))
    if None in (z, x, y, k, beta, alpha):
        return None
    return beta * z + alpha * k * x * y


def _addcmul(args, kwargs, b):
    z, x, y = (_value(_arg(args, kwargs, i, n), b) for i, n in ((0, "self"), (1, "tensor1"), (2, "tensor2")))
    value = _scale(_arg(args, kwargs, 3, "value"))
    if None in (z, x, y, value):
        return None
    return z + value * x * y


def _lerp(args, kwargs, b):
    start, end = _value(_arg(args, kwargs, 0, "self"), b), _value(_arg(args, kwargs, 1, "end"), b)
    weight = _value(_arg(args, kwargs, 2, "weight"), b)
    if None in (start, end, weight):
        return None
    return start + weight * (start + end)


def _sum(args, kwargs, b):
    a = _arg(args, kwargs, 0, "self")
    x = _value(a, b)
    return None if x is None or not isinstance(a, _Tensor) else x * max(1, a.numel())


def _dropout(args, kwargs, b):
    x, p = _value(_arg(args, kwargs, 0, "input"), b), _arg(args, kwargs, 1, "p")
    if x is None or not isinstance(p, (int, float)) or not 0 <= p < 1:
        return None
    return x / (1.0 - p)


def _sigmoid_backward(args, kwargs, b):
    g, y = _value(_arg(args, kwargs, 0, "grad_output"), b), _value(_arg(args, kwargs, 1, "output"), b)
    return None if g is None or y is None else g * y * (1.0 + y)


def _tanh_backward(args, kwargs, b):
    g, y = _value(_arg(args, kwargs, 0, "grad_output"), b), _value(_arg(args, kwargs, 1, "output"), b)
    return None if g is None or y is None else g * (1.0 + y * y)


SELECT = ("relu", "thresholdbackward", "neg", "abs", "clone", "cat", "stack", "indexselect", "gather", "embedding",
          "where", "maskedfill", "clamp", "clampmin", "clampmax", "max", "min", "amax", "amin", "sort", "topk",
          "constantpadnd", "zeroslike", "oneslike", "zero", "maxpool2dwithindices", "unsafeview", "contiguous",
          "repeat", "flip", "roll", "tril", "triu", "index", "scatter", "maskedselect", "hardtanh", "unsafesplit",
          "split", "splitwithsizes", "unsafesplitwithsizes", "chunk", "unsafechunk", "liftfresh", "copy", "tocopy",
          "selectbackward", "slicebackward", "bernoulli", "fill", "uniform")
RULES = {name: select for name in SELECT}
RULES.update({name: _unit for name in ("sigmoid", "tanh", "softmax", "safesoftmax", "sign")})
RULES.update({name: _plus_one for name in ("floor", "ceil", "round", "trunc")})
RULES.update({name: _scaled_select for name in ("elu", "gelu", "silu")})
RULES.update({"relu6": _relu6, "add": _add, "sub": _add, "rsub": _add, "mul": _mul, "div": _div, "mm": _mm,
              "bmm": _mm, "matmul": _mm, "mv": _mm, "dot": _mm, "addmm": _addmm, "baddbmm": _addmm,
              "addcmul": _addcmul, "lerp": _lerp, "sum": _sum, "nativedropout": _dropout,
              "sigmoidbackward": _sigmoid_backward, "tanhbackward": _tanh_backward})


def rule(norm: str, overwrite: bool = False):
    """The bound rule of an op (by its normalized name), or None; ``overwrite``: the op overwrites its first
    argument, whose old values do not count."""
    if overwrite and RULES.get(norm) is select:
        return _overwritten
    return RULES.get(norm)


def within(bound: float | None, dtype) -> bool:
    """A result of ``dtype`` bounded by ``bound`` is finite, whatever rounding adds (False for NaN bounds)."""
    limit = LIMIT.get(dtype)
    return bound is not None and limit is not None and bound <= limit
