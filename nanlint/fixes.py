"""Applying fixes: text edits, non-overlapping, applied back to front; repeated until nothing changes."""
from __future__ import annotations

import difflib

from nanlint.findings import Applicability, Edit, Finding


def _offsets(text: str) -> list[int]:
    starts, total = [0], 0
    for line in text.splitlines(keepends=True):
        total += len(line)
        starts.append(total)
    return starts


def applicable(findings: list[Finding], unsafe: bool) -> list[Finding]:
    return [f for f in findings if f.fix is not None and (unsafe or f.fix.applicability is Applicability.SAFE)]


def apply_edits(text: str, findings: list[Finding], unsafe: bool = False) -> tuple[str, int]:
    """Apply the fixes of ``findings`` to ``text``; returns the new text and how many fixes were applied.
    A fix overlapping one applied before is left for the next round."""
    starts = _offsets(text)

    def offset(line: int, column: int) -> int:
        return starts[line - 1] + column - 1

    chosen: list[tuple[int, int, Edit]] = []
    applied = 0
    for finding in sorted(applicable(findings, unsafe), key=Finding.sort_key):
        ranges = [(offset(e.span.line, e.span.column), offset(e.span.end_line, e.span.end_column), e) for e in finding.fix.edits]
        if any(a < end and start < b for a, b, _ in ranges for start, end, _ in chosen):
            continue
        chosen.extend(ranges)
        applied += 1
    for start, end, edit in sorted(chosen, key=lambda r: r[0], reverse=True):
        text = text[:start] + edit.content + text[end:]
    return text, applied


def unified_diff(filename: str, before: str, after: str) -> str:
    return "".join(
        difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), f"a/{filename}", f"b/{filename}")
    )
