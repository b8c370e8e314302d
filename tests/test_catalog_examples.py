"""Every documented example in rules/ runs as a test: bad examples produce their rule, good ones nothing."""
from __future__ import annotations

import pytest

from nanlint.api import check_source
from nanlint.catalog import load_catalog
from nanlint.config import Config
from nanlint.fixes import apply_edits
from nanlint.rules import ENGINE_CODES, all_rules

CATALOG = load_catalog()
BAD = [(code, i, ex) for code, doc in CATALOG.items() for i, ex in enumerate(doc.bad)]
GOOD = [(code, i, ex) for code, doc in CATALOG.items() for i, ex in enumerate(doc.good)]


def _selecting(code: str, strict: bool = False) -> Config:
    return Config(extend_select=(code,), preview=True, strict=strict)


@pytest.mark.parametrize(("code", "index", "example"), BAD, ids=[f"{c}-bad{i}" for c, i, _ in BAD])
def test_bad_example_triggers_its_rule(code, index, example):
    findings = check_source(example.code, "example.py", _selecting(code, example.strict))
    assert code in {f.code for f in findings}, f"{code} bad example {index} produced {[f.code for f in findings]}"
    if example.strict:  # documented as reached only by degenerate inputs: the default tier stays quiet
        assert code not in {f.code for f in check_source(example.code, "example.py", _selecting(code))}
    if example.fixed is not None:
        fixable = [f for f in findings if f.code == code]
        text = example.code
        for _ in range(5):
            text, applied = apply_edits(text, fixable)
            if not applied:
                break
            fixable = [f for f in check_source(text, "example.py", _selecting(code)) if f.code == code]
        assert text == example.fixed


@pytest.mark.parametrize(("code", "index", "example"), GOOD, ids=[f"{c}-good{i}" for c, i, _ in GOOD])
def test_good_example_is_silent(code, index, example):
    selected = check_source(example.code, "example.py", _selecting(code))
    assert [f for f in selected if f.code == code] == []
    assert check_source(example.code, "example.py", Config()) == []


def test_every_rule_class_has_examples_and_every_entry_a_class():
    classes = all_rules()
    engine_codes = ENGINE_CODES
    for code, doc in CATALOG.items():
        if code not in engine_codes:
            assert code in classes, f"{doc.path} has no rule class"
            assert doc.bad and doc.good, f"{code} needs bad and good examples"
