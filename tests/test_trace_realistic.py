"""Scripts as users write them: argparse mains, output folders, existing checkpoints and logs, packages,
mixed precision, attention masks, gradient accumulation, evaluation before training."""
from __future__ import annotations

import logging

import pytest

from tests.trace_fixtures.helpers import FIXTURES, line_of, origins, trace

torch = pytest.importorskip("torch")


def _snapshot(folder):
    return {p.relative_to(folder): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def test_a_typical_training_script_leaves_the_users_folder_exactly_as_it_was(tmp_path, monkeypatch):
    for name, text in {"ckpt.pt": "user checkpoint", "metrics.json": '{"old": 1}', "summary.txt": "old",
                       "best.pt": "old best", "last.pt": "old last", "train.log": "old log line\n"}.items():
        (tmp_path / name).write_text(text)
    before = _snapshot(tmp_path)
    root_handlers = logging.root.handlers[:]
    monkeypatch.chdir(tmp_path)
    result = trace(FIXTURES / "argparse_train.py", args=["--lr", "0.05"])
    assert result.exit_code == 0 and result.stop_reason == "1 optimizer step", result.error
    assert _snapshot(tmp_path) == before  # no file changed or deleted, no file or folder added
    done = {(d["operation"], d["path"].split(str(tmp_path))[-1]) for d in result.redirects}
    assert {("mkdir", "/runs"), ("mkdir", "/runs/exp1"), ("torch.save", "/ckpt.pt"), ("write", "/runs/exp1/done"),
            ("log", "/train.log"), ("log", "/debug.log"), ("copy", "/best.pt")} <= done
    log_copy = next(d["to"] for d in result.redirects if d["path"].endswith("train.log"))
    assert open(log_copy).read().startswith("old log line\nINFO:argparse-train:ready")
    assert logging.root.handlers == root_handlers  # basicConfig(force=True) in the script is undone


def test_a_script_that_ends_before_any_step_gets_a_short_report_that_says_nothing_was_checked(tmp_path):
    from nanlint.trace.report import render_full
    from nanlint.trace.session import TraceError

    early = trace(FIXTURES / "cli_args.py", args=["--lr", "1", "--exit-code", "0"])
    text = render_full(early)
    # a run in which nothing was watched is never reported as clean
    assert early.exit_code == 2 and "nothing was checked (exit 2)" in text and "Training health" not in text
    script = tmp_path / "config_check.py"
    script.write_text("import sys\nsys.exit('config.yaml: missing key lr')\n")
    refused = trace(script)
    assert refused.exit_code == 2
    assert "sys.exit('config.yaml: missing key lr')" in render_full(refused)
    with pytest.raises(TraceError, match="is a folder, not a script"):
        trace(tmp_path)


def test_a_bare_except_inside_a_while_true_loop_cannot_keep_the_script_running():
    import sys

    result = trace(FIXTURES / "bare_except.py", timeout=60)
    assert result.status == "stopped" and result.stop_reason == "1 optimizer step"
    assert result.optimizer_steps == 1  # the stop is noticed as swallowed before the next step runs
    assert result.seconds < 30 and any("bare `except:`" in n for n in result.notes)
    assert sys.gettrace() is None and sys.getprofile() is None


def test_nan_born_inside_torch_attention_is_blamed_on_the_users_call_with_advice():
    from nanlint.trace.report import render_full

    path = FIXTURES / "attention_full_mask.py"
    result = trace(path)
    assert result.exit_code == 1
    e = result.first_bug
    assert (e.filename, e.line, e.value, e.phase) == (str(path), line_of(path, "attn(x, x, x"), "nan", "forward")
    assert "softmax" in e.op
    text = render_full(result)
    assert "keep at least one unmasked position per row" in text
    spread = next(line for line in text.splitlines() if line.startswith("  spread:"))
    assert spread.count(f"forward tests/trace_fixtures/attention_full_mask.py:{e.line} (") == 1  # ops grouped


def test_the_report_stays_short_for_a_clean_script_and_columns_fit_long_module_names():
    from nanlint.trace.report import render_full

    text = render_full(trace(FIXTURES / "attention_full_mask.py"))
    assert "not redirected" not in text  # the interception limits are said only where the script wrote files
    rows = [line for line in text.splitlines() if "out_proj (NonDynamicallyQuantizableLinear)" in line]
    assert rows and all("NonDynamicallyQuantizableLinear) " in row for row in rows)


@pytest.mark.filterwarnings("ignore:Error detected")
def test_detect_anomaly_warnings_show_the_users_stack_not_nanlints():
    import os
    import subprocess
    import sys

    from tests.trace_fixtures.helpers import ROOT

    path = FIXTURES / "anomaly_checkpoint.py"
    done = subprocess.run([sys.executable, "-m", "nanlint", "trace", str(path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 1
    assert "Traceback of forward call" in done.stderr and f'line {line_of(path, "torch.sqrt")}, in block' in done.stderr
    assert "nanlint/" not in done.stderr and "click" not in done.stderr and "runpy" not in done.stderr
    assert "the script crashed: RuntimeError: Function 'PowBackward0' returned nan values in its 0th output;" in done.stdout
    assert f"born:   inf at tests/trace_fixtures/anomaly_checkpoint.py:{line_of(path, 'torch.sqrt')} in `sqrt`" in done.stdout


@pytest.mark.filterwarnings("ignore:Error detected")
def test_global_torch_modes_the_script_sets_are_put_back():
    result = trace(FIXTURES / "anomaly_checkpoint.py")
    assert result.exit_code == 1 and result.status == "crashed"
    assert not torch.is_anomaly_enabled()


def test_evaluation_over_a_dataloader_before_the_optimizer_exists_does_not_end_the_trace():
    result = trace(FIXTURES / "eval_before_train.py")
    assert result.stop_reason == "1 optimizer step" and result.batches == 5  # 4 validation batches, 1 training
    assert result.health.updates and result.exit_code == 0


def test_nan_born_in_the_optimizer_step_confirms_the_rule_at_the_line_that_built_the_optimizer():
    from nanlint.trace.report import render_full

    path = FIXTURES / "half_adam.py"
    result = trace(path)
    e = result.first_bug
    assert (e.phase, e.line, e.param, e.value) == ("step", line_of(path, "optimizer.step()"), "0.weight", "nan")
    built = line_of(path, "torch.optim.Adam")
    confirmed = {(v.code, v.line) for v in result.verdicts if v.verdict == "CONFIRMED"}
    assert ("NAN356", built) in confirmed and result.missed == []
    text = render_full(result)
    assert f"NAN356 (adam-eps-with-half-params) flags tests/trace_fixtures/half_adam.py:{built}: CONFIRMED" in text
    assert "Adam's eps=1e-8 rounds to 0" in text and "in step 1" in text
    assert "normal_ output range" not in text  # weight initialisation is not evidence


def test_gradscaler_calibration_is_judged_by_the_scale_not_by_a_count_of_skips():
    path = FIXTURES / "gradscaler_persistent.py"
    long_calibration = trace(path, args=["1"])
    assert long_calibration.skipped_scaler_steps >= 12 and long_calibration.exit_code == 0
    assert not any(n.startswith("GradScaler skipped") for n in long_calibration.notes)
    persistent = trace(path, args=["1e5"])
    assert persistent.exit_code == 1
    (note,) = [n for n in persistent.notes if n.startswith("GradScaler skipped")]
    assert "the overflow persists" in note and "loss scale of" in note


def test_a_ddp_script_started_with_mp_spawn_runs_rank_0_in_process_and_writes_nothing(tmp_path, monkeypatch):
    import torch.distributed as dist

    monkeypatch.chdir(tmp_path)
    result = trace(FIXTURES / "ddp_spawn.py", timeout=60)
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 0
    assert result.health.updates and any("spawn(nprocs=2)" in n for n in result.notes)
    assert list(tmp_path.iterdir()) == []  # no child process wrote ddp.pt
    assert not dist.is_initialized()


def test_libraries_in_a_virtual_environment_inside_the_project_are_not_user_code():
    import sys

    path = FIXTURES / "venv_project" / "train.py"
    result = trace(path, project_root=str(path.parent))
    assert result.exit_code == 0
    assert [f for f in result.files_checked if "site-packages" in f] == []
    assert "vendored_lib" in sys.modules  # a library's module is left imported, as any library's
    del sys.modules["vendored_lib"]


def test_a_shape_error_shows_the_traceback_a_plain_run_shows():
    import subprocess
    import sys

    path = FIXTURES / "shape_error.py"
    result = trace(path)
    assert result.exit_code == 2 and result.error.startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied")
    plain = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120).stderr
    frames = [line.strip() for line in result.script_traceback.splitlines() if line.strip().startswith("File ")]
    plain_frames = [line.strip() for line in plain.splitlines() if line.strip().startswith("File ")]
    assert [f.split(", in ")[-1] for f in frames] == [f.split(", in ")[-1] for f in plain_frames]
    assert f'line {line_of(path, "model(torch.randn")}, in main' in result.script_traceback


def test_importing_the_projects_modules_leaves_no_pycache_behind(tmp_path):
    import sys

    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "model.py").write_text("import torch\n\n\ndef net():\n    return torch.nn.Linear(2, 1)\n")
    script = tmp_path / "train.py"
    script.write_text("import torch\nfrom mypkg.model import net\n\nm = net()\nopt = torch.optim.SGD(m.parameters(), 0.1)\n"
                      "m(torch.ones(1, 2)).sum().backward()\nopt.step()\n")
    before, bytecode = _snapshot(tmp_path), sys.dont_write_bytecode
    sys.dont_write_bytecode = False  # as in a user's shell
    try:
        result = trace(script)
        assert sys.dont_write_bytecode is False
    finally:
        sys.dont_write_bytecode = bytecode
    assert result.exit_code == 0 and str(tmp_path / "mypkg" / "model.py") in result.files_checked
    assert _snapshot(tmp_path) == before


def test_a_nan_that_torch_where_discards_is_told_as_such():
    from nanlint.trace.report import render_full

    path = FIXTURES / "where_discarded.py"
    result = trace(path)
    assert (result.first_bug.op, result.first_bug.line) == ("div", line_of(path, "means = torch.where"))
    assert "spread: nowhere: every later result stayed finite" in render_full(result)
    assert all(n == n for n in result.health.grad_norms.values())  # the weights' gradients stayed finite


def test_gradient_accumulation_stops_after_the_optimizer_step_not_at_the_second_backward():
    result = trace(FIXTURES / "hf_style_accumulation.py")
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 0
    assert (result.backward_passes, result.optimizer_steps) == (2, 1)
    assert len(result.health.updates) == 1 and result.health.updates[0]["lr"] == pytest.approx(1e-4)
    two = trace(FIXTURES / "hf_style_accumulation.py", steps=2)
    assert (two.backward_passes, two.optimizer_steps) == (4, 2)


def test_deleting_then_recreating_an_output_folder_works_and_everything_is_put_back(tmp_path, monkeypatch):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.ckpt").write_text("last week's run")
    (tmp_path / "train.log").write_text("old log\n")
    before = _snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = trace(FIXTURES / "clean_output_dir.py")
    assert result.exit_code == 0 and result.stop_reason == "1 optimizer step", result.error
    assert _snapshot(tmp_path) == before
    log_copy = next(d["to"] for d in result.redirects if d["operation"] == "append")
    assert open(log_copy).read() == "fresh\n"  # the script saw its log deleted
