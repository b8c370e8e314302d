"""Classifying checked results into events: an origin (non-finite from finite inputs), a propagation, an
intentional fill (an -inf written by the code), an input that came in non-finite; and the evidence gathered at
flagged lines."""
from __future__ import annotations

import torch

from nanlint.trace.oprecords import INF, MAX_EVENTS, Rec
from nanlint.trace.records import Event, OpEvidence


class EventLog:
    """The events and evidence of a run and the classification that fills them; the monitor is one."""

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

