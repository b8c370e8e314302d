"""NAN35x: constants that half precision cannot hold (mask values, eps, ``1 - eps``) and inf masks."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.analysis import domain as d
from nanlint.analysis.names import EPS_NAME
from nanlint.analysis.syntax import arg, literal_value
from nanlint.findings import Applicability, Confidence
from nanlint.rules import _context as C
from nanlint.rules._precision_masks import MaskFill, mask_fill
from nanlint.rules._context import FamilyRule

NORM_LAYERS = frozenset({
    "LayerNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm", "InstanceNorm1d", "InstanceNorm2d",
    "InstanceNorm3d", "RMSNorm", "layer_norm", "batch_norm", "group_norm", "instance_norm", "rms_norm",
    "LocalResponseNorm", "SyncBatchNorm", "FusedLayerNorm", "LlamaRMSNorm",
})
# Parameters whose eps goes to a normalization layer, which computes its statistics in float32 anyway.
NORM_EPS_NAME = re.compile(r"norm|ln_|_ln|bn_|_bn|layernorm|batchnorm", re.I)


def _is_norm_layer(name: str | None) -> bool:
    return bool(name) and (name in NORM_LAYERS or bool(re.search(r"Norm(\dd)?$|_norm$|^norm$", name)))


def _feeds_only_norms(fn: cst.FunctionDef, name: str) -> bool:
    """Every use of the parameter ``name`` in ``fn`` is the ``eps`` of a normalization layer (which adds it to
    the variance in a float32 accumulator whatever the input dtype)."""
    uses: list[bool] = []

    class Uses(cst.CSTVisitor):
        def __init__(self) -> None:
            self.stack: list[cst.Call] = []

        def visit_Call(self, node: cst.Call) -> None:
            for a in node.args:
                if isinstance(a.value, cst.Name) and a.value.value == name:
                    uses.append(a.keyword is not None and a.keyword.value in ("eps", "epsilon") and _is_norm_layer(C.call_name(node)))
                elif a.value is not None:
                    a.value.visit(self)
            node.func.visit(self)
            return False

        def visit_Name(self, node: cst.Name) -> None:
            if node.value == name:
                uses.append(False)

        def visit_Param(self, node: cst.Param) -> bool:
            return False  # the parameter itself is no use

    fn.body.visit(Uses())
    return bool(uses) and all(uses)


def _fmt(value: float) -> str:
    """``-1e9`` rather than ``-1e+09``."""
    return f"{value:.3g}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


class MaskValueOverflowsHalf(FamilyRule):
    """NAN351: a finite mask constant beyond float16's largest value (65504)."""

    code = "NAN351"
    triggers = ("mask", "where")

    def visit_Call(self, node: cst.Call) -> None:
        fill = mask_fill(self, node)
        if fill is None or fill.value is None:
            return
        self._check(node, fill.value, fill)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        # additive masks: scores + (1 - mask) * -1e9, scores - 1e9 * mask
        if not isinstance(node.operator, cst.Multiply):
            return
        for const, other in ((node.left, node.right), (node.right, node.left)):
            if (literal_value(const) is not None or isinstance(const, cst.Name)) and _is_mask_expr(other):
                self._check(node, const, None)
                return

    def _check(self, node: cst.CSTNode, value_expr: cst.BaseExpression, fill: MaskFill | None) -> None:
        prec = C.precision(self.ctx)
        if prec.source == "float32" or not prec.fp16:
            return
        value = self._value(value_expr)
        if value is None or value != value or abs(value) == float("inf") or abs(value) <= C.FP16_MAX:
            return
        if fill is not None and fill.kind == "where" and (value > 0 or fill.receiver is None or literal_value(fill.receiver) is not None):
            return  # a large positive sentinel, or where() of two constants (a float32 tensor)
        if fill is not None and fill.receiver is not None and FLOAT32_CAST.search(self.ctx.code_for(fill.receiver)):
            return  # the tensor was cast to float32 right there
        if C.inside_dtype_branch(self.ctx) or C.function_upcasts(self.ctx):
            return  # chosen per dtype (`if x.dtype == torch.float16: ... else: ... -1e30`), or computed in float32
        where = "`masked_fill` on a float16 tensor raises and" if fill is not None and fill.kind == "masked_fill" else ""
        message = (
            f"mask value {_fmt(value)} is outside float16's range (largest finite 65504): "
            + (f"{where} " if where else "")
            + "in half precision it becomes -inf, and a fully masked row gives NaN"
        )
        fix = None
        if fill is not None and fill.receiver is not None and literal_value(value_expr) is not None and value < 0:
            torch_name = self.ctx.spelling("torch", value_expr)
            receiver = self.ctx.fix_text(fill.receiver)
            if torch_name and isinstance(fill.receiver, (cst.Name, cst.Attribute)):
                fix = self.replace(
                    value_expr, f"{torch_name}.finfo({receiver}.dtype).min",
                    "Use the dtype's own lowest value", Applicability.UNSAFE,
                )
        self.report(
            value_expr if fill is not None else node, message, fix=fix, confidence=prec.confidence(),
            hint="use `torch.finfo(x.dtype).min` (or -1e4 for an additive mask)",
        )

    def _value(self, expr: cst.BaseExpression) -> float | None:
        value = literal_value(expr)
        if value is not None:
            return value
        if isinstance(expr, cst.Name):
            values = C.all_bound_values(self, expr)
            if len(values) > 1:
                # a value chosen per dtype (if x.dtype == torch.float16: m = -65504.0 else: m = -1e9) is fine
                numbers = [literal_value(v) for v in values if v is not None]
                if not numbers or any(n is None or abs(n) <= C.FP16_MAX for n in numbers):
                    return None
            return C.number(self, expr)
        return None


FLOAT32_CAST = re.compile(r"\.float\(\)$|\.double\(\)$|float32|float64")


def _is_mask_expr(expr: cst.BaseExpression) -> bool:
    """``mask``, ``(1 - mask)``, ``~mask``, ``mask.float()``, ``(1.0 - attention_mask[:, None])``."""
    while isinstance(expr, (cst.Call, cst.Subscript, cst.UnaryOperation)):
        if isinstance(expr, cst.Call):
            if not isinstance(expr.func, cst.Attribute) or expr.func.attr.value not in ("float", "half", "to", "type", "unsqueeze", "type_as", "long", "int", "bool", "logical_not"):
                return False
            expr = expr.func.value
        elif isinstance(expr, cst.Subscript):
            expr = expr.value
        else:
            expr = expr.expression
    if isinstance(expr, cst.BinaryOperation) and isinstance(expr.operator, cst.Subtract) and literal_value(expr.left) == 1:
        return _is_mask_expr(expr.right)
    name = C.name_of(expr)
    return bool(name) and "mask" in name.lower()


class PositiveInfMask(FamilyRule):
    """NAN352: masking scores with +inf before a softmax."""

    code = "NAN352"
    triggers = ("inf",)

    def visit_Call(self, node: cst.Call) -> None:
        fill = mask_fill(self, node)
        if fill is None or fill.value is None or C.is_inf_literal(fill.value) != 1:
            return
        text = C.function_text(self.ctx, self.ctx.current_function)
        if not re.search(r"softmax|logsumexp", text, re.I):
            return
        self.report(
            fill.value,
            "mask value is +inf: a softmax over the masked scores computes inf - inf = NaN",
            hint="mask with `-torch.finfo(x.dtype).max` (or `float('-inf')` where no row is fully masked)",
        )


CAUSAL_NAME = re.compile(r"causal|tril|triu|subsequent|future|look_?ahead|autoregressive|diag|self_mask|window|band", re.I)
FILTER_NAME = re.compile(r"remove|top_?k|top_?p|top_?\d|nucleus|filter|sorted|keep|banned|bad_words|eos|forbid|disallow|vocab|token", re.I)
# names of attention logits, for code whose softmax is out of sight (another function)
SCORE_NAME = re.compile(r"^(dots|attn|attn_?(weights|scores|logits)|attention_?(scores|logits)|qk|sim|similarity)$", re.I)


class FullyMaskedRowNan(FamilyRule):
    """NAN353: ``-inf`` masks before a softmax where a whole row can be masked."""

    code = "NAN353"
    triggers = ("inf", "log")

    def visit_Call(self, node: cst.Call) -> None:
        fill = mask_fill(self, node)
        if fill is None or fill.value is None or C.is_inf_literal(fill.value) != -1 or fill.mask is None:
            return
        self._check(fill, fill.value)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        """``scores + mask.log()``: the log of a 0/1 mask is 0 where it keeps and -inf where it masks, the
        same -inf fill spelled as arithmetic."""
        if not isinstance(node.operator, cst.Add):
            return
        for term, other in ((node.right, node.left), (node.left, node.right)):
            site = self.op(term) if isinstance(term, cst.Call) else None
            if site is None or site.name != "log" or site.arg("input") is None:
                continue
            mask = site.arg("input")
            v = self.value(mask)
            if v.role == d.MASK and v.grad is False and v.hi <= 1:
                self._check(MaskFill("log", other, mask, term), term)
                return

    def _check(self, fill: MaskFill, where: cst.CSTNode) -> None:
        text = C.function_text(self.ctx, self.ctx.current_function)
        if re.search(r"nan_to_num|isnan|nan_mask|\.all\(|fully_masked|all_masked|masked_rows|where\(\s*torch\.isinf", text):
            return  # the function handles the fully-masked case itself
        if not (re.search(r"softmax|logsumexp", text, re.I) or SCORE_NAME.search(C.name_of(fill.receiver))):
            return
        if re.search(r"topk|top_k|argmax|argsort|\.sort\(", text):
            return  # a routing / selection mask: something is always kept
        if self._causal_or_filter(fill.mask, 0):
            return
        statement = self.ctx.statement_stack[-1] if self.ctx.statement_stack else None
        if isinstance(statement, cst.SimpleStatementLine) and isinstance(statement.body[0], cst.Assign):
            name = re.escape(C.name_of(statement.body[0].targets[0].target))
            if name and re.search(rf"\b{name}\s*\.\s*(a?max|argmax|topk)\(|\ba?max\(\s*{name}\b", text):
                return  # filled for a max / argmax, where -inf is the right neutral value
        self.report(
            where,
            "-inf mask before a softmax: a row whose every position is masked (an all-padding sequence, an "
            "empty bucket) gives softmax(-inf, ..., -inf) = NaN",
            confidence=Confidence.MEDIUM,
            hint="mask with `torch.finfo(x.dtype).min`, or zero the fully masked rows after the softmax",
        )

    def _causal_or_filter(self, mask: cst.BaseExpression, depth: int) -> bool:
        """A causal / triangular / top-k mask never masks a whole row."""
        code = self.ctx.code_for(mask)
        if CAUSAL_NAME.search(code) or FILTER_NAME.search(code):
            return True
        core = mask
        while isinstance(core, (cst.UnaryOperation, cst.Subscript)) or (
            isinstance(core, cst.Call) and isinstance(core.func, cst.Attribute) and core.func.attr.value in ("to", "bool", "unsqueeze", "logical_not", "view", "expand", "expand_as", "reshape")
        ):
            core = core.expression if isinstance(core, cst.UnaryOperation) else core.value if isinstance(core, cst.Subscript) else core.func.value
        if isinstance(core, cst.Comparison):
            # position comparisons (i < j, arange(t)[:, None] < arange(t)) build causal masks
            return any(isinstance(t.operator, (cst.LessThan, cst.GreaterThan, cst.LessThanEqual, cst.GreaterThanEqual)) for t in core.comparisons)
        if isinstance(core, cst.Name) and depth < 3:
            found = C.bound_value(self, core)
            if found is not None:
                return self._causal_or_filter(found[0], depth + 1)
        return False


# ---- eps ----
class EpsUnderflowsInHalf(FamilyRule):
    """NAN354: an eps below float16's smallest subnormal (~5.96e-8) in code that runs in half precision."""

    code = "NAN354"
    triggers = ("e-", "E-")

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, (cst.Add, cst.Subtract)):
            return
        for side, other in ((node.right, node.left), (node.left, node.right)):
            value = literal_value(side)
            if value is not None and 0 < value < C.FP16_TINY:
                if isinstance(node.operator, cst.Subtract) and literal_value(node.left) == 1:
                    return  # 1 - eps: NAN355's business
                if _python_constant(other) or (isinstance(other, cst.Call) and C.call_name(other) in ("tensor", "as_tensor")):
                    return  # Python float arithmetic (0.9**2 + 1e-8), or a new float32 tensor
                self._flag(side, value, "added as a guard")
                return

    def visit_Call(self, node: cst.Call) -> None:
        eps = C.keyword(node, "eps") or C.keyword(node, "epsilon")
        if eps is None:
            return
        value = literal_value(eps)
        if value is None or not 0 < value < C.FP16_TINY:
            return
        target = self.target(node)
        if _is_norm_layer(target.op):
            return  # normalization layers compute in float32 internally
        callee = self._local_callee(target.op)
        if callee is not None and _feeds_only_norms(callee, "eps" if C.keyword(node, "eps") is not None else "epsilon"):
            return  # a block of this file that hands its eps to its normalization layers only
        self._flag(eps, value, f"passed as `eps` to `{target.op}`")

    def _local_callee(self, name: str | None) -> cst.FunctionDef | None:
        """The function, or the class's ``__init__``, this module defines under ``name``."""
        for statement in self.ctx.module.body:
            if isinstance(statement, cst.FunctionDef) and statement.name.value == name:
                return statement
            if isinstance(statement, cst.ClassDef) and statement.name.value == name:
                for item in statement.body.body:
                    if isinstance(item, cst.FunctionDef) and item.name.value == "__init__":
                        return item
        return None

    def visit_Param(self, node: cst.Param) -> None:
        if node.default is None or not EPS_NAME.search(node.name.value) or NORM_EPS_NAME.search(node.name.value):
            return
        if self._defaults_exempt():
            return
        value = literal_value(node.default)
        function = self.ctx.current_function
        if function is not None and _feeds_only_norms(function, node.name.value):
            return  # `def __init__(self, ..., eps=1e-12): self.norm = nn.LayerNorm(d, eps=eps)`
        if value is not None and 0 < value < C.FP16_TINY:
            self._flag(node.default, value, f"the default of `{node.name.value}`")

    def visit_Assign(self, node: cst.Assign) -> None:
        value = literal_value(node.value)
        if value is None or not 0 < value < C.FP16_TINY:
            return
        if self._defaults_exempt():
            return
        for target in node.targets:
            name = C.name_of(target.target)
            if name and EPS_NAME.search(name) and not NORM_EPS_NAME.search(name):
                self._flag(node.value, value, f"assigned to `{name}`")
                return

    def _defaults_exempt(self) -> bool:
        """An eps default is harmless in optimizer implementations (their state is float32 master state) and
        in code that upcasts to float32 before using it."""
        from nanlint.rules.optimization import defines_optimizer

        if defines_optimizer(self.ctx):
            return True
        return C.mentions(self.ctx, "upcasts", r"\.float\(\)|float32")

    def _flag(self, node: cst.BaseExpression, value: float, how: str) -> None:
        prec = C.precision(self.ctx)
        if prec.source == "float32" or C.function_upcasts(self.ctx):
            return
        zero_in_both = value < C.BF16_TINY
        if not zero_in_both and not (prec.runs_half and prec.fp16):
            return
        if zero_in_both:
            kinds = "float16 and bfloat16"
            confidence = prec.confidence() if prec.runs_half else Confidence.LOW
        else:
            if prec.source == "file" and prec.bf16:
                return  # the file also runs bfloat16, which holds this eps (its range is float32's)
            kinds = "float16"
            confidence = prec.confidence()
        self.report(
            node,
            f"eps {_fmt(value)} ({how}) is below the smallest {kinds} number and rounds to 0 in half precision, "
            "so the guard does nothing",
            confidence=confidence,
            hint="use an eps of at least 1e-4 in half precision, or `torch.finfo(x.dtype).tiny`",
        )


def _python_constant(expr: cst.BaseExpression) -> bool:
    """Arithmetic on literals only: evaluated by Python in float64, never in the tensor's dtype."""
    if literal_value(expr) is not None:
        return True
    if isinstance(expr, cst.BinaryOperation):
        return _python_constant(expr.left) and _python_constant(expr.right)
    if isinstance(expr, cst.UnaryOperation):
        return _python_constant(expr.expression)
    return False


class OneMinusEpsRoundsToOne(FamilyRule):
    """NAN355: ``1 - eps`` that rounds back to exactly 1 in half precision."""

    code = "NAN355"
    triggers = ("1 -", "1-", "1. -", "1.-", "1.0 -", "1.0-")

    BOUNDS = frozenset({"clamp", "clip", "clamp_", "clip_", "clamp_max", "clamp_max_", "min", "minimum", "fmin", "where", "clip_by_value"})

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in self.BOUNDS:
            return
        for a in node.args:
            value = a.value
            if isinstance(value, cst.BinaryOperation) and isinstance(value.operator, cst.Subtract) and literal_value(value.left) == 1:
                self._check(value)

    def _check(self, node: cst.BinaryOperation) -> None:
        value = C.number(self, node.right)
        if value is None or value <= 0:
            return
        prec = C.precision(self.ctx)
        if not prec.runs_half or C.function_upcasts(self.ctx):
            return
        if prec.fp16 and value <= C.FP16_ROUNDS_TO_ONE:
            kind, spacing = "float16", "4.9e-4"
        elif prec.bf16 and value <= C.BF16_ROUNDS_TO_ONE:
            kind, spacing = "bfloat16", "3.9e-3"
        else:
            return
        self.report(
            node,
            f"`1 - {_fmt(value)}` rounds to exactly 1.0 in {kind} (spacing below 1 is {spacing}): a clamp to it "
            "does not keep a probability away from 1, and log(1 - p) is -inf",
            confidence=prec.confidence(),
            hint="clamp in float32, or use a margin representable in the working dtype (1e-3 in float16)",
        )


class AdamEpsInHalfParams(FamilyRule):
    """NAN356: an Adam-family optimizer whose eps (default 1e-8) is 0 in float16, over float16 parameters."""

    code = "NAN356"
    triggers = ("Adam", "Lamb", "LAMB")
    ADAM = frozenset({"Adam", "AdamW", "Adamax", "NAdam", "RAdam", "SparseAdam", "FusedAdam", "AdamP", "Lamb", "LAMB"})

    def visit_Call(self, node: cst.Call) -> None:
        if C.call_name(node) not in self.ADAM:
            return
        target = self.target(node)
        if target.op not in self.ADAM or target.namespace not in ("optim", "other", "local"):
            return
        if not C.mentions(self.ctx, "half_params", r"\.half\(\)|use_fp16|fp16\s*=|convert_to_fp16|dtype\s*=\s*\w+\.float16|\.to\(\s*\w+\.float16"):
            return
        eps = C.keyword(node, "eps")
        if eps is not None:
            value = C.number(self, eps)
            if value is None or value >= C.FP16_TINY:
                return
            shown = _fmt(value)
        else:
            shown = "1e-08 (the default)"
        self.report(
            node,
            f"`{target.op}` eps {shown} is 0 in float16: with float16 parameters sqrt(v) + eps can be 0 and the "
            "update divides by zero",
            confidence=Confidence.LOW if C.has_grad_scaler(self.ctx) else Confidence.MEDIUM,
            hint="pass eps=1e-4 when the parameters are float16, or keep float32 master weights (autocast + GradScaler)",
        )


class MaskAfterSoftmax(FamilyRule):
    """NAN357: a softmax over unmasked scores, masked and renormalized afterwards."""

    code = "NAN357"
    triggers = ("softmax",)

    def visit_BinaryOperation(self, node: cst.BinaryOperation) -> None:
        if not isinstance(node.operator, cst.Multiply):
            return
        for probs, mask in ((node.left, node.right), (node.right, node.left)):
            if not _is_mask_expr(mask):
                continue
            softmax = self._softmax(probs)
            if softmax is None:
                continue
            scores = arg(softmax, 0, "input") if self.target(softmax).namespace != "method" else self.target(softmax).receiver
            if scores is None or "mask" in self.ctx.code_for(scores).lower():
                return  # the scores were masked before the softmax too
            if not self._renormalized():
                return  # no renormalization: masking probabilities to zero is fine
            self.report(
                node,
                f"mask applied after the softmax (line {self.ctx.line_of(softmax)}): large scores at masked "
                "positions make every kept probability underflow to 0, and the renormalization gives 0 / 0 or a "
                "row of zeros whose log is -inf",
                confidence=Confidence.MEDIUM,
                hint="mask the scores before the softmax (`masked_fill(~mask, torch.finfo(x.dtype).min)`)",
            )
            return

    def _renormalized(self) -> bool:
        """``r = p * mask`` followed by ``r / r.sum(...)`` (or ``/ (r.sum(...) + eps)``, ``torch.sum(r)``)."""
        statement = self.ctx.statement_stack[-1] if self.ctx.statement_stack else None
        if not isinstance(statement, cst.SimpleStatementLine) or not isinstance(statement.body[0], cst.Assign):
            return False
        name = C.name_of(statement.body[0].targets[0].target)
        if not name:
            return False
        text = C.function_text(self.ctx, self.ctx.current_function)
        n = re.escape(name)
        return re.search(rf"/\s*\(?\s*({n}\.sum\(|\w+\.sum\(\s*{n}\b)", text) is not None

    def _softmax(self, expr: cst.BaseExpression) -> cst.Call | None:
        if isinstance(expr, cst.Name):
            found = C.bound_value(self, expr)
            if found is None:
                return None
            expr = found[0]
        if isinstance(expr, cst.Call):
            target = self.target(expr)
            if target.op == "softmax" and target.namespace in ("torch", "method"):
                return expr
        return None
