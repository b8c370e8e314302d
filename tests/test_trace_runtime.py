"""How the tracer runs scripts: stopping, GradScaler, DataLoader workers, hand-written SGD, sys.exit, crashes,
data that arrives with NaN, intentional -inf fills, torch.compile, file protection, restored patches."""
from __future__ import annotations

import builtins
import io
import os
import shutil

import pytest

from tests.trace_fixtures.helpers import EXAMPLES, FIXTURES, line_of, origins, trace

torch = pytest.importorskip("torch")


def test_gradscaler_calibration_is_not_a_bug():
    result = trace(FIXTURES / "gradscaler_train.py")
    assert result.skipped_scaler_steps >= 1
    assert result.stop_reason == "1 GradScaler step"
    calibration = [e for e in result.events if e.calibration]
    assert calibration and all(e.phase in ("backward", "step") for e in calibration)
    assert result.exit_code == 0


def test_hand_written_sgd_stops_before_the_next_backward_and_watches_the_update():
    path = FIXTURES / "manual_sgd.py"
    result = trace(path)
    assert result.stop_reason.startswith("1 backward pass")
    assert result.backward_passes == 1
    e = result.first_bug
    assert (e.line, e.op, e.value) == (line_of(path, "w.grad.norm()"), "div", "nan")
    two = trace(path, steps=2)
    assert two.backward_passes == 2 and two.stop_reason.startswith("2 backward passes")


def test_inference_stops_at_the_next_batch_and_forces_workers_to_zero():
    result = trace(FIXTURES / "inference_loader.py")
    assert result.stop_reason == "1 batch (no training step)"
    assert result.batches == 1
    assert any("num_workers=2 forced to 0" in n for n in result.notes)
    assert result.health.first_batch["shapes"] == [[8, 4]]
    assert result.exit_code == 0


def test_except_exception_cannot_swallow_the_stop():
    result = trace(FIXTURES / "swallow.py", timeout=20)
    assert result.stop_reason == "1 optimizer step"
    assert result.exit_code == 0


def test_timeout_is_the_last_resort():
    result = trace(FIXTURES / "swallow.py", timeout=0.5, steps=10 ** 9)
    assert result.stop_reason == "timeout"
    assert result.optimizer_steps > 1
    assert any("timeout" in n for n in result.notes)


def test_script_arguments_and_sys_exit():
    path = FIXTURES / "cli_args.py"
    ok = trace(path, args=["--lr", "0.5"])
    assert ok.stop_reason == "1 optimizer step" and ok.health.updates[0]["lr"] == 0.5
    exited = trace(path, args=["--lr", "0.5", "--exit-code", "3"])
    assert exited.status == "exited" and exited.script_exit_code == 3 and exited.exit_code == 2
    usage = trace(path)  # argparse: --lr is required
    assert usage.status == "exited" and usage.script_exit_code == 2 and usage.exit_code == 2


def test_crash_before_the_first_step_shows_the_scripts_own_traceback():
    path = FIXTURES / "crash_before_step.py"
    result = trace(path)
    assert result.exit_code == 2 and result.status == "crashed"
    assert result.error == "ValueError: config file missing"
    assert f'line {line_of(path, "raise ValueError")}' in result.script_traceback
    assert "nanlint" not in result.script_traceback.replace(str(FIXTURES), "") and "runpy" not in result.script_traceback
    assert result.health.module_outputs  # what was observed before the crash is kept


def test_nan_already_in_the_data_is_reported_as_input():
    path = FIXTURES / "nan_in_data.py"
    result = trace(path)
    e = result.first_bug
    assert (e.kind, e.value, e.line) == ("input", "nan", line_of(path, "model(batch)"))
    assert result.health.first_batch["nonfinite"]
    assert result.exit_code == 1


def test_intentional_minus_inf_fill_integers_and_compile():
    path = FIXTURES / "intentional_mask.py"
    result = trace(path)
    assert result.exit_code == 0 and result.events == []
    (fill,) = result.fills
    assert (fill.value, fill.op, fill.line) == ("-inf", "masked_fill", line_of(path, "masked_fill"))
    assert any("torch.compile was replaced" in n for n in result.notes)
    assert torch.compile is not None and torch.compile.__module__.startswith("torch")  # restored


def test_relative_imports_with_dash_m_and_sites_in_imported_modules(monkeypatch):
    from nanlint.trace.session import TraceOptions, trace as run

    monkeypatch.chdir(FIXTURES)
    result = run(TraceOptions(module="pkg.train"))
    model = str(FIXTURES / "pkg" / "model.py")
    assert [(v.filename, v.code, v.verdict) for v in result.verdicts] == [(model, "NAN101", "CONFIRMED")]
    assert result.first_bug.filename == model
    assert model in result.files_checked


def test_user_files_are_never_overwritten_or_deleted(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("keep")
    (tmp_path / "old.txt").write_text("old")
    (tmp_path / "log.txt").write_text("original log")
    (tmp_path / "ckpt.pt").write_text("original checkpoint")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x").write_text("x")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    opened, removed = builtins.open, os.remove
    monkeypatch.chdir(tmp_path)
    result = trace(FIXTURES / "protect_files.py")
    assert result.exit_code == 0, result.error
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing changed, nothing added, nothing deleted
    operations = {(d["operation"], os.path.basename(d["path"])) for d in result.redirects}
    assert {("torch.save", "ckpt.pt"), ("write", "log.txt"), ("write", "notes.txt"), ("remove", "keep.txt"),
            ("rename", "old.txt"), ("rmtree", "data"), ("log", "train.log")} <= operations
    saved = next(d["to"] for d in result.redirects if d["operation"] == "torch.save")
    assert set(torch.load(saved)) == {"weight", "bias"}
    assert builtins.open is opened and io.open is opened and os.remove is removed
    assert shutil.rmtree.__module__ == "shutil"


def test_deferred_mode_finds_the_same_origin():
    """The CUDA path (one host sync per phase), exercised on CPU."""
    path = EXAMPLES / "exp_overflow.py"
    immediate, deferred = trace(path), trace(path, deferred=True)
    assert origins(deferred) == origins(immediate)
    assert deferred.exit_code == immediate.exit_code == 1


def test_patches_and_modes_are_gone_after_a_run():
    from torch.overrides import _get_current_function_mode_stack
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    from torch.nn.modules import module as module_mod
    from torch.optim import optimizer as optimizer_mod

    backward, step_hooks = torch.Tensor.backward, dict(optimizer_mod._global_optimizer_post_hooks)
    forward_hooks = dict(module_mod._global_forward_hooks)
    trace(EXAMPLES / "clean_training.py")
    assert torch.Tensor.backward is backward
    assert dict(optimizer_mod._global_optimizer_post_hooks) == step_hooks
    assert dict(module_mod._global_forward_hooks) == forward_hooks
    assert _get_current_function_mode_stack() == [] and _get_current_dispatch_mode_stack() == []
    assert torch.cuda.is_available.__module__ == "torch.cuda"


def test_a_monitor_failure_never_breaks_the_script(monkeypatch):
    from nanlint.trace import monitor

    def broken(self, func, args, kwargs, out):
        raise KeyError("boom")

    monkeypatch.setattr(monitor.Monitor, "after", broken)
    result = trace(EXAMPLES / "clean_training.py")
    assert result.status == "stopped" and result.exit_code == 0
    assert any("internal error" in n and "boom" in n for n in result.notes)


def test_data_parallel_limits_are_stated():
    result = trace(FIXTURES / "data_parallel.py")
    assert result.exit_code == 0 and result.optimizer_steps == 1
    assert any(n.startswith("DataParallel: replicas run in other threads") for n in result.notes)
    assert "module.weight" not in result.health.grad_norms and any("Linear" in k for k in result.health.grad_norms)
