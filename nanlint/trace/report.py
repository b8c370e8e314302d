"""Rendering a ``TraceResult``: ``full`` (a table per site and the story of the first non-finite value) and
``json``.

JSON schema (``"schema": "nanlint-trace/1"``); floats that are not finite are written as the strings
``"nan"``, ``"inf"``, ``"-inf"`` so that the document stays valid JSON::

    {
      "schema": "nanlint-trace/1",
      "target": str, "args": [str], "project_root": str, "device": str|null, "dtype": str|null,
      "exit_code": 0|1|2|130|143,
      "run": {"status": "stopped"|"finished"|"exited"|"crashed"|"interrupted", "stop_reason": str|null,
              "steps_requested": int, "optimizer_steps": int, "backward_passes": int, "batches": int,
              "skipped_scaler_steps": int, "ops_watched": int, "seconds": float,
              "script_exit_code": int|null, "error": str|null, "traceback": str|null},
      "files_checked": [str],
      "sites": [{"code", "name", "filename", "line", "column", "message",
                 "verdict": "CONFIRMED"|"NEAR-MISS"|"AT-RISK"|"SAFE"|"NOT EXECUTED",
                 "reasons": [str], "at_risk": [str], "events": [int], "fix": str|null,
                 "evidence": [{"op", "phase", "calls", "dtype", "out_min", "out_max", "min_input",
                               "min_pos_input", "min_abs_denominator", "max_input", "saturated_share",
                               "max_abs_scalar"}]}],
      "events": [Event], "missed": [Event], "fills": [Event],
      "first_nonfinite": Event|null, "propagated": int,
      "propagation_path": [{"filename", "line", "op", "phase", "param", "value"}],
      "health": {"first_batch": {"min", "max", "absmax", "shapes", "nonfinite", "source", "floating",
                                 "tensors": [{"name", "dtype", "shape", "min", "max"}]}|null,
                 "module_outputs": {name: {"min", "max", "absmax", "calls"}},
                 "grad_norms": {name: float},
                 "updates": [{"step", "optimizer", "group", "lr", "ratio", "weight_norm", "update_norm"}],
                 "warnings": [str]},
      "redirects": [{"operation", "path", "to"}],
      "notes": [str]
    }

    Event = {"index": int, "kind": "origin"|"input"|"error"|"fill", "value": "nan"|"inf"|"-inf"|"+-inf",
             "op": str, "phase": "forward"|"backward"|"step", "filename": str|null, "line": int|null,
             "node": str|null, "param": str|null, "calibration": bool, "from_inf": bool,
             "message": str|null, "propagated": int, "step": int, "is_bug": bool,
             "figures": {str: float}}  # what the op was fed at birth (CPU): "smallest |denominator|": 0.0
"""
from __future__ import annotations

import json
import linecache
import math
import os
import re

from nanlint.trace import opkinds, report_until
from nanlint.trace.records import Event
from nanlint.trace.session import TraceResult

SCHEMA = "nanlint-trace/1"
FLOATING = frozenset({"float16", "bfloat16", "float32", "float64"})

ADVICE = {
    "log": "compute in log space (log_softmax, logsigmoid) or clamp first: x.clamp_min(eps).log()",
    "div": "keep the denominator away from 0: x / (d + eps), d.clamp_min(eps), or guard empty counts with clamp_min(1)",
    "sqrt": "sqrt(x + eps) or x.clamp_min(eps).sqrt(): the gradient of sqrt at 0 is infinite",
    "exp": "subtract the max first (logsumexp / softmax do), or clamp the exponent",
    "pow": "clamp the base away from 0 (negative exponents, fractional powers)",
    "mean": "a mean over an empty selection is 0/0: check the count before dividing",
    "step": "lower the learning rate, warm it up, or clip gradients (clip_grad_norm_)",
    "step-div": "the update divides by sqrt(v) + eps: with float16/bfloat16 parameters Adam's eps=1e-8 rounds to 0, "
                "so a parameter whose gradient is 0 gets 0/0; keep float32 weights (autocast + GradScaler) or raise "
                "eps (1e-4). With float32 parameters: lower the learning rate or clip gradients",
    "overflow": "the value overflowed its dtype: find what made the inputs this large (training health below: "
                "update-to-weight ratio, module output ranges), or compute in a wider dtype",
    "softmax": "a row where every entry is -inf (a mask that covers a whole row, e.g. an all-padding sequence) "
               "gives NaN: keep at least one unmasked position per row, or fill with torch.finfo(dtype).min",
    "nllloss": "a mean over 0 targets: every target of the batch equals ignore_index (or has weight 0), so the "
               "loss is 0/0; skip such batches, or use reduction='sum' divided by the count clamped to 1",
    "fill": "use torch.finfo(x.dtype).min instead of a hard-coded -1e9/-1e4 mask constant",
    "cast": "the value does not fit the dtype it is cast to (float16 holds |x| <= 65504): normalize or scale it "
            "before the cast, keep this tensor in float32, or use bfloat16 (float32's range)",
}


def _plain(value):
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if value != value else "inf" if value > 0 else "-inf"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_dict(r: TraceResult) -> dict:
    first = r.first_bug
    return _plain({
        "schema": SCHEMA, "target": r.target, "args": r.args, "project_root": r.project_root,
        "device": r.device, "dtype": r.dtype, "exit_code": r.exit_code,
        "run": {"status": r.status, "stop_reason": r.stop_reason, "steps_requested": r.steps_requested,
                "optimizer_steps": r.optimizer_steps, "backward_passes": r.backward_passes, "batches": r.batches,
                "skipped_scaler_steps": r.skipped_scaler_steps, "ops_watched": r.ops_watched,
                "seconds": round(r.seconds, 3), "script_exit_code": r.script_exit_code, "error": r.error,
                "traceback": r.script_traceback},
        "files_checked": r.files_checked,
        "sites": [v.to_dict() for v in r.verdicts],
        "events": [e.to_dict() for e in r.events], "missed": [e.to_dict() for e in r.missed],
        "fills": [e.to_dict() for e in r.fills],
        "first_nonfinite": first.to_dict() if first else None, "propagated": r.propagated,
        "propagation_path": r.propagation_path, "health": r.health.to_dict(), "redirects": r.redirects,
        "notes": r.notes,
    })


def render_json(r: TraceResult) -> str:
    return json.dumps(_plain(report_until.json_part(r, to_dict(r))), indent=2) + "\n"


def _rel(path: str | None) -> str:
    if not path:
        return "?"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def _where(e: Event) -> str:
    return f"{_rel(e.filename)}:{e.line}" if e.filename else "(no user line)"


def _source(filename: str | None, line: int | None) -> str:
    if not filename or not line:
        return ""
    return linecache.getline(filename, line).strip()


def _fmt(x) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _status_line(r: TraceResult) -> str:
    if r.status == "interrupted":
        how = f"interrupted by {r.stop_reason}" + (f" {r.interrupted_at}" if r.interrupted_at else "")
    elif r.status == "stopped":
        how = f"stopped after {r.stop_reason}"
    elif r.status == "finished":
        how = "the script finished"
    elif r.status == "exited":
        how = f"the script called sys.exit({r.error!r})" if r.error else f"the script called sys.exit({r.script_exit_code})"
    else:
        how = f"the script crashed: {(r.error or '').rstrip('.')}"
    return (f"  {how}; {r.ops_watched} ops watched in {r.seconds:.2f} s; device: {r.device or 'as the script chooses'}"
            f"; autocast: {r.dtype or 'off'}")


def _event_text(e: Event) -> str:
    what = {"origin": "born", "input": "already in an input", "error": "overflow error"}.get(e.kind, e.kind)
    extra = []
    if e.phase == "backward" and e.node:
        extra.append(f"backward of {e.node}")
    else:
        extra.append(e.phase)
    if e.param:
        extra.append(f"param {e.param}")
    if e.calibration:
        extra.append("GradScaler calibration: expected")
    text = f"{e.value} {what} in `{e.op}` ({', '.join(extra)})"
    if e.message:
        text += f": {e.message}"
    return text


def _ran_nothing(r: TraceResult) -> bool:
    """The script ended before anything was watched: the report is its error and the result, nothing else."""
    return not r.progressed and not r.ops_watched and not r.events


def notes_and_error(r: TraceResult) -> list[str]:
    """The report's notes and the script's own traceback, each a section when there is one."""
    out = []
    if r.notes:
        out += ["Notes", *[f"  - {n}" for n in r.notes], ""]
    if r.script_traceback:
        out += ["The script's error", *["  " + line for line in r.script_traceback.rstrip().splitlines()], ""]
    return out


def render_full(r: TraceResult) -> str:
    until = report_until.info(r)
    if until is not None and until["step"] is None:
        return report_until.render_clean(r)
    out = [f"nanlint trace {'--until-nan ' if until else ''}{r.target}{' ' + ' '.join(r.args) if r.args else ''}",
           _status_line(r), *report_until.headline(r), ""]
    replayed = getattr(r, "replayed", None)
    if replayed and replayed.get("bundle") and until is None:
        out[0] = f"nanlint replay {replayed['bundle']} {r.target}{' ' + ' '.join(r.args) if r.args else ''}"
    if _ran_nothing(r):
        return "\n".join(out + _short(r)) + "\n"
    out.append(_result_line(r))
    out.append("")
    out += _story(r)  # the answer first: where the first non-finite value was born, why, and the fix
    out.append("Sites flagged by the rules")
    if r.verdicts:
        for v in r.verdicts:
            out.append(f"  {v.verdict:<13} {_rel(v.filename)}:{v.line}:{v.column}  {v.code} {v.name}")
            src = _source(v.filename, v.line)
            if src:
                out.append(f"      | {src}")
            for reason in v.reasons:
                out.append(f"      - {reason}")
            for risk in v.at_risk:
                out.append(f"      - at risk in {risk}")
    else:
        out.append("  (none: the rules flag nothing in the files checked)")
    out.append("")
    out.append("Non-finite origins the rules missed")
    if r.missed:
        for e in r.missed:
            out.append(f"  {_where(e)}  {_event_text(e)}")
            src = _source(e.filename, e.line)
            if src:
                out.append(f"      | {src}")
    else:
        out.append("  (none)")
    calib = [e for e in r.events if e.calibration]
    if calib:
        out.append(f"  ({len(calib)} overflow(s) in scaled gradients on skipped GradScaler steps: calibration, not bugs)")
    if r.fills:
        out.append("")
        out.append("Intentional infinities (not bugs: constant fills, or absorbed before the loss): " + ", ".join(
            f"{e.value} by `{e.op}` at {_where(e)}" for e in r.fills[:5]) + (" ..." if len(r.fills) > 5 else ""))
    out.append("")
    out += _health(r)
    out += report_until.health_lines(r)
    if r.redirects:
        out.append("Files the script wrote, moved or deleted (redirected; your files are untouched)")
        for d in r.redirects:
            out.append(f"  {d['operation']:<10} {d['path']}" + (f" -> {d['to']}" if d["to"] else _UNDONE.get(d["operation"], " (skipped)")))
        out.append("")
    out += notes_and_error(r)
    out.append(_result_line(r))  # again at the end, where a CI log's tail shows it
    return "\n".join(out) + "\n"


def _interrupted_verdict(r: TraceResult) -> str:
    return f"interrupted by {r.stop_reason}" + (f" {r.interrupted_at}" if r.interrupted_at else "")


def _result_line(r: TraceResult) -> str:
    e = r.first_bug
    where = f": {e.value} born at {_where(e)} in `{e.op}` ({e.phase}, step {e.step + 1})" if e else ""
    if r.status == "interrupted":  # exit 130/143: what ran is reported, but the run did not end
        seen = f"; before that, a non-finite value was produced{where}" if e else \
            ("; no non-finite value was produced until then" if r.ops_watched else "")
        return f"Result: {_interrupted_verdict(r)}{seen} (exit {r.exit_code})"
    verdict = {0: "no non-finite value was produced", 1: "a non-finite value was produced",
               2: "the script could not run a step"}[r.exit_code]
    return f"Result: {verdict}{where} (exit {r.exit_code})"


def _short(r: TraceResult) -> list[str]:
    out = []
    if r.verdicts:
        out += [f"{len(r.verdicts)} site(s) flagged by the rules in {len(r.files_checked)} file(s); none ran "
                "(`nanlint check` lists them)", ""]
    if r.script_traceback:
        out.append("The script's error")
        out += ["  " + line for line in r.script_traceback.rstrip().splitlines()]
        out.append("")
    verdict = {0: "the script ended before any training step or batch: nothing was checked",
               1: "a non-finite value was produced", 2: "the script could not run a step"}.get(r.exit_code, "")
    if r.exit_code == 2 and not r.error:
        verdict = "no step and no tensor op was watched: nothing was checked"
    if r.status == "interrupted":
        verdict = f"{_interrupted_verdict(r)}: nothing was checked"
    out.append(f"Result: {verdict} (exit {r.exit_code})")
    return out


_UNDONE = {"mkdir": " (created by the script, removed after the run: empty)",
           "remove": " (the script saw it deleted; your file was left in place, untouched)",
           "rmdir": " (the script saw it deleted; your folder was left in place, untouched)",
           "rmtree": " (the script saw it deleted; your folder and its files were left in place, untouched)",
           "mkdir-kept": " (created by the script, kept: something wrote there)"}


def _story(r: TraceResult) -> list[str]:
    e = r.first_bug
    if e is None:
        return ["First non-finite value", "  none: every watched value stayed finite" +
                (" (apart from intentional fills)" if r.fills else ""), ""]
    out = ["First non-finite value"]
    phase = {"forward": "the forward pass", "backward": "the backward pass", "step": "the optimizer step"}[e.phase]
    out.append(f"  born:   {e.value} at {_where(e)} in `{e.op}` during {phase} of step {e.step + 1}"
               + (f" (autograd node {e.node})" if e.node else "") + (f", parameter {e.param}" if e.param else "")
               + (f": {e.message}" if e.message else ""))
    src = _source(e.filename, e.line)
    if src:
        out.append(f"          | {src}")
    if e.kind == "input":
        out.append("          it was already in a tensor the script did not compute while watched (data, parameters)")
    if e.figures:
        out.append("  why:    " + "; ".join(f"{k} {_fmt(v)}" for k, v in e.figures.items()))
    path = r.propagation_path
    if path:
        stops: list[list] = []  # [phase, where, ops]: consecutive results at one line form one stop
        for p in path:
            where = f"{_rel(p['filename'])}:{p['line']}" if p["filename"] else "?"
            op = p["op"] + (f" {p['param']}" if p["param"] else "")
            if stops and stops[-1][:2] == [p["phase"], where]:
                if op not in stops[-1][2]:
                    stops[-1][2].append(op)
            else:
                stops.append([p["phase"], where, [op]])
        labels = [f"{ph} {where} ({', '.join(ops[:3])}{', ...' if len(ops) > 3 else ''})" for ph, where, ops in stops]
        out.append(f"  spread: through {r.propagated} later op results: " + " -> ".join(labels[:5])
                   + (" -> ..." if len(labels) > 5 else ""))
    if not path and not r.propagated:
        out.append("  spread: nowhere: every later result stayed finite (torch.where or a selection discarded it)")
    rules = [v for v in r.verdicts if e.index in v.events]
    if rules:
        out.append("  rule:   " + ", ".join(
            f"{v.code} ({v.name}) flags " + ("this line" if (v.filename, v.line) == (e.filename, e.line)
                                             else f"{_rel(v.filename)}:{v.line}") + ": CONFIRMED" for v in rules))
    else:
        out.append("  rule:   no rule flags this op at this line: a gap in the static rules")
    op = opkinds.normalize(e.op)
    key = ("step-div" if any(k in op for k in ("div", "sqrt")) else "step") if e.phase == "step" else "fill" if e.kind == "error" else next(
        (k for k in ("softmax", "nllloss", "log", "div", "sqrt", "exp", "pow", "mean") if k in op), None)
    if key is None and op in opkinds.LOG:
        key = "log"
    if e.value != "nan" and e.kind == "origin" and (op in opkinds.OVERFLOW_ARITH or op == "pow"):
        key = "overflow"
    if e.value != "nan" and e.kind == "origin" and _is_cast(e.op):
        key = "cast"
    own = next((v.fix for v in rules if v.fix and (v.filename, v.line) == (e.filename, e.line)), None)
    # the confirmed finding's own fix at this line is exact where the generic advice is not
    advice = own or (ADVICE.get(key) if key else None) or next((v.fix or v.message for v in rules), None)
    if advice:
        out.append(f"  to do:  {advice}")
    for v in rules:
        if v.fix and v.fix != advice:
            out.append(f"  also:   {v.code} at {_rel(v.filename)}:{v.line}: {v.fix}")
    out.append("")
    return out


def _is_cast(op: str) -> bool:
    """A cast as the monitor names it (spelling.py): ``.half()``, ``autocast to float16 (input of linear)``."""
    return op.startswith(".") or op.startswith("autocast to ") or op.startswith("cast to ") or "(cast to " in op


def _health(r: TraceResult) -> list[str]:
    h = r.health
    out = ["Training health"]
    if h.first_batch:
        b = h.first_batch
        out.append(f"  first batch ({b['source']}): min {_fmt(b['min'])}, max {_fmt(b['max'])}, |x|max {_fmt(b['absmax'])}")
        fed = b.get("tensors") or []
        if len(fed) > 1 or any(t["dtype"] not in FLOATING for t in fed):
            # several tensors (model(**batch)) or token ids: each tensor by name
            for t in fed[:12]:
                shape = "x".join(map(str, t["shape"])) or "scalar"
                values = f" in [{_fmt(t['min'])}, {_fmt(t['max'])}]" if t["min"] is not None else ""
                out.append(f"    {t['name']}: {t['dtype']} {shape}{values}")
            if len(fed) > 12:
                out.append(f"    ... {len(fed) - 12} more in the JSON report")
    if h.module_outputs:
        out.append("  module outputs (min, max, |x|max):")
        width = max(28, *(len(n) + 1 for n in list(h.module_outputs)[:20]))
        for name, m in list(h.module_outputs.items())[:20]:
            out.append(f"    {name:<{width}} {_fmt(m['min']):>11} {_fmt(m['max']):>11} {_fmt(m['absmax']):>11}")
        if len(h.module_outputs) > 20:
            out.append(f"    ... {len(h.module_outputs) - 20} more in the JSON report")
    if h.grad_norms:
        out.append("  gradient norm per module:")
        width = max(28, *(len(n) + 1 for n in list(h.grad_norms)[:20]))
        for name, norm in list(h.grad_norms.items())[:20]:
            out.append(f"    {name:<{width}} {_fmt(norm):>11}")
    out += _update_lines(h.updates)
    out += _warning_lines(h.warnings)
    if len(out) == 1:
        out.append("  (no module ran)")
    out.append("")
    return out


def _update_lines(updates: list[dict]) -> list[str]:
    """One line per optimizer param group: a single step as it is, several as their range."""
    groups: dict[tuple, list[dict]] = {}
    for u in updates:
        groups.setdefault((u["optimizer"], u["group"]), []).append(u)
    out = []
    for (optimizer, group), us in groups.items():
        lrs = sorted({_fmt(u["lr"]) for u in us})
        lr = lrs[0] if len(lrs) == 1 else f"{lrs[0]}..{lrs[-1]}"
        if len(us) == 1:
            out.append(f"  step {us[0]['step']} {optimizer} group {group}: lr {lr}, ||dW||/||W|| = {_fmt(us[0]['ratio'])}")
            continue
        ratios = [u["ratio"] for u in us]
        finite = [x for x in ratios if x == x]
        span = f"{_fmt(min(finite))}..{_fmt(max(finite))}" if finite else "nan"
        out.append(f"  steps {us[0]['step']}-{us[-1]['step']} {optimizer} group {group} ({len(us)} updates): lr {lr}, "
                   f"||dW||/||W|| = {span}" + (" (some nan)" if len(finite) < len(ratios) else ""))
    return out


def _warning_lines(warnings: list[str]) -> list[str]:
    """Each warning once; the same warning at several steps says how many times and from which step."""
    seen: dict[str, list[str]] = {}
    for w in warnings:
        key = re.sub(r"^step \d+: ", "", w)
        key = re.sub(r"\d+(\.\d+)?(e[-+]?\d+)?", "#", key)
        seen.setdefault(key, []).append(w)
    out = []
    for ws in seen.values():
        out.append(f"  ! {ws[0]}" + (f" (and {len(ws) - 1} more like it at later steps)" if len(ws) > 1 else ""))
    return out


def _schema() -> dict:
    """The JSON report's schema (JSON Schema draft 2020-12), the machine-checked form of the docstring."""
    num = {"type": ["number", "string", "null"]}  # non-finite floats are strings
    text = {"type": ["string", "null"]}
    event = {"type": "object", "required": ["index", "kind", "value", "op", "phase", "filename", "line", "node", "param",
                                            "calibration", "from_inf", "message", "propagated", "step", "is_bug"],
             "properties": {"index": {"type": "integer"}, "kind": {"enum": ["origin", "input", "error", "fill"]},
                            "value": {"enum": ["nan", "inf", "-inf", "+-inf"]}, "op": {"type": "string"},
                            "phase": {"enum": ["forward", "backward", "step"]}, "filename": text,
                            "line": {"type": ["integer", "null"]}, "node": text, "param": text,
                            "calibration": {"type": "boolean"}, "from_inf": {"type": "boolean"}, "message": text,
                            "propagated": {"type": "integer"}, "step": {"type": "integer"},
                            "figures": {"type": "object", "additionalProperties": num},
                            "is_bug": {"type": "boolean"}}}
    evidence_keys = ["op", "phase", "calls", "dtype", "out_min", "out_max", "min_input", "min_pos_input",
                     "min_abs_denominator", "max_input", "saturated_share", "max_abs_scalar"]
    site = {"type": "object",
            "required": ["code", "name", "filename", "line", "column", "message", "verdict", "reasons", "at_risk",
                         "events", "evidence"],
            "properties": {"code": {"type": "string"}, "line": {"type": "integer"}, "column": {"type": "integer"},
                           "verdict": {"enum": ["CONFIRMED", "NEAR-MISS", "AT-RISK", "SAFE", "NOT EXECUTED"]},
                           "reasons": {"type": "array", "items": {"type": "string"}},
                           "at_risk": {"type": "array", "items": {"type": "string"}},
                           "events": {"type": "array", "items": {"type": "integer"}},
                           "fix": {"type": ["string", "null"]},
                           "evidence": {"type": "array", "items": {
                               "type": "object", "required": evidence_keys,
                               "properties": {k: num for k in evidence_keys[4:]}}}}}
    run_keys = ["status", "stop_reason", "steps_requested", "optimizer_steps", "backward_passes", "batches",
                "skipped_scaler_steps", "ops_watched", "seconds", "script_exit_code", "error", "traceback"]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["schema", "target", "args", "project_root", "device", "dtype", "exit_code", "run",
                     "files_checked", "sites", "events", "missed", "fills", "first_nonfinite", "propagated",
                     "propagation_path", "health", "redirects", "notes"],
        "properties": {
            "schema": {"const": SCHEMA}, "exit_code": {"enum": [0, 1, 2, 130, 143]},
            "run": {"type": "object", "required": run_keys,
                    "properties": {"status": {"enum": ["stopped", "finished", "exited", "crashed", "interrupted"]}}},
            "sites": {"type": "array", "items": site},
            "events": {"type": "array", "items": event}, "missed": {"type": "array", "items": event},
            "fills": {"type": "array", "items": event},
            "first_nonfinite": {"anyOf": [event, {"type": "null"}]},
            "propagation_path": {"type": "array", "items": {
                "type": "object", "required": ["filename", "line", "op", "phase", "param", "value"]}},
            "health": {"type": "object", "required": ["first_batch", "module_outputs", "grad_norms", "updates", "warnings"],
                       "properties": {"grad_norms": {"type": "object", "additionalProperties": num},
                                      "updates": {"type": "array", "items": {
                                          "type": "object",
                                          "required": ["step", "optimizer", "group", "lr", "ratio", "weight_norm", "update_norm"]}}}},
            "redirects": {"type": "array", "items": {"type": "object", "required": ["operation", "path", "to"]}},
            "notes": {"type": "array", "items": {"type": "string"}},
        },
    }


JSON_SCHEMA = _schema()
