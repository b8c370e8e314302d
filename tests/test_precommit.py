"""The pre-commit hook as users get it: the real ``pre-commit try-repo <this checkout>`` in a temporary git
repository. pre-commit builds a virtual environment and pip-installs this checkout into it (PyPI needed).

try-repo builds its environment in a throw-away store on every call, so the two outcomes (a risky file
fails, a clean one passes) cost two builds (about 20 s each here).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RISKY = "import torch\nimport torch.nn.functional as F\n\ny = torch.log(F.softmax(x, dim=-1))\n"


def _pre_commit() -> list[str]:
    found = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "pre_commit"]


def _try_repo(project: Path, *files: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "PYTHONPATH", "NO_COLOR", "FORCE_COLOR"))}
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return subprocess.run(
        [*_pre_commit(), "try-repo", str(REPO), "nanlint", "--color", "never", "--files", *files],
        cwd=project, env=env, capture_output=True, text=True, timeout=540,
    )


def test_pre_commit_hook_fails_on_a_risky_file_and_passes_a_clean_one(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    git = ["git", "-c", "user.email=test@example.com", "-c", "user.name=test"]
    subprocess.run([*git, "init", "-q"], cwd=project, check=True)
    (project / "risky.py").write_text(RISKY)
    (project / "clean.py").write_text("import torch.nn.functional as F\n\ny = F.log_softmax(x, dim=-1)\n")
    (project / "notes.txt").write_text("torch.log(F.softmax(x)) in prose is not Python\n")
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": RISKY.splitlines(keepends=True)}
    (project / "explore.ipynb").write_text(json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    subprocess.run([*git, "add", "."], cwd=project, check=True)

    failed = _try_repo(project, "risky.py", "notes.txt", "explore.ipynb")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output
    assert "nanlint" in output and "Failed" in output
    assert "risky.py:4:5: NAN101" in output
    assert "explore.ipynb:cell 1:4:5: NAN101" in output
    assert output.count("Found 2 problems.") == 1 and "All checks passed!" not in output  # one report
    assert "y = torch.log(F.softmax(x, dim=-1))" in output
    assert "notes.txt" not in output.split("Failed", 1)[1]  # not a Python file: never handed to the hook

    passed = _try_repo(project, "clean.py")
    output = passed.stdout + passed.stderr
    assert passed.returncode == 0, output
    assert "Passed" in output and "Failed" not in output
