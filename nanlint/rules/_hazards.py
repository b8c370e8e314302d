"""The question every numeric rule asks: does this op's argument reach its domain edge here?

:func:`edge` reads the op table's hazards for one op site and the argument's value, and answers with the
hazard kind, the evidence (what makes the edge reachable, and why) and whether the result is inf/NaN in the
forward pass or only in the gradient. Rules differ in which ops and which kinds of evidence they report.
"""
from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from nanlint.analysis import optable as ops
from nanlint.analysis.domain import Evidence, Value
from nanlint.analysis.opcall import OpCall
from nanlint.analysis.syntax import literal_value

LOG_OPS = frozenset({"log", "log2", "log10"})
ROOT_OPS = frozenset({"sqrt", "rsqrt", "cbrt"})
INVERSE_TRIG = frozenset({"acos", "asin", "atanh", "erfinv"})


@dataclass(frozen=True)
class Edge:
    kind: str  # zero, negative, unit, beyond, minus-one
    evidence: Evidence
    forward: bool  # inf/NaN in the forward pass (else only in the gradient)
    operand: cst.BaseExpression
    value: Value


def operand(site: OpCall, name: str = "input") -> cst.BaseExpression | None:
    return site.arg(name)


def exponent_of(site: OpCall) -> float | None:
    expr = site.arg("exponent")
    return site.ev.number(expr) if expr is not None else None


def edges(site: OpCall, value: Value | None = None, x: cst.BaseExpression | None = None) -> list[Edge]:
    """Every edge this op site can reach, strongest first."""
    spec = site.spec
    out: list[Edge] = []
    name = spec.name
    if name in ("pow", "float_power"):
        return _power_edges(site, value)
    for arg, kind in spec.hazards:
        expr = x if x is not None else site.arg(arg)
        if expr is None:
            continue
        v = value if value is not None else site.ev.value(expr, site.frame)
        if v.const is not None:
            continue
        if kind == ops.ZERO:
            ev = v.zero
            if ev is not None:
                out.append(Edge("zero", ev, True, expr, v))
        elif kind == ops.ZERO_GRAD:
            ev = v.zero
            if ev is not None and v.positive is False:
                out.append(Edge("zero", ev, False, expr, v))
        elif kind == ops.NEGATIVE:
            if v.below is not None and (not v.nonneg or v.below.kind in ("rounding", "name-rounding")):  # rounding: below its exact bounds
                out.append(Edge("negative", v.below, True, expr, v))
        elif kind == ops.UNIT:
            if v.beyond is not None and not (v.lo > -1 and v.hi < 1):
                out.append(Edge("beyond", v.beyond, True, expr, v))
            for point in (1.0, -1.0):
                ev = v.at(point)
                if ev is not None:
                    out.append(Edge("unit", ev, name == "atanh" or name == "erfinv" or name == "logit", expr, v))
                    break
        elif kind == ops.MINUS_ONE:
            ev = v.at(-1.0)
            if ev is not None:
                out.append(Edge("minus-one", ev, True, expr, v))
    return out


def _power_edges(site: OpCall, value: Value | None) -> list[Edge]:
    expr = site.arg("input")
    if expr is None:
        return []
    v = value if value is not None else site.ev.value(expr, site.frame)
    if v.const is not None:
        return []
    p = exponent_of(site)
    out = []
    if p is None:
        return out  # a runtime exponent: NAN214's own question
    if float(p).is_integer():
        if p < 0 and v.zero is not None:
            out.append(Edge("zero", v.zero, True, expr, v))
        return out
    if v.below is not None and not v.nonneg:
        out.append(Edge("negative", v.below, True, expr, v))
    if v.zero is not None and not v.positive:
        out.append(Edge("zero", v.zero, p < 0, expr, v))
    return out


def is_fractional_power(site: OpCall) -> bool:
    if site.name not in ("pow", "float_power"):
        return False
    p = exponent_of(site)
    return p is not None and not float(p).is_integer()


def describe_op(site: OpCall) -> str:
    name = site.name
    if name in ("pow", "float_power"):
        p = exponent_of(site)
        if site.is_operator:
            return f"`** {p:g}`" if p is not None else "`**`"
        return f"`pow(x, {p:g})`" if p is not None else "`pow`"
    if name == "div":
        return "division"
    return f"`{name}`"


def in_integer_cast(rule, node: cst.CSTNode) -> bool:
    """``node`` sits inside ``(...).long()`` / ``.to(torch.long)`` / ``floor(...)`` in the current statement, or
    the value it feeds is cast to an integer index a few statements later (T5-style relative-position buckets):
    it carries no gradient, and a -inf there is selected away."""
    stack = rule.ctx.statement_stack
    if not stack:
        return False
    statement = stack[-1]
    found = []

    class _Casts(cst.CSTVisitor):
        def visit_Call(self, call: cst.Call) -> bool:
            if found:
                return False
            if _is_integer_cast(rule, call) and _contains(call, node):
                found.append(call)
                return False
            return True

    statement.visit(_Casts())
    if found:
        return True
    return _cast_after(rule)


_INT_METHODS = frozenset({"long", "int", "short", "byte", "floor", "ceil", "round", "trunc"})
_INT_DTYPES = ("long", "int64", "int32", "int16", "int8", "uint8", "int")


def _is_integer_cast(rule, call: cst.Call) -> bool:
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name in _INT_METHODS or (name in ("to", "type") and any(rule.text(a.value).split(".")[-1] in _INT_DTYPES for a in call.args))


def _contains(root: cst.CSTNode, target: cst.CSTNode) -> bool:
    hit = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            if hit:
                return False
            if node is target:
                hit.append(node)
                return False
            return True

    root.visit(_Find())
    return bool(hit)


def _assigned(statement) -> set[str]:
    out = set()
    if isinstance(statement, cst.SimpleStatementLine):
        for small in statement.body:
            targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target] if isinstance(small, (cst.AnnAssign, cst.AugAssign)) else []
            out |= {t.value for t in targets if isinstance(t, cst.Name)}
    return out


def _cast_after(rule, lookahead: int = 5) -> bool:
    stack = rule.ctx.statement_stack
    if len(stack) < 2:
        return False
    tracked = _assigned(stack[-1])
    if not tracked:
        return False
    parent, child = stack[-2], stack[-1]
    body = getattr(getattr(parent, "body", None), "body", None) or ()
    following = []
    for i, statement in enumerate(body):
        if statement is child:
            following = list(body[i + 1:i + 1 + lookahead])
            break
    for statement in following:
        if not isinstance(statement, cst.SimpleStatementLine):
            return False
        casts: list[cst.Call] = []

        class _Casts(cst.CSTVisitor):
            def visit_Call(self, call: cst.Call) -> bool:
                if _is_integer_cast(rule, call):
                    casts.append(call)
                return True

        statement.visit(_Casts())
        names_in_casts = set()
        for call in casts:
            names_in_casts |= names_in(call)
        if names_in_casts & tracked:
            return True
        for small in statement.body:
            if isinstance(small, cst.Assign) and names_in(small.value) & tracked:
                tracked |= {t.target.value for t in small.targets if isinstance(t.target, cst.Name)}
    return False


def names_in(node: cst.CSTNode) -> set[str]:
    out: set[str] = set()

    class _N(cst.CSTVisitor):
        def visit_Name(self, n: cst.Name) -> None:
            out.add(n.value)

    node.visit(_N())
    return out


def is_literal(expr) -> bool:
    return literal_value(expr) is not None


def assigned_key_tested(rule, node: cst.CSTNode, edge: float):
    """``norm = torch.sqrt(s)`` where the function later tests ``norm == 0``: the code itself says the
    result, hence the argument, reaches the edge. Returns that evidence, or None."""
    stack = rule.ctx.statement_stack
    if not stack or not isinstance(stack[-1], cst.SimpleStatementLine):
        return None
    for small in stack[-1].body:
        if isinstance(small, cst.Assign) and small.value is node and len(small.targets) == 1:
            key = rule.ctx.ev.key(small.targets[0].target)
            if key is None:
                return None
            ev = rule.ctx.ev
            tests = ev.scopes_tests(rule.ctx.frame.flow.node).get(key, ())
            born = ev.def_generation.get(id(small))
            for value, test in tests:
                if born is not None and ev.test_generation.get(id(test), 0) < born:
                    continue  # a test of the value before this assignment (`x[x < eps] = eps; x = x.sqrt()`)
                if value == edge:
                    from nanlint.analysis.domain import Evidence, Tier

                    return Evidence(Tier.PLAUSIBLE, f"the code itself tests `{rule.text(test)}`", test, "tested")
    return None


_REPAIR = ("isnan", "nan_to_num", "isfinite", "isinf")


def repaired_after(rule, lookahead: int = 4, tested: set[str] = frozenset(), first_entry: bool = False) -> bool:
    """The value the current statement assigns is checked for NaN right after (``if torch.isnan(v).any():
    v = ...``, ``v = torch.nan_to_num(v)``), or kept only where a test on ``tested`` (the names the hazard
    depends on) allows it (``r = w / g; r = where(g > 0, r, 1.0)``): the author handles the bad value. With
    ``first_entry`` (the bad value sits at the first entry of a grid: ``1 / arange(n)``), overwriting that entry
    (``r[0] = 1.0``) repairs it too."""
    stack = rule.ctx.statement_stack
    if len(stack) < 2:
        return False
    tracked = _assigned(stack[-1])
    if not tracked:
        return False
    parent, child = stack[-2], stack[-1]
    body = getattr(getattr(parent, "body", None), "body", None) or ()
    for i, statement in enumerate(body):
        if statement is child:
            for later in body[i + 1:i + 1 + lookahead]:
                found = []

                class _Calls(cst.CSTVisitor):
                    def visit_Call(self, call: cst.Call) -> None:
                        func = call.func
                        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
                        if name in _REPAIR and call.args and names_in(call.args[0].value) & tracked:
                            found.append(call)
                        elif name == "where" and len(call.args) == 3 and tested and names_in(call.args[0].value) & tested \
                                and any(names_in(a.value) & tracked for a in call.args[1:]):
                            found.append(call)

                later.visit(_Calls())
                if found or (first_entry and _overwrites_first(later, tracked)):
                    return True
            return False
    return False


def _overwrites_first(statement, tracked: set[str]) -> bool:
    """``r[0] = c`` / ``r[..., 0] = c`` for a tracked name ``r``."""
    if not isinstance(statement, cst.SimpleStatementLine):
        return False
    for small in statement.body:
        if not isinstance(small, cst.Assign):
            continue
        for target in small.targets:
            t = target.target
            if isinstance(t, cst.Subscript) and isinstance(t.value, cst.Name) and t.value.value in tracked and t.slice:
                last = t.slice[-1].slice
                if isinstance(last, cst.Index) and isinstance(last.value, cst.Integer) and last.value.value == "0":
                    return True
    return False
