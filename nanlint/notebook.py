"""Jupyter notebooks as one Python source: code cells in order, so facts flow from cell to cell.

Each code cell starts with a marker comment, ``# %% [nanlint cell N]`` (N counts every cell, markdown
included, from 1, as a reader counts them in the notebook), so a position in the joined source says which
cell and which row of it, with no side table to keep in step (the cache, worker processes and the report
all see only the text). IPython lines that are not Python (``%magic``, ``!shell``, ``x = !ls``, ``obj?``)
become ``pass`` at their indentation, with an index, and a cell magic (``%%bash``) makes the whole cell a
single ``pass``; rows keep their numbers either way. Writing back puts every such line back as it was and
changes nothing in the notebook but the ``source`` of the cells that were fixed.

The standard library's ``json`` reads and writes the file: ``nbformat`` would validate and re-serialise
(sorted keys, its own indentation), which is more than a fix may change.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

SUFFIX = ".ipynb"
MARKER = re.compile(r"^# %% \[nanlint cell (\d+)\]$")
_PLACEHOLDER = re.compile(r"^(\s*)pass  # nanlint: ipython (\d+)$")
_MAGIC = re.compile(r"^\s*(?:[%!?]|\w+\s*=\s*[%!])|^\s*[\w.]+\?\??\s*$")


class NotebookError(ValueError):
    """The file is not a notebook nanlint can read (bad JSON, no cells)."""


def is_notebook(filename: str) -> bool:
    return filename.endswith(SUFFIX)


@dataclass(frozen=True)
class CellLines:
    """The Python text of one code cell and the IPython lines it stands in for."""

    index: int  # 1-based, among all cells
    python: list[str]  # lines without line breaks
    ipython: list[str]  # the original lines that became ``pass`` placeholders, by placeholder number


def _source_text(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def _is_python(document: dict) -> bool:
    metadata = document.get("metadata") or {}
    language = (metadata.get("kernelspec") or {}).get("language") or (metadata.get("language_info") or {}).get("name")
    return language in (None, "python", "python3", "ipython")


def _load(data: bytes) -> dict:
    try:
        document = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotebookError(f"not a valid notebook: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise NotebookError("not a valid notebook: no list of cells")
    return document


def _cell_lines(index: int, text: str) -> CellLines:
    lines = text.splitlines()
    if lines and lines[0].lstrip().startswith("%%"):  # a cell magic: the cell is not Python
        return CellLines(index, ["pass  # nanlint: ipython 0"], [text])
    python, ipython = [], []
    continued = False
    for line in lines:
        if not continued and _MAGIC.search(line) and not line.lstrip().startswith("#"):
            indent = line[: len(line) - len(line.lstrip())]
            python.append(f"{indent}pass  # nanlint: ipython {len(ipython)}")
            ipython.append(line)
        else:
            python.append(line)
        continued = line.endswith("\\")
    return CellLines(index, python, ipython)


def _code_cells(document: dict) -> list[CellLines]:
    if not _is_python(document):
        return []
    return [_cell_lines(i, _source_text(cell)) for i, cell in enumerate(document["cells"], start=1)
            if isinstance(cell, dict) and cell.get("cell_type") == "code"]


def to_source(data: bytes) -> str:
    """The notebook's code cells as one Python source, each after its marker line."""
    out = []
    for cell in _code_cells(_load(data)):
        out.append(f"# %% [nanlint cell {cell.index}]")
        out.extend(cell.python)
    return "\n".join(out) + "\n" if out else ""


def cell_offsets(source: str) -> dict[int, int]:
    """Line of each cell's marker in a joined source, by cell number."""
    return {int(m.group(1)): n for n, text in enumerate(source.splitlines(), start=1) if (m := MARKER.match(text))}


def _fixed_cells(document: dict, fixed_source: str) -> list[tuple[int, str, str]]:
    """(cell number, old source, new source) of each code cell of ``document`` that ``fixed_source`` (its
    joined source after fixes) changes, IPython lines restored."""
    originals = {cell.index: cell for cell in _code_cells(document)}
    fixed: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in fixed_source.splitlines():
        match = MARKER.match(line)
        if match:
            current = fixed.setdefault(int(match.group(1)), [])
        elif current is not None:
            current.append(line)
    out = []
    for index, lines in fixed.items():
        original = originals.get(index)
        if original is None or lines == original.python:
            continue
        restored = []
        for line in lines:
            match = _PLACEHOLDER.match(line)
            number = int(match.group(2)) if match else -1
            restored.append(original.ipython[number] if 0 <= number < len(original.ipython) else line)
        old = _source_text(document["cells"][index - 1])
        out.append((index, old, "\n".join(restored) + ("\n" if old.endswith("\n") else "")))
    return out


def diff(filename: str, data: bytes, fixed_source: str) -> str:
    """A unified diff per changed cell, headed ``a/NAME:cell N``."""
    from nanlint.fixes import unified_diff

    return "".join(unified_diff(f"{filename}:cell {index}", old, new)
                   for index, old, new in _fixed_cells(_load(data), fixed_source))


def write_back(data: bytes, fixed_source: str) -> bytes:
    """The notebook ``data`` with the code cells' sources taken from ``fixed_source`` (a joined source after
    fixes), IPython lines restored; every other byte of structure (keys, outputs, metadata, order) kept."""
    document = _load(data)
    for index, _, new in _fixed_cells(document, fixed_source):
        cell = document["cells"][index - 1]
        cell["source"] = new.splitlines(keepends=True) if isinstance(cell.get("source"), list) else new
    return _dump(document, data)


def _dump(document: dict, original: bytes) -> bytes:
    """JSON laid out as the original was: its indentation, escapes and final newline."""
    text = original.decode("utf-8-sig")
    indent_match = re.search(r"^\{\s*\n([ \t]+)\"", text)
    indent = indent_match.group(1) if indent_match else 1
    if isinstance(indent, str) and set(indent) == {" "}:
        indent = len(indent)
    ensure_ascii = not re.search(r"[^\x00-\x7f]", text) and "\\u" in text
    out = json.dumps(document, indent=indent, ensure_ascii=ensure_ascii)
    if text.endswith("\n"):
        out += "\n"
    return out.encode("utf-8")
