"""Transfer functions of arithmetic: ``+ - * / **``, ``neg``, ``abs``, ``square`` in every spelling.

Beyond interval arithmetic, subtraction knows the differences the code's own math makes meaningful:
``x.max() - x.min()`` is 0 for a constant input, ``x - x.max()`` is 0 at the maximum, two coordinates of one
tensor (``boxes[:, 3] - boxes[:, 1]``) coincide for a degenerate box, ``x[:, None] - x[None]`` is 0 on its
diagonal, and a subtraction whose operands' bounds overlap (``1 - exp(-2 * h)``) is below 0 for part of
them. Expansions that are >= 0 only in exact arithmetic (``|x|^2 + |y|^2 - 2 x.y``, ``E[x^2] - E[x]^2``,
``1 - cos^2`` of a cosine that rounds past 1) are below 0 by rounding.
"""
from __future__ import annotations

import builtins

import math
from dataclasses import replace

import libcst as cst

from nanlint.analysis import domain as d
from nanlint.analysis import members
from nanlint.analysis import intervals as iv
from nanlint.analysis.domain import INF, Evidence, Tier, Value, stronger
from nanlint.analysis.opcall import OpCall
from nanlint.analysis import shapes


def _weaker(a: Evidence | None, b: Evidence | None) -> Evidence | None:
    """Evidence that needs both: the weaker one."""
    if a is None or b is None:
        return None
    return a if a.tier <= b.tier else b


def _selected(zero: Evidence | None, other: Value) -> Evidence | None:
    """A relu's 0 times a factor that carries a gradient: that factor's gradient (relu(x) * inf) is not dropped."""
    if zero is None or not zero.selects or other.grad is False or other.const is not None:
        return zero
    return replace(zero, selects=False)


def _shift(points, c: float, sign: float = 1.0):
    return tuple((sign * p + c, e) for p, e in points)


def _role(a: Value, b: Value) -> str | None:
    if b.const is not None:
        return a.role
    if a.const is not None:
        return b.role
    return a.role if a.role == b.role else None


def _common(a: Value, b: Value, node) -> dict:
    return dict(grad=d.join_grad(a.grad, b.grad), dtype=a.dtype or b.dtype, node=node)


def add(a: Value, b: Value, node, text: str) -> Value:
    if a.const is not None and b.const is not None:
        return d.constant(a.const + b.const, node)
    lo, hi, lo_open, hi_open = iv.add(a.lo, a.hi, a.lo_open, a.hi_open, b.lo, b.hi, b.lo_open, b.hi_open)
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, integer=a.integer and b.integer, role=_role(a, b),
                desc=a.desc if b.const is not None else b.desc if a.const is not None else None, **_common(a, b, node))
    if b.const is not None:
        out = replace(out, points=_shift(a.points, b.const), vanish=None if b.const else a.vanish,
                      constant=a.constant or a.vanish, large=a.large, empty=a.empty, beyond=a.beyond if not b.const else None)
    elif a.const is not None:
        out = replace(out, points=_shift(b.points, a.const), vanish=None if a.const else b.vanish,
                      constant=b.constant or b.vanish, large=b.large, empty=b.empty)
    else:
        zero = _weaker(a.zero, b.zero) if a.nonneg and b.nonneg else None
        if zero is not None and zero.selects and not (a.zero.selects and b.zero.selects):
            zero = replace(zero, selects=False)  # the other term's gradient reaches its own input
        out = replace(out, points=((0.0, zero),) if zero else (), vanish=_weaker(a.vanish, b.vanish),
                      constant=_weaker(a.constant or a.vanish, b.constant or b.vanish), large=stronger(a.large, b.large))
    out = _absorbed(out, a, b, text, node)
    return _below(out, a, b, text)


# float32 keeps 24 bits: c + y rounds to exactly c once |y| < |c| * 2**-24
ROUNDING = 2.0 ** -24


def _absorbed(out: Value, a: Value, b: Value, text: str, node) -> Value:
    """``c + exp(-z)``: the exp output shrinks toward 0 (it is below ``c * 6e-8`` for ``-z`` under -17 or so) and
    the sum rounds to exactly ``c``: the reason a hand-written ``1 - 1 / (1 + exp(-z))`` is exactly 0."""
    for c, y in ((a, b), (b, a)):
        if c.const and abs(c.const) >= 1e-3 and y.op in ("exp", "exp2") and y.lo == 0 and y.const is None:
            why = f"`{text}` rounds to exactly {c.const:g} where the exp term falls below {abs(c.const) * ROUNDING:.0e}"
            closed = out.but(lo_open=out.lo_open and out.lo != c.const, hi_open=out.hi_open and out.hi != c.const)
            return closed.with_point(c.const, Evidence(Tier.PLAUSIBLE, why, node, "saturate"))
    return out


def sub(call: OpCall | None, a: Value, b: Value, node, text: str,
        left: cst.BaseExpression | None = None, right: cst.BaseExpression | None = None) -> Value:
    if a.const is not None and b.const is not None:
        return d.constant(a.const - b.const, node)
    nb = negate(b, None)
    out = add(a, nb, node, text)
    if a.const is not None:
        out = replace(out, desc=None)
    if call is not None and left is not None and right is not None:
        out = _difference_facts(call, out, a, b, left, right, text)
    if a.role == d.LOGPROB and b.role == d.LOGPROB and out.large is None:
        why = f"`{text}` is a log-ratio of two distributions: unbounded once they disagree on an unlikely outcome"
        out = replace(out, large=Evidence(Tier.PLAUSIBLE, why, node, "log-ratio"))
    out = _below(out, a, nb, text, subtraction=(a, b))
    if out.below is None and a.nonneg and a.desc is not None and a.desc.startswith("a square") and b.const is None \
            and not b.nonpos and not b.informative:
        # b**2 - 4*a*c, E[x**2] - ...: a square less a term of unknown size goes below 0 wherever the term is larger
        why = f"`{text}` is negative wherever the subtracted term exceeds the square"
        out = replace(out, below=Evidence(Tier.PLAUSIBLE, why, node, "difference"))
    if a.const == 1 and b.beyond is not None and b.nonneg and b.hi <= 1 and out.below is None:
        # 1 - cos**2: the square of a cosine rounds past 1, and the difference below 0
        why = f"`{text}` rounds below 0 where its subtracted term rounds past 1 ({b.beyond.why})"
        out = replace(out, below=Evidence(b.beyond.tier, why, node, "name-rounding" if b.beyond.kind == "name" else "rounding"))
    return out


def _below(out: Value, a: Value, b: Value, text: str, subtraction: tuple[Value, Value] | None = None) -> Value:
    """A sum whose bounds go below 0 because of the code's own math (both sides have known bounds)."""
    if out.nonneg:
        return replace(out, below=None)
    inherited = stronger(a.below, b.below) if not (a.nonneg and b.nonneg) else None
    if subtraction is not None:
        minuend, subtrahend = subtraction
        if minuend.nonneg and subtrahend.nonneg and minuend.informative and subtrahend.informative and out.lo < 0:
            why = f"`{text}` is below 0 wherever the subtracted term exceeds {_bound_text(minuend)}"
            # the subtracted term's own range passing the first is plausible only for values that vary with the
            # data (activations, signals, anything carrying a gradient); a schedule or setting computed without
            # gradient (1 - exp(-2 * h), sigma_to**2 - sigma_up**2) is laid out by its author to stay above
            varies = any(v.grad is not False or v.role in (d.DATA, d.ACTIVATION) for v in (minuend, subtrahend) if v.const is None)
            tier = Tier.PLAUSIBLE if varies else Tier.DEGENERATE
            return replace(out, below=stronger(inherited, Evidence(tier, why, out.node, "negative")))
        if minuend.nonneg and subtrahend.beyond is not None and subtrahend.hi >= minuend.lo:
            why = f"`{text}` rounds below 0: the subtracted term can round past 1"
            return replace(out, below=stronger(inherited, Evidence(Tier.PLAUSIBLE, why, out.node, "rounding")))
    elif a.informative and b.informative and out.lo < 0 and out.lo > -INF and (a.nonneg or b.nonneg):
        why = f"`{text}` is below 0 for part of its range (down to {out.lo:g})"
        return replace(out, below=stronger(inherited, Evidence(Tier.PLAUSIBLE, why, out.node, "negative")))
    return replace(out, below=inherited)


def _bound_text(v: Value) -> str:
    if v.const is not None:
        return f"{v.const:g}"
    return "the first"


def _difference_facts(call: OpCall, out: Value, a: Value, b: Value, left, right, text: str) -> Value:
    """What the structure of ``left - right`` says: self-differences, coordinates, pairs, expansions."""
    ev = call.ev
    node = out.node
    rest = members.complement_of(ev, call.frame or ev.frame, left, right)
    if rest is not None:  # n - (x == c).sum(): the elements the mask leaves out
        why = f"`{text}` counts the elements where `{rest}` fails: 0 when it holds for every one"
        out = replace(out, lo=0.0, lo_open=False, below=None, integer=True, role=d.COUNT, grad=False,
                      desc=f"a count of the rest (`{text}`)")
        return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, why, node, "complement"))
    ls, rs = shapes.stem(ev, left), shapes.stem(ev, right)
    if ls is not None and rs is not None and ls.base == rs.base:
        base = ev.value(ls.base_expr) if ls.base_expr is not None else d.UNKNOWN
        if ls.kind == "max" and rs.kind == "min":  # range of one tensor: 0 when it is constant
            tier = Tier.DEGENERATE if base.role in (d.RANDOM,) or base.const is not None else Tier.PLAUSIBLE
            why = base.constant.why if base.constant is not None else f"`{text}` is 0 for a constant input"
            out = replace(out, lo=0.0, lo_open=False, below=None)
            return out.with_point(0.0, Evidence(tier, why, node, "constant", root=ls.base))
        if ls.kind == "value" and rs.kind in ("max", "min", "mean", "median"):
            if rs.kind == "max":
                out = replace(out, hi=min(out.hi, 0.0), below=None)
                out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly 0 at each row's maximum", node, "argmax"))
            elif rs.kind == "min":
                out = replace(out, lo=max(out.lo, 0.0), below=None)
                out = out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly 0 at each row's minimum", node, "argmin"))
            if base.constant is not None:
                out = replace(out, vanish=base.constant)
            return replace(out, role=base.role)
        if ls.kind == "element" and rs.kind == "element" and ls.index != rs.index:
            if ls.pairwise and rs.pairwise:
                ev_ = Evidence(Tier.PLAUSIBLE, f"`{text}` is 0 on its diagonal (each element minus itself)", node, "self-pair", root=ls.base)
                return replace(out.with_point(0.0, ev_), vanish=ev_)
            if base.role == d.INDEX:
                return out  # two entries of a grid (arange, linspace) are distinct by construction
            # boxes and intervals of data collapse (a constant column, a zero-width box); two entries of
            # anything else (interpolation nodes, a schedule, a parameter) coincide only when it is degenerate
            tier = Tier.PLAUSIBLE if base.role == d.DATA else Tier.DEGENERATE
            ev_ = Evidence(tier, f"`{text}`: two entries of `{ls.base}` coincide (a degenerate box or interval)", node, "coincide", root=ls.base)
            return out.with_point(0.0, ev_)
    if ls is not None and ls.kind == "value" and ls.base in shapes.dominated(ev, right):
        # x - m where m bounds x entry by entry (a hand-written max shift): <= 0, exactly 0 at the maximum
        out = replace(out, hi=min(out.hi, 0.0), below=None, large=None)
        return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is exactly 0 where the bound is met", node, "argmax"))
    if shapes.is_square_expansion(ev, left, right):
        why = f"`{text}` expands a squared distance: it is >= 0 only in exact arithmetic and rounds below 0 for nearly equal points"
        ev_ = Evidence(Tier.PLAUSIBLE, why, node, "rounding")
        return replace(out, below=ev_).with_point(0.0, ev_)
    if shapes.is_variance_expansion(ev, left, right):
        why = f"`{text}` (E[x^2] - E[x]^2) is >= 0 only in exact arithmetic and rounds below 0 for a near-constant input"
        ev_ = Evidence(Tier.PLAUSIBLE, why, node, "rounding")
        return replace(out, below=ev_).with_point(0.0, ev_)
    loops = _same_loop_range(ev, left, right, a.node, b.node)
    if loops is not None and out.zero is None:
        ev_ = Evidence(Tier.PLAUSIBLE, f"`{text}` is 0 where two loops over `{loops}` meet (the same index twice)", node, "self-pair")
        return out.with_point(0.0, ev_)
    same = _same_callee(ev, left, right, a.node, b.node)
    if same is not None and out.zero is None:
        # encoder(anchors) - encoder(positives): one layer applied to two inputs, equal for a duplicate pair
        ev_ = Evidence(Tier.PLAUSIBLE, f"`{text}` is 0 where `{same}` sees the same input twice (a duplicate or positive pair)", node, "coincide")
        return replace(out.with_point(0.0, ev_), vanish=stronger(out.vanish, ev_))
    if a.const is None and b.const is None and not a.integer and out.zero is None:
        # two values that can coincide: 0 for an identical pair (a Siamese pair, a perfect prediction)
        both_data = a.role == d.DATA and b.role == d.DATA
        tier = Tier.PLAUSIBLE if both_data else Tier.DEGENERATE
        ev_ = Evidence(tier, f"`{text}` is 0 where its two sides coincide", node, "coincide")
        if a.role not in (d.RANDOM,) and b.role not in (d.RANDOM,) and not (a.positive and b.negative or a.negative and b.positive):
            out = replace(out.with_point(0.0, ev_), vanish=stronger(out.vanish, ev_))
    return out


def _same_loop_range(ev, left, right, left_made=None, right_made=None) -> str | None:
    """``j - i`` for ``for i in range(n): for j in range(n)``: the text of the range both indices run over."""
    if not (isinstance(left, cst.Name) and isinstance(right, cst.Name)) or left.value == right.value:
        return None
    lc, rc = ev.resolved(left), ev.resolved(right)
    lc = lc if isinstance(lc, cst.Call) else left_made
    rc = rc if isinstance(rc, cst.Call) else right_made
    if not (isinstance(lc, cst.Call) and isinstance(rc, cst.Call)) or lc is rc:
        return None
    if ev.text(lc.func) != "range" or ev.text(rc.func) != "range" or ev.text(lc) != ev.text(rc):
        return None
    return ev.text(lc)


def _same_callee(ev, left, right, left_made=None, right_made=None) -> str | None:
    """The callee's text when both sides are calls of one model or function on different arguments."""
    lc, rc = ev.resolved(left), ev.resolved(right)
    lc = lc if isinstance(lc, cst.Call) else left_made
    rc = rc if isinstance(rc, cst.Call) else right_made
    if not (isinstance(lc, cst.Call) and isinstance(rc, cst.Call)) or lc is rc:
        return None
    callee = ev.text(lc.func)
    if callee != ev.text(rc.func) or ev.text(lc) == ev.text(rc) or isinstance(lc.func, cst.Attribute) and ev.target(lc).namespace != "method":
        return None
    if ev.opcall(lc) is not None:
        return None  # a torch op (x.sum(1) - y.sum(1)) says nothing of its inputs being equal
    if isinstance(lc.func, cst.Name) and callee in _BUILTINS and ev.resolver.qualify(lc.func) in (None, callee):
        return None  # range(...) - range(...), len(a) - len(b): not one model seeing two inputs
    return callee


_BUILTINS = frozenset(dir(builtins))


def negate(a: Value, node) -> Value:
    if a.const is not None:
        return d.constant(-a.const, node)
    lo, hi, lo_open, hi_open = iv.neg(a.lo, a.hi, a.lo_open, a.hi_open)
    return replace(a, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, const=None,
                   points=tuple((-p, e) for p, e in a.points), below=None, dist=False, unit=a.unit,
                   role=a.role if a.role in (d.DATA, d.ACTIVATION, d.RANDOM, d.PARAMETER) else None, node=node or a.node, op=None)


def mul(a: Value, b: Value, node, text: str, same: bool = False) -> Value:
    if same:
        return power(a, 2.0, node, text)
    if a.const is not None and b.const is not None:
        return d.constant(a.const * b.const, node)
    lo, hi, lo_open, hi_open = iv.mul((a.lo, a.hi, a.lo_open, a.hi_open), (b.lo, b.hi, b.lo_open, b.hi_open))
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, integer=a.integer and b.integer, **_common(a, b, node))
    if b.const is not None or a.const is not None:
        x, c = (a, b.const) if b.const is not None else (b, a.const)
        if c == 0:
            return d.constant(0.0, node)
        out = replace(out, points=tuple((p * c, e) for p, e in x.points), vanish=x.vanish, constant=x.constant,
                      large=x.large if abs(c) >= 0.5 else None, role=x.role, empty=x.empty, desc=x.desc,
                      beyond=x.beyond if abs(c) == 1 else None, single=x.single, below=x.below if c > 0 else None)
        return out
    zero = stronger(a.zero, b.zero)
    zero = _selected(zero, b if zero is a.zero else a)
    points = ((0.0, zero),) if zero is not None else ()
    if a.at(1.0) is not None and b.at(1.0) is not None and a.unit_interval and b.unit_interval:
        points += ((1.0, _weaker(a.at(1.0), b.at(1.0))),)
    role = None
    if a.role == d.MASK:
        role = b.role
    elif b.role == d.MASK:
        role = a.role
    elif a.role == b.role:
        role = a.role
    if a.role == d.PROBABILITY and b.role == d.PROBABILITY:
        role = d.PROBABILITY
    large = None
    if a.large is not None and not (b.lo >= -1 and b.hi <= 1):
        large = a.large
    elif b.large is not None and not (a.lo >= -1 and a.hi <= 1):
        large = b.large
    return replace(out, points=points, vanish=stronger(a.vanish, b.vanish),
                   constant=stronger(_weaker(a.constant, b.constant), stronger(a.vanish, b.vanish)),
                   large=large, role=role, empty=stronger(a.empty, b.empty),
                   desc=a.desc if b.role == d.MASK else b.desc if a.role == d.MASK else None)


SMALL_DIVISOR = 0.11


def divide(call: OpCall | None, a: Value, b: Value, node, text: str,
           left: cst.BaseExpression | None = None, right: cst.BaseExpression | None = None) -> Value:
    if a.const is not None and b.const is not None and b.const != 0:
        return d.constant(a.const / b.const, node)
    r = iv.reciprocal(b.lo, b.hi, b.lo_open, b.hi_open)
    lo, hi, lo_open, hi_open = iv.mul((a.lo, a.hi, a.lo_open, a.hi_open), r)
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, role=a.role if a.role != d.MASK else None,
                desc=a.desc, points=tuple((0.0, e) for p, e in a.points if p == 0), vanish=a.vanish,
                constant=_weaker(a.constant, b.constant) or a.vanish, empty=a.empty, **_common(a, b, node))
    if b.const is not None and b.const != 0:
        out = replace(out, points=tuple((p / b.const, e) for p, e in a.points), large=a.large if abs(b.const) <= 1 else None,
                      role=a.role, beyond=a.beyond if abs(b.const) == 1 else None, single=a.single, dist=a.dist and b.const == 1,
                      below=a.below if b.const > 0 else None)
    if a.const is not None and a.const != 0:
        out = _reciprocal_points(out, a.const, b, text, node)
    # a score of a few units passes exp's 88.7 once divided by about 0.1 or less (a contrastive temperature);
    # halving or dividing by 0.5 only doubles it
    if b.positive and b.hi <= SMALL_DIVISOR and not a.bounded_above and a.const is None:
        why = f"`{text}` divides by a small value ({_small(b)}): the quotient grows large"
        out = replace(out, large=stronger(out.large, Evidence(Tier.PLAUSIBLE, why, node, "temperature")))
    elif b.role == d.EPS and b.const is None and a.const is None and not a.bounded_above:
        why = f"`{text}` divides by a small setting: the quotient grows large"
        out = replace(out, large=stronger(out.large, Evidence(Tier.PLAUSIBLE, why, node, "temperature")))
    if call is not None and left is not None and right is not None and shapes.is_cosine_ratio(call.ev, left, right):
        why = f"`{text}` is a cosine (a dot product over the norms): exactly +-1 for parallel vectors"
        out = replace(out, lo=-1.0, hi=1.0, lo_open=False, hi_open=False, role=None, large=None,
                      desc=f"a cosine (`{text}`, a dot product over the norms)",
                      beyond=Evidence(Tier.PLAUSIBLE, f"`{text}`, a dot product over the norms, rounds past +-1 for nearly parallel vectors", node, "rounding"),
                      points=((1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel")), (-1.0, Evidence(Tier.PLAUSIBLE, why, node, "parallel"))))
    if call is not None and left is not None and right is not None and shapes.is_sum_of(call.ev, right, left) and a.nonneg:
        # x / x.sum(): a distribution over the summed dim
        out = replace(out, lo=0.0, hi=1.0, lo_open=False, hi_open=False, dist=True, role=d.PROBABILITY,
                      desc=f"`{text}`, a normalized distribution")
    return out


def _reciprocal_points(out: Value, c: float, b: Value, text: str, node) -> Value:
    """``c / b`` at the exact values ``b`` reaches: ``c / inf`` is exactly 0, ``c / 1`` exactly ``c``."""
    for p, e in b.points:
        if p == INF:
            why = f"`{text}` is exactly 0 where its denominator overflows ({e.why})"
            out = out.but(lo=min(out.lo, 0.0), lo_open=False if out.lo >= 0 else out.lo_open).with_point(0.0, Evidence(e.tier, why, node, "underflow"))
        elif p != 0:
            out = out.with_point(c / p, e)
    return out


def _small(b: Value) -> str:
    return f"{b.const:g}" if b.const is not None else f"at most {b.hi:g}"


def power(a: Value, p: float | None, node, text: str, exponent: Value | None = None) -> Value:
    if p is None:
        # a runtime exponent: x ** gamma is >= 0 for x >= 0, 0 where x is, 1 where x is 1
        out = Value(lo=0.0 if a.nonneg else -INF, grad=d.join_grad(a.grad, exponent.grad if exponent else None),
                    dtype=a.dtype, node=node, role=a.role if a.role != d.PROBABILITY else None)
        keep = tuple((q, e) for q, e in a.points if q in (0.0, 1.0))
        out = replace(out, points=keep, vanish=a.vanish)
        if exponent is not None and exponent.nonpos and a.nonneg:
            # x ** -g for x >= 0: 0 ** -g is inf (or 1 at g = 0), never 0; x <= 1 gives x ** -g >= 1
            out = replace(out, points=tuple((q, e) for q, e in keep if q != 0.0), vanish=None,
                          lo=1.0 if a.hi <= 1 else 0.0, lo_open=a.hi > 1)
        if exponent is not None and exponent.zero is not None:
            out = out.with_point(1.0, exponent.zero)  # x ** 0 = 1
        if a.positive and a.const is not None and exponent is not None:
            out = replace(out, lo=0.0, lo_open=True)
            if 0 < a.const < 1 and exponent.nonneg:
                out = replace(out, hi=1.0)
        return out
    if a.const is not None:
        try:
            value = a.const ** p
        except (OverflowError, ZeroDivisionError):
            value = None
        if isinstance(value, (int, float)) and math.isfinite(value):
            return d.constant(float(value), node)
    lo, hi, lo_open, hi_open = iv.power(a.lo, a.hi, a.lo_open, a.hi_open, p)
    points = []
    for q, e in a.points:
        if q == 0 and p <= 0:
            continue
        if q < 0 and not float(p).is_integer():
            continue
        try:
            points.append((float(q ** p), e))
        except (OverflowError, ZeroDivisionError):
            continue
    even = float(p).is_integer() and int(p) % 2 == 0
    points = list({q: e for q, e in reversed(points)}.items())  # +-1 squared: one point, the first reason
    out = Value(lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, points=tuple(points), grad=a.grad, dtype=a.dtype,
                node=node, vanish=a.vanish if p > 0 else None, constant=a.constant or (a.vanish if p <= 0 else None),
                large=a.large if p >= 1 else None, beyond=a.beyond if p > 0 else None,
                below=None if even or p <= 0 or not float(p).is_integer() else a.below,
                role=a.role if a.role in (d.DATA, d.ACTIVATION, d.MASK, d.RANDOM) else None,
                desc=f"a square" if p == 2 and a.desc is None else (a.desc if p == 2 and a.desc else None))
    if p == 2:
        out = replace(out, desc=f"a square ({a.desc})" if a.desc else "a square")
    return out


def absolute(a: Value, node, text: str) -> Value:
    if a.const is not None:
        return d.constant(abs(a.const), node)
    if a.nonneg:
        lo, hi, lo_open, hi_open = a.lo, a.hi, a.lo_open, a.hi_open
    elif a.nonpos:
        lo, hi, lo_open, hi_open = -a.hi, -a.lo, a.hi_open, a.lo_open
    else:
        lo, hi, lo_open, hi_open = 0.0, max(-a.lo, a.hi), False, False
    return replace(a, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open, points=tuple((abs(p), e) for p, e in a.points),
                   below=None, dist=False, node=node, desc=f"an absolute value ({a.desc})" if a.desc else None, op=None,
                   role=a.role if a.role in (d.DATA, d.ACTIVATION, d.RANDOM, d.PARAMETER, d.MASK) else None)
