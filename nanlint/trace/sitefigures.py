"""Figures taken of an op's inputs: at a flagged line, what brought it close to a non-finite value (the
smallest input of a log, the smallest |denominator|, the largest exponent); at an origin, what made it."""
from __future__ import annotations

import math

import torch

from nanlint.trace import opkinds
from nanlint.trace.oprecords import INF, OpInfo, Rec, _real, _wide


def measure(rec: Rec, info: OpInfo, args, out, scalar_max, deferred: bool) -> None:
    """Evidence for a flagged line: what brought this op close to a non-finite value."""
    norm = info.norm
    ev = {}
    x = args[0] if args and _real(args[0]) else None
    if x is not None:
        x = x.detach()
    if x is not None and (norm in opkinds.LOG_LIKE or norm in opkinds.ROOT_LIKE):
        ev["min_input"] = x.min()
        ev["min_pos_input"] = torch.where(x > 0, x, INF).min()
    elif norm in opkinds.DIV_LIKE:
        den = args[1] if len(args) > 1 else None
        if _real(den):
            a = den.detach().abs()
            ev["min_abs_denominator"] = a.min()
            ev["min_pos_input"] = torch.where(a > 0, a, INF).min()
        elif isinstance(den, (int, float)):
            ev["min_abs_denominator"] = torch.tensor(float(abs(den)))
    elif x is not None and norm in opkinds.EXP_LIKE:
        ev["max_input"] = x.max()
    elif norm in opkinds.SIGMOID_LIKE and _real(out):
        o = out.detach()
        ev["saturated_share"] = ((o == 0) | (o == 1)).float().mean()
    if deferred:
        ev = {k: _wide(v) for k, v in ev.items()}
    else:
        ev = {k: v.item() for k, v in ev.items()}
    if scalar_max is not None:
        ev["max_abs_scalar"] = scalar_max
    rec.ev = ev
    rec.evkey = (rec.site[0], rec.site[1], rec.op, rec.phase)
    rec.value = str(out.dtype).replace("torch.", "")


def birth_figures(norm: str, args) -> dict:
    """The figures of the inputs that made an op's first non-finite value ("smallest |denominator| 0")."""
    given = [a for a in args if isinstance(a, torch.Tensor)]
    x = given[0].detach() if given else None
    figures: dict = {}
    if x is None:
        return figures
    if not x.numel():
        figures["elements reduced"] = 0
        return figures
    if not _real(x):
        return figures
    if norm in opkinds.DIV_LIKE:
        den = args[1] if len(args) > 1 else None
        if _real(den):
            figures["smallest |denominator|"] = float(den.detach().abs().min())
        elif isinstance(den, (int, float)):
            figures["smallest |denominator|"] = abs(float(den))
        elif norm == "reciprocal":
            figures["smallest |denominator|"] = float(x.abs().min())
    elif norm in opkinds.LOG_LIKE or norm in opkinds.ROOT_LIKE:
        figures["smallest input"] = float(x.min())
    elif norm in opkinds.EXP_LIKE:
        figures["largest exponent"] = float(x.max())
        figures["largest exponent that fits"] = round(math.log(torch.finfo(x.dtype).max), 2)
    elif norm in ("pow", "mul", "add", "sub", "matmul", "mm", "bmm", "addmm", "sum", "mean", "cumsum"):
        figures["largest |input|"] = float(x.abs().max())
        figures["largest finite value"] = float(torch.finfo(x.dtype).max)
    return figures
