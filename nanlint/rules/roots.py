"""NAN21x-23x: roots and fractional powers at or below zero, inverse trigonometry at +-1, and unbiased
statistics over one element."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.facts import F, Fact, arg, constant_value, source_text
from nanlint.findings import Confidence
from nanlint.resolver import Target
from nanlint.rules._shared import (
    WhereTracker,
    carries_no_gradient,
    checked_by_condition,
    confidence_of,
    describe,
    differentiable_context,
    in_no_grad,
    operand,
    repaired_after,
    weak_zero,
)
from nanlint.rules.base import Rule

ROOT_NAMESPACES = frozenset({"torch", "method", "numpy", "tf", "jax", "math"})


def root_site(rule: Rule, node: cst.CSTNode) -> tuple[str, cst.BaseExpression, float | None] | None:
    """``(spelling, radicand, exponent)`` for ``sqrt(x)``, ``x.sqrt()``, ``rsqrt(x)``, ``x ** 0.5``,
    ``pow(x, 1/3)``; the exponent is None for sqrt/rsqrt."""
    if isinstance(node, cst.Call):
        target = rule.target(node)
        op = target.base_op
        if op in ("sqrt", "rsqrt") and target.namespace in ROOT_NAMESPACES:
            if target.namespace == "method" and node.args:
                return None
            x = operand(rule, node, target)
            return (op, x, None) if x is not None else None
        if op in ("pow", "float_power") and target.namespace in ("torch", "method", "numpy", "tf", "jax"):
            x = operand(rule, node, target)
            exponent = arg(node, 0, "exponent") if target.namespace == "method" else arg(node, 1, "exponent")
            value = constant_value(exponent) if exponent is not None else None
            if x is not None and value is not None and 0 < value < 1:
                return ("pow", x, value)
        return None
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, cst.Power):
        value = constant_value(node.right)
        if value is not None and 0 < value < 1:
            return ("**", node.left, value)
    return None


def _autograd(rule: Rule) -> bool:
    return rule.ctx.resolver.imports_autograd


class _RootRule(WhereTracker, Rule):
    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        self._site(node)

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self._site(node)

    def _site(self, node: cst.CSTNode) -> None:
        found = root_site(self, node)
        if found is None:
            return
        spelling, x, exponent = found
        if constant_value(x) is not None:
            return
        fact = self.fact(x)
        if self.in_related_where(x) or fact.has(F.SELECTED):
            return  # NAN241; or the values were picked by a test on themselves
        self.check(node, spelling, x, exponent, fact)

    def check(self, node, spelling, x, exponent, fact) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


def _name(spelling: str, exponent: float | None) -> str:
    if exponent is None:
        return f"`{spelling}`"
    return f"`** {exponent:g}`" if spelling == "**" else f"`pow(x, {exponent:g})`"


class SqrtOfMaybeZero(_RootRule):
    code = "NAN211"
    triggers = ("sqrt", "**", "pow")

    def check(self, node, spelling, x, exponent, fact: Fact) -> None:
        if fact.may_be_negative or fact.is_guarded or fact.has(F.CONST):
            return  # NAN212 takes values that can go below 0
        if not (fact.may_be_zero or fact.may_be_zero_guess) or weak_zero(fact, squares_count=True):
            return
        if spelling != "rsqrt" and (not differentiable_context(self) or carries_no_gradient(self, x)):
            return  # a root of 0 is just 0 in code that is never differentiated, or of values with no gradient
        if self.rule_target_is_math(node):
            return
        if checked_by_condition(self, x):
            return
        if spelling == "rsqrt":
            why = "rsqrt(0) = inf"
        else:
            why = "its gradient is inf at 0 (d/dx sqrt(x) = 1/(2*sqrt(x))), and inf * 0 = NaN in backward"
        self.report(
            node,
            f"{_name(spelling, exponent)} of {describe(self, x, fact, 'a value that may be 0')}: {why}",
            confidence=confidence_of(fact),
            hint="put the eps inside the root: `torch.sqrt(x + eps)` or `x.clamp_min(eps).sqrt()`; for a norm use `torch.linalg.vector_norm`",
        )

    def rule_target_is_math(self, node) -> bool:
        return isinstance(node, cst.Call) and self.target(node).namespace in ("math", "numpy")


class SqrtOfMaybeNegative(_RootRule):
    code = "NAN212"
    triggers = ("sqrt", "**", "pow")

    def check(self, node, spelling, x, exponent, fact: Fact) -> None:
        if not fact.may_be_negative or fact.has(F.CONST):
            return
        if checked_by_condition(self, x):
            return
        self.report(
            node,
            f"{_name(spelling, exponent)} of {describe(self, x, fact, 'a value that can round below 0')}: it is >= 0 only in exact arithmetic; a rounding error below 0 gives NaN",
            confidence=confidence_of(fact, F.MAY_NEG),
            hint="clamp first, away from 0 too: `x.clamp_min(eps).sqrt()` (clamp(min=0) still has an inf gradient at 0)",
        )


class EpsOutsideRoot(Rule):
    code = "NAN213"
    triggers = ("std", "sqrt")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Add) or not _autograd(self) or in_no_grad(self.ctx):
            return
        for root, eps in ((node.left, node.right), (node.right, node.left)):
            if not isinstance(root, cst.Call) or not self.fact(eps).has(F.EPS):
                continue
            target = self.target(root)
            if target.namespace not in ("torch", "method", "tf"):
                continue
            op = target.base_op
            if op == "std" or (op == "sqrt" and not root.args if target.namespace == "method" else op == "sqrt"):
                inner = operand(self, root, target)
                if inner is None:
                    continue
                if op == "sqrt":
                    inner_fact = self.fact(inner)
                    if inner_fact.is_guarded or not (inner_fact.may_be_zero or inner_fact.may_be_zero_guess):
                        continue
                self.report(
                    node,
                    f"the eps is added after the `{op}`: it keeps the division away from 0, but the gradient of `{op}` at a zero variance is still inf (then NaN)",
                    confidence=Confidence.MEDIUM if op == "std" else Confidence.HIGH,
                    hint="put it inside the root: `torch.sqrt(x.var(dim) + eps)`",
                )
                return


class FractionalPowerOfMaybeZero(WhereTracker, Rule):
    code = "NAN214"
    triggers = ("**", "pow")

    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        target = self.target(node)
        if target.base_op not in ("pow", "float_power") or target.namespace not in ("torch", "method", "numpy", "tf", "jax"):
            return
        base = operand(self, node, target)
        exponent = arg(node, 0, "exponent") if target.namespace == "method" else arg(node, 1, "exponent")
        if base is not None and exponent is not None:
            self._check(node, base, exponent)

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if isinstance(node.operator, cst.Power):
            self._check(node, node.left, node.right)

    def _check(self, node: cst.CSTNode, base: cst.BaseExpression, exponent: cst.BaseExpression) -> None:
        value = constant_value(exponent)
        if value is not None and (value.is_integer() or 0 < value < 1):
            return  # integer powers are safe; 0 < p < 1 is NAN211/NAN212
        if constant_value(base) is not None:
            return
        fact = self.fact(base)
        if fact.has(F.CONST) or self.in_related_where(base):
            return
        negative = fact.may_be_negative
        zero = (fact.may_be_zero or fact.may_be_zero_guess) and not weak_zero(fact) and _autograd(self) and not in_no_grad(self.ctx)
        if value is not None and value < 0:
            return  # x ** -0.5 at 0 is inf in the forward pass: a division (NAN201's family), not a fractional power
        if value is not None and value > 1 and not negative:
            return  # x ** 2.4 is fine at 0
        if not (negative or zero):
            return
        if checked_by_condition(self, base):
            return
        exp_text = source_text(exponent)
        if negative:
            why = f"a base below 0 raised to a non-integer power is NaN"
        else:
            why = f"if `{exp_text}` < 1, the gradient p * x**(p - 1) is inf at x = 0 (and d/dp = x**p * log(x) is NaN there)"
        self.report(
            node,
            f"power `{exp_text}` of {describe(self, base, fact, 'a value that may be 0')}: {why}",
            confidence=Confidence.MEDIUM if value is None or fact.is_guess else Confidence.HIGH,
            hint="keep the base away from 0: `(x + eps) ** p` or `x.clamp_min(eps) ** p`",
        )


INVERSE_TRIG = frozenset({"acos", "asin", "arccos", "arcsin", "atanh", "arctanh"})


class InverseTrigDomain(WhereTracker, Rule):
    code = "NAN221"
    triggers = ("acos", "asin", "atanh", "arccos", "arcsin", "arctanh")

    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        target = self.target(node)
        if target.base_op not in INVERSE_TRIG or target.namespace not in ROOT_NAMESPACES:
            return
        if target.namespace == "method" and node.args:
            return
        x = operand(self, node, target)
        if x is None or constant_value(x) is not None:
            return
        fact = self.fact(x)
        if fact.has(F.CONST) or fact.has(F.SELECTED) or (fact.has(F.UNIT) and fact.has(F.GUARDED)):
            return  # clamped strictly inside (-1, 1), or picked by a test on itself
        cosine = fact.has(F.MAY_ONE) or fact.has(F.UNIT)
        if not cosine and target.namespace in ("math", "numpy"):
            return  # no gradient; only values known to reach +-1 matter
        if target.namespace in ("math", "numpy") and self._clipped_to_unit(x):
            return  # without a gradient, acos(+-1) is finite: a clip to [-1, 1] is a complete guard
        if self.in_related_where(x) or checked_by_condition(self, x):
            return
        op = target.base_op
        edge = "+-1" if op not in ("atanh", "arctanh") else "+-1 (where it is +-inf)"
        self.report(
            node,
            f"`{op}` of {describe(self, x, fact, 'a value not clamped inside (-1, 1)')}: rounding takes it past {edge}, giving NaN, and the gradient 1/sqrt(1 - x**2) is inf at +-1",
            confidence=Confidence.HIGH if cosine and not fact.is_guess else Confidence.MEDIUM,
            hint="clamp strictly inside: `x.clamp(-1 + eps, 1 - eps)`",
        )

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)

    def _clipped_to_unit(self, x: cst.BaseExpression) -> bool:
        resolved = self.ctx.facts.resolve(x, self.ctx.scope) if isinstance(x, cst.Name) else x
        if not isinstance(resolved, cst.Call) or self.target(resolved).base_op not in ("clip", "clamp", "clip_by_value"):
            return False
        bounds = [constant_value(a.value) for a in resolved.args[1:3]] if self.target(resolved).namespace != "method" else [
            constant_value(a.value) for a in resolved.args[0:2]]
        return len(bounds) == 2 and None not in bounds and -1 <= bounds[0] and bounds[1] <= 1


_PARAMETER_NAME = re.compile(r"(^|_|\.)(param|params|parameter|parameters|weight|weights|grad|bias|p)($|_|\.)")
_SPATIAL = ({2, 3}, {-1, -2}, {2, 3, 4}, {-1, -2, -3}, {1, 2}, {3, 4})


class UnbiasedStdOfOne(Rule):
    code = "NAN231"
    triggers = ("std", "var")

    def visit_Call(self, node: cst.Call) -> None:
        target = self.target(node)
        if target.base_op not in ("std", "var", "std_mean", "var_mean") or target.namespace not in ("torch", "method"):
            return
        if target.namespace == "method" and not self.ctx.resolver.imports_autograd:
            return  # NumPy's std is biased (ddof=0) by default
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        if target.namespace == "method" and "axis" in keywords and "ddof" not in keywords:
            return  # `axis=` is NumPy's spelling: biased unless ddof says otherwise
        if _biased(node):
            return
        subject = operand(self, node, target)
        if subject is None:
            return
        dims = _dims(node, target)
        reason = None
        if dims is None:
            if _PARAMETER_NAME.search(source_text(subject)) or self._loop_over_parameters(subject):
                reason = "over all elements of a parameter or gradient: a one-element tensor (a scalar weight, a bias of size 1)"
        elif dims == {0}:
            reason = "over dim 0, the batch: a batch of one sample"
        elif dims in _SPATIAL:
            reason = f"over dims {tuple(sorted(dims))}: a 1x1 feature map"
        if reason is None:
            return
        if checked_by_condition(self, subject) or repaired_after(self.ctx):
            return
        self.report(
            node,
            f"unbiased `{target.base_op}` {reason} divides by n - 1 = 0 and gives NaN",
            confidence=Confidence.MEDIUM,
            hint="pass `unbiased=False` (`correction=0`), or skip tensors with `numel() <= 1`",
        )

    def _loop_over_parameters(self, subject: cst.BaseExpression) -> bool:
        root = subject
        while isinstance(root, (cst.Attribute, cst.Subscript)):
            root = root.value
        if not isinstance(root, cst.Name):
            return False
        for statement in reversed(self.ctx.statement_stack):
            if isinstance(statement, cst.For) and root.value in _names(statement.target):
                return "parameters" in source_text(statement.iter)
        return False


def _names(target: cst.BaseExpression) -> set[str]:
    if isinstance(target, cst.Name):
        return {target.value}
    if isinstance(target, (cst.Tuple, cst.List)):
        out: set[str] = set()
        for element in target.elements:
            out |= _names(element.value)
        return out
    return set()


def _biased(call: cst.Call) -> bool:
    for a in call.args:
        if a.keyword is None:
            continue
        key, value = a.keyword.value, source_text(a.value)
        if key == "unbiased" and value == "False":
            return True
        if key in ("correction", "ddof") and value in ("0", "0.0"):
            return True
    positional = [a for a in call.args if a.keyword is None]
    return any(source_text(a.value) == "False" for a in positional)


def _dims(call: cst.Call, target: Target) -> set[int] | None:
    dim = arg(call, 0, "dim") if target.namespace == "method" else arg(call, 1, "dim")
    if dim is None:
        dim = next((a.value for a in call.args if a.keyword is not None and a.keyword.value in ("dim", "axis")), None)
    if dim is None or source_text(dim) in ("True", "False"):
        return None
    if isinstance(dim, (cst.Tuple, cst.List)):
        values = [constant_value(e.value) for e in dim.elements]
        if any(v is None for v in values):
            return set()
        return {int(v) for v in values}
    value = constant_value(dim)
    return {int(value)} if value is not None else set()


class Atan2AtOrigin(Rule):
    code = "NAN222"
    triggers = ("atan2", "arctan2")

    def _made_safe(self, vector: cst.BaseExpression) -> bool:
        resolved = self.ctx.facts.resolve(vector, self.ctx.scope) if isinstance(vector, cst.Name) else vector
        return _guard_call(resolved) or self.fact(vector).is_guarded

    def visit_Call(self, node: cst.Call) -> None:
        target = self.target(node)
        if target.base_op not in ("atan2", "arctan2") or target.namespace not in ("torch", "method", "tf", "jax"):
            return
        if target.namespace == "method":
            y, x = target.receiver, arg(node, 0, "other")
        else:
            y, x = arg(node, 0, "input"), arg(node, 1, "other")
        if y is None or x is None or not _autograd(self) or in_no_grad(self.ctx):
            return
        fy, fx = self.fact(y), self.fact(x)
        if fy.is_guarded or fx.is_guarded or fy.has(F.CONST) or fx.has(F.CONST):
            return
        both_zero = (fy.may_be_zero or fy.may_be_zero_guess) and (fx.may_be_zero or fx.may_be_zero_guess)
        same_vector = _components_of_one_vector(y, x) and not self._made_safe(y.value)
        if not (both_zero or same_vector):
            return
        self.report(
            node,
            f"`atan2({source_text(y)}, {source_text(x)})` at (0, 0): the forward value is 0 but the gradient x/(x**2 + y**2) is 0/0 = NaN",
            confidence=Confidence.MEDIUM,
            hint="add an eps to the radius or mask the zero vectors before `atan2`",
        )


def _guard_call(expr: cst.BaseExpression) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name in ("where", "masked_fill", "clamp", "clamp_min", "clip", "nan_to_num")


def _components_of_one_vector(y: cst.BaseExpression, x: cst.BaseExpression) -> bool:
    """``v[..., 1]`` and ``v[..., 0]``: the two coordinates of one 2D vector."""
    if not (isinstance(y, cst.Subscript) and isinstance(x, cst.Subscript)):
        return False
    return source_text(y.value) == source_text(x.value) and source_text(y) != source_text(x)
