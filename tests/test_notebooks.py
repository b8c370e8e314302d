"""Jupyter notebooks are checked like Python files: code cells in order, IPython lines skipped, findings named
by cell, fixes written back into the notebook's JSON with nothing else changed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nanlint.cli import main
from nanlint.notebook import to_source


def _cell(kind: str, lines: list[str], **extra) -> dict:
    cell = {"cell_type": kind, "metadata": extra.pop("metadata", {}), "source": lines}
    if kind == "code":
        cell.update(execution_count=extra.pop("count", None), outputs=extra.pop("outputs", []))
    return cell


CELLS = [
    _cell("markdown", ["# Explore the scores\n", "café, naïve: not code"]),
    _cell("code", ["%matplotlib inline\n", "import torch\n", "import torch.nn.functional as F\n", "!pip list\n"], count=1,
          outputs=[{"output_type": "stream", "name": "stdout", "text": ["torch 2\n"]}]),
    _cell("code", ["scores = model(x)\n", "probs = F.softmax(scores, dim=-1)"], count=2, metadata={"tags": ["setup"]}),
    _cell("code", ["%%bash\n", "echo $((1 / 0))\n"], count=3),
    _cell("code", ["files = !ls\n", "loss = -torch.log(probs).mean()\n", "skipped = torch.log(F.softmax(scores, -1))  # noqa: NAN101\n"], count=4),
    _cell("code", ["%time warm = 1\n", "logp = torch.log(F.softmax(scores, -1))  # keep this comment\n", "!echo done"], count=5,
          outputs=[{"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo="}, "metadata": {}}]),
]


def _notebook(cells=CELLS, language="python") -> dict:
    return {"cells": cells, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": language}},
            "nbformat": 4, "nbformat_minor": 5}


def _write(path: Path, document: dict) -> bytes:
    data = (json.dumps(document, indent=1, ensure_ascii=False) + "\n").encode()
    path.write_bytes(data)
    return data


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--no-cache", *args], catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "explore.ipynb", _notebook())
    return tmp_path


def test_findings_name_their_cell_and_facts_flow_across_cells(project):
    result = check("--output-format", "concise", ".")  # found by walking the folder
    lines = [line for line in result.stdout.splitlines() if ": NAN" in line]
    assert [line.split(" ", 2)[:2] for line in lines] == [
        ["explore.ipynb:cell", "5:2:9:"],  # `probs` comes from cell 3 (the markdown cell counts)
        ["explore.ipynb:cell", "6:2:8:"],
    ]
    assert "a `softmax` output (cell 3, line 2)" in lines[0]
    assert result.exit_code == 1


def test_full_output_shows_the_cells_own_line(project):
    result = check("explore.ipynb")
    assert "2 | loss = -torch.log(probs).mean()\n" in result.stdout
    assert "%" not in result.stdout.split("Found")[0].replace("%time", "")  # no placeholder or magic leaks


def test_json_sarif_and_github_give_the_cell_and_its_row(project):
    [first, second] = json.loads(check("--output-format", "json", ".").stdout)
    assert (first["cell"], first["location"], first["end_location"]) == (5, {"row": 2, "column": 9}, {"row": 2, "column": 25})
    assert second["cell"] == 6 and second["fix"]["edits"][0]["location"]["row"] == 2
    sarif = json.loads(check("--output-format", "sarif", ".").stdout)
    result = sarif["runs"][0]["results"][0]
    assert result["properties"]["cell"] == 5
    assert result["locations"][0]["physicalLocation"]["region"]["startLine"] == 2
    github = check("--output-format", "github", ".").stdout.splitlines()[0]
    assert "file=explore.ipynb,line=2,col=9," in github and "explore.ipynb%3Acell 5" not in github


def test_fix_rewrites_only_the_fixed_cells_source(project):
    before = (project / "explore.ipynb").read_bytes()
    result = check("--fix", "explore.ipynb")
    assert "Fixed 1 problem." in result.stdout
    after = (project / "explore.ipynb").read_bytes()
    old, new = json.loads(before), json.loads(after)
    assert new["cells"][5]["source"] == ["%time warm = 1\n", "logp = F.log_softmax(scores, -1)  # keep this comment\n", "!echo done"]
    new["cells"][5]["source"] = old["cells"][5]["source"]
    assert new == old  # outputs, metadata, counts, other cells, key order: all as they were
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert len(changed) == 1 and len(before.splitlines()) == len(after.splitlines())  # same layout, one line


def test_diff_shows_the_cell_with_its_ipython_lines(project):
    result = check("--diff", "explore.ipynb")
    assert result.stdout.splitlines()[:7] == [
        "--- a/explore.ipynb:cell 6",
        "+++ b/explore.ipynb:cell 6",
        "@@ -1,3 +1,3 @@",
        " %time warm = 1",
        "-logp = torch.log(F.softmax(scores, -1))  # keep this comment",
        "+logp = F.log_softmax(scores, -1)  # keep this comment",
        " !echo done",
    ]


def test_ipython_lines_keep_every_row_in_place():
    source = to_source(json.dumps(_notebook()).encode())
    lines = source.splitlines()
    assert lines[0] == "# %% [nanlint cell 2]" and lines[1].startswith("pass  # nanlint: ipython")
    assert lines[lines.index("# %% [nanlint cell 4]") + 1:lines.index("# %% [nanlint cell 5]")] == ["pass  # nanlint: ipython 0"]
    compile(source, "explore.ipynb", "exec")


def test_a_syntax_error_is_reported_in_its_cell(project):
    cells = [*CELLS[:2], _cell("code", ["x = 1\n", "def f(:\n"])]
    _write(project / "explore.ipynb", _notebook(cells))
    lines = [line for line in check("--output-format", "concise", "explore.ipynb").stdout.splitlines() if ": NAN" in line]
    assert lines == ["explore.ipynb:cell 3:2:7: NAN000 SyntaxError: invalid syntax"]


def test_bad_json_is_nan001_and_other_kernels_are_skipped(project):
    (project / "broken.ipynb").write_text('{"cells": [')
    _write(project / "r.ipynb", _notebook([_cell("code", ["x <- log(p)\n"])], language="R"))
    result = check("--output-format", "concise", "broken.ipynb", "r.ipynb")
    lines = [line for line in result.stdout.splitlines() if ": NAN" in line]
    assert len(lines) == 1 and lines[0].startswith("broken.ipynb:1:1: NAN001 not a valid notebook: ")


def test_checkpoints_are_not_walked(project):
    (project / ".ipynb_checkpoints").mkdir()
    _write(project / ".ipynb_checkpoints" / "explore-checkpoint.ipynb", _notebook())
    result = check("--output-format", "concise", ".")
    assert "checkpoint" not in result.stdout


def test_fix_of_a_notebook_on_standard_input_prints_json(project):
    data = (project / "explore.ipynb").read_bytes()
    result = CliRunner().invoke(main, ["check", "--no-cache", "--fix", "--stdin-filename", "explore.ipynb", "-"], input=data)
    fixed = json.loads(result.stdout)
    assert fixed["cells"][5]["source"][1] == "logp = F.log_softmax(scores, -1)  # keep this comment\n"
