"""Which files to check: ``*.py`` and ``*.pyi`` under the given paths, minus default and configured
excludes and ``.gitignore`` patterns. A file named explicitly is always checked unless ``force_exclude``."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterator

from nanlint.config import Config

try:
    import pathspec
except ImportError:  # pragma: no cover - pathspec is a declared dependency
    pathspec = None

SUFFIXES = (".py", ".pyi")


class _GitIgnores:
    """``.gitignore`` files of each visited folder, applied to paths below it."""

    def __init__(self) -> None:
        self._specs: dict[Path, object] = {}

    def spec_for(self, folder: Path):
        if folder not in self._specs:
            spec = None
            gitignore = folder / ".gitignore"
            if pathspec is not None and gitignore.is_file():
                try:
                    lines = gitignore.read_text(encoding="utf-8", errors="replace").splitlines()
                    spec = pathspec.PathSpec.from_lines("gitwildmatch", lines)
                except OSError:
                    spec = None
            self._specs[folder] = spec
        return self._specs[folder]

    def ignored(self, path: Path, parents: list[Path], is_dir: bool) -> bool:
        for folder in parents:
            spec = self.spec_for(folder)
            if spec is None:
                continue
            rel = path.relative_to(folder).as_posix() + ("/" if is_dir else "")
            if spec.match_file(rel):
                return True
        return False


def _excluded(path: Path, patterns: tuple[str, ...], root: Path) -> bool:
    name = path.name
    try:
        rel = path.resolve().relative_to(root).as_posix()
    except ValueError:
        rel = path.as_posix()
    for pattern in patterns:
        if fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(rel, pattern.rstrip("/") + "/*"):
            return True
    return False


def discover(paths: list[str], config: Config, force_exclude: bool = False) -> Iterator[str]:
    """Yield file names to check, in a stable order, each once. Missing paths are yielded as given so that
    reading them reports the problem."""
    root = Path(config.root).resolve()
    patterns = tuple(config.exclude) + tuple(config.extend_exclude)
    seen: set[str] = set()
    gitignores = _GitIgnores()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for found in _walk(path, patterns, root, gitignores if config.respect_gitignore else None):
                key = os.path.normpath(found)
                if key not in seen:
                    seen.add(key)
                    yield found
        else:
            if force_exclude and _excluded(path, patterns, root):
                continue
            key = os.path.normpath(raw)
            if key not in seen:
                seen.add(key)
                yield raw


def _walk(top: Path, patterns: tuple[str, ...], root: Path, gitignores: _GitIgnores | None) -> Iterator[str]:
    visited: set[tuple[int, int]] = set()
    stack: list[tuple[Path, list[Path]]] = [(top, [])]
    while stack:
        folder, parents = stack.pop()
        try:
            stat = folder.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) in visited:  # a symlink loop
            continue
        visited.add((stat.st_dev, stat.st_ino))
        parents = parents + [folder] if gitignores is not None else parents
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
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
            if gitignores is not None and gitignores.ignored(path, parents, is_dir):
                continue
            if is_dir:
                subfolders.append(path)
            elif entry.name.endswith(SUFFIXES):
                yield entry.path
        for sub in reversed(subfolders):
            stack.append((sub, parents))
