"""The file's scopes: which function or class encloses which, and the file's imports (one pass over the
statements, expressions not entered)."""
from __future__ import annotations

import libcst as cst

from nanlint.resolver import ImportResolver


class Scopes:
    def __init__(self, module: cst.Module, resolver: ImportResolver):
        self.module = module
        self._parent: dict[int, cst.CSTNode] = {}
        self._class: dict[int, cst.ClassDef] = {}
        self.functions: dict[str, cst.FunctionDef] = {}
        self.classes: dict[str, cst.ClassDef] = {}
        self.methods: dict[int, dict[str, cst.FunctionDef]] = {}
        self.class_body: dict[int, list] = {}
        self._scan(module.body, module, None, resolver)

    def _scan(self, statements, scope: cst.CSTNode, cls: cst.ClassDef | None, resolver: ImportResolver) -> None:
        stack = [(list(statements), scope, cls)]
        while stack:
            body, scope, cls = stack.pop()
            for statement in body:
                if isinstance(statement, cst.FunctionDef):
                    self._parent[id(statement)] = scope
                    if cls is not None:
                        self._class[id(statement)] = cls
                        self.methods.setdefault(id(cls), {})[statement.name.value] = statement
                    elif isinstance(scope, cst.Module):
                        self.functions[statement.name.value] = statement
                    stack.append((_statements(statement.body), statement, None))
                    continue
                if isinstance(statement, cst.ClassDef):
                    self._parent[id(statement)] = scope
                    self.classes.setdefault(statement.name.value, statement)
                    self.methods.setdefault(id(statement), {})
                    self.class_body[id(statement)] = _statements(statement.body)
                    stack.append((_statements(statement.body), statement, statement))
                    continue
                if isinstance(statement, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
                    for small in statement.body:
                        if isinstance(small, (cst.Import, cst.ImportFrom)):
                            resolver.add(small)
                    continue
                inner = []
                for attr in ("body", "orelse", "finalbody"):
                    child = getattr(statement, attr, None)
                    while child is not None:
                        block = child if isinstance(child, (cst.IndentedBlock, cst.SimpleStatementSuite)) else getattr(child, "body", None)
                        if isinstance(block, (cst.IndentedBlock, cst.SimpleStatementSuite)):
                            inner.extend(_statements(block))
                        child = getattr(child, "orelse", None) if isinstance(child, cst.If) else None
                for handler in getattr(statement, "handlers", ()) or ():
                    inner.extend(_statements(handler.body))
                for case in getattr(statement, "cases", ()) or ():
                    inner.extend(_statements(case.body))
                if inner:
                    stack.append((inner, scope, cls))

    def parent_scope(self, node: cst.CSTNode) -> cst.CSTNode | None:
        if isinstance(node, cst.Module):
            return None
        return self._parent.get(id(node), self.module)

    def class_of(self, node: cst.CSTNode | None) -> cst.ClassDef | None:
        """The class whose method ``node`` is (methods only; nested functions are not)."""
        return self._class.get(id(node)) if node is not None else None

    def method(self, cls: cst.ClassDef, name: str) -> cst.FunctionDef | None:
        for klass in self.lineage(cls):
            found = self.methods.get(id(klass), {}).get(name)
            if found is not None:
                return found
        return None

    def lineage(self, cls: cst.ClassDef) -> list[cst.ClassDef]:
        """``cls`` and its base classes defined in this file, nearest first."""
        out, queue = [], [cls]
        while queue and len(out) < 16:
            klass = queue.pop(0)
            if any(k is klass for k in out):
                continue
            out.append(klass)
            queue.extend(self.bases(klass))
        return out

    def bases(self, cls: cst.ClassDef, seen=None) -> list[cst.ClassDef]:
        out = []
        for base in cls.bases:
            value = base.value
            name = value.value if isinstance(value, cst.Name) else None
            found = self.classes.get(name) if name else None
            if found is not None and found is not cls:
                out.append(found)
        return out


def _statements(block) -> list:
    if isinstance(block, cst.IndentedBlock):
        return list(block.body)
    if isinstance(block, cst.SimpleStatementSuite):
        return [block]
    return []
