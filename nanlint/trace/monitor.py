"""Watching every floating-point result: two PyTorch modes working together.

* ``StampMode`` (a ``TorchFunctionMode``, above autograd) knows the user's source line of each torch call and
  stamps it into ``grad_fn.metadata`` of the autograd nodes the call created.
* ``WatchMode`` (a ``TorchDispatchMode``, below autograd) sees every aten op of the forward pass, the backward
  pass (where ``torch._C._current_autograd_node()`` names the node, whose metadata names the forward line) and
  the optimizer step. For each floating-point result (returned, or written by an in-place / ``out=`` / foreach
  op) it takes its range (``torch.aminmax``, one pass; ``amin``/``amax`` where the layout makes that slow).
  Integer, bool, empty and uninitialised (``empty*``, ``resize_``) results are skipped; views inherit the record
  of their base; results that provably stay finite are not scanned (``bounds.py``).

An *origin* is an op that produced a non-finite value from finite inputs; everything after it propagates.
Inputs are judged by the record of the op that produced them (tensors are tracked by identity); tensors the
monitor did not see being made (loaded data, parameters built before the run) are checked once per version.

On CUDA the per-op results stay on the device (``deferred``): they are gathered and copied to the host once
per phase (forward, backward, step), so there is one host sync per phase instead of one per op. The same path
runs on CPU when ``deferred=True`` is asked for (the tests do), but CUDA itself was not available to test it.
"""
from __future__ import annotations

import math
import sys
import weakref
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from nanlint.trace import bounds, opkinds, spelling, tensors
from nanlint.trace.locate import Locator
from nanlint.trace.records import Event, OpEvidence

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


class Monitor:
    """Collects records, classifies them into events, and aggregates evidence at flagged lines."""

    def __init__(self, locator: Locator, flagged: set[tuple[str, int]] | None = None, deferred: bool = False) -> None:
        self.locator = locator
        self.flagged = flagged or set()
        self.deferred = deferred
        self.site: tuple[str, int] | None = None  # current forward line, set by StampMode
        self.call: tuple | None = None  # the torch call running, (func, args, kwargs), set by StampMode
        self.autocast = False  # the run's autocast (--dtype) is on, set by the health hooks
        self.backward_site: tuple[str, int] | None = None
        self.step_site: tuple[str, int] | None = None
        self.in_step = False
        self.step_clean = False  # every gradient is finite at the start of this optimizer step
        self.paused = 0
        self.produced: dict[int, tuple] = {}
        self.leaves: dict[int, tuple] = {}
        self.leaf_views: dict[tuple, tuple] = {}  # (id(base), offset, shape, stride, dtype) -> (base ref, version, Rec)
        self.pending: list[Rec] = []
        self.last_phase = "forward"
        self.param_names: dict[int, str] = {}
        self.events: list[Event] = []
        self.fills: dict[tuple, Event] = {}
        self.propagations: list[tuple] = []  # (site, op, phase, param) in order, capped
        self.propagated = 0
        self.evidence: dict[tuple, OpEvidence] = {}  # (file, line, op, phase) -> evidence
        self.sites_run: set[tuple[str, int]] = set()  # lines where any watched op ran
        self.ops_seen = 0
        self._dtypes: set = set()  # dtypes of the results watched
        self._node_ops = _NODE_OPS
        self.stop_request: BaseException | None = None  # set by a timer thread; raised at the next op
        self._info = _OP_INFO
        self.nan_or_inf_seen = False
        self.steps_done = 0  # optimizer steps completed (set by the health hooks)
        self.internal_errors: list[str] = []

    @property
    def dtypes_seen(self) -> set[str]:
        return {str(d).replace("torch.", "") for d in self._dtypes}

    # ---- used by the modes -------------------------------------------------------------------------
    def info(self, func) -> OpInfo:
        info = self._info.get(func)
        if info is None:
            info = self._info[func] = _op_info(func)
        return info

    def lookup(self, t: torch.Tensor, phase: str, site, consumer: str = "?") -> Rec:
        entry = self.produced.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        entry = self.leaves.get(id(t))
        try:
            version = t._version
        except RuntimeError:  # an inference tensor tracks no version: checked at every use
            version = None
        if entry is not None and version is not None and entry[0]() is t and entry[1] == version:
            return entry[2]
        base = t._base
        key = None
        if version is not None:
            # a tensor made outside the monitor and its views (``weight.t()`` at every call, its transpose in the
            # backward pass, the slices of a loaded batch): the same view of the same version of its base holds
            # the same values, and a view of all of its elements (a transpose, a reshape) the same range
            if base is None:
                base, key = t, (id(t), None, t.dtype)
            elif _all_of(t, base):
                key = (id(base), None, t.dtype)
            else:
                key = (id(base), t.storage_offset(), t.shape, t.stride(), t.dtype)
            entry = self.leaf_views.get(key)
            if entry is not None and entry[0]() is base and entry[1] == version:
                self.leaves[id(t)] = (weakref.ref(t), version, entry[2])
                return entry[2]
        stats = self._stats(t)
        rec = Rec(f"input of {consumer}", phase, site, None, self.param_names.get(id(t)), stats, (), False, leaf=True)
        if type(stats) is tuple:
            mn, mx = stats
            if mn == mn and mx == mx and mn != -INF and mx != INF:
                rec.bound = max(-mn, mx)
                if key is not None:  # only finite ones: an input event keeps its own record at each use
                    if len(self.leaf_views) > 100_000:
                        self.leaf_views.clear()
                    self.leaf_views[key] = (weakref.ref(base), version, rec)
        self.leaves[id(t)] = (weakref.ref(t), version, rec)
        self.pending.append(rec)
        return rec

    def known_leaf(self, t: torch.Tensor, stats: tuple) -> None:
        """A tensor made outside the monitor whose (min, max) the caller just took (the batch fed to the model,
        CPU path): when finite, it is recorded as if the monitor had scanned it, so it is not scanned again."""
        mn, mx = stats
        if self.deferred or not (mn == mn and mx == mx and mn != -INF and mx != INF) or not _watched(t):
            return
        if t.layout != _STRIDED or t.dtype not in _REAL or t.is_inference() or id(t) in self.produced:
            return
        rec = Rec("input", "forward", None, None, self.param_names.get(id(t)), stats, (), False, leaf=True,
                  bound=max(-mn, mx))
        rec.inputs = None  # classified: finite
        self.leaves[id(t)] = (weakref.ref(t), t._version, rec)

    def _stats(self, t: torch.Tensor):
        if not self.deferred and t.layout == _STRIDED and t.dtype in _REAL:
            mn, mx = _minmax(t)  # inside the dispatch mode: no autograd to detach from
            return (mn.item(), mx.item())
        values = tensors.real_values(t)
        if values is None:  # a sparse tensor with no stored values: nothing that can be non-finite
            return _wide(torch.zeros(2, device=t.device)) if self.deferred else (0.0, 0.0)
        mn, mx = _minmax(values)
        if self.deferred:
            return _wide(torch.stack((mn, mx)))
        return (mn.item(), mx.item())

    def after(self, func, args, kwargs, out) -> None:
        """Called by WatchMode after each aten op (the hot path: one call per op of the script)."""
        if self.stop_request is not None:
            request, self.stop_request = self.stop_request, None
            raise request
        info = self._info.get(func)
        if info is None:
            info = self.info(func)
        if info.skip:
            return
        if self.in_step and self.step_clean:
            self._param_update(info, args, kwargs)
            return
        produced = self.produced
        if info.written:
            written = []
            for index, name in info.written:
                _collect(args[index] if index < len(args) else kwargs.get(name), written)
        else:
            written = ()
        if type(out) is _Tensor and not written:
            outs = (out,)
        else:
            outs = []
            _collect(out, outs)
            outs += written
        if info.is_view:  # a view inherits the record of its base
            for a in args:
                if isinstance(a, _Tensor):
                    entry = produced.get(id(a))
                    if entry is not None and entry[0]() is a:
                        base = entry[1]
                        for o in outs:
                            produced[id(o)] = (weakref.ref(o), base)
                    break
            return
        if not outs:
            return
        node = torch._C._current_autograd_node()
        nodename = None
        if node is not None:
            phase = "backward"
            site = node.metadata.get(META_KEY) or self.backward_site
            nodename = node.name()
        elif self.in_step:
            phase, site = "step", self.step_site
        else:
            phase, site = "forward", self.site
            if site is None:
                site = self.locator.site(sys._getframe(2))
        if phase != self.last_phase:
            self.flush()
            self.last_phase = phase
        inputs = []
        known = {}  # id -> bound of each floating-point input (bounds.py)
        finite = True  # every input is known finite now
        fill = False
        scalar_max = None
        step = phase == "step"
        items = args if not kwargs else (*args, *kwargs.values())
        if info.overwrite:
            items = items[1:]
        for a in items:
            if type(a) is list or type(a) is tuple:
                items = _flat_items(items)
                break
        for a in items:
            if isinstance(a, _Tensor):
                if step:  # only parameters are checked in the step: temporaries count as finite
                    entry = produced.get(id(a))
                    if entry is not None and entry[0]() is a:
                        rec = entry[1]
                        inputs.append(rec)
                        known[id(a)] = rec.bound
                        if finite and type(rec) is not Known:
                            finite = _finite(rec)
                else:
                    entry = produced.get(id(a))
                    if entry is not None and entry[0]() is a:
                        rec = entry[1]
                        if a.dtype not in _WATCHED or not a.numel():  # a view as integers, an empty view
                            continue
                    elif a.dtype in _WATCHED and _watched(a):
                        rec = self.lookup(a, phase, site, info.name)
                    else:
                        continue
                    inputs.append(rec)
                    known[id(a)] = rec.bound
                    if finite and type(rec) is not Known:
                        finite = _finite(rec)
            elif isinstance(a, float):
                if a == INF or a == -INF:
                    fill = True
                if scalar_max is None or abs(a) > scalar_max:
                    scalar_max = abs(a)
        self.ops_seen += 1
        if site is not None:
            self.sites_run.add(site)
        param = None
        if nodename is None:
            opname = info.name
        elif "AccumulateGrad" in nodename:
            opname = info.name
            variable = getattr(node, "variable", None)
            param = self.param_names.get(id(variable)) if variable is not None else None
        else:
            opname = self._node_ops.get(nodename)
            if opname is None:
                opname = self._node_ops[nodename] = opkinds.normalize(nodename)
            if opname == "tocopy":  # the backward of a cast: named as the user spelled the cast
                opname = node.metadata.get(spelling.META_KEY) or opname
        flagged = site is not None and site in self.flagged
        deduce = False
        bound = None
        if finite and (inputs or info.overwrite) and not fill and not flagged and not self.deferred:
            rule = info.bound
            if rule is not None:
                bound = rule(args, kwargs, known)
            deduce = info.preserving or bound is not None
        for w in written:  # what was known of a tensor written in place (and of its base) no longer holds
            entry = produced.get(id(w))
            if entry is not None:
                entry[1].bound = None
            if w._base is not None:
                entry = produced.get(id(w._base))
                if entry is not None:
                    entry[1].bound = None
        seen = None if len(outs) == 1 else set()
        for o in outs:
            if seen is not None:
                if id(o) in seen:
                    continue
                seen.add(id(o))
            if not _watched(o):
                continue
            dtype = o.dtype
            self._dtypes.add(dtype)
            if deduce and (info.preserving or (o.layout == _STRIDED and bounds.within(bound, dtype))):
                # finite without a scan: its inputs are finite and the op keeps it so (finite-preserving, or a
                # bound well inside the dtype's range)
                produced[id(o)] = (weakref.ref(o), Known(bound) if bound is not None and dtype in _REAL else FINITE)
                continue
            p = param or (self.param_names.get(id(o)) if step else None)
            if step and p is None:
                # a step temporary, not scanned: it only carries its inputs' state on to the parameter update
                # (the update of each parameter is scanned)
                rec = Rec(opname, phase, site, nodename, p, None, tuple(inputs), False)
                produced[id(o)] = (weakref.ref(o), rec)
                self.pending.append(rec)
                continue
            if nodename is None and info.name in spelling.CAST_OPS:  # `.half()`, not `_to_copy`
                opname = spelling.cast_name(self.call if phase == "forward" else None, dtype, self.autocast)
            rec = Rec(opname, phase, site, nodename, p, self._stats(o), tuple(inputs), fill or not inputs)
            if flagged and phase != "backward":
                self._measure(rec, info, args, o, scalar_max)
            produced[id(o)] = (weakref.ref(o), rec)
            self.pending.append(rec)
        if not self.deferred:
            if self.pending:
                born = len(self.events)
                self.flush()
                if len(self.events) > born and phase == "forward":
                    self._birth_figures(self.events[born], info, args)
        if len(produced) > 200_000:
            self.produced = {k: v for k, v in produced.items() if v[0]() is not None}

    def _param_update(self, info: OpInfo, args, kwargs) -> None:
        """An optimizer step whose gradients are all finite: whatever turns non-finite in it is born there, so
        only the writes to parameters (and their named optimizer state) are scanned and the temporaries are
        not even recorded (the step's ops cost about a third of the monitor's time otherwise)."""
        if not info.written:
            return
        if self.last_phase != "step":
            self.flush()
            self.last_phase = "step"
        outs: list = []
        for index, name in info.written:
            _collect(args[index] if index < len(args) else kwargs.get(name), outs)
        site, names = self.step_site, self.param_names
        self.ops_seen += 1
        if site is not None:
            self.sites_run.add(site)
        produced = self.produced
        bound = None
        if info.bound is not None and not self.deferred and any(id(o) in names for o in outs):
            # an update that provably stays finite (``p.mul_(1 - lr * wd)``, ``p.add_(grad, alpha=-lr)`` of finite
            # values well inside the dtype's range) is not scanned
            known = {}
            for a in _flat_items(args if not kwargs else (*args, *kwargs.values())):
                if isinstance(a, _Tensor) and a.dtype in _REAL:
                    known[id(a)] = self._current_bound(a)
            bound = info.bound(args, kwargs, known)
        for o in outs:
            entry = produced.get(id(o))
            if entry is not None:  # written: what was known of it (and of the views sharing its record) is gone
                entry[1].bound = None
            if o._base is not None:
                entry = produced.get(id(o._base))
                if entry is not None:
                    entry[1].bound = None
            param = names.get(id(o))
            if param is None or not _watched(o):
                continue
            if bound is not None and o.layout == _STRIDED and bounds.within(bound, o.dtype):
                produced[id(o)] = (weakref.ref(o), Known(bound))
                continue
            # stats None: finite, carrying the state of no input
            rec = Rec(info.name, "step", site, None, param, self._update_stats(o), (), False)
            produced[id(o)] = (weakref.ref(o), rec)
            self.pending.append(rec)
        if not self.deferred:
            self.flush()

    def _current_bound(self, t: torch.Tensor) -> float | None:
        """|x| <= bound of ``t`` now, from its record or its leaf scan of this version (None: not known)."""
        entry = self.produced.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1].bound
        entry = self.leaves.get(id(t))
        if entry is not None and entry[0]() is t:
            try:
                version = t._version
            except RuntimeError:
                return None
            if entry[1] == version:
                return entry[2].bound
        return None

    def _update_stats(self, t: torch.Tensor):
        """A parameter update's stats, or None when it is finite and has no range. A large update on the CPU path
        is summed: the sum is finite exactly when every value is (a sum cannot turn an inf or a NaN finite), at
        half the cost of the range; only one whose sum is not finite (or overflows) is scanned for its range. A
        small one keeps its range, which bounds what the next forward pass computes from it (bounds.py)."""
        if not self.deferred and t.numel() > 65536 and t.layout == _STRIDED and t.dtype in _REAL:
            total = t.sum().item()
            if total == total and total != INF and total != -INF:
                return None
        return self._stats(t)

    def _measure(self, rec: Rec, info: OpInfo, args, out, scalar_max) -> None:
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
        if self.deferred:
            ev = {k: _wide(v) for k, v in ev.items()}
        else:
            ev = {k: v.item() for k, v in ev.items()}
        if scalar_max is not None:
            ev["max_abs_scalar"] = scalar_max
        rec.ev = ev
        rec.evkey = (rec.site[0], rec.site[1], rec.op, rec.phase)
        rec.value = str(out.dtype).replace("torch.", "")

    def _birth_figures(self, event: Event, info: OpInfo, args) -> None:
        """The inputs that made the first non-finite value of an op (CPU path: they are still alive): the
        figures the report leads with ("smallest |denominator| 0", "mean over 0 elements")."""
        if event.kind != "origin":
            return
        self.paused += 1
        try:
            with torch.no_grad():
                event.figures = _figures(info.norm, args)
        except Exception as exc:
            self.internal_error(exc)
        finally:
            self.paused -= 1

    def op_error(self, func, exc: BaseException) -> None:
        """An op raised: an overflow error (a constant that does not fit the dtype) is an event of its own."""
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "overflow" not in text:
            return
        node = torch._C._current_autograd_node()
        site = (node.metadata.get(META_KEY) if node is not None else None) or self.site or self.locator.site(sys._getframe(2))
        self.flush()
        self._event("error", "inf", self.info(func).name, self.last_phase, site, None, None, message=text)

    def internal_error(self, exc: Exception) -> None:
        """Recorded for the report; the run goes on (results may be incomplete)."""
        text = f"{type(exc).__name__}: {exc}"
        if text not in self.internal_errors and len(self.internal_errors) < 10:
            self.internal_errors.append(text)

    # ---- classification ----------------------------------------------------------------------------
    def flush(self) -> None:
        pending = self.pending
        if not pending:
            return
        self.pending = []
        if self.deferred:
            self.paused += 1
            try:
                values = torch.stack([r.stats for r in pending]).cpu().tolist()
                for r, v in zip(pending, values):
                    r.stats = v
                evs = [(r, k) for r in pending if r.ev for k, v in r.ev.items() if isinstance(v, torch.Tensor)]
                if evs:
                    flat = torch.stack([r.ev[k].reshape(()) for r, k in evs]).cpu().tolist()
                    for (r, k), v in zip(evs, flat):
                        r.ev[k] = v
            finally:
                self.paused -= 1
        for r in pending:
            self._classify(r)

    def known_range(self, t: torch.Tensor) -> tuple | None:
        """(min, max) of ``t`` if the monitor scanned it already (CPU path), else None."""
        entry = self.produced.get(id(t))
        if entry is not None and entry[0]() is t and type(entry[1].stats) is tuple:
            return entry[1].stats
        return None

    def _classify(self, r: Rec) -> None:
        if r.stats is None:  # not scanned: carries the state of its inputs
            inputs, r.inputs = r.inputs or (), None
            r.nan = any(i.nan for i in inputs)
            r.inf = any(i.inf for i in inputs)
            if r.nan or r.inf:
                self._propagate(r, "nan" if r.nan else "inf")
            return
        mn, mx = r.stats
        nan = mn != mn or mx != mx
        inf = mx == INF or mn == -INF
        r.nan, r.inf = nan, inf
        if r.ev is not None:
            self._merge_evidence(r, mn, mx)
        inputs, r.inputs = r.inputs, None
        if not (nan or inf):
            if not self.deferred:
                r.bound = max(-mn, mx)
            return
        self.nan_or_inf_seen = True
        value = "nan" if nan else "+-inf" if (mx == INF and mn == -INF) else "inf" if mx == INF else "-inf"
        if r.leaf:
            self._event("input", value, r.op, r.phase, r.site, r.node, r.param)
            return
        in_nan = any(i.nan for i in inputs)
        in_bad = in_nan or any(i.inf for i in inputs)
        if nan and not in_nan:
            self._event("origin", value, r.op, r.phase, r.site, r.node, r.param, from_inf=in_bad)
        elif not nan and not in_bad:
            if r.fill:
                key = (r.site, r.op, r.phase)
                if key in self.fills:
                    self.fills[key].propagated += 1
                else:
                    self.fills[key] = self._make_event("fill", value, r.op, r.phase, r.site, r.node, r.param)
            else:
                self._event("origin", value, r.op, r.phase, r.site, r.node, r.param)
        else:
            self._propagate(r, value)

    def _propagate(self, r: Rec, value: str) -> None:
        self.propagated += 1
        if len(self.propagations) < 2000:
            self.propagations.append((r.site, r.op, r.phase, r.param, value))

    def _merge_evidence(self, r: Rec, mn, mx) -> None:
        ev = OpEvidence(op=r.op, phase=r.phase, calls=1, dtype=r.value, out_min=mn, out_max=mx, **r.ev)
        old = self.evidence.get(r.evkey)
        if old is None:
            self.evidence[r.evkey] = ev
        else:
            old.merge(ev)

    def _make_event(self, kind, value, op, phase, site, node, param, **extra) -> Event:
        filename, line = site if site is not None else (None, None)
        return Event(len(self.events) + len(self.fills), kind, value, op, phase, filename, line, node, param,
                     step=self.steps_done, **extra)

    def _event(self, kind, value, op, phase, site, node, param, **extra) -> None:
        for e in self.events[-50:]:  # the same origin repeated (each layer, each call): count it once
            if (e.kind, e.value, e.op, e.phase, e.param) == (kind, value, op, phase, param) and (e.filename, e.line) == (site or (None, None)):
                e.propagated += 1
                return
        if len(self.events) < MAX_EVENTS:
            self.events.append(self._make_event(kind, value, op, phase, site, node, param, **extra))

    def all_events(self) -> list[Event]:
        return sorted(self.events + list(self.fills.values()), key=lambda e: e.index)


def _figures(norm: str, args) -> dict:
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


class WatchMode(TorchDispatchMode):
    """Below autograd: every aten op, forward, backward and optimizer step."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps __torch_dispatch__ in torch._disable_dynamo otherwise, which costs about 10 us per op;
        # nothing is compiled while tracing (torch.compile is the identity), so there is nothing to skip
        return False

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        m = self.monitor
        if m.paused:
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except RuntimeError as exc:
            m.op_error(func, exc)
            raise
        m.paused += 1
        try:
            m.after(func, args, kwargs, out)
        except Exception as exc:  # a monitor bug must never break the user's script
            m.internal_error(exc)
        finally:
            m.paused -= 1
        return out


class StampMode(TorchFunctionMode):
    """Above autograd: the user's line of each torch call, stamped into the autograd nodes it created."""

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        m = self.monitor
        if m.paused or m.in_step:  # the step's ops are attributed to the step() line: no lookup needed
            return func(*args, **kwargs)
        previous, previous_call = m.site, m.call
        site = m.locator.site(sys._getframe(1))
        m.site, m.call = site, (func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        finally:
            m.site, m.call = previous, previous_call
        if site is not None and torch.is_grad_enabled():
            try:
                if isinstance(out, torch.Tensor):
                    if out.grad_fn is not None:
                        _stamp(out.grad_fn, site)
                        if getattr(func, "__name__", None) in spelling.CAST_METHODS:
                            out.grad_fn.metadata[spelling.META_KEY] = spelling.cast_call(func, args, kwargs)
                elif isinstance(out, (tuple, list)):
                    for o in out:
                        if isinstance(o, torch.Tensor) and o.grad_fn is not None:
                            _stamp(o.grad_fn, site)
            except Exception as exc:
                m.internal_error(exc)
        return out


def _stamp(node, site) -> None:
    """Stamp ``node`` and the unstamped nodes behind it (a composite call creates several)."""
    stack = [node]
    while stack:
        n = stack.pop()
        meta = n.metadata
        if META_KEY in meta:
            continue
        meta[META_KEY] = site
        for nxt, _ in n.next_functions:
            if nxt is not None:
                stack.append(nxt)
