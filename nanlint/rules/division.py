"""NAN20x: divisions by values that reach 0 (counts, sums of masks, statistics of signals that can be
constant, coordinates that coincide), divisions by a vector's own norm, and means of selections that can be
empty. The question is the same for every spelling (``a / b``, ``a /= b``, ``torch.div``, ``a.div_``,
``reciprocal``): does the denominator reach 0, and why?"""
from __future__ import annotations

from dataclasses import replace

import libcst as cst

from nanlint.analysis import shapes
from nanlint.analysis.context import confidence_of
from nanlint.analysis.domain import Evidence, Tier
from nanlint.analysis.names import EPS_NAME, opaque
from nanlint.analysis.syntax import arg, literal_value
from nanlint.findings import Applicability, Confidence
from nanlint.rules._fixes import functional_name
from nanlint.rules._hazards import names_in, repaired_after
from nanlint.rules.base import Rule

NORM_OPS = frozenset({"norm", "vector_norm"})


def denominator(rule: Rule, node: cst.CSTNode):
    """``(site, numerator, denominator)`` of a division in any spelling, else None."""
    site = rule.op(node)
    if site is None:
        return None
    if site.name == "div":
        if site.keyword("rounding_mode") is not None:
            return None  # floor division computes indices and sizes: on integers a zero raises instead
        den = site.arg("other")
        num = site.arg("input")
        return (site, num, den) if den is not None else None
    if site.name == "reciprocal":
        x = site.arg("input")
        return (site, None, x) if x is not None else None
    return None


def own_norm(rule: Rule, numerator, den) -> cst.Call | None:
    """The norm call when the denominator is the norm of the numerator itself: ``x / x.norm(dim=1)``."""
    if numerator is None:
        return None
    resolved = rule.ctx.ev.resolved(den)
    if not isinstance(resolved, cst.Call):
        return None
    site = rule.op(resolved)
    if site is None or site.name not in NORM_OPS or site.arg("input") is None:
        return None
    if rule.text(site.arg("input")) != rule.text(numerator):
        return None
    return resolved


def weighted_mean(rule: Rule, numerator, den):
    """``sum(x * w) / sum(w)``: a weighted mean whose weights (a target map, a mask, per-sample weights)
    are all 0 for an empty batch or class, whatever else is known of them."""

    weights = shapes.sum_weights(rule.ctx.ev, den, numerator)
    if weights is None:
        return None
    reaches = rule.ctx.frame.flow.uses.get(id(den)) if isinstance(den, cst.Name) else None
    if reaches and any(guards for _, guards in reaches):
        return None  # `if total == 0: return ...` on the way: the code handles the empty case
    inner = rule.ctx.ev.resolved(den)
    site = rule.op(inner) if isinstance(inner, cst.Call) else None
    w = rule.value(site.arg("input")) if site is not None else None

    if w is None or w.positive or w.role in ("activation", "random", "parameter", "probability", "setting") or w.dist:
        return None
    if w.vanish is None and not (w.role == "data" and opaque(replace(w, role=None))):
        # nothing says these weights vanish (quadrature weights, per-sample weights handed in), or they were
        # shown not to (`if w.sum() < 1: return`): a weighted mean is not 0/0 by its shape alone. Weights read
        # from the batch are annotations of the data: all 0 for a segment without events
        return None
    vanish = w.vanish if w.vanish is None or site.dim is not None else w.vanish.over_batch()
    if vanish is not None and vanish.tier < Tier.PLAUSIBLE:
        # a padding mask handed in is all 0 over the whole batch only when every sample is empty
        return Evidence(vanish.tier, f"the weights of a weighted mean: {vanish.why}", den, "weights")
    return Evidence(Tier.PLAUSIBLE, f"a weighted mean's weights `{weights}` are all 0 for an empty target or batch", den, "weights")


class _Division(Rule):
    triggers = ("/", "div", "reciprocal")
    contextual = True
    kinds_reported: frozenset[str] | None = None  # None: every kind but those excluded
    kinds_excluded: frozenset[str] = frozenset({"cancel"})

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Divide):
            self._check(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        if isinstance(node.operator, cst.DivideAssign):
            self._check(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    def _zero(self, den):
        v = self.value(den)
        ev = v.zero
        if not self.ctx.reaches(ev) or v.nonzero:
            return v, None
        if self.kinds_reported is not None and ev.kind not in self.kinds_reported:
            return v, None
        if self.kinds_reported is None and ev.kind in self.kinds_excluded:
            return v, None
        return v, ev

    def _check(self, node) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _raises_instead(self, numerator, den) -> bool:
        """Both sides are Python numbers (``len(xs) / n`` with ``n: int``, ``hits / total.item()``): a zero
        divisor raises ZeroDivisionError, which is a crash the user sees, not an inf or a NaN."""
        return numerator is not None and self.value(den).pynum and self.value(numerator).pynum


class DivisionByMaybeZero(_Division):
    code = "NAN201"

    def _check(self, node) -> None:
        found = denominator(self, node)
        if found is None:
            return
        site, numerator, den = found
        v, ev = self._zero(den)
        if ev is None and numerator is not None and not v.positive:
            ev = weighted_mean(self, numerator, den)
            ev = ev if self.ctx.reaches(ev) else None
        if ev is None:
            ev = self._vanishing_guard(den)
        if ev is None or own_norm(self, numerator, den) is not None:
            return
        if ev.kind == "literal" and v.const == 0:
            return
        if repaired_after(self, tested=names_in(den), first_entry=ev.kind == "index"):
            return  # `r = (t / n).clamp_(0, 1e4); r[torch.isnan(r)] = 0.1`, `where(n > 0, r, 1.0)`
        if self._raises_instead(numerator, den):
            return
        weights = shapes.sum_weights(self.ctx.ev, den, numerator) if numerator is not None and ev.kind == "weights" else None
        what = f"the sum of the weights of a weighted mean (`{weights}`)" if weights else None
        described = self.ctx.describe(den, v, "a value that may be 0") if what is None else what
        self.report(
            node,
            f"division by {described}: {self.ctx.why(ev)}, and x/0 = inf, 0/0 = NaN",
            confidence=confidence_of(ev),
            hint="add an eps or clamp the denominator: `x / (d + eps)`, `x / d.clamp_min(eps)`, or skip the empty case",
        )


    def _vanishing_guard(self, den):
        """``x / (d + curr_eps)`` where the eps guarding the division is itself 0 when its factor is
        (``curr_eps = eps * min(1, rms)``): adding a guard says ``d`` reaches 0, and the guard vanishes then."""

        expr = self.ctx.ev.resolved(den)
        if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add)):
            return None
        for term in (expr.left, expr.right):
            if isinstance(term, (cst.Name, cst.Attribute)) and EPS_NAME.search(self.text(term).rpartition(".")[2]):
                guard = self.value(term)
                if self.ctx.reaches(guard.zero) and guard.zero.kind not in ("literal",):
                    why = f"the eps `{self.text(term)}` that guards it is itself 0 when {guard.zero.why}"
                    return Evidence(guard.zero.tier, why, guard.zero.node, "vanishing-guard")
        return None

class DivisionByUnsignedSum(_Division):
    """NAN201's weakest reason, kept as an opt-in preview rule: a sum of values of unknown sign is 0 only when
    they cancel or are all 0."""

    code = "NAN204"
    kinds_reported = frozenset({"cancel"})

    def _zero(self, den):
        v = self.value(den)
        ev = v.zero
        if ev is None or ev.kind != "cancel" or v.nonzero:
            return v, None
        return v, ev

    def _check(self, node) -> None:
        found = denominator(self, node)
        if found is None:
            return
        site, numerator, den = found
        v, ev = self._zero(den)
        if ev is None or numerator is not None and weighted_mean(self, numerator, den) is not None:
            return  # a weighted mean's weight sum is NAN201's
        if self._raises_instead(numerator, den):
            return
        self.report(
            node,
            f"division by {self.ctx.describe(den, v)}: {ev.why}, and x/0 = inf",
            confidence=Confidence.LOW,
            hint="clamp the denominator away from 0 when the terms can all vanish",
        )


class DivisionByOwnNorm(_Division):
    code = "NAN202"
    triggers = ("norm",)

    def _check(self, node) -> None:
        found = denominator(self, node)
        if found is None:
            return
        site, numerator, den = found
        norm = own_norm(self, numerator, den)
        if norm is None:
            return
        v, ev = self._zero(den)
        if ev is None:
            return
        fix = self._fix(node, numerator, norm) if norm is den and isinstance(node, cst.BinaryOperation) else None
        self.report(
            node,
            f"`{self.text(numerator)}` divided by its own norm: {self.ctx.why(ev)}, and a zero vector gives 0/0 = NaN",
            fix=fix,
            confidence=confidence_of(ev),
            hint="use `F.normalize(x, dim=...)`, which clamps the norm to eps",
        )

    def _fix(self, node: cst.BinaryOperation, x: cst.BaseExpression, norm: cst.Call):
        """``x / x.norm(dim=d, keepdim=True)`` -> ``F.normalize(x, dim=d)``: only for the 2-norm of vectors
        (no order, or a literal 2), with ``keepdim=True`` and nothing else passed (no ``dtype=``, ``out=``)."""
        site = self.op(norm)
        if site is None or site.namespace not in ("torch", "method") or any(a.star for a in norm.args):
            return None
        if site.is_method:
            if not isinstance(norm.func, cst.Attribute) or norm.func.attr.value != "norm":
                return None
            order_name, given = "p", list(norm.args)
        else:
            qualname = self.target(norm).qualname
            order_name = {"torch.norm": "p", "torch.functional.norm": "p", "torch.linalg.norm": "ord",
                          "torch.linalg.vector_norm": "ord"}.get(qualname or "")
            if order_name is None or not norm.args or norm.args[0].keyword is not None:
                return None
            given = list(norm.args[1:])
        bound: dict[str, cst.BaseExpression] = {}
        names = [order_name, "dim", "keepdim"]
        for a in given:
            if a.keyword is None:
                if not names:
                    return None
                bound[names.pop(0)] = a.value
            elif a.keyword.value in (order_name, "dim", "keepdim") and a.keyword.value not in bound:
                bound[a.keyword.value] = a.value
                if a.keyword.value in names:
                    names.remove(a.keyword.value)
            else:
                return None  # dtype=, out=, or the order under the other library's name
        order, dim, keepdim = bound.get(order_name), bound.get("dim"), bound.get("keepdim")
        if dim is None or keepdim is None or self.text(keepdim) != "True":
            return None
        if order is not None:
            if literal_value(order) != 2 or isinstance(order, cst.SimpleString):
                return None  # an L1, max or Frobenius norm is not what F.normalize divides by
            if order_name == "ord" and self.target(norm).qualname == "torch.linalg.norm" and literal_value(dim) is None:
                return None  # ord=2 over two dims is the spectral norm of a matrix
        functional = functional_name(self, node)
        if functional is None:
            return None
        text = f"{functional}.normalize({self.ctx.fix_text(x).strip()}, dim={self.ctx.fix_text(dim).strip()})"
        return self.replace(node, text, "Replace `x / x.norm(...)` with `F.normalize(x, ...)`", Applicability.UNSAFE)


class MeanOfEmptySelection(Rule):
    code = "NAN203"
    triggers = ("mean",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name not in ("mean", "nanmean", "median") or site.arg("input") is None:
            return
        x = site.arg("input")
        v = self.value(x)
        ev = v.empty
        if not self.ctx.reaches(ev):
            return
        self.report(
            node,
            f"mean of {self.ctx.describe(x, v, 'a selection')}: {self.ctx.why(ev)}, and the mean of nothing is 0/0 = NaN",
            confidence=Confidence.HIGH if ev.kind == "empty" and ev.root is None or isinstance(_mask(x), cst.Comparison) else Confidence.MEDIUM,
            hint="divide the masked sum by a clamped count: `(x * m).sum() / m.sum().clamp_min(1)`, or skip the empty case",
        )


def _mask(x):
    if isinstance(x, cst.Subscript) and len(x.slice) == 1 and isinstance(x.slice[0].slice, cst.Index):
        return x.slice[0].slice.value
    return None
