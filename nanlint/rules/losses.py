"""NAN4xx: losses fed the wrong kind of value (probabilities where logits or log-probabilities belong) and
stacked saturating activations."""
from __future__ import annotations

from typing import ClassVar

import libcst as cst

from nanlint.analysis.evaluate import NNModule

from nanlint.analysis.syntax import arg
from nanlint.findings import Applicability, Confidence
from nanlint.rules import _context as C
from nanlint.rules._fixes import may_be_complex_or_integer, only_arguments
from nanlint.rules._losses_models import model_ends_in
from nanlint.rules.base import Rule
from nanlint.rules._context import FamilyRule

SIGMOID_OPS = frozenset({"sigmoid"})
SOFTMAX_OPS = frozenset({"softmax"})
SATURATING = frozenset({"sigmoid", "tanh", "hardtanh", "hardsigmoid", "softsign"})
SATURATING_NAMES = frozenset({"sigmoid", "Sigmoid", "tanh", "Tanh", "expit", "hardtanh", "Hardtanh", "hardsigmoid", "Hardsigmoid", "softsign", "Softsign"})
# layers that keep a saturated value saturated when they sit between two activations
TRANSPARENT_LAYERS = frozenset({"Dropout", "Dropout1d", "Dropout2d", "AlphaDropout", "Identity", "Flatten", "Unflatten"})


def loss_input(rule: Rule, call: cst.Call, functional: str, module: str) -> cst.BaseExpression | None:
    """The ``input`` argument when ``call`` is ``F.<functional>(input, target)`` or a held ``nn.<module>``."""
    target = rule.target(call)
    if target.op == functional and target.namespace == "torch":
        return arg(call, 0, "input")
    if target.op == module and target.namespace == "nn" and target.qualname is None:
        return arg(call, 0, "input")
    # nn.BCELoss()(p, y): constructed and called at once
    func = call.func
    if isinstance(func, cst.Call):
        inner = rule.target(func)
        if inner.op == module and inner.namespace == "nn":
            return arg(call, 0, "input")
    # self.loss_fn(p, y) with self.loss_fn = nn.BCELoss(): a held module
    if isinstance(func, (cst.Name, cst.Attribute)):
        held = rule.value(func).module
        if isinstance(held, NNModule) and held.name == module:
            return arg(call, 0, "input")
    return None


def produced_by(rule: Rule, expr: cst.BaseExpression, ops: frozenset[str]) -> tuple[str, cst.CSTNode] | None:
    """When ``expr``'s value is the output of one of ``ops`` (through names, casts, views, returns of the
    file's own functions and modules): that op and the node that made it."""
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Call):
        built = rule.target(expr.func)  # nn.Sigmoid()(z): a module built and applied at once
        if built.namespace == "nn" and _canonical(built.op) in ops:
            return built.op, expr
    value = rule.value(expr)
    if value.op in ops and value.node is not None:
        return value.op, value.node
    return None


def _canonical(op: str) -> str:
    from nanlint.analysis.optable import MODULE_OPS, canonical

    return MODULE_OPS.get(op, canonical(op))


class LossOnWrongInput(FamilyRule):
    """A loss given the output of ``wrong_ops``: reported at a functional or held-module call whose input
    is such an output, and (medium confidence) where the criterion is built in a file whose model ends in
    one of them. Subclasses give the names, the messages and the fix."""

    module: ClassVar[str]
    functional: ClassVar[str]
    wrong_ops: ClassVar[frozenset[str]]
    construction_hint: ClassVar[str]
    call_hint: ClassVar[str]

    def construction_message(self, line: int) -> str:
        raise NotImplementedError

    def call_message(self, op: str, line: int) -> str:
        raise NotImplementedError

    def fix_for(self, loss: cst.Call, operand: cst.BaseExpression):
        return None

    def visit_Call(self, node: cst.Call) -> None:
        target = self.target(node)
        if target.op == self.module and target.namespace == "nn" and target.qualname is not None:
            ends = model_ends_in(self.ctx, self.wrong_ops)
            if ends is not None:
                self.report(node, self.construction_message(self.ctx.line_of(ends)), confidence=Confidence.MEDIUM, hint=self.construction_hint)
            return
        operand = loss_input(self, node, self.functional, self.module)
        if operand is None:
            return
        found = produced_by(self, operand, self.wrong_ops)
        if found is None:
            return
        op, origin = found
        self.report(node, self.call_message(op, self.ctx.line_of(origin)), fix=self.fix_for(node, operand), hint=self.call_hint)


class BceOnSigmoid(LossOnWrongInput):
    """NAN401: binary cross-entropy on a sigmoid output instead of BCEWithLogitsLoss."""

    code = "NAN401"
    triggers = ("BCELoss", "binary_cross_entropy")
    module, functional, wrong_ops = "BCELoss", "binary_cross_entropy", SIGMOID_OPS
    construction_hint = "remove the final sigmoid and use `nn.BCEWithLogitsLoss()`"
    call_hint = "drop the sigmoid and use `F.binary_cross_entropy_with_logits` / `nn.BCEWithLogitsLoss`"

    def construction_message(self, line: int) -> str:
        return (
            f"`BCELoss` in a file whose model ends in a sigmoid (line {line}): the loss takes "
            "saturated probabilities, log(0) is clamped to -100, and autocast refuses it"
        )

    def call_message(self, op: str, line: int) -> str:
        return (
            f"binary cross-entropy on a `{op}` output (line {line}): the sigmoid saturates to exactly 0 or 1, "
            "log(0) is clamped to -100 and the gradient vanishes; under autocast this call raises"
        )

    def fix_for(self, loss: cst.Call, operand: cst.BaseExpression):
        """``F.binary_cross_entropy(torch.sigmoid(z), y)`` -> ``F.binary_cross_entropy_with_logits(z, y)``."""
        target = self.target(loss)
        if target.namespace != "torch" or not isinstance(loss.func, cst.Attribute) or not isinstance(operand, cst.Call):
            return None
        if not self.ctx.refers_to_module(loss.func, "torch", at=loss):
            return None  # the loss's module name is not torch's here (a parameter, a local, an import elsewhere)
        inner = self.target(operand)
        if inner.op != "sigmoid" or inner.namespace not in ("torch", "method"):
            return None
        logits = inner.receiver if inner.namespace == "method" else arg(operand, 0, "input")
        if logits is None or not only_arguments(operand, 0 if inner.namespace == "method" else 1):
            return None  # `out=` on the sigmoid, or `input=` spelled as a keyword
        if inner.namespace != "method" and operand.args[0].keyword is not None:
            return None
        if any(a.keyword is not None and a.keyword.value not in ("input", "target", "weight", "reduction") for a in loss.args):
            return None
        if any(a.star for a in loss.args) or may_be_complex_or_integer(self, logits):
            return None
        new_args = [a.with_changes(value=logits) if a.value is operand else a for a in loss.args]
        new = loss.with_changes(func=loss.func.with_changes(attr=cst.Name("binary_cross_entropy_with_logits")), args=new_args)
        return self.replace(loss, new, "Use `binary_cross_entropy_with_logits` on the logits", Applicability.SAFE)


class CrossEntropyOnSoftmax(LossOnWrongInput):
    """NAN402: cross_entropy on a softmax output (a second softmax inside the loss)."""

    code = "NAN402"
    triggers = ("CrossEntropyLoss", "cross_entropy")
    module, functional, wrong_ops = "CrossEntropyLoss", "cross_entropy", SOFTMAX_OPS
    construction_hint = "remove the final softmax: CrossEntropyLoss expects logits"
    call_hint = "pass the logits: cross_entropy expects unnormalized scores"

    def construction_message(self, line: int) -> str:
        return (
            f"`CrossEntropyLoss` in a file whose model ends in a softmax (line {line}): "
            "the loss applies log_softmax again, so it trains on a squashed, nearly constant signal"
        )

    def call_message(self, op: str, line: int) -> str:
        return (
            f"`cross_entropy` on a `{op}` output (line {line}): it applies log_softmax itself, "
            "so this is a double softmax whose gradients nearly vanish"
        )

    def fix_for(self, loss: cst.Call, operand: cst.BaseExpression):
        if not isinstance(operand, cst.Call):
            return None
        inner = self.target(operand)
        if inner.op != "softmax" or inner.namespace not in ("torch", "method"):
            return None
        logits = inner.receiver if inner.namespace == "method" else arg(operand, 0, "input")
        if logits is None:
            return None
        return self.replace(operand, logits, "Pass the logits, not their softmax", Applicability.UNSAFE)


class NllOnProbabilities(LossOnWrongInput):
    """NAN403: nll_loss on probabilities instead of log-probabilities."""

    code = "NAN403"
    triggers = ("NLLLoss", "nll_loss")
    module, functional, wrong_ops = "NLLLoss", "nll_loss", SOFTMAX_OPS | SIGMOID_OPS
    construction_hint = "end the model with `nn.LogSoftmax(dim=...)`, or use CrossEntropyLoss on logits"
    call_hint = "use `log_softmax` instead of `softmax`"

    def construction_message(self, line: int) -> str:
        return (
            f"`NLLLoss` in a file whose model ends in a softmax (line {line}): NLLLoss "
            "expects log-probabilities, and on probabilities it is minimized by pushing them to 0"
        )

    def call_message(self, op: str, line: int) -> str:
        return (
            f"`nll_loss` on a `{op}` output (line {line}): it expects log-probabilities; on "
            "probabilities the loss is -p, unbounded below in its log, and training drives p to 0"
        )

    def fix_for(self, loss: cst.Call, operand: cst.BaseExpression):
        if not isinstance(operand, cst.Call) or not isinstance(operand.func, cst.Attribute):
            return None
        inner = self.target(operand)
        if inner.op != "softmax" or inner.namespace not in ("torch", "method"):
            return None
        if inner.namespace != "method" and not self.ctx.refers_to_module(operand.func, "torch", at=operand):
            return None
        new = operand.with_changes(func=operand.func.with_changes(attr=cst.Name("log_softmax")))
        return self.replace(operand, new, "Use `log_softmax`", Applicability.UNSAFE)


class StackedSaturatingActivations(FamilyRule):
    """NAN404: sigmoid/tanh applied to the output of sigmoid/tanh."""

    code = "NAN404"
    triggers = ("sigmoid", "Sigmoid", "tanh", "Tanh", "expit", "softsign", "Softsign")

    def visit_Call(self, node: cst.Call) -> None:
        target = self.target(node)
        if target.op == "Sequential" and target.namespace == "nn" and target.qualname is not None:
            self._sequential(node)
            return
        # numpy and scipy compute no gradient: their tanh(tanh(c)) is a formula for a constant, not a layer
        if target.op not in SATURATING_NAMES or target.namespace not in ("torch", "method", "nn", "tf", "jax"):
            return
        if target.namespace == "nn" and target.qualname is not None:
            return  # constructing the module, not applying it
        if target.namespace == "method":
            if node.args or target.receiver is None:
                return
            subject = target.receiver
        else:
            subject = arg(node, 0, "input") or arg(node, 0, "x")
        if subject is None:
            return
        direct = subject
        for _ in range(3):
            if not isinstance(direct, cst.Name):
                break
            bound = C.bound_value(self, direct)
            if bound is None:
                break
            direct = bound[0]
        if not isinstance(direct, cst.Call):
            return  # tanh(x / c) * c (soft-capping) is a scaled value, not a squashed one
        found = produced_by(self, subject, SATURATING)
        if found is None or self.ctx.value(subject).grad is False:
            return  # no gradient flows through it (a constant, no_grad, detached): nothing vanishes
        op, origin = found
        self.report(
            node,
            f"`{target.op}` of a `{op}` output (line {self.ctx.line_of(origin)}): the inner activation already "
            "squashed the value, the outer one saturates in a narrow band and its gradient vanishes",
            confidence=Confidence.MEDIUM,
            hint="apply one saturating activation, with a linear layer between stacked ones",
        )

    def _sequential(self, node: cst.Call) -> None:
        previous: str | None = None
        for a in node.args:
            if a.keyword is not None or a.star or not isinstance(a.value, cst.Call):
                previous = None
                continue
            op = self.ctx.resolver.target(a.value).op
            if op in TRANSPARENT_LAYERS:
                continue
            if op in SATURATING_NAMES and previous is not None:
                self.report(
                    a.value,
                    f"`{op}` right after `{previous}` in a Sequential: stacked saturating activations squash the "
                    "signal into a narrow band where the gradient vanishes",
                    confidence=Confidence.HIGH,
                    hint="remove one of them, or put a linear layer between them",
                )
            previous = op if op in SATURATING_NAMES else None
