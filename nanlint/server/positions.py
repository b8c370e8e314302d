"""Positions between nanlint and an LSP client.

nanlint's spans count lines from 1 and columns from 1 in characters (code points), the end column exclusive;
LSP counts both from 0, and its ``character`` in the code units of the negotiated ``positionEncoding``:
UTF-16 unless the client offers another (a character outside the Basic Multilingual Plane, an emoji, is
two UTF-16 units, four UTF-8 ones). Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` in both, as in
:data:`nanlint.source.LINE_BREAK`. Nothing here needs pygls."""
from __future__ import annotations

import bisect

from nanlint.findings import Span
from nanlint.source import LINE_BREAK, line_starts

UTF8, UTF16, UTF32 = "utf-8", "utf-16", "utf-32"


def _units(char: str, encoding: str) -> int:
    point = ord(char)
    if encoding == UTF32:
        return 1
    if encoding == UTF8:
        return 1 if point < 0x80 else 2 if point < 0x800 else 3 if point < 0x10000 else 4
    return 2 if point > 0xFFFF else 1


def lines(text: str) -> list[str]:
    """The lines of ``text`` without their endings, split where nanlint's spans split them."""
    return LINE_BREAK.split(text)


def to_client(line: str, column: int, encoding: str = UTF16) -> int:
    """The LSP ``character`` of the 0-based code point index ``column`` in ``line``."""
    column = max(0, min(column, len(line)))
    if encoding == UTF32:
        return column
    return sum(_units(c, encoding) for c in line[:column])


def from_client(line: str, character: int, encoding: str = UTF16) -> int:
    """The 0-based code point index in ``line`` of the LSP ``character``; one inside a character (half of
    a surrogate pair) counts as that character's start, one past the end as the end."""
    if encoding == UTF32:
        return max(0, min(character, len(line)))
    units = 0
    for index, char in enumerate(line):
        units += _units(char, encoding)
        if units > character:
            return index
    return len(line)


def position(text_lines: list[str], line: int, column: int, encoding: str = UTF16) -> tuple[int, int]:
    """The LSP (line, character) of nanlint's 1-based ``line`` and ``column``, clamped to the text."""
    if not text_lines:
        return 0, 0
    if line > len(text_lines):
        return len(text_lines) - 1, to_client(text_lines[-1], len(text_lines[-1]), encoding)
    index = max(line - 1, 0)
    return index, to_client(text_lines[index], column - 1, encoding)


def span_range(text_lines: list[str], span: Span, encoding: str = UTF16) -> tuple[tuple[int, int], tuple[int, int]]:
    """The LSP range (start, end) of ``span``."""
    return position(text_lines, span.line, span.column, encoding), position(text_lines, span.end_line, span.end_column, encoding)


def from_client_position(text_lines: list[str], line: int, character: int, encoding: str = UTF16) -> tuple[int, int]:
    """nanlint's 1-based (line, column) of an LSP position."""
    if not text_lines:
        return 1, 1
    if line >= len(text_lines):
        return len(text_lines), len(text_lines[-1]) + 1
    line = max(line, 0)
    return line + 1, from_client(text_lines[line], character, encoding) + 1


def offset_position(text: str, starts: list[int], offset: int, encoding: str = UTF16) -> tuple[int, int]:
    """The LSP (line, character) of a code point offset into ``text`` (``starts`` from
    :func:`nanlint.source.line_starts`)."""
    index = bisect.bisect_right(starts, offset) - 1
    end = starts[index + 1] if index + 1 < len(starts) else len(text)
    line = LINE_BREAK.sub("", text[starts[index]:end])
    return index, to_client(line, offset - starts[index], encoding)


def minimal_replacement(before: str, after: str, encoding: str = UTF16) -> tuple[tuple[int, int], tuple[int, int], str] | None:
    """One edit (start, end, new text) that turns ``before`` into ``after``: the differing middle, after
    their common start and before their common end. None when they are equal."""
    if before == after:
        return None
    prefix = 0
    limit = min(len(before), len(after))
    while prefix < limit and before[prefix] == after[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and before[-1 - suffix] == after[-1 - suffix]:
        suffix += 1
    # never split a \r\n: positions inside a line ending are not defined
    if 0 < prefix < len(before) and before[prefix - 1] == "\r" and before[prefix] == "\n":
        prefix -= 1
    end = len(before) - suffix
    if 0 < end < len(before) and before[end - 1] == "\r" and before[end] == "\n":
        suffix -= 1
        end += 1
    starts = line_starts(before)
    return (
        offset_position(before, starts, prefix, encoding),
        offset_position(before, starts, end, encoding),
        after[prefix:len(after) - suffix],
    )
