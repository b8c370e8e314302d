"""Transfer functions of reductions, counts, sizes, selections and histograms.

What a reduction says about exact zeros follows from its input's *all-zero* and *constant* evidence, not
from its name: ``mask.sum()`` is 0 for an all-False mask, ``signal.abs().max()`` for a silent signal,
``img.std()`` for a blank image; the norm of a dense activation, an embedding or a Gaussian draw carries no
such evidence and is not "may be zero". A sum of values of unknown sign is 0 only by cancellation (a weak,
degenerate-tier reason); a selection by a boolean mask can hold no element; a histogram has empty bins.
"""
from __future__ import annotations

from dataclasses import replace

import libcst as cst

from nanlint.analysis import domain as d, members
from nanlint.analysis.domain import INF, Evidence, Tier, Value, stronger
from nanlint.analysis.opcall import OpCall


def _desc(call: OpCall, what: str, x: Value) -> str:
    if x.desc and x.role in (d.MASK, d.COUNT, d.PROBABILITY) or (x.desc and x.desc.startswith("a comparison")):
        return f"{what} ({call.text()}) of {x.desc}"
    return f"{what} (`{call.text()}`)"


def _within_rows(call: OpCall) -> bool:
    """The reduction runs along a dim >= 1 (``dim=1``, ``dim=(1, 2)``): a selection of rows with no row gives
    an empty result there, not the sum (0) or mean (NaN) of nothing."""
    dim = call.dim
    if dim is None:
        return False
    parts = [e.value for e in dim.elements] if isinstance(dim, (cst.Tuple, cst.List)) else [dim]
    numbers = [call.ev.number(p) for p in parts]
    return bool(numbers) and all(n is not None and n >= 1 for n in numbers)


def _vanishing_input(call: OpCall, x: Value) -> Evidence | None:
    """Why every element reduced can be 0 at once."""
    found = _over(call, x.vanish)
    if x.empty is not None and not _within_rows(call):
        found = stronger(found, Evidence(x.empty.tier, f"{x.empty.why} (and the sum of nothing is 0)", x.empty.node, "empty", x.empty.root))
    return found


def _over(call: OpCall, found: Evidence | None) -> Evidence | None:
    """A reduction without ``dim`` runs over the whole batch: a row that is all 0 no longer makes it 0."""
    if found is None or call.dim is not None:
        return found
    return found.over_batch()


def reduce(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    x = call.input
    node, text = call.node, call.text()
    if call.arg("input") is None:
        return d.UNKNOWN
    if fn in ("max", "min") and _elementwise(call):
        return None  # torch.max(a, b): the caller treats it as maximum/minimum
    if fn in ("sum", "cumsum"):
        return _sum(call, x, node, text)
    if fn == "mean":
        out = Value(lo=x.lo, hi=x.hi, lo_open=x.lo_open, hi_open=x.hi_open, grad=x.grad, dtype=x.dtype, node=node,
                    role=x.role if x.role in (d.DATA, d.ACTIVATION, d.PROBABILITY) else None, desc=f"a mean (`{text}`)",
                    vanish=_over(call, x.vanish), constant=x.constant, large=x.large)
        if out.vanish is not None:
            out = out.with_point(0.0, out.vanish)
        return out
    if fn in ("max", "min", "median", "aminmax"):
        out = Value(lo=x.lo, hi=x.hi, lo_open=x.lo_open, hi_open=x.hi_open, grad=x.grad, dtype=x.dtype, node=node,
                    integer=x.integer, role=x.role if x.role in (d.DATA, d.ACTIVATION, d.COUNT, d.SIZE) else None,
                    desc=f"a `{fn}` (`{text}`)", vanish=_over(call, x.vanish), constant=x.constant, large=x.large)
        if out.vanish is not None:
            out = out.with_point(0.0, out.vanish)
        elif fn == "min" and x.nonneg and x.zero is not None:
            out = out.with_point(0.0, x.zero)
        if fn == "max" and x.dist:
            out = replace(out, lo=0.0, lo_open=True, points=())  # the peak of a distribution over n is >= 1/n
        if fn == "max" and x.nonpos and x.zero is not None:
            out = out.with_point(0.0, x.zero)
        if call.dim is not None or fn == "aminmax":
            index = Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
            return replace(out, items=(out, index))
        return out
    if fn == "prod":
        lo = 0.0 if x.nonneg else -INF
        hi = 1.0 if x.unit_interval else INF
        out = Value(lo=lo, hi=hi, lo_open=x.positive, grad=x.grad, dtype=x.dtype, node=node, desc=f"a product (`{text}`)")
        if x.zero is not None:
            out = out.with_point(0.0, x.zero)
        if x.unit_interval and not x.positive:
            out = out.with_point(0.0, Evidence(Tier.DEGENERATE, f"`{text}` of many values below 1 underflows", node, "underflow"))
        return out
    return d.UNKNOWN


def _elementwise(call: OpCall) -> bool:
    if call.arg("other") is not None:
        return True
    rest = call.extra_positional
    if rest:
        first = call.ev.resolved(rest[0])
        v = call.ev.value(first)
        return not (v.integer or isinstance(first, (cst.Tuple, cst.List)))
    return False


def _sum(call: OpCall, x: Value, node, text: str) -> Value:
    mask_like = x.role == d.MASK or (x.lo >= 0 and x.hi <= 1 and x.integer)
    counting = mask_like or x.role == d.COUNT
    lo = 0.0 if x.nonneg else -INF
    hi = 0.0 if x.nonpos else INF
    out = Value(lo=lo, hi=hi, lo_open=x.positive, integer=x.integer or mask_like, grad=x.grad, dtype=x.dtype, node=node,
                role=d.COUNT if counting else x.role if x.role in (d.DATA, d.ACTIVATION) else None,
                desc=(f"a count (`{text}`)" if counting else f"a sum (`{text}`)"), large=x.large, vanish=_over(call, x.vanish),
                constant=x.constant)
    if x.dist:
        out = replace(out, lo=0.0, lo_open=True)
    zero = _vanishing_input(call, x)
    if zero is not None:
        if counting and zero.kind not in ("empty",):
            zero = Evidence(zero.tier, f"`{text}` is 0 when {_when(x)}", node, "count", zero.root)
        out = out.with_point(0.0, zero)
    elif not x.nonneg and not x.nonpos and x.informative is False and x.const is None and x.role not in (d.RANDOM,):
        why = f"`{text}` sums values of unknown sign: 0 only when they cancel or are all 0"
        out = out.with_point(0.0, Evidence(Tier.DEGENERATE, why, node, "cancel"))
    return out


def _when(x: Value) -> str:
    """Why a count's terms are all 0, for messages."""
    if x.vanish is None:
        return "every term is 0"
    if x.vanish.kind in ("mask", "comparison"):
        return "the mask is all False"
    if x.vanish.kind == "fill":
        return "nothing was added to it"
    if x.vanish.kind == "name" and x.role == d.MASK:
        return f"the mask `{x.vanish.root}` (a mask by its name) is all False"
    return f"every term is 0: {x.vanish.why}"


def norm(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    out = Value(lo=0.0, grad=None, node=node, desc=f"a norm (`{text}`)")
    if fn == "eps-distance":  # pairwise_distance adds eps to the difference
        return replace(out, lo=0.0, lo_open=True, desc=f"a distance (`{text}`)")
    if fn in ("distance",):
        a_expr, b_expr = call.arg("input") or call.arg("x1"), call.arg("other") or call.arg("x2")
        if a_expr is None or b_expr is None:
            return out
        a, b = call.ev.value(a_expr), call.ev.value(b_expr)
        out = replace(out, grad=d.join_grad(a.grad, b.grad), desc=f"a distance (`{text}`)")
        if call.ev.text(a_expr) == call.ev.text(b_expr):
            return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, f"`{text}` is 0 between each point and itself", node, "self-pair"))
        tier = Tier.PLAUSIBLE if a.role == d.DATA and b.role == d.DATA else Tier.DEGENERATE
        return out.with_point(0.0, Evidence(tier, f"`{text}` is 0 for coinciding points", node, "coincide"))
    if fn == "pdist":
        x = call.input
        return replace(out, grad=x.grad).with_point(0.0, Evidence(Tier.DEGENERATE, f"`{text}` is 0 for duplicate rows", node, "coincide"))
    x = call.input
    out = replace(out, grad=x.grad, dtype=x.dtype, large=x.large, vanish=x.vanish)
    if x.vanish is not None:
        out = out.with_point(0.0, x.vanish)
    if x.empty is not None and not _within_rows(call):
        out = out.with_point(0.0, Evidence(x.empty.tier, x.empty.why, x.empty.node, "empty", x.empty.root))
    if x.positive:
        out = replace(out, lo_open=True)
    return out


def spread(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    x = call.input
    node, text = call.node, call.text()
    out = Value(lo=0.0, grad=x.grad, dtype=x.dtype, node=node, desc=f"a `{fn.split('_')[0]}` (`{text}`)", large=x.large)
    zero = stronger(x.constant, x.vanish)
    if zero is not None:
        zero = Evidence(zero.tier, f"`{text}` is 0 for a constant input" + (f" ({zero.why})" if zero.why else ""), zero.node, "constant", zero.root)
        out = replace(out.with_point(0.0, zero), vanish=zero)
    if fn in ("std_mean", "var_mean"):
        mean = Value(lo=x.lo, hi=x.hi, grad=x.grad, node=node)
        return replace(out, items=(out, mean))
    return out


def count(call: OpCall) -> Value:
    x = call.input
    node, text = call.node, call.text()
    out = Value(lo=0.0, integer=True, role=d.COUNT, grad=False, node=node, desc=f"a count (`{text}`)")
    if x.positive or x.negative or x.role in (d.ACTIVATION, d.RANDOM):
        return out
    reason = x.vanish.why if x.vanish is not None else "every element is 0"
    tier = x.vanish.tier if x.vanish is not None else Tier.PLAUSIBLE
    return out.with_point(0.0, Evidence(tier, f"a count (`{text}`) is 0 when {reason}", node, "count", x.vanish.root if x.vanish else None))


def size(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    positive = Value(lo=1.0, integer=True, role=d.SIZE, grad=False, node=node, desc=f"a size (`{text}`)")
    if fn == "numel":
        x = call.input
        if x.empty is not None:
            return Value(lo=0.0, integer=True, role=d.COUNT, grad=False, node=node, desc=f"an element count (`{text}`)").with_point(
                0.0, Evidence(x.empty.tier, f"`{text}` is 0 for an empty selection ({x.empty.why})", node, "empty", x.empty.root))
        return positive
    if fn == "len":
        x = call.input
        if x.empty is not None:
            return Value(lo=0.0, integer=True, role=d.COUNT, grad=False, node=node, desc=f"a length (`{text}`)").with_point(
                0.0, Evidence(x.empty.tier, f"`{text}` is 0 when {x.empty.why}", node, "empty", x.empty.root))
        return positive
    return positive


def histogram(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    if fn == "one_hot":
        return Value(lo=0.0, hi=1.0, integer=True, role=d.MASK, grad=False, node=node, desc=f"a one-hot encoding (`{text}`)",
                     vanish=Evidence(Tier.PLAUSIBLE, f"a class column of `{text}` is all 0 when no sample has that class", node, "empty-bin"),
                     points=((0.0, Evidence(Tier.PLAUSIBLE, "one-hot zeros", node, "mask")), (1.0, Evidence(Tier.PLAUSIBLE, "one-hot ones", node, "mask"))))
    why = f"`{text}` has empty bins (a class absent from the batch)"
    if fn == "scatter":
        base = call.input
        if base.zero is None or base.zero.kind != "fill":
            return d.UNKNOWN
        why = f"`{text}` stays 0 at every index nothing was scattered to"
    return Value(lo=0.0, integer=fn != "scatter", role=d.COUNT, grad=False if fn != "scatter" else None, node=node,
                 desc=f"a histogram (`{text}`)").with_point(0.0, Evidence(Tier.PLAUSIBLE, why, node, "empty-bin"))


def select(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    x = call.input
    if fn == "nonzero":
        root = call.ev.emptiness_root(call.arg("input"))
        return Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node, desc=f"indices (`{text}`)",
                     empty=Evidence(Tier.PLAUSIBLE, f"`{text}` is empty when nothing is nonzero", node, "empty", root))
    if fn == "masked":
        mask_expr = call.arg("mask")
        root = call.ev.text(mask_expr) if mask_expr is not None else None
        return replace(x, node=node, desc=f"the selection `{text}`", vanish=None, constant=x.constant,
                       empty=Evidence(Tier.PLAUSIBLE, f"the selection `{text}` holds no element when the mask is all False", node, "empty", root),
                       single=Evidence(members.single_tier(call.ev, mask_expr), f"the selection `{text}` can hold one element", node, "single", root))
    if fn in ("topk", "sorted"):
        values = replace(x, node=node, desc=f"values of `{text}`")
        if fn == "topk" and x.dist:
            values = replace(values, lo=0.0, lo_open=True, points=())
        index = Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
        return replace(values, items=(values, index))
    if fn == "unique":
        return _unique(call, x)
    return replace(x, node=node)


def _unique(call: OpCall, x: Value) -> Value:
    """``unique(x, return_inverse=, return_counts=)``: the values, then the inverse indices, then the counts,
    each of which is >= 1 (a value that occurs is counted at least once; ``bincount`` is the one with 0s)."""
    node, text = call.node, call.text()
    values = replace(x, node=node, desc=f"the distinct values of `{text}`", vanish=None)
    parts = [values]
    if call.keyword_true("return_inverse"):
        parts.append(Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node, desc=f"inverse indices (`{text}`)"))
    if call.keyword_true("return_counts"):
        parts.append(Value(lo=1.0, integer=True, role=d.COUNT, grad=False, node=node,
                           desc=f"counts of `{text}` (each >= 1: only values that occur are counted)"))
    return replace(values, items=tuple(parts)) if len(parts) > 1 else values


def index(call: OpCall) -> Value:
    node = call.node
    return Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node, desc=f"indices (`{call.text()}`)",
                 points=((0.0, Evidence(Tier.PLAUSIBLE, "index 0", node, "index")),))


def boolean(call: OpCall) -> Value:
    return mask_value(call.node, f"`{call.text()}`", call.ev.text(call.arg("input")) if call.arg("input") is not None else None)


def mask_value(node, text: str, root: str | None = None) -> Value:
    """A boolean (0/1) tensor: both values are reached, and it can be all False."""
    false = Evidence(Tier.PLAUSIBLE, f"{text} is all False", node, "mask", root)
    return Value(lo=0.0, hi=1.0, integer=True, role=d.MASK, grad=False, node=node, desc=f"a mask ({text})",
                 points=((0.0, false), (1.0, Evidence(Tier.PLAUSIBLE, f"{text} is True", node, "mask", root))),
                 vanish=false, dtype="bool")


def logsumexp(call: OpCall) -> Value:
    x = call.input
    return Value(lo=x.lo, grad=x.grad, dtype=x.dtype, node=call.node, desc=f"a `logsumexp` (`{call.text()}`)", large=x.large)
