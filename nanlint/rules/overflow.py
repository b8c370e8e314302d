"""NAN30x: ``exp`` (and its relatives) of values that can be large: float32 ``exp`` overflows above 88.72,
float16 above 11.09."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.facts import F, arg, literal_value
from nanlint.findings import Applicability, Confidence
from nanlint.rules import _context as C
from nanlint.rules.base import Rule
from nanlint.rules._context import FamilyRule

EXP_OPS = frozenset({"exp", "expm1", "exp2", "cosh", "sinh"})
EXP_NAMESPACES = frozenset({"torch", "method", "numpy", "tf", "jax"})
SAFE_FACTS = F.BOUNDED | F.LOGSPACE | F.UNIT | F.PROB | F.NORMALIZED
SUM_NAMES = frozenset({"sum", "nansum", "scatter_add", "scatter_sum", "scatter", "segment_sum", "reduce_sum", "unsorted_segment_sum", "index_add", "cumsum", "segment_coo", "segment_csr"})
# log-variance / log-scale-of-a-Gaussian names: a network output that exp() turns into a variance
LOG_SPREAD = re.compile(r"^_*(log_?var(iance)?s?|log_?std(dev)?s?|log_?sigmas?|log_?sigma_?sq|log_?sig2?|log_?sigma2|logvar_\w+|\w+_log_?var|\w+_log_?std|\w+_log_?sigma)$", re.I)
LOG_PROB = re.compile(r"log_?probs?|logps?\b|logp_|log_?likelihoods?|log_?pis?\b|_logp|logprob", re.I)
TEMPERATURE = re.compile(r"scale|temperature|temp\b|tau|inv_temp", re.I)
SUBTRACTS_MAX = re.compile(r"max|logsumexp|lse|logaddexp|log_normalizer|log_z\b|logz", re.I)


def exp_operand(rule: Rule, call: cst.Call) -> cst.BaseExpression | None:
    """The operand of a tensor/array ``exp``-like call (``torch.exp(x)``, ``x.exp()``, ``np.exp(x)``)."""
    if C.call_name(call) not in EXP_OPS:
        return None
    target = rule.target(call)
    if target.op not in EXP_OPS or target.namespace not in EXP_NAMESPACES:
        return None
    if target.namespace == "method":
        if call.args or target.receiver is None:
            return None
        return target.receiver
    return arg(call, 0, "input") or arg(call, 0, "x")


def exp_call(rule: Rule, expr: cst.BaseExpression | None, follow: bool = True) -> tuple[cst.Call, int | None] | None:
    """``expr`` itself when it is an exp call, or the exp call a name was last bound to, with the position to
    look up the names of its operand at (the binding's, when it came through a name)."""
    if expr is None:
        return None
    at = None
    if isinstance(expr, cst.Name) and follow:
        found = C.bound_value(rule, expr)
        if found is None:
            return None
        expr, at = found
    if isinstance(expr, cst.Call) and exp_operand(rule, expr) is not None:
        return expr, at
    return None


def core_operand(expr: cst.BaseExpression) -> cst.BaseExpression:
    """Strip scaling by constants and signs: ``-0.5 * logvar`` -> ``logvar``; ``logvar / 2`` -> ``logvar``."""
    while True:
        if isinstance(expr, cst.UnaryOperation):
            expr = expr.expression
        elif isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Multiply, cst.Divide)):
            if literal_value(expr.right) is not None:
                expr = expr.left
            elif literal_value(expr.left) is not None and isinstance(expr.operator, cst.Multiply):
                expr = expr.right
            else:
                return expr
        elif isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in ("mul", "div", "float", "double", "to", "squeeze", "unsqueeze", "view", "reshape", "expand_as", "contiguous"):
            expr = expr.func.value
        else:
            return expr


def max_subtracted(rule: Rule, operand: cst.BaseExpression, at: int | None = None, depth: int = 0) -> bool:
    """``x - x.max(...)``, ``x - logsumexp(x)``, or a name bound to one: the stable form."""
    if isinstance(operand, cst.BinaryOperation) and isinstance(operand.operator, cst.Subtract):
        right = operand.right
        if isinstance(right, cst.Name):
            found = C.bound_value(rule, right, at)
            if found is not None:
                right = found[0]
        return bool(SUBTRACTS_MAX.search(rule.ctx.code_for(right)))
    if isinstance(operand, cst.Name) and depth < 3:
        found = C.bound_value(rule, operand, at)
        if found is not None:
            return max_subtracted(rule, found[0], found[1], depth + 1)
    if isinstance(operand, cst.Call) and isinstance(operand.func, cst.Attribute) and operand.func.attr.value in ("sub", "sub_"):
        return bool(SUBTRACTS_MAX.search(rule.ctx.code_for(operand)))
    return False


def is_bounded(rule: Rule, operand: cst.BaseExpression) -> bool:
    fact = rule.fact(operand)
    return fact.has(SAFE_FACTS) or fact.has(F.CONST) or nonpositive(rule, operand)


def nonpositive(rule: Rule, expr: cst.BaseExpression) -> bool:
    """``-d2``, ``-d2 / (2 * sigma ** 2)``, ``-0.5 * x ** 2``: a non-positive exponent cannot overflow."""
    value = literal_value(expr)
    if value is not None:
        return value <= 0
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        return rule.fact(expr.expression).has(F.NONNEG)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, (cst.Multiply, cst.Divide)):
        left, right = expr.left, expr.right
        if nonpositive(rule, left) and rule.fact(right).has(F.NONNEG | F.POSITIVE):
            return True
        if isinstance(expr.operator, cst.Multiply) and nonpositive(rule, right) and rule.fact(left).has(F.NONNEG | F.POSITIVE):
            return True
    return False


def clamped_in_function(rule: Rule, name: str) -> bool:
    """``name.clamp_(...)`` / ``torch.clamp(name, ...)`` somewhere in the function: bounded in place."""
    text = C.function_text(rule.ctx, rule.ctx.current_function)
    escaped = re.escape(name)
    return re.search(rf"{escaped}\s*\.\s*(clamp|clip|clamp_max)_?\(|(clamp|clip|clamp_max|minimum|tanh)\(\s*{escaped}\b", text) is not None


class ExpOfUnboundedValue(FamilyRule):
    """NAN301: exp of a log-variance / log-std / log-ratio with no upper clamp."""

    code = "NAN301"
    triggers = ("exp", "cosh", "sinh")

    def visit_Call(self, node: cst.Call) -> None:
        operand = exp_operand(self, node)
        if operand is None or is_bounded(self, operand) or max_subtracted(self, operand):
            return
        what = self._unbounded(operand, 0)
        if what is None:
            return
        op = self.target(node).op
        self.report(
            node,
            f"`{op}` of {what} with no upper clamp: it overflows to inf once the value passes 88.7 in float32 "
            "(11.1 in float16), and the loss and gradients become inf/NaN",
            confidence=Confidence.MEDIUM,
            hint="clamp before exponentiating, e.g. `logvar.clamp(max=20).exp()`, or use `F.softplus`",
        )

    def _unbounded(self, operand: cst.BaseExpression, depth: int) -> str | None:
        core = core_operand(operand)
        if is_bounded(self, core):
            return None
        if isinstance(core, cst.BinaryOperation) and isinstance(core.operator, cst.Subtract):
            left, right = C.name_of(core_operand(core.left)), C.name_of(core_operand(core.right))
            if LOG_PROB.search(left) and LOG_PROB.search(right):
                return f"a log-probability ratio (`{left} - {right}`)"
            return None
        name = C.name_of(core) if isinstance(core, (cst.Name, cst.Attribute, cst.Subscript)) else ""
        if isinstance(core, cst.Subscript):
            name = C.name_of(core.value)
        if not name:
            return None
        if LOG_SPREAD.match(name):
            if clamped_in_function(self, name):
                return None
            if isinstance(core, cst.Name) and depth < 3:
                found = self.ctx.facts.binding_value(core, self.ctx.scope)
                if found is not None and is_bounded(self, found[0]):
                    return None
            return f"`{name}` (a log-variance / log-scale)"
        if isinstance(core, cst.Name) and depth < 3:
            found = self.ctx.facts.binding_value(core, self.ctx.scope)
            if found is not None:
                inner = self._unbounded(found[0], depth + 1)
                if inner is not None and "ratio" in inner:
                    return f"`{name}`, {inner}"
        return None


class ManualSoftmax(FamilyRule):
    """NAN302: exp(x) / sum(exp(x)) without subtracting the max first."""

    code = "NAN302"
    triggers = ("exp",)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Divide):
            return
        found = exp_call(self, node.left)
        if found is None:
            return
        numerator, at = found
        operand = exp_operand(self, numerator)
        if operand is None or is_bounded(self, operand) or max_subtracted(self, operand, at):
            return
        if not self._normalizes(node.right, node.left, numerator):
            return
        self.report(
            numerator,
            "hand-written softmax: `exp` of the raw scores overflows to inf above 88.7 (float32) and inf / inf = NaN",
            hint="use `torch.softmax(x, dim)`, or subtract the max first: `exp(x - x.amax(dim, keepdim=True))`",
        )

    def _normalizes(self, denominator: cst.BaseExpression, numerator: cst.BaseExpression, exp: cst.Call) -> bool:
        """The denominator sums the numerator (``e.sum(-1)``, ``scatter_add(e, ...)``) or is ``1 + exp(x)``."""
        num_text = self.ctx.code_for(numerator)
        exp_text = self.ctx.code_for(exp)
        for sub in _calls_in(denominator):
            if C.call_name(sub) in SUM_NAMES:
                text = self.ctx.code_for(sub)
                if num_text in text or exp_text in text or "exp" in text:
                    return True
        if isinstance(denominator, cst.BinaryOperation) and isinstance(denominator.operator, cst.Add):
            for a, b in ((denominator.left, denominator.right), (denominator.right, denominator.left)):
                if literal_value(a) == 1 and self.ctx.code_for(b) in (num_text, exp_text):
                    return True
        if isinstance(denominator, cst.Name):
            found = self.ctx.facts.binding_value(denominator, self.ctx.scope)
            if found is not None and isinstance(found[0], (cst.Call, cst.BinaryOperation)):
                return self._normalizes(found[0], numerator, exp)
        return False


def _calls_in(expr: cst.BaseExpression) -> list[cst.Call]:
    out: list[cst.Call] = []

    class _Collect(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            out.append(node)

    expr.visit(_Collect())
    return out


class NaiveLogSumExp(FamilyRule):
    """NAN303: log(sum(exp(x))) instead of logsumexp."""

    code = "NAN303"
    triggers = ("exp",)

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) != "log":
            return
        target = self.target(node)
        if target.op != "log" or target.namespace not in ("torch", "method", "numpy", "tf", "jax"):
            return
        if target.namespace == "method":
            if node.args or target.receiver is None:
                return
            inner = target.receiver
        else:
            inner = arg(node, 0, "input") or arg(node, 0, "x")
        if isinstance(inner, cst.Name):
            found = self.ctx.facts.binding_value(inner, self.ctx.scope)
            inner = found[0] if found is not None else inner
        summed = self._sum_of_exp(inner)
        if summed is None:
            return
        sum_call, exp, operand = summed
        if is_bounded(self, operand) or max_subtracted(self, operand):
            return
        self.report(
            node,
            "`log(sum(exp(x)))` overflows to inf once x passes 88.7 (float32), and gives log(0) = -inf when every "
            "exp underflows",
            fix=self._fix(node, sum_call, exp, operand, inner),
            hint="use `torch.logsumexp(x, dim)`",
        )

    def _sum_of_exp(self, expr: cst.BaseExpression | None):
        if not isinstance(expr, cst.Call):
            return None
        target = self.target(expr)
        if target.op not in ("sum", "nansum", "reduce_sum"):
            return None
        subject = target.receiver if target.namespace == "method" else (arg(expr, 0, "input") or arg(expr, 0, "a"))
        found = exp_call(self, subject, follow=False)
        if found is None or self.target(found[0]).op != "exp":
            return None
        return expr, found[0], exp_operand(self, found[0])

    def _fix(self, log: cst.Call, sum_call: cst.Call, exp: cst.Call, operand: cst.BaseExpression, inner: cst.BaseExpression):
        if inner is not sum_call:
            return None  # the sum was bound to a name first: rewriting would leave it behind
        sum_target, exp_target, log_target = self.target(sum_call), self.target(exp), self.target(log)
        if "numpy" in (sum_target.namespace, exp_target.namespace, log_target.namespace):
            return None
        sum_args = list(sum_call.args)
        if sum_target.namespace != "method":
            sum_args = sum_args[1:]
        if not sum_args or any(a.star for a in sum_args):
            return None  # logsumexp needs a dim
        args = []
        for a in sum_args:
            if a.keyword is not None and a.keyword.value == "keepdims":
                a = a.with_changes(keyword=cst.Name("keepdim"))
            if a.keyword is not None and a.keyword.value not in ("dim", "keepdim"):
                return None
            args.append(self.ctx.code_for(a).rstrip().rstrip(",").strip())
        operand_text = self.ctx.code_for(operand)
        if exp_target.namespace == "method" and sum_target.namespace == "method":
            if not isinstance(operand, (cst.Name, cst.Attribute, cst.Subscript, cst.Call)):
                operand_text = f"({operand_text})"
            text = f"{operand_text}.logsumexp({', '.join(args)})"
        else:
            torch = _torch_prefix(self, log, sum_call, exp)
            if torch is None:
                return None
            text = f"{torch}.logsumexp({operand_text}, {', '.join(args)})"
        return self.replace(log, text, "Replace `log(sum(exp(x)))` with `logsumexp`", Applicability.SAFE)


def _torch_prefix(rule: Rule, *calls: cst.Call) -> str | None:
    for call in calls:
        func = call.func
        if isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name):
            if rule.ctx.resolver.aliases.get(func.value.value) == "torch":
                return func.value.value
    for local, qual in rule.ctx.resolver.aliases.items():
        if qual == "torch":
            return local
    return None


class ClampAfterExp(FamilyRule):
    """NAN304: clamp(exp(x), max=M): the overflow already happened inside."""

    code = "NAN304"
    triggers = ("exp",)
    CLAMPS = frozenset({"clamp", "clip", "clamp_max", "clamp_", "clip_", "clamp_max_", "minimum", "min", "clip_by_value"})

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in self.CLAMPS:
            return
        target = self.target(node)
        if target.op not in self.CLAMPS or target.namespace not in ("torch", "method", "numpy", "tf", "jax"):
            return
        method = target.namespace == "method"
        subject = target.receiver if method else arg(node, 0, "input")
        if subject is None:
            return
        if target.op in ("clamp_max", "clamp_max_", "minimum", "min"):
            upper = arg(node, 0, "max") if method else arg(node, 1, "max") or arg(node, 1, "other")
            if target.op == "min" and upper is None:
                return  # a reduction
            if target.op in ("min", "minimum") and method:
                upper = arg(node, 0, "other")
        else:
            upper = arg(node, 1, "max") if method else arg(node, 2, "max")
            upper = upper or C.keyword(node, "a_max") or C.keyword(node, "clip_value_max")
        if upper is None or (isinstance(upper, cst.Name) and upper.value == "None"):
            return
        found = exp_call(self, subject)
        if found is None:
            return
        exp, at = found
        operand = exp_operand(self, exp)
        if operand is None or is_bounded(self, operand) or max_subtracted(self, operand, at):
            return
        if TEMPERATURE.search(C.name_of(core_operand(operand))):
            return  # a learned log-temperature (CLIP's logit_scale) starts near 2.7 and is capped on purpose
        self.report(
            node,
            f"clamping after `{self.target(exp).op}`: the exp overflowed to inf before the clamp, whose gradient "
            "through inf is NaN",
            hint="clamp the exponent instead: `x.clamp(max=math.log(M)).exp()`",
        )


def _is_parameter(expr: cst.BaseExpression) -> bool:
    """``self.A_log``, ``self.logit_scale.float()``: a learned scalar or vector, small by construction."""
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute):
        expr = expr.func.value
    return (
        isinstance(expr, cst.Attribute)
        and isinstance(expr.value, cst.Name)
        and expr.value.value == "self"
    )


def _decaying(rule: Rule, expr: cst.BaseExpression) -> bool:
    """Sinusoidal frequencies ``exp(arange(d) * -(log(10000) / d))``: a range times a negated constant."""
    if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Multiply)):
        return False
    for a, b in ((expr.left, expr.right), (expr.right, expr.left)):
        text = rule.ctx.code_for(a)
        negated = isinstance(b, cst.UnaryOperation) and isinstance(b.operator, cst.Minus)
        if negated and re.search(r"\barange\(|\blinspace\(", text):
            return True
    return False


class ExpOfUnknownValue(FamilyRule):
    """NAN305 (preview): exp / expm1 / cosh / sinh / large powers of any value with no known bound."""

    code = "NAN305"
    triggers = ("exp", "cosh", "sinh", "**")

    def visit_Call(self, node: cst.Call) -> None:
        operand = exp_operand(self, node)
        if operand is None:
            return
        if is_bounded(self, operand) or max_subtracted(self, operand) or self.fact(operand).has(F.CONST):
            return
        if isinstance(operand, cst.UnaryOperation) and isinstance(operand.operator, cst.Minus) and self.fact(operand.expression).has(F.NONNEG):
            return
        core = core_operand(operand)
        name = C.name_of(core)
        if name and clamped_in_function(self, name):
            return
        if _is_parameter(core) or _decaying(self, operand):
            return
        self.report(
            node,
            f"`{self.target(node).op}` of a value with no known upper bound: it overflows to inf above 88.7 in "
            "float32 (11.1 in float16)",
            confidence=Confidence.LOW,
            hint="clamp the exponent first when it can be large",
        )

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Power):
            return
        exponent = literal_value(node.right)
        if exponent is None or exponent < 8:
            return
        base = self.fact(node.left)
        if base.has(F.UNIT | F.PROB | F.CONST) or literal_value(node.left) is not None:
            return
        self.report(
            node,
            f"power {exponent:g} of a value with no known bound: |x| above {3.4e38 ** (1 / exponent):.3g} overflows "
            "float32 (and much less in float16)",
            confidence=Confidence.LOW,
        )
