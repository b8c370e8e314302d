"""A fast walk over a libcst tree that visits only the nodes somebody asked for.

``CSTNode.visit`` rebuilds every node it passes (``_visit_and_replace_children`` constructs a new dataclass
per node) and calls visitor hooks for every whitespace, comma and parenthesis: on a real tree that costs
about half a parse. This walk reads children straight from each node's dataclass fields, in the order
libcst's own visitor uses (taken once per node type from ``_visit_and_replace_children``), and skips every
field whose type cannot hold a node type of interest (whitespace, commas, operators, ...): those subtrees
are never entered.
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import sys
import textwrap
import typing
from typing import Iterable

import libcst as cst
from libcst import CSTNode
from libcst._nodes.base import BaseLeaf


@functools.lru_cache(maxsize=None)
def concrete_node_types() -> dict[str, type[CSTNode]]:
    """Every concrete libcst node class, by name."""
    out: dict[str, type[CSTNode]] = {}
    stack = [CSTNode]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if not inspect.isabstract(sub) and sub.__module__.startswith("libcst._nodes") and dataclasses.is_dataclass(sub):
                out[sub.__name__] = sub
    return out


@functools.lru_cache(maxsize=None)
def _field_order(cls: type[CSTNode]) -> tuple[str, ...]:
    """The fields ``cls`` visits, in libcst's visiting order (read from its ``_visit_and_replace_children``)."""
    method = getattr(cls, "_visit_and_replace_children", None)
    owner = next((c for c in cls.__mro__ if "_visit_and_replace_children" in c.__dict__), None)
    if method is None or owner is None or owner is BaseLeaf or owner is CSTNode:
        return ()
    fields = [f.name for f in dataclasses.fields(cls)]
    names: list[str] = []
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(owner.__dict__["_visit_and_replace_children"])))
    except (OSError, TypeError, SyntaxError):  # no source shipped: fall back to the declaration order
        return tuple(fields)
    for node in _in_source_order(tree):  # visit_required(self, "name", self.name, visitor) and friends
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("visit_"):
            if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value in fields:
                if node.args[1].value not in names:
                    names.append(node.args[1].value)
    return tuple(names + [f for f in fields if f not in names and _may_hold_nodes(cls, f)])


def _in_source_order(tree: ast.AST) -> list[ast.AST]:
    nodes = [n for n in ast.walk(tree) if hasattr(n, "lineno")]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))


def _may_hold_nodes(cls: type[CSTNode], field: str) -> bool:
    return bool(_field_types(cls).get(field))


@functools.lru_cache(maxsize=None)
def _field_types(cls: type[CSTNode]) -> dict[str, frozenset[str]]:
    """For each field, the names of the concrete node classes that can sit in it (directly)."""
    out: dict[str, frozenset[str]] = {}
    hints = None
    for field in dataclasses.fields(cls):
        hint = field.type
        if isinstance(hint, str):  # postponed annotation: resolve (libcst 1.x does not postpone)
            if hints is None:
                try:
                    hints = typing.get_type_hints(cls)
                except Exception:
                    hints = {}
            hint = hints.get(field.name)
        if hint is None:
            out[field.name] = frozenset(concrete_node_types())  # unknown: assume anything
            continue
        bases = _node_classes(hint, vars(sys.modules[cls.__module__]))
        out[field.name] = frozenset().union(*(_concrete_below(base) for base in bases))
    return out


@functools.lru_cache(maxsize=None)
def _concrete_below(base: type) -> frozenset[str]:
    return frozenset(name for name, sub in concrete_node_types().items() if base in sub.__mro__)


def _node_classes(hint, namespace: dict) -> list[type]:
    """The CSTNode classes named in an annotation (through Union, Optional, Sequence, forward refs)."""
    if isinstance(hint, (str, typing.ForwardRef)):
        name = hint if isinstance(hint, str) else hint.__forward_arg__
        hint = namespace.get(name, getattr(cst, name, None))
        if hint is None:
            return [CSTNode]  # unresolvable: assume any node
    origin = typing.get_origin(hint)
    if origin is None:
        return [hint] if isinstance(hint, type) and issubclass(hint, CSTNode) else []
    out: list[type] = []
    for argument in typing.get_args(hint):
        out.extend(_node_classes(argument, namespace))
    return out


@functools.lru_cache(maxsize=None)
def _reach() -> dict[str, frozenset[str]]:
    """For each node class, every node class that can occur anywhere below it."""
    concrete = concrete_node_types()
    direct = {name: frozenset().union(*_field_types(cls).values()) if _field_types(cls) else frozenset() for name, cls in concrete.items()}
    reach = dict(direct)
    changed = True
    while changed:
        changed = False
        for name, below in reach.items():
            grown = below.union(*(reach.get(child, frozenset()) for child in below))
            if grown != below:
                reach[name] = grown
                changed = True
    return reach


def fields_to_walk(cls: type[CSTNode], wanted: frozenset[str]) -> tuple[str, ...]:
    """The fields of ``cls`` (in visiting order) that can hold, at any depth, a node whose type is wanted."""
    reach = _reach()
    types = _field_types(cls)
    out = []
    for field in _field_order(cls):
        held = types.get(field, frozenset())
        if any(t in wanted or not wanted.isdisjoint(reach.get(t, ())) for t in held):
            out.append(field)
    return tuple(out)


class Plan:
    """Per node type: which fields to descend into, and whether a node of that type matters at all (is
    wanted, or can hold a wanted node). Built lazily, once per type and wanted-set."""

    __slots__ = ("wanted", "_fields", "_relevant")

    def __init__(self, wanted: Iterable[str]):
        self.wanted = frozenset(wanted)
        self._fields: dict[type, tuple[str, ...]] = {}
        self._relevant: dict[type, bool] = {}

    def relevant(self, cls: type) -> bool:
        found = self._relevant.get(cls)
        if found is None:
            name = cls.__name__
            found = self._relevant[cls] = name in self.wanted or not self.wanted.isdisjoint(_reach().get(name, ()))
        return found

    def fields(self, cls: type) -> tuple[str, ...]:
        found = self._fields.get(cls)
        if found is None:
            found = self._fields[cls] = fields_to_walk(cls, self.wanted)
        return found


def iter_nodes(node: CSTNode, plan: Plan) -> Iterable[tuple[bool, CSTNode]]:
    """(entering, node) events in libcst's visiting order for the relevant nodes under ``plan`` (the
    reference the engine's own recursive walk follows; the tests compare it with ``CSTNode.visit``)."""
    yield True, node
    for name in plan.fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, CSTNode):
            if plan.relevant(type(value)):
                yield from iter_nodes(value, plan)
        elif isinstance(value, (tuple, list)):
            for child in value:
                if isinstance(child, CSTNode) and plan.relevant(type(child)):
                    yield from iter_nodes(child, plan)
    yield False, node


__all__ = ["Plan", "concrete_node_types", "fields_to_walk", "iter_nodes", "cst"]
