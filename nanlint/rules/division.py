"""NAN20x: divisions by values that can be exactly zero (sums, norms, std, counts, empty selections)."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.facts import EPS_NAME, F, Fact, arg, source_text
from nanlint.findings import Applicability, Confidence
from nanlint.rules._shared import WhereTracker, checked_by_condition, confidence_of, describe, operand, weak_zero
from nanlint.rules.base import Rule

DIV_NAMESPACES = frozenset({"torch", "numpy", "tf", "jax"})
NORM_OPS = frozenset({"norm", "vector_norm"})


def denominators(rule: Rule, node: cst.CSTNode) -> tuple[cst.BaseExpression, cst.BaseExpression, str] | None:
    """``(numerator, denominator, spelling)`` of a division: ``a / b``, ``a /= b``, ``torch.div(a, b)``,
    ``a.div_(b)``, ``torch.reciprocal(b)`` / ``b.reciprocal()`` (numerator 1)."""
    # floor division (`//`, rounding_mode=) computes indices and sizes: on integers a zero raises instead
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Divide):
        return node.left, node.right, "/"
    if isinstance(node, cst.AugAssign) and isinstance(node.operator, cst.DivideAssign):
        return node.target, node.value, "/="
    if isinstance(node, cst.Call):
        target = rule.target(node)
        op = target.base_op
        if any(a.keyword is not None and a.keyword.value == "rounding_mode" for a in node.args):
            return None
        if op in ("div", "divide", "true_divide"):
            if target.namespace == "method" and target.receiver is not None:
                den = arg(node, 0, "other")
                return (target.receiver, den, f".{target.op}()") if den is not None else None
            if target.namespace in DIV_NAMESPACES:
                num, den = arg(node, 0, "input"), arg(node, 1, "other")
                return (num, den, f"{target.op}()") if num is not None and den is not None else None
        if op == "reciprocal" and (target.namespace in DIV_NAMESPACES or (target.namespace == "method" and not node.args)):
            den = operand(rule, node, target)
            return (cst.Integer("1"), den, "reciprocal()") if den is not None else None
    return None


def norm_of_same(rule: Rule, numerator: cst.BaseExpression, denominator: cst.BaseExpression) -> cst.Call | None:
    """The norm call when ``denominator`` is the (unguarded) norm of ``numerator``: ``x / x.norm(dim=1)``."""
    resolved = rule.ctx.facts.resolve(denominator, rule.ctx.scope) if isinstance(denominator, cst.Name) else denominator
    if not isinstance(resolved, cst.Call):
        return None
    target = rule.target(resolved)
    if target.op not in NORM_OPS or target.namespace not in ("torch", "method", "numpy"):
        return None
    subject = rule.ctx.facts.subject_node(resolved, target)
    if subject is None or source_text(subject) != source_text(numerator):
        return None
    return resolved


def weighted_mean(rule: Rule, numerator: cst.BaseExpression, denominator: cst.BaseExpression) -> bool:
    """``sum(x * w) / sum(w)`` (or ``dot(x, w) / w.sum()``): a weighted mean, whose weights (a target map, a
    mask, per-sample weights) are all 0 for an empty batch or class, whatever their sign is known to be."""
    facts, scope = rule.ctx.facts, rule.ctx.scope
    resolved = facts.resolve(denominator, scope) if isinstance(denominator, cst.Name) else denominator
    if not isinstance(resolved, cst.Call):
        return False
    target = rule.target(resolved)
    if target.base_op not in ("sum", "nansum", "reduce_sum"):
        return False
    subject = facts.subject_node(resolved, target)
    weights = source_text(subject) if subject is not None else ""
    if not re.fullmatch(r"[A-Za-z_][\w.]*", weights):
        return False
    weighted = facts.resolve(numerator, scope) if isinstance(numerator, cst.Name) else numerator
    text = source_text(weighted) if weighted is not None else ""
    uses_weights = re.search(r"(?<![\w.])" + re.escape(weights) + r"(?!\w)", text) is not None
    return uses_weights and any(token in text for token in ("*", "@", "dot(", "mul(", "matmul(", "einsum("))


def unsigned_sum_only(fact: Fact) -> bool:
    """The only reason to think ``fact``'s value reaches 0 is that it sums (or peaks) values of unknown sign."""
    return fact.may_be_zero_guess and fact.has(F.UNSIGNED)


class DivisionByMaybeZero(WhereTracker, Rule):
    code = "NAN201"
    triggers = ("/", "div", "reciprocal")
    unsigned_sums = False  # NAN204 reports the divisions whose only reason is a sum of values of unknown sign

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self._check(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check(node)

    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        self._check(node)

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)

    def _check(self, node: cst.CSTNode) -> None:
        found = denominators(self, node)
        if found is None:
            return
        numerator, denominator, spelling = found
        fact = self.fact(denominator)
        if fact.value is not None or fact.has(F.CONST) or fact.has(F.SELECTED):
            return
        vanishing = None
        if weak_zero(fact) or not (fact.may_be_zero or fact.may_be_zero_guess):
            vanishing = self._vanishing_eps(denominator)
            if vanishing is None:
                return
        if norm_of_same(self, numerator, denominator) is not None:
            return  # NAN202
        if self.in_related_where(denominator) or checked_by_condition(self, denominator):
            return
        weighted = vanishing is None and unsigned_sum_only(fact) and weighted_mean(self, numerator, denominator)
        if (unsigned_sum_only(fact) and not weighted if vanishing is None else False) != self.unsigned_sums:
            return  # a sum of values of unknown sign is rarely exactly 0: NAN204 (preview) takes it
        if vanishing is None and fact.may_be_zero_guess and fact.has(F.ELEMENTWISE_ABS):
            return  # x / |s| is no riskier than x / s, which is not reported either (|s| of a scale hyper-parameter)
        if vanishing is not None:
            name, eps_fact = vanishing
            self.report(
                node,
                f"division by `{source_text(denominator)}`, guarded by {describe(self, name, eps_fact)}, which is itself 0 when its factor is: the guard vanishes exactly when it is needed",
                confidence=Confidence.HIGH,
                hint="keep the eps away from 0: `eps * max(1, r)` or a constant eps",
            )
            return
        if weighted:
            self.report(
                node,
                f"weighted mean divided by `{source_text(denominator)}`, the sum of its weights: it is 0 when every weight is (an empty target map, an all-zero mask), and 0/0 = NaN",
                confidence=Confidence.MEDIUM,
                hint="clamp the weight sum: `(x * w).sum() / w.sum().clamp_min(eps)`",
            )
            return
        self.report(
            node,
            f"division by {describe(self, denominator, fact, 'a value that may be 0')}: x/0 = inf and 0/0 = NaN",
            confidence=Confidence.LOW if self.unsigned_sums else confidence_of(fact),
            hint="add an eps or clamp the denominator: `x / (d + eps)`, `x / d.clamp_min(eps)`",
        )

    def _vanishing_eps(self, denominator: cst.BaseExpression) -> tuple[cst.Name, Fact] | None:
        """An eps-named addend of the denominator whose value can be 0 (``curr_eps = eps * min(1, rms)``)."""
        resolved = self.ctx.facts.resolve(denominator, self.ctx.scope) if isinstance(denominator, cst.Name) else denominator
        if not (isinstance(resolved, cst.BinaryOperation) and isinstance(resolved.operator, cst.Add)):
            return None
        for term in (resolved.left, resolved.right):
            if isinstance(term, cst.Name) and EPS_NAME.search(term.value):
                fact = self.fact(term)
                if fact.may_be_zero or fact.may_be_zero_guess:
                    return term, fact
        return None


class DivisionByUnsignedSum(DivisionByMaybeZero):
    """NAN201's weakest reason, kept as an opt-in preview rule: ``x / w.sum()`` where nothing is known of ``w``'s
    sign. It is 0 only when every term is (an empty target map, all-zero weights): real in losses, rare elsewhere."""

    code = "NAN204"
    unsigned_sums = True


class DivisionByOwnNorm(Rule):
    code = "NAN202"
    triggers = ("norm",)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self._check(node)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self._check(node)

    def visit_Call(self, node: cst.Call) -> None:
        self._check(node)

    def _check(self, node: cst.CSTNode) -> None:
        found = denominators(self, node)
        if found is None:
            return
        numerator, denominator, _ = found
        norm = norm_of_same(self, numerator, denominator)
        if norm is None or self.fact(denominator).is_guarded or self.fact(numerator).has(F.POSITIVE):
            return  # the norm of a vector of positive values (top-k of a softmax) is never 0
        if checked_by_condition(self, denominator):
            return
        fix = self._fix(node, numerator, norm) if norm is denominator and isinstance(node, cst.BinaryOperation) else None
        self.report(
            node,
            f"`{source_text(numerator)}` divided by its own norm: a zero vector gives 0/0 = NaN",
            fix=fix,
            hint="use `F.normalize(x, dim=...)`, which clamps the norm to eps",
        )

    def _fix(self, node: cst.BinaryOperation, x: cst.BaseExpression, norm: cst.Call):
        target = self.target(norm)
        p = arg(norm, 0, "p") if target.namespace == "method" else arg(norm, 1, "p") if target.op == "norm" else arg(norm, 1, "ord")
        dim = arg(norm, 1, "dim") if target.namespace == "method" else arg(norm, 2, "dim")
        keepdim = next((a.value for a in norm.args if a.keyword is not None and a.keyword.value == "keepdim"), None)
        if dim is None or keepdim is None or source_text(keepdim) != "True":
            return None
        if p is not None and source_text(p) not in ("2", "2.0"):
            return None
        functional = self.ctx.resolver.local_name_for("torch.nn.functional")
        if functional is None:
            torch = self.ctx.resolver.local_name_for("torch")
            if torch is None:
                return None
            functional = f"{torch}.nn.functional"
        text = f"{functional}.normalize({self.ctx.code_for(x).strip()}, dim={self.ctx.code_for(dim).strip()})"
        return self.replace(node, text, "Replace `x / x.norm(...)` with `F.normalize(x, ...)`", Applicability.UNSAFE)


class MeanOfEmptySelection(Rule):
    code = "NAN203"
    triggers = ("mean",)

    def visit_Call(self, node: cst.Call) -> None:
        target = self.target(node)
        if target.op not in ("mean", "nanmean") or target.namespace not in ("torch", "method", "numpy"):
            return
        subject = self.ctx.facts.subject_node(node, target)
        if subject is None:
            return
        fact = self.fact(subject)
        if not fact.has(F.MAY_EMPTY):
            return
        if checked_by_condition(self, subject):
            return
        index = subject.slice[0].slice.value if isinstance(subject, cst.Subscript) and subject.slice and isinstance(subject.slice[0].slice, cst.Index) else None
        confidence = Confidence.HIGH if isinstance(index, cst.Comparison) else Confidence.MEDIUM
        self.report(
            node,
            f"mean of the selection `{source_text(subject)}`, which holds no element when the mask is all False: the mean of nothing is 0/0 = NaN",
            confidence=confidence,
            hint="divide the masked sum by a clamped count: `(x * m).sum() / m.sum().clamp_min(1)`, or skip the empty case",
        )
