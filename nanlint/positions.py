"""Positions of reported nodes: the same ranges as libcst's ``PositionProvider``, for about half its cost.

``PositionProvider`` regenerates the module's code and, for every token, splits it on newlines with a
regular expression and builds ``CodePosition`` objects for every node. Here the code generation only
counts characters (an integer offset per node start and end, recorded through a slot-based context
manager instead of a generator); offsets become line and column with a binary search over the line starts
of the source, and only for the nodes somebody asks about. Generated code equals the parsed source
(libcst round-trips exactly); if it ever does not, :func:`positions` falls back to ``PositionProvider``.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import libcst as cst
from libcst._add_slots import add_slots
from libcst._nodes.internal import CodegenState
from libcst.metadata import CodePosition, CodeRange, MetadataWrapper, PositionProvider

NEWLINE = re.compile(r"\r\n?|\n")  # the line breaks libcst's PositionProvider counts


class _Syntactic:
    """``with state.record_syntactic_position(node, start_node=, end_node=)`` without a generator."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state: "_OffsetState", node, start_node, end_node):
        self.state = state
        self.node = node
        self.start_node = start_node
        self.end_node = end_node

    def __enter__(self) -> None:
        self.start = self.state.offset

    def __exit__(self, *exc) -> bool:
        ranges = self.state.ranges
        start = ranges[self.start_node][0] if self.start_node is not None else self.start
        end = ranges[self.end_node][1] if self.end_node is not None else self.state.offset
        ranges[self.node] = (start, end)
        return False


@add_slots
@dataclass(frozen=False)
class _OffsetState(CodegenState):
    offset: int = 0
    popped: str = ""
    ranges: Dict[cst.CSTNode, tuple] = field(default_factory=dict)
    _stack: List[int] = field(default_factory=list)

    def add_indent_tokens(self) -> None:
        self.tokens.extend(self.indent_tokens)
        for token in self.indent_tokens:
            self.offset += len(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        self.offset += len(value)

    def pop_trailing_newline(self) -> None:
        if self.tokens:  # the offset keeps counting it, as PositionProvider's line count does
            self.popped = self.tokens.pop()

    def before_codegen(self, node: cst.CSTNode) -> None:
        self._stack.append(self.offset)

    def after_codegen(self, node: cst.CSTNode) -> None:
        start = self._stack.pop()
        if node not in self.ranges:  # a syntactic range recorded inside wins, as in PositionProvider
            self.ranges[node] = (start, self.offset)

    def record_syntactic_position(self, node, *, start_node: Optional[cst.CSTNode] = None, end_node: Optional[cst.CSTNode] = None):
        return _Syntactic(self, node, start_node, end_node)


class Positions:
    """``positions[node]`` -> ``CodeRange`` (1-based lines, 0-based columns), like PositionProvider's."""

    def __init__(self, ranges: Dict[cst.CSTNode, tuple], source: str):
        self._ranges = ranges
        self._line_starts = [0] + [m.end() for m in NEWLINE.finditer(source)]

    def _position(self, offset: int) -> CodePosition:
        line = bisect.bisect_right(self._line_starts, offset)
        return CodePosition(line, offset - self._line_starts[line - 1])

    def __getitem__(self, node: cst.CSTNode) -> CodeRange:
        start, end = self._ranges[node]
        return CodeRange(self._position(start), self._position(end))


def positions(module: cst.Module, source: str):
    """A mapping node -> CodeRange for every node of ``module`` (parsed from ``source``)."""
    state = _OffsetState(default_indent=module.default_indent, default_newline=module.default_newline)
    module._codegen(state)
    if "".join(state.tokens) != source:  # never seen; libcst round-trips its input exactly
        return MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    return Positions(state.ranges, source + state.popped)
