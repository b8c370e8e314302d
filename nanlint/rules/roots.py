"""NAN21x-23x: roots and fractional powers at or below zero, inverse trigonometry at +-1, atan2 at the origin,
unbiased statistics over one element. Most of these are gradient hazards: ``sqrt(0)`` is 0, but its
gradient 1/(2 sqrt(x)) is inf, and inf * 0 = NaN in the backward pass; they are reported only where a
gradient can flow."""
from __future__ import annotations

import libcst as cst

from nanlint.analysis import domain as d
from nanlint.analysis.context import confidence_of
from nanlint.analysis.domain import Evidence, Tier
from nanlint.findings import Confidence
from nanlint.rules._hazards import (
    INVERSE_TRIG,
    ROOT_OPS,
    assigned_key_tested,
    describe_op,
    edges,
    exponent_of,
    is_fractional_power,
    repaired_after,
)
from nanlint.rules import _context as C
from nanlint.rules.base import Rule


def root_site(rule: Rule, node: cst.CSTNode):
    site = rule.op(node)
    if site is None or site.arg("input") is None:
        return None
    if site.name in ROOT_OPS or is_fractional_power(site):
        return site
    return None


class _RootRule(Rule):
    triggers = ("sqrt", "**", "pow")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        self._visit(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power):
            self._visit(node)

    def _visit(self, node) -> None:
        site = root_site(self, node)
        if site is not None:
            self.check(node, site)

    def check(self, node, site) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class SqrtOfMaybeZero(_RootRule):
    code = "NAN211"

    def check(self, node, site) -> None:
        for edge in edges(site):
            if edge.kind == "negative" and self.ctx.reaches(edge.evidence):
                return  # NAN212
        found = [e for e in edges(site) if e.kind == "zero" and self.ctx.reaches(e.evidence)]
        if not found:
            tested = assigned_key_tested(self, node, 0.0)
            if tested is not None:
                x = site.arg("input")
                from nanlint.rules._hazards import Edge

                found = [Edge("zero", tested, False, x, self.value(x))]
        for edge in found:
            if not self.ctx.reaches(edge.evidence):
                continue
            forward = site.name == "rsqrt" or edge.forward
            if not forward and not self.ctx.grad_reaches(edge.value, edge.evidence):
                return
            x = edge.operand
            why = "rsqrt(0) = inf" if site.name == "rsqrt" else (
                "x ** p for p < 0 is inf at 0" if forward else
                "its gradient is inf at 0 (d/dx sqrt(x) = 1/(2*sqrt(x))), and inf * 0 = NaN in backward")
            self.report(
                node,
                f"{describe_op(site)} of {self.ctx.describe(x, edge.value, 'a value that may be 0')}: {self.ctx.why(edge.evidence)}; {why}",
                confidence=confidence_of(edge.evidence),
                hint="put the eps inside the root: `torch.sqrt(x + eps)` or `x.clamp_min(eps).sqrt()`; for a norm use `torch.linalg.vector_norm`",
            )
            return


class SqrtOfMaybeNegative(_RootRule):
    code = "NAN212"

    def check(self, node, site) -> None:
        for edge in edges(site):
            if edge.kind == "negative" and self.ctx.reaches(edge.evidence):
                self.report(
                    node,
                    f"{describe_op(site)} of {self.ctx.describe(edge.operand, edge.value)}: {self.ctx.why(edge.evidence)}, and the root of a negative number is NaN",
                    confidence=confidence_of(edge.evidence),
                    hint="clamp first, away from 0 too: `x.clamp_min(eps).sqrt()` (clamp(min=0) still has an inf gradient at 0)",
                )
                return


class EpsOutsideRoot(Rule):
    """``sqrt(v) + eps``: the eps keeps the division away from 0, not the root's gradient. ``x.std() + eps`` is
    not reported: torch's std backward passes 0 where the std is 0 (since PyTorch 1.10), sqrt's does not."""

    code = "NAN213"
    triggers = ("sqrt",)
    contextual = True

    def visit_Module(self, node: cst.Module) -> None:
        self._reported: set[int] = set()  # a named root is reported once, however often an eps is added to it

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Add):
            self._check(node, ((node.left, node.right), (node.right, node.left)))

    def visit_Call(self, node: cst.Call) -> None:
        """``std.add(eps)``, ``std.add_(self.eps)``, ``torch.add(std, eps)``."""
        site = self.op(node)
        if site is not None and site.name == "add" and site.arg("input") is not None and site.arg("other") is not None:
            if site.arg("alpha") is None:
                self._check(node, ((site.arg("input"), site.arg("other")),))

    def _root(self, expr: cst.BaseExpression) -> tuple[cst.Call, bool] | None:
        """The ``sqrt`` call ``expr`` is, or the one the name ``expr`` was bound to (then True)."""
        if isinstance(expr, cst.Name):
            bound = C.bound_value(self, expr)
            if bound is None or not isinstance(bound[0], cst.Call):
                return None
            return bound[0], True
        return (expr, False) if isinstance(expr, cst.Call) else None

    def _check(self, node: cst.CSTNode, pairs) -> None:
        for addend, eps in pairs:
            found = self._root(addend)
            if found is None:
                continue
            root, named = found
            if named and id(root) in self._reported:
                continue
            e = self.value(eps)
            if not (e.positive and (e.role == d.EPS or (e.const is not None and e.const < 0.1))):
                continue
            site = self.op(root)
            if site is None or site.name != "sqrt" or site.arg("input") is None:
                continue
            x = site.arg("input")
            v = self.value(x)
            zero = v.zero
            if zero is None and not v.positive and not v.nonzero:
                # adding an eps to the root says the author expects it to reach 0: the root's own gradient is not guarded
                zero = Evidence(Tier.PLAUSIBLE, f"the eps added to `{self.text(root)}` says it can be 0", node, "eps-intent")
            if not self.ctx.reaches(zero) or not self.ctx.grad_reaches(v, zero):
                continue
            self._reported.add(id(root))
            self.report(
                root if named else node,  # the root is where the eps belongs
                f"the eps is added after the `{site.name}`"
                + (f" (`{self.text(node)}`, line {self.ctx.line_of(node)})" if named else "")
                + f": it keeps the division away from 0, but {self.ctx.why(zero)}, where the gradient of `{site.name}` is inf (then NaN)",
                confidence=confidence_of(zero),
                hint="put it inside the root: `torch.sqrt(x.var(dim) + eps)`",
            )
            return


class FractionalPowerOfMaybeZero(Rule):
    """``x ** gamma`` with an exponent known only at run time (a focal-loss gamma, a power-mean p)."""

    code = "NAN214"
    triggers = ("**", "pow")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        self._visit(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power):
            self._visit(node)

    def _visit(self, node) -> None:
        site = self.op(node)
        if site is None or site.name not in ("pow", "float_power"):
            return
        base, exponent = site.arg("input"), site.arg("exponent")
        if base is None or exponent is None or exponent_of(site) is not None:
            return
        v = self.value(base)
        if v.const is not None:
            return
        p = self.value(exponent)
        if p.integer:
            return  # an integer power is defined at 0 and below
        if self.ctx.reaches(v.below) and not v.nonneg:
            self.report(
                node,
                f"power `{self.text(exponent)}` of {self.ctx.describe(base, v)}: {self.ctx.why(v.below)}, and a negative base raised to a non-integer power is NaN",
                confidence=confidence_of(v.below),
                hint="keep the base non-negative: `x.clamp_min(0) ** p` (and away from 0: `x.clamp_min(eps) ** p`)",
            )
            return
        zero = v.zero
        # relu's or clamp's select drops the base's inf gradient, not the exponent's: d/dp = g * x**p * log(x) with
        # g = inf from further down is inf * 0 = NaN for a learned p
        learned = p.const is None and self.ctx.grad_flows(p) and (p.grad is True or (p.grad is None and _module_state(self, exponent)))
        dropped = not self.ctx.grad_reaches(v, zero) and not learned
        if self.ctx.reaches(zero) and not v.positive and self.ctx.grad_flows(v) and not dropped and not (p.positive and p.lo >= 1):
            self.report(
                node,
                f"power `{self.text(exponent)}` of {self.ctx.describe(base, v, 'a value that may be 0')}: {self.ctx.why(zero)}; if `{self.text(exponent)}` < 1 the gradient p * x**(p - 1) is inf at x = 0 (and d/dp = x**p * log(x) is NaN there)",
                confidence=Confidence.MEDIUM,
                hint="keep the base away from 0: `(x + eps) ** p` or `x.clamp_min(eps) ** p`",
            )


class InverseTrigDomain(Rule):
    code = "NAN221"
    triggers = ("acos", "asin", "atanh", "arccos", "arcsin", "arctanh", "erfinv")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name not in INVERSE_TRIG or site.arg("input") is None:
            return
        for edge in edges(site):
            if not self.ctx.reaches(edge.evidence):
                continue
            x, v = edge.operand, edge.value
            if edge.kind == "beyond":
                why = f"{self.ctx.why(edge.evidence)}, and `{site.name}` of a value past +-1 is NaN"
            elif edge.forward:
                why = f"{self.ctx.why(edge.evidence)}, and `{site.name}(+-1)` is +-inf"
            else:
                if not self.ctx.grad_flows(v):
                    continue
                why = f"{self.ctx.why(edge.evidence)}, where the gradient 1/sqrt(1 - x**2) is inf (then NaN)"
            self.report(
                node,
                f"`{site.name}` of {self.ctx.describe(x, v, 'a value not clamped inside (-1, 1)')}: {why}",
                confidence=confidence_of(edge.evidence),
                hint="clamp strictly inside: `x.clamp(-1 + eps, 1 - eps)`",
            )
            return


class Atan2AtOrigin(Rule):
    code = "NAN222"
    triggers = ("atan2", "arctan2")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name != "atan2":
            return
        y, x = site.arg("input"), site.arg("other")
        if y is None or x is None:
            return
        vy, vx = self.value(y), self.value(x)
        zy, zx = vy.zero, vx.zero
        if not self.ctx.grad_reaches(vy, zy) and not self.ctx.grad_reaches(vx, zx):
            return
        same = isinstance(y, cst.Subscript) and isinstance(x, cst.Subscript) and self.text(y.value) == self.text(x.value)
        both = self.ctx.reaches(zy) and self.ctx.reaches(zx)
        if not (both or (same and (zy is not None or zx is not None or vy.vanish is not None))):
            if not (same and not vy.nonzero and not vx.nonzero and vy.const is None) or self._replaced(y.value):
                return
        self.report(
            node,
            f"`atan2({self.text(y)}, {self.text(x)})` at (0, 0): the forward value is 0 but the gradient x/(x**2 + y**2) is 0/0 = NaN",
            confidence=Confidence.MEDIUM,
            hint="add an eps to the radius or mask the zero vectors before `atan2`",
        )


    def _replaced(self, vector) -> bool:
        """``s = where(cond, v, ones_like(v))``: the vectors the condition rejects were swapped for a filler."""
        resolved = self.ctx.ev.resolved(vector)
        return isinstance(resolved, cst.Call) and self.ctx.ev.where_shape(resolved) in (1, 2)


_SPATIAL = ({2, 3}, {-1, -2}, {2, 3, 4}, {-1, -2, -3}, {3, 4})


class UnbiasedStdOfOne(Rule):
    code = "NAN231"
    triggers = ("std", "var")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name not in ("std", "var", "std_mean", "var_mean") or site.arg("input") is None:
            return
        if site.namespace in ("numpy",) or (site.is_method and site.keyword("axis") is not None and site.keyword("ddof") is None):
            return  # NumPy's std is biased (ddof=0) unless ddof says otherwise
        if _biased(self, site):
            return
        x = site.arg("input")
        v = self.value(x)
        reason = None
        if self.ctx.reaches(v.single):
            reason = self.ctx.why(v.single)
        dims = _dims(self, site)
        if reason is None and dims is not None and dims in _SPATIAL:
            reason = f"over dims {tuple(sorted(dims))}, a feature map can be 1x1"
        elif reason is None and dims == {0} and self.ctx.tier <= Tier.DEGENERATE:
            reason = "over dim 0, a batch can hold one sample"
        if reason is None or repaired_after(self):
            return
        self.report(
            node,
            f"unbiased `{site.name}`: {reason}, where it divides by n - 1 = 0 and gives NaN",
            confidence=Confidence.MEDIUM,
            hint="pass `unbiased=False` (`correction=0`), or skip tensors with `numel() <= 1`",
        )


def _biased(rule: Rule, site) -> bool:
    for key in ("unbiased", "correction", "ddof"):
        expr = site.keyword(key)
        if expr is not None:
            text = rule.text(expr)
            return text in ("False", "0", "0.0")
    return any(rule.text(a) == "False" for a in site.extra_positional)


def _dims(rule: Rule, site) -> set[int] | None:
    dim = site.dim
    if dim is None or rule.text(dim) in ("True", "False"):
        return None
    if isinstance(dim, (cst.Tuple, cst.List)):
        values = [rule.ctx.ev.number(e.value) for e in dim.elements]
        if any(v is None for v in values):
            return set()
        return {int(v) for v in values}
    value = rule.ctx.ev.number(dim)
    return {int(value)} if value is not None else set()


def _module_state(rule, expr, depth: int = 3) -> bool:
    """``expr`` is (a view of) an attribute of ``self``: module state, which may be a learned parameter."""
    flow = rule.ctx.frame.flow
    for _ in range(depth):
        while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):  # p.view(-1, c)
            expr = expr.func.value
        if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
            return True
        if not isinstance(expr, cst.Name):
            return False
        reaches = flow.uses.get(id(expr)) or ()
        values = [r[0].value for r in reaches if r[0].kind == "assign" and not r[0].path]
        if not values:
            return False
        if any(_module_state(rule, v, depth - 1) for v in values[1:]):
            return True
        expr = values[0]
    return False
