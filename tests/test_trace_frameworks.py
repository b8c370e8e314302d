"""The frameworks users train with: Lightning runs training_step inside its optimizer closure, the Hugging Face
Trainer inside its own loop. One step is traced, the ops in the user's code are watched at the user's lines,
and the run stops cleanly (the packages are real, pinned in constraints.txt; the models are built in code)."""
from __future__ import annotations

import pytest

from tests.trace_fixtures.helpers import FIXTURES, line_of, origins, trace

torch = pytest.importorskip("torch")
LIGHTNING = FIXTURES / "lightning_train.py"
HF_TRAINER = FIXTURES / "hf_trainer.py"


def _site(result, path, text):
    line = line_of(path, text)
    (site,) = [v for v in result.verdicts if v.line == line]
    return site


@pytest.mark.parametrize("manual", [False, True], ids=["automatic", "manual optimization"])
def test_lightning_training_step_is_watched_and_its_nan_confirms_the_rule(manual):
    result = trace(LIGHTNING, args=["--sharpen", *(["--manual"] if manual else [])])
    assert result.error is None, result.script_traceback
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 1
    site = _site(result, LIGHTNING, "torch.log(torch.softmax")
    assert (site.code, site.verdict) == ("NAN101", "CONFIRMED")
    assert origins(result)[0][1:4] == (site.line, "log", "forward")


def test_a_clean_lightning_run_is_watched_not_skipped():
    result = trace(LIGHTNING)
    assert result.exit_code == 0 and result.stop_reason == "1 optimizer step"
    assert _site(result, LIGHTNING, "torch.log(torch.softmax").verdict == "SAFE"  # it ran and stayed finite
    assert result.backward_passes == 1 and "encoder.0 (Linear)" in result.health.module_outputs


def test_hf_trainer_step_is_watched_and_leaves_no_output_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = trace(HF_TRAINER, args=["--sharpen"])
    assert result.error is None, result.script_traceback
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 1
    site = _site(result, HF_TRAINER, "torch.log(torch.softmax")
    assert site.verdict == "CONFIRMED" and origins(result)[0][1:3] == (site.line, "log")
    assert list(tmp_path.iterdir()) == []  # the Trainer's output_dir was created and removed again


HF_LM = FIXTURES / "hf_lm.py"


def test_the_first_batch_of_a_transformers_model_fed_by_keyword_is_the_batch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = trace(HF_LM)
    assert result.error is None, result.script_traceback
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 0
    batch = result.health.first_batch
    assert batch["source"] == "input of GPT2LMHeadModel"
    fed = {t["name"]: t for t in batch["tensors"]}
    for name in ("input_ids", "attention_mask", "labels"):  # the Trainer calls model(**inputs)
        assert (fed[name]["dtype"], fed[name]["shape"]) == ("int64", [4, 12])
    assert fed["attention_mask"]["min"] == fed["attention_mask"]["max"] == 1
    # the range is the token ids' (no float tensor is fed), and ids up to 2047 are not "unnormalized input"
    assert 1000 < batch["max"] < 2048 and batch["min"] >= 0 and not batch["floating"]
    assert not [w for w in result.health.warnings if "normalized" in w]


def test_the_first_batch_fed_by_keyword_holds_its_features_and_labels(tmp_path, monkeypatch):
    from nanlint.trace.report import render_full

    monkeypatch.chdir(tmp_path)
    result = trace(HF_TRAINER)
    batch = result.health.first_batch
    fed = {t["name"]: t for t in batch["tensors"]}
    assert (fed["features"]["dtype"], fed["features"]["shape"]) == ("float32", [16, 8])
    assert (fed["labels"]["dtype"], fed["labels"]["min"], fed["labels"]["max"]) == ("int64", 0, 3)
    # the figures are the features' (the float tensor fed), not an internal tensor's
    assert (batch["min"], batch["max"]) == (fed["features"]["min"], fed["features"]["max"]) and batch["shapes"] == [[16, 8]]
    text = render_full(result)
    assert "first batch (input of TinyClassifier)" in text and "features: float32 16x8 in [" in text


ACCELERATE = FIXTURES / "accelerate_train.py"


def test_an_accelerate_loop_is_watched_and_its_nan_confirms_the_rule():
    result = trace(ACCELERATE, args=["--sharpen"])
    assert result.error is None, result.script_traceback
    assert result.stop_reason == "1 optimizer step" and result.exit_code == 1
    site = _site(result, ACCELERATE, "torch.log(torch.softmax")
    assert site.verdict == "CONFIRMED" and origins(result)[0][1:4] == (site.line, "log", "forward")


def test_accelerate_gradient_accumulation_stops_after_the_real_optimizer_step():
    # the prepared optimizer skips step() until the accumulation boundary: the trace waits for the step that updates
    clean = trace(ACCELERATE, args=["--accumulate"])
    assert clean.exit_code == 0 and clean.stop_reason == "1 optimizer step"
    assert clean.backward_passes == 2
    assert _site(clean, ACCELERATE, "torch.log(torch.softmax").verdict == "SAFE"
