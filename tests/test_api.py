"""The public Python API: nanlint.check_source and nanlint.check_paths."""
from __future__ import annotations

import json

import pytest

import nanlint
from nanlint.analysis import run as analysis_run
from nanlint.api import AnalysisError
from nanlint.config import Config
from nanlint.rules import all_rules
from nanlint.rules.base import Rule

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


def test_check_source_returns_findings_as_plain_values():
    [finding] = nanlint.check_source(RISKY, "model.py", Config(select=("NAN101",)))
    assert isinstance(finding, nanlint.Finding)
    assert (finding.code, finding.name, finding.filename) == ("NAN101", "log-of-probability", "model.py")
    assert finding.span == nanlint.Span(3, 5, 3, 36)
    assert finding.severity.value == "error"
    assert isinstance(finding.fix, nanlint.Fix)
    assert finding.fix.edits[0].content == "F.log_softmax(x, dim=-1)"
    assert json.loads(json.dumps(finding.to_dict()))["span"] == {"line": 3, "column": 5, "end_line": 3, "end_column": 36}


def test_check_source_defaults_and_bytes():
    assert nanlint.check_source("x = 1\n") == []
    assert "NAN101" in [f.code for f in nanlint.check_source(RISKY)]  # on by default
    latin = b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + RISKY.encode()
    assert [(f.code, f.line) for f in nanlint.check_source(latin, "m.py", Config(select=("NAN101",)))] == [("NAN101", 5)]
    assert [f.code for f in nanlint.check_source(b"\x00\x01", "m.py")] == ["NAN001"]


def test_check_source_reports_syntax_errors_as_findings():
    [finding] = nanlint.check_source("def f(x)\n    pass\n", "m.py")
    assert (finding.code, finding.message, finding.line, finding.column) == ("NAN000", "SyntaxError: expected ':'", 1, 9)


def test_check_source_honours_the_configuration():
    assert "NAN101" not in [f.code for f in nanlint.check_source(RISKY, "m.py", Config(ignore=("NAN101",)))]
    per_file = Config(select=("NAN101",), per_file_ignores={"tests/*": ("NAN1",)})
    assert nanlint.check_source(RISKY, "tests/m.py", per_file) == []
    assert [f.code for f in nanlint.check_source(RISKY, "src/m.py", per_file)] == ["NAN101"]


def test_check_paths_walks_folders_and_sorts(tmp_path):
    (tmp_path / "b.py").write_text(RISKY)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text(RISKY + RISKY)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "skip.py").write_text(RISKY)
    config = Config(select=("NAN101",))
    found = nanlint.check_paths([tmp_path], config)
    assert [(f.filename, f.line) for f in found] == [
        (str(tmp_path / "b.py"), 3), (str(tmp_path / "sub" / "a.py"), 3), (str(tmp_path / "sub" / "a.py"), 6),
    ]
    assert nanlint.check_paths(str(tmp_path / "b.py"), config)[0].filename == str(tmp_path / "b.py")
    assert nanlint.check_paths([str(tmp_path / "missing.py")])[0].code == "NAN001"


class Exploding(Rule):
    code = "NAN002"

    def visit_Call(self, node) -> None:
        raise ValueError("rule bug")


def test_a_failing_rule_raises_analysis_error_with_the_other_findings(monkeypatch):
    Exploding.doc = all_rules()["NAN101"].doc
    monkeypatch.setattr(analysis_run, "all_rules", lambda: {**all_rules(), "NAN002": Exploding})
    with pytest.raises(AnalysisError) as info:
        nanlint.check_source(RISKY, "m.py", Config(select=("NAN101", "NAN002")))
    assert [f.code for f in info.value.findings] == ["NAN101"]
    assert info.value.errors[0].rule == "NAN002"
    assert "ValueError: rule bug" in str(info.value)


def test_importing_nanlint_is_light():
    import subprocess
    import sys

    code = "import sys, nanlint; print(sorted(m for m in ('libcst', 'click', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
