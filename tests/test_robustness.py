"""Bad inputs give one clear line each and never a traceback; other files are still checked."""
from __future__ import annotations

import base64
import builtins
import os

import pytest
from click.testing import CliRunner

from nanlint import api
from nanlint.analysis import run as analysis_run
from nanlint.cli import main
from nanlint.rules import all_rules
from nanlint.rules.base import Rule

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


def run(*args: str):
    return CliRunner().invoke(main, ["check", "--select", "NAN101", "--output-format", "concise", *args], catch_exceptions=False)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "risky.py").write_text(RISKY)
    return tmp_path


def report(result) -> list[str]:
    """The concise lines; for NAN101 (whose wording belongs to its rule) only up to the code."""
    assert "Traceback" not in result.output
    lines = [line for line in result.stdout.splitlines() if ": NAN" in line]
    return [line.split(" NAN101 [*] ")[0] + " NAN101 [*]" if " NAN101 [*] " in line else line for line in lines]


def test_syntax_error_has_pythons_message_and_position_and_others_are_checked(here):
    (here / "broken.py").write_text("import torch\n\ndef forward(x)\n    return x\n")
    result = run(".")
    assert result.exit_code == 1
    assert report(result) == [
        "broken.py:3:15: NAN000 SyntaxError: expected ':'",
        "risky.py:3:5: NAN101 [*]",
    ]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\nreturn 1\n", "broken.py:2:1: NAN000 IndentationError: expected an indented block after function definition on line 1"),
        ("x = (1,\n", "broken.py:1:5: NAN000 SyntaxError: '(' was never closed"),
        ("x = 'abc\n", "broken.py:1:5: NAN000 SyntaxError: unterminated string literal (detected at line 1)"),
        ("x = " + "(" * 3000 + "1" + ")" * 3000 + "\n", "broken.py:1:205: NAN000 SyntaxError: too many nested parentheses"),
    ],
)
def test_syntax_errors_are_phrased_as_python_does(here, source, expected):
    (here / "broken.py").write_text(source)
    assert report(run("broken.py")) == [expected]


def test_deep_but_valid_brackets_in_strings_are_still_analyzed(here):
    (here / "deep.py").write_text('s = "' + "(" * 500 + '"\n' + RISKY)
    assert report(run("deep.py")) == ["deep.py:4:5: NAN101 [*]"]


def test_non_utf8_bytes_binary_and_bad_coding(here):
    (here / "latin.py").write_bytes(b"x = '\xe9t\xe9'\n")
    (here / "blob.py").write_bytes(b"\x7fELF\x00\x01\x02")
    (here / "coding.py").write_bytes(b"# -*- coding: klingon -*-\nx = 1\n")
    result = run(".")
    assert result.exit_code == 1
    assert report(result) == [
        "blob.py:1:1: NAN001 binary file (contains NUL bytes), not Python source",
        "coding.py:1:1: NAN001 bad coding declaration: unknown encoding: klingon",
        "latin.py:1:1: NAN001 cannot decode as utf-8 at byte 5: invalid continuation byte",
        "risky.py:3:5: NAN101 [*]",
    ]


def test_declared_encoding_and_bom_are_honoured(here):
    (here / "latin.py").write_bytes(b"# -*- coding: latin-1 -*-\n# caf\xe9\n" + RISKY.encode())
    (here / "bom.py").write_bytes(b"\xef\xbb\xbf" + RISKY.encode())
    assert [line.split(":")[:2] for line in report(run("latin.py", "bom.py"))] == [["bom.py", "3"], ["latin.py", "5"]]


def test_empty_and_whitespace_only_files(here):
    (here / "empty.py").write_text("")
    (here / "blank.py").write_text("\n\n   \n\f\n")
    result = run("empty.py", "blank.py")
    assert result.exit_code == 0 and result.stdout == "All checks passed!\n"


def test_form_feed_does_not_shift_line_numbers(here):
    (here / "ff.py").write_text("a = 1\n\f\n" + RISKY)
    assert report(run("ff.py"))[0].startswith("ff.py:5:5: NAN101")


def test_five_megabyte_generated_file_is_checked(here):
    blob = base64.encodebytes(b"\x01\x02\x03" * 1_300_000).decode()
    source = 'import torch\nimport torch.nn.functional as F\n\nWEIGHTS = """\n' + blob + '"""\n\ny = torch.log(F.softmax(x, dim=-1))\n'
    assert len(source) > 5_000_000
    (here / "generated.py").write_text(source)
    line = source.count("\n")
    assert report(run("generated.py")) == [f"generated.py:{line}:5: NAN101 [*]"]


def test_unreadable_file_is_reported_and_others_checked(here, monkeypatch):
    # chmod 000 does not stop root; make reading this one file fail the way it does for other users
    (here / "secret.py").write_text("x = 1\n")
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if os.path.basename(str(file)) == "secret.py":
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)
    result = run(".")
    assert result.exit_code == 1
    assert report(result) == [
        "risky.py:3:5: NAN101 [*]",
        "secret.py:1:1: NAN001 cannot read: Permission denied",
    ]


def test_dangling_symlink_and_symlink_loop(here):
    os.symlink("missing.py", here / "dangling.py")
    os.symlink("loop.py", here / "loop.py")
    result = run(".")
    assert result.exit_code == 1
    assert report(result) == [
        "dangling.py:1:1: NAN001 cannot read: dangling symbolic link (target does not exist)",
        "loop.py:1:1: NAN001 cannot read: symbolic link loop",
        "risky.py:3:5: NAN101 [*]",
    ]


def test_directory_named_like_a_python_file(here):
    (here / "pkg.py").mkdir()
    (here / "pkg.py" / "inner.py").write_text(RISKY)
    assert [line.split(":")[0] for line in report(run("pkg.py"))] == ["pkg.py/inner.py"]


def test_fifo_named_explicitly_does_not_block(here):
    os.mkfifo(here / "pipe.py")
    assert report(run("pipe.py")) == ["pipe.py:1:1: NAN001 not a regular file (FIFO, socket or device)"]


def test_missing_path_is_a_nan001_finding_with_exit_1(here):
    result = run("nope.py", "risky.py")
    assert result.exit_code == 1
    assert report(result)[0] == "nope.py:1:1: NAN001 cannot read: No such file or directory"
    assert len(report(result)) == 2


class Exploding(Rule):
    """A deliberately broken rule: raises on files whose name contains "boom"."""

    code = "NAN002"  # borrow a real catalog code so that selection and the engine accept it

    def visit_Call(self, node) -> None:
        if "boom" in self.ctx.filename:
            raise ZeroDivisionError("deliberate")


def test_exception_in_one_rule_is_reported_and_every_other_finding_kept(here, monkeypatch):
    rules = {**all_rules(), "NAN002": Exploding}
    Exploding.doc = all_rules()["NAN101"].doc
    monkeypatch.setattr(analysis_run, "all_rules", lambda: rules)
    (here / "boom.py").write_text(RISKY)
    result = CliRunner().invoke(main, ["check", "--no-cache", "--select", "NAN101,NAN002", "--output-format", "concise", "."], catch_exceptions=False)
    assert result.exit_code == 2
    assert report(result) == [
        "boom.py:3:5: NAN101 [*]",
        "risky.py:3:5: NAN101 [*]",
    ]
    errors = result.stderr.splitlines()
    assert errors[0].startswith("nanlint: error: boom.py: rule NAN002 failed: ZeroDivisionError: deliberate (")
    assert "test_robustness.py" in errors[0]
    assert len(errors) == 2


def test_unexpected_internal_error_is_one_line_and_exit_2(here, monkeypatch):
    def broken_run(*args, **kwargs):
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(api, "run", broken_run)
    result = CliRunner().invoke(main, ["check", "risky.py"])
    assert result.exit_code == 2
    assert result.stderr == "nanlint: error: internal error: RuntimeError: something inside broke\n"
