"""File- and function-level context shared by the overflow, precision, loss, optimization and data rules.

Facts say what one expression is; some hazards depend on the file around it instead: does this code run
in half precision, is there a ``GradScaler``, is the gradient clipped, does a ``Sequential`` end in a
``Sigmoid``. These questions are answered from the source text (cheap, once per file) and cached on the
:class:`~nanlint.engine.FileContext`, so every rule that asks pays once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis.syntax import literal_value
from nanlint.findings import Confidence

if TYPE_CHECKING:
    from nanlint.engine import FileContext
    from nanlint.rules.base import Rule

# IEEE 754 binary16: largest finite 65504, smallest subnormal 2**-24 (~5.96e-8), spacing just below 1 2**-11.
FP16_MAX = 65504.0
FP16_TINY = 2.0 ** -24
# bfloat16: 8 exponent bits like float32 (max ~3.39e38), smallest subnormal 2**-133 (~9.2e-41), 8 bits of
# precision (spacing just below 1 is 2**-8).
BF16_TINY = 2.0 ** -133
# 1 - x rounds back to exactly 1 when x is at most half the spacing below 1 (round to nearest, ties to even).
FP16_ROUNDS_TO_ONE = 2.0 ** -12
BF16_ROUNDS_TO_ONE = 2.0 ** -9

_FP16_TEXT = re.compile(
    r"(?<![bB])float16|\.half\(\)|fp16|GradScaler|torch\.cuda\.amp|autocast|mixed.precision|amp_dtype|"
    r"\bapex\b|loss_scale"
)
_BF16_TEXT = re.compile(r"bfloat16|\bbf16")


@dataclass(frozen=True)
class Precision:
    """Where half precision comes from: ``config`` (target-precision says so), ``file`` (the text shows it),
    or ``guess`` (no evidence either way). ``fp16``/``bf16`` say which half types are plausible."""

    source: str  # config, file, guess, float32
    fp16: bool
    bf16: bool

    def confidence(self) -> Confidence:
        return {"config": Confidence.HIGH, "file": Confidence.MEDIUM}.get(self.source, Confidence.LOW)

    @property
    def runs_half(self) -> bool:
        """Evidence (config or file) that the code runs in a 16-bit float type."""
        return self.source in ("config", "file") and (self.fp16 or self.bf16)


def _cache(ctx: "FileContext") -> dict:
    cache = getattr(ctx, "_rules_b_cache", None)
    if cache is None:
        cache = {}
        ctx._rules_b_cache = cache  # type: ignore[attr-defined]
    return cache


def precision(ctx: "FileContext") -> Precision:
    cache = _cache(ctx)
    found = cache.get("precision")
    if found is None:
        target = ctx.options.target_precision
        if target == "float32":
            found = Precision("float32", False, False)
        elif target in ("float16", "bfloat16"):
            found = Precision("config", target == "float16", target == "bfloat16")
        else:
            fp16 = bool(_FP16_TEXT.search(ctx.source))
            bf16 = bool(_BF16_TEXT.search(ctx.source))
            found = Precision("file", fp16, bf16) if (fp16 or bf16) else Precision("guess", True, True)
        cache["precision"] = found
    return found


def mentions(ctx: "FileContext", key: str, pattern: str) -> bool:
    """Whether the file's text matches ``pattern`` (cached under ``key``)."""
    cache = _cache(ctx)
    if key not in cache:
        cache[key] = re.search(pattern, ctx.source) is not None
    return cache[key]


def has_grad_clipping(ctx: "FileContext") -> bool:
    return mentions(ctx, "clip", r"clip_grad_norm|clip_grad_value|clip_grad|clip_gradient|gradient_clip|max_grad_norm|clipnorm|clipvalue|grad_clip")


def has_grad_scaler(ctx: "FileContext") -> bool:
    return mentions(
        ctx, "scaler",
        r"GradScaler|\bscaler\b|loss_scale|LossScaler|amp\.initialize|apex|deepspeed|Accelerator|\.scale\(|fabric|lightning|precision\s*=",
    )


def function_text(ctx: "FileContext", function: cst.FunctionDef | None) -> str:
    """The source of ``function`` (or of the whole file outside functions), cached."""
    if function is None:
        return ctx.source
    cache = _cache(ctx).setdefault("function_text", {})
    key = id(function)
    if key not in cache:
        cache[key] = ctx.module.code_for_node(function)
    return cache[key]


# ---- values ----
def param_default(function: cst.FunctionDef | None, name: str) -> cst.BaseExpression | None:
    """The default of parameter ``name`` of ``function`` (``min_val: float = -1e7``)."""
    if function is None:
        return None
    params = function.params
    for param in (*params.posonly_params, *params.params, *params.kwonly_params):
        if param.name.value == name:
            return param.default
    return None


def bound_value(rule: "Rule", name: cst.Name, at: int | None = None) -> tuple[cst.BaseExpression, None] | None:
    """The single expression ``name`` was bound to on the way here, if there is one."""
    resolved = rule.ctx.ev.resolved(name, depth=1)
    if resolved is None or resolved is name:
        return None
    return resolved, None


def resolve(rule: "Rule", expr: cst.BaseExpression, depth: int = 0) -> cst.BaseExpression:
    """Follow a name to the expression it was last bound to (or its parameter default), a few steps deep."""
    while depth < 4 and isinstance(expr, cst.Name):
        depth += 1
        found = bound_value(rule, expr)
        if found is not None:
            expr = found[0]
            continue
        default = param_default(rule.ctx.current_function, expr.value)
        if default is None:
            return expr
        expr = default
    return expr


def all_bound_values(rule: "Rule", name: cst.Name) -> list[cst.BaseExpression | None]:
    """Every value ``name`` is bound to in the current function (all branches), with its parameter default."""
    flow = rule.ctx.frame.flow
    out: list[cst.BaseExpression | None] = []
    for definition in flow.defs.get(name.value, ()):
        if definition.kind == "param":
            out.append(definition.value)
        elif definition.kind == "assign" and not definition.path:
            out.append(definition.value)
        else:
            out.append(None)
    return out


def number(rule: "Rule", expr: cst.BaseExpression | None) -> float | None:
    """A numeric literal, directly or through a name bound to one (``min_val = -1e9``)."""
    if expr is None:
        return None
    value = literal_value(expr)
    if value is not None:
        return value
    value = literal_value(resolve(rule, expr))
    return value if value is not None else rule.value(expr).const  # a module constant, a computed one


def is_inf_literal(expr: cst.BaseExpression) -> int:
    """+1 for ``float('inf')``/``math.inf``/``torch.inf``, -1 for their negations (``-float('-inf')`` is +1),
    0 otherwise."""
    sign = 1
    while isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        if isinstance(expr.operator, cst.Minus):
            sign = -sign
        expr = expr.expression
    value = literal_value(expr)
    if value is None or value not in (float("inf"), float("-inf")):
        return 0
    return sign if value > 0 else -sign


def name_of(expr: cst.BaseExpression | None) -> str:
    """The last identifier of a name chain or call (``self.log_var`` -> ``log_var``, ``f(x)`` -> ``f``)."""
    while isinstance(expr, cst.Call):
        expr = expr.func
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Name):
        return expr.value
    return ""


def call_name(call: cst.Call) -> str:
    func = call.func
    if isinstance(func, cst.Attribute):
        return func.attr.value
    if isinstance(func, cst.Name):
        return func.value
    return ""


def keyword(call: cst.Call, name: str) -> cst.BaseExpression | None:
    for a in call.args:
        if a.keyword is not None and a.keyword.value == name:
            return a.value
    return None


from nanlint.rules.base import Rule as _Rule  # noqa: E402  (base imports nothing from here)


class FamilyRule(_Rule):
    """A rule whose call targets are memoized per node for the whole file: a dozen rules ask what the same
    call calls, and resolving it through imports and held modules is the costly part."""

    def target(self, call: cst.Call):
        targets = _cache(self.ctx).setdefault("targets", {})
        key = id(call)
        found = targets.get(key)
        if found is None:
            found = targets[key] = super().target(call)
        return found


_DTYPE_TEST = re.compile(r"float16|half|fp16|\.dtype\b|finfo|is_autocast|autocast")


_UPCAST = re.compile(r"\b(\w+)\s*=\s*\1\.(float|double)\(\)|float32|float64|upcast")


def function_upcasts(ctx: "FileContext") -> bool:
    """The current function visibly computes in float32 (``x.float()``, ``dtype=torch.float32``): its
    constants never meet a half-precision tensor."""
    function = ctx.current_function
    if function is None:
        return False
    return _UPCAST.search(function_text(ctx, function)) is not None


def inside_dtype_branch(ctx: "FileContext") -> bool:
    """Whether the current statement sits in an ``if``/``else`` whose test looks at the dtype (the constant
    was chosen per dtype)."""
    for statement in reversed(ctx.statement_stack):
        if isinstance(statement, cst.If) and _DTYPE_TEST.search(ctx.module.code_for_node(statement.test)):
            return True
        if isinstance(statement, (cst.FunctionDef, cst.ClassDef)):
            return False
    return False
