"""The package as users get it: the wheel (with the rule catalog inside), the console script, ``python -m
nanlint``, no torch for ``check``, the README's generated table, the CI script and the pre-commit hook file."""
from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from nanlint import __version__
from nanlint.catalog import load_catalog
from nanlint.docs import rule_table, with_table

REPO = Path(__file__).resolve().parent.parent
RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"


def clean_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "NO_COLOR", "FORCE_COLOR")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet", "--wheel-dir", str(out), str(REPO)],
        check=True, env=clean_env(), cwd=out,
    )
    [built] = out.glob("nanlint-*.whl")
    return built


def test_wheel_ships_the_rule_catalog_as_nanlint_catalog(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted((REPO / "rules").glob("NAN*.toml")):
        assert f"nanlint/_catalog/{path.name}" in names
    assert "nanlint/cli.py" in names and "nanlint/rules/base.py" in names
    assert not any(name.startswith(("tests/", "rules/", "examples/")) for name in names)
    metadata = zipfile.ZipFile(wheel).read(f"nanlint-{__version__}.dist-info/METADATA").decode()
    assert "Requires-Python: >=3.10" in metadata
    for requirement in ("Requires-Dist: libcst", "Requires-Dist: click", "Requires-Dist: pathspec", "Requires-Dist: tomli"):
        assert requirement in metadata
    assert "Requires-Dist: torch>=2.1; extra == 'trace'" in metadata
    assert not any(line.startswith("Requires-Dist: torch") and "extra" not in line for line in metadata.splitlines())
    entry_points = zipfile.ZipFile(wheel).read(f"nanlint-{__version__}.dist-info/entry_points.txt").decode()
    assert "nanlint = nanlint.__main__:run" in entry_points


def test_installed_wheel_prints_rule_docs_from_its_own_catalog(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the dependencies (libcst, click, pathspec) come from the environment running the tests, listed after
    # the new venv's own site-packages, so the wheel's nanlint is found first; .pth files there (an editable
    # nanlint) are not processed this way
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(purelib, "_test_dependencies.pth").write_text("\n".join(sorted(outer)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
                   check=True, env=clean_env())
    work = tmp_path / "elsewhere"  # not the checkout: its rules/ must not be what is found
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import nanlint, nanlint.catalog as c; print(nanlint.__file__); print(c.catalog_dir())"],
        check=True, capture_output=True, text=True, cwd=work, env=clean_env(),
    ).stdout.splitlines()
    assert where[0].startswith(str(venv)), where
    assert where[1].startswith(str(venv)) and where[1].endswith(os.path.join("nanlint", "_catalog")), where
    doc = subprocess.run([str(venv / "bin" / "nanlint"), "rule", "NAN101"], capture_output=True, text=True, cwd=work, env=clean_env())
    assert doc.returncode == 0, doc.stderr
    assert doc.stdout.startswith("# log-of-probability (NAN101)")
    assert doc.stdout == load_catalog()["NAN101"].render()
    (work / "model.py").write_text(RISKY)
    checked = subprocess.run([str(venv / "bin" / "nanlint"), "check", "--select", "NAN101", "model.py"], capture_output=True, text=True, cwd=work, env=clean_env())
    assert checked.returncode == 1
    assert "model.py:3:5: NAN101" in checked.stdout


def test_python_dash_m_nanlint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "nanlint", "--version"], capture_output=True, text=True, cwd=REPO, env=clean_env())
    assert result.returncode == 0
    assert __version__ in result.stdout


def test_check_runs_where_torch_cannot_be_imported(tmp_path):
    (tmp_path / "model.py").write_text(RISKY)
    program = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.modules['torch'] = None\n"
        "from nanlint.cli import main\n"
        "sys.argv = ['nanlint', 'check', '--select', 'ALL', '--output-format', 'concise', 'model.py']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", program, str(REPO)], capture_output=True, text=True, cwd=tmp_path, env=clean_env())
    assert result.returncode == 1, result.stderr
    assert "model.py:3:5: NAN101" in result.stdout
    assert result.stderr == ""


def test_readme_rule_table_matches_rules_folder():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert with_table(readme, rule_table()) == readme, "README rule table is stale: run `python -m nanlint.docs`"
    for code in load_catalog():
        assert f"| {code} |" in readme


def test_docs_command_rewrites_only_the_table(tmp_path):
    from nanlint.docs import BEGIN, END, main

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{BEGIN}\nold table\n{END}\noutro\n")
    assert main([str(readme), "--check"]) == 1
    assert main([str(readme)]) == 0
    assert readme.read_text() == f"intro\n{BEGIN}\n{rule_table()}{END}\noutro\n"
    assert main([str(readme), "--check"]) == 0
    (tmp_path / "no_markers.md").write_text("nothing\n")
    assert main([str(tmp_path / "no_markers.md")]) == 2


def test_ci_script_and_readme_use_the_same_pinned_test_install():
    install = "pip install -e '.[test,trace]' -c constraints.txt"
    assert install in (REPO / ".ci" / "run").read_text()
    readme = (REPO / "README.md").read_text()
    assert install in readme
    assert "pip install -e . && .venv/bin/nanlint check examples/" in readme
    assert "torch==2.13.0" in (REPO / "constraints.txt").read_text().splitlines()
    assert os.access(REPO / ".ci" / "run", os.X_OK)


def test_pre_commit_hook_definition():
    import yaml  # pre-commit's own dependency

    [hook] = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "nanlint"
    assert hook["entry"] == "nanlint check --force-exclude"
    assert hook["language"] == "python"
    assert hook["types_or"] == ["python", "pyi", "jupyter"]
    assert hook["require_serial"] is True  # one process: one report per commit


def test_benchmark_tree_sets_and_labels_are_references_only():
    """Third-party code stays outside the repository: the sets name pinned packages, the labels name files."""
    import csv
    import tomllib

    sets = tomllib.loads((REPO / "benchmarks" / "trees.toml").read_text())["sets"]
    assert sets and all(all("==" in p for p in s["packages"]) for s in sets.values())
    with open(REPO / "benchmarks" / "labels" / "unseen-2026-12-03.tsv", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert rows and {r["label"] for r in rows} <= {"TRUE", "FALSE", "UNSURE"}
    assert all(r["package"] in sets["unseen-2026-12-03"]["packages"] for r in rows)
    bugs = tomllib.loads((REPO / "benchmarks" / "labels" / "heldout_bugs.toml").read_text())["bug"]
    assert all(b["url"].startswith("https://") and "buggy" not in b for b in bugs)
