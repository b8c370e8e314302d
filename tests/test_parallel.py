"""A process pool gives the same output, in the same order, as a single process."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nanlint import runner
from nanlint.config import Config
from nanlint.runner import POOL_THRESHOLD, check_files

ROOT = Path(__file__).resolve().parent.parent

VARIANTS = [
    "import torch\nimport torch.nn.functional as F\n\ndef f(x):\n    p = F.softmax(x, dim=-1)\n    return torch.log(p)\n",
    "import torch\n\ndef f(x):\n    return torch.log(torch.sigmoid(x)).sum()  # noqa: NAN101\n",
    "import torch\n\ndef f(x):\n    return torch.log_softmax(x, dim=-1)\n",
    "def f(:\n",
    "import numpy as np\n\ndef g(z):\n    s = 1 / (1 + np.exp(-z))\n    return np.log(s) + np.log(1 - s)\n",
]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    count = POOL_THRESHOLD * 2 + 3
    for i in range(count):
        folder = tmp_path / f"pkg{i % 3}"
        folder.mkdir(exist_ok=True)
        (folder / f"mod{i:03d}.py").write_text(VARIANTS[i % len(VARIANTS)])
    (tmp_path / "pkg0" / "bad_encoding.py").write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    return tmp_path


def test_pool_results_equal_serial_results(tree, monkeypatch):
    files = sorted(str(p) for p in tree.rglob("*.py"))
    config = Config(root=str(tree))
    serial = check_files(files, config, jobs=1, use_cache=False)
    used = []
    real = runner._in_pool
    monkeypatch.setattr(runner, "_in_pool", lambda todo, jobs: used.append(len(todo)) or real(todo, jobs))
    parallel = check_files(files, config, jobs=3, use_cache=False)
    assert used == [len(files)]
    assert [(r.filename, r.findings, r.errors) for r in parallel] == [(r.filename, r.findings, r.errors) for r in serial]
    assert sum(len(r.findings) for r in serial) > len(files) // 2


def test_small_runs_stay_in_process(tree, monkeypatch):
    files = sorted(str(p) for p in tree.rglob("*.py"))[: POOL_THRESHOLD - 1]
    monkeypatch.setattr(runner, "_in_pool", lambda todo, jobs: pytest.fail("pool started for a small run"))
    assert len(check_files(files, Config(root=str(tree)), jobs=4, use_cache=False)) == len(files)


def _cli(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nanlint", "check", "--isolated", "--output-format", "concise", *args, str(tree)],
        cwd=str(tree), capture_output=True, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_cli_output_is_byte_identical_serial_parallel_and_cached(tree):
    serial = _cli(tree, "--jobs", "1", "--no-cache")
    assert serial.returncode == 1, serial.stderr
    assert not (tree / ".nanlint_cache").exists()
    parallel = _cli(tree, "--jobs", "2", "--no-cache")
    cold = _cli(tree, "--jobs", "2")
    warm = _cli(tree)
    for other in (parallel, cold, warm):
        assert (other.stdout, other.stderr, other.returncode) == (serial.stdout, serial.stderr, serial.returncode)
    assert serial.stdout.count(b"NAN101") > 10 and b"NAN000" in serial.stdout and b"NAN001" in serial.stdout


def test_jobs_must_be_positive(tree):
    result = _cli(tree, "--jobs", "0")
    assert result.returncode == 2 and b"--jobs" in result.stderr
