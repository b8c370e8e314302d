"""NAN1xx: logarithms of values that reach 0 (or go below it), and hand-written log-space formulas that have
a stable library form (softplus, log1p). Each rule is one question about the ``log``'s argument: *why* does
it reach 0? A probability that underflows (NAN101), uniform noise (NAN106), or anything else the analysis
can show (NAN102)."""
from __future__ import annotations

import libcst as cst

from nanlint.analysis import domain as d, shapes
from nanlint.analysis.context import confidence_of
from nanlint.analysis.names import EPS_NAME
from nanlint.analysis.syntax import constant_value, literal_value
from nanlint.findings import Applicability, Confidence
from nanlint.rules._fixes import functional_name, may_be_complex_or_integer, only_arguments
from nanlint.rules._hazards import LOG_OPS, in_integer_cast
from nanlint.rules.base import Rule

PROBABILITY_KINDS = frozenset({"underflow", "saturate"})


def log_site(rule: Rule, node: cst.Call, ops=LOG_OPS):
    site = rule.op(node)
    if site is None or site.name not in ops or site.arg("input") is None:
        return None
    return site


def functional(rule: Rule, at: cst.CSTNode) -> str | None:
    """How the code at ``at`` can spell ``torch.nn.functional``: ``F``, or the full path when torch is
    imported; only through module-level imports that nothing shadows at ``at``."""
    return functional_name(rule, at)


def _zero_of_log(rule: Rule, site):
    x = site.arg("input")
    v = rule.value(x)
    ev = v.zero
    if not rule.ctx.reaches(ev) or v.positive:
        return x, v, None
    return x, v, ev


def _is_probability_zero(v, ev) -> bool:
    return ev.kind in PROBABILITY_KINDS or (v.role == d.PROBABILITY and ev.kind == "name")


class LogOfProbability(Rule):
    code = "NAN101"
    triggers = ("log",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = log_site(self, node)
        if site is None:
            return
        x, v, ev = _zero_of_log(self, site)
        if ev is None or not _is_probability_zero(v, ev) or in_integer_cast(self, node):
            return
        self.report(
            node,
            f"`{site.name}` of {self.ctx.describe(x, v, 'a probability')}: {self.ctx.why(ev)}, and log(0) = -inf",
            fix=self._fix(node, x),
            confidence=confidence_of(ev, v),
            hint="use `log_softmax` / `logsigmoid`, or clamp first: `p.clamp_min(eps).log()`",
        )

    def _fix(self, log_call: cst.Call, operand: cst.BaseExpression):
        """``log(softmax(x, dim))`` -> ``log_softmax(x, dim)``; ``log(sigmoid(x))`` -> ``logsigmoid(x)``;
        ``log(1 - sigmoid(x))`` -> ``logsigmoid(-x)``. Only where the whole expression is written inline, the
        ``log`` takes nothing but its input (no ``out=``), and nothing the rewrite cannot carry is passed."""
        site = self.op(log_call)
        if site is None or site.name != "log" or site.namespace not in ("torch", "method"):
            return None
        if not only_arguments(log_call, 0 if site.is_method else 1):
            return None  # `out=` (or anything else) would be lost
        negate = False
        if isinstance(operand, cst.BinaryOperation) and isinstance(operand.operator, cst.Subtract) and constant_value(operand.left) == 1:
            operand, negate = operand.right, True
        if not isinstance(operand, cst.Call):
            return None
        inner = self.op(operand)
        if inner is None or inner.name not in ("softmax", "sigmoid") or inner.namespace not in ("torch", "method"):
            return None
        if negate and inner.name != "sigmoid":
            return None
        if inner.name == "softmax":
            if not isinstance(operand.func, cst.Attribute) or inner.keyword("out") is not None:
                return None
            if not inner.is_method and not self.ctx.refers_to_module(operand.func, "torch", at=log_call):
                return None  # `F` is not torch.nn.functional here (a parameter, a local, an import elsewhere)
            new = operand.with_changes(func=operand.func.with_changes(attr=cst.Name("log_softmax")))
            return self.replace(log_call, new, "Replace `log(softmax(...))` with `log_softmax(...)`")
        x = inner.arg("input")
        if x is None or not only_arguments(operand, 0 if inner.is_method else 1):
            return None
        if may_be_complex_or_integer(self, x):
            return None  # logsigmoid is not implemented for complex, integer or bool tensors
        functional_name = functional(self, log_call)
        if functional_name is None:
            return None
        x_text = self.ctx.fix_text(x).strip()
        if negate:
            simple = isinstance(x, (cst.Name, cst.Attribute, cst.Call, cst.Subscript)) or bool(getattr(x, "lpar", None))
            x_text = f"-{x_text}" if simple else f"-({x_text})"
            message = "Replace `log(1 - sigmoid(x))` with `logsigmoid(-x)`"
        else:
            message = "Replace `log(sigmoid(x))` with `logsigmoid(x)`"
        return self.replace(log_call, f"{functional_name}.logsigmoid({x_text})", message, Applicability.SAFE)


class LogOfMaybeZero(Rule):
    code = "NAN102"
    triggers = ("log",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = log_site(self, node, LOG_OPS | {"log1p", "logdet"})
        if site is None or in_integer_cast(self, node):
            return
        x = site.arg("input")
        v = self.value(x)
        if site.name == "log1p":
            ev = v.at(-1.0)
            if self.ctx.reaches(ev):
                self.report(node, f"`log1p` of {self.ctx.describe(x, v)}: {self.ctx.why(ev)}, and log1p(-1) = -inf",
                            confidence=confidence_of(ev), hint="keep the argument above -1: `x.clamp_min(-1 + eps)`")
            return
        ev = v.zero
        if v.role == d.MASK and v.grad is False and v.hi <= 1 and not v.below:
            return  # log of a 0/1 indicator builds an additive mask or a deterministic log-probability: -inf is meant
        if self.ctx.reaches(ev) and not v.positive and not _is_probability_zero(v, ev) and ev.kind != "uniform":
            self.report(
                node,
                f"`{site.name}` of {self.ctx.describe(x, v, 'a value that may be 0')}: {self.ctx.why(ev)}, and log(0) = -inf (its gradient 1/x is inf)",
                confidence=confidence_of(ev),
                hint="add an eps or clamp first: `torch.log(x + eps)`, `x.clamp_min(eps).log()`",
            )
            return
        below = v.below
        if self.ctx.reaches(below) and not v.nonneg:
            self.report(
                node,
                f"`{site.name}` of {self.ctx.describe(x, v)}: {self.ctx.why(below)}, and the log of a negative number is NaN",
                confidence=confidence_of(below),
                hint="keep the argument positive: clamp it (`x.clamp_min(eps)`), or compute the log in a stable form (`logdet`/`slogdet`, `log1p`, `logsumexp`)",
            )


class LogOfUniformNoise(Rule):
    code = "NAN106"
    triggers = ("log",)
    contextual = True

    def visit_Call(self, node: cst.Call) -> None:
        site = log_site(self, node)
        if site is None:
            return
        x, v, ev = _zero_of_log(self, site)
        if ev is None or ev.kind != "uniform":
            return
        self.report(
            node,
            f"`{site.name}` of {self.ctx.describe(x, v)}: {self.ctx.why(ev)}, so log(u) = -inf (and Gumbel noise -log(-log(u)) = -inf)",
            hint="clamp the noise: `u.clamp(eps, 1 - eps)`, or draw Gumbel noise as `-torch.empty_like(x).exponential_().log()`",
        )


def _exp_argument(rule: Rule, expr: cst.BaseExpression):
    """``(x, site)`` for ``exp(x)`` / ``x.exp()`` (names followed), else None."""
    expr = rule.ctx.ev.resolved(expr)
    if not isinstance(expr, cst.Call):
        return None
    site = rule.op(expr)
    if site is None or site.name != "exp" or site.arg("input") is None:
        return None
    return site.arg("input"), site


def _one_plus(rule: Rule, expr: cst.BaseExpression) -> cst.BaseExpression | None:
    """``x`` for ``1 + x``, ``x + 1`` or ``x.add(1)``."""
    expr = rule.ctx.ev.resolved(expr)
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add):
        if constant_value(expr.left) == 1:
            return expr.right
        if constant_value(expr.right) == 1:
            return expr.left
    if isinstance(expr, cst.Call):
        site = rule.op(expr)
        if site is not None and site.name == "add" and site.num("other") == 1:
            return site.arg("input")
    return None


class ManualSoftplus(Rule):
    code = "NAN103"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        site = log_site(self, node, LOG_OPS | {"log1p"})
        if site is None or site.name not in ("log", "log1p"):
            return
        operand = site.arg("input")
        inner = operand if site.name == "log1p" else _one_plus(self, operand)
        if inner is None:
            return
        found = _exp_argument(self, inner)
        if found is None:
            return
        x, exp_site = found
        # the masked-out elements of a `where` branch are computed (and differentiated) too
        v = self.ctx.masked_out(x)
        if v.hi <= 80 or v.role == d.LOGPROB:
            return  # exp of a value bounded well below 88.7 cannot overflow
        self.report(
            node,
            "hand-written softplus `log(1 + exp(x))`: exp overflows to inf for x > 88.7 (float32), 11.1 (float16), "
            "and its gradient is then inf/inf = NaN",
            fix=self._fix(node, site, x),
            hint="use `F.softplus(x)` (NumPy: `np.logaddexp(0, x)`)",
        )

    def _fix(self, node: cst.Call, site, x: cst.BaseExpression):
        """``log(1 + exp(x))`` / ``log1p(exp(x))`` -> ``F.softplus(x)`` (torch) or ``np.logaddexp(0, x)``
        (NumPy), only when the whole formula is written inline with nothing but the inputs passed."""
        inline = _inline_softplus(self, node, site)
        if inline is None:
            return None
        x, namespace = inline
        if may_be_complex_or_integer(self, x):
            return None  # softplus / logaddexp are not implemented for complex tensors, and change integer dtypes
        x_text = self.ctx.fix_text(x).strip()
        if namespace == "torch":
            functional_name = functional(self, node)
            if functional_name is None:
                return None
            return self.replace(node, f"{functional_name}.softplus({x_text})", "Replace `log(1 + exp(x))` with `softplus(x)`")
        if isinstance(node.func, cst.Attribute) and self.ctx.refers_to_module(node.func, "numpy", at=node):
            module = self.ctx.fix_text(node.func.value).strip()
            return self.replace(node, f"{module}.logaddexp(0, {x_text})", "Replace `log(1 + exp(x))` with `logaddexp(0, x)`")
        return None


def _inline_softplus(rule: Rule, node: cst.Call, site):
    """``(x, "torch" | "numpy")`` when ``node`` is ``log(1 + exp(x))``, ``log(exp(x) + 1)``,
    ``log(exp(x).add(1))`` or ``log1p(exp(x))`` written out in one expression, in one library, each call
    given only its input; None otherwise (a name in between, ``out=``, ``alpha=``, mixed libraries)."""
    family = {"torch": "torch", "method": "torch", "numpy": "numpy"}.get(site.namespace)
    if family is None or not only_arguments(node, 0 if site.is_method else 1):
        return None
    operand = site.arg("input")
    if site.name == "log":
        inner = None
        if isinstance(operand, cst.BinaryOperation) and isinstance(operand.operator, cst.Add):
            if literal_value(operand.left) == 1:
                inner = operand.right
            elif literal_value(operand.right) == 1:
                inner = operand.left
        elif isinstance(operand, cst.Call) and family == "torch":
            add = rule.op(operand)
            if add is None or add.name != "add" or add.namespace not in ("torch", "method"):
                return None
            if not only_arguments(operand, 1 if add.is_method else 2) or literal_value(add.arg("other")) != 1:
                return None
            inner = add.arg("input")
        operand = inner
    if not isinstance(operand, cst.Call):
        return None
    exp = rule.op(operand)
    if exp is None or exp.name != "exp" or exp.arg("input") is None:
        return None
    if {"torch": "torch", "method": "torch", "numpy": "numpy"}.get(exp.namespace) != family:
        return None
    if not only_arguments(operand, 0 if exp.is_method else 1):
        return None
    return exp.arg("input"), family


class LogOnePlus(Rule):
    code = "NAN105"
    triggers = ("log",)

    def visit_Call(self, node: cst.Call) -> None:
        site = log_site(self, node)
        if site is None or site.name != "log":
            return
        operand = site.arg("input")
        x = None
        if isinstance(operand, cst.BinaryOperation) and isinstance(operand.operator, cst.Add):
            x = operand.right if constant_value(operand.left) == 1 else operand.left if constant_value(operand.right) == 1 else None
        if x is None or constant_value(x) is not None or _exp_argument(self, x) is not None:
            return
        v = self.value(x)
        if v.integer or (v.lo >= 1e-3):
            return  # counts and values kept away from 0 lose nothing in 1 + x
        fix = self._fix(node, x) if not site.is_method else None
        self.report(
            node,
            "`log(1 + x)` loses x entirely when |x| is below the float epsilon (1e-7 in float32): it returns exactly 0",
            fix=fix,
            hint="use `log1p(x)`",
        )

    def _fix(self, node: cst.Call, x: cst.BaseExpression):
        """``torch.log(1 + x)`` -> ``torch.log1p(x)`` (and NumPy's, ``math``'s, JAX's), reusing the module name
        written at the site when it is a module-level import there."""
        if not isinstance(node.func, cst.Attribute) or not only_arguments(node, 1):
            return None
        qualname = self.target(node).qualname
        if qualname not in LOG1P_MODULES or not self.ctx.refers_to_module(node.func, qualname, at=node):
            return None
        if qualname.startswith("numpy.") and may_be_complex_or_integer(self, x):
            return None  # np.log1p of a bool array is float16 where np.log(1 + b) is float64
        new_func = node.func.with_changes(attr=cst.Name("log1p"))
        text = f"{self.ctx.fix_text(new_func, at=node).strip()}({self.ctx.fix_text(x).strip()})"
        return self.replace(node, text, "Replace `log(1 + x)` with `log1p(x)`")


#: the ``log`` functions whose module has a ``log1p`` with the same dtype rules
LOG1P_MODULES = frozenset({"torch.log", "torch.Tensor.log", "numpy.log", "math.log", "jax.numpy.log"})


class ZeroTimesLogZero(Rule):
    """NAN107: ``p * log(p)`` / ``p * log(p / q)``, the entropy and KL terms, where an entry of ``p`` is exactly
    0: the limit is 0, the float result 0 * -inf = NaN."""

    code = "NAN107"
    triggers = ("log",)
    contextual = True

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Multiply):
            return
        for weight, log_term in ((node.left, node.right), (node.right, node.left)):
            site = self._log_of(log_term)
            if site is None:
                continue
            argument = site.arg("input")
            if not self._carries(weight, argument):
                continue
            w, a = self.value(weight), self.value(argument)
            if w.positive or a.positive or w.integer or self._smoothed(weight):
                return  # p > 0 here (a where/if on p, a clamp, an eps inside the log or added to p)
            if a.zero is not None and a.zero.kind in PROBABILITY_KINDS:
                return  # log of an underflowing softmax: NAN101 says it, with its fix
            if not (self.ctx.reaches(w.zero) or self._normalized_here(weight)):
                return  # nothing says p has zero entries (unknown stays silent)
            text = self.text(weight)
            self.report(
                node,
                f"`{text}` times the log of `{self.text(argument)}`: an entry where `{text}` is exactly 0 (a one-hot "
                f"or sparse distribution, an empty bin) makes the log -inf, and 0 * -inf = NaN where the limit is 0",
                hint=f"use `torch.xlogy({text}, {self.text(argument)})` (`scipy.special.xlogy` in NumPy), which is 0 where `{text}` is 0",
            )
            return

    def _log_of(self, expr: cst.BaseExpression):
        expr = self.ctx.ev.resolved(expr) if isinstance(expr, cst.Name) else expr
        if not isinstance(expr, cst.Call):
            return None
        site = log_site(self, expr, frozenset({"log"}))
        if site is None or site.namespace == "math":
            return None  # math.log(0) raises instead of returning -inf
        return site

    def _normalized_here(self, weight: cst.BaseExpression) -> bool:
        """``p = p / p.sum(-1, keepdim=True)``: the code turns its input into a distribution, and a distribution
        given as data (a target, a histogram, a one-hot row) has exact zeros."""
        expr = self.ctx.ev.resolved(weight) if isinstance(weight, cst.Name) else weight
        return isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide) \
            and shapes.is_sum_of(self.ctx.ev, expr.right, expr.left)

    def _smoothed(self, weight: cst.BaseExpression) -> bool:
        """``n = n + eps`` / ``p = counts + 1``: an eps or a pseudo-count was added to the weight itself, which
        says it is a nonnegative quantity kept away from 0."""
        expr = self.ctx.ev.resolved(weight) if isinstance(weight, cst.Name) else weight
        if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Divide):
            expr = self.ctx.ev.resolved(expr.left) if isinstance(expr.left, cst.Name) else expr.left
        if not (isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Add)):
            return False
        for term in (expr.left, expr.right):
            number = literal_value(term)
            if number is not None and number > 0 or isinstance(term, (cst.Name, cst.Attribute)) and EPS_NAME.search(self.text(term)):
                return True
        return False

    def _carries(self, weight: cst.BaseExpression, argument: cst.BaseExpression, depth: int = 0) -> bool:
        """Whether ``argument`` is 0 wherever ``weight`` is: ``weight`` itself, ``weight / q``, ``weight * c``."""
        if self.text(argument) == self.text(weight):
            return True
        if depth > 2:
            return False
        if isinstance(argument, cst.Name):
            resolved = self.ctx.ev.resolved(argument)
            return resolved is not argument and resolved is not None and self._carries(weight, resolved, depth + 1)
        if isinstance(argument, cst.BinaryOperation) and isinstance(argument.operator, cst.Divide):
            return self._carries(weight, argument.left, depth + 1)
        if isinstance(argument, cst.BinaryOperation) and isinstance(argument.operator, cst.Multiply):
            return self._carries(weight, argument.left, depth + 1) or self._carries(weight, argument.right, depth + 1)
        return False
