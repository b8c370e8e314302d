"""Flow: which assignments reach each use of a name, and which conditions hold on the way.

One pass over a scope's statements (a function, the module, a class body) in execution order keeps, for
every local name, the set of definitions that can reach this point, each with the guards passed since it was
made: ``if``/``else`` branches, early exits (``if n == 0: return``), ``assert``, ``while`` tests, ternaries,
``and``/``or`` short circuits, and the branches of ``torch.where`` / ``masked_fill``. Branches merge by
union; a definition that reaches through both arms of an ``if`` loses that ``if``'s guard again. Loop bodies
are walked twice (the second time with the values of the first iteration), and a loop is assumed to run at
least once. ``self.x`` is tracked like a local name inside a method. Nested functions, lambdas and classes
are scopes of their own; comprehensions are walked in place, their variables kept out of the scope.

The result, :class:`ScopeFlow`, maps each ``Name`` (and ``self.x``) load node to its reaching
``(Def, guards)`` pairs; the evaluator turns those into values lazily.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import libcst as cst

from nanlint.resolver import ImportResolver
from nanlint.traversal import Plan

NO_GRAD_CALLS = ("no_grad", "inference_mode")
WHERE_OPS = frozenset({"where"})


def is_project_call(resolver: ImportResolver, expr) -> bool:
    """A call of a plain name that is the project's own helper: not a builtin, not torch, numpy, math or jax."""
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Name):
        return False
    qualified = resolver.qualify(expr.func) or ""
    return expr.func.value not in NON_WRITING_BUILTINS and qualified.split(".")[0] not in ("torch", "numpy", "math", "jax")


def may_write_arguments(resolver: ImportResolver, expr) -> bool:
    """A call that can fill the buffers it is handed: the project's helper (``update(preds, num, den)``), a
    method of ``self``, a function of an imported project module or a custom kernel (``kernels.step(q, acc,
    alpha_sum)``, ``torch.ops.lib.fn(buf)``). torch, numpy, math and jax functions do not write their arguments."""
    if is_project_call(resolver, expr):
        return True
    if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
        return False
    root = expr.func
    while isinstance(root, cst.Attribute):
        root = root.value
    if not isinstance(root, cst.Name):
        return False
    if root.value == "self":
        return True
    qualified = resolver.qualify(expr.func) or ""
    if qualified.startswith("torch.ops."):
        return True
    return bool(qualified) and qualified.split(".")[0] not in ("torch", "numpy", "math", "jax", "scipy", "builtins")


LIST_GROWERS = frozenset({"append", "extend", "insert"})
NON_WRITING_BUILTINS = frozenset({"print", "len", "isinstance", "assert_", "setattr", "getattr", "hasattr", "id",
                                  "repr", "str", "format", "type", "vars", "dir", "sorted", "list", "tuple", "set",
                                  "dict", "iter", "next", "callable", "super", "warn"})


@dataclass(frozen=True, eq=False)
class Guard:
    test: cst.BaseExpression
    holds: bool
    kind: str  # if, while, assert, exit, ifexp, and, or, where, filter


@dataclass(frozen=True, eq=False)
class Def:
    name: str
    kind: str  # assign, aug, param, self, for, with, import, function, class, subscript, mutate, walrus, unknown
    value: cst.CSTNode | None  # the right-hand side; for aug/subscript/mutate the statement or call
    node: cst.CSTNode  # where it happens
    path: tuple[int, ...] = ()  # position inside an unpacked tuple: ``a, (b, c) = v`` -> c: (1, 1)
    no_grad: bool = False
    target: cst.CSTNode | None = None  # for ``x[i] = v``: the subscript target


Reach = tuple[Def, tuple[Guard, ...]]
Env = dict[str, tuple[Reach, ...]]


@dataclass
class ScopeFlow:
    node: cst.CSTNode  # FunctionDef, Module, ClassDef, Lambda
    parent: "ScopeFlow | None"
    uses: dict[int, tuple[Reach, ...]] = field(default_factory=dict)
    defs: dict[str, list[Def]] = field(default_factory=dict)
    returns: list[tuple[cst.Return, tuple[Guard, ...]]] = field(default_factory=list)
    params: dict[str, Def] = field(default_factory=dict)

    def all_defs(self, name: str) -> list[Def]:
        return self.defs.get(name, [])

    def sole_definition(self, use: cst.CSTNode) -> "Def | None":
        """The one definition that reaches ``use`` (along each path: the branches of an ``if`` chain before
        the use reach it with different guards, but it is the same definition), or None."""
        reaches = self.uses.get(id(use))
        if not reaches:
            return None
        first = reaches[0][0]
        return first if all(r[0] is first for r in reaches) else None


_SELF_READS_PLAN = None


def _self_reads(function: cst.FunctionDef) -> list[str]:
    """The ``self.x`` keys a method's own body reads or updates (not those of nested functions)."""
    global _SELF_READS_PLAN
    from nanlint.traversal import Plan

    if _SELF_READS_PLAN is None:
        _SELF_READS_PLAN = Plan({"Attribute", "FunctionDef", "Lambda", "ClassDef"})
    plan = _SELF_READS_PLAN
    found: dict[str, None] = {}
    stack: list[cst.CSTNode] = [function.body]
    while stack:
        node = stack.pop()
        if isinstance(node, cst.Attribute):
            key = self_key(node)
            if key is not None:
                found[key] = None
                continue
        elif isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef)):
            continue  # a scope of its own
        for name in plan.fields(type(node)):
            value = getattr(node, name)
            if isinstance(value, cst.CSTNode):
                if plan.relevant(type(value)):
                    stack.append(value)
            elif isinstance(value, (tuple, list)):
                stack.extend(c for c in value if isinstance(c, cst.CSTNode) and plan.relevant(type(c)))
    return list(found)


def self_key(expr: cst.BaseExpression) -> str | None:
    """``self.x`` -> ``"self.x"`` (the key a method tracks the attribute under)."""
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value == "self":
        return f"self.{expr.attr.value}"
    return None


class FlowBuilder:
    """Builds the :class:`ScopeFlow` of one scope."""

    def __init__(self, resolver: ImportResolver, scope_node: cst.CSTNode, parent: ScopeFlow | None,
                 is_where: Callable[[cst.Call], int] | None = None):
        self.resolver = resolver
        self.flow = ScopeFlow(scope_node, parent)
        self.no_grad = 0
        self.loop_depth = 0
        self.guards: tuple[Guard, ...] = ()  # guards of the expression being walked (ternaries, where)
        self.is_where = is_where or (lambda call: 0)
        self._defs: dict[tuple, Def] = {}
        self._guards: dict[tuple, Guard] = {}

    def _g(self, test, holds: bool, kind: str) -> Guard:
        key = (id(test), holds, kind)
        found = self._guards.get(key)
        if found is None:
            found = self._guards[key] = Guard(test, holds, kind)
        return found

    # ---- the result ----
    def build(self) -> ScopeFlow:
        node = self.flow.node
        env: Env = {}
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            env = self._params(node)
            if isinstance(node, cst.FunctionDef) and _decorated_no_grad(node, self.resolver):
                self.no_grad += 1
        if isinstance(node, cst.Lambda):
            self._expr(node.body, env)
            return self.flow
        body = node.body
        statements = body.body if isinstance(body, cst.IndentedBlock) else [body] if isinstance(body, cst.SimpleStatementSuite) else body
        self._block(list(statements), env)
        return self.flow

    def _params(self, node) -> Env:
        env: Env = {}
        params = node.params
        for i, param in enumerate([*params.posonly_params, *params.params]):
            is_self = i == 0 and param.name.value in ("self", "cls") and isinstance(node, cst.FunctionDef)
            env[param.name.value] = ((self._define(param.name.value, "self" if is_self else "param", param.default, param), ()),)
        for param in params.kwonly_params:
            env[param.name.value] = ((self._define(param.name.value, "param", param.default, param), ()),)
        for star in (params.star_arg, params.star_kwarg):
            if isinstance(star, cst.Param):
                env[star.name.value] = ((self._define(star.name.value, "unknown", None, star), ()),)
        for name, reaches in env.items():
            self.flow.params[name] = reaches[0][0]
        if isinstance(node, cst.FunctionDef) and any(r[0][0].kind == "self" for r in env.values()):
            # what each `self.x` the method reads held when it was called: the class's attribute, with the
            # method's own guards on the way to the read (`if self.total == 0: return`)
            for key in _self_reads(node):
                env.setdefault(key, ((Def(key, "entry", None, node), ()),))
        return env

    def _define(self, name: str, kind: str, value, node, path=(), target=None) -> Def:
        """One definition per statement, name and position, however often a loop body is walked."""
        key = (id(node), name, path)
        found = self._defs.get(key)
        if found is None:
            found = self._defs[key] = Def(name, kind, value, node, path, self.no_grad > 0, target)
            self.flow.defs.setdefault(name, []).append(found)
        return found

    # ---- statements ----
    def _block(self, statements: list, env: Env | None) -> Env | None:
        for statement in statements:
            if env is None:
                return None
            env = self._statement(statement, env)
        return env

    def _suite(self, suite, env: Env | None) -> Env | None:
        if suite is None or env is None:
            return env
        if isinstance(suite, cst.IndentedBlock):
            return self._block(list(suite.body), env)
        if isinstance(suite, cst.SimpleStatementSuite):
            return self._small_statements(suite.body, env)
        return env

    def _statement(self, s, env: Env) -> Env | None:
        if isinstance(s, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            return self._small_statements(s.body, env)
        if isinstance(s, cst.If):
            return self._if(s, env)
        if isinstance(s, (cst.For,)):
            return self._for(s, env)
        if isinstance(s, cst.While):
            return self._while(s, env)
        if isinstance(s, cst.With):
            return self._with(s, env)
        if isinstance(s, cst.Try) or type(s).__name__ == "TryStar":
            return self._try(s, env)
        if isinstance(s, (cst.FunctionDef, cst.ClassDef)):
            for decorator in s.decorators:
                self._expr(decorator.decorator, env)
            if isinstance(s, cst.FunctionDef):
                for param in (*s.params.posonly_params, *s.params.params, *s.params.kwonly_params):
                    if param.default is not None:
                        self._expr(param.default, env)
            else:
                for base in s.bases:
                    self._expr(base.value, env)
            env = dict(env)
            env[s.name.value] = ((self._define(s.name.value, "function" if isinstance(s, cst.FunctionDef) else "class", s, s), ()),)
            return env
        if isinstance(s, cst.Match):
            self._expr(s.subject, env)
            outs = [self._suite(case.body, dict(env)) for case in s.cases]
            return _merge([env] + outs)
        return env

    def _small_statements(self, smalls, env: Env) -> Env | None:
        for small in smalls:
            if env is None:
                return None
            env = self._small(small, env)
        return env

    def _small(self, s, env: Env) -> Env | None:
        if isinstance(s, cst.Assign):
            self._expr(s.value, env)
            out = dict(env)
            out.update(self._filled_by_call(s.value, s, env))
            for target in s.targets:
                self._target(target.target, s.value, s, (), out, env)
            return out
        if isinstance(s, cst.AnnAssign):
            if s.value is None:
                return env
            self._expr(s.value, env)
            out = dict(env)
            self._target(s.target, s.value, s, (), out, env)
            return out
        if isinstance(s, cst.AugAssign):
            self._expr(s.value, env)
            self._expr(s.target, env)  # the target is read first
            out = dict(env)
            key = _target_key(s.target)
            if key is not None:
                out[key] = ((self._define(key, "aug", s, s), ()),)
            elif isinstance(s.target, cst.Subscript):
                self._subscript_write(s.target, s, out, env)
            return out
        if isinstance(s, cst.Expr):
            self._expr(s.value, env)
            mutated = self._mutation(s.value)
            if mutated is not None:
                out = dict(env)
                out[mutated] = ((self._define(mutated, "mutate", s.value, s), ()),)
                env = out
            filled = self._filled_by_call(s.value, s, env)
            if filled:
                env = {**env, **filled}
            if isinstance(s.value, cst.Call) and _is_check_call(s.value) and s.value.args:
                return _guarded(env, self._g(s.value.args[0].value, True, "assert"))
            return env
        if isinstance(s, cst.Return):
            if s.value is not None:
                self._expr(s.value, env)
            self.flow.returns.append((s, ()))
            return None
        if isinstance(s, cst.Raise):
            if s.exc is not None:
                self._expr(s.exc, env)
            return None
        if isinstance(s, (cst.Continue, cst.Break)):
            return None
        if isinstance(s, cst.Assert):
            self._expr(s.test, env)
            return _guarded(env, self._g(s.test, True, "assert"))
        if isinstance(s, (cst.Import, cst.ImportFrom)):
            out = dict(env)
            names = s.names if not isinstance(s.names, cst.ImportStar) else ()
            for alias in names:
                local = alias.asname.name if alias.asname is not None else alias.name
                while isinstance(local, cst.Attribute):
                    local = local.value
                if isinstance(local, cst.Name):
                    out[local.value] = ((self._define(local.value, "import", None, s), ()),)
            return out
        if isinstance(s, cst.Del):
            return env
        if isinstance(s, (cst.Global, cst.Nonlocal)):
            return env
        return env

    def _filled_by_call(self, expr, statement, env: Env) -> Env:  # the new definitions only
        """``update(preds, numerator, denominator)``: a function of the project handed a fresh buffer fills it
        (torchmetrics' ``_update`` helpers), so it is not the zeros it was built as. Builtins and torch, numpy or
        math functions are not taken to write their arguments."""
        if not may_write_arguments(self.resolver, expr):
            return {}
        out = {}
        for a in expr.args:
            if isinstance(a.value, cst.Name) and not a.star and _is_buffer(env.get(a.value.value, ())):
                out[a.value.value] = ((self._define(a.value.value, "unknown", None, statement), ()),)
        return out

    def _mutation(self, expr) -> str | None:
        """``x.clamp_(min=eps)`` / ``x.add_(eps)`` / ``x.zero_()``: an in-place method on a name."""
        if not isinstance(expr, cst.Call) or not isinstance(expr.func, cst.Attribute):
            return None
        method = expr.func.attr.value
        if method in LIST_GROWERS and expr.args:
            return _target_key(expr.func.value)  # `outputs.append(h)`: the list now also holds h
        if not (method.endswith("_") and not method.endswith("__")) or method in ("requires_grad_", "retain_grad_"):
            return None
        return _target_key(expr.func.value)

    def _target(self, target, value, statement, path, out: Env, before: Env) -> None:
        key = _target_key(target)
        if key is not None:
            out[key] = ((self._define(key, "assign", value, statement, path), ()),)
            return
        if isinstance(target, (cst.Tuple, cst.List)):
            for i, element in enumerate(target.elements):
                inner = element.value
                if isinstance(element, cst.StarredElement):
                    k = _target_key(inner)
                    if k is not None:
                        out[k] = ((self._define(k, "unknown", None, statement), ()),)
                    continue
                self._target(inner, value, statement, path + (i,), out, before)
            return
        if isinstance(target, cst.Subscript):
            self._expr(target, before)
            self._subscript_write(target, statement, out, before, path)
            return
        if isinstance(target, cst.Attribute):
            self._expr(target.value, before)

    def _subscript_write(self, target: cst.Subscript, statement, out: Env, before: Env, path=()) -> None:
        key = _target_key(target.value)
        if key is None:
            return
        self._expr(target.value, before)
        out[key] = ((self._define(key, "subscript", statement, statement, path, target=target), ()),)

    def _if(self, s: cst.If, env: Env) -> Env | None:
        self._expr(s.test, env)
        body = self._suite(s.body, _guarded(env, self._g(s.test, True, "if")))
        orelse_env = _guarded(env, self._g(s.test, False, "if"))
        if s.orelse is None:
            other = orelse_env
        elif isinstance(s.orelse, cst.If):
            other = self._if(s.orelse, orelse_env)
        else:
            other = self._suite(s.orelse.body, orelse_env)
        return _merge([body, other], base=env, test=s.test)

    def _loop_twice(self, walk_once, env: Env) -> Env | None:
        self.loop_depth += 1
        try:
            first = walk_once(env)
            if self.loop_depth > 2 or first is None:
                return first if first is not None else env
            second = walk_once(_merge([env, first]))
            return _merge([first, second]) if second is not None else first
        finally:
            self.loop_depth -= 1

    def _for(self, s: cst.For, env: Env) -> Env | None:
        self._expr(s.iter, env)

        def once(start: Env) -> Env | None:
            inner = dict(start)
            self._target(s.target, s.iter, s, ("element",), inner, start)
            return self._suite(s.body, inner)

        after = self._loop_twice(once, env)
        if s.orelse is not None:
            after = self._suite(s.orelse.body, after if after is not None else env)
        return after if after is not None else env

    def _while(self, s: cst.While, env: Env) -> Env | None:
        self._expr(s.test, env)

        def once(start: Env) -> Env | None:
            return self._suite(s.body, _guarded(start, self._g(s.test, True, "while")))

        after = self._loop_twice(once, env)
        return after if after is not None else env

    def _with(self, s: cst.With, env: Env) -> Env | None:
        out = dict(env)
        stops_grad = False
        for item in s.items:
            self._expr(item.item, env)
            if _is_no_grad(item.item, self.resolver):
                stops_grad = True
            if item.asname is not None:
                self._target(item.asname.name, item.item, s, (), out, env)
        if stops_grad:
            self.no_grad += 1
        try:
            return self._suite(s.body, out)
        finally:
            if stops_grad:
                self.no_grad -= 1

    def _try(self, s, env: Env) -> Env | None:
        body = self._suite(s.body, dict(env))
        start = _merge([env, body])
        outs = [body]
        for handler in s.handlers:
            h_env = dict(start)
            if handler.name is not None:
                self._target(handler.name.name, None, handler, (), h_env, start)
            outs.append(self._suite(handler.body, h_env))
        if s.orelse is not None:
            outs[0] = self._suite(s.orelse.body, body)
        after = _merge(outs)
        if s.finalbody is not None:
            after = self._suite(s.finalbody.body, after if after is not None else start)
        return after

    # ---- expressions: record every load, with the guards of ternaries, where and short circuits ----
    def _expr(self, e, env: Env) -> None:
        if e is None:
            return
        stack = [(e, self.guards)]
        while stack:
            node, guards = stack.pop()
            if isinstance(node, cst.Name):
                reaches = env.get(node.value)
                if reaches is not None:
                    self.flow.uses[id(node)] = _union(self.flow.uses.get(id(node)), _with_guards(reaches, guards))
                continue
            if isinstance(node, cst.Attribute):
                key = self_key(node)
                if key is not None and key in env:
                    self.flow.uses[id(node)] = _union(self.flow.uses.get(id(node)), _with_guards(env[key], guards))
                    continue
                stack.append((node.value, guards))
                continue
            if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString)):
                continue
            if isinstance(node, cst.IfExp):
                stack.append((node.test, guards))
                stack.append((node.body, guards + (self._g(node.test, True, "ifexp"),)))
                stack.append((node.orelse, guards + (self._g(node.test, False, "ifexp"),)))
                continue
            if isinstance(node, cst.BooleanOperation):
                stack.append((node.left, guards))
                holds = isinstance(node.operator, cst.And)
                stack.append((node.right, guards + (self._g(node.left, holds, "and" if holds else "or"),)))
                continue
            if isinstance(node, (cst.Lambda,)):
                continue  # a scope of its own
            if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
                self._comprehension(node, env, guards)
                continue
            if isinstance(node, cst.NamedExpr):
                stack.append((node.value, guards))
                continue
            if isinstance(node, cst.Call):
                branches = self.is_where(node)
                if branches:
                    self._where(node, branches, env, guards, stack)
                    continue
            for child in _children(node):
                stack.append((child, guards))

    def _where(self, call: cst.Call, shape: int, env: Env, guards, stack) -> None:
        """``where(c, a, b)``: ``a`` is computed (and differentiated) everywhere, but selected where ``c``
        holds. ``shape`` 1: function form (c, a, b); 2: method ``a.where(c, b)``; 3: ``x.masked_fill(m, v)``
        (x where m does not hold)."""
        args = [a.value for a in call.args]
        if shape == 1 and len(args) >= 3:
            cond, a, b = args[0], args[1], args[2]
            stack.append((cond, guards))
            stack.append((a, guards + (self._g(cond, True, "where"),)))
            stack.append((b, guards + (self._g(cond, False, "where"),)))
            for rest in args[3:]:
                stack.append((rest, guards))
            return
        if shape in (2, 3) and isinstance(call.func, cst.Attribute) and args:
            cond = args[0]
            receiver = call.func.value
            stack.append((cond, guards))
            stack.append((receiver, guards + (self._g(cond, shape == 2, "where"),)))
            for rest in args[1:]:
                stack.append((rest, guards + ((self._g(cond, False, "where"),) if shape == 2 else ())))
            return
        for child in _children(call):
            stack.append((child, guards))

    def _comprehension(self, node, env: Env, guards) -> None:
        inner = dict(env)
        comp = node.for_in
        while comp is not None:
            self._expr(comp.iter, inner)
            self._target(comp.target, comp.iter, comp, ("element",), inner, inner)
            for condition in comp.ifs:
                self._expr(condition.test, inner)
                inner = _guarded(inner, self._g(condition.test, True, "filter"))
            comp = comp.inner_for_in
        saved = self.guards
        self.guards = guards
        try:
            if isinstance(node, cst.DictComp):
                self._expr(node.key, inner)
                self._expr(node.value, inner)
            else:
                self._expr(node.elt, inner)
        finally:
            self.guards = saved


_PLAN = Plan({"Name", "Attribute", "Call", "IfExp", "BooleanOperation", "Lambda", "ListComp", "SetComp",
              "GeneratorExp", "DictComp", "NamedExpr"})


BUFFER_CONSTRUCTORS = frozenset({"zeros", "zeros_like", "ones", "ones_like", "empty", "empty_like", "full",
                                 "full_like", "tensor", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})


def _is_buffer(reaches) -> bool:
    """Every definition reaching here builds a fresh buffer (``torch.zeros(n)``), the kind a helper fills, or
    is such a fill (the second time round a loop that fills it)."""
    if not reaches:
        return False
    for definition, _ in reaches:
        if definition.kind == "unknown" and definition.value is None:
            continue
        call = definition.value if definition.kind == "assign" and not definition.path else None
        func = call.func if isinstance(call, cst.Call) else None
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else None
        if name not in BUFFER_CONSTRUCTORS:
            return False
    return True


def _children(node):
    for name in _PLAN.fields(type(node)):
        value = getattr(node, name)
        if isinstance(value, cst.CSTNode):
            if _PLAN.relevant(type(value)):
                yield value
        elif isinstance(value, (tuple, list)):
            for item in value:
                if isinstance(item, cst.CSTNode) and _PLAN.relevant(type(item)):
                    yield item


def _target_key(target) -> str | None:
    if isinstance(target, cst.Name):
        return target.value
    return self_key(target)


def _with_guards(reaches: tuple[Reach, ...], guards: tuple[Guard, ...]) -> tuple[Reach, ...]:
    if not guards:
        return reaches
    return tuple((d, g + guards) for d, g in reaches)


def _guarded(env: Env | None, guard: Guard) -> Env | None:
    if env is None:
        return None
    return {name: tuple((d, g + (guard,)) for d, g in reaches) for name, reaches in env.items()}


# Reaches of one name kept at a merge; past it, guards are dropped (each definition reaches unguarded), which keeps
# nested loops of branches linear instead of exponential at the price of the guards' facts there.
MAX_REACHES = 24


def _reach_key(r: Reach) -> tuple:
    """Guards are rebuilt on each pass over a loop body: the same test and outcome is the same guard."""
    return id(r[0]), tuple((id(g.test), g.holds, g.kind) for g in r[1])


def _union(a: tuple[Reach, ...] | None, b: tuple[Reach, ...]) -> tuple[Reach, ...]:
    if not a:
        return b
    seen = {_reach_key(r) for r in a}
    out = a + tuple(r for r in b if _reach_key(r) not in seen)
    if len(out) > MAX_REACHES:
        defs: dict[int, Def] = {}
        for d, _ in out:
            defs.setdefault(id(d), d)
        out = tuple((d, ()) for d in defs.values())
    return out


def _merge(envs, base: Env | None = None, test=None) -> Env | None:
    live = [e for e in envs if e is not None]
    if not live:
        return None
    if len(live) == 1:
        out = dict(live[0])
    else:
        out = {}
        for name in set().union(*live):
            reaches: tuple[Reach, ...] = ()
            for e in live:
                if name in e:
                    reaches = _union(reaches, e[name])
            out[name] = reaches
    if base is not None and test is not None and len(live) == 2:
        # a definition that reached both arms of the `if` unchanged: neither arm's guard applies after it
        for name, reaches in base.items():
            merged = out.get(name)
            if not merged:
                continue
            for d, g in reaches:
                both = [r for r in merged if r[0] is d and len(r[1]) == len(g) + 1 and r[1][-1].test is test]
                if len(both) == 2:
                    merged = tuple(r for r in merged if not any(r is x for x in both)) + ((d, g),)
            out[name] = merged
    return out


def _decorated_no_grad(node: cst.FunctionDef, resolver: ImportResolver) -> bool:
    return any(_is_no_grad(d.decorator, resolver) for d in node.decorators)


def _is_no_grad(expr, resolver: ImportResolver) -> bool:
    """``torch.no_grad()``, ``torch.inference_mode()``, ``torch.set_grad_enabled(False)``, ``no_grad``."""
    call = expr
    if isinstance(call, cst.Call):
        func = call.func
        name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
        if name == "set_grad_enabled":
            return bool(call.args) and isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == "False"
        if name in NO_GRAD_CALLS:
            return not (name == "inference_mode" and call.args and isinstance(call.args[0].value, cst.Name) and call.args[0].value.value == "False")
        return False
    name = expr.attr.value if isinstance(expr, cst.Attribute) else expr.value if isinstance(expr, cst.Name) else ""
    return name in NO_GRAD_CALLS


def _is_check_call(call: cst.Call) -> bool:
    """``torch._assert(cond, msg)``, ``torch._check(cond)``, ``check_xxx(cond)``: an assertion by call."""
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    lowered = name.lower()
    return lowered.lstrip("_").startswith(("assert", "check")) or lowered.endswith(("_check", "_assert"))
