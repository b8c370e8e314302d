"""Which module a name refers to at a given node, and whether something shadows it there.

A fix may write ``F.softmax`` only where ``F`` is surely ``torch.nn.functional``: bound at module level by
imports of that module alone, and rebound by no function, lambda, comprehension or class body around the
site. :class:`~nanlint.resolver.ImportResolver` answers "what does this call call" for the analysis and
accepts an import anywhere; a fix needs this stricter answer."""
from __future__ import annotations

import re

import libcst as cst

from nanlint.analysis.locate import Locator
from nanlint.resolver import dotted

_SCOPE_NODES = (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)

#: what a scope binds: name -> [(kind, module)], kind ``import`` (with the module or attribute) or ``other``
Binds = dict[str, list[tuple[str, str | None]]]


class ModuleNames:
    """The file's module-level imports and the scopes that shadow them; one per file, caches included."""

    def __init__(self, module: cst.Module, source: str, locate: Locator):
        self.module = module
        self.source = source
        self.locate = locate
        self._scopes: dict[int, Binds] = {}  # id(scope node) -> its bindings (the nodes live as long as the file)
        self._imports: dict[str, str] | None = None
        self._globals: set[str] | None = None

    def spelling(self, qualname: str, at: cst.CSTNode) -> str | None:
        """How the code at ``at`` can name the module (or module attribute) ``qualname`` without a new import:
        the shortest name through a module-level import of it or of a parent module that is not shadowed at
        ``at``. None when there is none: a fix must then not be offered."""
        best: str | None = None
        for local, module in self.imports().items():
            if qualname == module:
                candidate = local
            elif qualname.startswith(module + "."):
                candidate = local + qualname[len(module):]
            else:
                continue
            if self.bound_to_module(local, at) and (best is None or len(candidate) < len(best)):
                best = candidate
        return best

    def refers_to_module(self, expr: cst.BaseExpression, qualname: str, at: cst.CSTNode) -> bool:
        """Whether the dotted name ``expr``, written at ``at``, names ``qualname`` or something in it through a
        module-level import that nothing shadows there."""
        name = dotted(expr)
        if name is None:
            return False
        head, _, rest = name.partition(".")
        module = self.imports().get(head)
        if module is None or not self.bound_to_module(head, at):
            return False
        full = f"{module}.{rest}" if rest else module
        return full == qualname or full.startswith(qualname + ".")

    def bound_to_module(self, name: str, at: cst.CSTNode) -> bool:
        """``name`` is bound at module level only by unconditional imports of one module, and no scope around
        ``at`` (function, lambda, comprehension, or the class body it is directly in) binds it."""
        if name not in self.imports() or name in self.globals_declared():
            return False
        path = self.locate.path_to(at)
        if path is None:
            return False
        in_function = False
        for scope in reversed(path[:-1]):
            if isinstance(scope, cst.Module):
                break
            if isinstance(scope, cst.ClassDef):  # a class body does not enclose the functions in it
                if not in_function and self._binds(scope, name):
                    return False
                continue
            if isinstance(scope, _SCOPE_NODES):
                if self._binds(scope, name):
                    return False
                if isinstance(scope, (cst.FunctionDef, cst.Lambda)):
                    in_function = True
        return True

    def imports(self) -> dict[str, str]:
        """local name -> module, for names bound at module level only by imports of that one module, at least
        one of them unconditional (directly in the module body, not under ``if``/``try``)."""
        if self._imports is not None:
            return self._imports
        binds = scope_bindings(self.module, self._scopes)
        unconditional: set[str] = set()
        for statement in self.module.body:
            if isinstance(statement, cst.SimpleStatementLine):
                for small in statement.body:
                    if isinstance(small, (cst.Import, cst.ImportFrom)):
                        unconditional.update(name for name, _ in imported(small))
        found: dict[str, str] = {}
        if "*" not in binds:  # a star import may bind anything
            for name, entries in binds.items():
                modules = {module for kind, module in entries if kind == "import"}
                if name in unconditional and len(modules) == 1 and all(kind == "import" for kind, _ in entries):
                    found[name] = modules.pop()
        self._imports = found
        return found

    def globals_declared(self) -> set[str]:
        """Names some function declares ``global``: it may rebind them, so they are not surely the import."""
        if self._globals is not None:
            return self._globals
        found: set[str] = set()
        if "global" in self.source:

            class _Globals(cst.CSTVisitor):
                def visit_Global(self, node: cst.Global) -> None:
                    found.update(item.name.value for item in node.names)

            self.module.visit(_Globals())
        self._globals = found
        return found

    def _binds(self, scope: cst.CSTNode, name: str) -> bool:
        text = self.locate.source_of(scope)
        if text is not None and not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", text):
            return False  # the name is not even written in the scope
        return name in scope_bindings(scope, self._scopes)


def imported(node: cst.Import | cst.ImportFrom) -> list[tuple[str, str | None]]:
    """(local name, module or attribute it binds; None for a relative import) for each name an import binds;
    ``("*", None)`` for a star import."""
    out: list[tuple[str, str | None]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                out.append((alias.asname.name.value, full))
            else:
                head = full.split(".")[0]
                out.append((head, head))
        return out
    if isinstance(node.names, cst.ImportStar):
        return [("*", None)]
    module = None if node.relative or node.module is None else dotted(node.module) or ""
    for alias in node.names:
        name = dotted(alias.name) or ""
        local = alias.asname.name.value if alias.asname is not None and isinstance(alias.asname.name, cst.Name) else name
        out.append((local, f"{module}.{name}" if module else None))
    return out


def target_names(target: cst.CSTNode) -> list[str]:
    """The names an assignment target binds (``a, *b`` binds both; ``x.y`` and ``x[i]`` bind none)."""
    if isinstance(target, cst.Name):
        return [target.value]
    if isinstance(target, (cst.Tuple, cst.List)):
        return [n for element in target.elements for n in target_names(element.value)]
    if isinstance(target, cst.StarredElement):
        return target_names(target.value)
    return []


def scope_bindings(scope: cst.CSTNode, cache: dict | None = None) -> Binds:
    """name -> [(kind, module)] for the names ``scope`` binds itself: kind ``import`` (with the module or
    attribute imported) or ``other`` (a parameter, an assignment, a loop or ``with`` target, a nested ``def``
    or ``class``, a walrus, ``del``, ``global``...). Nested scopes are not entered."""
    if cache is not None and id(scope) in cache:
        return cache[id(scope)]
    binder = _Binder(scope)
    scope.visit(binder)
    if cache is not None:
        cache[id(scope)] = binder.names
    return binder.names


class _Walrus(cst.CSTVisitor):
    """A walrus in a comprehension binds in the scope around it."""

    def __init__(self, names: Binds):
        super().__init__()
        self.names = names

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        for name in target_names(node.target):
            self.names.setdefault(name, []).append(("other", None))


class _Binder(cst.CSTVisitor):
    def __init__(self, scope: cst.CSTNode):
        super().__init__()
        self.scope = scope
        self.names: Binds = {}

    def bind(self, name: str, kind: str = "other", module: str | None = None) -> None:
        self.names.setdefault(name, []).append((kind, module))

    def bind_targets(self, target: cst.CSTNode) -> None:
        for name in target_names(target):
            self.bind(name)

    def visit_FunctionDef(self, node: cst.FunctionDef) -> bool:
        if node is self.scope:
            return True
        self.bind(node.name.value)
        return False

    def visit_ClassDef(self, node: cst.ClassDef) -> bool:
        if node is self.scope:
            return True
        self.bind(node.name.value)
        return False

    def visit_Lambda(self, node: cst.Lambda) -> bool:
        return node is self.scope

    def _comprehension(self, node) -> bool:
        if node is self.scope:
            return True
        node.visit(_Walrus(self.names))
        return False

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_CompFor(self, node: cst.CompFor) -> None:
        self.bind_targets(node.target)

    def visit_Param(self, node: cst.Param) -> None:
        self.bind(node.name.value)

    def visit_Assign(self, node: cst.Assign) -> None:
        for target in node.targets:
            self.bind_targets(target.target)

    def visit_AnnAssign(self, node: cst.AnnAssign) -> None:
        self.bind_targets(node.target)

    def visit_AugAssign(self, node: cst.AugAssign) -> None:
        self.bind_targets(node.target)

    def visit_For(self, node: cst.For) -> None:
        self.bind_targets(node.target)

    def visit_WithItem(self, node: cst.WithItem) -> None:
        if node.asname is not None:
            self.bind_targets(node.asname.name)

    def visit_ExceptHandler(self, node: cst.ExceptHandler) -> None:
        if node.name is not None:
            self.bind_targets(node.name.name)

    def visit_NamedExpr(self, node: cst.NamedExpr) -> None:
        self.bind_targets(node.target)

    def visit_Del(self, node: cst.Del) -> None:
        self.bind_targets(node.target)

    def visit_Global(self, node: cst.Global) -> None:
        for item in node.names:
            self.bind(item.name.value)

    def visit_Nonlocal(self, node: cst.Nonlocal) -> None:
        for item in node.names:
            self.bind(item.name.value)

    def visit_MatchAs(self, node) -> None:
        if node.name is not None:
            self.bind(node.name.value)

    def visit_MatchStar(self, node) -> None:
        if node.name is not None:
            self.bind(node.name.value)

    def visit_MatchMapping(self, node) -> None:
        if node.rest is not None:
            self.bind(node.rest.value)

    def visit_Import(self, node: cst.Import) -> None:
        for local, module in imported(node):
            self.bind(local, "import", module)

    def visit_ImportFrom(self, node: cst.ImportFrom) -> None:
        for local, module in imported(node):
            self.bind(local, "import" if module is not None else "other", module)
