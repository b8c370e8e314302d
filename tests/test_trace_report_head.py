"""The report leads with the answer: the verdict and where the first non-finite value was born come first,
with the values that made it and the confirmed finding's own fix; per-step lines and repeated warnings
collapse; health advice needs evidence."""
from __future__ import annotations

import pytest

from tests.trace_fixtures.helpers import EXAMPLES, line_of, trace

torch = pytest.importorskip("torch")


def _render(result):
    from nanlint.trace.report import render_full

    return render_full(result)


def test_the_verdict_and_the_birthplace_are_in_the_first_lines_with_the_rules_own_fix():
    path = EXAMPLES / "log_softmax_underflow.py"
    line = line_of(path, "torch.log(probs)")
    text = _render(trace(path))
    head = text.splitlines()[:12]
    assert head[3].startswith("Result: a non-finite value was produced: -inf born at ")
    assert f"log_softmax_underflow.py:{line} in `log` (forward, step 1) (exit 1)" in head[3]
    assert any(l.startswith("  why:    smallest input 0") for l in head)
    assert "  to do:  use `log_softmax` / `logsigmoid`, or clamp first: `p.clamp_min(eps).log()`" in head
    assert text.rstrip().splitlines()[-1] == head[3]  # and again last, for the tail of a CI log


def test_a_division_by_an_empty_count_tells_the_denominator(tmp_path):
    script = tmp_path / "ratio.py"
    script.write_text("import torch\n"
                      "model = torch.nn.Linear(4, 1)\n"
                      "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                      "x = torch.randn(8, 4)\n"
                      "hits = (x > 100).sum(0).float()\n"
                      "rate = model(x).sum() / hits\n"
                      "loss = rate.mean()\n"
                      "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(script)
    first = result.first_bug
    assert (first.line, first.op) == (6, "div") and first.figures["smallest |denominator|"] == 0.0
    assert "  why:    smallest |denominator| 0\n" in _render(result)


def test_per_step_lines_and_repeated_warnings_collapse(tmp_path):
    script = tmp_path / "hot.py"
    script.write_text("import torch\n"
                      "torch.manual_seed(0)\n"
                      "model = torch.nn.Linear(4, 1)\n"
                      "opt = torch.optim.SGD(model.parameters(), lr=0.5)\n"
                      "for _ in range(20):\n"
                      "    loss = model(torch.randn(8, 4)).pow(2).mean()\n"
                      "    opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(script, steps=6)
    text = _render(result)
    assert len(result.health.updates) == 6
    assert "  steps 1-6 SGD group 0 (6 updates): lr 0.5, ||dW||/||W|| = " in text
    (warning,) = [l for l in text.splitlines() if "update-to-weight ratio" in l]
    assert warning.endswith("more like it at later steps)")


def test_the_first_adam_step_of_a_standard_recipe_is_not_a_learning_rate_warning(tmp_path):
    script = tmp_path / "adam.py"
    script.write_text("import torch\n"
                      "model = torch.nn.Sequential(torch.nn.Linear(4, 2), torch.nn.Linear(2, 1))\n"
                      "for p in model.parameters():\n"
                      "    torch.nn.init.constant_(p, 0.005)  # a small init: lr 1e-3 is 20% of each weight\n"
                      "opt = torch.optim.Adam(model.parameters(), lr=1e-3)\n"
                      "for _ in range(3):\n"
                      "    loss = model(torch.randn(8, 4)).pow(2).mean()\n"
                      "    opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(script)
    assert result.health.updates[0]["ratio"] > 0.1  # Adam moves each weight by ~lr on its first step
    assert not [w for w in result.health.warnings if "learning rate" in w]
