"""NAN30x: ``exp`` (and its relatives) of values that can be large: float32 ``exp`` overflows above 88.72,
float16 above 11.09. What makes a value large is in its value: a quotient by a small temperature, a
difference of log-probabilities, a network output with no upper bound, a bound that is itself too high."""
from __future__ import annotations

import libcst as cst

from nanlint.analysis import domain as d
from nanlint.analysis.context import confidence_of
from nanlint.analysis.elementwise import EXP_MAX
from nanlint.analysis.syntax import literal_value
from nanlint.findings import Applicability, Confidence
from nanlint.rules._fixes import may_be_complex_or_integer, only_arguments, torch_name
from nanlint.rules.base import Rule

EXP_OPS = frozenset({"exp", "expm1", "exp2", "cosh", "sinh"})
SUM_OPS = frozenset({"sum", "nansum", "scatter_add", "index_add"})


def exp_site(rule: Rule, expr: cst.BaseExpression | None, follow: bool = True):
    """The exp-family site of ``expr`` (a name followed to what it was bound to), with its argument."""
    if expr is None:
        return None
    if follow:
        expr = rule.ctx.ev.resolved(expr)
    if not isinstance(expr, cst.Call):
        return None
    site = rule.op(expr)
    if site is None or site.name not in EXP_OPS or site.arg("input") is None:
        return None
    if site.namespace == "math":
        return None  # Python's math.exp raises OverflowError instead of returning inf
    return site


def may_overflow(v) -> bool:
    """Nothing bounds it below exp's range."""
    return v.hi > EXP_MAX and v.role != d.LOGPROB and v.const is None


class ExpOfUnboundedValue(Rule):
    """NAN301: exp of a value the analysis shows can be large (``large`` evidence, or a bound above 88.7)."""

    code = "NAN301"
    triggers = ("exp", "cosh", "sinh")
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = exp_site(self, node, follow=False)
        if site is None:
            return
        x = site.arg("input")
        v = self.value(x)
        if v.const is not None:
            return
        if self.ctx.reaches(v.large) and v.hi > EXP_MAX:
            why = self.ctx.why(v.large)
        elif v.hi > EXP_MAX and v.hi < d.INF:
            why = f"it is bounded only at {v.hi:g}"
        else:
            return
        self.report(
            node,
            f"`{site.name}` of {self.ctx.describe(x, v)}: {why}; exp overflows to inf above 88.7 in float32 (11.1 in float16), and the loss and gradients become inf/NaN",
            confidence=confidence_of(v.large) if v.large is not None else Confidence.HIGH,
            hint="clamp before exponentiating (`x.clamp(max=20).exp()`), or use a stable form (`softmax`, `logsumexp`, `softplus`)",
        )


class ManualSoftmax(Rule):
    """NAN302: exp(x) / sum(exp(x)) without subtracting the max first."""

    code = "NAN302"
    triggers = ("exp",)
    contextual = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Divide):
            return
        site = exp_site(self, node.left)
        if site is None:
            self._sigmoid(node)
            return
        if not may_overflow(self.value(site.arg("input"))):
            return
        if not self._normalizes(node.right, node.left, site.node):
            return
        self.report(
            site.node,
            "hand-written softmax: `exp` of the raw scores overflows to inf above 88.7 (float32) and inf / inf = NaN",
            hint="use `torch.softmax(x, dim)`, or subtract the max first: `exp(x - x.amax(dim, keepdim=True))`",
        )

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name != "div" or not site.is_method:
            return
        num, den = site.arg("input"), site.arg("other")
        found = exp_site(self, num)
        if found is None or den is None or not may_overflow(self.value(found.arg("input"))):
            return
        if self._normalizes(den, num, found.node):
            self.report(found.node, "hand-written softmax: `exp` of the raw scores overflows to inf above 88.7 (float32) and inf / inf = NaN",
                        hint="use `torch.softmax(x, dim)`, or subtract the max first")

    def _sigmoid(self, node: cst.BinaryOperation) -> None:
        """``c / (1 + exp(-a * x))``, a hand-written (scaled) sigmoid: where exp overflows the value is 0, but
        its gradient c * exp(z) / (1 + exp(z))**2 is inf / inf = NaN."""
        if literal_value(node.left) is None:
            return
        denominator = self.ctx.ev.resolved(node.right)
        if not (isinstance(denominator, cst.BinaryOperation) and isinstance(denominator.operator, cst.Add)):
            return
        for one, term in ((denominator.left, denominator.right), (denominator.right, denominator.left)):
            if literal_value(one) != 1:
                continue
            site = exp_site(self, term)
            if site is None or site.namespace in ("numpy", "math"):
                return  # NumPy gives the right 0 (with a warning) and has no gradient
            v = self.value(site.arg("input"))
            if not may_overflow(v) or not self.ctx.grad_flows(v):
                return
            if v.grad is not True and v.role != d.ACTIVATION:
                return  # a learned score grows without bound in training; an image under a set gain does not
            self.report(
                site.node,
                "hand-written sigmoid `c / (1 + exp(z))`: exp overflows to inf above 88.7 (float32, 11.1 in float16); "
                "the value is then 0, but its gradient is inf / inf = NaN",
                hint="use `torch.sigmoid(-z)` (scaled: `c * torch.sigmoid(-z)`), whose gradient is finite everywhere",
            )
            return

    def _normalizes(self, denominator, numerator, exp) -> bool:
        """The denominator sums the numerator (``e.sum(-1)``, ``scatter_add(e, ...)``) or is ``1 + exp(x)``."""
        texts = {self.text(numerator), self.text(exp)}
        resolved = self.ctx.ev.resolved(denominator)
        for node in _calls(resolved):
            site = self.op(node)
            name = site.name if site is not None else _called(node)
            if name in SUM_OPS or _called(node) in ("scatter_add", "scatter_sum", "segment_sum", "scatter"):
                inner = site.arg("input") if site is not None else None
                if inner is None or self.text(inner) in texts or self.text(self.ctx.ev.resolved(inner)) in texts or "exp" in self.text(node):
                    return True
        if isinstance(resolved, cst.BinaryOperation) and isinstance(resolved.operator, cst.Add):
            for a, b in ((resolved.left, resolved.right), (resolved.right, resolved.left)):
                if self.ctx.ev.number(a) == 1 and self.text(b) in texts:
                    return True
        return False


def _calls(expr) -> list[cst.Call]:
    out: list[cst.Call] = []

    class _Collect(cst.CSTVisitor):
        def visit_Call(self, node: cst.Call) -> None:
            out.append(node)

    if expr is not None:
        expr.visit(_Collect())
    return out


def _called(call: cst.Call) -> str:
    func = call.func
    return func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""


class NaiveLogSumExp(Rule):
    """NAN303: log(sum(exp(x))) instead of logsumexp."""

    code = "NAN303"
    triggers = ("exp",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name != "log" or site.arg("input") is None:
            return
        inner = self.ctx.ev.resolved(site.arg("input"))
        if not isinstance(inner, cst.Call):
            return
        sum_site = self.op(inner)
        if sum_site is None or sum_site.name not in ("sum", "nansum") or sum_site.arg("input") is None:
            return
        exp = exp_site(self, sum_site.arg("input"), follow=False)
        if exp is None or exp.name != "exp":
            return
        x = exp.arg("input")
        if not may_overflow(self.value(x)):
            return
        self.report(
            node,
            "`log(sum(exp(x)))` overflows to inf once x passes 88.7 (float32), and gives log(0) = -inf when every exp underflows",
            fix=self._fix(node, site, inner, sum_site, exp, x),
            hint="use `torch.logsumexp(x, dim)`",
        )

    def _fix(self, log, log_site, sum_call, sum_site, exp, operand):
        """``log(sum(exp(x), dim, keepdim))`` -> ``torch.logsumexp(x, dim, keepdim)`` (or ``x.logsumexp(dim)``
        for a method chain): torch only, written inline, each call given nothing the rewrite cannot carry."""
        if log_site.arg("input") is not sum_call:
            return None
        if any(s.namespace not in ("torch", "method") for s in (log_site, sum_site, exp)):
            return None  # NumPy has no logsumexp; Python's sum(xs, start) is not a reduction over a dim
        if not only_arguments(log, 0 if log_site.is_method else 1) or not only_arguments(exp.node, 0 if exp.is_method else 1):
            return None  # `out=` on the log or the exp would be lost
        if sum_site.arg("input") is not exp.node:
            return None
        sum_args = list(sum_call.args)
        if not sum_site.is_method:
            if not sum_args or sum_args[0].keyword is not None:
                return None
            sum_args = sum_args[1:]
        if not sum_args or any(a.star for a in sum_args) or sum(a.keyword is None for a in sum_args) > 2:
            return None  # logsumexp needs a dim
        args = []
        for original in sum_args:
            a = original
            if a.keyword is not None and a.keyword.value == "keepdims":
                a = a.with_changes(keyword=cst.Name("keepdim"))
            if a.keyword is not None and a.keyword.value not in ("dim", "keepdim"):
                return None  # dtype=, out=
            args.append(self.ctx.fix_text(a, at=original).rstrip().rstrip(",").strip())
        if may_be_complex_or_integer(self, operand):
            return None  # logsumexp of a complex tensor picks its own branch of the log
        operand_text = self.ctx.fix_text(operand).strip()
        if exp.is_method and sum_site.is_method:
            if not isinstance(operand, (cst.Name, cst.Attribute, cst.Subscript, cst.Call)) and not getattr(operand, "lpar", None):
                operand_text = f"({operand_text})"
            text = f"{operand_text}.logsumexp({', '.join(args)})"
        else:
            torch = torch_name(self, log)
            if torch is None:
                return None
            text = f"{torch}.logsumexp({operand_text}, {', '.join(args)})"
        return self.replace(log, text, "Replace `log(sum(exp(x)))` with `logsumexp`", Applicability.SAFE)


class ClampAfterExp(Rule):
    """NAN304: clamp(exp(x), max=M): the overflow already happened inside, and the clamp's gradient through
    inf is NaN."""

    code = "NAN304"
    triggers = ("exp",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = self.op(node)
        if site is None or site.name not in ("clamp", "clamp_max", "minimum", "min", "fmin"):
            return
        if site.name in ("min", "minimum", "fmin"):
            upper = site.arg("other") or (site.extra_positional[0] if site.extra_positional else None)
        else:
            upper = site.arg("max")
        if upper is None or self.text(upper) == "None":
            return
        if site.name == "min" and self.value(upper).integer and self.ctx.ev.number(upper) is not None:
            return  # x.min(dim): a reduction
        exp = exp_site(self, site.arg("input"))
        if exp is None:
            return
        v = self.value(exp.arg("input"))
        if not may_overflow(v) or v.role == d.PARAMETER or not self.ctx.grad_flows(v):
            return
        self.report(
            node,
            f"clamping after `{exp.name}`: the exp overflows to inf before the clamp, and the clamp's gradient through inf is NaN",
            hint="clamp the exponent instead: `x.clamp(max=math.log(M)).exp()`",
        )


class ExpOfUnknownValue(Rule):
    """NAN305 (preview): exp / expm1 / cosh / sinh of any value with no known upper bound."""

    code = "NAN305"
    triggers = ("exp", "cosh", "sinh", "**", "pow")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        self._power(node)

    def _power(self, node) -> None:
        """``x ** k`` with a literal k >= 8 on a value not known to lie in [-1, 1]."""
        site = self.op(node)
        if site is None or site.name != "pow":
            return
        k = self.ctx.ev.number(site.arg("exponent"))
        if k is None or k < 8:
            return
        v = self.value(site.arg("input"))
        if (v.lo >= -1 and v.hi <= 1) or v.const is not None or v.role in (d.PARAMETER, d.INDEX):
            return
        self.report(
            node,
            f"power {k:g} of a value with no known bound: it overflows float32 once |x| passes {3.4e38 ** (1 / k):.3g} "
            f"({65504 ** (1 / k):.3g} in float16)",
            confidence=Confidence.LOW,
            hint="normalize the base into [-1, 1] first, or compute the power in log space",
        )

    def visit_Call(self, node: cst.Call) -> None:
        self._power(node)
        site = exp_site(self, node, follow=False)
        if site is None:
            return
        v = self.value(site.arg("input"))
        if not may_overflow(v) or v.role in (d.PARAMETER, d.INDEX) or v.large is not None:
            return
        self.report(
            node,
            f"`{site.name}` of a value with no known upper bound: it overflows to inf above 88.7 in float32 (11.1 in float16)",
            confidence=Confidence.LOW,
            hint="clamp the exponent first when it can be large",
        )
