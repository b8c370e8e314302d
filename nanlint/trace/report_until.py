"""The ``--until-nan`` parts of a report: the headline with the failing step, the run's health in a few lines
(text) and the curves (JSON, ``until_nan``). ``report.py`` calls these when a result carries ``until_nan``.

JSON, added to ``nanlint-trace/1`` (in an until-nan or replay report every Event's ``step`` is the 1-based
optimizer step during which it was born; a replay report has ``"replay": {"start", "step", "bundle"}``)::

    "until_nan": {"step": int|null, "detected": "loss"|"gradients"|"parameters"|...|null,
                  "steps_watched": int, "seconds": float, "max_steps": int|null, "sample_every": int,
                  "bundle": str|null, "html": str|null, "reproduced": bool|null,
                  "health": {"steps": [int], "loss": [float|null], "grad_norm": [float|null],
                             "ratio_steps": [int], "update_ratio": [float|null],
                             "act_steps": [int], "activations": {module: [[step, float]]}}}
"""
from __future__ import annotations

import math


def info(r) -> dict | None:
    return getattr(r, "until_nan", None)


def headline(r) -> list[str]:
    u = info(r)
    if u is None:
        return []
    watched = f"  watched {u['steps_watched']} optimizer step{'s' if u['steps_watched'] != 1 else ''} under the cheap watch in {u['seconds']:.2f} s"
    if u["step"] is None:
        return [watched + "; no step made a non-finite loss, gradient or parameter"]
    what = {"loss": "a non-finite loss", "gradients": "non-finite gradients",
            "parameters": "non-finite parameters after the optimizer step",
            "crash": "the script raised in it; replayed, a non-finite value was born"}.get(u["detected"], u["detected"])
    lines = [watched, f"  First non-finite step: {u['step']} ({what}); that step was re-run under the full monitor"]
    if u.get("bundle"):
        lines.append(f"  failing step saved to {u['bundle']} (nanlint replay {u['bundle']} SCRIPT)")
    return lines


def _finite(values) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def health_lines(r) -> list[str]:
    u = info(r)
    if u is None:
        return []
    h = u["health"]
    out = ["Run health (cheap watch)"]
    loss, grad = _finite(h["loss"]), _finite(h["grad_norm"])
    if loss:
        out.append(f"  loss: first {loss[0]:.4g}, last {loss[-1]:.4g}, min {min(loss):.4g}, max {max(loss):.4g}")
    if grad:
        out.append(f"  gradient norm: last {grad[-1]:.4g}, max {max(grad):.4g}")
    ratio = _finite(h["update_ratio"])
    if ratio:
        out.append(f"  update-to-weight ratio (every {u['sample_every']} steps): last {ratio[-1]:.3g}, max {max(ratio):.3g}")
    for name, points in sorted(h["activations"].items()):
        values = _finite(v for _, v in points)
        if values:
            out.append(f"  largest |activation| of {name}: max {max(values):.4g}")
    if u.get("html"):
        out.append(f"  curves: {u['html']}")
    return out + [""] if len(out) > 1 else []


def json_part(r, data: dict) -> dict:
    """Add ``until_nan`` (or ``replay``: ``{"start", "step", "bundle"}``) and make every Event's step 1-based."""
    u = info(r)
    if u is None and not getattr(r, "replayed", None):
        return data
    for key in ("events", "missed", "fills"):
        for e in data.get(key) or []:
            e["step"] = e["step"] + 1
    if data.get("first_nonfinite"):
        data["first_nonfinite"]["step"] += 1
    if u is None:
        data["replay"] = r.replayed
    else:
        data["until_nan"] = u
    return data


def render_clean(r) -> str:
    """A watched run that ended without a non-finite step (or did not run a step): no replay, a short report."""
    from nanlint.trace.report import _result_line, _status_line, notes_and_error

    out = [f"nanlint trace --until-nan {r.target}{' ' + ' '.join(r.args) if r.args else ''}",
           _status_line(r).replace("0 ops watched", "cheap watch").replace("; autocast: off", ""), *headline(r), ""]
    out += health_lines(r)
    out += notes_and_error(r)
    out.append(_result_line(r).replace("the script could not run a step", "the script failed" if r.error or r.script_exit_code else
                                       "no optimizer step was watched"))
    return "\n".join(out) + "\n"
