"""Small syntactic helpers: literal numbers, folded constants, call arguments, normalized source text."""
from __future__ import annotations

import libcst as cst

from nanlint.resolver import dotted

NAMED_CONSTANTS = {"pi": 3.141592653589793, "e": 2.718281828459045, "tau": 6.283185307179586}


def literal_value(expr: cst.BaseExpression) -> float | None:
    """The value of a numeric literal (``1e-8``, ``-3``, ``2 ** 10`` is not folded)."""
    if isinstance(expr, (cst.Integer, cst.Float)):
        try:
            return float(expr.evaluated_value)
        except (ValueError, OverflowError):
            return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, (cst.Minus, cst.Plus)):
        inner = literal_value(expr.expression)
        if inner is None:
            return None
        return -inner if isinstance(expr.operator, cst.Minus) else inner
    if isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value == "float" and expr.args:
        arg = expr.args[0].value
        if isinstance(arg, cst.SimpleString):
            text = arg.evaluated_value.strip().lower() if isinstance(arg.evaluated_value, str) else ""
            try:
                return float(text)
            except ValueError:
                return None
        return literal_value(arg)
    if isinstance(expr, cst.Attribute) and expr.attr.value == "inf" and dotted(expr) in ("math.inf", "np.inf", "numpy.inf", "torch.inf"):
        return float("inf")
    return None


def constant_value(expr: cst.BaseExpression | None) -> float | None:
    """Like :func:`literal_value`, and folds arithmetic on literals (``1 / 3``, ``1 - 1e-7``, ``2 ** -0.5``)
    and the named constants ``math.pi`` / ``np.pi`` / ``math.e``."""
    if expr is None:
        return None
    value = literal_value(expr)
    if value is not None:
        return value
    if isinstance(expr, cst.BinaryOperation):
        left, right = constant_value(expr.left), constant_value(expr.right)
        if left is None or right is None:
            return None
        op = expr.operator
        try:
            if isinstance(op, cst.Add):
                return left + right
            if isinstance(op, cst.Subtract):
                return left - right
            if isinstance(op, cst.Multiply):
                return left * right
            if isinstance(op, cst.Divide) and right != 0:
                return left / right
            if isinstance(op, cst.Power) and abs(right) < 64:
                result = left ** right
                return float(result) if isinstance(result, (int, float)) else None
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        return None
    if isinstance(expr, cst.UnaryOperation) and isinstance(expr.operator, cst.Minus):
        inner = constant_value(expr.expression)
        return -inner if inner is not None else None
    if isinstance(expr, cst.Attribute) and isinstance(expr.value, cst.Name) and expr.value.value in ("math", "np", "numpy", "torch"):
        return NAMED_CONSTANTS.get(expr.attr.value)
    return None


def arg(call: cst.Call, index: int, keyword: str | None = None) -> cst.BaseExpression | None:
    """The call's positional argument ``index`` or keyword ``keyword``."""
    positional = 0
    for a in call.args:
        if a.keyword is not None:
            if keyword is not None and a.keyword.value == keyword:
                return a.value
            continue
        if a.star:
            return None
        if positional == index:
            return a.value
        positional += 1
    return None


_EMPTY_MODULE = cst.Module(body=[])


def source_text(node: cst.CSTNode) -> str:
    """The source text of a node, without surrounding whitespace or parentheses (for comparing expressions)."""
    name = dotted(node) if isinstance(node, cst.BaseExpression) else None
    if name is not None:
        return name
    try:
        text = _EMPTY_MODULE.code_for_node(node)
    except Exception:  # a node that cannot print on its own
        return ""
    text = " ".join(text.split())
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


