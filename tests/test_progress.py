"""Progress on a terminal: files done out of the total, only for long runs, never in captured output."""
from __future__ import annotations

import io
import os
import pty
import subprocess
import sys

from click.testing import CliRunner

from nanlint.cli import main
from nanlint.progress import Progress

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_nothing_for_two_seconds_then_one_line_rewritten_then_erased():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(10, stream=stream, clock=clock)
    progress.update(1)
    assert stream.getvalue() == ""  # a short run shows nothing
    clock.now = 2.5
    progress.update(2)
    clock.now = 2.55
    progress.update(3)  # throttled: at most ten lines a second
    clock.now = 2.7
    progress.update(10)
    progress.close()
    assert stream.getvalue() == (
        "\rnanlint: checked 2/10 files" "\rnanlint: checked 10/10 files" "\r" + " " * 28 + "\r"
    )


def test_no_progress_when_stderr_is_not_a_terminal(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.py").write_text(RISKY)
    result = CliRunner().invoke(main, ["check", "--no-cache", "m.py"])
    assert "checked" not in result.stderr


def test_a_long_run_on_a_terminal_shows_progress_on_stderr_only(tmp_path):
    for i in range(40):
        (tmp_path / f"m{i:03}.py").write_text(RISKY * 30)
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nanlint", "check", "--no-cache", "-j", "1", "--output-format", "concise", "."], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=terminal, text=True)
    os.close(terminal)
    stdout, _ = process.communicate(timeout=300)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.returncode == 1
    assert b"nanlint: checked 40/40 files" in shown
    assert "checked" not in stdout
