"""Every rule class, found by importing each module of this package, matched to its catalog entry."""
from __future__ import annotations

import functools
import importlib
import pkgutil

from nanlint.catalog import RuleDoc, load_catalog
from nanlint.rules.base import Rule

# Codes the engine itself emits (no AST logic of their own).
ENGINE_CODES = frozenset({"NAN000", "NAN001", "NAN002", "NAN003"})


@functools.lru_cache(maxsize=None)
def all_rules() -> dict[str, type[Rule]]:
    """Rule classes by code, each with its ``doc`` attached from the catalog."""
    catalog = load_catalog()
    found: dict[str, type[Rule]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Rule) and value is not Rule and value.code:
                if value.code in found and found[value.code] is not value:
                    raise RuntimeError(f"two rule classes claim {value.code}")
                if value.code not in catalog:
                    raise RuntimeError(f"rule {value.code} has no catalog entry in rules/")
                value.doc = catalog[value.code]
                found[value.code] = value
    return dict(sorted(found.items()))


def all_docs() -> dict[str, RuleDoc]:
    return load_catalog()
