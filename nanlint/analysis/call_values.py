"""Values of attributes, calls and operators: ``self.x`` and module state, the op table's transfer
functions, the file's own functions, builtins, NumPy statistics, ``finfo``, einops. A mixin of
:class:`~nanlint.analysis.evaluate.Evaluator`."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import construct, domain as d, guards as guard_mod, names, optable as ops
from nanlint.analysis import arith
from nanlint.analysis.domain import UNKNOWN, Evidence, Tier, Value
from nanlint.analysis.einops_ops import einops_value
from nanlint.analysis.flow import self_key
from nanlint.analysis.name_values import CYCLE, _rooted, element_of
from nanlint.analysis.objects import Frame, Instance
from nanlint.analysis.opcall import OpCall
from nanlint.analysis.reduce import mask_value
from nanlint.analysis.transfer import transfer
from nanlint.resolver import Target

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator

NO_GRAD_NAMESPACES = frozenset({"numpy", "math", "scipy"})
_NAMED_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf, "nan": math.nan}


class CallValues:
    """Attributes, calls and operators (mixed into the Evaluator)."""

    # ---- attributes ----
    def _attribute(self, node: cst.Attribute, frame: Frame) -> Value:
        attr = node.attr.value
        key = self_key(node)
        if key is not None:
            reaches = frame.flow.uses.get(id(node))
            if reaches is not None:
                out = None
                for definition, guards in reaches:
                    v = self.definition_value(definition, frame)
                    if v is CYCLE:
                        continue
                    v = _rooted(v, key)
                    if guards:
                        v = guard_mod.apply_guards(self, frame, v, key, guards)
                    out = v if out is None else d.join(out, v)
                if out is not None or not reaches:
                    return out or UNKNOWN
                # only the loop's own update reaches here: what the attribute held on entry is the class's
            if frame.cls is not None:
                found = self.calls.class_attribute(frame.cls, attr)
                if found is not None:
                    return _rooted(found, key)
            # set nowhere in this file: module state (a parameter, a buffer, a setting), not a per-call activation
            return names.named(attr, node) or Value(role=d.PARAMETER, node=node)
        qualified = self.resolver.qualify(node)
        if qualified is not None:
            return _module_constant(qualified, node)
        base = node.value
        if isinstance(base, cst.Call) and attr in ("eps", "tiny", "smallest_normal", "min", "max", "resolution"):
            return _finfo(self, base, attr, node)
        if attr in ("T", "mT", "H", "mH", "real", "imag"):
            return self.value(base, frame)
        if attr == "data":
            return replace(self.value(base, frame), grad=False)
        if attr in ("shape",):
            return Value(lo=1.0, integer=True, role=d.SIZE, grad=False, node=node, desc=f"the shape of `{self.text(base)}`",
                         pynum=True)
        if attr in ("ndim", "size") and not isinstance(node, cst.Call):
            return Value(lo=1.0 if attr == "ndim" else 0.0, integer=True, role=d.SIZE, grad=False, node=node, pynum=True)
        if attr in ("values", "indices"):
            v = self.value(base, frame)
            if v.items is not None and len(v.items) == 2:
                return v.items[0 if attr == "values" else 1]
            return v if attr == "values" else Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
        if attr in ("grad",):
            owner = self.value(base, frame)
            why = f"`{self.text(node)}` is all 0 for a parameter that received no gradient"
            return Value(node=node, desc=f"the gradient `{self.text(node)}`", single=owner.single, grad=False,
                         vanish=Evidence(Tier.PLAUSIBLE, why, node, "zero-gradient", root=self.key(node)))
        if attr in ("dtype", "device", "is_cuda", "requires_grad"):
            return Value(grad=False, node=node)
        base_value = self.value(base, frame)
        if isinstance(base_value.module, Instance):
            found = self.calls.class_attribute(base_value.module.cls, attr)
            if found is not None:
                return found
        if base_value.module is None and isinstance(base, (cst.Name, cst.Attribute)):
            return names.named(attr, node) or UNKNOWN
        return UNKNOWN

    # ---- calls ----
    def _call(self, node: cst.Call, frame: Frame) -> Value:
        target = self.target(node)
        ns = target.namespace
        if target.op in ("rearrange", "repeat", "reduce"):
            qualified = self.resolver.qualify(node.func) or ""
            if qualified.startswith("einops."):
                found = einops_value(self, node, qualified, frame)
                if found is not None:
                    return found
        local = self.calls.evaluate(node, target, frame)
        if local is not None:
            return local
        if ns == "nn":
            return self.calls.nn_module(node, target, frame)
        if ns in ("method", "local", "other") and node.args and node.args[0].keyword is None and names.MOVE_CALL.search(target.op or ""):
            return replace(self.value(node.args[0].value, frame), node=node)  # c_f.to_device(x, device=...): x, elsewhere
        if ns == "method":
            op = target.op
            base = ops.canonical(op)
            if op in ops.IDENTITY_METHODS or base in ops.IDENTITY_METHODS or base in ("float", "long", "int", "bool"):
                receiver = target.receiver
                v = self.value(receiver, frame) if receiver is not None else UNKNOWN
                site = self.opcall(node, frame)
                return construct.cast(v, base, site if site is not None else _cast_site(self, node, frame))
            if op in ("parameters", "named_parameters") and not node.args:
                single = Evidence(Tier.PLAUSIBLE, "a parameter can hold a single element (a scalar weight, a bias of size 1)", node, "single")
                param = Value(role=d.PARAMETER, grad=True, node=node, desc="a parameter", single=single)
                element = param if op == "parameters" else Value(items=(Value(grad=False), param))
                return Value(element=element, node=node)
            if op in ("items", "keys", "get", "split", "join", "format", "append", "extend", "pop", "update", "copy_"):
                return UNKNOWN
        if ns == "builtin":
            out = self._builtin(node, target, frame)
            if out is not None:
                return out
        site = self.opcall(node, frame)
        if site is not None:
            if ns == "numpy" and site.spec.transfer in (ops.REDUCE, ops.NORM, ops.SPREAD) and site.arg("input") is not None:
                out = self._numpy_statistic(site, frame)
            else:
                out = transfer(site)
            if ns in NO_GRAD_NAMESPACES:
                out = replace(out, grad=False)
            return out
        if ns in ("local", "other"):
            args = [a.value for a in node.args if a.keyword is None and not a.star]
            if ("dot" in target.op.lower() or "inner" in target.op.lower()) and len(args) == 2 and self.text(args[0]) == self.text(args[1]):
                x = self.value(args[0], frame)  # a helper's dot product of a vector with itself: a squared norm
                out = Value(lo=0.0, grad=x.grad, node=node, desc=f"a squared norm (`{self.text(node)}`)", vanish=x.vanish)
                return out.with_point(0.0, x.vanish) if x.vanish is not None else out
            named = names.named_call(target.op, node, self.text(node))
            if named is not None:
                return named
        return UNKNOWN

    def _numpy_statistic(self, site: OpCall, frame: Frame) -> Value:
        """A NumPy statistic of an array nothing else is known of: NumPy code computes on data (images,
        frames, signals), which can be constant or all 0."""
        x = site.arg("input")
        v = self.value(x, frame)
        if not names.opaque(v):
            return transfer(site)
        data = names.data_argument(self.text(x), x)
        data = replace(data, desc=f"`{self.text(x)}` (a NumPy array of data)")
        self.memo[(id(x), frame.key, self.masked, self.extra)] = data
        try:
            return transfer(site)
        finally:
            self.memo[(id(x), frame.key, self.masked, self.extra)] = v

    def _builtin(self, node: cst.Call, target: Target, frame: Frame) -> Value | None:
        op = target.op
        args = [a.value for a in node.args if a.keyword is None and not a.star]
        if op in ("max", "min") and len(args) >= 2:
            values = [self.value(a, frame) for a in args]
            out = values[0]
            for other in values[1:]:
                out = construct.pick(out, other, node, self.text(node), largest=op == "max")
            return out
        if op in ("sum", "max", "min") and len(args) == 1:
            seq = self.value(args[0], frame)
            element = seq.element or (d.join_all(seq.items) if seq.items else None)
            if element is None:
                return UNKNOWN
            if op == "sum":
                out = replace(element, node=node, items=None, element=None, desc=f"a sum (`{self.text(node)}`)")
                if seq.empty is not None:
                    out = out.with_point(0.0, Evidence(seq.empty.tier, f"{seq.empty.why}, and the sum of nothing is 0", node, "empty"))
                return out
            return replace(element, node=node)
        if op == "int":
            v = self.value(args[0], frame) if args else UNKNOWN
            return replace(v, integer=True, grad=False)
        if op == "range":
            nums = [self.number(a, frame) for a in args]
            start = nums[0] if len(nums) >= 2 else 0.0
            element = Value(lo=start if start is not None else -d.INF, integer=True, role=d.INDEX, grad=False, node=node)
            if start == 0:
                element = element.with_point(0.0, Evidence(Tier.PLAUSIBLE, "range starts at 0", node, "index"))
            return Value(element=element, node=node, grad=False)
        if op in ("enumerate",) and args:
            seq = self.value(args[0], frame)
            index = Value(lo=0.0, integer=True, role=d.INDEX, grad=False, node=node)
            return Value(element=Value(items=(index, element_of(seq))), node=node)
        if op == "zip":
            return Value(element=Value(items=tuple(element_of(self.value(a, frame)) for a in args)), node=node)
        if op in ("list", "tuple", "sorted", "reversed", "set") and args:
            return self.value(args[0], frame)
        return None

    # ---- operators ----
    def _binary(self, node: cst.BinaryOperation, frame: Frame) -> Value:
        op = node.operator
        if isinstance(op, (cst.BitAnd, cst.BitOr, cst.BitXor)):
            left, right = self.value(node.left, frame), self.value(node.right, frame)
            if left.role == d.MASK or right.role == d.MASK:
                return mask_value(node, f"`{self.text(node)}`")
            return Value(integer=left.integer and right.integer, grad=False, node=node)
        site = self.opcall(node, frame)
        if site is None:
            return UNKNOWN
        value = transfer(site)
        if isinstance(op, cst.Subtract):
            key = self.key(node)
            if key is not None:  # `if maxa - mina == 0: return` guards the difference itself
                value = self.expression_guards(node, key, value, frame)
        return value

    def expression_guards(self, node: cst.BaseExpression, key: str, value: Value, frame: Frame) -> Value:
        """``value`` of a keyed expression (``fps[-1]``, ``maxa - mina``) under the guards on the path to it:
        those that reach its first name."""
        first = node
        while not isinstance(first, cst.Name):
            if isinstance(first, cst.BinaryOperation):
                first = first.left
            elif isinstance(first, (cst.Subscript, cst.Attribute)):
                first = first.value
            else:
                return value
        reaches = frame.flow.uses.get(id(first))
        if not reaches:
            return value
        out = None
        for _, guards in reaches:
            v = guard_mod.apply_guards(self, frame, value, key, guards) if guards else value
            out = v if out is None else d.join(out, v)
        return out if out is not None else value

    def _unary(self, node: cst.UnaryOperation, frame: Frame) -> Value:
        op = node.operator
        if isinstance(op, cst.Minus):
            return arith.negate(self.value(node.expression, frame), node)
        if isinstance(op, cst.Plus):
            return self.value(node.expression, frame)
        inner = self.value(node.expression, frame)
        if (isinstance(op, cst.BitInvert) and inner.role == d.MASK) or isinstance(op, cst.Not):
            return self._negated_mask(node, frame)
        return UNKNOWN

    def _negated_mask(self, node: cst.UnaryOperation, frame: Frame) -> Value:
        """``~keep``: a mask of its own, rooted in ``~keep``, so that a guard on a name bound to it
        (``drop = ~keep; if drop.any():``) clears its emptiness where the guard held."""
        key = self.key(node)
        out = mask_value(node, f"`{self.text(node)}`", root=key)
        reaches = frame.flow.uses.get(id(node.expression)) if isinstance(node.expression, cst.Name) else None
        if key is None or not reaches or len(reaches) != 1:
            return out
        guards = reaches[0][1] + self.extra
        return guard_mod.apply_guards(self, frame, out, key, guards) if guards else out




def _cast_site(ev: Evaluator, node: cst.Call, frame: Frame) -> OpCall:
    positional = [a.value for a in node.args if a.keyword is None]
    keywords = {a.keyword.value: a.value for a in node.args if a.keyword is not None}
    return OpCall(node, ops.OPS["float"], "method", ev, {}, positional, keywords, frame)


def _module_constant(qualified: str, node) -> Value:
    head, _, name = qualified.rpartition(".")
    if head in ("math", "numpy", "torch", "cmath", "jax.numpy") and name in _NAMED_CONSTANTS:
        value = _NAMED_CONSTANTS[name]
        if math.isnan(value):
            return Value(node=node, grad=False)
        if math.isinf(value):
            return Value(lo=value, hi=value, const=value, grad=False, node=node, role=d.LITERAL)
        return d.constant(value, node)
    if head in ("torch", "numpy") and name in ("float16", "half", "bfloat16", "float32", "float64"):
        return Value(grad=False, node=node)
    return UNKNOWN


_FINFO = {"float16": {"eps": 2 ** -10, "tiny": 2 ** -14, "min": -65504.0, "max": 65504.0},
          "bfloat16": {"eps": 2 ** -7, "tiny": 2 ** -126, "min": -3.39e38, "max": 3.39e38},
          "float32": {"eps": 2 ** -23, "tiny": 2 ** -126, "min": -3.4028234663852886e38, "max": 3.4028234663852886e38},
          "float64": {"eps": 2 ** -52, "tiny": 2 ** -1022, "min": -1.7976931348623157e308, "max": 1.7976931348623157e308}}


def _finfo(ev: Evaluator, call: cst.Call, attr: str, node) -> Value:
    func = ev.target(call)
    if func.op != "finfo":
        return names.named(attr, node) or UNKNOWN
    dtype = ev.text(call.args[0].value) if call.args else "float32"
    table = next((v for k, v in _FINFO.items() if dtype.endswith(k) or (k == "float16" and dtype.endswith("half"))), None)
    if attr in ("eps", "tiny", "smallest_normal", "resolution"):
        value = table.get("tiny" if attr == "smallest_normal" else attr, 1e-7) if table else None
        out = Value(lo=0.0, lo_open=True, role=d.EPS, grad=False, node=node, desc=f"`finfo(...).{attr}`")
        return replace(out, lo=value, hi=value, const=value) if value is not None else out
    if table is None:
        return Value(lo=-d.INF if attr == "min" else 0, grad=False, node=node, desc=f"`finfo(...).{attr}`", role=d.LITERAL,
                     hi=0 if attr == "min" else d.INF)
    return replace(d.constant(table[attr], node), desc=f"`finfo({dtype}).{attr}`")


