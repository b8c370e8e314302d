"""NAN1xx: logarithms of values that can be exactly zero, and hand-written log-space formulas that have a
stable library form (softplus, log1p). The hand-written logsumexp is NAN303 (overflow family)."""
from __future__ import annotations

import libcst as cst

from nanlint.facts import F, arg, constant_value, source_text
from nanlint.findings import Applicability, Confidence
from nanlint.resolver import Target
from nanlint.rules._shared import WhereTracker, cast_to_integer_after, checked_by_condition, confidence_of, describe, inside_integer_cast
from nanlint.rules.base import Rule

LOG_OPS = frozenset({"log", "log2", "log10"})
LOG_NAMESPACES = frozenset({"torch", "method", "numpy", "tf", "jax", "math", "scipy"})
RAND_ORIGIN = "`torch.rand` noise"


def log_target(rule: Rule, call: cst.Call, ops: frozenset[str] = LOG_OPS) -> tuple[Target, cst.BaseExpression] | None:
    """The target and operand of a tensor/array ``log`` call, or None when ``call`` is not one.

    ``x.log()`` counts only without arguments, so ``self.log("loss", v)`` (Lightning) and ``logger.log(...)``
    do not."""
    target = rule.target(call)
    if target.op not in ops or target.namespace not in LOG_NAMESPACES:
        return None
    if target.namespace == "method":
        if call.args or target.receiver is None:
            return None
        return target, target.receiver
    operand = arg(call, 0, "input") or arg(call, 0, "x")
    if operand is None:
        return None
    return target, operand


def log_operand(rule: Rule, call: cst.Call) -> cst.BaseExpression | None:
    found = log_target(rule, call)
    return found[1] if found is not None else None


def _functional(rule: Rule) -> str | None:
    """How this file can spell ``torch.nn.functional``: ``F``, or the full path when torch is imported."""
    alias = rule.ctx.resolver.local_name_for("torch.nn.functional")
    if alias is not None:
        return alias
    torch = rule.ctx.resolver.local_name_for("torch")
    return f"{torch}.nn.functional" if torch is not None else None


def _exp_argument(rule: Rule, expr: cst.BaseExpression) -> tuple[cst.BaseExpression, Target] | None:
    """``x`` for ``exp(x)`` / ``x.exp()`` (torch, NumPy, math, TF), else None."""
    if not isinstance(expr, cst.Call):
        return None
    target = rule.target(expr)
    if target.op != "exp" or target.namespace not in LOG_NAMESPACES:
        return None
    if target.namespace == "method":
        return (target.receiver, target) if target.receiver is not None and not expr.args else None
    first = arg(expr, 0, "input")
    return (first, target) if first is not None else None


def _one_plus(expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """``x`` for ``1 + x`` or ``x + 1``."""
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        if constant_value(expr.left) == 1:
            return expr.right
        if constant_value(expr.right) == 1:
            return expr.left
    return None


class LogOfProbability(WhereTracker, Rule):
    code = "NAN101"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        found = log_target(self, node)
        if found is None:
            return
        target, operand = found
        fact = self.fact(operand)
        if not fact.has(F.PROB) or fact.is_guarded or fact.has(F.CONST):
            return
        if fact.origin is not None and fact.origin.what == RAND_ORIGIN:
            return  # NAN106
        if self.in_related_where(operand) or checked_by_condition(self, operand) or inside_integer_cast(self, node) or cast_to_integer_after(self):
            return
        self.report(
            node,
            f"`{target.op}` of {describe(self, operand, fact, 'a probability')}: it is exactly 0 once it underflows, and log(0) = -inf",
            fix=self._fix(node, operand),
            confidence=Confidence.MEDIUM if fact.is_guess else Confidence.HIGH,
            hint="use `log_softmax` / `logsigmoid`, or clamp first: `p.clamp_min(eps).log()`",
        )

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)

    def _fix(self, log_call: cst.Call, operand: cst.BaseExpression):
        """``log(softmax(x, dim))`` -> ``log_softmax(x, dim)``; ``log(sigmoid(x))`` -> ``logsigmoid(x)``;
        ``log(1 - sigmoid(x))`` -> ``logsigmoid(-x)``."""
        target = self.target(log_call)
        if target.op != "log":
            return None
        negate = False
        if isinstance(operand, cst.BinaryOperation) and isinstance(operand.operator, cst.Subtract) and constant_value(operand.left) == 1:
            operand, negate = operand.right, True
        if not isinstance(operand, cst.Call):
            return None
        inner = self.target(operand)
        if inner.op not in ("softmax", "sigmoid") or inner.namespace not in ("torch", "method"):
            return None
        if negate and inner.op != "sigmoid":
            return None
        if inner.op == "softmax":
            if inner.namespace == "method":
                new = operand.with_changes(func=operand.func.with_changes(attr=cst.Name("log_softmax")))
                return self.replace(log_call, new, "Replace `log(softmax(...))` with `log_softmax(...)`")
            if isinstance(operand.func, cst.Attribute):
                new = operand.with_changes(func=operand.func.with_changes(attr=cst.Name("log_softmax")))
                return self.replace(log_call, new, "Replace `log(softmax(...))` with `log_softmax(...)`")
            return None
        # sigmoid: Tensor has no .logsigmoid(); torch.sigmoid -> F.logsigmoid needs the functional module
        functional = _functional(self)
        x = self.ctx.facts.subject_node(operand, inner)
        if functional is None or x is None or len(operand.args) > (0 if inner.namespace == "method" else 1):
            return None
        x_text = self.ctx.code_for(x).strip()
        if negate:
            simple = isinstance(x, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or bool(getattr(x, "lpar", None))
            x_text = f"-{x_text}" if simple else f"-({x_text})"
            message = "Replace `log(1 - sigmoid(x))` with `logsigmoid(-x)`"
        else:
            message = "Replace `log(sigmoid(x))` with `logsigmoid(x)`"
        return self.replace(log_call, f"{functional}.logsigmoid({x_text})", message, Applicability.SAFE)


class LogOfMaybeZero(WhereTracker, Rule):
    code = "NAN102"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        self.track_enter(node)
        found = log_target(self, node)
        if found is None:
            return
        target, operand = found
        fact = self.fact(operand)
        if fact.has(F.PROB) and not fact.is_guarded and not fact.has(F.CONST):
            return  # NAN101 / NAN106
        if fact.has(F.CONST) or fact.is_guarded:
            return
        if not (fact.may_be_zero or fact.may_be_zero_guess):
            return
        if fact.may_be_zero_guess and (target.namespace == "math" or fact.has(F.SQUARE)):
            return  # a guessed zero of a Python scalar (a prior, a hyper-parameter) or of a square
        if self.in_related_where(operand) or checked_by_condition(self, operand) or inside_integer_cast(self, node) or cast_to_integer_after(self):
            return
        self.report(
            node,
            f"`{target.op}` of {describe(self, operand, fact, 'a value that may be 0')}: log(0) = -inf, and its gradient 1/x is inf",
            confidence=confidence_of(fact),
            hint="add an eps or clamp first: `torch.log(x + eps)`, `x.clamp_min(eps).log()`",
        )

    def leave_Call(self, node: cst.Call) -> None:
        self.track_leave(node)


class ManualSoftplus(Rule):
    code = "NAN103"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        found = log_target(self, node, LOG_OPS | {"log1p"})
        if found is None:
            return
        target, operand = found
        if target.op not in ("log", "log1p"):
            return
        inner = operand if target.op == "log1p" else _one_plus(operand)
        if inner is None:
            return
        exp = _exp_argument(self, inner)
        if exp is None:
            return
        x, exp_target = exp
        if self.fact(x).has(F.BOUNDED) or self.fact(x).has(F.LOGSPACE):
            return  # exp of a value clamped from above cannot overflow
        self.report(
            node,
            "hand-written softplus `log(1 + exp(x))`: exp overflows to inf for x > 88 (float32), 11 (float16)",
            fix=self._fix(node, target, x),
            hint="use `F.softplus(x)` (NumPy: `np.logaddexp(0, x)`)",
        )

    def _fix(self, node: cst.Call, target: Target, x: cst.BaseExpression):
        x_text = self.ctx.code_for(x).strip()
        if target.namespace in ("torch", "method"):
            functional = _functional(self)
            if functional is None:
                return None
            return self.replace(node, f"{functional}.softplus({x_text})", "Replace `log(1 + exp(x))` with `softplus(x)`")
        if target.namespace == "numpy" and isinstance(node.func, cst.Attribute):
            module = self.ctx.code_for(node.func.value).strip()
            return self.replace(node, f"{module}.logaddexp(0, {x_text})", "Replace `log(1 + exp(x))` with `logaddexp(0, x)`")
        return None


class LogOnePlus(Rule):
    code = "NAN105"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        found = log_target(self, node)
        if found is None or found[0].op != "log":
            return
        target, operand = found
        x = _one_plus(operand)
        if x is None or constant_value(x) is not None or _exp_argument(self, x) is not None:
            return
        fact = self.fact(x)
        if fact.has(F.COUNT) or (fact.has(F.POSITIVE) and not fact.has(F.EPS)):
            return  # counts and values clamped to >= 1 lose nothing in 1 + x
        if target.namespace == "method" and isinstance(node.func, cst.Attribute):
            fix = None
        else:
            fix = self._fix(node, x)
        self.report(
            node,
            "`log(1 + x)` loses x entirely when |x| is below the float epsilon (1e-7 in float32): it returns exactly 0",
            fix=fix,
            hint="use `log1p(x)`",
        )

    def _fix(self, node: cst.Call, x: cst.BaseExpression):
        if not isinstance(node.func, cst.Attribute) or len(node.args) != 1:
            return None
        new_func = node.func.with_changes(attr=cst.Name("log1p"))
        text = f"{self.ctx.code_for(new_func).strip()}({self.ctx.code_for(x).strip()})"
        return self.replace(node, text, "Replace `log(1 + x)` with `log1p(x)`")


class LogOfUniformNoise(Rule):
    code = "NAN106"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        found = log_target(self, node)
        if found is None:
            return
        target, operand = found
        fact = self.fact(operand)
        if fact.origin is None or fact.origin.what != RAND_ORIGIN or fact.is_guarded:
            return
        if checked_by_condition(self, operand):
            return
        self.report(
            node,
            f"`{target.op}` of {describe(self, operand, fact)}: `rand` samples [0, 1) and returns exactly 0 now and then, so log(u) = -inf (and Gumbel noise -log(-log(u)) = -inf)",
            hint="clamp the noise: `u.clamp(eps, 1 - eps)`, or draw Gumbel noise as `-torch.empty_like(x).exponential_().log()`",
        )
