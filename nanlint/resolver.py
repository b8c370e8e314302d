"""Our own light resolver of imports and aliases (libcst's scope and qualified-name providers cost several
times the parse). It answers one question: what does this call really call?

``F.softmax``, ``torch.nn.functional.softmax``, ``from torch import softmax`` and ``x.softmax(-1)`` all
become a :class:`Target` with op ``softmax`` in the ``torch`` namespace (the last as a method call).
"""
from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

# Module prefixes that share one flat op vocabulary, mapped to a short namespace.
NAMESPACES = {
    "torch": "torch",
    "torch.nn.functional": "torch",
    "torch.special": "torch",
    "torch.Tensor": "torch",
    "torch.linalg": "torch",
    "torch.nn": "nn",
    "torch.nn.modules": "nn",
    "torch.nn.init": "init",
    "torch.optim": "optim",
    "torch.cuda.amp": "amp",
    "torch.amp": "amp",
    "torch.cpu.amp": "amp",
    "numpy": "numpy",
    "numpy.linalg": "numpy",
    "numpy.random": "numpy",
    "math": "math",
    "cmath": "math",
    "scipy.special": "scipy",
    "tensorflow": "tf",
    "tensorflow.math": "tf",
    "tensorflow.keras.ops": "tf",
    "tensorflow.experimental.numpy": "tf",
    "tensorflow.nn": "tf",
    "tensorflow.keras.backend": "tf",
    "keras.backend": "tf",
    "keras.ops": "tf",
    "tensorflow.compat.v1": "tf",
    "jax.numpy": "jax",
    "jax.nn": "jax",
    "jax.scipy.special": "jax",
    "torchvision.transforms": "transforms",
    "torchvision.transforms.v2": "transforms",
    "builtins": "builtin",
}

# Namespaces whose ops act on arrays or tensors elementwise (a method call ``x.log()`` joins these).
ARRAY_NAMESPACES = frozenset({"torch", "method", "numpy", "tf", "jax", "scipy", "math"})

BUILTINS = frozenset({"abs", "max", "min", "len", "sum", "float", "int", "pow", "round", "range"})


@dataclass(frozen=True)
class Target:
    """What a call calls. ``qualname`` is the full dotted name when it resolved through an import."""

    namespace: str  # torch, nn, numpy, math, tf, jax, method, builtin, local
    op: str
    qualname: str | None = None
    receiver: cst.BaseExpression | None = None  # for method calls: the object the method is called on

    @property
    def is_array_op(self) -> bool:
        return self.namespace in ARRAY_NAMESPACES

    @property
    def base_op(self) -> str:
        """The op without the in-place suffix: ``div_`` -> ``div``, ``clamp_`` -> ``clamp``."""
        op = self.op
        return op[:-1] if op.endswith("_") and not op.endswith("__") and len(op) > 1 else op

    @property
    def is_tensor_op(self) -> bool:
        """An op on tensors that carry gradients (torch, TensorFlow, JAX, or a method call)."""
        return self.namespace in ("torch", "method", "tf", "jax")


def dotted(expr: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of names, else None."""
    parts = []
    while isinstance(expr, cst.Attribute):
        parts.append(expr.attr.value)
        expr = expr.value
    if not isinstance(expr, cst.Name):
        return None
    parts.append(expr.value)
    return ".".join(reversed(parts))


def _module_name(node: cst.BaseExpression) -> str:
    return dotted(node) or ""


class ImportResolver:
    """Maps local names to the qualified names they were imported as. Imports anywhere in the module count
    (function-local imports included): a name rebound to something else is rare enough not to track."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}

    def add(self, node: cst.Import | cst.ImportFrom) -> None:
        if isinstance(node, cst.Import):
            for alias in node.names:
                full = _module_name(alias.name)
                if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                    self.aliases[alias.asname.name.value] = full
                else:
                    head = full.split(".")[0]
                    self.aliases[head] = head
            return
        if node.relative or node.module is None:
            return
        module = _module_name(node.module)
        if isinstance(node.names, cst.ImportStar):
            self.aliases.setdefault("*" + module, module)
            return
        for alias in node.names:
            name = _module_name(alias.name)
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            self.aliases[local] = f"{module}.{name}"

    def qualify(self, expr: cst.BaseExpression) -> str | None:
        """The qualified dotted name of a name chain, or None when its head is not an import."""
        name = dotted(expr)
        if name is None:
            return None
        head, _, rest = name.partition(".")
        base = self.aliases.get(head)
        if base is None:
            return None
        return f"{base}.{rest}" if rest else base

    def target(self, call: cst.Call) -> Target:
        func = call.func
        qualname = self.qualify(func)
        if qualname is not None:
            prefix, _, op = qualname.rpartition(".")
            namespace = NAMESPACES.get(prefix)
            if namespace is None and prefix.startswith("torch.nn.modules."):
                namespace = "nn"
            if namespace is None and prefix.startswith("torch.optim."):
                namespace = "optim"
            return Target(namespace or "other", op, qualname)
        if isinstance(func, cst.Attribute):
            return Target("method", func.attr.value, None, func.value)
        if isinstance(func, cst.Name):
            star = self._star_module(func.value)
            if star is not None:
                return Target(NAMESPACES.get(star, "other"), func.value, f"{star}.{func.value}")
            if func.value in BUILTINS:
                return Target("builtin", func.value, f"builtins.{func.value}")
            return Target("local", func.value)
        return Target("other", "")

    def local_name_for(self, module: str) -> str | None:
        """The local name a module was imported as (``F`` for ``torch.nn.functional``), if any."""
        for local, full in self.aliases.items():
            if full == module and not local.startswith("*"):
                return local
        return None

    @property
    def imports_autograd(self) -> bool:
        """Whether the file imports a framework whose values carry gradients (torch, TensorFlow, JAX, Keras)."""
        roots = {full.split(".")[0] for full in self.aliases.values()}
        return bool(roots & {"torch", "tensorflow", "jax", "keras", "kornia", "pytorch_lightning", "lightning"})

    def _star_module(self, name: str) -> str | None:
        for key, module in self.aliases.items():
            if key.startswith("*") and module in ("torch", "math", "numpy") and name in _STAR_NAMES.get(module, ()):
                return module
        return None


# Names that a ``from X import *`` plausibly brings in and that rules care about.
_STAR_NAMES = {
    "math": frozenset({"log", "sqrt", "exp", "acos", "asin", "log2", "log10", "pow"}),
    "torch": frozenset({"log", "sqrt", "exp", "softmax", "sigmoid", "acos", "asin", "rsqrt", "where"}),
    "numpy": frozenset({"log", "sqrt", "exp", "arccos", "arcsin", "log2", "log10", "where"}),
}
