"""benchmarks/precision_eval.py on a small tree: counts, per-kLOC table and a reproducible sample."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "precision_eval.py"


def test_precision_eval_reports_rates_and_a_sample(tmp_path):
    (tmp_path / "attn.py").write_text(
        "import torch\n\ndef f(scores, mask):\n    return scores.masked_fill(mask, -1e9).softmax(-1)\n"
    )
    (tmp_path / "clean.py").write_text("def g(x):\n    return x + 1\n")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path), "--sample", "1", "--seed", "3", "--jobs", "1"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "# ALL + preview: 2 files, 5 non-blank lines" in out
    assert "NAN351   mask-value-overflows-half                   1   200.000" in out
    assert "## sample of 1 findings of the default selection (seed 3) of 1" in out
    assert ">     4 |     return scores.masked_fill(mask, -1e9).softmax(-1)" in out


def test_precision_eval_rejects_a_missing_path(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path / "nope")], capture_output=True, text=True)
    assert result.returncode == 2 and "no such path" in result.stderr
