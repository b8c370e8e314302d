"""`nanlint.watch(model, optimizer)` in a user's own loop (context manager and callback API), and the Lightning
and Hugging Face callbacks built on it (real packages; tiny models built here, nothing downloaded)."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import nanlint  # noqa: E402

THIS = Path(__file__).resolve()


def _line(text):
    for number, line in enumerate(THIS.read_text().splitlines(), 1):
        if text in line and "_line(" not in line:
            return number
    raise AssertionError(text)


def _standardize(x):
    return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)  # std 0: a constant sample


def _setup():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3)


def _batch(step, bad_step):
    x, y = torch.randn(8, 4), torch.randn(8, 1)
    if step == bad_step:
        x[3] = 0.25
    return x, y


def test_import_nanlint_does_not_import_torch():
    import subprocess
    import sys

    code = "import nanlint, sys; assert 'torch' not in sys.modules; nanlint.check_source('x = 1\\n')"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_watch_in_a_plain_loop_finds_the_step_and_replays_it_at_the_users_line(tmp_path):
    model, opt = _setup()

    def train_step(x, y):
        loss = torch.nn.functional.mse_loss(model(_standardize(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with nanlint.watch(model, opt, save_dir=str(tmp_path / "bundle")) as w:
            for step in range(1, 201):
                x, y = _batch(step, 120)
                w.batch(x, y)
                train_step(x, y)
    assert [str(c.message) for c in caught if "nanlint" in str(c.message)] == [
        f"nanlint.watch: a non-finite loss at step 120; saved to {tmp_path / 'bundle'}"]
    assert w.failure.step == 120 and w.failure.kind == "loss" and w.steps == 119
    assert len(w.health["loss"]) == 119 and (tmp_path / "bundle" / "step.pt").is_file()
    replayed = w.replay(train_step)
    e = replayed.first
    assert (e.filename, e.line, e.op, e.phase, e.step) == (str(THIS), _line("/ x.std(1, keepdim=True)"), "div", "forward", 120)
    w.write_html(str(tmp_path / "health.html"))
    assert 'data-step="120"' in (tmp_path / "health.html").read_text()


def test_the_callback_api_skips_the_failing_step_and_raise_mode_raises():
    model, opt = _setup()
    w = nanlint.watch(model, opt, hooks=False, on_nonfinite="ignore").start()
    try:
        for step in range(1, 61):
            x, y = _batch(step, 50)
            loss = torch.nn.functional.mse_loss(model(_standardize(x)), y)
            opt.zero_grad()
            loss.backward()
            if w.before_step(opt) is not None:
                break  # the step is not taken: the weights stay finite
            opt.step()
            w.after_step(opt)
    finally:
        w.stop()
    assert w.failure.step == 50 and all(torch.isfinite(p).all() for p in model.parameters())
    model, opt = _setup()
    with pytest.raises(nanlint.NonFiniteError, match="non-finite loss at step 7"):
        with nanlint.watch(model, opt, on_nonfinite="raise"):
            for step in range(1, 20):
                x, y = _batch(step, 7)
                loss = torch.nn.functional.mse_loss(model(_standardize(x)), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())  # raised before the step


def test_a_clean_watched_loop_reports_nothing_and_removes_its_hooks():
    model, opt = _setup()
    original = torch.Tensor.backward
    with nanlint.watch(model, opt) as w:
        for step in range(30):
            x, y = _batch(step, None)
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    assert w.failure is None and w.steps == 30 and w.errors == []
    assert torch.Tensor.backward is original and not opt._optimizer_step_pre_hooks


def test_the_lightning_callback_stops_at_the_failing_step(tmp_path):
    L = pytest.importorskip("lightning")
    from torch.utils.data import DataLoader, TensorDataset

    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))

        def training_step(self, batch, batch_idx):
            x, y = batch
            return torch.nn.functional.mse_loss(self.net(_standardize(x)), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    torch.manual_seed(0)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    x[45] = 1.5  # in the 12th batch of 4
    callback = nanlint.lightning_callback(on_nonfinite="ignore", save_dir=str(tmp_path / "step"))
    trainer = L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, callbacks=[callback],
                        default_root_dir=str(tmp_path))
    trainer.fit(Module(), DataLoader(TensorDataset(x, y), batch_size=4))
    f = callback.watch.failure
    assert (f.step, f.kind) == (12, "loss") and trainer.global_step == 12  # stopped after that batch
    saved = torch.load(tmp_path / "step" / "step.pt", weights_only=False)
    (_, (bx, _)), = saved["steps"][0]["items"]
    assert torch.equal(bx, x[44:48])  # the batch of the failing step, not the one fetched ahead
    assert len(callback.watch.health["loss"]) == 11


def test_the_hf_callback_stops_the_trainer_at_the_failing_step(tmp_path):
    pytest.importorskip("transformers")
    from torch.utils.data import Dataset
    from transformers import Trainer, TrainingArguments

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Linear(4, 2)

        def forward(self, features, labels=None):
            scores = self.encoder(_standardize(features))
            return {"loss": torch.nn.functional.cross_entropy(scores, labels), "logits": scores}

    class Data(Dataset):
        def __len__(self):
            return 64

        def __getitem__(self, i):
            g = torch.Generator().manual_seed(i)
            features = torch.full((4,), 3.0) if i == 21 else torch.randn(4, generator=g)
            return {"features": features, "labels": torch.tensor(i % 2)}

    callback = nanlint.hf_callback(on_nonfinite="ignore")
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=8, num_train_epochs=2,
                             report_to=[], save_strategy="no", use_cpu=True, disable_tqdm=True, logging_strategy="no")
    trainer = Trainer(model=Tiny(), args=args, train_dataset=Data(), callbacks=[callback])
    trainer.train()
    f = callback.watch.failure
    assert f is not None and f.kind == "loss"
    (_, _, kwargs), = f.capture.calls  # the failing step's
    assert any(torch.all(row == 3.0) for row in kwargs["features"])  # the model's input held the constant sample
    # the Trainer stopped: the failing step (which "ignore" let run) was its last of 16
    assert trainer.state.global_step == f.step < trainer.state.max_steps == 16
