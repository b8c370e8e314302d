"""The default format: location, code, message, the source line with a caret under the span, the fix hint."""
from __future__ import annotations

from nanlint.findings import Applicability, Finding
from nanlint.report.locations import Locations
from nanlint.source import lines as source_lines

BOLD, RED, CYAN, BLUE, RESET = "\033[1m", "\033[31m", "\033[36m", "\033[34m", "\033[0m"


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{RESET}" if color else text


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    out = []
    split: dict[str, list[str]] = {}
    where = Locations(sources)
    for f in findings:
        location = _paint(where.prefix(f), BOLD, color)
        fixable = " [*]" if f.fix is not None and f.fix.applicability is Applicability.SAFE else ""
        out.append(f"{location} {_paint(f.code, RED + BOLD, color)}{fixable} {where.message(f)}\n")
        if f.filename not in split:
            split[f.filename] = source_lines(sources.get(f.filename) or "")
        lines = split[f.filename]
        if 1 <= f.line <= len(lines):
            text = lines[f.line - 1].expandtabs(1)  # one column per character, as in the span
            gutter = str(where.row(f))
            start = min(f.column - 1, len(text))
            end = f.span.end_column - 1 if f.span.end_line == f.line else len(text)
            width = max(1, end - start)
            pad = " " * len(gutter)
            out.append(_paint(f"{pad} |\n", BLUE, color))
            out.append(_paint(f"{gutter} | ", BLUE, color) + text + "\n")
            out.append(_paint(f"{pad} | ", BLUE, color) + " " * start + _paint("^" * width, RED, color) + "\n")
        if f.fix is not None:
            tag = "" if f.fix.applicability is Applicability.SAFE else " (unsafe, with --unsafe-fixes)"
            out.append(_paint(f"  = fix{tag}: {f.fix.message}\n", CYAN, color))
        if f.hint:
            out.append(_paint(f"  = help: {f.hint}\n", CYAN, color))
        out.append("\n")
    return "".join(out)
