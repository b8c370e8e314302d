"""One use of an op at one node: its arguments by the op table's names, whatever the spelling.

``torch.div(a, b)``, ``a.div(b)``, ``a.div_(b)``, ``a / b`` and ``a /= b`` all become an :class:`OpCall`
of ``div`` with ``input`` = ``a`` and ``other`` = ``b``; for a method call the receiver is ``input``.
Transfer functions and rules read arguments through it and evaluate them through the evaluator it carries.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis.domain import UNKNOWN, Value
from nanlint.analysis.optable import OpSpec

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator

# keyword spellings of the same argument across torch, NumPy and TF
SYNONYMS = {
    "input": ("input", "x", "a", "self", "tensor", "logits", "value"),
    "other": ("other", "y", "b", "x2", "divisor"),
    "exponent": ("exponent", "p", "exp"),
    "min": ("min", "a_min", "clip_value_min", "lower"),
    "max": ("max", "a_max", "clip_value_max", "upper"),
    "dim": ("dim", "axis"),
    "tensors": ("tensors", "seq", "arrays", "values"),
    "data": ("data", "obj", "object"),
    "fill_value": ("fill_value", "value"),
    "end": ("end", "stop"),
}


class OpCall:
    """An op applied at ``node``: a Call, a BinaryOperation, an AugAssign or a UnaryOperation."""

    __slots__ = ("node", "spec", "namespace", "ev", "frame", "_bound", "_positional", "_keywords")

    def __init__(self, node: cst.CSTNode, spec: OpSpec, namespace: str, ev: "Evaluator",
                 bound: dict[str, cst.BaseExpression], positional: list[cst.BaseExpression],
                 keywords: dict[str, cst.BaseExpression], frame=None):
        self.node = node
        self.frame = frame
        self.spec = spec
        self.namespace = namespace
        self.ev = ev
        self._bound = bound
        self._positional = positional
        self._keywords = keywords

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def is_method(self) -> bool:
        return self.namespace == "method"

    @property
    def is_operator(self) -> bool:
        return self.namespace == "operator"

    def arg(self, name: str) -> cst.BaseExpression | None:
        """The argument bound to the op-table name ``name`` (or a keyword synonym of it)."""
        found = self._bound.get(name)
        if found is not None:
            return found
        for key in SYNONYMS.get(name, (name,)):
            if key in self._keywords:
                return self._keywords[key]
        return None

    def keyword(self, name: str) -> cst.BaseExpression | None:
        return self._keywords.get(name)

    @property
    def extra_positional(self) -> list[cst.BaseExpression]:
        taken = sum(1 for a in self.spec.args if a in self._bound and not (a == "input" and self.is_method))
        return self._positional[taken:]

    def val(self, name: str) -> Value:
        expr = self.arg(name)
        return self.ev.value(expr, self.frame) if expr is not None else UNKNOWN

    def num(self, name: str) -> float | None:
        expr = self.arg(name)
        return self.ev.number(expr, self.frame) if expr is not None else None

    def text(self, expr: cst.CSTNode | None = None) -> str:
        return self.ev.text(expr if expr is not None else self.node)

    @property
    def input(self) -> Value:
        return self.val("input")

    @property
    def dim(self) -> cst.BaseExpression | None:
        found = self.arg("dim")
        if found is not None:
            return found
        rest = self.extra_positional
        return rest[0] if rest else None

    def keyword_true(self, name: str) -> bool:
        expr = self._keywords.get(name)
        return expr is not None and isinstance(expr, cst.Name) and expr.value == "True"


def bind(spec: OpSpec, namespace: str, call: cst.Call, receiver: cst.BaseExpression | None) -> tuple[dict, list, dict] | None:
    """Bind a call's arguments to the op table's names; None when the call cannot be this op (a ``*args``
    call, or a method with more positional arguments than the op takes, like ``self.log("loss", v)``)."""
    positional: list[cst.BaseExpression] = []
    keywords: dict[str, cst.BaseExpression] = {}
    for a in call.args:
        if a.star:
            return None
        if a.keyword is not None:
            keywords[a.keyword.value] = a.value
        else:
            positional.append(a.value)
    bound: dict[str, cst.BaseExpression] = {}
    names = list(spec.args)
    if namespace == "method":
        if receiver is None:
            return None
        if "input" in names:
            bound["input"] = receiver
            names.remove("input")
    queue = list(positional)
    for name in names:
        if not queue:
            break
        if any(k in keywords for k in SYNONYMS.get(name, (name,))):
            continue
        bound[name] = queue.pop(0)
    return bound, positional, keywords
