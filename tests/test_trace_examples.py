"""Each example under examples/ traced in-process: exit code, where the first non-finite value is born, and
the verdict of the sites the rules flag."""
from __future__ import annotations

import pytest

from tests.trace_fixtures.helpers import EXAMPLES, line_of, origins, trace

torch = pytest.importorskip("torch")


def verdict(result, path, line, code):
    """The verdict of the finding ``code`` at ``line`` (other rules may flag the line too)."""
    found = [v.verdict for v in result.verdicts if v.line == line and v.code == code and v.filename == str(path)]
    assert found, f"{code} does not flag line {line}: {[(v.code, v.line) for v in result.verdicts]}"
    return found[0]


def first(result):
    e = result.first_bug
    assert e is not None, "expected a non-finite value"
    return e


def test_log_softmax_underflow_confirms_nan101():
    path = EXAMPLES / "log_softmax_underflow.py"
    result = trace(path)
    line = line_of(path, "torch.log(probs)")
    e = first(result)
    assert (e.filename, e.line, e.op, e.phase, e.value) == (str(path), line, "log", "forward", "-inf")
    verdicts = [(v.code, v.line, v.verdict) for v in result.verdicts]
    assert verdicts == [("NAN101", line, "CONFIRMED")]
    assert result.exit_code == 1
    assert result.missed == []  # the only origins are at the flagged log line
    assert result.stop_reason == "1 optimizer step"


def test_sqrt_at_zero_is_born_in_the_backward_pass_at_the_forward_line():
    path = EXAMPLES / "sqrt_norm_zero.py"
    result = trace(path)
    e = first(result)
    assert (e.line, e.op, e.phase, e.node, e.value) == (line_of(path, "distance = torch.sqrt("), "sqrt", "backward", "SqrtBackward0", "inf")
    assert all(ev.phase != "forward" for ev in result.events)  # the forward pass stayed finite
    assert verdict(result, path, e.line, "NAN211") == "CONFIRMED"
    assert result.exit_code == 1
    assert any(p["phase"] == "step" and p["param"] == "weight" for p in result.propagation_path)


def test_exp_overflow():
    path = EXAMPLES / "exp_overflow.py"
    result = trace(path)
    e = first(result)
    assert (e.line, e.op, e.phase, e.value) == (line_of(path, "torch.exp(logits)"), "exp", "forward", "inf")
    nan = [ev for ev in result.events if ev.value == "nan" and ev.phase == "forward"]
    assert nan and nan[0].line == line_of(path, "weights / weights.sum") and nan[0].from_inf
    assert result.exit_code == 1
    assert verdict(result, path, e.line, "NAN302") == "CONFIRMED"
    assert result.missed == []  # the NaN of inf / inf is the overflow spreading, not a new origin
    assert any("normalized" in w for w in result.health.warnings)


def test_empty_count_division():
    path = EXAMPLES / "empty_count_division.py"
    result = trace(path)
    e = first(result)
    assert (e.line, e.op, e.phase, e.value) == (line_of(path, "/ positive.sum()"), "div", "forward", "nan")
    assert verdict(result, path, e.line, "NAN201") == "CONFIRMED"
    assert result.exit_code == 1


def test_diverging_learning_rate_one_step_shows_the_update_ratio():
    path = EXAMPLES / "diverging_lr.py"
    result = trace(path)
    assert result.exit_code == 0
    (update,) = result.health.updates
    assert update["lr"] == 1e7 and update["ratio"] > 1e3
    assert any("update-to-weight ratio" in w for w in result.health.warnings)
    assert verdict(result, path, line_of(path, "lr=1e7"), "NAN501") == "NEAR-MISS"


def test_diverging_learning_rate_overflows_within_four_steps():
    path = EXAMPLES / "diverging_lr.py"
    result = trace(path, steps=4)
    assert result.optimizer_steps == 4
    e = first(result)
    assert (e.line, e.op, e.phase, e.value, e.step) == (line_of(path, "** 2).mean()"), "pow", "forward", "inf", 3)
    assert verdict(result, path, line_of(path, "lr=1e7"), "NAN501") == "CONFIRMED"  # the lr explains it
    assert result.missed == []
    assert result.exit_code == 1


def test_fp16_mask_constant_fails_only_under_float16_autocast():
    path = EXAMPLES / "fp16_mask_constant.py"
    plain = trace(path)
    assert plain.exit_code == 0 and plain.events == []
    mask_line = line_of(path, "pad[:, None, :], -1e9")
    assert verdict(plain, path, mask_line, "NAN351") == "AT-RISK"
    (risk,) = [v for v in plain.verdicts if v.code == "NAN351"]
    assert risk.at_risk[0].startswith("float16:") and "constant 1e+09 does not fit" in risk.at_risk[0]
    half = trace(path, dtype="float16")
    e = first(half)
    assert (e.kind, e.line, e.op) == ("error", line_of(path, "pad[:, None, :], -1e9"), "masked_fill")
    assert "Half" in e.message
    assert verdict(half, path, mask_line, "NAN351") == "CONFIRMED"
    assert half.status == "crashed" and half.exit_code == 1
    assert "fp16_mask_constant.py" in half.script_traceback and "nanlint/trace" not in half.script_traceback


def test_clean_training_is_clean():
    result = trace(EXAMPLES / "clean_training.py")
    assert result.exit_code == 0
    assert result.events == [] and result.missed == [] and result.verdicts == []
    assert set(result.health.grad_norms) == {"0 (Linear)", "2 (Linear)"}
    assert 1e-4 < result.health.updates[0]["ratio"] < 1e-1
    assert result.health.warnings == []


def test_examples_readme_lists_every_example():
    readme = (EXAMPLES / "README.md").read_text()
    for script in EXAMPLES.glob("*.py"):
        assert script.name in readme
