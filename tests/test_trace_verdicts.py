"""Verdicts on real numerics: a NaN made inside a fused loss is an origin at the user's line; an intentional
-inf that a softmax absorbs is not a failure; a verdict never contradicts what ran at its line."""
from __future__ import annotations

import pytest

from tests.trace_fixtures.helpers import origins, trace

torch = pytest.importorskip("torch")


def _script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cross_entropy_whose_targets_are_all_ignored_is_a_nan_born_at_the_loss_line(tmp_path):
    from nanlint.trace.report import render_full

    path = _script(tmp_path, "ignored.py",
                   "import torch, torch.nn.functional as F\n"
                   "model = torch.nn.Linear(4, 3)\n"
                   "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                   "targets = torch.full((8,), -100)  # a batch of padding only\n"
                   "loss = F.cross_entropy(model(torch.randn(8, 4)), targets, ignore_index=-100)\n"
                   "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    assert result.exit_code == 1
    assert origins(result)[0][1:5] == (5, "nll_loss_forward", "forward", "nan")
    assert "every target of the batch equals ignore_index" in render_full(result)


def test_a_causal_mask_built_with_log_of_a_0_1_matrix_is_intentional(tmp_path):
    path = _script(tmp_path, "causal.py",
                   "import torch\n"
                   "proj = torch.nn.Linear(4, 4)\n"
                   "opt = torch.optim.SGD(proj.parameters(), lr=0.1)\n"
                   "mask = torch.log(torch.tril(torch.ones(4, 4)))  # 0 on and below the diagonal, -inf above\n"
                   "attention = torch.softmax(proj(torch.randn(4, 4)) + mask, dim=-1)\n"
                   "loss = attention.pow(2).sum()\n"
                   "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    assert result.exit_code == 0 and not origins(result)
    (fill,) = result.fills
    assert (fill.value, fill.op, fill.line) == ("-inf", "log", 4) and "absorbed" in fill.message


def test_an_inf_that_reaches_the_loss_is_still_a_failure(tmp_path):
    path = _script(tmp_path, "reaches.py",
                   "import torch\n"
                   "proj = torch.nn.Linear(4, 4)\n"
                   "opt = torch.optim.SGD(proj.parameters(), lr=0.1)\n"
                   "mask = torch.log(torch.tril(torch.ones(4, 4)))\n"
                   "loss = (proj(torch.randn(4, 4)) + mask).mean()  # the -inf is summed, not absorbed\n"
                   "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    assert result.exit_code == 1 and origins(result)[0][1:3] == (4, "log")
    assert not result.fills


def test_an_inference_script_gets_no_benefit_of_the_doubt(tmp_path):
    path = _script(tmp_path, "predict.py",
                   "import torch\n"
                   "scores = torch.log(torch.tril(torch.ones(4, 4)))\n"
                   "print(scores.softmax(-1))\n")
    result = trace(path)
    assert result.exit_code == 1  # no backward pass proves the -inf harmless


def test_hogwild_children_train_in_the_watched_process(tmp_path):
    path = _script(tmp_path, "hogwild.py",
                   "import torch, torch.multiprocessing as mp\n"
                   "def train(rank, model):\n"
                   "    opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                   "    for _ in range(5):\n"
                   "        x = torch.randn(8, 4)\n"
                   "        loss = (model(x).sum() / (x > 100).sum()).abs()\n"
                   "        opt.zero_grad(); loss.backward(); opt.step()\n"
                   "if __name__ == '__main__':\n"
                   "    model = torch.nn.Linear(4, 1)\n"
                   "    model.share_memory()\n"
                   "    workers = [mp.Process(target=train, args=(rank, model)) for rank in range(3)]\n"
                   "    for w in workers:\n"
                   "        w.start()\n"
                   "    for w in workers:\n"
                   "        w.join()\n")
    result = trace(path)
    assert result.exit_code == 1 and origins(result)[0][1:3] == (6, "div")
    assert any("first child (train) ran in the traced process" in n for n in result.notes)


def test_a_timeout_before_any_step_is_not_a_clean_run(tmp_path):
    path = _script(tmp_path, "slow.py",
                   "import time, torch\n"
                   "model = torch.nn.Linear(4, 1)\n"
                   "time.sleep(60)  # loading a dataset that never arrives\n")
    result = trace(path, timeout=2)
    assert result.stop_reason == "timeout" and result.exit_code == 2


def test_a_multi_line_finding_tells_a_value_born_on_any_of_its_lines(tmp_path):
    path = _script(tmp_path, "softplus.py",
                   "import torch\n"
                   "layer = torch.nn.Linear(4, 1)\n"
                   "opt = torch.optim.SGD(layer.parameters(), lr=0.1)\n"
                   "z = layer(torch.randn(8, 4)) * 1e4\n"
                   "smooth = torch.log1p(\n"
                   "    torch.exp(z)\n"
                   ")\n"
                   "loss = smooth.mean()\n"
                   "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    sites = {v.code: v for v in result.verdicts}
    assert sites["NAN305"].verdict == "CONFIRMED" and origins(result)[0][1:3] == (6, "exp")
    softplus = sites["NAN103"]  # starts at line 5; the inf was born on its line 6
    assert softplus.line == 5 and softplus.verdict == "SAFE"  # its log1p stayed finite ...
    assert any("inf born in exp" in r and "confirms NAN305" in r for r in softplus.reasons)  # ... and it says why


def test_the_std_of_one_element_confirms_the_rule_at_its_line(tmp_path):
    path = _script(tmp_path, "whiten.py",
                   "import torch\n"
                   "layer = torch.nn.Linear(4, 1)\n"
                   "opt = torch.optim.SGD(layer.parameters(), lr=0.1)\n"
                   "h = layer(torch.randn(1, 4))  # a batch of one\n"
                   "scale = torch.sqrt(h.var(dim=0)) + 1e-6\n"
                   "loss = (h / scale).mean()\n"
                   "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    sites = {v.code: v for v in result.verdicts if v.line == 5}
    assert sites and all(v.verdict != "SAFE" for v in sites.values()), sites


def test_a_crash_after_the_first_batch_is_not_a_clean_run(tmp_path):
    path = _script(tmp_path, "wrong_size.py",
                   "import torch\n"
                   "from torch.utils.data import DataLoader, TensorDataset\n"
                   "model = torch.nn.Linear(4, 1)\n"
                   "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
                   "for (x,) in DataLoader(TensorDataset(torch.randn(16, 5)), batch_size=4):\n"
                   "    loss = model(x).mean()  # 5 features into a 4-feature layer\n"
                   "    opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(path)
    assert result.batches == 1 and result.status == "crashed"
    assert result.exit_code == 2 and "mat1 and mat2 shapes cannot be multiplied" in result.script_traceback
