"""Configuration: where it is found, what wins, validation, per-file-ignores, per-rule options, selection."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from nanlint import selection
from nanlint.catalog import load_catalog
from nanlint.cli import main
from nanlint.config import DEFAULT_EXCLUDE, Config, ConfigError, from_table, load

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_defaults_without_any_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load()
    assert config.source is None
    assert config.root == str(tmp_path)
    assert config.exclude == DEFAULT_EXCLUDE
    assert "NAN101" in config.enabled_codes and "NAN002" not in config.enabled_codes


def test_closest_pyproject_with_table_is_found_upward_from_cwd(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint]\nignore = ["NAN101"]\n')
    inner = tmp_path / "pkg" / "sub"
    inner.mkdir(parents=True)
    (tmp_path / "pkg" / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.nanlint]: skipped
    monkeypatch.chdir(inner)
    config = load()
    assert config.source == str(tmp_path / "pyproject.toml")
    assert config.root == str(tmp_path)
    assert "NAN101" not in config.enabled_codes


def test_nanlint_toml_wins_over_pyproject_in_the_same_folder(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint]\nignore = ["NAN101"]\n')
    (tmp_path / "nanlint.toml").write_text('extend-select = ["NAN002"]\n')
    monkeypatch.chdir(tmp_path)
    config = load()
    assert config.source == str(tmp_path / "nanlint.toml")
    assert {"NAN101", "NAN002"} <= config.enabled_codes


def test_closer_pyproject_wins_over_nanlint_toml_further_up(tmp_path, monkeypatch):
    (tmp_path / "nanlint.toml").write_text('extend-select = ["NAN002"]\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pyproject.toml").write_text('[tool.nanlint]\nignore = ["NAN101"]\n')
    monkeypatch.chdir(tmp_path / "sub")
    assert load().source == str(tmp_path / "sub" / "pyproject.toml")


def test_explicit_config_file_and_isolated(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint]\nselect = ["NAN0"]\n')
    (tmp_path / "other.toml").write_text('select = ["NAN101"]\n')
    (tmp_path / "risky.py").write_text(RISKY)
    monkeypatch.chdir(tmp_path)
    assert load(str(tmp_path / "other.toml")).source == str(tmp_path / "other.toml")
    assert load(isolated=True).source is None
    assert run("check", "risky.py").exit_code == 0  # the pyproject selects only NAN0
    assert run("check", "risky.py", "--isolated").exit_code == 1
    assert run("check", "risky.py", "--config", "other.toml").exit_code == 1


def test_missing_config_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("check", "--config", "nope.toml")
    assert result.exit_code == 2
    assert result.stderr == "nanlint: error: config file not found: nope.toml\n"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('selekt = ["NAN1"]', "unknown key `selekt`"),
        ('select = "NAN1"', "`select` must be a list of rule codes, got 'NAN1'"),
        ("preview = 1", "`preview` must be true or false, got 1"),
        ('target-precision = "float8"', "`target-precision` must be one of float32, float16, bfloat16"),
        ('select = ["NAN999"]', "`select`: unknown rule selector `NAN999`"),
        ('ignore = ["E501"]', "`ignore`: unknown rule selector `E501`"),
        ('[per-file-ignores]\n"tests/*" = ["NAN9"]', "`per-file-ignores` `tests/*`: unknown rule selector `NAN9`"),
        ('[per-file-ignores]\n"tests/*" = "NAN1"', "`per-file-ignores` must be a table of glob = [codes]"),
        ("[rules.NAN999]\nx = 1", "`rules.NAN999`: unknown rule"),
        ("[rules.NAN101]\nno-such-option = 1", "`rules.NAN101.no-such-option`: unknown option (options of NAN101: "),
        ("exclude = [1]", "`exclude` must be a list of glob patterns"),
    ],
)
def test_invalid_configuration_names_the_problem_and_exits_2(tmp_path, monkeypatch, toml, message):
    (tmp_path / "nanlint.toml").write_text(toml + "\n")
    (tmp_path / "a.py").write_text("x = 1\n")
    monkeypatch.chdir(tmp_path)
    result = run("check", "a.py")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"nanlint: error: {tmp_path / 'nanlint.toml'}: ")
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert run("show-settings").exit_code == 2


def test_invalid_toml_is_a_one_line_error(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[tool.nanlint\nselect = \n")
    monkeypatch.chdir(tmp_path)
    result = run("check")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"nanlint: error: {tmp_path / 'pyproject.toml'}: invalid TOML")
    assert len(result.stderr.splitlines()) == 1


def test_rule_options_are_validated_against_the_rule_class(monkeypatch):
    from nanlint.rules import all_rules

    rule = all_rules()["NAN101"]
    monkeypatch.setattr(rule, "default_options", {"eps": 1e-6, "names": ["a"], "strict": False})
    config = from_table({"rules": {"log-of-probability": {"eps": 1, "strict": True}}}, None)
    assert config.rule_options == {"NAN101": {"eps": 1, "strict": True}}
    with pytest.raises(ConfigError, match=r"`rules.NAN101.eps` must be float, got 'x'"):
        from_table({"rules": {"NAN101": {"eps": "x"}}}, None)
    with pytest.raises(ConfigError, match=r"`rules.NAN101.strict` must be bool, got 1"):
        from_table({"rules": {"NAN101": {"strict": 1}}}, None)
    with pytest.raises(ConfigError, match=r"unknown option \(options of NAN101: eps, names, strict\)"):
        from_table({"rules": {"NAN101": {"epsilon": 1.0}}}, None)


def test_per_file_ignores_are_relative_to_the_config_file(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint.per-file-ignores]\n"tests/*" = ["NAN1"]\n"gen.py" = ["log-of-probability"]\n')
    for name in ("tests/test_a.py", "src/tests/b.py", "src/model.py", "gen.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(RISKY)
    monkeypatch.chdir(tmp_path / "src")  # run from below the config file: globs stay relative to it
    result = run("check", "..", "--select", "NAN101", "--output-format", "concise", "-q")
    flagged = sorted({line.split(":")[0] for line in result.stdout.splitlines()})
    assert flagged == ["../src/model.py", "../src/tests/b.py"]
    config = load()
    assert "NAN101" not in config.codes_for(str(tmp_path / "tests" / "test_a.py"))
    assert {"NAN000", "NAN001"} <= config.codes_for(str(tmp_path / "tests" / "test_a.py"))


def test_cli_select_starts_a_new_layer_over_the_file_selection(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.nanlint]\nselect = ["NAN0"]\nignore = ["NAN101"]\n')
    (tmp_path / "risky.py").write_text(RISKY)
    monkeypatch.chdir(tmp_path)
    assert run("check", "risky.py").exit_code == 0
    assert run("check", "risky.py", "--extend-select", "NAN101").exit_code == 1
    assert run("check", "risky.py", "--select", "NAN101").exit_code == 1
    assert run("check", "risky.py", "--select", "NAN101", "--ignore", "NAN101").exit_code == 0


def test_selection_specificity_and_ties():
    docs = load_catalog()
    assert "NAN101" in selection.resolve(docs, ["NAN101"], ignore=["NAN1"])
    assert "NAN101" not in selection.resolve(docs, ["NAN1"], ignore=["NAN101"])
    assert "NAN101" not in selection.resolve(docs, ["NAN101"], ignore=["NAN101"])
    assert "NAN101" not in selection.resolve(docs, ["ALL"], ignore=["NAN1"])
    assert "NAN002" in selection.resolve(docs, ["ALL"])
    assert "NAN002" not in selection.resolve(docs, None)
    assert selection.resolve(docs, [], ignore=["ALL"]) == selection.ALWAYS_ON


def test_preview_rules_need_preview_unless_named_exactly(monkeypatch):
    from dataclasses import replace

    docs = dict(load_catalog())
    docs["NAN101"] = replace(docs["NAN101"], default="preview")
    assert "NAN101" not in selection.resolve(docs, None)
    assert "NAN101" not in selection.resolve(docs, ["ALL"])
    assert "NAN101" not in selection.resolve(docs, ["NAN1"])
    assert "NAN101" in selection.resolve(docs, ["NAN1"], preview=True)
    assert "NAN101" in selection.resolve(docs, ["NAN101"])
    assert "NAN101" in selection.resolve(docs, ["log-of-probability"])


def test_config_file_with_tool_table_in_nanlint_toml_and_explicit_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    config = load(str(tmp_path / "pyproject.toml"))
    assert config.source == str(tmp_path / "pyproject.toml") and config.select is None
    (tmp_path / "nanlint.toml").write_text('[tool.nanlint]\nselect = ["NAN1"]\n')
    assert load(str(tmp_path / "nanlint.toml")).select == ("NAN1",)


def test_fingerprint_changes_with_what_affects_results():
    base = Config()
    assert base.fingerprint() == Config().fingerprint()
    assert base.fingerprint() != Config(ignore=("NAN101",)).fingerprint()
    assert base.fingerprint() != Config(target_precision="float16").fingerprint()
