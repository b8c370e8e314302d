"""Adopting nanlint on existing code: ``--add-noqa`` and ``--show-files``."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nanlint.cli import main

LOG = "torch.log(torch.softmax(x, -1))"


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--no-cache", *args], catch_exceptions=False)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_add_noqa_silences_todays_findings_and_keeps_comments(here):
    source = (
        "import torch\n"
        f"a = {LOG}\n"
        f"b = {LOG}  # noqa: E501\n"
        f"c = {LOG}  # noqa: E501 the line is long on purpose\n"
        f"d = {LOG}  # noqa\n"
        f'e = """\n{LOG}\n"""; f = {LOG}\r\n'
        f"g = {LOG} + \\\n    1\n"
        f"h = {LOG}  # noqa: XYZ\n"
    )
    (here / "m.py").write_bytes(source.encode())
    result = check("--add-noqa", "m.py")
    assert result.exit_code == 0, result.output
    assert "Added 4 noqa directives." in result.stderr
    assert "2 lines could not take a comment" in result.stderr
    lines = (here / "m.py").read_bytes().decode().split("\n")
    assert lines[1] == f"a = {LOG}  # noqa: NAN101"
    assert lines[2] == f"b = {LOG}  # noqa: E501, NAN101"
    assert lines[3] == f"c = {LOG}  # noqa: E501, NAN101 the line is long on purpose"
    assert lines[4] == f"d = {LOG}  # noqa"
    assert lines[7] == f'"""; f = {LOG}  # noqa: NAN101\r'  # the line ending is kept
    after = check("--output-format", "concise", "m.py")
    reported = [line.split(" ")[0:2] for line in after.stdout.splitlines() if ": NAN" in line]
    assert reported == [["m.py:9:5:", "NAN101"], ["m.py:11:5:", "NAN101"], ["m.py:11:38:", "NAN003"]]


def test_add_noqa_in_a_notebook_writes_the_cell(here):
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": ["import torch\n", "%time warm = 1\n", f"y = {LOG}"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (here / "n.ipynb").write_text(json.dumps(nb, indent=1))
    assert check("--add-noqa", "n.ipynb").exit_code == 0
    cell = json.loads((here / "n.ipynb").read_text())["cells"][0]
    assert cell["source"] == ["import torch\n", "%time warm = 1\n", f"y = {LOG}  # noqa: NAN101"]
    assert check("n.ipynb").exit_code == 0


def test_show_files_lists_what_would_be_checked(here):
    (here / "pkg").mkdir()
    (here / "pkg" / "a.py").write_text("x = 1\n")
    (here / "pkg" / "n.ipynb").write_text('{"cells": []}')
    (here / "pkg" / "notes.txt").write_text("")
    (here / ".venv").mkdir()
    (here / ".venv" / "v.py").write_text("")
    result = check("--show-files", ".")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == ["pkg/a.py", "pkg/n.ipynb"]
