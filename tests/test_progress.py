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


def _run_on_terminal(args, cwd, env: dict | None = None) -> tuple[int, str, bytes]:
    """Run nanlint with standard error on a pseudo-terminal: (exit code, stdout, what the terminal showed)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "nanlint", *args], cwd=cwd, stdout=subprocess.PIPE,
                               stderr=terminal, text=True, env={**os.environ, **(env or {})})
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
    return process.returncode, stdout, shown


def test_a_long_run_on_a_terminal_shows_progress_on_stderr_only(tmp_path):
    for i in range(40):
        (tmp_path / f"m{i:03}.py").write_text(RISKY * 30)
    # no wait before the line (a run this small can finish inside the usual 2 s)
    code, stdout, shown = _run_on_terminal(["check", "--no-cache", "-j", "1", "--output-format", "concise", "."], tmp_path,
                                           env={"NANLINT_PROGRESS_DELAY": "0"})
    assert code == 1
    assert b"nanlint: checked 40/40 files" in shown
    assert "checked" not in stdout


def test_trace_says_what_it_is_doing_on_a_terminal_only(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        "import torch\n"
        "model = torch.nn.Linear(4, 2)\n"
        "opt = torch.optim.SGD(model.parameters(), lr=0.1)\n"
        "for _ in range(3):\n"
        "    loss = model(torch.randn(8, 4)).pow(2).mean()\n"
        "    opt.zero_grad(); loss.backward(); opt.step()\n"
    )
    code, stdout, shown = _run_on_terminal(["trace", "train.py"], tmp_path)
    assert code == 0, stdout
    assert b"running train.py under the monitor (it stops after 1 optimizer step or 300 s)" in shown
    assert b"the script stopped" in shown and b"joining what ran with the flagged sites" in shown
    assert "nanlint: running" not in stdout
    piped = subprocess.run([sys.executable, "-m", "nanlint", "trace", "train.py"], cwd=tmp_path, capture_output=True, text=True)
    assert "under the monitor" not in piped.stderr
