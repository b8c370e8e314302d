"""The runner's promises that are not about speed numbers: what a cached run loads, what it returns."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nanlint.config import Config
from nanlint.runner import check_files, run_paths

ROOT = Path(__file__).resolve().parent.parent

CHECK = """
import sys
sys.path.insert(0, {root!r})
from nanlint.config import Config
from nanlint.runner import run_paths
totals = run_paths([{tree!r}], Config(root={tree!r}), jobs=1)
print(len(totals.findings), "libcst" in sys.modules)
"""


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_cli_import_does_not_load_libcst():
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); import nanlint.cli, nanlint.api, nanlint.engine, nanlint.runner; print('libcst' in sys.modules)"
    assert _python(code) == ["False"]


def test_a_fully_cached_run_never_loads_libcst(tmp_path):
    (tmp_path / "m.py").write_text("import torch\ny = torch.log(torch.softmax(x, -1))\n")
    code = CHECK.format(root=str(ROOT), tree=str(tmp_path))
    assert _python(code) == ["1", "True"]
    assert _python(code) == ["1", "False"]


def test_engine_names_still_importable():
    from nanlint.engine import AnalysisOptions, FileContext, FileResult, analyze  # noqa: F401

    assert FileContext.__module__ == "nanlint.analysis.context"


def test_results_keep_the_input_order_and_totals_are_sorted(tmp_path):
    names = ["b.py", "a.py", "c.py"]
    for name in names:
        (tmp_path / name).write_text("import torch\ny = torch.log(torch.sigmoid(x))\n")
    files = [str(tmp_path / n) for n in names]
    results = check_files(files, Config(root=str(tmp_path)), jobs=1, use_cache=False)
    assert [r.filename for r in results] == files
    totals = run_paths([str(tmp_path)], Config(root=str(tmp_path)), jobs=1, use_cache=False)
    assert [Path(f.filename).name for f in totals.findings] == sorted(names) and totals.files == 3


def test_unreadable_file_is_a_finding_not_a_crash(tmp_path):
    missing = str(tmp_path / "gone.py")
    results = check_files([missing], Config(root=str(tmp_path)), jobs=1)
    assert [f.code for f in results[0].findings] == ["NAN001"]
