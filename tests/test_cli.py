"""`nanlint check` and friends, run in-process through click on real files in a temporary folder."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from nanlint.cli import main

RISKY = """\
import torch
import torch.nn.functional as F


def nll(logits, target):
    return -torch.log(F.softmax(logits, dim=-1)).gather(-1, target)
"""
FIXED = RISKY.replace("torch.log(F.softmax(logits, dim=-1))", "F.log_softmax(logits, dim=-1)")
CLEAN = "x = 1\n"


def run(*args: str, input: str | None = None, env: dict | None = None):
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    (tmp_path / "risky.py").write_text(RISKY)
    (tmp_path / "clean.py").write_text(CLEAN)
    return tmp_path


def test_full_output_shows_location_code_message_source_caret_and_fix(project):
    result = run("check", "risky.py", "--select", "NAN101")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("risky.py:6:13: NAN101 [*] `log` of ")
    assert lines[2] == "6 |     return -torch.log(F.softmax(logits, dim=-1)).gather(-1, target)"
    caret = lines[3]
    assert caret.index("^") == lines[2].index("torch.log")
    assert caret.count("^") == len("torch.log(F.softmax(logits, dim=-1))")
    assert "  = fix: Replace `log(softmax(...))` with `log_softmax(...)`" in lines
    assert lines[-1] == "Found 1 problem."
    assert "\033[" not in result.stdout  # not a terminal: no colour


def test_clean_file_passes_with_exit_zero(project):
    result = run("check", "clean.py")
    assert result.exit_code == 0
    assert result.stdout == "All checks passed!\n"


def test_default_path_is_the_current_directory_and_output_is_sorted(project):
    (project / "a_first.py").write_text(RISKY + RISKY.replace("def nll", "def nll2"))
    result = run("check", "--select", "NAN101", "--output-format", "concise")
    assert result.exit_code == 1
    rows = [line.split(":")[:3] for line in result.stdout.splitlines() if ": NAN" in line]
    assert rows == [["a_first.py", "6", "13"], ["a_first.py", "12", "13"], ["risky.py", "6", "13"]]
    assert result.stdout.splitlines()[-1] == "Found 3 problems."


def test_concise_format_is_one_line_per_finding(project):
    result = run("check", "risky.py", "--select", "NAN101", "--output-format", "concise", "-q")
    [line] = result.stdout.splitlines(keepends=True)
    assert line.startswith("risky.py:6:13: NAN101 [*] `log` of ") and line.endswith("log(0) = -inf\n")


def test_json_format_has_the_documented_schema(project):
    result = run("check", "risky.py", "--select", "NAN101", "--output-format", "json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)  # nothing but JSON on stdout: no summary line
    assert len(data) == 1
    item = data[0]
    assert set(item) == {"code", "name", "message", "severity", "confidence", "filename", "location", "end_location", "fix", "hint", "docs", "fact"}
    # the fact the finding rests on: a softmax output underflows to exactly 0 (its line)
    assert item["fact"] == {"kind": "underflow", "tier": "plausible", "row": 6}
    assert (item["code"], item["name"], item["severity"], item["filename"]) == ("NAN101", "log-of-probability", "error", "risky.py")
    assert item["location"] == {"row": 6, "column": 13}
    assert item["end_location"] == {"row": 6, "column": 13 + len("torch.log(F.softmax(logits, dim=-1))")}
    assert item["fix"]["applicability"] == "safe"
    assert item["fix"]["edits"] == [{"content": "F.log_softmax(logits, dim=-1)", "location": {"row": 6, "column": 13}, "end_location": item["end_location"]}]
    assert item["docs"] == "nanlint rule NAN101"


def test_json_on_clean_input_is_an_empty_list(project):
    result = run("check", "clean.py", "--output-format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


def test_github_format_prints_workflow_annotations(project):
    result = run("check", "risky.py", "--select", "NAN101", "--output-format", "github")
    line = result.stdout.strip()
    assert line.startswith("::error file=risky.py,line=6,col=13,endLine=6,endColumn=49,title=nanlint (NAN101)::risky.py:6:13: NAN101 ")
    assert result.exit_code == 1


def test_output_file_gets_the_report_and_stdout_stays_empty(project):
    result = run("check", "risky.py", "--select", "NAN101", "-o", "report.json", "--output-format", "json")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert json.loads((project / "report.json").read_text())[0]["code"] == "NAN101"


def test_output_file_in_a_missing_folder_is_a_one_line_error(project):
    result = run("check", "risky.py", "-o", "no/such/dir/report.txt")
    assert result.exit_code == 2
    assert result.stderr.startswith("nanlint: error: cannot write no/such/dir/report.txt")
    assert "Traceback" not in result.output


def test_statistics_counts_findings_per_code(project):
    (project / "twice.py").write_text(RISKY + RISKY.replace("def nll", "def nll2"))
    (project / "broken.py").write_text("def f(:\n")
    result = run("check", "--select", "NAN101", "--statistics")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split("\t") == ["3", "NAN101", "[*] log-of-probability"]
    assert lines[1].split("\t") == ["1", "NAN000", "syntax-error"]
    assert lines[-1] == "Found 4 problems."
    data = json.loads(run("check", "--select", "NAN101", "--statistics", "--output-format", "json").stdout)
    assert data == [
        {"code": "NAN101", "name": "log-of-probability", "count": 3, "fixable": True},
        {"code": "NAN000", "name": "syntax-error", "count": 1, "fixable": False},
    ]


def test_exit_zero_and_quiet(project):
    result = run("check", "risky.py", "--select", "NAN101", "--exit-zero", "--quiet")
    assert result.exit_code == 0
    assert "NAN101" in result.stdout
    assert "Found" not in result.stdout


def test_color_only_when_forced_and_never_with_no_color(project):
    forced = run("check", "risky.py", "--select", "NAN101", env={"FORCE_COLOR": "1"})
    assert "\033[31m" in forced.stdout
    assert "\033[" not in run("check", "risky.py", "--select", "NAN101", env={"FORCE_COLOR": "1", "NO_COLOR": "1"}).stdout


def test_stdin_with_stdin_filename(project):
    result = run("check", "-", "--stdin-filename", "model.py", "--select", "NAN101", "--output-format", "concise", input=RISKY)
    assert result.exit_code == 1
    assert result.stdout.startswith("model.py:6:13: NAN101")
    assert run("check", "-", input=CLEAN).exit_code == 0
    plain = run("check", "-", "--select", "NAN101", "--output-format", "concise", input=RISKY)
    assert plain.stdout.startswith("-:6:13: NAN101")
    # --stdin-filename alone means standard input, and the configuration applies to that name
    (project / "nanlint.toml").write_text('[per-file-ignores]\n"gen/*" = ["NAN101"]\n')
    assert run("check", "--stdin-filename", "gen/model.py", "--select", "NAN101", input=RISKY).exit_code == 0
    assert run("check", "--stdin-filename", "src/model.py", "--select", "NAN101", input=RISKY).exit_code == 1


def test_stdin_filename_excluded_with_force_exclude_is_not_checked(project):
    (project / "nanlint.toml").write_text('extend-exclude = ["vendored"]\n')
    result = run("check", "-", "--stdin-filename", "vendored/m.py", "--force-exclude", input=RISKY)
    assert result.exit_code == 0


def test_fix_rewrites_the_file_and_reports_what_is_left(project):
    result = run("check", "risky.py", "--select", "NAN101", "--fix")
    assert (project / "risky.py").read_text() == FIXED
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-2:] == ["Fixed 1 problem.", "All checks passed!"]


def test_fix_keeps_crlf_line_endings_and_latin1_encoding(project):
    source = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + RISKY
    (project / "crlf.py").write_bytes(source.replace("\n", "\r\n").encode("latin-1"))
    result = run("check", "crlf.py", "--select", "NAN101", "--fix")
    assert result.exit_code == 0
    expected = "# -*- coding: latin-1 -*-\n# caf\xe9\n" + FIXED
    assert (project / "crlf.py").read_bytes() == expected.replace("\n", "\r\n").encode("latin-1")


def test_diff_prints_the_fix_without_writing(project):
    result = run("check", "risky.py", "--select", "NAN101", "--diff")
    assert result.exit_code == 1
    assert (project / "risky.py").read_text() == RISKY
    assert "--- a/risky.py" in result.stdout and "+++ b/risky.py" in result.stdout
    assert "-    return -torch.log(F.softmax(logits, dim=-1)).gather(-1, target)" in result.stdout
    assert "+    return -F.log_softmax(logits, dim=-1).gather(-1, target)" in result.stdout
    assert "Would fix 1 problem." in result.stderr
    nothing = run("check", "clean.py", "--diff")
    assert (nothing.exit_code, nothing.stdout) == (0, "")


def test_fix_from_stdin_prints_the_fixed_source(project):
    result = run("check", "-", "--select", "NAN101", "--fix", input=RISKY)
    assert result.exit_code == 0
    assert result.stdout == FIXED
    assert "All checks passed!" in result.stderr


def test_unsafe_fixes_flag_is_accepted_and_applies_safe_fixes_too(project):
    result = run("check", "risky.py", "--select", "NAN101", "--fix", "--unsafe-fixes")
    assert result.exit_code == 0
    assert (project / "risky.py").read_text() == FIXED


def test_select_ignore_and_extend_select_on_the_command_line(project):
    assert run("check", "risky.py", "--select", "NAN101").exit_code == 1
    assert run("check", "risky.py", "--select", "NAN1", "--ignore", "NAN101").exit_code == 0
    assert run("check", "risky.py", "--select", "NAN101", "--ignore", "NAN1").exit_code == 1  # more specific wins
    assert run("check", "risky.py", "--select", "NAN0").exit_code == 0
    assert run("check", "risky.py", "--select", "NAN0", "--extend-select", "log-of-probability").exit_code == 1
    assert run("check", "risky.py", "--select", "ALL").exit_code == 1
    assert run("check", "clean.py", "--select", "ALL").exit_code == 0
    assert run("check", "risky.py", "--select", "ALL", "--ignore", "NAN1", "--output-format", "json").stdout.count('"NAN101"') == 0


@pytest.mark.parametrize("option", ["--select", "--ignore", "--extend-select"])
def test_unknown_selector_is_a_usage_error(project, option):
    result = run("check", "risky.py", option, "NAN9999")
    assert result.exit_code == 2
    assert result.stderr == f"nanlint: error: {option}: unknown rule selector `NAN9999`\n"


def test_click_usage_errors_exit_2(project):
    assert run("check", "--no-such-option").exit_code == 2
    assert run("check", "--output-format", "xml").exit_code == 2
    assert run("no-such-command").exit_code == 2


def test_rules_lists_every_catalog_rule(project):
    from nanlint.catalog import load_catalog

    result = run("rules")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == list(load_catalog())
    row = next(line for line in lines if line.startswith("NAN101"))
    assert "log-of-probability" in row and "error" in row and "softmax" in row
    data = json.loads(run("rules", "--output-format", "json").stdout)
    assert {d["code"] for d in data} == set(load_catalog())


def test_rule_prints_documentation_by_code_or_name(project):
    by_code = run("rule", "NAN101")
    assert by_code.exit_code == 0
    assert by_code.stdout.startswith("# log-of-probability (NAN101)")
    for section in ("## What it does", "## Why is this bad?", "## Example", "## Use instead", "## Fix safety", "## References"):
        assert section in by_code.stdout
    assert run("rule", "log-of-probability").stdout == by_code.stdout
    assert run("rule", "nan101").stdout == by_code.stdout


def test_unknown_rule_is_a_one_line_error(project):
    result = run("rule", "NAN999")
    assert result.exit_code == 2
    assert result.stderr == "nanlint: error: unknown rule `NAN999` (see `nanlint rules`)\n"


def test_show_settings_prints_effective_config_and_source(project):
    (project / "pyproject.toml").write_text('[tool.nanlint]\nselect = ["NAN1"]\nextend-exclude = ["gen"]\n')
    result = run("show-settings")
    assert result.exit_code == 0
    first, rest = result.stdout.split("\n", 1)
    assert first == f"# settings from {project / 'pyproject.toml'}"
    data = json.loads(rest)
    assert data["config-file"] == str(project / "pyproject.toml")
    assert data["select"] == ["NAN1"] and data["extend-exclude"] == ["gen"]
    assert "NAN101" in data["enabled-rules"]
    isolated = json.loads(run("show-settings", "--isolated").stdout.split("\n", 1)[1])
    assert isolated["config-file"] == "(none: defaults)"


def test_no_files_found_warns_and_passes(project):
    (project / "empty").mkdir()
    result = run("check", "empty")
    assert result.exit_code == 0
    assert "no Python files found" in result.stderr


def test_version(project):
    from nanlint import __version__

    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.stdout


def test_top_level_help_gives_each_command_a_whole_sentence():
    result = CliRunner().invoke(main, ["--help"])
    commands = result.stdout.split("Commands:", 1)[1]
    assert "..." not in commands
    descriptions = " ".join(commands.split())
    for name in ("check", "rule", "rules", "show-settings", "trace"):
        assert f" {name} " in f" {descriptions} "
    assert descriptions.count(".") >= 5


VAE = """\
import torch


def reparameterize(mu, logvar):
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
"""


def test_strict_reports_what_only_degenerate_inputs_reach(project):
    """exp(logvar) overflows only once training has diverged: quiet by default, reported with --strict or
    `strict = true`; a wrong type for `strict` is one line and exit 2."""
    (project / "vae.py").write_text(VAE)
    assert run("check", "vae.py", "--isolated").exit_code == 0
    strict = run("check", "vae.py", "--isolated", "--strict", "--output-format", "json")
    assert strict.exit_code == 1
    [item] = json.loads(strict.stdout)
    assert (item["code"], item["location"]["row"], item["fact"]["tier"]) == ("NAN301", 5, "degenerate")
    (project / "nanlint.toml").write_text("strict = true\n")
    assert run("check", "vae.py").exit_code == 1
    (project / "nanlint.toml").write_text('strict = "yes"\n')
    bad = CliRunner().invoke(main, ["check", "vae.py"])
    assert bad.exit_code == 2 and "strict" in bad.output and "Traceback" not in bad.output
