"""The run's health as one self-contained HTML page: inline SVG curves (loss, gradient norm, update-to-weight
ratio, largest activation per top-level module) with the first non-finite step marked. No network, no
JavaScript: it opens from a CI artifact or a mail attachment as it is.

Each curve is ``<polyline class="curve" data-series=NAME data-points=N>``; the marked step is
``<line class="nan-step" data-step=K>`` in every panel (tests read them)."""
from __future__ import annotations

import html as _html
import math

MARKER = "<!-- nanlint-trace-health -->"  # a page nanlint wrote (it may write over its own page, never a user's)
W, H, LEFT, RIGHT, TOP, BOTTOM = 720, 220, 70, 16, 28, 30
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"]


def _finite_points(xs, ys) -> list[tuple[float, float]]:
    return [(x, y) for x, y in zip(xs, ys) if isinstance(y, (int, float)) and math.isfinite(y)]


def _panel(title: str, series: dict[str, list[tuple[float, float]]], mark: int | None, steps: int) -> str:
    points = [p for ps in series.values() for p in ps]
    ys = [y for _, y in points]
    log = bool(ys) and min(ys) > 0 and max(ys) / min(ys) > 100
    tf = (lambda v: math.log10(v)) if log else (lambda v: v)  # noqa: E731
    lo, hi = (min(map(tf, ys)), max(map(tf, ys))) if ys else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 1, hi + 1
    x_max = max([steps, mark or 0, *(x for x, _ in points)] or [1])
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def sx(x):
        return LEFT + (x - 1) / max(x_max - 1, 1) * pw

    def sy(y):
        return TOP + (1 - (tf(y) - lo) / (hi - lo)) * ph

    out = [f'<svg class="panel" xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f'<text x="{LEFT}" y="18" class="title">{_html.escape(title)}{" (log scale)" if log else ""}</text>',
           f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" class="frame"/>']
    for i in range(5):  # y ticks
        v = lo + (hi - lo) * i / 4
        y = TOP + (1 - i / 4) * ph
        label = f"{10 ** v:.3g}" if log else f"{v:.3g}"
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" class="tick" text-anchor="end">{label}</text>')
    for i in range(5):  # x ticks
        x = 1 + (x_max - 1) * i / 4
        out.append(f'<text x="{sx(x):.1f}" y="{H - 10}" class="tick" text-anchor="middle">{x:.0f}</text>')
    if not points:
        out.append(f'<text x="{LEFT + 10}" y="{TOP + ph / 2:.0f}" class="tick">no finite values recorded</text>')
    for i, (name, ps) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in ps)
        out.append(f'<polyline class="curve" data-series="{_html.escape(name)}" data-points="{len(ps)}" '
                   f'fill="none" stroke="{color}" stroke-width="1.5" points="{coords}"/>')
        if len(series) > 1:
            out.append(f'<text x="{W - RIGHT - 4}" y="{TOP + 14 + 13 * i}" class="legend" text-anchor="end" '
                       f'fill="{color}">{_html.escape(name)}</text>')
    if mark is not None:
        x = sx(mark)
        out.append(f'<line class="nan-step" data-step="{mark}" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + ph}" '
                   'stroke="#d62728" stroke-width="2" stroke-dasharray="5,3"/>')
        anchor, dx = ("end", -4) if x > LEFT + pw * 0.7 else ("start", 4)
        out.append(f'<text x="{x + dx:.1f}" y="{TOP + 12}" class="mark" text-anchor="{anchor}">'
                   f'first non-finite: step {mark}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render(info: dict, title: str) -> str:
    h, mark = info["health"], info.get("step")
    steps = max([info.get("steps_watched") or 0, *(h["steps"] or [0])])
    panels = [
        _panel("loss", {"loss": _finite_points(h["steps"], h["loss"])}, mark, steps),
        _panel("gradient norm", {"grad_norm": _finite_points(h["steps"], h["grad_norm"])}, mark, steps),
        _panel(f"update-to-weight ratio ||dW||/||W|| (every {info.get('sample_every', 1)} steps)",
               {"update_ratio": _finite_points(h["ratio_steps"], h["update_ratio"])}, mark, steps),
        _panel("largest |activation| per top-level module",
               {name: _finite_points([s for s, _ in pts], [v for _, v in pts]) for name, pts in sorted(h["activations"].items())},
               mark, steps),
    ]
    head = (f"first non-finite step: {mark} ({_html.escape(str(info.get('detected')))})" if mark is not None
            else f"no non-finite step in {steps} watched steps")
    return "\n".join([
        "<!DOCTYPE html>", MARKER, '<html lang="en"><head><meta charset="utf-8">',
        f"<title>nanlint: {_html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:16px;color:#222}svg{display:block;margin:8px 0}"
        ".title{font-size:13px;font-weight:bold}.tick,.legend{font-size:10px}.mark{font-size:11px;fill:#d62728}"
        ".frame{fill:none;stroke:#bbb}h1{font-size:18px}</style></head><body>",
        f"<h1>nanlint trace --until-nan {_html.escape(title)}</h1>", f'<p class="headline">{head}</p>',
        *panels, "</body></html>", ""])


def write(path: str, info: dict, title: str) -> str | None:
    """Write the page unless ``path`` is a file nanlint did not write; returns why not, or None."""
    import os

    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                start = f.read(200)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        if MARKER not in start:
            return f"{path} exists and nanlint did not write it: the health page was not written"
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(info, title))
    except OSError as exc:
        return f"cannot write {path}: {exc.strerror or exc}"
    return None
