"""The transfer of each op family: the op table names a family, this module says what it computes."""
from __future__ import annotations

from dataclasses import replace

from nanlint.analysis import arith, construct, elementwise, reduce, shapes
from nanlint.analysis import domain as d
from nanlint.analysis import optable as ops
from nanlint.analysis.domain import Evidence, Tier, Value
from nanlint.analysis.opcall import OpCall


def _math(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    if call.arg("input") is None:
        return d.UNKNOWN
    if fn == "reciprocal":
        return arith.divide(None, d.constant(1.0), call.input, call.node, call.text())
    return elementwise.apply(fn, call.input, call.node, call.text())


def _prob(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    if call.arg("input") is None:
        return d.UNKNOWN
    if fn == "softmax":
        out = elementwise.softmax(call.input, call.node, call.text(), call.name)
        if call.name == "gumbel_softmax" and call.keyword_true("hard"):
            out = replace(out, dist=True)
        return out
    return elementwise.apply(fn, call.input, call.node, call.text())


def _logprob(call: OpCall) -> Value:
    if call.arg("input") is None:
        return d.UNKNOWN
    return elementwise.logprob(call.input, call.node, call.name)


def _arith(call: OpCall) -> Value:
    fn = call.spec.param("fn")
    node, text = call.node, call.text()
    if fn == "neg":
        return arith.negate(call.input, node)
    if fn == "abs":
        return arith.absolute(call.input, node, text)
    if fn == "square":
        return arith.power(call.input, 2.0, node, text)
    left, right = call.arg("input"), call.arg("other")
    if fn == "pow":
        exponent = call.arg("exponent")
        if left is None or exponent is None:
            return d.UNKNOWN
        return arith.power(call.input, call.ev.number(exponent), node, text, call.ev.value(exponent))
    if fn == "hypot":
        return Value(lo=0.0, grad=d.join_grad(call.input.grad, call.val("other").grad), node=node)
    if fn in ("addcmul", "addcdiv", "lerp"):
        return Value(grad=call.input.grad, node=node)
    if left is None or right is None:
        return d.UNKNOWN
    a, b = call.ev.value(left), call.ev.value(right)
    if fn == "add":
        alpha = call.keyword("alpha")
        if alpha is not None:
            b = arith.mul(b, call.ev.value(alpha), node, text)
        out = arith.add(a, b, node, text)
        if alpha is None and shapes.is_sum_expansion(call.ev, left, right):
            why = f"`{text}` expands a squared distance: it is >= 0 only in exact arithmetic and rounds below 0 for nearly equal points"
            ev_ = Evidence(Tier.PLAUSIBLE, why, node, "rounding")
            out = replace(out, below=ev_).with_point(0.0, ev_)
        return out
    if fn == "sub":
        return arith.sub(call, a, b, node, text, left, right)
    if fn == "rsub":
        return arith.sub(call, b, a, node, text, right, left)
    if fn == "mul":
        return arith.mul(a, b, node, text, same=call.ev.text(left) == call.ev.text(right) and call.ev.is_pure(left))
    if fn == "div":
        if call.keyword("rounding_mode") is not None:
            return Value(integer=True, grad=False, node=node)
        return arith.divide(call, a, b, node, text, left, right)
    if fn in ("floordiv", "mod"):
        return Value(integer=a.integer and b.integer, lo=0.0 if a.nonneg and b.nonneg else -d.INF, grad=False, node=node)
    return d.UNKNOWN


def _reduce(call: OpCall) -> Value:
    out = reduce.reduce(call)
    if out is None:  # torch.max(a, b) / torch.min(a, b): elementwise
        side = "min" if call.spec.param("fn") == "max" else "max"
        other = call.arg("other") or (call.extra_positional[0] if call.extra_positional else None)
        if other is None:
            return call.input
        return construct.pick(call.input, call.ev.value(other), call.node, call.text(), largest=side == "min")
    return out


TRANSFERS = {
    ops.MATH: _math,
    ops.ACT: _math,
    ops.PROB: _prob,
    ops.LOGPROB: _logprob,
    ops.ARITH: _arith,
    ops.CLAMP: construct.clamp,
    ops.WHERE: construct.where,
    ops.MASKED_FILL: construct.masked_fill,
    ops.REDUCE: _reduce,
    ops.NORM: reduce.norm,
    ops.SPREAD: reduce.spread,
    ops.COUNT: reduce.count,
    ops.SIZE: reduce.size,
    ops.HIST: reduce.histogram,
    ops.SELECT: reduce.select,
    ops.INDEX: reduce.index,
    ops.BOOLEAN: reduce.boolean,
    ops.LOGSUMEXP: reduce.logsumexp,
    ops.LINEAR: construct.linear,
    ops.NORMALIZE: construct.normalize,
    ops.COSINE: construct.cosine,
    ops.CONSTRUCT: construct.construct,
    ops.STACK: construct.stack,
    ops.IDENTITY: construct.identity,
    ops.DETACH: construct.detach,
    ops.LOSS: construct.loss,
    ops.ATAN2: construct.atan2,
    ops.XLOGY: construct.xlogy,
}


# ops whose result is a Python number whatever they are given: ``x.item()``, ``len(x)``, ``x.numel()``, ``x.size(0)``
_PYTHON_RESULTS = frozenset({"item", "len", "numel", "nelement", "dim", "ndimension", "size", "float"})


def transfer(call: OpCall) -> Value:
    fn = TRANSFERS.get(call.spec.transfer)
    out = fn(call) if fn is not None else d.UNKNOWN
    pynum = _python_number(call)
    return out if out.pynum == pynum else replace(out, pynum=pynum)


def _python_number(call: OpCall) -> bool:
    """The op's result is a Python int or float: Python arithmetic on Python numbers raises at a zero divisor
    (and ``math`` raises at every domain edge) instead of making inf or NaN."""
    if call.namespace == "math":
        return True
    if call.name in _PYTHON_RESULTS and call.namespace in ("method", "builtin"):
        return True
    if call.namespace in ("operator", "builtin"):
        operands = [call.arg(name) for name in call.spec.args]
        return all(expr is not None and call.ev.value(expr, call.frame).pynum for expr in operands)
    return False
