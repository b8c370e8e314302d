"""Joining static sites with runtime events: one verdict per flagged site, plus the origins the rules missed.

Events join findings by file and line. Where several rules flag one line, the op that produced the value
decides which (``opkinds``): a rule about logarithms takes a ``log``/``LogBackward0`` event, a rule about
division takes ``div``; a rule whose family may concern any op (optimization, data, precision) takes the
events no more specific rule on that line claims. A non-finite value born at a flagged line by an op none of
its rules is about is listed with the missed origins."""
from __future__ import annotations

import math
import os
from collections import defaultdict

from nanlint.findings import Finding
from nanlint.trace import evidence as E
from nanlint.trace import opkinds
from nanlint.trace.records import Event, OpEvidence, SiteVerdict

RANDOM_INIT = frozenset({"normal", "uniform", "bernoulli", "exponential", "geometric", "lognormal", "cauchy",
                         "random", "randn", "rand", "randint", "randperm"})
MAX_SPAN_LINES = 12  # a multi-line finding claims what happens on its lines, up to this many
VERDICTS = ("CONFIRMED", "NEAR-MISS", "AT-RISK", "SAFE", "NOT EXECUTED")


def _lines(f: Finding) -> range:
    """The lines a finding spans (a multi-line call claims what happens on each), at most MAX_SPAN_LINES."""
    return range(f.span.line, min(f.span.end_line, f.span.line + MAX_SPAN_LINES) + 1)


def _claimants(findings: list[Finding], op: str) -> list[Finding]:
    specific = [f for f in findings if opkinds.matches(f.code, op) is True]
    if specific:
        return specific
    return [f for f in findings if opkinds.matches(f.code, op) is None]


def consequences(events: list[Event]) -> set[int]:
    """NaN born from an inf that a bug produced earlier (inf - inf, 0 * inf) is that bug spreading."""
    first_bug = next((e.index for e in events if e.is_bug and not e.from_inf), None)
    if first_bug is None:
        return set()
    return {e.index for e in events if e.from_inf and e.index > first_bug}


def _figures(ev: OpEvidence) -> tuple[list[str], list[str], list[str]]:
    """(near-miss reasons, at-risk dtypes with reasons, plain figures) for one op's evidence."""
    near, risk, plain = [], [], []
    dtype = ev.dtype or "float32"
    op = opkinds.normalize(ev.op)
    if op in RANDOM_INIT:  # weight initialisation at a model's construction line says nothing about the hazard
        return near, risk, plain
    if ev.min_input is not None and op in opkinds.LOG_LIKE:
        text = f"smallest value fed to {ev.op}: {ev.min_input:.3g}"
        (near if ev.min_input < E.LOG_INPUT_NEAR else plain).append(text)
    if ev.min_input is not None and op in opkinds.ROOT_LIKE:
        text = f"smallest value fed to {ev.op}: {ev.min_input:.3g}"
        (near if ev.min_input < E.ROOT_INPUT_NEAR else plain).append(text)
    if ev.min_abs_denominator is not None:
        text = f"smallest |denominator|: {ev.min_abs_denominator:.3g}"
        (near if ev.min_abs_denominator < E.DENOMINATOR_NEAR else plain).append(text)
    if ev.max_input is not None:
        headroom = E.exp_limit(dtype) - ev.max_input
        text = f"largest exponent {ev.max_input:.3g}: headroom {headroom:.3g} to overflow in {dtype} (limit {E.exp_limit(dtype):.1f})"
        (near if headroom < E.EXP_HEADROOM_NEAR else plain).append(text)
    if ev.saturated_share is not None:
        text = f"saturated sigmoid outputs (exactly 0 or 1): {ev.saturated_share:.1%}"
        (near if ev.saturated_share > E.SATURATED_NEAR else plain).append(text)
    absmax = ev.out_absmax
    if absmax is not None and math.isfinite(absmax):
        limit = E.DTYPE_MAX.get(dtype, E.DTYPE_MAX["float32"])
        text = f"{ev.op} output range [{ev.out_min:.3g}, {ev.out_max:.3g}] ({dtype})"
        (near if absmax > limit / 1e3 else plain).append(text)
    if dtype in ("float32", "float64"):
        for low in ("float16", "bfloat16"):
            why = []
            if absmax is not None and math.isfinite(absmax) and absmax > E.DTYPE_MAX[low]:
                why.append(f"|{ev.op}| reaches {absmax:.3g} > {E.DTYPE_MAX[low]:.3g}")
            if ev.max_input is not None and ev.max_input > E.exp_limit(low):
                why.append(f"exponent {ev.max_input:.3g} > {E.exp_limit(low):.2f}")
            if ev.min_pos_input is not None and ev.min_pos_input < E.DTYPE_TINY[low]:
                why.append(f"{ev.min_pos_input:.3g} fed to {ev.op} rounds to 0")
            if ev.max_abs_scalar is not None and math.isfinite(ev.max_abs_scalar) and ev.max_abs_scalar > E.DTYPE_MAX[low]:
                why.append(f"constant {ev.max_abs_scalar:.3g} does not fit (max {E.DTYPE_MAX[low]:.3g})")
            if why:
                risk.append(f"{low}: " + "; ".join(why))
    return near, risk, plain


def _optimization(code: str) -> bool:
    return code.startswith("NAN5")


def _step_figures(updates: list[dict]) -> tuple[list[str], list[str]]:
    """(near-miss reasons, plain figures) from the update-to-weight ratios, for optimization rules."""
    near, plain = [], []
    for u in updates:
        lr = "?" if u["lr"] is None else format(u["lr"], "g")
        text = f"step {u['step']}: ||dW||/||W|| = {u['ratio']:.3g} (lr {lr})"
        (near if u["ratio"] > E.UPDATE_RATIO_HIGH else plain).append(text)
    return near, plain


def join(findings: list[Finding], events: list[Event], evidence: dict, sites_run: set, ran=lambda f, l: False,
         updates: list[dict] | None = None, optimizer_sites: set | None = None):
    """Verdicts for ``findings`` and the list of origin events no finding claims.

    Optimization rules (NAN5xx: learning rate, scaling, clipping) act through the optimizer step, not at their
    line: they take the non-finite values born after a step whose update-to-weight ratio was too high, and
    the ratios are their evidence. A non-finite value born inside an optimizer step that no rule claims at
    the ``step()`` line is the optimizer's: the rules flagging the line that built it (``optimizer_sites``,
    e.g. Adam's eps with half-precision parameters) and the optimization rules take it."""
    updates = updates or []
    diverged = [u["step"] for u in updates if not u["ratio"] <= E.UPDATE_RATIO_HIGH]
    by_line: dict[tuple[str, int], list[Finding]] = defaultdict(list)
    covering: dict[tuple[str, int], list[Finding]] = defaultdict(list)  # the other lines of multi-line findings
    for f in findings:
        path = os.path.realpath(f.filename)
        by_line[(path, f.span.line)].append(f)
        for line in _lines(f)[1:]:
            covering[(path, line)].append(f)

    def at(key):
        """The findings at a line: those that start there, else the multi-line ones that cover it."""
        return by_line.get(key) or covering.get(key, [])

    follow = consequences(events)
    confirmed: dict[int, list[Event]] = defaultdict(list)  # id(finding) -> events
    missed: list[Event] = []
    # id(finding) -> (event, the findings that took it) for the events born on its lines that it did not take
    elsewhere: dict[int, list[tuple[Event, list[Finding]]]] = defaultdict(list)
    for e in events:
        if not e.is_bug or e.index in follow:
            continue
        line_findings = at((e.filename, e.line)) if e.filename else []
        takers = _claimants(line_findings, e.op)
        if not takers and diverged and e.step >= min(diverged):
            takers = [f for f in findings if _optimization(f.code)]
        if not takers and e.phase == "step":
            takers = [f for f in findings if _optimization(f.code) or
                      (os.path.realpath(f.filename), f.span.line) in (optimizer_sites or ())]
        if not takers:
            missed.append(e)
        if e.filename:  # a value born on a finding's lines that it does not claim: never called SAFE there
            for f in by_line.get((e.filename, e.line), []) + covering.get((e.filename, e.line), []):
                if f not in takers:
                    elsewhere[id(f)].append((e, takers))
        for f in takers:
            confirmed[id(f)].append(e)
    ev_by_line: dict[tuple[str, int], list[OpEvidence]] = defaultdict(list)
    for (filename, line, op, phase), ev in evidence.items():
        ev_by_line[(filename, line)].append(ev)
    verdicts = []
    for key, line_findings in sorted(by_line.items()):
        for f in line_findings:
            lines = _lines(f)
            evs = [ev for line in lines for ev in ev_by_line.get((key[0], line), [])
                   if f in _claimants(at((key[0], line)), ev.op)]
            near, risk, plain = [], [], []
            for ev in evs:
                n, r, p = _figures(ev)
                near += n
                risk += r
                plain += p
            mine = confirmed.get(id(f), [])
            if _optimization(f.code) and updates:
                n, p = _step_figures(updates)
                near += n
                plain += p
            if mine:
                verdict = "CONFIRMED"
                reasons = [_event_reason(e, key) for e in mine] + near + plain
            elif any(not takers for _, takers in elsewhere.get(id(f), ())):
                verdict = "NEAR-MISS"  # an unclaimed value born on its lines: never SAFE there
                reasons = [_event_reason(e, key) + f" (`{e.op}`: not the op this rule is about)"
                           for e, takers in elsewhere[id(f)] if not takers] + near + plain
            elif near:
                verdict, reasons = "NEAR-MISS", near + plain
            elif risk:
                verdict, reasons = "AT-RISK", plain
            elif evs or any((key[0], line) in sites_run for line in lines):
                verdict, reasons = "SAFE", plain or ["ran; stayed finite"]
            elif ran(*key):
                # a SAFE here would vouch for a line that may never have run (a branch not taken)
                verdict, reasons = "NOT EXECUTED", ["its function ran, but no tensor op ran at this line"]
            else:
                verdict, reasons = "NOT EXECUTED", []
            reasons += [_event_reason(e, key) + f" (confirms {', '.join(t.code for t in takers)})"
                        for e, takers in elsewhere.get(id(f), ()) if takers]
            if reasons[:1] == ["ran; stayed finite"] and len(reasons) > 1:
                reasons[0] = "the ops this rule is about ran and stayed finite"
            verdicts.append(SiteVerdict(
                code=f.code, name=f.name, filename=key[0], line=f.span.line, column=f.span.column,
                message=f.message, verdict=verdict, reasons=_dedupe(reasons),
                at_risk=_dedupe(risk), events=[e.index for e in mine], evidence=evs,
                fix=(f.fix.message if f.fix else None) or f.hint))
    return verdicts, missed


def _event_reason(e: Event, key: tuple) -> str:
    where = f" ({e.phase}{', ' + e.param if e.param else ''})"
    if e.kind == "error":
        text = f"`{e.op}` raised an overflow error{where}: {e.message}"
    elif e.kind == "input":
        text = f"{e.value} already in an input{where}"
    else:
        text = f"{e.value} born in {e.op}{where}"
    if (e.filename, e.line) != key:
        when = f"in step {e.step + 1}" if e.phase == "step" else f"after step {e.step}"
        text += f" at {os.path.basename(e.filename or '?')}:{e.line} {when}"
    return text


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
