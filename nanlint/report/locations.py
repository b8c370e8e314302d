"""Where a finding is, as the user counts: ``file:line:col``, or in a notebook ``file:cell N:row:col``.

Findings keep the positions of the text that was analysed (for a notebook, its code cells joined, each after
a marker line); this turns them into cell and row for display, from the same text."""
from __future__ import annotations

import bisect
import re

from nanlint import notebook
from nanlint.findings import Finding


class Locations:
    def __init__(self, sources: dict[str, str]):
        self.sources = sources
        self._cells: dict[str, tuple[list[int], list[int]]] = {}

    def point(self, filename: str, line: int) -> tuple[int | None, int]:
        """(cell number or None, row) of ``line`` in ``filename``."""
        if not notebook.is_notebook(filename):
            return None, line
        if filename not in self._cells:
            offsets = sorted((start, cell) for cell, start in notebook.cell_offsets(self.sources.get(filename) or "").items())
            self._cells[filename] = ([start for start, _ in offsets], [cell for _, cell in offsets])
        starts, numbers = self._cells[filename]
        at = bisect.bisect_left(starts, line) - 1
        if at < 0:
            return None, line
        return numbers[at], line - starts[at]

    def message(self, f: Finding) -> str:
        """The message, its ``line N`` references turned into ``cell C, line R`` in a notebook."""
        if not notebook.is_notebook(f.filename):
            return f.message
        return _LINE.sub(lambda m: self._line_text(f.filename, int(m.group(1))), f.message)

    def _line_text(self, filename: str, line: int) -> str:
        cell, row = self.point(filename, line)
        return f"line {row}" if cell is None else f"cell {cell}, line {row}"

    def row(self, f: Finding) -> int:
        return self.point(f.filename, f.span.line)[1]

    def cell(self, f: Finding) -> int | None:
        return self.point(f.filename, f.span.line)[0]

    def prefix(self, f: Finding) -> str:
        """``file:line:col:`` or ``file:cell N:row:col:``."""
        cell, row = self.point(f.filename, f.span.line)
        where = f"cell {cell}:" if cell is not None else ""
        return f"{f.filename}:{where}{row}:{f.span.column}:"

    def region(self, filename: str, line: int, column: int, end_line: int, end_column: int) -> tuple[int, int, int, int]:
        """A span's rows in its cell (an end in a later cell is cut at the cell's end line)."""
        cell, row = self.point(filename, line)
        end_cell, end_row = self.point(filename, end_line)
        if end_cell != cell:
            end_row, end_column = row, column
        return row, column, end_row, end_column


_LINE = re.compile(r"\bline (\d+)\b")
