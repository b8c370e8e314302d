"""Which activation a file's model ends in: the last layer of an ``nn.Sequential``, or what ``forward``
returns. Loss rules use it to judge a criterion constructed far from the model (``nn.BCELoss()`` in the
training function, ``nn.Sigmoid()`` as the model's last layer)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from nanlint.rules._context import _cache, call_name

if TYPE_CHECKING:
    from nanlint.engine import FileContext

# attribute names that hold an activation module (self.sigmoid = nn.Sigmoid())
_ACTIVATION_ATTRS = {"sigmoid": "Sigmoid", "softmax": "Softmax", "sig": "Sigmoid", "act_out": None}


class _Endings(cst.CSTVisitor):
    def __init__(self, ctx: "FileContext"):
        super().__init__()
        self.ctx = ctx
        self.found: list[tuple[str, cst.CSTNode]] = []

    def visit_Call(self, node: cst.Call) -> None:
        if call_name(node) != "Sequential":
            return
        layers = [a.value for a in node.args if a.keyword is None and not a.star]
        if layers and isinstance(layers[-1], cst.Call):
            self.found.append((self.ctx.resolver.target(layers[-1]).op, layers[-1]))

    def visit_FunctionDef(self, node: cst.FunctionDef) -> None:
        if node.name.value != "forward":
            return
        params = node.params.params
        if not params or params[0].name.value != "self":
            return  # torch.autograd.Function.forward(ctx, ...) is a custom op, not a model
        returns: list[cst.BaseExpression] = []
        assigned: dict[str, cst.BaseExpression] = {}
        for statement in node.body.body if isinstance(node.body, cst.IndentedBlock) else ():
            if not isinstance(statement, cst.SimpleStatementLine):
                continue
            for small in statement.body:
                if isinstance(small, cst.Return) and small.value is not None:
                    returns.append(small.value)
                elif isinstance(small, cst.Assign) and len(small.targets) == 1 and isinstance(small.targets[0].target, cst.Name):
                    assigned[small.targets[0].target.value] = small.value
        for value in returns:
            if isinstance(value, cst.Name):
                value = assigned.get(value.value, value)
            if isinstance(value, cst.Call):
                op = self.ctx.resolver.target(value).op
                name = call_name(value)
                if name.lower() in _ACTIVATION_ATTRS and _ACTIVATION_ATTRS[name.lower()]:
                    op = _ACTIVATION_ATTRS[name.lower()]
                self.found.append((op, value))


def model_ends_in(ctx: "FileContext", ops: frozenset[str]) -> cst.CSTNode | None:
    """The node of a final layer/activation among ``ops`` found anywhere in the file, else None."""
    cache = _cache(ctx)
    endings = cache.get("model_endings")
    if endings is None:
        visitor = _Endings(ctx)
        ctx.module.visit(visitor)
        endings = cache["model_endings"] = visitor.found
    from nanlint.analysis.optable import MODULE_OPS, canonical

    for op, node in endings:
        if MODULE_OPS.get(op, canonical(op)) in ops:
            return node
    # what a model class of this file returns from `forward`, followed through its modules and helpers
    for cls in ctx.ev.scopes.classes.values():
        forward = ctx.ev.scopes.methods.get(id(cls), {}).get("forward")
        if forward is None or not forward.params.params or forward.params.params[0].name.value != "self":
            continue
        value = ctx.ev.calls.return_value(ctx.ev.frame_of(forward))
        if value.op in ops and value.node is not None:
            return value.node
    return None
