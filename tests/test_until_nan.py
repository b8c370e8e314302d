"""`nanlint trace --until-nan`: the whole run under the cheap watch, the first non-finite step re-run under
the full monitor and reported with its step number; `--save-failing-step` and `nanlint replay`; the health
page. The fixtures (tests/trace_fixtures/late_*.py) run hundreds of tiny steps."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tests.trace_fixtures.helpers import FIXTURES, line_of

torch = pytest.importorskip("torch")

from nanlint.cli import main  # noqa: E402
from nanlint.trace.session import TraceOptions  # noqa: E402
from nanlint.trace.until_nan import UntilNanOptions, until_nan  # noqa: E402

STANDARDIZE = FIXTURES / "late_standardize.py"
BACKWARD = FIXTURES / "late_backward.py"
STEP = FIXTURES / "late_step.py"
SHUFFLE = FIXTURES / "late_shuffle.py"
CLEAN = FIXTURES / "late_clean.py"


def run(path, **options):
    return until_nan(UntilNanOptions(TraceOptions(script=str(path)), **options))


def cli(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def first(result):
    e = result.first_bug
    return (e.line, e.op, e.phase, e.step + 1) if e else None


def test_a_forward_nan_at_step_150_is_found_and_traced_at_its_line():
    result = run(STANDARDIZE)
    assert result.exit_code == 1
    assert result.until_nan["step"] == 150 and result.until_nan["detected"] == "loss"
    assert result.until_nan["steps_watched"] == 149 and result.until_nan["reproduced"] is True
    assert first(result) == (line_of(STANDARDIZE, "/ x.std(1"), "div", "forward", 150)
    assert result.first_bug.figures.get("smallest |denominator|") == 0.0
    assert len(result.until_nan["health"]["loss"]) == 149  # the curves stop before the failing step


def test_a_backward_nan_is_born_in_the_sqrt_backward_of_step_40():
    result = run(BACKWARD)
    assert result.exit_code == 1 and result.until_nan["detected"] == "gradients"
    line, op, phase, step = first(result)
    assert (line, op, phase, step) == (line_of(BACKWARD, ".sqrt()"), "sqrt", "backward", 40)
    assert result.first_bug.node == "SqrtBackward0"


def test_a_nan_born_in_the_optimizer_step_is_replayed_from_the_last_checkpoint():
    result = run(STEP)
    assert result.exit_code == 1 and result.until_nan["detected"] == "parameters"
    assert first(result) == (line_of(STEP, "optimizer.step()"), "add_", "step", 64)
    assert result.first_bug.param == "weight" and result.until_nan["step"] == 64
    # the update of step 64 is seen at step 65's loss: the steps since the checkpoint of step 50 are re-run
    assert "replay of steps 50-65 (from the checkpoint of step 50)" in " ".join(result.notes)


def test_the_replayed_batch_of_a_shuffling_dataloader_is_the_one_that_failed(tmp_path, capsys):
    bundle = tmp_path / "step"
    result = run(SHUFFLE, save_dir=str(bundle))
    printed = [json.loads(line[len("batch "):]) for line in capsys.readouterr().out.splitlines() if line.startswith("batch ")]
    step = result.until_nan["step"]
    watched, replayed = printed[:step], printed[step:]
    assert 37 in watched[-1] and not any(37 in b for b in watched[:-1])  # the watched run failed at its batch
    assert replayed == [watched[-1]]  # the replay ran that batch, and only it
    assert result.exit_code == 1 and first(result)[:3] == (line_of(SHUFFLE, "/ x.std(1"), "div", "forward")
    saved = torch.load(bundle / "step.pt", weights_only=False)
    (step_saved,) = saved["steps"]
    (source, (x, index)), = step_saved["items"]
    assert index.tolist() == watched[-1] and source == "Samples/4"
    row = x[index.tolist().index(37)]
    assert torch.all(row == 2.0)  # the constant sample, as the dataset made it
    assert json.loads((bundle / "step.json").read_text())["step"] == step


def test_a_clean_long_run_exits_0_with_its_curves():
    result = run(CLEAN)
    assert result.exit_code == 0 and result.status == "finished"
    u = result.until_nan
    assert u["step"] is None and u["steps_watched"] == 300
    h = u["health"]
    assert h["steps"] == list(range(1, 301)) and len(h["loss"]) == len(h["grad_norm"]) == 300
    assert h["ratio_steps"] == [1] + list(range(10, 300, 10))  # sampled: the first step and every 10th
    assert all(0 < r < 0.1 for r in h["update_ratio"])
    assert set(h["activations"]) == {"Sequential.0", "Sequential.1", "Sequential.2"}


def test_max_steps_ends_a_run_before_its_nan():
    result = run(STANDARDIZE, max_steps=120)
    assert result.exit_code == 0 and result.until_nan["steps_watched"] == 120
    assert result.stop_reason == "120 optimizer steps (--max-steps)"


def test_the_cli_reports_the_step_in_text_and_json(tmp_path):
    code, out = cli("trace", "--until-nan", BACKWARD)
    assert code == 1
    assert "First non-finite step: 40 (non-finite gradients)" in out
    assert re.search(r"Result: a non-finite value was produced: -?inf born at .*late_backward.py:\d+ in `sqrt` "
                     r"\(backward, step 40\) \(exit 1\)", out)
    report = tmp_path / "trace.json"
    code, _ = cli("trace", "--until-nan", "--output-format", "json", "--output-file", report, BACKWARD)
    data = json.loads(report.read_text())
    assert code == 1 and data["exit_code"] == 1
    assert data["first_nonfinite"]["step"] == 40 and data["until_nan"]["step"] == 40
    assert data["until_nan"]["html"] == str(tmp_path / "trace.html") and (tmp_path / "trace.html").is_file()


def test_save_and_replay_round_trip(tmp_path):
    bundle = tmp_path / "failing"
    code, out = cli("trace", "--until-nan", "--save-failing-step", bundle, STEP)
    assert code == 1 and f"failing step saved to {bundle}" in out
    assert sorted(p.name for p in bundle.iterdir()) == ["step.json", "step.pt"]
    code, out = cli("replay", bundle, STEP)
    assert code == 1
    assert "in `add_` (step, step 64)" in out and f"late_step.py:{line_of(STEP, 'optimizer.step()')}" in out
    assert ("replay of steps 50-65 (from the checkpoint of step 50): restored the inputs of 16 module call(s), "
            "1 module state(s), 1 optimizer state(s)") in out
    code, again = cli("replay", bundle)  # the saved script, with its saved arguments
    assert code == 1 and again.splitlines()[0] == f"nanlint replay {bundle} {STEP}"
    assert "in `add_` (step, step 64)" in again


@pytest.mark.parametrize("args, message", [
    (["trace", "--max-steps", "3", "x.py"], "--max-steps needs --until-nan"),
    (["trace", "--until-nan", "--steps", "2", "x.py"], "--steps cannot be combined with --until-nan (use --max-steps)"),
    (["trace", "--until-nan", "missing.py"], "missing.py: no such file"),
    (["replay", "missing_dir", "x.py"], "missing_dir: no such folder"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = cli(*args)
    assert code == 2 and out.strip() == f"nanlint: error: {message}", out


def test_a_user_folder_is_never_written_over(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    code, out = cli("trace", "--until-nan", "--save-failing-step", folder, STEP)
    assert code == 2 and out.strip().count("\n") == 0 and "is not empty" in out
    assert [p.name for p in folder.iterdir()] == ["notes.txt"] and (folder / "notes.txt").read_text() == "keep"
    code, out = cli("replay", folder, STEP)
    assert code == 2 and "not a replay bundle" in out and "Traceback" not in out


def test_a_crash_of_the_scripts_own_after_some_steps_exits_2_with_its_traceback(tmp_path):
    script = tmp_path / "late_crash.py"
    script.write_text("import torch\nm = torch.nn.Linear(2, 1)\no = torch.optim.SGD(m.parameters(), lr=0.1)\n"
                      "for step in range(20):\n    loss = m(torch.randn(3, 2)).pow(2).mean()\n"
                      "    if step == 12:\n        raise KeyError('label 7')\n"
                      "    o.zero_grad(); loss.backward(); o.step()\n")
    code, out = cli("trace", "--until-nan", script)
    assert code == 2 and "KeyError: 'label 7'" in out and "nanlint/trace" not in out
    assert "re-run under the full monitor: no non-finite value" in out


def test_a_script_that_fails_before_any_step_exits_2_with_its_traceback(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import torch\nraise ValueError('no data')\n")
    code, out = cli("trace", "--until-nan", script)
    assert code == 2 and "ValueError: no data" in out and "nanlint/trace" not in out


def test_nanlints_own_failure_never_breaks_the_script(monkeypatch, capsys):
    from nanlint.trace import cheapwatch

    def broken(self, optimizer):
        raise RuntimeError("watch bug")

    monkeypatch.setattr(cheapwatch.StepWatch, "_before_step", broken)
    result = run(CLEAN)
    assert "final loss" in capsys.readouterr().out  # the script ran to its end
    assert result.status == "finished"
    assert any("watch bug" in n for n in result.notes)


GUARD = FIXTURES / "late_guard.py"
LIGHTNING = FIXTURES / "late_lightning.py"


def test_a_step_that_the_scripts_own_guard_stopped_is_replayed_and_its_crash_reported():
    result = run(GUARD)
    # the guard raised before backward: the cheap watch never saw the loss; the step it raised in is replayed
    assert result.exit_code == 1 and result.until_nan["step"] == 30 and result.until_nan["detected"] == "crash"
    assert result.status == "crashed" and result.error == "RuntimeError: loss is inf at step 1"
    line, op, phase, step = first(result)
    assert (line, op, phase, step) == (line_of(GUARD, "torch.log(p[:, 0])"), "log", "forward", 30)


def test_lightning_late_nan_under_until_nan_replays_the_batch_of_its_step(tmp_path):
    pytest.importorskip("lightning")
    result = run(LIGHTNING, save_dir=str(tmp_path / "step"))
    assert result.exit_code == 1 and result.until_nan["step"] == 12
    assert first(result) == (line_of(LIGHTNING, "/ x.std(1"), "div", "forward", 12)
    (step_saved,) = torch.load(tmp_path / "step" / "step.pt", weights_only=False)["steps"]
    (_, (x, _)), = step_saved["items"]
    assert torch.all(x[1] == 1.5) and x.shape == (4, 4)  # sample 45: the step's own batch (Lightning fetches ahead)
