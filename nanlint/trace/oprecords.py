"""What the monitor keeps of each op and each result: the op's static description (``OpInfo``, one per aten
overload, shared by every monitor), the record of a checked result (``Rec``) and of one known finite without a scan
(``Known``), and the small helpers of the hot path."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from nanlint.trace import bounds, opkinds, tensors

INF = math.inf
UNINITIALISED = frozenset({"empty", "emptylike", "emptystrided", "newempty", "newemptystrided", "resize",
                           "resizeas", "set", "emptypermuted"})
META_KEY = "nanlint"
# Ops whose result is finite whenever their inputs are (no arithmetic that can overflow or divide): on the CPU
# path their result is not scanned when every input is known to be finite, which saves a pass over memory.
FINITE_PRESERVING = frozenset({
    "relu", "relu6", "thresholdbackward", "neg", "abs", "clone", "cat", "stack", "indexselect", "gather",
    "embedding", "where", "sigmoid", "tanh", "softmax", "logsoftmax", "sigmoidbackward", "tanhbackward",
    "gelu", "silu", "hardtanh", "elu", "sign", "floor", "ceil", "round", "trunc", "maskedfill", "clamp",
    "clampmin", "clampmax", "max", "min", "amax", "amin", "sort", "topk", "constantpadnd", "zeroslike",
    "oneslike", "zero", "maxpool2dwithindices", "unsafeview", "contiguous", "repeat", "flip", "roll", "tril",
    "triu", "index", "scatter", "maskedselect", "unsafesplit", "split", "splitwithsizes", "unsafesplitwithsizes",
    "chunk", "unsafechunk", "safesoftmax"})
# not nll_loss: with every target equal to ignore_index its mean is 0/0 inside the kernel
# Ops that overwrite their first argument whatever it held (``empty_like(x).bernoulli_(p)`` in dropout): what it
# held (uninitialised memory) is not an input
OVERWRITE = frozenset({"bernoulli", "uniform", "normal", "fill", "zero", "copy", "random", "exponential",
                       "geometric", "cauchy", "lognormal"})
MAX_EVENTS = 500


@dataclass
class OpInfo:
    name: str  # aten overload packet name
    norm: str  # normalized for opkinds
    is_view: bool
    skip: bool
    written: tuple  # (positional index, keyword name) of written tensor arguments
    preserving: bool  # finite from finite inputs (FINITE_PRESERVING)
    bound: object  # bounds.rule of the op, or None
    overwrite: bool  # in place, its first argument's old values do not matter (OVERWRITE)


def _finite(rec: "Rec") -> bool:
    """Known finite now (CPU path: every earlier record is classified, leaves carry their (min, max))."""
    s = rec.stats
    if type(s) is tuple:
        mn, mx = s
        return mn == mn and mx == mx and mn != -INF and mx != INF
    return s is None and rec.inputs is None and not (rec.nan or rec.inf)


class Rec:
    """One checked tensor: an op's result, or a leaf input checked once."""

    __slots__ = ("op", "phase", "site", "node", "param", "stats", "inputs", "fill", "ev", "evkey", "nan", "inf",
                 "leaf", "value", "bound")

    def __init__(self, op, phase, site, node, param, stats, inputs, fill, leaf=False, bound=None):
        self.op, self.phase, self.site, self.node, self.param = op, phase, site, node, param
        self.stats, self.inputs, self.fill, self.leaf = stats, inputs, fill, leaf
        self.ev = None
        self.evkey = None
        self.nan = self.inf = False
        self.value = None
        self.bound = bound  # finite, with |x| <= bound (CPU path; None: not known)


def _all_of(t: torch.Tensor, base: torch.Tensor) -> bool:
    """``t`` is a view of every element of its contiguous ``base``, once each (a transpose, a permute, a reshape)."""
    if t.numel() != base.numel() or t.storage_offset() != base.storage_offset() or t.dtype != base.dtype:
        return False
    if not base.is_contiguous():
        return False
    expected = 1
    for stride, size in sorted(zip(t.stride(), t.shape)):
        if size != 1:
            if stride != expected:
                return False
            expected *= size
    return True


class Known:
    """A result known finite without a scan: its inputs were finite and the op keeps it so. ``bound``: |x| <= bound
    (None: not known). Read like a classified ``Rec``; the shared ``FINITE`` has no bound and never gets one."""

    __slots__ = ("bound",)
    stats = inputs = ev = None
    nan = inf = leaf = fill = False

    def __init__(self, bound) -> None:
        self.bound = bound


FINITE = Known(None)


_OP_INFO: dict = {}  # aten overload -> OpInfo (what an op is does not change: shared by every monitor)
_NODE_OPS: dict[str, str] = {}  # autograd node name -> its forward op (SqrtBackward0 -> sqrt)


def _op_info(func) -> OpInfo:
    name = func._overloadpacket.__name__
    norm = opkinds.normalize(name)
    written = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            written.append((i, arg.name))
    overwrite = norm in OVERWRITE and bool(written) and written[0][0] == 0
    return OpInfo(name, norm, bool(func.is_view), norm in UNINITIALISED, tuple(written), norm in FINITE_PRESERVING,
                  bounds.rule(norm, overwrite), overwrite)


_watched = tensors.watched
_minmax = tensors.minmax
_Tensor = torch.Tensor
_WATCHED = tensors.WATCHED_DTYPES
_REAL = tensors.REAL_DTYPES
_STRIDED = torch.strided


def _real(t) -> bool:
    """A dense real floating-point tensor: the kind whose domain edges (log of 0, exp overflow) are measured."""
    return _watched(t) and t.is_floating_point() and t.layout == torch.strided


def _wide(t: torch.Tensor) -> torch.Tensor:
    """Statistics kept on the device in the widest dtype it has, so a float64 value never narrows to inf."""
    return t.float() if t.device.type == "mps" else t.double()




def _collect(value, into: list) -> None:
    if isinstance(value, torch.Tensor):
        into.append(value)
    elif isinstance(value, (list, tuple)):
        for v in value:
            if isinstance(v, torch.Tensor):
                into.append(v)


def _flat_items(items) -> list:
    """``items`` with the tensors and numbers of its lists and tuples (``cat([a, b])``, ``index(x, [i, None])``) in
    place of them."""
    flat = []
    for a in items:
        if type(a) is list or type(a) is tuple:
            flat.extend(a)
        else:
            flat.append(a)
    return flat
