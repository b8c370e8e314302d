"""What a value can hold besides numbers: a frame (a scope, with the values one call site gave its
parameters), an ``nn`` module, the file's own functions and classes, an instance of one."""
from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from nanlint.analysis.flow import ScopeFlow


@dataclass(frozen=True, eq=False)
class Frame:
    flow: ScopeFlow
    bindings: dict | None = None  # parameter name -> Value, from one call site
    key: tuple = ()
    call: cst.Call | None = None
    caller: "Frame | None" = None
    depth: int = 0
    cls: cst.ClassDef | None = None

    @property
    def function(self) -> cst.CSTNode:
        return self.flow.node


@dataclass(frozen=True, eq=False)
class NNModule:
    """An ``nn.X(...)`` instance: calling it does ``op`` (or runs ``layers`` in order)."""

    name: str
    layers: tuple = ()
    call: cst.Call | None = None


@dataclass(frozen=True, eq=False)
class LocalFunction:
    fn: cst.FunctionDef
    cls: cst.ClassDef | None = None
    bound_self: bool = False


@dataclass(frozen=True, eq=False)
class LocalClass:
    cls: cst.ClassDef


@dataclass(frozen=True, eq=False)
class Instance:
    cls: cst.ClassDef
