"""Applying fixes: text edits, non-overlapping, applied back to front; repeated until nothing changes."""
from __future__ import annotations

import difflib

from nanlint.findings import Applicability, Edit, Finding
from nanlint.source import line_starts


def applicable(findings: list[Finding], unsafe: bool) -> list[Finding]:
    return [f for f in findings if f.fix is not None and (unsafe or f.fix.applicability is Applicability.SAFE)]


def apply_edits(text: str, findings: list[Finding], unsafe: bool = False) -> tuple[str, int]:
    """Apply the fixes of ``findings`` to ``text``; returns the new text and how many fixes were applied.
    A fix overlapping one applied before is left for the next round."""
    starts = line_starts(text)

    def offset(line: int, column: int) -> int:
        if not 1 <= line <= len(starts):
            raise ValueError(f"fix edit on line {line}, outside the text")
        return min(starts[line - 1] + column - 1, len(text))

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
    def split(text: str) -> list[str]:
        starts = line_starts(text)
        out = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
        return [line for line in out if line]

    diff = list(difflib.unified_diff(split(before), split(after), f"a/{filename}", f"b/{filename}"))
    # a last line without a newline would run into the next hunk header
    return "".join(line if line.endswith(("\n", "\r")) else line + "\n\\ No newline at end of file\n" for line in diff)
