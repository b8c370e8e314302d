"""Structural facts about expressions that interval arithmetic cannot see.

``x.max() - x.min()`` and ``x - x.mean()`` subtract statistics of the *same* tensor; ``boxes[:, 3] -
boxes[:, 1]`` subtracts two entries of one tensor; ``|x|^2 + |y|^2 - 2 x.y`` is a squared distance written
out. Names are followed to the expression they were bound to, so ``hi = x.amax(-1); lo = x.amin(-1);
hi - lo`` is recognized too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import libcst as cst

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator

_STATS = {"max": "max", "amax": "max", "nanmax": "max", "min": "min", "amin": "min", "nanmin": "min",
          "mean": "mean", "nanmean": "mean", "median": "median", "nanmedian": "median"}
_LINEAR = frozenset({"matmul", "mm", "bmm", "dot", "einsum", "inner", "tensordot", "mv", "linear", "baddbmm"})


@dataclass(frozen=True)
class Stem:
    kind: str  # max, min, mean, median (a statistic of base), element (an entry of base), value (base itself)
    base: str  # source text of the tensor
    base_expr: cst.BaseExpression | None
    index: str = ""
    pairwise: bool = False  # an entry broadcast against another (x[:, None] - x[None])


def _unwrap(ev: "Evaluator", expr: cst.BaseExpression) -> cst.BaseExpression:
    """``x.max(1).values`` / ``x.max(1)[0]`` -> the call; names -> what they were bound to."""
    expr = ev.resolved(expr)
    if isinstance(expr, cst.Attribute) and expr.attr.value in ("values", "data") and isinstance(expr.value, cst.Call):
        return expr.value
    if isinstance(expr, cst.Subscript) and isinstance(expr.value, cst.Call) and len(expr.slice) == 1:
        index = expr.slice[0].slice
        if isinstance(index, cst.Index) and isinstance(index.value, cst.Integer) and index.value.value == "0":
            return expr.value
    return expr


def stem(ev: "Evaluator", expr: cst.BaseExpression) -> Stem | None:
    e = _unwrap(ev, expr)
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        if site is not None:
            kind = _STATS.get(site.name)
            if kind is not None and (site.is_method or "input" in site._bound):
                base = site.arg("input")
                if base is not None and not site.arg("other") and not _elementwise_max(site):
                    return Stem(kind, ev.text(ev.resolved_name(base)), base)
            if site.name == "logsumexp" and site.arg("input") is not None:
                return Stem("max", ev.text(site.arg("input")), site.arg("input"))
            if site.name in ("unsqueeze",) and site.arg("input") is not None:
                base = site.arg("input")
                return Stem("element", ev.text(ev.resolved_name(base)), base, ev.text(site.dim) if site.dim else "", True)
    if isinstance(e, cst.Call) and ev.opcall(e) is None and e.args:
        # scatter_max(x, index) / segment_max(x, ...) / a helper named like a max of its first argument
        name = e.func.attr.value if isinstance(e.func, cst.Attribute) else e.func.value if isinstance(e.func, cst.Name) else ""
        if "max" in name.lower() or "logsumexp" in name.lower():
            return Stem("max", ev.text(e.args[0].value), e.args[0].value)
    if isinstance(e, cst.Subscript) and isinstance(e.value, cst.Subscript) and isinstance(e.value.value, cst.Call):
        inner = stem(ev, e.value)  # scatter_max(x, i)[0][index]
        if inner is not None and inner.kind == "max":
            return inner
    if isinstance(e, cst.Subscript) and isinstance(e.value, (cst.Name, cst.Attribute)):
        index = ",".join(ev.text(s.slice) for s in e.slice)
        pairwise = any(isinstance(s.slice, cst.Index) and isinstance(s.slice.value, cst.Name) and s.slice.value.value == "None" for s in e.slice)
        constantish = all(_constant_index(s.slice) for s in e.slice)
        if constantish:
            return Stem("element", ev.text(e.value), e.value, index, pairwise)
    if isinstance(e, (cst.Name, cst.Attribute)):
        return Stem("value", ev.text(e), e)
    if isinstance(expr, (cst.Name, cst.Attribute)):
        return Stem("value", ev.text(expr), expr)
    return None


def _elementwise_max(site) -> bool:
    """``torch.max(x, y)`` is elementwise; ``torch.max(x, 1)`` reduces."""
    rest = site.extra_positional
    if site.name in ("max", "min") and rest:
        first = rest[0]
        return not (isinstance(first, (cst.Integer, cst.UnaryOperation, cst.Tuple)) or first is site.arg("dim"))
    return False


def _constant_index(s) -> bool:
    if isinstance(s, cst.Slice):
        return True
    if isinstance(s, cst.Index):
        v = s.value
        if isinstance(v, (cst.Integer, cst.Ellipsis)) or (isinstance(v, cst.Name) and v.value == "None"):
            return True
        if isinstance(v, cst.UnaryOperation) and isinstance(v.expression, cst.Integer):
            return True
    return False


def _einops_input(ev: "Evaluator", e) -> cst.BaseExpression | None:
    """The tensor of ``einops.rearrange(t, ...)`` / ``repeat`` / ``reduce(t, ..., 'sum')`` (same values, or
    their sum), or None."""
    if not isinstance(e, cst.Call) or not e.args or e.args[0].keyword is not None:
        return None
    qualified = ev.resolver.qualify(e.func) or ""
    if qualified in ("einops.rearrange", "einops.repeat") or (
            qualified == "einops.reduce" and any(isinstance(a.value, cst.SimpleString) and a.value.evaluated_value in ("sum", "mean") for a in e.args[1:])):
        return e.args[0].value
    return None


def _einsum_pair(ev: "Evaluator", e) -> bool:
    """``einops.einsum(x, y, 'b i d, b j d -> b i j')`` / ``torch.einsum('...', x, y)``: a product of two
    different tensors."""
    if not isinstance(e, cst.Call):
        return False
    qualified = ev.resolver.qualify(e.func) or ""
    if qualified not in ("einops.einsum", "torch.einsum"):
        return False
    operands = [a.value for a in e.args if a.keyword is None and not isinstance(a.value, cst.SimpleString)]
    return len(operands) == 2 and ev.text(operands[0]) != ev.text(operands[1])


def _is_squared_term(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> bool:
    e = ev.resolved(expr)
    if depth > 4:
        return False
    inner = _einops_input(ev, e)
    if inner is not None:
        return _is_squared_term(ev, inner, depth + 1)
    if isinstance(e, cst.BinaryOperation):
        if isinstance(e.operator, cst.Power) and ev.number(e.right) == 2:
            return True
        if isinstance(e.operator, cst.Multiply) and ev.text(e.left) == ev.text(e.right):
            return True
        if isinstance(e.operator, cst.Add):
            return _is_squared_term(ev, e.left, depth + 1) and _is_squared_term(ev, e.right, depth + 1)
        return False
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        if site is None:
            return False
        if site.name == "square":
            return True
        if site.name == "pow" and site.num("exponent") == 2:
            return True
        if site.name in ("sum", "mean") and site.arg("input") is not None:
            return _is_squared_term(ev, site.arg("input"), depth + 1)
        if site.name in ("t", "transpose", "unsqueeze", "view", "reshape", "T") and site.arg("input") is not None:
            return _is_squared_term(ev, site.arg("input"), depth + 1)
    if isinstance(e, cst.Attribute) and e.attr.value in ("T", "mT"):
        return _is_squared_term(ev, e.value, depth + 1)
    if isinstance(e, cst.Subscript):
        return _is_squared_term(ev, e.value, depth + 1)
    return False


def _is_cross_term(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> bool:
    e = ev.resolved(expr)
    if depth > 4:
        return False
    if _einsum_pair(ev, e):
        return True
    inner = _einops_input(ev, e)
    if inner is not None:
        return _is_cross_term(ev, inner, depth + 1)
    if isinstance(e, cst.BinaryOperation):
        if isinstance(e.operator, cst.MatrixMultiply):
            return True
        if isinstance(e.operator, cst.Multiply):
            return _is_cross_term(ev, e.left, depth + 1) or _is_cross_term(ev, e.right, depth + 1)
        return False
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        if site is None:
            return False
        if site.name in _LINEAR:
            return True
        if site.name in ("sum", "mul", "t", "transpose") and site.arg("input") is not None:
            inner = ev.resolved(site.arg("input"))
            if isinstance(inner, cst.BinaryOperation) and isinstance(inner.operator, cst.Multiply):
                return ev.text(inner.left) != ev.text(inner.right) or _is_cross_term(ev, inner, depth + 1)
            return _is_cross_term(ev, inner, depth + 1)
    return False


def is_square_expansion(ev: "Evaluator", left: cst.BaseExpression, right: cst.BaseExpression) -> bool:
    """``|x|^2 + |y|^2 - 2 x.y`` (and ``x2 + y2 - 2 * xy`` through names), and a square minus a product
    (``b**2 - 4*a*c``, ``mean**2 - det``): expressions that are >= 0 in exact arithmetic only."""
    lhs = ev.resolved(left)
    if isinstance(lhs, cst.BinaryOperation) and isinstance(lhs.operator, cst.Add):
        return _is_squared_term(ev, lhs) and _is_cross_term(ev, right)
    return _is_squared_term(ev, lhs) and _is_product_term(ev, right)


def is_sum_expansion(ev: "Evaluator", left: cst.BaseExpression, right: cst.BaseExpression) -> bool:
    """``x2 + y2 + xy`` with ``xy = -2 * x @ y.T`` (``einsum(...) * -2``): the squared-distance expansion
    written as a sum with a negated cross term."""
    for squares, cross in ((left, right), (right, left)):
        if _is_negated_cross(ev, cross) and _is_squared_term(ev, squares):
            return True
    return False


def _is_negated_cross(ev: "Evaluator", expr: cst.BaseExpression) -> bool:
    e = ev.resolved(expr)
    if isinstance(e, cst.UnaryOperation) and isinstance(e.operator, cst.Minus):
        return _is_cross_term(ev, e.expression)
    if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, cst.Multiply):
        for factor, other in ((e.left, e.right), (e.right, e.left)):
            number = ev.number(factor)
            if number is not None and number < 0 and _is_cross_term(ev, other):
                return True
    return False


def _is_product_term(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> bool:
    """A product of two values (``4 * a * c``, ``h00 * h11 - h01 * h10``), not a square."""
    e = ev.resolved(expr)
    if depth > 3 or not isinstance(e, cst.BinaryOperation):
        return False
    if isinstance(e.operator, cst.Multiply):
        factors = [f for f in (e.left, e.right) if ev.number(f) is None]
        if len(factors) == 2 and ev.text(factors[0]) != ev.text(factors[1]):
            return True
        return any(_is_product_term(ev, f, depth + 1) for f in factors)
    if isinstance(e.operator, cst.Subtract):
        return _is_product_term(ev, e.left, depth + 1) and _is_product_term(ev, e.right, depth + 1)
    return False


def is_variance_expansion(ev: "Evaluator", left: cst.BaseExpression, right: cst.BaseExpression) -> bool:
    """``mean(x**2) - mean(x)**2``."""
    lhs, rhs = ev.resolved(left), ev.resolved(right)
    if not _is_squared_term(ev, rhs):
        return False
    lhs_site = ev.opcall(lhs) if isinstance(lhs, cst.Call) else None
    if lhs_site is None or lhs_site.name != "mean" or lhs_site.arg("input") is None:
        return False
    if not _is_squared_term(ev, lhs_site.arg("input")):
        return False
    inner = rhs.left if isinstance(rhs, cst.BinaryOperation) else None
    if isinstance(rhs, cst.Call):
        site = ev.opcall(rhs)
        inner = site.arg("input") if site is not None else None
    inner = ev.resolved(inner) if inner is not None else None
    return isinstance(inner, cst.Call) and getattr(ev.opcall(inner), "name", None) == "mean"


def _dot_operands(ev: "Evaluator", expr: cst.BaseExpression) -> frozenset[str] | None:
    """The two vectors of a dot product: ``sum(a * b, dim)``, ``(a * b).sum(dim)``, ``np.sum(np.multiply(a,
    b), axis=1)``, ``dot(a, b)``, ``a @ b``."""
    e = ev.resolved(expr)
    if isinstance(e, cst.BinaryOperation) and isinstance(e.operator, cst.MatrixMultiply):
        return frozenset((_vector_text(ev, e.left), _vector_text(ev, e.right)))
    if not isinstance(e, cst.Call):
        return None
    site = ev.opcall(e)
    if site is None:
        return None
    if site.name in ("dot", "vdot", "inner", "matmul") and site.arg("input") is not None and site.arg("other") is not None:
        return frozenset((_vector_text(ev, site.arg("input")), _vector_text(ev, site.arg("other"))))
    if site.name != "sum" or site.arg("input") is None:
        return None
    product = ev.resolved(site.arg("input"))
    if isinstance(product, cst.BinaryOperation) and isinstance(product.operator, cst.Multiply):
        pair = (product.left, product.right)
    elif isinstance(product, cst.Call) and (inner := ev.opcall(product)) is not None and inner.name == "mul" \
            and inner.arg("input") is not None and inner.arg("other") is not None:
        pair = (inner.arg("input"), inner.arg("other"))
    else:
        return None
    texts = frozenset(_vector_text(ev, x) for x in pair)
    return texts if len(texts) == 2 else None


def _vector_text(ev: "Evaluator", expr: cst.BaseExpression) -> str:
    """A vector's text without transposes (``b.T`` is ``b``)."""
    e = expr
    while isinstance(e, cst.Attribute) and e.attr.value in ("T", "mT"):
        e = e.value
    return ev.text(ev.resolved_name(e))


def _norm_of(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> str | None:
    """The vector whose Euclidean norm ``expr`` is: ``norm(a, ...)``, ``a.norm(dim=1)``,
    ``np.linalg.norm(a, axis=1)``, ``sqrt(sum(a * a))``, ``sqrt((a ** 2).sum(-1))``."""
    e = ev.resolved(expr)
    if depth > 3 or not isinstance(e, cst.Call):
        return None
    site = ev.opcall(e)
    if site is None or site.arg("input") is None:
        return None
    if site.name in ("norm", "vector_norm"):
        order = site.arg("p") or site.arg("ord")
        return _vector_text(ev, site.arg("input")) if order is None or ev.number(order) == 2 else None
    if site.name == "sqrt":
        inner = ev.resolved(site.arg("input"))
        summed = ev.opcall(inner) if isinstance(inner, cst.Call) else None
        if summed is None or summed.name != "sum" or summed.arg("input") is None:
            return None
        square = ev.resolved(summed.arg("input"))
        if isinstance(square, cst.BinaryOperation) and (
                isinstance(square.operator, cst.Power) and ev.number(square.right) == 2
                or isinstance(square.operator, cst.Multiply) and ev.text(square.left) == ev.text(square.right)):
            return _vector_text(ev, square.left)
        squared = ev.opcall(square) if isinstance(square, cst.Call) else None
        if squared is not None and squared.arg("input") is not None and (
                squared.name == "square" or squared.name == "pow" and squared.num("exponent") == 2):
            return _vector_text(ev, squared.arg("input"))
    return None


def _norm_product(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> frozenset[str] | None:
    """The two vectors of ``norm(a) * norm(b)``, also floored (``clamp(min=eps)``, ``max(..., eps)``) or
    with an eps added: each keeps the ratio within [-1, 1] up to rounding."""
    e = ev.resolved(expr)
    if depth > 3:
        return None
    if isinstance(e, cst.BinaryOperation):
        if isinstance(e.operator, cst.Multiply):
            a, b = _norm_of(ev, e.left), _norm_of(ev, e.right)
            return frozenset((a, b)) if a and b and a != b else None
        if isinstance(e.operator, cst.Add):
            for side, other in ((e.left, e.right), (e.right, e.left)):
                if ev.number(other) is not None or ev.value(other).role == "eps":
                    return _norm_product(ev, side, depth + 1)
        return None
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        if site is not None and site.name in ("clamp", "clamp_min", "clip", "maximum", "max") and site.arg("input") is not None:
            return _norm_product(ev, site.arg("input"), depth + 1)
    return None


def is_cosine_ratio(ev: "Evaluator", numerator: cst.BaseExpression, denominator: cst.BaseExpression) -> bool:
    """``dot(a, b) / (norm(a) * norm(b))``: a cosine, in [-1, 1] by Cauchy-Schwarz and past it by rounding."""
    dot = _dot_operands(ev, numerator)
    return dot is not None and len(dot) == 2 and _norm_product(ev, denominator) == dot


def is_sum_of(ev: "Evaluator", denominator: cst.BaseExpression, numerator: cst.BaseExpression) -> bool:
    """``x / x.sum(...)`` (``numerator`` is what is summed)."""
    e = _unwrap(ev, denominator)
    if not isinstance(e, cst.Call):
        return False
    site = ev.opcall(e)
    if site is None or site.name not in ("sum", "nansum") or site.arg("input") is None:
        return False
    return ev.text(ev.resolved_name(site.arg("input"))) == ev.text(ev.resolved_name(numerator))


def sum_weights(ev: "Evaluator", denominator: cst.BaseExpression, numerator: cst.BaseExpression) -> str | None:
    """``sum(x * w) / sum(w)``: the text of the weights ``w`` when the numerator weights by what the
    denominator sums (a weighted mean), else None."""
    e = _unwrap(ev, denominator)
    if not isinstance(e, cst.Call):
        return None
    site = ev.opcall(e)
    if site is None or site.name not in ("sum", "nansum") or site.arg("input") is None:
        return None
    weights = ev.text(site.arg("input"))
    if ev.text(_unwrap(ev, numerator)) == weights:
        return None  # x / x.sum(): a normalization, not a weighted mean
    found = []

    class _Find(cst.CSTVisitor):
        def on_visit(self, node) -> bool:
            if found:
                return False
            if isinstance(node, (cst.Name, cst.Attribute, cst.Subscript)) and ev.text(node) == weights:
                found.append(node)
                return False
            return True

    ev.resolved(numerator).visit(_Find())
    return weights if found else None


_SAME_VALUES = frozenset({"detach", "clone", "contiguous", "float", "double", "half", "to", "type_as", "unsqueeze",
                          "view", "reshape", "squeeze", "expand", "expand_as", "view_as", "reshape_as"})


def dominated(ev: "Evaluator", expr: cst.BaseExpression, depth: int = 0) -> set[str]:
    """The tensors ``expr`` is an upper bound of, entry by entry: ``x.max(dim, keepdim=True)`` bounds ``x``,
    ``torch.max(a, b)`` bounds ``a``, ``b`` and what they bound (``x - torch.max(x, y.max(1)[0]).detach()`` <= 0:
    the max shift of a log-sum-exp written by hand)."""
    if depth > 4:
        return set()
    e = _unwrap(ev, expr)
    while isinstance(e, cst.Call) and isinstance(e.func, cst.Attribute) and e.func.attr.value in _SAME_VALUES:
        e = _unwrap(ev, e.func.value)
    found: set[str] = set()
    s = stem(ev, e)
    if s is not None and s.kind == "max":
        found.add(s.base)
    if isinstance(e, cst.Call):
        site = ev.opcall(e)
        elementwise = site is not None and (site.name in ("maximum", "fmax") or (site.name == "max" and _elementwise_max(site)))
        if elementwise:
            other = site.arg("other") or (site.extra_positional[0] if site.extra_positional else None)
            for operand in (site.arg("input"), other):
                if operand is not None:
                    found.add(ev.text(operand))
                    found |= dominated(ev, operand, depth + 1)
    return found
