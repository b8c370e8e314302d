"""The tracer on every dtype, layout and optimizer shape of real scripts: it never fails because of nanlint,
stops after one step of every optimizer, and finds a NaN in any of them at the user's line."""
from __future__ import annotations

import pytest

from tests.trace_fixtures.helpers import FIXTURES, line_of, origins, trace

torch = pytest.importorskip("torch")

MATRIX = FIXTURES / "matrix.py"
NAN_LINE = line_of(MATRIX, "# NAN HERE")

CONFIGURATIONS = [
    ["--dtype", "float64"],
    ["--dtype", "default-float64", "--optimizer", "LBFGS"],
    ["--dtype", "float64", "--optimizer", "Adam", "--scheduler"],
    ["--dtype", "float16", "--optimizer", "SGD"],
    ["--dtype", "bfloat16", "--optimizer", "AdamW"],
    ["--dtype", "complex64", "--optimizer", "Adam"],
    ["--dtype", "complex64", "--optimizer", "SGD"],
    ["--optimizer", "SparseAdam"],
    ["--optimizer", "LBFGS"],
    ["--optimizer", "two"],
    ["--optimizer", "AdamW", "--scheduler", "--frozen"],
    ["--scaler", "disabled", "--scheduler"],
    ["--scaler", "enabled", "--autocast"],
    ["--scaler", "disabled", "--autocast", "--optimizer", "Adam"],
]


def _ids(configuration):
    return " ".join(configuration).replace("--", "")


def _assert_watched_cleanly(result):
    assert result.error is None, result.script_traceback
    assert not [n for n in result.notes if "internal error" in n], result.notes
    assert result.status == "stopped" and result.ops_watched > 0


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=_ids)
def test_a_finite_run_is_watched_to_its_first_step_and_reported_clean(configuration):
    result = trace(MATRIX, args=configuration)
    _assert_watched_cleanly(result)
    assert result.exit_code == 0 and not origins(result)
    two = "two" in configuration
    assert result.optimizer_steps == (2 if two else 1)
    assert result.stop_reason == ("1 step of each of 2 optimizers" if two else
                                  "1 GradScaler step" if "enabled" in configuration else "1 optimizer step")
    assert result.health.updates and all(u["ratio"] == u["ratio"] for u in result.health.updates)  # not NaN


@pytest.mark.parametrize("configuration", [
    ["--dtype", "float64"],
    ["--dtype", "default-float64", "--optimizer", "LBFGS"],
    ["--dtype", "complex64", "--optimizer", "Adam"],
    ["--optimizer", "SparseAdam"],
    ["--dtype", "bfloat16", "--optimizer", "AdamW"],
    ["--scaler", "disabled"],
], ids=_ids)
def test_a_nan_is_born_at_the_users_line_in_every_configuration(configuration):
    result = trace(MATRIX, args=[*configuration, "--nan"])
    _assert_watched_cleanly(result)
    assert result.exit_code == 1
    first = origins(result)[0]
    assert (first[1], first[3], first[4]) == (NAN_LINE, "forward", "nan")


def test_adam_on_float16_weights_is_caught_in_the_step_where_its_eps_rounds_to_zero():
    result = trace(MATRIX, args=["--dtype", "float16", "--optimizer", "Adam"])
    _assert_watched_cleanly(result)
    assert result.exit_code == 1
    phases = {o[3] for o in origins(result)}
    assert phases == {"step"} and all(o[2] == "addcdiv_" for o in origins(result))


def test_a_flagged_line_in_a_branch_not_taken_is_not_called_safe():
    result = trace(MATRIX, args=["--dtype", "float64"])
    (site,) = [v for v in result.verdicts if v.line == NAN_LINE]
    assert site.verdict == "NOT EXECUTED"


def test_lbfgs_closures_are_watched_as_forward_and_backward_passes_not_as_the_update():
    result = trace(MATRIX, args=["--optimizer", "LBFGS", "--nan"])
    _assert_watched_cleanly(result)
    assert origins(result)[0][1:4] == (NAN_LINE, "div", "forward")
    assert result.optimizer_steps == 1 and result.backward_passes >= 1


def test_an_optimizer_that_never_steps_is_named_in_the_report_instead_of_stalling_the_trace(tmp_path):
    script = tmp_path / "two_phases.py"
    script.write_text(
        "import torch\n"
        "model = torch.nn.Linear(4, 1)\n"
        "pretrain = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "finetune = torch.optim.Adam(model.parameters(), lr=1e-4)  # used after pretraining\n"
        "for step in range(50):\n"
        "    loss = model(torch.randn(8, 4)).pow(2).mean()\n"
        "    pretrain.zero_grad(); loss.backward(); pretrain.step()\n")
    result = trace(script)
    assert result.exit_code == 0 and result.optimizer_steps == 1
    assert any("Adam built at two_phases.py:4 took 0 of 1 steps" in n for n in result.notes), result.notes


def test_the_second_model_of_a_gan_keeps_the_users_name_and_its_nan_is_found(tmp_path):
    script = tmp_path / "gan.py"
    script.write_text(
        "import torch, torch.nn as nn\n"
        "netG = nn.Linear(4, 4)\n"
        "netD = nn.Linear(4, 1)\n"
        "optD = torch.optim.Adam(netD.parameters(), lr=2e-4)\n"
        "optG = torch.optim.Adam(netG.parameters(), lr=2e-4)\n"
        "for i in range(5):\n"
        "    fake = netG(torch.randn(8, 4))\n"
        "    lossD = netD(fake.detach()).pow(2).mean()\n"
        "    optD.zero_grad(); lossD.backward(); optD.step()\n"
        "    lossG = -torch.log(torch.sigmoid(netD(fake)) * 0).mean()\n"
        "    optG.zero_grad(); lossG.backward(); optG.step()\n")
    result = trace(script)
    assert result.exit_code == 1 and result.optimizer_steps == 2
    assert origins(result)[0][1:4] == (10, "log", "forward")  # after the first optimizer's step
    assert {"netG (Linear)", "netD (Linear)"} <= set(result.health.module_outputs)


def test_a_complex_division_by_zero_is_born_at_its_own_line(tmp_path):
    script = tmp_path / "spectral.py"
    script.write_text(
        "import torch\n"
        "w = torch.nn.Parameter(torch.randn(8, dtype=torch.cfloat))\n"
        "opt = torch.optim.SGD([w], lr=0.1)\n"
        "spectrum = torch.fft.fft(torch.zeros(8)) * w\n"
        "ratio = torch.ones(8, dtype=torch.cfloat) / spectrum\n"
        "loss = ratio.abs().mean()\n"
        "opt.zero_grad(); loss.backward(); opt.step()\n")
    result = trace(script)
    assert result.exit_code == 1
    assert origins(result)[0][1:3] == (5, "div")


def test_no_empty_folder_is_left_in_the_temporary_directory(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = trace(MATRIX, args=["--dtype", "float64"])
    assert result.exit_code == 0
    assert list(tmp_path.iterdir()) == []
