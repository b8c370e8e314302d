"""Configuration follows the file, as in ruff: each file uses the closest configuration above it."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nanlint import api
from nanlint.cli import main

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"
DIVIDES = "import torch\n\ndef f(x, labels, c):\n    return x.sum() / (labels == c).sum()\n"


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", *args], catch_exceptions=False)


def codes(result) -> list[str]:
    assert "Traceback" not in result.output
    return sorted(line.split(" ")[0].rstrip(":").rsplit(":", 2)[0] + " " + line.split(" ")[1]
                  for line in result.stdout.splitlines() if ": NAN" in line)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A parent folder (no configuration) holding two projects: one ignores NAN101, one has no config."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "proj" / "pkg").mkdir(parents=True)
    (tmp_path / "proj" / "pyproject.toml").write_text('[tool.nanlint]\nignore = ["NAN101"]\nextend-exclude = ["generated"]\n')
    (tmp_path / "proj" / "pkg" / "model.py").write_text(RISKY)
    (tmp_path / "proj" / "generated").mkdir()
    (tmp_path / "proj" / "generated" / "g.py").write_text(RISKY)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.py").write_text(RISKY)
    return tmp_path


def test_each_file_uses_the_closest_configuration_from_the_parent_folder(workspace):
    result = check("proj", "other")
    assert codes(result) == ["other/model.py NAN101"]  # proj ignores NAN101 and excludes generated/


def test_a_nested_project_inside_a_configured_one_uses_its_own(workspace):
    (workspace / "proj" / "pkg" / "nanlint.toml").write_text('select = ["NAN101"]\n')
    assert codes(check("proj")) == ["proj/pkg/model.py NAN101"]


def test_config_overrides_every_file(workspace):
    (workspace / "strict.toml").write_text('select = ["NAN1"]\n')
    assert codes(check("--config", "strict.toml", "proj/pkg", "other")) == ["other/model.py NAN101", "proj/pkg/model.py NAN101"]


def test_the_command_line_applies_on_top_of_each_files_configuration(workspace):
    (workspace / "proj" / "pkg" / "divide.py").write_text(DIVIDES)
    assert codes(check("--extend-select", "NAN201", "proj", "other")) == ["other/model.py NAN101", "proj/pkg/divide.py NAN201"]


def test_show_settings_for_a_file(workspace):
    result = CliRunner().invoke(main, ["show-settings", "--output-format", "json", "proj/pkg/model.py"])
    settings = json.loads(result.stdout)  # only JSON
    assert settings["config-file"].endswith("proj/pyproject.toml") and settings["ignore"] == ["NAN101"]
    text = CliRunner().invoke(main, ["show-settings", "other/model.py"]).stdout
    assert text.startswith("# settings from defaults")


def test_python_api_honours_each_files_configuration(workspace):
    found = api.check_paths(["proj", "other"])
    assert sorted((f.filename, f.code) for f in found) == [("other/model.py", "NAN101")]


def test_a_broken_nested_configuration_is_one_line_and_exit_2(workspace):
    (workspace / "proj" / "pyproject.toml").write_text('[tool.nanlint]\nignor = ["NAN101"]\n')
    result = check("proj", "other")
    assert result.exit_code == 2
    assert result.stderr.startswith("nanlint: error: ") and "unknown key `ignor`" in result.stderr
    assert "Traceback" not in result.output


def test_trace_finds_its_sites_with_each_files_configuration(tmp_path):
    """trace watches every rule's sites, read with the file's own settings: its target precision, its
    per-file ignores."""
    from nanlint.trace.sites import static_findings

    script = tmp_path / "train.py"
    script.write_text("import torch\nx = torch.randn(4)\ny = torch.log(torch.softmax(x, -1))\nz = x / (x.abs() + 1e-8)\n")
    assert {f.code for f in static_findings([str(script)])} == {"NAN101"}
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint]\ntarget-precision = "float16"\n'
                                             '[tool.nanlint.per-file-ignores]\n"train.py" = ["NAN101"]\n')
    assert {f.code for f in static_findings([str(script)])} == {"NAN354"}


def test_trace_with_a_broken_configuration_is_one_line_and_exit_2(tmp_path):
    import subprocess
    import sys

    (tmp_path / "train.py").write_text("print('ran')\n")
    (tmp_path / "pyproject.toml").write_text("[tool.nanlint]\nbogus = 1\n")
    done = subprocess.run([sys.executable, "-m", "nanlint", "trace", "train.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("nanlint: error: ") and "unknown key `bogus`" in done.stderr
    assert "Traceback" not in done.stderr and "ran" not in done.stdout
