"""The runnable examples of `nanlint.watch` and its Lightning and Hugging Face callbacks in
nanlint/trace/README.md ("Late NaNs") run as they are written, and print what their comments say."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

README = Path(__file__).resolve().parents[1] / "nanlint" / "trace" / "README.md"


def _blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Late NaNs"):text.index("## Layout")]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def _run(code: str, tmp_path: Path) -> list[str]:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def test_the_readme_has_the_four_examples():
    blocks = _blocks()
    assert len(blocks) == 4
    assert "nanlint.watch(model, optimizer" in blocks[0] and "hooks=False" in blocks[1]
    assert "nanlint.lightning_callback" in blocks[2] and "nanlint.hf_callback" in blocks[3]


def test_the_watch_examples_find_step_120_and_replay_it_at_the_division(tmp_path):
    first, second = _blocks()[:2]
    out = _run(first + second, tmp_path)
    division = 1 + next(i for i, line in enumerate(first.splitlines()) if "/ x.std(1" in line)
    assert out[-3:] == ["120 loss", f"{division} div forward", "50 None"]
    assert (tmp_path / "health.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_the_lightning_example_stops_the_training_at_batch_12(tmp_path):
    pytest.importorskip("lightning")
    assert _run(_blocks()[2], tmp_path)[-1] == "12 12"


def test_the_hf_example_stops_the_trainer_at_the_failing_step(tmp_path):
    pytest.importorskip("transformers")
    failing, global_step = map(int, _run(_blocks()[3], tmp_path)[-1].split())
    assert failing == global_step and 1 <= failing <= 16  # 64 samples, batches of 8, 2 epochs
