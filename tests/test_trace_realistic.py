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
                       "best.pt": "old best", "train.log": "old log line\n"}.items():
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
