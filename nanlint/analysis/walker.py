"""The one walk over a file's tree: every enabled rule's ``visit_<Node>``/``leave_<Node>`` methods are
called for each node, in libcst's order; the walk keeps the stacks and the frame rules ask about."""
from __future__ import annotations

import functools
import traceback
from typing import Callable

import libcst as cst

from nanlint.analysis.context import FileContext
from nanlint.findings import InternalError
from nanlint.rules.base import Rule
from nanlint.traversal import Plan, concrete_node_types


@functools.lru_cache(maxsize=None)
def _hook_names(rule_class: type[Rule]) -> tuple[tuple[str, str], ...]:
    """(``visit``/``leave``, node type) for every ``visit_<Node>``/``leave_<Node>`` method of a rule class."""
    concrete = concrete_node_types()
    out = []
    for attr in dir(rule_class):
        kind, _, node_type = attr.partition("_")
        if kind in ("visit", "leave") and node_type in concrete and callable(getattr(rule_class, attr, None)):
            out.append((kind, node_type))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _plan(wanted: frozenset[str]) -> Plan:
    return Plan(wanted)


@functools.lru_cache(maxsize=64)
def _irrelevant(plan: Plan) -> frozenset[type]:
    """Node types the walk need not even enter: not wanted and unable to hold a wanted node."""
    return frozenset(cls for cls in concrete_node_types().values() if not plan.relevant(cls))


# bookkeeping flags per node type
_PUSH_STATEMENT, _FUNCTION, _CLASS = 1, 2, 4


class Walker:
    """One traversal for all rules: keeps the statement, function and class stacks and the current frame,
    then dispatches to rule methods.

    Nodes are visited in libcst's order, but only the types that a rule or the bookkeeping needs; subtrees
    that cannot contain such a type (whitespace, commas, operators) are not entered. A rule method's
    return value is ignored (there is no "skip children" as in ``CSTVisitor``)."""

    def __init__(self, ctx: FileContext, rules: list[Rule], errors: list[InternalError]):
        self.ctx = ctx
        self.errors = errors
        self.visitors: dict[str, list[tuple[Rule, Callable]]] = {}
        self.leavers: dict[str, list[tuple[Rule, Callable]]] = {}
        for rule in rules:
            for kind, node_type in _hook_names(type(rule)):
                table = self.visitors if kind == "visit" else self.leavers
                table.setdefault(node_type, []).append((rule, getattr(rule, f"{kind}_{node_type}")))
        wanted = frozenset(self.visitors) | frozenset(self.leavers) | _BOOKKEEPING
        self.plan = _plan(wanted)
        self.skip = _irrelevant(self.plan)
        self.broken: set[str] = set()
        self._entries: dict[type, tuple] = {}
        # rules that also check a function body with the values its callers in the file pass
        self.contextual = {name: [(r, m) for r, m in handlers if getattr(r, "contextual", False)]
                           for name, handlers in self.visitors.items()}
        self.contexts = any(self.contextual.values())
        self._in_context = False

    def _frame_for(self, node: cst.FunctionDef):
        return self.ctx.ev.frame_of(node)

    def _in_contexts(self, fn: cst.FunctionDef) -> None:
        """Walk ``fn`` again once per call site that passes it something known (contextual rules only)."""
        if self._in_context:
            return
        frames = self.ctx.ev.calls.contexts(fn)
        if not frames:
            return
        ctx = self.ctx
        saved_visitors, saved_leavers, saved_frame = self.visitors, self.leavers, ctx.frame
        self.visitors, self.leavers, self._in_context = self.contextual, {}, True
        try:
            for frame in frames:
                ctx.statement_stack.append(fn)
                ctx.function_stack.append(fn)
                ctx.frame = frame
                try:
                    for name in self.plan.fields(type(fn)):
                        value = getattr(fn, name)
                        children = value if type(value) in (tuple, list) else (value,)
                        for child in children:
                            if isinstance(child, cst.CSTNode) and type(child) not in self.skip:
                                self.walk(child)
                finally:
                    ctx.function_stack.pop()
                    ctx.statement_stack.pop()
        finally:
            self.visitors, self.leavers, self._in_context = saved_visitors, saved_leavers, False
            ctx.frame = saved_frame

    def _entry(self, cls: type) -> tuple:
        name = cls.__name__
        flags = 0
        if name in _STATEMENTS:
            flags |= _PUSH_STATEMENT
        if name == "FunctionDef":
            flags |= _FUNCTION
        elif name == "ClassDef":
            flags |= _CLASS
        entry = (self.plan.fields(cls), self.visitors.get(name), self.leavers.get(name), flags)
        self._entries[cls] = entry
        return entry

    def walk(self, node: cst.CSTNode) -> None:
        entry = self._entries.get(type(node)) or self._entry(type(node))
        fields, visitors, leavers, flags = entry
        ctx = self.ctx
        if flags:
            if flags & _PUSH_STATEMENT:
                ctx.statement_stack.append(node)
            if flags & _FUNCTION:
                saved_frame = ctx.frame
                ctx.function_stack.append(node)
                ctx.frame = self._frame_for(node) if not self._in_context else ctx.frame
            elif flags & _CLASS:
                ctx.class_stack.append(node)
        if visitors:
            self._dispatch(visitors, node)
        walk = self.walk
        skip = self.skip
        for name in fields:
            value = getattr(node, name)
            if type(value) is tuple or type(value) is list:
                for child in value:
                    if type(child) not in skip and isinstance(child, cst.CSTNode):
                        walk(child)
            elif type(value) not in skip and isinstance(value, cst.CSTNode):
                walk(value)
        if leavers:
            self._dispatch(leavers, node)
        if flags:
            if flags & _FUNCTION:
                ctx.function_stack.pop()
                ctx.frame = saved_frame
                if self.contexts and node is not None:
                    self._in_contexts(node)
            elif flags & _CLASS:
                ctx.class_stack.pop()
            if flags & _PUSH_STATEMENT:
                ctx.statement_stack.pop()

    def _dispatch(self, handlers: list, node: cst.CSTNode) -> None:
        for rule, method in handlers:
            if rule.code in self.broken:
                continue
            try:
                method(node)
            except RecursionError:
                continue  # an expression too deep to follow: that one site goes unchecked
            except Exception as exc:  # a bug in one rule must not hide the other findings
                self.broken.add(rule.code)
                tb = traceback.extract_tb(exc.__traceback__)[-1]
                self.errors.append(
                    InternalError(self.ctx.filename, rule.code, f"{type(exc).__name__}: {exc} ({tb.filename}:{tb.lineno})")
                )

_STATEMENTS = frozenset({
    "SimpleStatementLine", "If", "For", "While", "With", "Try", "FunctionDef", "ClassDef", "Match", "TryStar",
})
_BOOKKEEPING = _STATEMENTS


