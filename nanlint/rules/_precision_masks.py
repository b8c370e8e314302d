"""What a mask fill is made of: ``x.masked_fill(mask, value)``, ``torch.masked_fill(x, mask, value)``,
``torch.where(mask, x, value)`` (either branch), with the tensor, the mask and the fill value."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis.syntax import arg, literal_value

if TYPE_CHECKING:
    from nanlint.rules.base import Rule

FILL_OPS = frozenset({"masked_fill", "masked_fill_"})


@dataclass(frozen=True)
class MaskFill:
    kind: str  # masked_fill or where
    receiver: cst.BaseExpression | None  # the tensor being filled
    mask: cst.BaseExpression | None
    value: cst.BaseExpression | None


def _is_constant(expr: cst.BaseExpression | None) -> bool:
    if expr is None:
        return False
    if literal_value(expr) is not None:
        return True
    while isinstance(expr, cst.UnaryOperation):
        expr = expr.expression
    return literal_value(expr) is not None or isinstance(expr, cst.Name)


def mask_fill(rule: "Rule", call: cst.Call) -> MaskFill | None:
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    if name not in FILL_OPS and name != "where":
        return None
    target = rule.target(call)
    if target.op in FILL_OPS:
        if target.namespace == "method":
            return MaskFill("masked_fill", target.receiver, arg(call, 0, "mask"), arg(call, 1, "value"))
        if target.namespace == "torch":
            return MaskFill("masked_fill", arg(call, 0, "input"), arg(call, 1, "mask"), arg(call, 2, "value"))
        return None
    if target.op == "where" and target.namespace == "torch":
        cond, a, b = arg(call, 0, "condition"), arg(call, 1, "input"), arg(call, 2, "other")
        # the branch that is a constant is the fill; the other is the tensor
        if literal_value(b) is not None or (_is_constant(b) and not _is_constant(a)):
            return MaskFill("where", a, cond, b)
        if literal_value(a) is not None:
            return MaskFill("where", b, cond, a)
    return None
