"""Joining findings with runtime events: verdicts for any rule family (findings built by hand, as the rules
of other families would produce them), and the op deciding between several rules on one line."""
from __future__ import annotations

import pytest

from nanlint.findings import Finding, Span
from nanlint.trace.opkinds import family_kinds, matches, normalize
from tests.trace_fixtures.helpers import EXAMPLES, FIXTURES, line_of, trace

torch = pytest.importorskip("torch")


def finding(code: str, path, line: int) -> Finding:
    return Finding(code=code, name=f"rule-{code.lower()}", message="m", filename=str(path), span=Span(line, 1, line, 2))


def by_code(result):
    return {v.code: v for v in result.verdicts}


def test_op_names_normalize_across_forward_and_backward():
    assert normalize("log_softmax") == normalize("LogSoftmaxBackward0") == "logsoftmax"
    assert matches("NAN101", "log") and matches("NAN101", "LogBackward0") and not matches("NAN101", "div")
    assert matches("NAN201", "div") and matches("NAN211", "SqrtBackward0") and matches("NAN301", "exp")
    assert family_kinds("NAN501") is None and matches("NAN601", "add") is None


def test_the_op_decides_between_rules_on_one_line():
    path = EXAMPLES / "empty_count_division.py"
    line = line_of(path, "/ positive.sum()")
    result = trace(path, findings=[finding("NAN101", path, line), finding("NAN201", path, line)])
    verdicts = by_code(result)
    assert verdicts["NAN201"].verdict == "CONFIRMED"
    assert verdicts["NAN101"].verdict == "SAFE"
    assert result.missed == []


def test_an_origin_at_a_line_whose_rules_concern_other_ops_is_missed_and_the_site_is_not_safe():
    path = EXAMPLES / "empty_count_division.py"
    line = line_of(path, "/ positive.sum()")
    result = trace(path, findings=[finding("NAN101", path, line)])
    site = by_code(result)["NAN101"]
    assert site.verdict == "NEAR-MISS"  # never SAFE on the line where a NaN was born
    assert "not the op this rule is about" in site.reasons[0] and "div" in site.reasons[0]
    assert [(e.line, e.op) for e in result.missed][:1] == [(line, "div")]


def test_a_family_about_any_op_takes_what_no_specific_rule_claims():
    path = EXAMPLES / "exp_overflow.py"
    line = line_of(path, "torch.exp(logits)")
    alone = trace(path, findings=[finding("NAN401", path, line)])
    assert by_code(alone)["NAN401"].verdict == "CONFIRMED"
    both = trace(path, findings=[finding("NAN401", path, line), finding("NAN301", path, line)])
    assert by_code(both)["NAN301"].verdict == "CONFIRMED"
    assert by_code(both)["NAN401"].verdict == "SAFE"


def test_backward_origin_confirms_the_forward_line():
    path = EXAMPLES / "sqrt_norm_zero.py"
    line = line_of(path, "distance = torch.sqrt(")
    result = trace(path, findings=[finding("NAN211", path, line)])
    verdict = by_code(result)["NAN211"]
    assert verdict.verdict == "CONFIRMED"
    assert "inf born in sqrt (backward)" in verdict.reasons
    assert result.missed == [] or all(e.line != line for e in result.missed)


def test_near_miss_at_risk_saturation_and_not_executed():
    path = FIXTURES / "near_miss_log.py"
    exp_line = line_of(path, "scale = torch.exp(")
    gate_line = line_of(path, "torch.sigmoid(")
    calm_exp = line_of(path, "weights = torch.exp(")
    result = trace(path, findings=None)  # the real NAN101 findings
    verdicts = {(v.line, v.code): v for v in result.verdicts}
    log = verdicts[(line_of(path, "log_probs = torch.log(probs)"), "NAN101")]
    assert log.verdict == "NEAR-MISS"
    assert any(r.startswith("smallest value fed to log: 2.9") for r in log.reasons)
    assert verdicts[(line_of(path, "return torch.log("), "NAN101")].verdict == "NOT EXECUTED"
    synthetic = [finding("NAN301", path, exp_line), finding("NAN401", path, gate_line), finding("NAN301", path, calm_exp)]
    result = trace(path, findings=synthetic)
    verdicts = {v.line: v for v in result.verdicts}
    assert verdicts[exp_line].verdict == "AT-RISK"
    assert verdicts[exp_line].at_risk[0].startswith("float16:") and "exponent 13.8 > 11.09" in verdicts[exp_line].at_risk[0]
    assert verdicts[gate_line].verdict == "NEAR-MISS"
    assert any("saturated sigmoid outputs" in r for r in verdicts[gate_line].reasons)
    assert verdicts[calm_exp].verdict == "SAFE"
    assert any("headroom" in r for r in verdicts[calm_exp].reasons)
