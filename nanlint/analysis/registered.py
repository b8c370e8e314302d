"""Attributes a module registers by name instead of assigning: ``self.register_buffer("count",
torch.zeros(n))`` and torchmetrics' ``self.add_state("tp", default=torch.tensor(0), dist_reduce_fx="sum")``.
Their initial values join the attribute's other assignments, so ``self.tp += ...`` in ``update`` and
``self.tp / (self.tp + self.fp)`` in ``compute`` are read as the running totals they are."""
from __future__ import annotations

import libcst as cst

_REGISTERS = {"register_buffer": ("tensor",), "add_state": ("default",)}


def registered(method: cst.FunctionDef) -> dict[str, list[cst.BaseExpression]]:
    """``{attribute: [initial value, ...]}`` for the ``self.register_buffer`` / ``self.add_state`` calls in a
    method's own statements."""
    found: dict[str, list[cst.BaseExpression]] = {}
    stack: list[cst.CSTNode] = list(getattr(method.body, "body", ()))
    while stack:
        node = stack.pop()
        if isinstance(node, cst.SimpleStatementLine):
            for small in node.body:
                if isinstance(small, cst.Expr) and isinstance(small.value, cst.Call):
                    _record(small.value, found)
        elif isinstance(node, (cst.If, cst.For, cst.While, cst.With, cst.Try)):
            for part in (node.body, getattr(node, "orelse", None)):
                if part is not None and hasattr(part, "body"):
                    inner = part.body
                    stack.extend(inner if isinstance(inner, (list, tuple)) else getattr(inner, "body", ()))
    return found


def _record(call: cst.Call, found: dict) -> None:
    func = call.func
    if not (isinstance(func, cst.Attribute) and isinstance(func.value, cst.Name) and func.value.value == "self"):
        return
    keyword = _REGISTERS.get(func.attr.value)
    if keyword is None or not call.args or not isinstance(call.args[0].value, cst.SimpleString):
        return
    name = call.args[0].value.evaluated_value
    value = next((a.value for a in call.args if a.keyword is not None and a.keyword.value == keyword[0]), None)
    if value is None and len(call.args) > 1 and call.args[1].keyword is None:
        value = call.args[1].value
    if isinstance(name, str) and value is not None and not (isinstance(value, cst.Name) and value.value == "None"):
        found.setdefault(name, []).append(value)
