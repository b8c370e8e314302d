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

import sys
import weakref

import torch

from nanlint.trace import bounds, opkinds, sitefigures, spelling, tensors
from nanlint.trace.classify import EventLog
from nanlint.trace.locate import Locator
from nanlint.trace.oprecords import (FINITE, INF, META_KEY, Known, OpInfo, Rec, _all_of, _collect, _finite,
                                     _flat_items, _minmax, _NODE_OPS, _OP_INFO, _op_info, _REAL, _STRIDED, _Tensor,
                                     _watched, _WATCHED, _wide)
from nanlint.trace.records import Event, OpEvidence


class Monitor(EventLog):
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
                sitefigures.measure(rec, info, args, o, scalar_max, self.deferred)
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

    def _birth_figures(self, event: Event, info: OpInfo, args) -> None:
        """The inputs that made the first non-finite value of an op (CPU path: they are still alive): the
        figures the report leads with ("smallest |denominator| 0", "mean over 0 elements")."""
        if event.kind != "origin":
            return
        self.paused += 1
        try:
            with torch.no_grad():
                event.figures = sitefigures.birth_figures(info.norm, args)
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
