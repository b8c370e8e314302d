"""Which rules run: ruff's select / extend-select / ignore semantics over codes, prefixes (``NAN1``), rule
names and ``ALL``.

As in ruff, selection happens in layers (the configuration file, then the command line). A layer with a
``select`` starts afresh from it; otherwise it starts from the previous layer's result. Inside a layer the
most specific selector decides for each rule (``--select NAN101 --ignore NAN1`` keeps NAN101), and on a tie
``ignore`` wins.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from nanlint.catalog import RuleDoc

# Problems reading or parsing a file are always reported, as in ruff.
ALWAYS_ON = frozenset({"NAN000", "NAN001"})


class SelectionError(ValueError):
    pass


@dataclass(frozen=True)
class Layer:
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()


def _matches(selector: str, docs: dict[str, RuleDoc]) -> tuple[set[str], int]:
    """The codes a selector names (preview ones included) and its specificity (longer prefix: more
    specific; ``ALL`` least, a rule name or full code most)."""
    selector = selector.strip()
    upper = selector.upper()
    if upper == "ALL":
        return set(docs), 0
    by_name = {code for code, doc in docs.items() if doc.name == selector}
    if by_name:
        return by_name, 99
    if not upper.startswith("NAN") or not upper[3:].isdigit() and upper != "NAN":
        raise SelectionError(f"unknown rule selector `{selector}`")
    matched = {code for code in docs if code.startswith(upper)}
    if not matched:
        raise SelectionError(f"unknown rule selector `{selector}`")
    return matched, len(upper)


def _selectable(selector: str, codes: set[str], docs: dict[str, RuleDoc], preview: bool) -> set[str]:
    """Preview rules are selected by a prefix or ``ALL`` only with ``preview``; an exact code or name selects
    them always (as in ruff)."""
    if preview:
        return codes
    exact = selector.strip().upper() in docs or any(docs[c].name == selector.strip() for c in codes)
    if exact:
        return codes
    return {code for code in codes if not docs[code].is_preview}


def validate(selectors: Iterable[str], docs: dict[str, RuleDoc], what: str) -> None:
    for selector in selectors:
        try:
            _matches(selector, docs)
        except SelectionError as exc:
            raise SelectionError(f"{what}: {exc}") from None


def _apply_layer(docs: dict[str, RuleDoc], start: set[str], layer: Layer, preview: bool) -> set[str]:
    if layer.select is not None:
        start = set()
        selecting = list(layer.select) + list(layer.extend_select)
    else:
        selecting = list(layer.extend_select)
    decision: dict[str, tuple[int, bool]] = {}  # code -> (specificity, enabled)
    for selector in selecting:
        codes, specificity = _matches(selector, docs)
        for code in _selectable(selector, codes, docs, preview):
            if code not in decision or specificity > decision[code][0]:
                decision[code] = (specificity, True)
    for selector in layer.ignore:
        codes, specificity = _matches(selector, docs)
        for code in codes:
            if code not in decision or specificity >= decision[code][0]:
                decision[code] = (specificity, False)
    enabled = set(start)
    for code, (_, on) in decision.items():
        if on:
            enabled.add(code)
        else:
            enabled.discard(code)
    return enabled


def resolve_layers(docs: dict[str, RuleDoc], layers: Iterable[Layer], preview: bool = False) -> frozenset[str]:
    """The enabled codes after applying ``layers`` in order to the default set (stable rules whose
    default is "on")."""
    enabled = {code for code, doc in docs.items() if doc.default == "on"}
    for layer in layers:
        enabled = _apply_layer(docs, enabled, layer, preview)
    return frozenset(enabled | ALWAYS_ON)


def resolve(
    docs: dict[str, RuleDoc],
    select: Iterable[str] | None,
    extend_select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    preview: bool = False,
) -> frozenset[str]:
    """The enabled codes for one layer of selection on top of the default set."""
    layer = Layer(tuple(select) if select is not None else None, tuple(extend_select), tuple(ignore))
    return resolve_layers(docs, [layer], preview)


def expand(selectors: Iterable[str], docs: dict[str, RuleDoc]) -> set[str]:
    """Every code the selectors name, preview rules included (for ``per-file-ignores``)."""
    out: set[str] = set()
    for selector in selectors:
        out |= _matches(selector, docs)[0]
    return out
