"""NAN1xx: logarithms of values that can be exactly zero."""
from __future__ import annotations

import libcst as cst

from nanlint.facts import F, arg
from nanlint.findings import Applicability
from nanlint.rules.base import Rule

LOG_OPS = frozenset({"log", "log2", "log10"})
LOG_NAMESPACES = frozenset({"torch", "method", "numpy", "tf", "jax"})


def log_operand(rule: Rule, call: cst.Call) -> cst.BaseExpression | None:
    """The operand of a tensor/array ``log`` call, or None when ``call`` is not one.

    ``x.log()`` counts only without arguments, so ``self.log("loss", v)`` (Lightning) and ``logger.log(...)``
    do not."""
    target = rule.target(call)
    if target.op not in LOG_OPS or target.namespace not in LOG_NAMESPACES:
        return None
    if target.namespace == "method":
        if call.args or target.receiver is None:
            return None
        return target.receiver
    return arg(call, 0, "input") or arg(call, 0, "x")


class LogOfProbability(Rule):
    code = "NAN101"

    def visit_Call(self, node: cst.Call) -> None:
        operand = log_operand(self, node)
        if operand is None:
            return
        fact = self.fact(operand)
        if not fact.has(F.PROB) or fact.is_guarded:
            return
        what = fact.origin.what if fact.origin else "a probability"
        line = f" (line {self.ctx.line_of(fact.origin.node)})" if fact.origin and fact.origin.node is not operand else ""
        fix = self._fix(node, operand)
        self.report(
            node,
            f"`log` of {what}{line}: it is exactly 0 once it underflows, and log(0) = -inf",
            fix=fix,
            hint="use `log_softmax` / `logsigmoid`, or clamp first: `p.clamp_min(eps).log()`",
        )

    def _fix(self, log_call: cst.Call, operand: cst.BaseExpression):
        """``log(softmax(x, dim))`` -> ``log_softmax(x, dim)``; ``log(sigmoid(x))`` -> ``logsigmoid(x)``."""
        if not isinstance(operand, cst.Call):
            return None
        inner = self.target(operand)
        if inner.op not in ("softmax", "sigmoid") or inner.namespace not in ("torch", "method"):
            return None
        target = self.target(log_call)
        if target.op != "log":
            return None
        if inner.namespace == "method":
            if inner.op == "sigmoid":
                return None  # Tensor has no .logsigmoid(); needs an import to rewrite
            new = operand.with_changes(func=operand.func.with_changes(attr=cst.Name("log_softmax")))
            return self.replace(log_call, new, "Replace `log(softmax(...))` with `log_softmax(...)`")
        func = operand.func
        new_name = "log_softmax" if inner.op == "softmax" else "logsigmoid"
        if inner.op == "sigmoid":
            qual = inner.qualname or ""
            if not qual.startswith("torch.nn.functional") or not isinstance(func, cst.Attribute):
                return None  # torch.sigmoid -> F.logsigmoid would need an import
        if isinstance(func, cst.Attribute):
            new = operand.with_changes(func=func.with_changes(attr=cst.Name(new_name)))
        else:
            return None
        return self.replace(log_call, new, f"Replace `log({inner.op}(...))` with `{new_name}(...)`", Applicability.SAFE)
