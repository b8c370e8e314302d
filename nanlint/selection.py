"""Which rules run: ruff's select / extend-select / ignore semantics over codes, prefixes and ``ALL``."""
from __future__ import annotations

from typing import Iterable

from nanlint.catalog import RuleDoc


# Problems reading or parsing a file are always reported, as in ruff.
ALWAYS_ON = frozenset({"NAN000", "NAN001"})


class SelectionError(ValueError):
    pass


def _expand(selector: str, docs: dict[str, RuleDoc], preview: bool) -> set[str]:
    selector = selector.strip()
    if selector.upper() == "ALL":
        return {code for code, doc in docs.items() if preview or not doc.is_preview}
    upper = selector.upper()
    by_name = [code for code, doc in docs.items() if doc.name == selector]
    if by_name:
        return set(by_name)
    matched = {code for code in docs if code.startswith(upper)}
    if not matched or not upper.startswith("NAN"):
        raise SelectionError(f"unknown rule selector `{selector}`")
    if upper in docs:  # an exact code selects the rule even when it is preview (ruff does the same)
        return matched if preview or not docs[upper].is_preview else set()
    return {code for code in matched if preview or not docs[code].is_preview}


def validate(selectors: Iterable[str], docs: dict[str, RuleDoc], what: str) -> None:
    for selector in selectors:
        try:
            _expand(selector, docs, preview=True)
        except SelectionError as exc:
            raise SelectionError(f"{what}: {exc}") from None


def resolve(
    docs: dict[str, RuleDoc],
    select: Iterable[str] | None,
    extend_select: Iterable[str] = (),
    ignore: Iterable[str] = (),
    preview: bool = False,
) -> frozenset[str]:
    """The enabled codes. Without ``select``, the default set: stable rules whose default is "on"."""
    if select is None:
        enabled = {code for code, doc in docs.items() if doc.default == "on"}
    else:
        enabled = set()
        for selector in select:
            enabled |= _expand(selector, docs, preview)
    for selector in extend_select:
        enabled |= _expand(selector, docs, preview)
    for selector in ignore:
        enabled -= _expand(selector, docs, preview=True)
    return frozenset(enabled | ALWAYS_ON)
