"""Subscripts: reading ``x[...]`` and writing ``x[...] = v``.

Reading: an entry of a tuple, list or dict; an entry of a shape (a size, >= 1); a boolean-mask selection
(which can hold no element, and whose values satisfy the mask's test: ``x[x > 0]`` is positive); any other
index picks a subset of the values, which keeps their bounds and evidence.

Writing: ``x[x == 0] = 1`` repairs the elements the test picks; a buffer of zeros filled at positions that
depend on the data (``cm[t, p] += 1``) keeps zeros where nothing was written: a histogram has empty bins;
filled at every position of a loop (``tot[1] += n``) it does not.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis import arith, domain as d, guards as guard_mod, members
from nanlint.analysis.domain import UNKNOWN, Evidence, Tier, Value

if TYPE_CHECKING:
    from nanlint.analysis.evaluate import Evaluator, Frame


def _index(node: cst.Subscript) -> cst.BaseExpression | None:
    if len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index):
        return node.slice[0].slice.value
    return None


def subscript(ev: "Evaluator", node: cst.Subscript, frame: "Frame") -> Value:
    value = _subscript(ev, node, frame)
    key = ev.key(node)
    if key is not None:  # `if fps[-1] <= 0: ... else: x / fps[-1]`: guards on this very entry
        value = ev.expression_guards(node, key, value, frame)
    return value


def _end_of_concatenation(ev, node: cst.Subscript, frame, number: int) -> Value | None:
    """``torch.cat([zeros(1), fps])[-1]`` is the last entry of ``fps``, ``[0]`` the first of ``zeros(1)``:
    the ends of a concatenation along its first dimension come from its first and last parts."""
    base = node.value
    if number not in (0, -1) or not isinstance(base, cst.Name):
        return None
    reaches = frame.flow.uses.get(id(base))
    if not reaches:
        return None
    out = None
    for definition, _ in reaches:
        call = definition.value if definition.kind == "assign" and not definition.path else None
        site = ev.opcall(call) if isinstance(call, cst.Call) else None
        if site is None or site.name not in ("cat", "concatenate", "concat", "vstack"):
            return None
        parts = call.args[0].value if call.args else None
        dim = site.dim
        if not isinstance(parts, (cst.List, cst.Tuple)) or not parts.elements or (dim is not None and ev.number(dim, frame) != 0):
            return None
        part = parts.elements[number].value
        if isinstance(parts.elements[number], cst.StarredElement):
            return None
        v = replace(ev.value(part, frame), items=None, entries=None, module=None)
        out = v if out is None else d.join(out, v)
    return out


def _sliced_items(ev: "Evaluator", node: cst.Subscript, items: tuple, frame: "Frame") -> tuple | None:
    """The items a constant slice of a tuple keeps (``parts[1:]``), or None."""
    if len(node.slice) != 1 or not isinstance(node.slice[0].slice, cst.Slice):
        return None
    piece = node.slice[0].slice
    bounds = []
    for part in (piece.lower, piece.upper, piece.step):
        number = ev.number(part, frame) if part is not None else None
        if part is not None and (number is None or not float(number).is_integer()):
            return None
        bounds.append(int(number) if number is not None else None)
    return tuple(items[slice(*bounds)])


def _subscript(ev: "Evaluator", node: cst.Subscript, frame: "Frame") -> Value:
    base = ev.value(node.value, frame)
    index = _index(node)
    if base.role == d.SIZE:
        return Value(lo=1.0, integer=True, role=d.SIZE, grad=False, node=node, desc=f"a size (`{ev.text(node)}`)",
                     pynum=base.pynum)
    if index is not None and isinstance(index, (cst.SimpleString, cst.ConcatenatedString)):
        key = index.evaluated_value if isinstance(index, cst.SimpleString) else None
        for k, v in base.entries or ():
            if k == key:
                return v
        if base.role == d.DATA and not base.entries:  # batch["weights"]: an entry of the data is data
            return Value(role=d.DATA, grad=base.grad, node=node, desc=f"`{ev.text(node)}` (data)")
        return UNKNOWN  # a dict entry says nothing of the other entries
    if base.items is not None and index is None:
        kept = _sliced_items(ev, node, base.items, frame)
        if kept is not None:  # unique(x, return_inverse=True, return_counts=True)[1:]
            return replace(base, items=kept, node=node)
    if base.items is not None or base.element is not None:
        number = ev.number(index, frame) if index is not None else None
        if number is not None and float(number).is_integer():
            from nanlint.analysis.evaluate import item_of

            return item_of(base, int(number))
        if base.element is not None:
            return base
        return d.join_all(base.items) if base.items else UNKNOWN
    if index is not None:
        number = ev.number(index, frame)
        if number is not None and float(number).is_integer():
            end = _end_of_concatenation(ev, node, frame, int(number))
            if end is not None:
                return end
        selection = _selection(ev, node, index, base, frame)
        if selection is not None:
            return selection
    out = replace(base, items=None, entries=None, dist=base.dist and _keeps_dim(node), module=None)
    if _at_own_nonzeros(ev, node):
        out = replace(out, points=tuple((p, e) for p, e in out.points if p != 0), vanish=None,
                      desc=f"the nonzero entries of `{ev.text(node.value)}`", node=node)
    elif out.zero is not None and out.zero.kind == "index" and _past_first(ev, node, frame):
        out = replace(out, points=tuple((p, e) for p, e in out.points if p != 0), node=node)
    return out


def _past_first(ev, node: cst.Subscript, frame) -> bool:
    """``grid[-1]``, ``grid[1:]``, ``lap[-1, 0]``: entries of an index grid (``arange(n)``) other than its first,
    which is where its 0 is."""
    first = node.slice[0].slice
    if isinstance(first, cst.Index):
        number = ev.number(first.value, frame)
        return number is not None and number != 0
    if isinstance(first, cst.Slice) and first.lower is not None and first.step is None:
        number = ev.number(first.lower, frame)
        return number is not None and number >= 1
    return False


_POSITIONS = ("nonzero", "argwhere")


def _at_own_nonzeros(ev, node: cst.Subscript) -> bool:
    """``d[nonzero(d[:, i])[0], i]``: the positions are where the value itself is nonzero, so every entry
    read there is nonzero."""
    base = ev.text(node.value)
    for element in node.slice:
        if not isinstance(element.slice, cst.Index):
            continue
        expr = element.slice.value
        while isinstance(expr, cst.Subscript):  # nonzero(x)[0], x.nonzero()[:, 0]
            expr = expr.value
        if not isinstance(expr, cst.Call):
            continue
        op = ev.target(expr).op
        if op not in _POSITIONS and not (op == "where" and len(expr.args) == 1):
            continue
        func = expr.func
        of = expr.args[0].value if expr.args else (func.value if isinstance(func, cst.Attribute) else None)
        while isinstance(of, cst.Subscript):
            of = of.value
        if of is not None and ev.text(of) == base:
            return True
    return False


def _keeps_dim(node: cst.Subscript) -> bool:
    return all(isinstance(s.slice, cst.Slice) or _is_none(s.slice) for s in node.slice)


def _is_none(s) -> bool:
    return isinstance(s, cst.Index) and isinstance(s.value, cst.Name) and s.value.value == "None"


def _selection(ev, node, index, base: Value, frame) -> Value | None:
    """``x[mask]`` / ``x[x > t]``."""
    is_mask = isinstance(index, cst.Comparison)
    iv = ev.value(index, frame)
    if not is_mask:
        is_mask = iv.role == d.MASK or iv.dtype == "bool"
    if not is_mask:
        return _gather(ev, node, base, iv) if iv.empty is not None else None
    text = ev.text(node)
    picked = base
    base_key = ev.key(node.value)
    if base_key is not None:
        picked = guard_mod.refine(base, base_key, guard_mod.constraints(ev, frame, index, True))
    root = ev.key(index)
    empty = Evidence(iv.vanish.over_batch().tier, f"the selection `{text}` holds no element when the mask is all False", node, "empty", root) \
        if iv.vanish is not None else None  # `if mask.any():` on the way here: the mask picks something
    single = Evidence(members.single_tier(ev, index), f"the selection `{text}` can hold a single element", node, "single", root)
    return replace(picked, items=None, entries=None, dist=False, module=None, node=node, empty=empty, single=single,
                   vanish=None, desc=f"the selection `{text}`")


def _gather(ev, node, base: Value, index: Value) -> Value:
    """``x[idx]`` with positions that can be none at all (``idx = nonzero(m)``): the selection is empty then."""
    text = ev.text(node)
    empty = replace(index.empty, why=f"its positions can be none: {index.empty.why}")
    return replace(base, items=None, entries=None, dist=False, module=None, node=node, empty=empty,
                   vanish=None, desc=f"the selection `{text}`")


def subscript_write(ev: "Evaluator", definition, frame: "Frame") -> Value:
    """``x[i] = v``: ``x`` with some entries from ``v``. Its extent is its own: writing the values of an empty
    selection (``out[cond] = a[cond] / b[cond]``) does not make ``out`` empty."""
    out = _written(ev, definition, frame)
    old = ev.value(definition.target.value, frame)
    if out.empty is not old.empty or out.single is not old.single:
        out = replace(out, empty=old.empty, single=old.single)
    return out


def _written(ev: "Evaluator", definition, frame: "Frame") -> Value:
    statement = definition.value
    target = definition.target
    old = ev.value(target.value, frame)
    index = _index(target)
    rhs = ev.value(statement.value, frame)
    if definition.path:  # `tps[c], fps[c] = stat_scores(...)`: this target's item of the tuple
        from nanlint.analysis.evaluate import element_of, item_of

        for step in definition.path:
            rhs = element_of(rhs) if step == "element" else item_of(rhs, step)
    if isinstance(statement, cst.AugAssign):
        written = arith.add(old, rhs, statement, ev.text(statement)) if isinstance(statement.operator, cst.AddAssign) else d.join(old, rhs)
    else:
        written = rhs
    key = ev.key(target.value)
    # x[x == 0] = 1 / x[where(x < eps)] = eps: the elements the test picks are replaced
    test = index
    if isinstance(test, cst.Call) and ev.target(test).op in ("where", "nonzero") and test.args:
        test = test.args[0].value
    if isinstance(test, cst.Comparison) and key is not None and isinstance(statement, (cst.Assign, cst.AnnAssign)):
        remaining = guard_mod.refine(old, key, guard_mod.constraints(ev, frame, test, False))
        out = d.join(remaining, written)
        return replace(out, desc=f"`{key}` with the elements `{ev.text(test)}` replaced", node=statement)
    fill = old.zero if old.zero is not None and old.zero.kind == "fill" else None
    if fill is not None:
        deterministic = _deterministic(ev, target, frame)
        counting = isinstance(statement, cst.AugAssign) and rhs.integer and rhs.nonneg and not deterministic
        if counting:
            why = f"entries of `{key or ev.text(target.value)}` that no sample incremented stay 0 (an empty bin)"
            out = Value(lo=0.0, integer=True, role=d.COUNT, grad=False, node=statement, desc=f"counts (`{key}`)")
            return out.with_point(0.0, Evidence(Tier.PLAUSIBLE, why, statement, "empty-bin"))
        why = f"entries of `{key or ev.text(target.value)}` never written stay 0"
        weakened = replace(old, points=tuple((p, e) for p, e in old.points if p != 0), vanish=None, const=None)
        out = d.join(weakened, written)
        return replace(out, const=None, node=old.node, desc=old.desc).with_point(0.0, Evidence(Tier.DEGENERATE, why, statement, "fill"))
    out = d.join(old, written)
    if old.vanish is None and _leaves_a_part(ev, target, frame):
        # `sel = ones(n, bool); sel[1:] = a[1:] != a[:-1]`: entry 0 keeps its True, so the whole is never all 0
        return replace(out, const=None, node=old.node, desc=old.desc, vanish=None)
    return replace(out, const=None, node=old.node, desc=old.desc)


def _leaves_a_part(ev, target: cst.Subscript, frame) -> bool:
    """The write goes through a slice that leaves some entries out whatever the data (``[1:]``, ``[:-1]``),
    not through a mask or positions that may cover everything."""
    for element in target.slice:
        s = element.slice
        if isinstance(s, cst.Slice) and s.step is None:
            lower = ev.number(s.lower, frame) if s.lower is not None else 0
            upper = ev.number(s.upper, frame) if s.upper is not None else None
            if (lower is not None and lower >= 1) or (upper is not None and upper < 0):
                return True
    return False


def _deterministic(ev, target: cst.Subscript, frame) -> bool:
    """The written positions are constants or loop indices (the whole buffer gets written), not data."""
    for element in target.slice:
        s = element.slice
        if isinstance(s, cst.Slice):
            continue
        if not isinstance(s, cst.Index):
            return False
        v = ev.value(s.value, frame)
        if v.const is not None or v.role == d.INDEX and v.grad is False and not _from_data(ev, s.value, frame):
            continue
        return False
    return True


def _from_data(ev, expr, frame) -> bool:
    """An index that came out of ``argmax``/``topk`` of data (not a loop counter)."""
    v = ev.value(expr, frame)
    return v.desc is not None and v.desc.startswith("indices")
