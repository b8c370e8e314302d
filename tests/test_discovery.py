"""Which files ``nanlint check`` looks at."""
from __future__ import annotations

import os
import subprocess

import pytest

from nanlint.config import Config, from_table
from nanlint.discovery import discover


def tree(root, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")


def found(paths, config=None, force_exclude=False) -> list[str]:
    return list(discover([str(p) for p in paths], config or Config(root="."), force_exclude))


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_walk_finds_py_and_pyi_only_sorted_and_normalised(here):
    tree(here, "b.py", "a.pyi", "notes.txt", "pkg/c.py", "pkg/sub/d.py", "setup.cfg", "script")
    assert found(["."]) == ["a.pyi", "b.py", "pkg/c.py", "pkg/sub/d.py"]
    assert found(["./pkg/"]) == ["pkg/c.py", "pkg/sub/d.py"]


def test_default_excludes(here):
    tree(here, "ok.py", ".venv/lib/x.py", "venv/y.py", "build/z.py", "__pycache__/c.py", "node_modules/n.py",
         "pkg.egg-info/e.py", ".git/hooks/h.py", "src/dist/d.py", ".tox/t.py")
    assert found(["."]) == ["ok.py"]


def test_exclude_replaces_and_extend_exclude_adds(here):
    tree(here, "ok.py", "build/b.py", "third_party/t.py", "gen/g.py", "gen/keep.txt", "src/gen/s.py")
    config = from_table({"extend-exclude": ["third_party", "gen/*.py"]}, None)
    # a folder's files come before its subfolders; the report is sorted by path anyway
    assert found(["."], config) == ["ok.py", "src/gen/s.py"]
    only_third_party = from_table({"exclude": ["third_party"]}, None)
    assert found(["."], only_third_party) == ["ok.py", "build/b.py", "gen/g.py", "src/gen/s.py"]


def test_gitignore_of_walked_folders(here):
    tree(here, "a.py", "gen_x.py", "pkg/b.py", "pkg/out/c.py", "pkg/keep_gen.py")
    (here / ".gitignore").write_text("gen_*.py\n")
    (here / "pkg" / ".gitignore").write_text("out/\n*_gen.py\n")
    assert found(["."]) == ["a.py", "pkg/b.py"]
    assert found(["."], from_table({"respect-gitignore": False}, None)) == ["a.py", "gen_x.py", "pkg/b.py", "pkg/keep_gen.py", "pkg/out/c.py"]


def test_gitignore_negation(here):
    tree(here, "a_gen.py", "keep_gen.py")
    (here / ".gitignore").write_text("*_gen.py\n!keep_gen.py\n")
    assert found(["."]) == ["keep_gen.py"]


def test_gitignore_of_parent_folders_up_to_the_git_root(here):
    subprocess.run(["git", "init", "-q", str(here)], check=True)
    tree(here, "src/model.py", "src/generated/g.py")
    (here / ".gitignore").write_text("generated/\n")
    assert found(["src"]) == ["src/model.py"]


def test_explicit_file_is_checked_even_when_excluded_unless_force_exclude(here):
    tree(here, "build/b.py", "gen_x.py", "ok.py")
    (here / ".gitignore").write_text("gen_*.py\n")
    subprocess.run(["git", "init", "-q", str(here)], check=True)
    named = ["build/b.py", "gen_x.py", "ok.py"]
    assert found(named) == named
    assert found(named, force_exclude=True) == ["ok.py"]


def test_force_exclude_uses_config_patterns_relative_to_the_config_folder(here):
    tree(here, "vendored/v.py", "src/vendored.py", "src/m.py")
    config = from_table({"extend-exclude": ["vendored"]}, here / "pyproject.toml")
    assert found(["vendored/v.py", "src/m.py"], config, force_exclude=True) == ["src/m.py"]
    assert found(["vendored/v.py"], config) == ["vendored/v.py"]


def test_each_file_once(here):
    tree(here, "a.py", "pkg/b.py")
    assert found([".", "a.py", "./a.py", "pkg", "pkg/b.py"]) == ["a.py", "pkg/b.py"]


def test_directory_named_like_a_python_file_is_walked(here):
    tree(here, "weird.py/inner.py")
    assert found(["."]) == ["weird.py/inner.py"]
    assert found(["weird.py"]) == ["weird.py/inner.py"]


def test_symlink_loops_end(here):
    tree(here, "pkg/a.py")
    os.symlink("..", here / "pkg" / "up")
    os.symlink("loop.py", here / "loop.py")
    # the self-referencing link is kept so that reading it reports it; pkg/up/pkg/... is not walked again
    assert found(["."]) == ["loop.py", "pkg/a.py"]


def test_special_files_found_by_walking_are_skipped(here):
    tree(here, "a.py")
    os.mkfifo(here / "pipe.py")
    assert found(["."]) == ["a.py"]


def test_missing_path_is_passed_through_to_be_reported(here):
    assert found(["nope.py", "nodir/"]) == ["nope.py", "nodir"]
