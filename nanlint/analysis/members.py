"""Values drawn from a tensor's own elements: ``for c in torch.unique(labels): mask = labels == c`` compares
``labels`` with one of its own values, so the mask holds at least one True and a selection by it is not
empty (the per-class mean of a class that exists)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import optable as ops

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator, Frame

_DRAWN = frozenset({"unique", "unique_consecutive"})


def drawn_from(ev: "Evaluator", frame: "Frame", node: cst.BaseExpression, depth: int = 0) -> str | None:
    """The key of the tensor whose own values ``node`` holds (one of them, or all of them broadcast), or None."""
    if depth > 6:
        return None
    node = _reshaped(node)
    if isinstance(node, cst.Name):
        definition = frame.flow.sole_definition(node)
        if definition is None or definition.kind != "assign" or definition.path not in ((), ("element",)) or definition.value is None:
            return None
        return drawn_from(ev, frame, definition.value, depth + 1)
    if isinstance(node, cst.Call):
        site = ev.opcall(node, frame)
        if site is not None and site.name in _DRAWN and site.arg("input") is not None:
            if any(a.keyword is not None and a.keyword.value in ("return_counts", "return_inverse") for a in node.args):
                return None  # a tuple: its first item is the values, but the unpacking is not followed here
            return ev.key(_reshaped(site.arg("input")))
    return None


def _reshaped(node: cst.BaseExpression) -> cst.BaseExpression:
    """``u.unsqueeze(1)``, ``u[:, None]``, ``u.view(-1, 1)``: the same values in another shape."""
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in ops.IDENTITY_METHODS:
            node = node.func.value
        elif isinstance(node, cst.Subscript) and all(_broadcast_index(e) for e in node.slice):
            node = node.value
        else:
            return node


def _broadcast_index(element: cst.SubscriptElement) -> bool:
    s = element.slice
    if isinstance(s, cst.Index):
        return isinstance(s.value, cst.Name) and s.value.value == "None" or isinstance(s.value, cst.Ellipsis)
    return isinstance(s, cst.Slice) and s.lower is None and s.upper is None and s.step is None


def compares_with_own_values(ev: "Evaluator", frame: "Frame", node: cst.Comparison) -> bool:
    """``x == v`` (either side) where ``v`` holds values of ``x`` itself."""
    if len(node.comparisons) != 1 or not isinstance(node.comparisons[0].operator, cst.Equal):
        return False
    left, right = node.left, node.comparisons[0].comparator
    for a, b in ((left, right), (right, left)):
        key = ev.key(_reshaped(a))
        if key is not None and drawn_from(ev, frame, b) == key:
            return True
    return False


_SIZE_METHODS = frozenset({"numel", "nelement", "size"})
_COUNT_CALLS = frozenset({"sum", "count_nonzero"})
_CASTS = frozenset({"long", "int", "float", "double", "item", "to", "type", "cpu", "detach"})


def complement_of(ev: "Evaluator", frame: "Frame", left: cst.BaseExpression, right: cst.BaseExpression) -> str | None:
    """``target.size(0) - (target == ignore).sum()``, ``mask.numel() - mask.sum()``, ``len(x) - (x > t).sum()``:
    the count of the elements the mask leaves out, 0 when it holds everywhere. Returns the mask's text."""
    sized = _sized(ev, left)
    if sized is None:
        return None
    mask = _counted(ev, frame, right)
    if mask is None:
        return None
    expr, root = mask
    return ev.text(expr) if root == sized else None


def converted(node: cst.BaseExpression) -> cst.BaseExpression:
    """The tensor under a cast or a conversion to a Python number (``x.float()``, ``x.sum().item()``,
    ``float(x)``): the same values."""
    while True:
        if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute) and node.func.attr.value in _CASTS:
            node = node.func.value
        elif isinstance(node, cst.Call) and isinstance(node.func, cst.Name) and node.func.value in ("int", "float") and len(node.args) == 1:
            node = node.args[0].value
        else:
            return node


def _sized(ev: "Evaluator", node: cst.BaseExpression) -> str | None:
    """The key of the tensor whose size ``node`` is."""
    node = converted(node)
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Attribute) and node.value.attr.value == "shape":
        return ev.key(node.value.value)
    if isinstance(node, cst.Subscript) and isinstance(node.value, cst.Call):  # x.size()[0]
        node = node.value
    if isinstance(node, cst.Call):
        func = node.func
        if isinstance(func, cst.Attribute) and func.attr.value in _SIZE_METHODS:
            return ev.key(func.value)
        if isinstance(func, cst.Name) and func.value == "len" and len(node.args) == 1:
            return ev.key(node.args[0].value)
    return None


def _counted(ev: "Evaluator", frame: "Frame", node: cst.BaseExpression) -> tuple[cst.BaseExpression, str] | None:
    """``(mask, root)`` for a count of a mask's True elements, ``root`` the key of the tensor it compares."""
    node = converted(node)
    if not isinstance(node, cst.Call):
        return None
    site = ev.opcall(node, frame)
    if site is None or site.name not in _COUNT_CALLS or site.arg("input") is None:
        return None
    mask = converted(site.arg("input"))
    compared = mask
    if isinstance(mask, cst.Name):
        definition = frame.flow.sole_definition(mask)
        if definition is not None and definition.kind == "assign" and not definition.path:
            compared = definition.value
    if isinstance(compared, cst.Comparison):
        root = ev._comparison_root(compared)
        return (mask, root) if root else None
    key = ev.key(mask)
    if key is not None and ev.value(mask, frame).role == "mask":
        return mask, key
    return None


def single_tier(ev: "Evaluator", mask: cst.BaseExpression | None):
    """How plausibly a selection by ``mask`` holds exactly one element: a membership test (``labels == c``, a
    class or a group with one sample in the batch) does on ordinary data; a threshold or a mask handed in
    picking exactly one entry is a degenerate input."""
    from nanlint.analysis.domain import Tier

    expr = ev.resolved(mask) if mask is not None else None
    while isinstance(expr, cst.Call) and isinstance(expr.func, cst.Attribute) and expr.func.attr.value in _CASTS:
        expr = expr.func.value
    if isinstance(expr, cst.Comparison) and any(isinstance(t.operator, cst.Equal) for t in expr.comparisons):
        return Tier.PLAUSIBLE
    return Tier.DEGENERATE
