"""NAN24x: ``torch.where`` evaluates both branches; the one it does not select still sends NaN into the
gradient when it is log/sqrt/division/pow/acos of a value outside its domain."""
from __future__ import annotations

import libcst as cst

from nanlint.facts import F, Fact, arg, constant_value, source_text
from nanlint.findings import Confidence
from nanlint.rules._shared import carries_no_gradient, describe, in_no_grad, is_where, names_in
from nanlint.rules.base import Rule

RISKY_UNARY = {
    "log": "log", "log2": "log", "log10": "log", "log1p": "log1p", "sqrt": "sqrt", "rsqrt": "rsqrt",
    "acos": "acos", "asin": "acos", "arccos": "acos", "arcsin": "acos", "acosh": "acosh", "arccosh": "acosh",
    "atanh": "acos", "arctanh": "acos", "reciprocal": "div",
}
NAMESPACES = frozenset({"torch", "method", "tf", "jax"})

class WhereNanBranch(Rule):
    code = "NAN241"
    triggers = ("where",)

    def visit_Call(self, node: cst.Call) -> None:
        if not is_where(self, node) or in_no_grad(self.ctx):
            return
        cond = node.args[0].value
        cond_names = names_in(cond)
        for branch in (node.args[1].value, node.args[2].value):
            expr, via = branch, None
            if isinstance(branch, cst.Name):
                resolved = self.ctx.facts.resolve(branch, self.ctx.scope, depth=1)
                if resolved is not branch:
                    expr, via = resolved, branch
            hazards = []
            for site, kind, x in self._risky(expr):
                if self._safe(kind, x) or carries_no_gradient(self, site):
                    continue
                related = bool(names_in(x) & cond_names) or bool(self._bound_names(x) & cond_names)
                fact = self.fact(x)
                if related or fact.may_be_zero or fact.may_be_negative:
                    hazards.append((site, kind, x, fact, related))
            if not hazards:
                continue
            # one finding per branch, at its first hazard: the others are the same mistake
            site, kind, x, fact, related = hazards[0]
            where_line = self.ctx.line_of(node)
            through = f" (through `{source_text(via)}`)" if via is not None else ""
            more = f" (and {len(hazards) - 1} more such op{'s' if len(hazards) > 2 else ''} in this branch)" if len(hazards) > 1 else ""
            self.report(
                site,
                f"`torch.where` (line {where_line}) evaluates this branch{through} for every element, masked-out ones included: `{kind}` of {describe(self, x, fact, 'values the condition masks out')} can be inf/NaN there{more}, and its NaN gradient still flows (0 * NaN = NaN)",
                confidence=Confidence.HIGH if any(h[4] for h in hazards) else Confidence.MEDIUM,
                hint="make the operand safe first: `safe_x = torch.where(cond, x, 1.0)` then `torch.where(cond, f(safe_x), y)`",
            )

    def _bound_names(self, x: cst.BaseExpression) -> set[str]:
        out: set[str] = set()
        for name in list(names_in(x))[:8]:
            node = cst.Name(name) if "." not in name else None
            if node is None:
                continue
            found = self.ctx.facts.binding_value(node, self.ctx.scope)
            if found is not None and not _is_guard_call(found[0]):
                out |= names_in(found[0])
        return out

    def _safe(self, kind: str, x: cst.BaseExpression) -> bool:
        if constant_value(x) is not None:
            return True
        resolved = self.ctx.facts.resolve(x, self.ctx.scope) if isinstance(x, cst.Name) else x
        if _is_guard_call(resolved):
            return True  # the double-where idiom: the operand was replaced before the op
        fact = self.fact(x)
        if fact.has(F.CONST):
            return True
        if kind in ("div", "rsqrt"):
            return fact.is_nonzero
        if kind in ("sqrt", "log", "pow"):
            return fact.has(F.POSITIVE) or (fact.has(F.NONNEG) and fact.has(F.GUARDED)) or (kind == "pow" and fact.has(F.NONNEG) and not fact.may_be_zero)
        if kind == "pow_int_neg":
            return fact.is_nonzero
        if kind == "log1p":
            return fact.has(F.NONNEG)
        if kind == "acos":
            return fact.has(F.UNIT) and fact.has(F.GUARDED)
        if kind == "acosh":
            return fact.has(F.POSITIVE) and fact.value is not None and fact.value >= 1
        return False

    def _risky(self, expr: cst.BaseExpression):
        """``(site, kind, operand)`` for each risky op in a branch, nested ``where`` calls left to their own visit."""
        found: list = []
        rule = self

        class _Sites(cst.CSTVisitor):
            def visit_Call(self, node: cst.Call) -> bool:
                if is_where(rule, node):
                    return False
                target = rule.target(node)
                op = target.base_op
                if target.namespace in NAMESPACES:
                    if op in RISKY_UNARY and not (target.namespace == "method" and node.args):
                        x = target.receiver if target.namespace == "method" else arg(node, 0, "input")
                        if x is not None:
                            found.append((node, RISKY_UNARY[op], x))
                    elif op in ("div", "divide", "true_divide"):
                        den = arg(node, 0, "other") if target.namespace == "method" else arg(node, 1, "other")
                        if den is not None:
                            found.append((node, "div", den))
                    elif op in ("pow", "float_power"):
                        x = target.receiver if target.namespace == "method" else arg(node, 0, "input")
                        exponent = arg(node, 0, "exponent") if target.namespace == "method" else arg(node, 1, "exponent")
                        kind = _power_kind(exponent)
                        if x is not None and kind is not None:
                            found.append((node, kind, x))
                return True

            def visit_BinaryOperation(self, node: cst.BinaryOperation) -> bool:
                if isinstance(node.operator, (cst.Divide, cst.FloorDivide)):
                    found.append((node, "div", node.right))
                elif isinstance(node.operator, cst.Power):
                    kind = _power_kind(node.right)
                    if kind is not None:
                        found.append((node, kind, node.left))
                return True

        expr.visit(_Sites())
        return found


def _power_kind(exponent: cst.BaseExpression | None) -> str | None:
    if exponent is None:
        return None
    value = constant_value(exponent)
    if value is None:
        return None  # a runtime exponent: NAN214's business
    if value.is_integer():
        return "pow_int_neg" if value < 0 else None
    if 0 < value < 1:
        return "sqrt"
    return "pow"


def _is_guard_call(expr: cst.BaseExpression) -> bool:
    if not isinstance(expr, cst.Call):
        return False
    func = expr.func
    name = func.attr.value if isinstance(func, cst.Attribute) else func.value if isinstance(func, cst.Name) else ""
    return name in ("where", "masked_fill", "masked_fill_", "clamp", "clamp_min", "clip", "nan_to_num", "masked_scatter")
