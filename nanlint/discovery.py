"""Which files to check: ``*.py``, ``*.pyi`` and ``*.ipynb`` under the given paths, minus default and configured
excludes and ``.gitignore`` patterns (those of the walked folders and of their parents up to the git
root). A file named explicitly is always checked unless ``force_exclude``; then excludes and ``.gitignore``
apply to it as well, which is what a pre-commit hook needs."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import pathspec

from nanlint.config import Config

if TYPE_CHECKING:
    from nanlint.hierarchy import Configs

SUFFIXES = (".py", ".pyi", ".ipynb")
STDIN = "-"


class _GitIgnores:
    """``.gitignore`` files, read once per folder, applied to the paths below their folder."""

    def __init__(self) -> None:
        self._specs: dict[Path, pathspec.GitIgnoreSpec | None] = {}

    def spec_for(self, folder: Path) -> pathspec.GitIgnoreSpec | None:
        if folder not in self._specs:
            spec = None
            gitignore = folder / ".gitignore"
            try:
                if gitignore.is_file():
                    patterns = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
                    spec = pathspec.GitIgnoreSpec.from_lines(patterns)
            except (OSError, ValueError):
                spec = None
            self._specs[folder] = spec
        return self._specs[folder]

    def ignored(self, path: Path, folders: list[Path], is_dir: bool) -> bool:
        for folder in folders:
            spec = self.spec_for(folder)
            if spec is None:
                continue
            try:
                rel = path.relative_to(folder).as_posix()
            except ValueError:
                continue
            if spec.match_file(rel + ("/" if is_dir else "")):
                return True
        return False


def _ancestors_to_git_root(path: Path) -> list[Path]:
    """The folders above ``path`` whose ``.gitignore`` applies to it, outermost first: up to the folder holding
    ``.git``. Outside a git repository none do (only the walked folders' own ``.gitignore`` files count)."""
    chain = []
    for parent in path.parents:
        chain.append(parent)
        if (parent / ".git").exists():
            return list(reversed(chain))
    return []


def _excluded(path: Path, patterns: tuple[str, ...], root: Path) -> bool:
    """ruff-like matching: a pattern matches the base name, or the path relative to the configuration's
    folder (``tests/fixtures``, ``gen/*.py``), or a folder above the path."""
    name = path.name
    try:
        rel = path.absolute().relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    for pattern in patterns:
        pattern = pattern.rstrip("/")
        if fnmatch.fnmatchcase(name, pattern) or fnmatch.fnmatchcase(rel, pattern) or fnmatch.fnmatchcase(rel, pattern + "/*"):
            return True
    return False


def _display(path: str) -> str:
    """The name findings carry: as given, normalised (``./a.py`` -> ``a.py``)."""
    return os.path.normpath(path)


def discover(paths: list[str], config: "Config | Configs", force_exclude: bool = False) -> Iterator[str]:
    """Yield file names to check, in a stable order, each once. ``-`` (stdin) is passed through. A named path
    that does not exist is yielded as given so that reading it reports the problem (NAN001). Each named path
    is walked with the excludes of its own configuration (the closest one above it)."""
    from nanlint.hierarchy import Configs

    configs = Configs.of(config)
    seen: set[str] = set()
    all_gitignores = _GitIgnores()
    for raw in paths:
        config = configs.for_path(raw)
        root = Path(config.root).absolute()
        patterns = tuple(config.exclude) + tuple(config.extend_exclude)
        gitignores = all_gitignores if config.respect_gitignore else None
        if raw == STDIN:
            if STDIN not in seen:
                seen.add(STDIN)
                yield STDIN
            continue
        path = Path(raw)
        if path.is_dir():
            if force_exclude and _named_path_excluded(path, patterns, root, gitignores, is_dir=True):
                continue
            for found in _walk(path, patterns, root, gitignores):
                key = _display(found)
                if key not in seen:
                    seen.add(key)
                    yield key
        else:
            if force_exclude and _named_path_excluded(path, patterns, root, gitignores, is_dir=False):
                continue
            key = _display(raw)
            if key not in seen:
                seen.add(key)
                yield key


def _named_path_excluded(path: Path, patterns, root: Path, gitignores: _GitIgnores | None, is_dir: bool) -> bool:
    """``--force-exclude``: the path itself, or a folder between it and the configuration's folder, matches
    an exclude pattern, or a ``.gitignore`` of the repository ignores it."""
    absolute = Path(os.path.abspath(path))
    candidates = [absolute] + [parent for parent in absolute.parents if root in parent.parents]
    if any(_excluded(candidate, patterns, root) for candidate in candidates):
        return True
    if gitignores is not None:
        if gitignores.ignored(absolute, _ancestors_to_git_root(absolute), is_dir):
            return True
    return False


def excluded_by_name(filename: str, config: "Config | Configs") -> bool:
    """Whether ``filename`` (for instance ``--stdin-filename``) falls under the excludes, as with
    ``--force-exclude``."""
    from nanlint.hierarchy import Configs

    config = Configs.of(config).for_path(filename)
    root = Path(config.root).absolute()
    patterns = tuple(config.exclude) + tuple(config.extend_exclude)
    gitignores = _GitIgnores() if config.respect_gitignore else None
    return _named_path_excluded(Path(filename), patterns, root, gitignores, is_dir=False)


def _walk(top: Path, patterns: tuple[str, ...], root: Path, gitignores: _GitIgnores | None) -> Iterator[str]:
    visited: set[tuple[int, int]] = set()
    top_parents = _ancestors_to_git_root(top.absolute()) if gitignores is not None else []
    stack: list[tuple[Path, list[Path]]] = [(top, [p for p in top_parents])]
    while stack:
        folder, parents = stack.pop()
        try:
            info = folder.stat()
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in visited:  # a symlink loop, or the same folder reached twice
            continue
        visited.add((info.st_dev, info.st_ino))
        folders = parents + [folder.absolute()] if gitignores is not None else parents
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            yield str(folder)  # reading it reports why the folder cannot be checked (NAN001)
            continue
        subfolders = []
        for entry in entries:
            path = Path(entry.path)
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if _excluded(path, patterns, root):
                continue
            if gitignores is not None and gitignores.ignored(path.absolute(), folders, is_dir):
                continue
            if is_dir:
                subfolders.append(path)
            elif entry.name.endswith(SUFFIXES):
                if _is_special(entry):
                    continue  # FIFOs, sockets, devices found by walking are not source files
                yield entry.path
        for sub in reversed(subfolders):
            stack.append((sub, folders))


def _is_special(entry: os.DirEntry) -> bool:
    """True for FIFOs, sockets and devices; dangling links and unreadable entries are kept so that reading
    them reports why they cannot be checked."""
    try:
        return not entry.is_file() and os.path.exists(entry.path)
    except OSError:
        return False
