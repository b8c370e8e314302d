"""Where a node stands in the file's source: its offsets, its text, and the nodes from the module down to it.
A fix needs the text (to see comments it would delete) and the path (for the indentation and the scopes
around the site); libcst keeps no parent links, so the path is found by position."""
from __future__ import annotations

from typing import Any, Callable

import libcst as cst

from nanlint.positions import NEWLINE


class Locator:
    """One per file; ``positions`` gives the file's node -> ``CodeRange`` mapping (computed once, by its owner)."""

    def __init__(self, module: cst.Module, source: str, positions: Callable[[], Any]):
        self.module = module
        self.source = source
        self._positions = positions
        self._line_starts: list[int] | None = None
        self._paths: dict[int, list[cst.CSTNode] | None] = {}
        self._children: dict[int, Any] = {}  # libcst builds ``node.children`` anew on each access

    def offsets(self, node: cst.CSTNode) -> tuple[int, int] | None:
        """``node``'s start and end offsets in the source (None when positions cannot say)."""
        found = self._positions()
        ranges = getattr(found, "_ranges", None)
        if ranges is not None:
            return ranges.get(node)
        try:
            pos = found[node]  # libcst's own PositionProvider result: lines and columns only
        except KeyError:
            return None
        if self._line_starts is None:
            self._line_starts = [0] + [m.end() for m in NEWLINE.finditer(self.source)]
        starts = self._line_starts
        return starts[pos.start.line - 1] + pos.start.column, starts[pos.end.line - 1] + pos.end.column

    def source_of(self, node: cst.CSTNode) -> str | None:
        span = self.offsets(node)
        return self.source[span[0]:span[1]] if span is not None else None

    def path_to(self, target: cst.CSTNode) -> list[cst.CSTNode] | None:
        """The nodes from the module down to ``target`` (found by position, then identity)."""
        if id(target) in self._paths:
            return self._paths[id(target)]
        goal = self.offsets(target)
        if goal is None:
            return None
        start, end = goal
        found = None
        stack: list[tuple[cst.CSTNode, list[cst.CSTNode]]] = [(self.module, [self.module])]
        while stack:
            node, path = stack.pop()
            if node is target:
                found = path
                break
            children = self._children.get(id(node))
            if children is None:
                children = self._children[id(node)] = node.children
            for child in reversed(children):
                span = self.offsets(child)
                if child is target or (span is not None and span[0] <= start and span[1] >= end):
                    stack.append((child, path + [child]))
        self._paths[id(target)] = found
        return found
