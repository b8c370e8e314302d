"""Applying fixes: text edits, non-overlapping, applied back to front; repeated until nothing changes."""
from __future__ import annotations

import difflib
import os

from nanlint.findings import Applicability, Edit, Finding
from nanlint.source import SourceText, line_starts


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


def _patch_lines(text):
    """Lines as ``patch`` and ``diff`` read them: ended by ``\n`` only (a lone ``\r`` is part of the line,
    so a CR-only file is one line), each keeping its ending."""
    newline = "\n" if isinstance(text, str) else b"\n"
    out = text.split(newline)
    last = out.pop()
    lines = [line + newline for line in out]
    if last:
        lines.append(last)
    return lines


def _mark_missing_newlines(diff: list, newline, marker):
    # a last line without a newline would run into the next hunk header (or the next file of the patch)
    return [line if line.endswith(newline) else line + newline + marker for line in diff]


def unified_diff(filename: str, before: str, after: str) -> str:
    """The fixes to ``filename`` as a unified diff of its text, lines split at ``\n`` as ``patch`` splits
    them (CRLF lines keep their ``\r``; a CR-only file is a single line)."""
    diff = list(difflib.unified_diff(_patch_lines(before), _patch_lines(after), f"a/{filename}", f"b/{filename}", lineterm="\n"))
    return "".join(_mark_missing_newlines(diff, "\n", "\\ No newline at end of file\n"))


def diff_bytes(filename: str, before: bytes, after: bytes) -> bytes:
    """A unified diff of two versions of a file's bytes, as ``diff -u`` writes it (without dates): what
    ``patch -p1`` applies to turn ``before`` into ``after``."""
    name = os.fsencode(filename)
    diff = list(difflib.diff_bytes(difflib.unified_diff, _patch_lines(before), _patch_lines(after), b"a/" + name, b"b/" + name, lineterm=b"\n"))
    return b"".join(_mark_missing_newlines(diff, b"\n", b"\\ No newline at end of file\n"))


def encode(original: SourceText, text: str) -> bytes:
    """The bytes ``source.write`` puts on disk for ``text``: the file's encoding, its BOM if it had one.
    (Characters the encoding cannot hold, which ``write`` refuses, come out backslash-escaped.)"""
    data = text.encode(original.encoding, errors="backslashreplace")
    return b"\xef\xbb\xbf" + data if original.bom else data


def fix_diff(filename: str, original: SourceText, before: str, after: str) -> bytes:
    """What ``--diff`` prints for one file: the difference between the bytes the file has and the bytes
    ``--fix`` would write, in the file's own encoding and line endings (to be written to stdout's binary
    stream, not through a text stream that would re-encode it as UTF-8)."""
    return diff_bytes(filename, encode(original, before), encode(original, after))
