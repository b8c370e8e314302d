"""einops, as the op table sees it: ``rearrange`` and ``repeat`` move values without changing them,
``reduce(t, pattern, 'sum')`` is a torch reduction (over the batch when the pattern drops the leading axis,
within rows when it keeps it)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import optable as ops
from nanlint.analysis.domain import Value
from nanlint.analysis.opcall import OpCall

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator, Frame

_MOVES = frozenset({"einops.rearrange", "einops.repeat"})
_REDUCTIONS = {"sum": "sum", "mean": "mean", "max": "amax", "min": "amin", "prod": "prod"}


def einops_value(ev: "Evaluator", node: cst.Call, qualified: str, frame: "Frame") -> Value | None:
    from dataclasses import replace

    from nanlint.analysis.transfer import transfer

    positional = [a.value for a in node.args if a.keyword is None and a.star == ""]
    if not positional:
        return None
    if qualified in _MOVES:
        return replace(ev.value(positional[0], frame), node=node)
    if qualified != "einops.reduce" or len(positional) < 2:
        return None
    reduction = positional[2] if len(positional) > 2 else next(
        (a.value for a in node.args if a.keyword is not None and a.keyword.value == "reduction"), None)
    if not isinstance(reduction, cst.SimpleString) or reduction.evaluated_value not in _REDUCTIONS:
        return None
    spec = ops.OPS.get(_REDUCTIONS[reduction.evaluated_value])
    pattern = positional[1]
    if spec is None or not isinstance(pattern, cst.SimpleString):
        return None
    keywords = {"dim": cst.Integer("1")} if _keeps_leading_axis(pattern.evaluated_value) else {}
    site = OpCall(node, spec, "torch", ev, {"input": positional[0]}, [positional[0]], keywords, frame)
    return transfer(site)


def _keeps_leading_axis(pattern: str) -> bool:
    """``'b n d -> b d'`` keeps ``b``: the reduction runs within each sample."""
    left, _, right = pattern.partition("->")
    inputs, outputs = left.split(), right.split()
    return bool(inputs) and bool(outputs) and inputs[0] == outputs[0]
