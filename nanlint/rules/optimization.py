"""NAN5xx: training set-ups that diverge: huge learning rates, float16 training without loss scaling,
recurrent nets trained without gradient clipping."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.analysis.syntax import arg, literal_value
from nanlint.findings import Confidence
from nanlint.rules import _context as C
from nanlint.rules.base import Rule
from nanlint.rules._context import FamilyRule

# optimizer class -> family (the option that holds its threshold)
FAMILIES = {
    **dict.fromkeys(("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SparseAdam", "FusedAdam", "AdamP", "Lamb", "LAMB", "Lion", "Adafactor", "AdaBelief", "AdaBound"), "adam"),
    **dict.fromkeys(("RMSprop", "RMSProp"), "rmsprop"),
    **dict.fromkeys(("SGD", "ASGD", "FusedSGD"), "sgd"),
    # layer-wise trust ratio: each layer moves by about lr * eta (eta ~1e-3) of its weight norm, so SimCLR's
    # 0.3 * batch / 256 = 4.8 is a healthy rate
    **dict.fromkeys(("LARS", "LARC", "Lars", "FusedLARS"), "lars"),
    **dict.fromkeys(("Adagrad",), "adagrad"),
}
LR_NAME = re.compile(r"^(lr|learning_rate|base_lr|lr0|init_lr|initial_lr|max_lr|peak_lr|learningrate|learning_rate_init|step_size_lr)$", re.I)
LR_FLAG = re.compile(r"^-{1,2}(lr|learning[-_]rate|base[-_]lr|lr0|init[-_]lr|initial[-_]lr|max[-_]lr|peak[-_]lr)$", re.I)


class LargeLearningRate(FamilyRule):
    """NAN501: a learning rate far above what the optimizer tolerates."""

    code = "NAN501"
    triggers = ("lr", "learning_rate", "learning-rate", "optim", "SGD", "Adam", "RMSprop", "Adagrad")
    default_options = {"adam": 0.01, "rmsprop": 0.01, "sgd": 1.0, "lars": 30.0, "adagrad": 1.0, "other": 1.0}

    # ---- sites ----
    def visit_Call(self, node: cst.Call) -> None:
        name = C.call_name(node)
        if name not in FAMILIES and name not in ("add_argument", "dict"):
            return
        target = self.target(node)
        family = FAMILIES.get(target.op) if target.namespace in ("optim", "other", "local") else None
        if family is not None:
            lr = arg(node, 1, "lr") or C.keyword(node, "learning_rate")
            if lr is not None:
                self._check(lr, family, f"`{target.op}`", Confidence.HIGH)
            return
        if target.namespace == "method" and target.op == "add_argument" and node.args:
            flags = [literal_string(a.value) for a in node.args if a.keyword is None]
            if any(f and LR_FLAG.match(f) for f in flags):
                default = C.keyword(node, "default")
                if default is not None:
                    self._check(default, self._file_family(), "the argparse default", Confidence.MEDIUM)
            return
        if target.op == "dict" and target.namespace in ("builtin", "local"):
            for a in node.args:
                if a.keyword is not None and LR_NAME.match(a.keyword.value):
                    self._check(a.value, self._file_family(), f"`{a.keyword.value}`", Confidence.MEDIUM)

    def visit_Param(self, node: cst.Param) -> None:
        if defines_optimizer(self.ctx):
            return  # an optimizer's own default is its author's choice, not a training set-up
        if node.default is not None and LR_NAME.match(node.name.value):
            self._check(node.default, self._file_family(), f"the default of `{node.name.value}`", Confidence.MEDIUM)

    def visit_DictElement(self, node: cst.DictElement) -> None:
        key = literal_string(node.key)
        if key and LR_NAME.match(key):
            self._check(node.value, self._file_family(), f"`{key}`", Confidence.MEDIUM)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        name = C.name_of(node.target)
        if node.value is not None and LR_NAME.match(name):
            value = node.value
            if isinstance(value, cst.Call) and C.call_name(value) == "field":
                value = C.keyword(value, "default")
            if value is not None:
                self._check(value, self._file_family(), f"`{name}`", Confidence.MEDIUM)

    def visit_Assign(self, node: cst.Assign) -> None:
        in_function = self.ctx.current_function is not None
        for target in node.targets:
            if in_function and not isinstance(target.target, cst.Attribute):
                continue  # a local variable: not a default anyone sees (self.lr = 1.0 and cfg.lr = 1.0 are)
            name = C.name_of(target.target)
            if LR_NAME.match(name):
                self._check(node.value, self._file_family(), f"`{name}`", Confidence.MEDIUM)
                return

    # ---- judgement ----
    def _file_family(self) -> str:
        """The most tolerant family among the optimizers the file names (a flag often picks one)."""
        cache = C._cache(self.ctx)
        family = cache.get("lr_family")
        if family is None:
            named = {FAMILIES[m] for m in re.findall(r"\b(" + "|".join(FAMILIES) + r")\b", self.ctx.source)}
            family = max(named, key=lambda f: float(self.options.get(f, 1.0))) if named else "other"
            cache["lr_family"] = family
        return family

    def _check(self, expr: cst.BaseExpression, family: str, where: str, confidence: Confidence) -> None:
        value = literal_value(expr)
        if value is None:
            return
        threshold = float(self.options.get(family, self.options["other"]))
        if value <= threshold:
            return
        if C.has_grad_clipping(self.ctx):
            confidence = Confidence.LOW
        kind = {"other": "any optimizer"}.get(family, f"{family}-family optimizers")
        self.report(
            expr,
            f"learning rate {value:g} ({where}) is above {threshold:g}, a rate at which {kind} typically diverge: "
            "the first updates overshoot, the loss grows to inf and the weights become NaN",
            confidence=confidence,
            hint=f"use a smaller rate (set the limit with [tool.nanlint.rules.{self.code}] {family} = ...)",
        )


def defines_optimizer(ctx) -> bool:
    """The file implements an optimizer (``class Lamb(Optimizer)``, a functional ``adamw`` step)."""
    return C.mentions(ctx, "defines_optimizer", r"class\s+\w+\s*\(\s*(torch\.optim\.)?(optim\.)?Optimizer\s*\)|@torch\.no_grad\(\)\s*\n\s*def step\(")


def literal_string(expr: cst.BaseExpression | None) -> str | None:
    if isinstance(expr, cst.SimpleString):
        value = expr.evaluated_value
        return value if isinstance(value, str) else None
    return None


class HalfPrecisionWithoutGradScaler(FamilyRule):
    """NAN502: float16 training (autocast to float16, ``.half()``) with no loss scaling."""

    code = "NAN502"
    triggers = ("autocast", ".half()")

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in ("autocast", "half") or C._cache(self.ctx).get("nan502_done"):
            return
        how = self._half_training(node)
        if how is None:
            return
        if not C.mentions(self.ctx, "backward", r"\.backward\(|autograd\.grad\(|manual_backward\(") or C.has_grad_scaler(self.ctx):
            return
        C._cache(self.ctx)["nan502_done"] = True
        self.report(
            node,
            f"float16 training ({how}) with no GradScaler: gradients below 6e-8 flush to 0 and large ones overflow "
            "to inf, and without the scaler's inf check the optimizer writes inf/NaN into the weights",
            hint="wrap the step with `torch.amp.GradScaler` (scaler.scale(loss).backward(); scaler.step(opt); "
            "scaler.update()), or autocast to bfloat16",
        )

    def _half_training(self, node: cst.Call) -> str | None:
        target = self.target(node)
        if target.op == "autocast" and target.namespace in ("amp", "torch", "other"):
            dtype = C.keyword(node, "dtype")
            if dtype is not None:
                return "autocast to float16" if "float16" in self.ctx.code_for(dtype) and "bfloat16" not in self.ctx.code_for(dtype) else None
            device = arg(node, 0, "device_type")
            device_text = literal_string(device) if device is not None else None
            qual = target.qualname or ""
            if device_text == "cuda" or (device is None and qual.startswith("torch.cuda.amp")):
                return "autocast on CUDA defaults to float16"
            return None
        if target.namespace == "method" and target.op == "half" and not node.args:
            statement = self.ctx.statement_stack[-1] if self.ctx.statement_stack else node
            text = self.ctx.code_for(statement) if isinstance(statement, cst.SimpleStatementLine) else self.ctx.code_for(node)
            if re.search(r"model|net|module|encoder|decoder|generator|discriminator", text, re.I):
                return f"`{self.ctx.code_for(node).strip()}`"
        return None


RNN_MODULES = frozenset({"LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell"})


class RnnWithoutGradClipping(FamilyRule):
    """NAN503: a recurrent network trained in this file with no gradient clipping."""

    code = "NAN503"
    triggers = ("LSTM", "GRU", "RNN")

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in RNN_MODULES:
            return
        target = self.target(node)
        if target.op not in RNN_MODULES or target.namespace != "nn" or target.qualname is None:
            return
        if not C.mentions(self.ctx, "train_loop", r"\.backward\(") or not C.mentions(self.ctx, "opt_step", r"\.step\("):
            return
        if C.has_grad_clipping(self.ctx):
            return
        self.report(
            node,
            f"`{target.op}` trained in this file without gradient clipping: backpropagation through time can "
            "multiply gradients by the recurrent weights at every step, and one exploding batch makes them inf",
            confidence=Confidence.LOW,
            hint="clip before the step: `torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)`",
        )
