"""Watching every floating-point result: two PyTorch modes working together.

* ``StampMode`` (a ``TorchFunctionMode``, above autograd) knows the user's source line of each torch call and
  stamps it into ``grad_fn.metadata`` of the autograd nodes the call created.
* ``WatchMode`` (a ``TorchDispatchMode``, below autograd) sees every aten op of the forward pass, the backward
  pass (where ``torch._C._current_autograd_node()`` names the node, whose metadata names the forward line) and
  the optimizer step. For each floating-point result (returned, or written by an in-place / ``out=`` / foreach
  op) it takes ``torch.aminmax``: cheap, and it gives the range for free. Integer, bool, empty and
  uninitialised (``empty*``, ``resize_``) results are skipped; views inherit the record of their base.

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

from nanlint.trace import opkinds, tensors
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
    "triu", "index", "scatter", "maskedselect"})
# not nll_loss: with every target equal to ignore_index its mean is 0/0 inside the kernel
MAX_EVENTS = 500


@dataclass
class OpInfo:
    name: str  # aten overload packet name
    norm: str  # normalized for opkinds
    is_view: bool
    skip: bool
    written: tuple  # (positional index, keyword name) of written tensor arguments


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
                 "leaf", "value")

    def __init__(self, op, phase, site, node, param, stats, inputs, fill, leaf=False):
        self.op, self.phase, self.site, self.node, self.param = op, phase, site, node, param
        self.stats, self.inputs, self.fill, self.leaf = stats, inputs, fill, leaf
        self.ev = None
        self.evkey = None
        self.nan = self.inf = False
        self.value = None


def _op_info(func) -> OpInfo:
    name = func._overloadpacket.__name__
    norm = opkinds.normalize(name)
    written = []
    for i, arg in enumerate(func._schema.arguments):
        if arg.alias_info is not None and arg.alias_info.is_write:
            written.append((i, arg.name))
    return OpInfo(name, norm, bool(func.is_view), norm in UNINITIALISED, tuple(written))


_watched = tensors.watched


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
        self.backward_site: tuple[str, int] | None = None
        self.step_site: tuple[str, int] | None = None
        self.in_step = False
        self.step_clean = False  # every gradient is finite at the start of this optimizer step
        self.paused = 0
        self.produced: dict[int, tuple] = {}
        self.leaves: dict[int, tuple] = {}
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
        self.dtypes_seen: set[str] = set()
        self.stop_request: BaseException | None = None  # set by a timer thread; raised at the next op
        self._info: dict = {}
        self.nan_or_inf_seen = False
        self.steps_done = 0  # optimizer steps completed (set by the health hooks)
        self.internal_errors: list[str] = []

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
        version = t._version
        if entry is not None and entry[0]() is t and entry[1] == version:
            return entry[2]
        rec = Rec(f"input of {consumer}", phase, site, None, self.param_names.get(id(t)), self._stats(t), (), False, leaf=True)
        self.leaves[id(t)] = (weakref.ref(t), version, rec)
        self.pending.append(rec)
        return rec

    def _stats(self, t: torch.Tensor):
        values = tensors.real_values(t)
        if values is None:  # a sparse tensor with no stored values: nothing that can be non-finite
            return _wide(torch.zeros(2, device=t.device)) if self.deferred else (0.0, 0.0)
        mn, mx = torch.aminmax(values)
        if self.deferred:
            return _wide(torch.stack((mn, mx)))
        return (mn.item(), mx.item())

    def after(self, func, args, kwargs, out) -> None:
        """Called by WatchMode after each aten op."""
        if self.stop_request is not None:
            request, self.stop_request = self.stop_request, None
            raise request
        info = self.info(func)
        if info.skip:
            return
        if self.in_step and self.step_clean:
            self._param_update(info, args, kwargs)
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
        outs = []
        _collect(out, outs)
        for index, name in info.written:
            _collect(args[index] if index < len(args) else kwargs.get(name), outs)
        if not outs:
            return
        produced = self.produced
        if info.is_view:
            base = None
            for a in args:
                if isinstance(a, torch.Tensor):
                    entry = produced.get(id(a))
                    if entry is not None and entry[0]() is a:
                        base = entry[1]
                    break
            if base is not None:
                for o in outs:
                    produced[id(o)] = (weakref.ref(o), base)
            return
        inputs = []
        fill = False
        scalar_max = None
        step = phase == "step"
        for a in _flat(args, kwargs):
            if isinstance(a, torch.Tensor):
                if step:  # only parameters are checked in the step: temporaries count as finite
                    entry = produced.get(id(a))
                    if entry is not None and entry[0]() is a:
                        inputs.append(entry[1])
                elif _watched(a):
                    inputs.append(self.lookup(a, phase, site, info.name))
            elif isinstance(a, float):
                if a in (INF, -INF):
                    fill = True
                if scalar_max is None or abs(a) > scalar_max:
                    scalar_max = abs(a)
        self.ops_seen += 1
        if site is not None:
            self.sites_run.add(site)
        param = None
        if nodename is not None and "AccumulateGrad" in nodename:
            variable = getattr(node, "variable", None)
            param = self.param_names.get(id(variable)) if variable is not None else None
        opname = opkinds.normalize(nodename) if nodename and "AccumulateGrad" not in nodename else info.name
        flagged = site is not None and site in self.flagged
        deduce = (not self.deferred and not fill and not flagged and info.norm in FINITE_PRESERVING and inputs
                  and all(_finite(i) for i in inputs))
        seen = set()
        for o in outs:
            if id(o) in seen or not _watched(o):
                continue
            seen.add(id(o))
            p = param or (self.param_names.get(id(o)) if step else None)
            if deduce or (step and p is None):
                # not scanned: finite when its inputs are (deduced), or a step temporary, which only carries
                # its inputs' state on to the parameter update (the update of each parameter is scanned)
                rec = Rec(opname, phase, site, nodename, p, None, tuple(inputs), False)
                produced[id(o)] = (weakref.ref(o), rec)
                self.pending.append(rec)
                continue
            rec = Rec(opname, phase, site, nodename, p, self._stats(o), tuple(inputs), fill or not inputs)
            if site is not None and phase != "backward" and site in self.flagged:
                self._measure(rec, info, args, o, scalar_max)
            produced[id(o)] = (weakref.ref(o), rec)
            self.pending.append(rec)
            self.dtypes_seen.add(str(o.dtype).replace("torch.", ""))
        if not self.deferred:
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
        for o in outs:
            param = names.get(id(o))
            if param is None or not _watched(o):
                continue
            rec = Rec(info.name, "step", site, None, param, self._stats(o), (), False)
            self.produced[id(o)] = (weakref.ref(o), rec)
            self.pending.append(rec)
        if not self.deferred:
            self.flush()

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


def _flat(args, kwargs):
    for a in args:
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a
    for a in kwargs.values():
        if isinstance(a, (list, tuple)):
            yield from a
        else:
            yield a


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
        previous = m.site
        site = m.locator.site(sys._getframe(1))
        m.site = site
        try:
            out = func(*args, **kwargs)
        finally:
            m.site = previous
        if site is not None and torch.is_grad_enabled():
            try:
                if isinstance(out, torch.Tensor):
                    if out.grad_fn is not None:
                        _stamp(out.grad_fn, site)
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
