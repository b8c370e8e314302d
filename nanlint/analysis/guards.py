"""Guards: what a condition that held (or failed) on the way to a use says about a value.

``if n > 0:``, ``if n == 0: return``, ``assert (d != 0).all()``, ``x / n if n else 0``, ``n > 0 and x / n``,
``torch.where(d.abs() > eps, 1 / d, 0)``, ``valid & (d != 0)``, ``~(d == 0)``, ``if mask.any():``,
``if sel.numel():``, ``if len(xs) > 0:``. A condition is read into constraints on *keys* (the source text of a
name or ``self.x``): a bound (``> c``, ``>= c``, ``< c``, ``!= c``), "not all zero" and "not empty". A
constraint on a key clears the evidence of any value whose evidence is *rooted* in that key, so
``n = mask.sum(); if mask.any(): x / n`` is understood too.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import members
from nanlint.analysis.domain import Evidence, Tier, Value, stronger
from nanlint.analysis.flow import Guard

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator, Frame

_FLIP = {cst.LessThan: cst.GreaterThan, cst.GreaterThan: cst.LessThan, cst.LessThanEqual: cst.GreaterThanEqual,
         cst.GreaterThanEqual: cst.LessThanEqual, cst.Equal: cst.Equal, cst.NotEqual: cst.NotEqual}
_NEGATE = {cst.LessThan: cst.GreaterThanEqual, cst.GreaterThanEqual: cst.LessThan, cst.GreaterThan: cst.LessThanEqual,
           cst.LessThanEqual: cst.GreaterThan, cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal}
# f(x) > 0 for these f says x is not all zero / not empty
_NONZERO_WITNESS = frozenset({"sum", "count_nonzero", "any", "max", "amax", "norm", "abs", "nansum", "mean"})
_NONEMPTY_WITNESS = frozenset({"numel", "nelement", "len", "size", "shape", "nonzero", "any"})


@dataclass(frozen=True)
class Constraint:
    key: str
    op: type | None = None  # a comparison operator class, for a bound
    bound: float | None = None
    nonzero: bool = False  # no element is 0 / the value is truthy
    not_all_zero: bool = False
    nonempty: bool = False
    near_zero: bool = False  # |x| <= a positive setting: x takes values around 0, 0 included
    several: bool = False  # holds more than one element (``x.numel() > 1``)
    source: cst.BaseExpression | None = None  # the compared expression


_COMPARISON_OPS = {"eq": cst.Equal, "ne": cst.NotEqual, "gt": cst.GreaterThan, "ge": cst.GreaterThanEqual,
                   "lt": cst.LessThan, "le": cst.LessThanEqual}


def constraints(ev: "Evaluator", frame: "Frame", test: cst.BaseExpression, holds: bool, depth: int = 0) -> list[Constraint]:
    """What ``test`` being ``holds`` says, as constraints on keys."""
    if depth > 6:
        return []
    if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, (cst.Not, cst.BitInvert)):
        return constraints(ev, frame, test.expression, not holds, depth + 1)
    if isinstance(test, cst.BooleanOperation):
        conj = isinstance(test.operator, cst.And)
        if conj == holds:  # (a and b) held, or (a or b) failed: both parts say their piece
            return constraints(ev, frame, test.left, holds, depth + 1) + constraints(ev, frame, test.right, holds, depth + 1)
        return []
    if isinstance(test, cst.BinaryOperation) and isinstance(test.operator, (cst.BitAnd, cst.BitOr)):
        conj = isinstance(test.operator, cst.BitAnd)
        if conj == holds:
            return constraints(ev, frame, test.left, holds, depth + 1) + constraints(ev, frame, test.right, holds, depth + 1)
        return []
    if isinstance(test, cst.Call):
        site = ev.opcall(test, frame)
        name = site.name if site is not None else _called_name(test)
        if name in ("logical_not",) and test.args:
            return constraints(ev, frame, test.args[0].value, not holds, depth + 1)
        if name in ("logical_and", "logical_or") and len(test.args) == 2:
            conj = name == "logical_and"
            if conj == holds:
                return constraints(ev, frame, test.args[0].value, holds, depth + 1) + constraints(ev, frame, test.args[1].value, holds, depth + 1)
            return []
        if name == "all":
            inner = site.arg("input") if site is not None else test.args[0].value if test.args else \
                test.func.value if isinstance(test.func, cst.Attribute) else None
            if inner is None:
                return []
            if holds:
                return constraints(ev, frame, inner, True, depth + 1)
            return _not_all_zero(ev, inner)  # `if np.all(w == 0): raise`: after it, w is not all 0
        if name in ("any",) and site is not None and site.arg("input") is not None:
            inner = site.arg("input")
            if holds:
                return _witness(ev, inner, "any", frame)
            return constraints(ev, frame, inner, False, depth + 1)  # not any(x == 0): all(x != 0)
        if name in ("isclose", "allclose") and not holds and len(test.args) >= 2:
            return _compare(ev, frame, test.args[0].value, cst.NotEqual(), test.args[1].value)
        compared = _COMPARISON_OPS.get(name) if site is not None else None
        if compared is not None:  # d.eq(0), torch.gt(x, eps): the operator spelled as a call
            left, right = site.arg("input"), site.arg("other")
            if left is not None and right is not None:
                op = compared() if holds else _NEGATE[compared]()
                return _compare(ev, frame, left, op, right)
    if isinstance(test, cst.Comparison):
        if len(test.comparisons) == 1:
            target = test.comparisons[0]
            op = target.operator
            if isinstance(op, (cst.Is, cst.IsNot, cst.In, cst.NotIn)):
                return []
            if not holds:
                negated = _NEGATE.get(type(op))
                if negated is None:
                    return []
                op = negated()
            return _compare(ev, frame, test.left, op, target.comparator)
        if holds:  # a < b < c
            out = []
            left = test.left
            for target in test.comparisons:
                out += _compare(ev, frame, left, target.operator, target.comparator)
                left = target.comparator
            return out
        return []
    named = _named_condition(frame, test)
    if named is not None:  # is_impulse = d == 0; where(is_impulse, 1, d): the name stands for its test
        return constraints(ev, frame, named, holds, depth + 1)
    # a bare value: `if n:`, `if mask.any():`, `if len(xs):`, `if sel.numel():`
    if holds:
        return _truthy(ev, test, frame)
    return []


def _binding(frame: "Frame | None", name: cst.BaseExpression) -> cst.BaseExpression | None:
    """The expression a name was bound to, when its only definition reaching here is a plain assignment."""
    if frame is None or not isinstance(name, cst.Name):
        return None
    definition = frame.flow.sole_definition(name)
    return definition.value if definition is not None and definition.kind == "assign" and not definition.path else None


def _named_condition(frame: "Frame", test: cst.BaseExpression) -> cst.BaseExpression | None:
    """The condition a name was bound to, when its only definition here binds it to one (a comparison, a
    combination of comparisons, or their negation)."""
    value = _binding(frame, test)
    if isinstance(value, cst.Comparison) or (
        isinstance(value, cst.BinaryOperation) and isinstance(value.operator, (cst.BitAnd, cst.BitOr))) or (
        isinstance(value, cst.UnaryOperation) and isinstance(value.operator, (cst.BitInvert, cst.Not))) or (
        isinstance(value, cst.BooleanOperation)):
        return value
    return None


def _not_all_zero(ev: "Evaluator", test: cst.BaseExpression) -> list[Constraint]:
    """``all(x == 0)`` failed: some element of ``x`` is nonzero."""
    if isinstance(test, cst.Comparison) and len(test.comparisons) == 1 and isinstance(test.comparisons[0].operator, cst.Equal):
        for side, other in ((test.left, test.comparisons[0].comparator), (test.comparisons[0].comparator, test.left)):
            if ev.number(other) == 0:
                k = ev.key(side)
                return [Constraint(k, not_all_zero=True, nonempty=True)] if k else []
    return []


def _called_name(call: cst.Call) -> str:
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""


def _truthy(ev: "Evaluator", test: cst.BaseExpression, frame: "Frame | None" = None) -> list[Constraint]:
    key = ev.key(test)
    out = [Constraint(key, nonzero=True, not_all_zero=True, nonempty=True, source=test)] if key else []
    return out + _witness(ev, test, None, frame)


def _witness(ev: "Evaluator", expr: cst.BaseExpression, via: str | None, frame: "Frame | None" = None) -> list[Constraint]:
    """``f(x)`` is known truthy/positive: what that says about ``x``."""
    e = expr
    if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Attribute) and e.value.attr.value == "shape":
        k = ev.key(e.value.value)
        return [Constraint(k, nonempty=True)] if k else []
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        name = site.name if site is not None else _called_name(e)
        inner = None
        if site is not None:
            inner = site.arg("input")
        elif e.args:
            inner = e.args[0].value
        if inner is None and isinstance(e.func, cst.Attribute):
            inner = e.func.value
        if inner is None:
            return []
        k = ev.key(inner)
        out = []
        if name in _NONEMPTY_WITNESS or name in _NONZERO_WITNESS:
            bound = _binding(frame, inner)
            aliases = [k, ev.key(bound)] if bound is not None else [k]  # `neg = ~cond; if neg.sum():`
            for key in dict.fromkeys(a for a in aliases if a):
                out.append(Constraint(key, nonempty=True, not_all_zero=name in _NONZERO_WITNESS or name == "nonzero"))
            out += _witness(ev, inner, name, frame) if isinstance(inner, cst.Call) else []
        if isinstance(inner, cst.Comparison) and name in _NONZERO_WITNESS:
            # sum(x > 0) > 0, (x > 0).any(): some element of x passes, so a selection by `x > 0` is not empty
            root = ev._comparison_root(inner)
            if root:
                out.append(Constraint(root, nonempty=True))
        return out
    if via == "any" and isinstance(e, cst.Name):
        k = ev.key(e)
        return [Constraint(k, not_all_zero=True, nonempty=True)] if k else []
    return []


def _compare(ev: "Evaluator", frame, left, op, right) -> list[Constraint]:
    lv, rv = ev.number(left), ev.number(right)
    if lv is not None and rv is None:
        left, right, lv, rv = right, left, None, lv
        op = _FLIP[type(op)]()
    if rv is None and isinstance(op, (cst.LessThan, cst.LessThanEqual)):
        # a < b with a >= 0 (a size, a count): b > 0; a <= b with a > 0: b > 0
        l_value = ev.value(left, frame)
        if (l_value.nonneg and isinstance(op, cst.LessThan)) or l_value.positive:
            k = ev.key(right)
            if k:
                return [Constraint(k, cst.GreaterThan, 0.0, source=right)] + _witness(ev, right, None)
    if rv is None:
        # x > eps where eps is a positive setting: x > 0
        r_value = ev.value(right, frame)
        if r_value.positive and isinstance(op, (cst.GreaterThan, cst.GreaterThanEqual)):
            rv, op = 0.0, cst.GreaterThan()
        elif r_value.nonneg and isinstance(op, cst.GreaterThan):
            rv = 0.0
        elif r_value.positive and isinstance(op, (cst.LessThan, cst.LessThanEqual)):
            inner = left
            if isinstance(left, cst.Call):
                site = ev.opcall(left)
                inner = site.arg("input") if site is not None and site.name == "abs" else None
            k = ev.key(inner) if inner is not None else None
            return [Constraint(k, near_zero=True, source=inner)] if k else []
        else:
            return []
    out = []
    key = ev.key(left)
    if key:
        out.append(Constraint(key, type(op), rv, source=left))
    plain = members.converted(left)
    if plain is not left and ev.key(plain):  # `if observed.item() == 0:` is a test of `observed`
        out.append(Constraint(ev.key(plain), type(op), rv, source=plain))
    out += _extreme_bound(ev, left, op, rv)
    if (isinstance(op, cst.GreaterThan) and rv >= 1) or (isinstance(op, cst.GreaterThanEqual) and rv >= 2):
        for c in _witness(ev, left, None, frame):
            if c.nonempty:
                out.append(Constraint(c.key, several=True, nonempty=True))
    if isinstance(left, cst.Call) and isinstance(op, (cst.LessThan, cst.LessThanEqual)) and rv >= 0:
        site = ev.opcall(left)
        inner = site.arg("input") if site is not None and site.name == "abs" else None
        k = ev.key(inner) if inner is not None else None
        if k:  # |x| <= c: x in [-c, c]
            out += [Constraint(k, type(op), rv, source=inner), Constraint(k, _FLIP[type(op)], -rv, source=inner)]
    positive = (isinstance(op, cst.GreaterThan) and rv >= 0) or (isinstance(op, cst.GreaterThanEqual) and rv > 0) \
        or (isinstance(op, cst.NotEqual) and rv == 0)
    if positive:
        out += _witness(ev, left, None, frame)
        bound = _binding(frame, left)
        if isinstance(bound, cst.Call):  # n = len(xs); if n >= 1:
            out += _witness(ev, bound, None, frame)
        if isinstance(left, cst.Call):
            site = ev.opcall(left)
            if site is not None and site.name == "abs" and site.arg("input") is not None:
                k = ev.key(site.arg("input"))
                if k:
                    out.append(Constraint(k, nonzero=True, source=site.arg("input")))
    return out


_LOWEST = frozenset({"min", "amin", "nanmin"})
_HIGHEST = frozenset({"max", "amax", "nanmax"})


def _extreme_bound(ev: "Evaluator", left: cst.BaseExpression, op, rv: float) -> list[Constraint]:
    """A bound on a tensor's smallest (largest) element bounds every element: ``if x.min() <= -1: raise``
    leaves ``x > -1``; ``assert x.amax() < 1`` leaves ``x < 1``. Only the direction the extreme sets (the
    elementwise ``torch.max(a, b) < 1`` bounds ``a`` too)."""
    call = members.converted(left)
    if not isinstance(call, cst.Call):
        return []
    site = ev.opcall(call)
    if site is None or site.arg("input") is None:
        return []
    lower = isinstance(op, (cst.GreaterThan, cst.GreaterThanEqual))
    upper = isinstance(op, (cst.LessThan, cst.LessThanEqual))
    if not ((site.name in _LOWEST and lower) or (site.name in _HIGHEST and upper)):
        return []
    inner = site.arg("input")
    k = ev.key(inner)
    return [Constraint(k, type(op), rv, source=inner)] if k else []


def _interval(v: Value) -> str:
    left = "(" if v.lo_open or v.lo == -math.inf else "["
    right = ")" if v.hi_open or v.hi == math.inf else "]"
    return f"{left}{v.lo:g}, {v.hi:g}{right}"


def refine(value: Value, key: str | None, cs: list[Constraint]) -> Value:
    """``value`` (of ``key``) under the constraints."""
    for c in cs:
        if key is not None and c.key == key:
            value = _apply(value, c)
        if c.nonempty or c.not_all_zero or c.nonzero or c.several or (c.op in (cst.GreaterThan, cst.NotEqual) and c.bound == 0):
            value = _clear_rooted(value, c.key, c)
    return value


def _clear_rooted(value: Value, root: str, c: Constraint) -> Value:
    changes = {}
    if value.empty is not None and value.empty.root == root:
        changes["empty"] = None
    if value.single is not None and c.several and (value.single.root in (root, None)):
        changes["single"] = None
    if value.vanish is not None and value.vanish.root == root and (c.not_all_zero or c.nonzero):
        changes["vanish"] = None
    points = tuple((p, e) for p, e in value.points if not (p == 0 and e.root == root and (c.not_all_zero or c.nonzero or c.nonempty)))
    if len(points) != len(value.points):
        changes["points"] = points
        if value.nonneg and value.integer and value.lo == 0:  # a count that is not 0 is >= 1
            changes["lo"] = 1.0
    return replace(value, **changes) if changes else value


def _apply(value: Value, c: Constraint) -> Value:
    if c.several:
        value = replace(value, single=None)
    if c.nonempty or c.not_all_zero:
        value = replace(value, empty=None if c.nonempty else value.empty, vanish=None if c.not_all_zero else value.vanish)
        if c.not_all_zero and value.integer and value.nonneg:
            value = replace(value, points=tuple((p, e) for p, e in value.points if p != 0))
    if c.nonzero:
        value = replace(value, points=tuple((p, e) for p, e in value.points if p != 0), vanish=None)
        if value.lo == 0:
            value = replace(value, lo_open=True)
    if c.op is None or c.bound is None:
        return value
    b = c.bound
    op = c.op
    lo, hi, lo_open, hi_open = value.lo, value.hi, value.lo_open, value.hi_open
    if op is cst.GreaterThan and (b > lo or (b == lo and not lo_open)):
        lo, lo_open = b, True
    elif op is cst.GreaterThanEqual and b > lo:
        lo, lo_open = b, False
    elif op is cst.LessThan and (b < hi or (b == hi and not hi_open)):
        hi, hi_open = b, True
    elif op is cst.LessThanEqual and b < hi:
        hi, hi_open = b, False
    elif op is cst.Equal:
        return replace(value, lo=b, hi=b, lo_open=False, hi_open=False, const=b if value.integer or True else None,
                       below=None, large=None)
    elif op is cst.NotEqual:
        value = replace(value, points=tuple((p, e) for p, e in value.points if p != b))
        if b == 0:
            value = replace(value, vanish=None)
            if value.lo == 0:
                value = replace(value, lo_open=True)
        return value
    out = replace(value, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)
    if out.nonneg:
        out = replace(out, below=None)
    if hi < math.inf:
        out = replace(out, large=None)
    if out.positive:
        out = replace(out, vanish=None)
    return replace(out, points=tuple((p, e) for p, e in out.points if out.contains(p)))


def effective(ev: "Evaluator", guard: Guard) -> tuple[bool, bool]:
    """(holds, carving): in the masked-out view a ``where`` condition is negated, and the bounds it leaves are
    exactly the values the masked-out elements take."""
    if guard.kind == "where" and ev.masked and (ev.masked is True or ev.masked == id(guard.test)):
        return not guard.holds, True
    return guard.holds, False


def apply_guards(ev: "Evaluator", frame: "Frame", value: Value, key: str | None, guards: tuple[Guard, ...]) -> Value:
    for guard in guards:
        holds, carving = effective(ev, guard)
        cs = ev.guard_constraints(guard, frame, holds)
        if not cs:
            continue
        refined = refine(value, key, cs)
        if key is not None and any(c.key == key and (c.op is not None or c.near_zero) for c in cs):
            phrase = _phrase(ev.text(guard.test), holds, carving)
            refined = carve(refined, guard, phrase, sides=_sides(key, cs))
            if any(c.key == key and c.near_zero for c in cs) and refined.zero is None:
                refined = refined.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"{phrase} it is near 0", guard.test, "carved"))
        value = refined
    return value


def _phrase(test: str, holds: bool, masked: bool) -> str:
    if masked:
        return f"for the elements `{test}` masks out,"
    return f"where `{test}` {'holds' if holds else 'fails'},"


def _sides(key: str, cs: list[Constraint]) -> tuple[bool, bool]:
    """Which bounds of ``key`` the constraints set: (lower, upper)."""
    lower = upper = False
    for c in cs:
        if c.key != key:
            continue
        if c.near_zero or c.op is cst.Equal:
            lower = upper = True
        elif c.op in (cst.GreaterThan, cst.GreaterThanEqual):
            lower = True
        elif c.op in (cst.LessThan, cst.LessThanEqual):
            upper = True
    return lower, upper


def carve(value: Value, guard: Guard, phrase: str, sides: tuple[bool, bool] = (True, True)) -> Value:
    """A condition that confines a value to a range means the code meets that range: the edges at the
    bounds it sets are reached (``where(x > 0, ..., sqrt(-x))``, ``if d < eps: ... 1 / d``). Only the bounds
    the condition itself sets count: ``if (r > 1).any(): raise`` leaves a norm in [0, 1], and its 0 comes
    from the norm, not from the test, which says nothing of 0; ``if (t < 0).any(): raise`` admits 0."""
    if not value.informative:
        return value
    lo_set, hi_set = sides
    why = f"{phrase} it lies in {_interval(value)}"
    ev_ = Evidence(Tier.PLAUSIBLE, why, guard.test, "carved")
    # 0 is met when it is the bound itself, or when the bound sits just past it (``d < eps``); ``x <= 1`` says nothing of 0
    near = value.lo < 0 < value.hi and ((lo_set and -value.lo <= 1e-2) or (hi_set and value.hi <= 1e-2))
    if value.contains(0.0) and (value.zero is None or value.zero.tier < Tier.PLAUSIBLE) and ((lo_set and value.lo == 0) or (hi_set and value.hi == 0) or near):
        value = value.with_point(0.0, ev_)
    if value.lo < 0 and (lo_set or hi_set):
        value = replace(value, below=stronger(value.below, ev_))
    if (hi_set and value.hi > 1) or (lo_set and value.lo < -1):
        value = replace(value, beyond=stronger(value.beyond, ev_))
    if hi_set and value.hi > 88.7:
        value = replace(value, large=stronger(value.large, ev_))
    for point in (1.0, -1.0):
        if ((lo_set and point == value.lo) or (hi_set and point == value.hi)) and value.contains(point) and value.at(point) is None:
            value = value.with_point(point, ev_)
    return value
