"""Calls into the file's own code: functions, methods, classes, ``nn`` modules, and their parameters.

``f(x)`` evaluates ``f``'s returns with its parameters bound to the call's argument values (a frame of its
own, a few calls deep); ``self(x)`` and ``model(x)`` run ``forward``; ``self.head(x)`` runs whatever
``self.head`` was set to in the class (an ``nn.Sequential``, a ``Sigmoid``, a module of this file).
``self.x`` is the join of every assignment to it in the class. The other way round, :meth:`contexts` finds
the call sites of a function, so that the rules can check its body with the values its callers pass
(``entropy(F.softmax(z))`` makes ``torch.log(p)`` inside ``entropy`` a log of a probability).
"""
from __future__ import annotations

import re

from dataclasses import replace
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import construct, domain as d, elementwise, names, optable as ops
from nanlint.analysis.domain import UNKNOWN, Tier, Value
from nanlint.analysis.registered import registered
from nanlint.resolver import Target
from nanlint.traversal import Plan, iter_nodes

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator, Frame

_MAX_DEPTH = 3
_MAX_CONTEXTS = 6
_CALL_PLAN = Plan({"Call", "FunctionDef", "ClassDef", "With"})


def interesting(v: Value) -> bool:
    """A value that tells more than nothing (worth a frame of its own)."""
    return v is not UNKNOWN and bool(
        v.points or v.vanish or v.constant or v.below or v.beyond or v.large or v.empty or v.single
        or v.role in (d.PROBABILITY, d.LOGPROB, d.MASK, d.COUNT, d.DATA) or v.module is not None or v.informative
        or v.items is not None or v.unit or v.dist
    )


class Calls:
    def __init__(self, ev: "Evaluator"):
        self.ev = ev
        self._class_attrs: dict[tuple, Value | None] = {}
        self._partial: dict[tuple, list] = {}  # the values of an attribute found so far, while it is evaluated
        self._registrations: dict[int, dict] = {}  # method -> its register_buffer / add_state calls
        self._index: dict[str, list] | None = None
        self.no_grad_calls: set[int] = set()  # ids of the calls made under no_grad (filled with the index)
        self._contexts: dict[int, list] = {}

    # ---- calling ----
    def evaluate(self, node: cst.Call, target: Target, frame: "Frame") -> Value | None:
        from nanlint.analysis.evaluate import Instance, LocalClass, LocalFunction, NNModule

        func = node.func
        if target.qualname is not None and target.namespace not in ("local", "other"):
            return None
        if isinstance(func, cst.Attribute) and not _local_receiver(func):
            return None
        if not isinstance(func, (cst.Name, cst.Attribute)):
            return None
        held = self.ev.value(func, frame).module
        if held is None:
            return None
        if isinstance(held, LocalFunction):
            return self.returns(held, node, frame)
        if isinstance(held, LocalClass):
            return Value(module=Instance(held.cls), node=node)
        if isinstance(held, Instance):
            forward = self.ev.scopes.method(held.cls, "forward") or self.ev.scopes.method(held.cls, "__call__")
            if forward is None:
                return Value(role=d.ACTIVATION, node=node)
            return self.returns(LocalFunction(forward, held.cls, True), node, frame)
        if isinstance(held, NNModule):
            first = node.args[0].value if node.args and node.args[0].keyword is None else None
            x = self.ev.value(first, frame) if first is not None else UNKNOWN
            return self.apply_module(held, x, node, frame)
        return None

    def bindings(self, fn, node: cst.Call, frame: "Frame", skip_self: bool) -> dict:
        params = [*fn.params.posonly_params, *fn.params.params]
        if skip_self and params:
            params = params[1:]
        out = {}
        positional = [a.value for a in node.args if a.keyword is None and not a.star]
        if any(a.star for a in node.args):
            return out
        for param, value in zip(params, positional):
            out[param.name.value] = self.ev.value(value, frame)
        by_name = {p.name.value for p in (*fn.params.posonly_params, *fn.params.params, *fn.params.kwonly_params)}
        for a in node.args:
            if a.keyword is not None and a.keyword.value in by_name:
                out[a.keyword.value] = self.ev.value(a.value, frame)
        return out

    def returns(self, held, node: cst.Call, frame: "Frame") -> Value:
        from nanlint.analysis.evaluate import Frame

        fn = held.fn
        if _is_generator(fn):
            return UNKNOWN
        bindings = self.bindings(fn, node, frame, held.bound_self)
        if frame.depth >= _MAX_DEPTH or not any(interesting(v) for v in bindings.values()):
            callee = self.ev.frame_of(fn)
        else:
            callee = Frame(self.ev.flow_of(fn), bindings, ("call", id(node)) + frame.key, node, frame, frame.depth + 1,
                           held.cls or self.ev.scopes.class_of(fn))
        return self.return_value(callee)

    def return_value(self, frame: "Frame") -> Value:
        out = None
        for statement, _ in frame.flow.returns:
            if statement.value is None:
                continue
            v = self.ev.value(statement.value, frame)
            out = v if out is None else d.join(out, v)
        return out if out is not None else UNKNOWN

    # ---- parameters ----
    def parameter(self, definition, frame: "Frame") -> Value:
        out = self._parameter(definition, frame)
        if out.grad is not False and self.without_grad(frame):
            out = replace(out, grad=False)  # whatever is passed in, nothing computed here is differentiated
        return out

    def without_grad(self, frame: "Frame") -> bool:
        """The function runs without gradient: decorated ``no_grad``/``inference_mode``, or a method of a
        data-processing or schedule class."""
        from nanlint.analysis.flow import _is_no_grad
        from nanlint.analysis.gradient import without_grad_class

        fn = frame.flow.node
        if isinstance(fn, cst.FunctionDef) and any(_is_no_grad(d.decorator, self.ev.resolver) for d in fn.decorators):
            return True
        return frame.cls is not None and any(without_grad_class(k) for k in self.ev.scopes.lineage(frame.cls))

    def _parameter(self, definition, frame: "Frame") -> Value:
        name = definition.name
        if frame.bindings is not None and name in frame.bindings:
            return frame.bindings[name]
        param = definition.node
        named = names.named(name, param)
        constructor = isinstance(frame.flow.node, cst.FunctionDef) and frame.flow.node.name.value == "__init__"
        if named is None and definition.value is None and not constructor and self._in_data_class(frame):
            # a transform's or a dataset's samples; what its constructor takes is configuration
            named = names.data_argument(name, param)
        annotation = param.annotation.annotation if getattr(param, "annotation", None) is not None else None
        setting = constructor and name != "self" and (named is None or named.role not in (d.EPS, d.DATA))
        if setting and definition.value is None:
            # what a constructor takes (sizes, counts per class, weights) is configuration the user sets
            return Value(grad=False, role=d.SETTING, node=param, desc=f"`{name}` (a constructor argument)")
        typed = annotation.value if isinstance(annotation, cst.Name) else None
        if annotation is None and isinstance(frame.flow.node, cst.FunctionDef):
            typed = documented_type(frame.flow.node, name)
        if typed in ("int", "bool"):
            return Value(integer=True, grad=False, node=param, desc=f"`{name}`", pynum=True)
        if named is None or named.role not in (d.EPS,):
            if _numbers_annotation(annotation):
                # `class_weights: Optional[List[float]]`: numbers the user sets, not data that can be empty
                return Value(grad=False, role=d.SETTING, node=param)
        default = definition.value
        if default is not None:
            outer = self.ev.frame_of(self.ev.scopes.parent_scope(frame.flow.node))
            v = self.ev.value(default, outer)
            if v.positive:
                # a default says the parameter is a positive setting, not what callers pass
                role = d.EPS if v.const is not None and v.const < 0.1 else None
                out = Value(lo=0.0, lo_open=True, role=role, grad=False, node=param, setting=v.const,
                            desc=f"`{name}` (default {v.const:g})" if v.const is not None else f"`{name}`")
                return replace(out, role=named.role if named is not None and named.role == d.EPS else role)
            if v.role == d.PROBABILITY or v.module is not None:
                return v
        if setting:
            return Value(grad=False, role=d.SETTING, node=param, desc=f"`{name}` (a constructor argument)")
        out = named or Value(node=param)
        return replace(out, pynum=True) if typed == "float" else out

    def _in_data_class(self, frame: "Frame") -> bool:
        cls = frame.cls
        if cls is None:
            return False
        from nanlint.analysis.gradient import DATA_CLASS

        return any(DATA_CLASS.search(k.name.value) or any(DATA_CLASS.search(self.ev.text(b.value)) for b in k.bases)
                   for k in self.ev.scopes.lineage(cls))

    # ---- attributes of classes ----
    def class_attribute(self, cls: cst.ClassDef, attr: str) -> Value | None:
        key = (id(cls), attr)
        if key in self._class_attrs:
            found = self._class_attrs[key]
            if found is None and self._partial.get(key):
                # a cycle (`self.x = to_device(self.x)`): what the assignments read so far say it holds
                return d.join_all(self._partial[key])
            return found
        self._class_attrs[key] = None  # a cycle through attributes
        self._partial[key] = []
        try:
            found = self._class_attribute(cls, attr, key)
        finally:
            self._partial.pop(key, None)
        self._class_attrs[key] = found
        return found

    def _registered(self, method: cst.FunctionDef) -> dict:
        found = self._registrations.get(id(method))
        if found is None:
            found = self._registrations[id(method)] = registered(method)
        return found

    def _class_attribute(self, cls: cst.ClassDef, attr: str, key: tuple) -> Value | None:
        from nanlint.analysis.evaluate import CYCLE, LocalFunction

        scopes = self.ev.scopes
        for klass in scopes.lineage(cls):
            method = scopes.methods.get(id(klass), {}).get(attr)
            if method is not None:
                return Value(module=LocalFunction(method, klass, True), grad=False)
            values = self._partial.get(key, [])
            values.clear()
            for statement in scopes.class_body.get(id(klass), ()):
                for small in getattr(statement, "body", ()) if isinstance(statement, cst.SimpleStatementLine) else ():
                    if isinstance(small, (cst.Assign, cst.AnnAssign)) and small.value is not None:
                        targets = [t.target for t in small.targets] if isinstance(small, cst.Assign) else [small.target]
                        if any(isinstance(t, cst.Name) and t.value == attr for t in targets):
                            values.append(self.ev.value(small.value, self.ev.frame_of(klass)))
            sites = 0
            updates = []
            for name, method in scopes.methods.get(id(klass), {}).items():
                frame = self.ev.frame_of(method)
                for initial in self._registered(method).get(attr, ()):  # self.add_state("tp", default=...)
                    # registered state is updated in place (running statistics, EMA, metric totals), often
                    # through `.data` or helpers: its initial zeros are not what a later read sees
                    sites += 1
                    values.append(_weaken_fills(self.ev.value(initial, frame)))
                for definition in self.ev.flow_of(method).defs.get(f"self.{attr}", [])[-6:]:
                    if definition.kind == "aug" or (definition.kind == "subscript" and isinstance(definition.value, cst.AugAssign)):
                        updates.append((definition, frame))
                        continue
                    v = self.ev.definition_value(definition, frame)
                    if v is CYCLE:  # a mutation that reads the attribute (buf.data.mul_(d).add_(x)): an update
                        updates.append((definition, frame))
                        continue
                    sites += 1
                    values.append(v)
            # the updates (`self.total += n`) read what the assignments above set (`self.total = 0` in reset):
            # `class_attribute` answers a read during them from `self._partial`, which is `values`
            updated = []
            for definition, frame in updates:
                v = self.ev.definition_value(definition, frame)
                if v is CYCLE:  # this update reads the attribute it updates: the others say what it was
                    continue
                sites += 1
                updated.append(v)
            if updates:  # the initial fill is weakened before the updates join it: theirs is the reason for a 0
                values = [_weaken_fills(v) for v in values] + updated
            if values:
                out = d.join_all(values)
                if sites + len(values) > 2 or len(values) > 1:
                    out = _weaken_fills(out)
                return out
        return None

    # ---- nn modules ----
    def nn_module(self, node: cst.Call, target: Target, frame: "Frame") -> Value:
        from nanlint.analysis.evaluate import NNModule

        op = target.op
        if op == "Parameter":
            site = self.ev.opcall_as(node, "Parameter", frame)
            return construct.construct(site) if site is not None else Value(role=d.PARAMETER, grad=True, node=node)
        if op in ("Sequential", "ModuleList", "ModuleDict"):
            layers = tuple(self.ev.value(a.value, frame) for a in node.args if a.keyword is None and not a.star)
            return Value(module=NNModule(op, layers, node), node=node, grad=False)
        if op in ("init",):
            return UNKNOWN
        return Value(module=NNModule(op, (), node), node=node, grad=False)

    def apply_module(self, held, x: Value, node: cst.Call, frame: "Frame") -> Value:
        from nanlint.analysis.evaluate import Instance, NNModule

        name = held.name
        text = self.ev.text(node)
        if name == "Sequential":
            v = x
            for layer in held.layers:
                module = layer.module
                if isinstance(module, NNModule):
                    v = self.apply_module(module, v, node, frame)
                elif isinstance(module, Instance):
                    forward = self.ev.scopes.method(module.cls, "forward")
                    v = Value(role=d.ACTIVATION, grad=True, node=node) if forward is None else self.return_value(self.ev.frame_of(forward))
                else:
                    v = Value(role=d.ACTIVATION, grad=True, node=node)
            return v
        op = ops.MODULE_OPS.get(name)
        if op is not None:
            if op == "identity":
                return x
            if op in ("softmax", "softmin"):
                return elementwise.softmax(x, node, text, op)
            if op in ("log_softmax", "logsigmoid"):
                return elementwise.logprob(x, node, op)
            if op == "cosine_similarity":
                return Value(lo=-1.0, hi=1.0, grad=True, node=node)
            spec = ops.OPS.get(op)
            fn = spec.param("fn") if spec is not None else None
            if fn is not None:
                out = elementwise.apply(fn, x, node, text)
                return replace(out, desc=f"a `{name}` output", grad=True if x.grad is None else x.grad)
        if name in ops.LOSS_MODULES:
            return Value(lo=0.0, grad=True, node=node, desc=f"a loss (`{text}`)")
        out = Value(role=d.ACTIVATION, grad=True, node=node, desc=f"an output of `{name}`")
        if name in ops.LEARNED_MODULES and held.call is not None:
            # a linear map of an all-zero input is 0 when it has no bias, constant when it has one
            no_bias = any(a.keyword is not None and a.keyword.value == "bias" and self.ev.text(a.value) == "False" for a in held.call.args)
            if x.vanish is not None and no_bias and name != "Embedding":
                out = replace(out, vanish=x.vanish, role=x.role if x.role == d.DATA else d.ACTIVATION).with_point(0.0, x.vanish)
        return out

    # ---- call sites of a function ----
    def contexts(self, fn: cst.FunctionDef) -> list["Frame"]:
        """Frames of ``fn`` with its parameters bound by the file's calls to it (those that tell something)."""
        found = self._contexts.get(id(fn))
        if found is not None:
            return found
        from nanlint.analysis.evaluate import Frame, LocalFunction

        self._contexts[id(fn)] = []
        out = []
        function_class = self._autograd_function(fn)
        calls = self._call_index().get(fn.name.value, ())
        if function_class is not None:  # `Cumulation.apply(q, k)` runs `Cumulation.forward(ctx, q, k)`
            calls = [(call, scope) for call, scope in self._call_index().get("apply", ())
                     if isinstance(call.func, cst.Attribute) and isinstance(call.func.value, cst.Name)
                     and call.func.value.value == function_class]
        for call, scope in calls:
            caller = self.ev.frame_of(scope)
            if function_class is not None:
                bindings = self.bindings(fn, call, caller, True)
                if any(interesting(v) and _evidence(v) for v in bindings.values()):
                    out.append(Frame(self.ev.flow_of(fn), bindings, ("site", id(call)), call, caller, 1, self.ev.scopes.class_of(fn)))
                continue
            held = self.ev.value(call.func, caller).module
            if not isinstance(held, LocalFunction) or held.fn is not fn:
                continue
            bindings = self.bindings(fn, call, caller, held.bound_self)
            if not any(interesting(v) and _evidence(v) for v in bindings.values()):
                continue
            out.append(Frame(self.ev.flow_of(fn), bindings, ("site", id(call)), call, caller, 1, held.cls or self.ev.scopes.class_of(fn)))
            if len(out) >= _MAX_CONTEXTS:
                break
        self._contexts[id(fn)] = out
        return out

    def _autograd_function(self, fn: cst.FunctionDef) -> str | None:
        """The class name when ``fn`` is the ``forward`` of a custom ``torch.autograd.Function``."""
        if fn.name.value != "forward":
            return None
        cls = self.ev.scopes.class_of(fn)
        if cls is None or not any(self.ev.text(b.value).endswith("Function") for b in cls.bases):
            return None
        return cls.name.value

    def _call_index(self) -> dict[str, list]:
        """name -> the calls of it in the module, each with the scope it is made from; the ids of those made
        under ``no_grad`` (a block or a decorator) go to ``no_grad_calls``."""
        if self._index is None:
            from nanlint.analysis.flow import _is_no_grad

            index: dict[str, list] = {}
            scopes = [self.ev.module]
            quiet: list[bool] = []
            for entering, node in iter_nodes(self.ev.module, _CALL_PLAN):
                if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.With)):
                    if not entering:
                        quiet.pop()
                        if not isinstance(node, cst.With):
                            scopes.pop()
                    elif isinstance(node, cst.With):
                        quiet.append(any(_is_no_grad(item.item, self.ev.resolver) for item in node.items))
                    else:
                        scopes.append(node)
                        quiet.append(isinstance(node, cst.FunctionDef)
                                     and any(_is_no_grad(d.decorator, self.ev.resolver) for d in node.decorators))
                    continue
                if entering and isinstance(node, cst.Call):
                    func = node.func
                    name = func.value if isinstance(func, cst.Name) else func.attr.value if isinstance(func, cst.Attribute) else None
                    if name is not None:
                        scope = scopes[-1] if not isinstance(scopes[-1], cst.ClassDef) else self.ev.module
                        index.setdefault(name, []).append((node, scope))
                        if any(quiet):
                            self.no_grad_calls.add(id(node))
            self._index = index
        return self._index

    def call_index(self) -> dict[str, list]:
        return self._call_index()


def _evidence(v: Value) -> bool:
    return v.evidence_at_least(Tier.PLAUSIBLE) or v.role in (d.PROBABILITY, d.LOGPROB) or v.unit or v.dist


def _local_receiver(func: cst.Attribute) -> bool:
    """``self.head(...)``, ``model.encoder(...)``: the callee may be one of the file's modules."""
    base = func.value
    while isinstance(base, cst.Attribute):
        base = base.value
    return isinstance(base, cst.Name)


def _is_generator(fn: cst.FunctionDef) -> bool:
    found = []

    class _Yield(cst.CSTVisitor):
        def visit_Yield(self, node) -> bool:
            found.append(node)
            return False

        def visit_FunctionDef(self, node) -> bool:
            return node is fn

        def visit_Lambda(self, node) -> bool:
            return False

    if not found:
        fn.body.visit(_Yield())
    return bool(found)


def _weaken_fills(v: Value) -> Value:
    """An attribute assigned in several places (a buffer reset to 0 and filled later): its initial zeros are
    not what a reader of the attribute sees."""
    points = tuple((p, e.weaker() if e.kind in ("fill", "literal") else e) for p, e in v.points)
    vanish = v.vanish.weaker() if v.vanish is not None and v.vanish.kind == "fill" else v.vanish
    return replace(v, points=points, vanish=vanish)


_SCALAR_WORDS = frozenset({"int", "float", "bool", "or", "optional"})


def documented_type(fn: cst.FunctionDef, name: str) -> str | None:
    """The Python scalar type a docstring gives a parameter (``name : int``, ``name (float, optional):``,
    ``:type name: int``, ``:param int name:``): "int", "float" or "bool"; None for anything else (a tensor, an
    array, several kinds, no word at all)."""
    doc = fn.get_docstring(clean=True)
    if not doc or name not in doc:
        return None
    escaped = re.escape(name)
    for pattern in (rf"^\s*\**{escaped}\s*:\s*([^\n]+)$", rf"^\s*{escaped}\s*\(([^)\n]+)\)\s*:",
                    rf":type\s+{escaped}\s*:\s*([^\n]+)$", rf":param\s+(\w+)\s+{escaped}\s*:"):
        found = re.search(pattern, doc, re.MULTILINE)
        if found is None:
            continue
        words = [w for w in re.split(r"[\s,|]+", found.group(1).strip().rstrip(".").lower()) if w]
        if not words or len(words) > 4 or not all(w in _SCALAR_WORDS for w in words):
            return None
        kinds = [w for w in words if w in ("int", "float", "bool")]
        if not kinds:
            return None
        return "float" if "float" in kinds else kinds[0]
    return None


_NUMBER_TYPES = frozenset({"float"})  # ints are as often lengths or indices from the data
_CONTAINERS = frozenset({"List", "list", "Sequence", "Tuple", "tuple", "Optional", "Iterable"})


def _numbers_annotation(annotation, inside: bool = False) -> bool:
    """``List[float]``, ``Tuple[float, ...]``, ``Optional[Sequence[float]]``: containers of Python floats (a
    scalar ``float`` is left to its name and default: it can be a measured value; ints are often lengths or
    indices)."""
    if isinstance(annotation, cst.Name):
        return inside and annotation.value in _NUMBER_TYPES
    if isinstance(annotation, cst.Ellipsis):
        return inside
    if not isinstance(annotation, cst.Subscript) or not isinstance(annotation.value, cst.Name):
        return False
    outer = annotation.value.value
    if outer not in _CONTAINERS:
        return False
    elements = [e.slice.value for e in annotation.slice if isinstance(e.slice, cst.Index)]
    if outer == "Optional":
        return len(elements) == 1 and _numbers_annotation(elements[0], inside)
    return bool(elements) and all(_numbers_annotation(e, True) for e in elements)
