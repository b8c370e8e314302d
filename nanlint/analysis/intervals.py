"""Interval arithmetic on the bounds of :class:`~nanlint.analysis.domain.Value` (closed/open ends)."""
from __future__ import annotations

import math
from typing import Callable

INF = math.inf

Bound = tuple[float, bool]  # (value, open)


def _safe(f: Callable[[float], float], x: float) -> float:
    try:
        return f(x)
    except (OverflowError, ValueError, ZeroDivisionError):
        return math.nan


def monotone(f: Callable[[float], float], lo: float, hi: float, lo_open: bool, hi_open: bool, increasing: bool = True,
             at_neg_inf: float | None = None, at_pos_inf: float | None = None) -> tuple[float, float, bool, bool]:
    """The image of [lo, hi] under a monotone ``f`` (``at_*_inf`` give its limits, which are not attained)."""
    def ev(x: float) -> float:
        if x == -INF and at_neg_inf is not None:
            return at_neg_inf
        if x == INF and at_pos_inf is not None:
            return at_pos_inf
        return _safe(f, x)

    a, b = ev(lo), ev(hi)
    if math.isnan(a) or math.isnan(b):
        return -INF, INF, False, False
    a_open, b_open = lo_open or math.isinf(lo), hi_open or math.isinf(hi)
    if not increasing:
        a, b, a_open, b_open = b, a, b_open, a_open
    return a, b, a_open and not math.isinf(a), b_open and not math.isinf(b)


def add(a_lo, a_hi, a_lo_open, a_hi_open, b_lo, b_hi, b_lo_open, b_hi_open):
    lo = _plus(a_lo, b_lo, -INF)
    hi = _plus(a_hi, b_hi, INF)
    return lo, hi, (a_lo_open or b_lo_open) and lo > -INF, (a_hi_open or b_hi_open) and hi < INF


def _plus(x: float, y: float, nan_as: float) -> float:
    s = x + y
    return nan_as if math.isnan(s) else s


def neg(lo, hi, lo_open, hi_open):
    return -hi, -lo, hi_open, lo_open


def mul(a: tuple, b: tuple) -> tuple[float, float, bool, bool]:
    a_lo, a_hi, a_lo_open, a_hi_open = a
    b_lo, b_hi, b_lo_open, b_hi_open = b
    corners = []
    for x, xo in ((a_lo, a_lo_open), (a_hi, a_hi_open)):
        for y, yo in ((b_lo, b_lo_open), (b_hi, b_hi_open)):
            if (x == 0 and not xo) or (y == 0 and not yo):
                corners.append((0.0, False))  # an exact 0 times any value of the other factor is exactly 0
                continue
            if (x == 0 and math.isinf(y)) or (y == 0 and math.isinf(x)):
                corners.append((0.0, xo or yo))  # 0 * inf: the product stays near 0 at that corner
                continue
            corners.append((x * y, xo or yo))
    lo = min(c[0] for c in corners)
    hi = max(c[0] for c in corners)
    lo_open = all(o for v, o in corners if v == lo)
    hi_open = all(o for v, o in corners if v == hi)
    return lo, hi, lo_open and lo > -INF, hi_open and hi < INF


def reciprocal(lo, hi, lo_open, hi_open) -> tuple[float, float, bool, bool]:
    """1 / [lo, hi] for an interval that excludes 0 (else unbounded). A nonnegative interval's 0 is +0.0 (a square,
    a norm, a count), whose reciprocal is +inf: 1 / [0, hi] = [1/hi, inf], so the sign survives the division."""
    positive = lo >= 0
    negative = hi < 0 or (hi == 0 and hi_open)
    if not (positive or negative):
        return -INF, INF, False, False
    new_lo = 0.0 if hi == INF or hi == -INF else 1.0 / hi if hi != 0 else -INF
    new_hi = INF if lo == 0 else 1.0 / lo if lo not in (INF, -INF) else 0.0
    if positive:
        return new_lo, new_hi, hi_open or hi == INF, lo_open and lo != 0 or lo == 0
    # negative interval [lo, hi] with hi < 0
    return (1.0 / hi if hi != 0 else -INF), (0.0 if lo == -INF else 1.0 / lo), hi_open and hi != 0, lo_open or lo == -INF


def power(lo, hi, lo_open, hi_open, p: float) -> tuple[float, float, bool, bool]:
    """[lo, hi] ** p for a constant p."""
    if p == 0:
        return 1.0, 1.0, False, False
    if float(p).is_integer():
        n = int(p)
        if n > 0 and n % 2 == 0:
            if lo >= 0:
                return _pow(lo, n), _pow(hi, n), lo_open, hi_open
            if hi <= 0:
                return _pow(hi, n), _pow(lo, n), hi_open, lo_open
            top = max(_pow(lo, n), _pow(hi, n))
            return 0.0, top, False, False
        if n > 0:
            return _pow(lo, n), _pow(hi, n), lo_open, hi_open
        # negative integer powers: through the reciprocal
        r = reciprocal(lo, hi, lo_open, hi_open)
        return power(*r, -n)
    # fractional exponent: defined on x >= 0 only
    if lo < 0:
        lo, lo_open = 0.0, False
    if p > 0:
        return _pow(lo, p), _pow(hi, p), lo_open, hi_open
    if lo == 0:
        return _pow(hi, p), INF, hi_open, False
    return _pow(hi, p), _pow(lo, p), hi_open, lo_open


def _pow(x: float, n: float) -> float:
    try:
        return float(x) ** n if x != INF else INF
    except (OverflowError, ZeroDivisionError):
        return INF
