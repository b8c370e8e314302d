"""NAN241: ``torch.where(c, f(x), y)`` computes ``f(x)`` for every element and only then selects; the elements
it masks out still send their gradient, and 0 * NaN = NaN. A hazard op inside a ``where`` branch is reported
when the values it sees *over all elements* reach its edge but the values the condition selects do not: the
forward pass is guarded, the backward pass is not."""
from __future__ import annotations

import libcst as cst

from nanlint.analysis.context import confidence_of
from nanlint.findings import Confidence
from nanlint.rules._hazards import describe_op, edges
from nanlint.rules.base import Rule

HAZARD_OPS = frozenset({"log", "log2", "log10", "log1p", "sqrt", "rsqrt", "div", "reciprocal", "pow", "float_power",
                        "acos", "asin", "acosh", "atanh", "erfinv", "logit"})


class WhereNanBranch(Rule):
    code = "NAN241"
    triggers = ("where", "masked_fill")
    contextual = True

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self._wheres: list[cst.Call] = []
        self._reported: set[int] = set()

    def visit_Call(self, node: cst.Call) -> None:
        if self.ctx.ev.where_shape(node):
            self._wheres.append(node)
            return
        self._check(node)

    def leave_Call(self, node: cst.Call) -> None:
        if self._wheres and self._wheres[-1] is node:
            self._wheres.pop()

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, (cst.Divide, cst.Power)):
            self._check(node)

    def _check(self, node) -> None:
        if not self._wheres:
            return
        where = self._wheres[-1]
        if id(where) in self._reported:
            return
        site = self.op(node)
        if site is None or site.name not in HAZARD_OPS:
            return
        selected = {(e.kind, id(e.operand)) for e in edges(site) if self.ctx.reaches(e.evidence)}
        for edge in edges_unselected(self, site, where):
            if not self.ctx.reaches(edge.evidence) or (edge.kind, id(edge.operand)) in selected:
                continue
            if not any(self.ctx.grad_flows(v) for v in _operand_values(self, site)):
                return  # no operand carries a gradient: the discarded forward value is harmless
            self._reported.add(id(where))
            line = self.ctx.line_of(where)
            self.report(
                node,
                f"`where` (line {line}) computes this branch for every element, masked-out ones included: {describe_op(site)} of "
                f"{self.ctx.describe(edge.operand, edge.value)} there: {self.ctx.why(edge.evidence)}; the forward value is discarded, "
                "but its NaN gradient still flows (0 * NaN = NaN)",
                confidence=confidence_of(edge.evidence),
                hint="make the operand safe first: `safe_x = torch.where(cond, x, 1.0)`, then `torch.where(cond, f(safe_x), y)`",
            )
            return


def _operand_values(rule: Rule, site):
    return [rule.value(site.arg(name)) for name in site.spec.args if site.arg(name) is not None]


def edges_unselected(rule: Rule, site, where: cst.Call):
    """The edges the op reaches over the elements ``where`` masks out (its condition negated)."""
    out = []
    for arg, _ in site.spec.hazards or (("input", None),):
        expr = site.arg(arg)
        if expr is None:
            continue
        out.extend(edges(site, masked_value(rule, expr, where), expr))
    if site.name in ("pow", "float_power"):
        expr = site.arg("input")
        if expr is not None:
            out.extend(edges(site, masked_value(rule, expr, where)))
    return out


def masked_value(rule: Rule, expr: cst.BaseExpression, where: cst.Call):
    """The value of ``expr`` on the elements ``where`` masks out. The double-where idiom,
    ``safe = where(c, x, 1.0)`` then ``where(c, f(safe), y)``, gives them the safe filler: the same
    condition picks the filler wherever the outer ``where`` discards ``f``."""
    inner = _operand_where(rule, expr)
    condition = _condition(rule, where)
    if inner is not None and condition is not None:
        inner_condition = _condition(rule, inner)
        if inner_condition is not None and rule.text(inner_condition) == rule.text(condition):
            filler = _branches(rule, inner)[1]
            if filler is not None:
                return rule.value(filler)
    return rule.ctx.masked_out(expr, condition)


def _operand_where(rule: Rule, expr: cst.BaseExpression) -> cst.Call | None:
    resolved = rule.ctx.ev.resolved(expr)
    while isinstance(resolved, cst.Call) and rule.ctx.ev.where_shape(resolved) == 0 and isinstance(resolved.func, cst.Attribute) \
            and rule.target(resolved).op in ("float", "double", "half", "to", "clone", "detach"):
        resolved = rule.ctx.ev.resolved(resolved.func.value)
    return resolved if isinstance(resolved, cst.Call) and rule.ctx.ev.where_shape(resolved) in (1, 2) else None


def _condition(rule: Rule, where: cst.Call) -> cst.BaseExpression | None:
    shape = rule.ctx.ev.where_shape(where)
    if shape in (1, 2) and where.args:
        return where.args[0].value
    return None


def _branches(rule: Rule, where: cst.Call) -> tuple[cst.BaseExpression | None, cst.BaseExpression | None]:
    """(taken where the condition holds, taken where it fails)."""
    shape = rule.ctx.ev.where_shape(where)
    if shape == 1 and len(where.args) == 3:
        return where.args[1].value, where.args[2].value
    if shape == 2 and isinstance(where.func, cst.Attribute) and len(where.args) == 2:
        return where.func.value, where.args[1].value
    return None, None
