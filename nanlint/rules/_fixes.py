"""What a fix must check before it rewrites code, shared by the rules that offer one.

A safe fix never changes what the code computes: it keeps every argument it cannot rewrite, it writes only
names that are bound, at the site, to the module it means (:meth:`FileContext.spelling`), it keeps the
comments written inside the code it replaces (:meth:`FileContext.replacement_fix`), and it is not offered
where the value may be complex or integer when the replacement is not implemented for those dtypes.
"""
from __future__ import annotations

import libcst as cst

from nanlint.rules.base import Rule

#: identifiers whose presence in where a value comes from says it may be complex
COMPLEX_WORDS = frozenset({
    "view_as_complex", "complex", "polar", "cfloat", "cdouble", "chalf", "complex32", "complex64", "complex128",
    "fft", "ifft", "rfft", "irfft", "fft2", "ifft2", "rfft2", "irfft2", "fftn", "ifftn", "rfftn", "irfftn",
    "hfft", "ihfft", "hfft2", "ihfft2", "hfftn", "ihfftn", "fftshift", "ifftshift", "stft", "eig", "eigvals",
    "ComplexFloatTensor", "ComplexDoubleTensor", "complex_", "csingle", "clongdouble",
})
#: ... that it may be an integer or bool tensor
INTEGER_WORDS = frozenset({
    "long", "int", "short", "byte", "char", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16",
    "uint32", "uint64", "bool_", "intc", "intp", "LongTensor", "IntTensor", "ShortTensor", "ByteTensor",
    "CharTensor", "BoolTensor", "randint", "randint_like", "arange", "argmax", "argmin", "argsort", "nonzero",
    "bincount", "count_nonzero", "searchsorted", "bucketize", "multinomial", "randperm", "indices", "isnan",
    "isinf", "isfinite", "logical_and", "logical_or", "logical_not", "logical_xor", "eq", "ne", "lt", "le",
    "gt", "ge", "floor_divide", "one_hot", "tril_indices", "triu_indices",
})
_TENSOR_FACTORIES = frozenset({"tensor", "as_tensor", "array", "asarray", "Tensor"})
_FOLLOWED = frozenset({"assign", "aug", "for", "with", "walrus", "subscript", "mutate"})


def may_be_complex_or_integer(rule: Rule, expr: cst.BaseExpression, limit: int = 400) -> bool:
    """Whether ``expr`` may hold complex, integer or bool values: a dtype fact of the value analysis, or,
    in the expression and the assignments its names come from, a complex/integer constructor, cast or op
    (``dtype=torch.cfloat``, ``torch.view_as_complex``, ``torch.fft.*``, ``.long()``, ``arange``, a
    comparison, an integer literal tensor, ``1j``). Unknown values (parameters) are taken as floating."""
    v = rule.value(expr)
    if v.dtype in ("complex", "int", "bool") or v.integer:
        return True
    flow = getattr(rule.ctx.frame, "flow", None)
    uses = getattr(flow, "uses", {}) if flow is not None else {}
    queue: list[cst.CSTNode] = [expr]
    seen: set[int] = set()
    found = False
    budget = [limit]

    class _Scan(cst.CSTVisitor):
        def on_visit(self, node: cst.CSTNode) -> bool:
            nonlocal found
            budget[0] -= 1
            if found or budget[0] <= 0:
                found = found or budget[0] <= 0
                return False
            if isinstance(node, (cst.Imaginary, cst.Comparison)):
                found = True
            elif isinstance(node, cst.Name):
                if node.value in COMPLEX_WORDS or node.value in INTEGER_WORDS:
                    found = True
                for definition, _ in uses.get(id(node), ()):
                    if definition.kind in _FOLLOWED and isinstance(definition.value, cst.CSTNode) and id(definition.value) not in seen:
                        seen.add(id(definition.value))
                        queue.append(definition.value)
            elif isinstance(node, cst.Attribute):
                if node.attr.value in COMPLEX_WORDS or node.attr.value in INTEGER_WORDS:
                    found = True
            elif isinstance(node, cst.Call) and _integer_literal_tensor(node):
                found = True
            elif isinstance(node, cst.BinaryOperation) and isinstance(node.operator, (cst.FloorDivide, cst.BitAnd, cst.BitOr, cst.BitXor)):
                found = True
            return not found

    while queue and not found:
        queue.pop().visit(_Scan())
    return found


def _integer_literal_tensor(call: cst.Call) -> bool:
    """``torch.tensor([1, 2])``: a tensor made from integer literals only (no float literal, no dtype)."""
    func = call.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    if name not in _TENSOR_FACTORIES or not call.args or any(a.keyword is not None and a.keyword.value == "dtype" for a in call.args):
        return False
    kinds = {"int": False, "float": False}

    class _Literals(cst.CSTVisitor):
        def visit_Integer(self, node) -> None:
            kinds["int"] = True

        def visit_Float(self, node) -> None:
            kinds["float"] = True

    call.args[0].value.visit(_Literals())
    return kinds["int"] and not kinds["float"]


def only_arguments(call: cst.Call, positional: int, keywords: tuple[str, ...] = ()) -> bool:
    """``call`` passes at most ``positional`` positional arguments, only the given keywords, and no
    ``*args`` / ``**kwargs``: a rewrite that keeps just those loses nothing."""
    count = 0
    for a in call.args:
        if a.star:
            return False
        if a.keyword is None:
            count += 1
        elif a.keyword.value not in keywords:
            return False
    return count <= positional


def functional_name(rule: Rule, at: cst.CSTNode) -> str | None:
    """How the code at ``at`` names ``torch.nn.functional`` (``F``, ``nn.functional``, ``torch.nn.functional``)
    through a module-level import that nothing shadows there; None when it cannot without a new import."""
    return rule.ctx.spelling("torch.nn.functional", at)


def torch_name(rule: Rule, at: cst.CSTNode) -> str | None:
    return rule.ctx.spelling("torch", at)


def is_method_call(call: cst.Call, site) -> bool:
    return site is not None and site.is_method and isinstance(call.func, cst.Attribute)
