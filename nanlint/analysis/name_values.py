"""Values of names: their reaching definitions (each evaluated once, memoized), refined by the guards on
the way, the function's own tests of them, running totals round a loop, and what a name says when nothing
else is known. A mixin of :class:`~nanlint.analysis.evaluate.Evaluator`."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import domain as d, guards as guard_mod, names
from nanlint.analysis.domain import UNKNOWN, Evidence, Tier, Value
from nanlint.analysis.flow import LIST_GROWERS, Def, is_project_call
from nanlint.analysis.objects import Frame, Instance, LocalClass, LocalFunction
from nanlint.analysis.syntax import literal_value
from nanlint.analysis.reduce import mask_value
from nanlint.analysis.transfer import transfer
from nanlint.resolver import dotted

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator

_EDGES = (0.0, 1.0, -1.0)
_TEST_PLAN = None


class NameValues:
    """Names, definitions and the scope's own edge tests (mixed into the Evaluator)."""

    # ---- names ----
    def _name(self, node: cst.Name, frame: Frame) -> Value:
        name = node.value
        if name in ("True", "False"):
            return replace(d.constant(1.0 if name == "True" else 0.0, node), integer=True)
        if name == "None":
            return Value(node=node, grad=False)
        reaches = frame.flow.uses.get(id(node))
        if reaches is None:
            return self._outer(name, frame, node)
        out = None
        for definition, guards in reaches:
            carried = self._carried(definition, guards, name, frame)
            if carried:
                saved = self.extra
                self.extra = saved + carried
                try:
                    v = self.definition_value(definition, frame)
                finally:
                    self.extra = saved
            else:
                v = self.definition_value(definition, frame)
            if v is CYCLE:
                continue
            v = _rooted(v, name)
            if self.extra:
                guards = guards + self.extra
            v = self._tested(v, name, frame, definition)
            if guards:
                v = guard_mod.apply_guards(self, frame, v, name, guards)
            out = v if out is None else d.join(out, v)
        if out is None:
            return UNKNOWN
        if names.opaque(out):
            passed_on = self._passed_on(reaches, name, frame)
            if passed_on is not None:
                return passed_on
            found = names.named(name, node) or self._named_alias(name, frame, node)
            if found is not None and found.role != d.EPS and self._computed_here(reaches, frame):
                return out  # the code's own arithmetic, only imprecisely known: the name is no evidence of 0
            if found is not None and out.pynum:
                return replace(found, pynum=True)  # what the name says of a Python number it still is
            return found or out
        return out

    def _computed_here(self, reaches, frame: Frame) -> bool:
        """Every definition reaching the use is arithmetic the analysis followed (``counts = counts /
        counts.sum(1)``, ``counts += 1``): a name describes what the code cannot see into (a parameter, an
        attribute, a helper's result), not a value the code computed itself."""
        for definition, _ in reaches:
            value = definition.value
            if definition.kind == "aug":
                continue
            if definition.kind != "assign" or definition.path:
                return False
            if isinstance(value, (cst.BinaryOperation, cst.UnaryOperation)):
                continue
            site = self.opcall(value, frame) if isinstance(value, cst.Call) else None
            if site is not None and site.spec.transfer not in ("identity", "detach"):
                continue  # a cast or a view is the same value: its name still speaks for it
            return False
        return True

    def _passed_on(self, reaches, name: str, frame: Frame) -> Value | None:
        """``count = broadcast(count, ref=out)``: a helper of the project that takes the name's own value and gives it
        back under the same name (a broadcast, a cast, a move to a device) is read as keeping it, so what is
        known of the value passed in (a count clamped to >= 1) wins over what the name alone would suggest."""
        found = None
        for definition, _ in reaches:
            call = definition.value
            if definition.kind != "assign" or definition.path or not is_project_call(self.resolver, call):
                return None
            passed = [a.value for a in call.args if isinstance(a.value, cst.Name) and a.value.value == name]
            if not passed:
                return None
            v = self.value(passed[0], frame)
            if names.opaque(v):
                return None
            found = v if found is None else d.join(found, v)
        return found

    def _named_alias(self, name: str, frame: Frame, node) -> Value | None:
        """``self.softmax = input``: another name the code gives the same value says what it is."""
        for definition_list in frame.flow.defs.values():
            for definition in definition_list:
                if definition.kind == "assign" and not definition.path and isinstance(definition.value, cst.Name) and definition.value.value == name:
                    found = names.named(definition.name.rpartition(".")[2], node)
                    if found is not None:
                        return found
        return None

    def _tested(self, v: Value, key: str, frame: Frame, definition: Def | None = None) -> Value:
        """The function's own code compares ``key`` with an edge (``norm == 0``, ``r >= 1``, ``x < eps``,
        even after the use, as a repair): the author knows the edge is reached. A test inside the expression
        that redefines ``key`` (``d = where(d == 0, 1, d)``) is about the old value, which it repairs."""
        tests = self.scopes_tests(frame.flow.node).get(key)
        if not tests:
            return v
        repaired = _comparisons_in(definition.value) if definition is not None and isinstance(definition.value, cst.CSTNode) else ()
        born = self.def_generation.get(id(definition.node)) if definition is not None else None
        for edge, test in tests:
            if id(test) in repaired:
                continue
            if born is not None and self.test_generation.get(id(test), 0) < born:
                continue  # the test is about an earlier value of the name, which this definition replaced
            why = f"the code itself tests `{self.text(test)}`"
            evidence = Evidence(Tier.PLAUSIBLE, why, test, "tested", root=key)
            if edge == 0.0 and v.zero is None and not v.nonzero:
                v = v.with_point(0.0, evidence)
            elif edge in (1.0, -1.0) and v.at(edge) is None:
                v = v.with_point(edge, evidence)
                if v.beyond is None:
                    v = replace(v, beyond=evidence)
        return v

    def scopes_tests(self, scope_node) -> dict:
        found = self._tests.get(id(scope_node))
        if found is None:
            found = self._tests[id(scope_node)] = _edge_tests(self, scope_node)
        return found

    def _branch_taken(self, node: cst.IfExp) -> bool | None:
        """``s = total if use_cuda else 0`` read under ``if use_cuda:``: the use's own guard on the same test
        decides which arm the value came from (True: the body, False: the else arm, None: either)."""
        test = self.text(node.test)
        for guard in self.extra:
            if guard.kind not in ("if", "while", "assert", "exit", "ifexp", "and", "or"):
                continue
            holds, _ = guard_mod.effective(self, guard)
            tested = guard.test
            while isinstance(tested, cst.UnaryOperation) and isinstance(tested.operator, cst.Not):
                tested, holds = tested.expression, not holds
            if self.text(tested) == test:
                return holds
        return None

    def _carried(self, definition: Def, guards, name: str, frame: Frame) -> tuple:
        """Guards on the way to this use that constrain what the definition was computed from (``y = x**2 - 1``
        used under ``where(x > 1, y.sqrt(), 0)``): the definition is evaluated under them too."""
        if not guards or definition.kind != "assign" or len(self.extra) > 3 or not isinstance(definition.value, cst.BaseExpression):
            return ()
        names = self._names_in(definition.value)
        out = []
        for guard in guards:
            holds, _ = guard_mod.effective(self, guard)
            keys = {c.key for c in self.guard_constraints(guard, frame, holds)}
            if name not in keys and keys & names and guard not in self.extra:
                out.append(guard)
        return tuple(out)

    def _names_in(self, expr: cst.BaseExpression) -> set[str]:
        found = self._name_sets.get(id(expr))
        if found is None:
            found = set()
            stack = [expr]
            while stack:
                node = stack.pop()
                if isinstance(node, (cst.Name, cst.Attribute)):
                    k = dotted(node)
                    if k:
                        found.add(k)
                        if isinstance(node, cst.Name):
                            continue
                for child in node.children:
                    stack.append(child)
            self._name_sets[id(expr)] = found
        return found

    def _outer(self, name: str, frame: Frame, node) -> Value:
        """A name not bound on the way here: a closure variable, a module constant, an import, a builtin."""
        flow = frame.flow
        if flow.defs.get(name):
            return self._join_defs(flow.defs[name], frame, name)
        parent = flow.parent
        while parent is not None:
            if isinstance(parent.node, cst.ClassDef):
                parent = parent.parent
                continue
            defs = parent.defs.get(name)
            if defs:
                return self._join_defs(defs, self.frame_of(parent.node), name)
            parent = parent.parent
        return UNKNOWN

    def _join_defs(self, defs: list[Def], frame: Frame, name: str) -> Value:
        out = None
        for definition in defs[-8:]:
            v = self.definition_value(definition, frame)
            if v is CYCLE:
                continue
            v = _rooted(v, name)
            out = v if out is None else d.join(out, v)
        return out or UNKNOWN

    def definition_value(self, definition: Def, frame: Frame) -> Value:
        key = (id(definition), frame.key, self.masked, self.extra)
        found = self.remembered(self._def_memo, key)
        if found is not None:
            return found
        if self.cut(key):
            return CYCLE  # the back edge of a loop (s += x reads s): the join skips it, the update widens
        outer = self.enter(key)
        try:
            found = self._definition(definition, frame)
            if definition.no_grad:
                found = replace(found, grad=False)
        except RecursionError:
            found = UNKNOWN
        finally:
            self.leave(key, outer, found, self._def_memo)
        return found

    def _grown_list(self, call: cst.Call, frame: Frame) -> Value:
        """``xs.append(v)`` / ``xs.extend(vs)``: a list whose elements are what it held and the new ones."""
        old = self.value(call.func.value, frame)
        added = self.value(call.args[-1].value, frame)
        if call.func.attr.value == "extend":
            added = element_of(added)
        if old.element is not None:
            held = old.element
        elif old.items:
            held = d.join_all(old.items)
        else:  # `[]` holds nothing yet; a list of unknown origin holds unknown values
            held = None if old.items == () else UNKNOWN
        element = added if held is None else d.join(held, added)
        return Value(element=element, node=call, grad=element.grad)

    def _definition(self, definition: Def, frame: Frame) -> Value:
        kind = definition.kind
        if kind == "assign":
            v = self.value(definition.value, frame)
            for step in definition.path:
                v = element_of(v) if step == "element" else item_of(v, step)
            return v
        if kind == "aug":
            statement = definition.value
            if isinstance(statement.operator, (cst.BitAndAssign, cst.BitOrAssign, cst.BitXorAssign)):
                old, other = self.value(statement.target, frame), self.value(statement.value, frame)
                if old.role == d.MASK or other.role == d.MASK or d.MASK in (old.dtype, other.dtype) or "bool" in (old.dtype, other.dtype):
                    return mask_value(statement, f"`{self.text(statement.target)}` after `{self.text(statement)}`")
            site = self.opcall(statement, frame)
            out = transfer(site) if site is not None else UNKNOWN
            return _accumulated(self, statement, out, frame) if site is not None else out
        if kind == "param":
            return self.calls.parameter(definition, frame)
        if kind == "entry":  # `self.x` as the method found it
            found = self.calls.class_attribute(frame.cls, definition.name.partition(".")[2]) if frame.cls is not None else None
            if found is not None:
                return found
            attr = definition.name.partition(".")[2]
            return names.named(attr, definition.node) or Value(role=d.PARAMETER, node=definition.node)
        if kind == "self":
            cls = frame.cls
            return Value(module=Instance(cls), node=definition.node) if cls is not None else UNKNOWN
        if kind == "mutate":
            call = definition.value
            if isinstance(call, cst.Call) and isinstance(call.func, cst.Attribute) and call.func.attr.value in LIST_GROWERS:
                return self._grown_list(call, frame)
            return self.value(definition.value, frame)
        if kind == "subscript":
            from nanlint.analysis.indexing import subscript_write

            return subscript_write(self, definition, frame)
        if kind == "function":
            return Value(module=LocalFunction(definition.value, self.scopes.class_of(definition.value)), node=definition.node, grad=False)
        if kind == "class":
            return Value(module=LocalClass(definition.value), node=definition.node, grad=False)
        return UNKNOWN



def _rooted(v: Value, key: str) -> Value:
    """Evidence that comes from this value's own emptiness is rooted in the name that holds it."""
    changes = {}
    if v.vanish is not None and v.vanish.root is None:
        changes["vanish"] = replace(v.vanish, root=key)
    if v.empty is not None and v.empty.root is None:
        changes["empty"] = replace(v.empty, root=key)
    if v.single is not None and v.single.root is None:
        changes["single"] = replace(v.single, root=key)
    if changes:
        zero = v.zero
        if zero is not None and zero.root is None and v.vanish is not None and zero is v.vanish:
            changes["points"] = tuple((p, changes["vanish"] if p == 0 else e) for p, e in v.points)
        return replace(v, **changes)
    return v


CYCLE = Value()  # a definition read while it is being evaluated: the loop's back edge, skipped by the joins


def _accumulated(ev: "Evaluator", statement: cst.AugAssign, out: Value, frame: Frame) -> Value:
    """``s += x`` computed from the value before the first pass (the back edge is skipped) is widened to
    what the loop can accumulate: a total that grows is unbounded above, one that shrinks unbounded below. Its
    other facts stay: a running sum from 0 of counts that can be 0 is 0 when every count was 0."""
    op = statement.operator
    if not isinstance(op, (cst.AddAssign, cst.SubtractAssign)) or not _may_repeat(ev, statement, frame):
        return out
    inc = ev.value(statement.value, frame)
    up, down = (inc.hi > 0, inc.lo < 0) if isinstance(op, cst.AddAssign) else (inc.lo < 0, inc.hi > 0)
    changes = {}
    if up and out.hi < math.inf:
        changes.update(hi=math.inf, hi_open=False, large=None, const=None)
    if down and out.lo > -math.inf:
        changes.update(lo=-math.inf, lo_open=False, const=None)
    return replace(out, **changes) if changes else out


def _may_repeat(ev: "Evaluator", statement: cst.AugAssign, frame: Frame) -> bool:
    """The update runs more than once: its target reads its own result (a loop's back edge), or it is an
    attribute a method updates on every call (``self.total += n``)."""
    target = statement.target
    if not isinstance(target, cst.Name):
        return isinstance(target, cst.Attribute)
    return any(r[0].node is statement for r in frame.flow.uses.get(id(target), ()))


def element_of(v: Value) -> Value:
    if v.element is not None:
        return v.element
    if v.items:
        return d.join_all(v.items)
    if v.role in (d.DATA, d.ACTIVATION, d.PROBABILITY, d.MASK, d.SIZE):
        return replace(v, items=None, empty=None)
    return UNKNOWN


def item_of(v: Value, index: int) -> Value:
    if v.items is not None and -len(v.items) <= index < len(v.items):
        return v.items[index]
    if v.element is not None:
        return v.element
    if v.role == d.SIZE:  # `n, c, h, w = x.shape`: each entry is a size, as `x.shape[0]` is
        return replace(v, items=None, desc=f"an entry of {v.desc}" if v.desc else None)
    return UNKNOWN


def _comparisons_in(expr: cst.CSTNode) -> frozenset[int]:
    """Ids of the comparisons inside one expression."""
    found = []

    class _Collect(cst.CSTVisitor):
        def visit_Comparison(self, node: cst.Comparison) -> None:
            found.append(id(node))

    expr.visit(_Collect())
    return frozenset(found)


def _edge_tests(ev: Evaluator, scope_node) -> dict:
    """``key -> [(edge, comparison)]`` for comparisons of a name with 0, +-1 or an eps in this scope."""
    from nanlint.traversal import Plan, iter_nodes

    out: dict = {}
    global _TEST_PLAN
    if _TEST_PLAN is None:
        _TEST_PLAN = Plan({"Comparison", "FunctionDef", "Lambda", "If", "Assert", "Assign", "AugAssign", "AnnAssign"})
    plan = _TEST_PLAN
    body = getattr(scope_node, "body", None)
    if body is None or isinstance(scope_node, cst.Module):
        return out
    rejected: set[int] = set()  # `if w <= 0: raise`, `assert w > 0`: the code refuses the edge, it does not meet it
    generation: dict[str, int] = {}  # how many times each key was assigned so far, in source order
    for entering, node in iter_nodes(body, plan):
        if isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign)):
            if not entering:
                targets = [t.target for t in node.targets] if isinstance(node, cst.Assign) else [node.target]
                for t in targets:
                    k = ev.key(t)
                    if k is not None:
                        generation[k] = generation.get(k, 0) + 1
                        ev.def_generation[id(node)] = generation[k]
            continue
        if entering and (isinstance(node, cst.Assert) or isinstance(node, cst.If) and _raises(node.body)):
            rejected |= _comparisons_in(node.test)
            continue
        if not entering or not isinstance(node, cst.Comparison) or len(node.comparisons) != 1 or id(node) in rejected:
            continue
        target = node.comparisons[0]
        if isinstance(target.operator, (cst.Is, cst.IsNot, cst.In, cst.NotIn)):
            continue
        for side, other in ((node.left, target.comparator), (target.comparator, node.left)):
            key = ev.key(side)
            if key is None:
                continue
            number = literal_value(other)
            if number == 0 and _sign_test(target.operator, key_left=side is node.left):
                continue  # `x >= 0`, `x < 0`: the author checks the sign, which says nothing of 0 being met
            if number is None and isinstance(other, (cst.Name, cst.Attribute)) and names.EPS_NAME.search(ev.text(other)):
                number = 0.0
            if number is not None and number in _EDGES:
                out.setdefault(key, []).append((number, node))
                ev.test_generation[id(node)] = generation.get(key, 0)
    return out


def _raises(body) -> bool:
    statements = getattr(body, "body", ())
    last = statements[-1] if statements else None
    return isinstance(last, cst.SimpleStatementLine) and any(isinstance(small, cst.Raise) for small in last.body)


def _sign_test(operator, key_left: bool) -> bool:
    """Whether ``key <op> 0`` (or ``0 <op> key``) separates the negatives from [0, inf): ``>=`` and ``<``."""
    if not key_left:
        operator = {cst.GreaterThanEqual: cst.LessThanEqual, cst.LessThan: cst.GreaterThan,
                    cst.LessThanEqual: cst.GreaterThanEqual, cst.GreaterThan: cst.LessThan}.get(type(operator), type(operator))()
    return isinstance(operator, (cst.GreaterThanEqual, cst.LessThan))
