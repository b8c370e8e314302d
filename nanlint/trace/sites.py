"""Static sites: the checker's findings over the script and the project's own modules it imports.

The project root is the nearest ancestor of the script holding ``pyproject.toml``, ``setup.py`` or ``.git``,
else the script's folder. Imports are followed statically (the stdlib ``ast``) before the run, so that the
monitor knows which lines to measure closely; modules the run imported that the static walk missed are
checked afterwards."""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from nanlint.findings import Finding

ROOT_MARKERS = ("pyproject.toml", "setup.py", ".git")


def project_root(script: str) -> str:
    start = Path(script).resolve().parent
    for folder in (start, *start.parents):
        if any((folder / marker).exists() for marker in ROOT_MARKERS):
            return str(folder)
    return str(start)


def _module_file(base: Path, dotted: str) -> Path | None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        init = base / "__init__.py"
        return init if init.is_file() else None
    candidate = base.joinpath(*parts)
    for path in (candidate.with_suffix(".py"), candidate / "__init__.py"):
        if path.is_file():
            return path
    return None


def imported_files(script: str, root: str, search: list[str]) -> list[str]:
    """The script and every module under ``root`` it imports, transitively (static approximation)."""
    root_path = Path(root).resolve()
    bases = [Path(s).resolve() for s in search] + [root_path, root_path / "src"]
    seen: dict[Path, None] = {}
    queue = [Path(script).resolve()]
    while queue:
        path = queue.pop()
        if path in seen:
            continue
        seen[path] = None
        try:
            tree = ast.parse(path.read_bytes(), str(path))
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            names: list[tuple[Path | None, str]] = []
            if isinstance(node, ast.Import):
                names = [(None, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = path.parent
                    for _ in range(node.level - 1):
                        base = base.parent
                    names = [(base, node.module or "")] + [(base, f"{node.module or ''}.{a.name}") for a in node.names]
                else:
                    names = [(None, node.module or "")] + [(None, f"{node.module}.{a.name}") for a in node.names]
            for base, dotted in names:
                for b in ([base] if base is not None else bases):
                    found = _module_file(b, dotted)
                    if found is not None:
                        found = found.resolve()
                        if root_path in found.parents and "site-packages" not in found.parts:
                            queue.append(found)
                        break
    return [str(p) for p in seen]


def static_findings(files: list[str]) -> list[Finding]:
    """The flagged sites of ``files``: each file with its own configuration (its target precision, rule options,
    per-file ignores, as ``nanlint check`` reads them), with every rule selected on top (ALL + preview), so that
    the trace watches every site the checker could name; meta findings (NAN0xx) are not numerical sites. Raises
    :class:`nanlint.config.ConfigError` for a configuration file that cannot be used."""
    from dataclasses import replace

    from nanlint import api, selection
    from nanlint.config import Config
    from nanlint.hierarchy import Configs

    def everything(config: Config) -> Config:
        return replace(config, overrides=(*config.overrides, selection.Layer(("ALL",), (), ())), preview=True, cache=False)

    # one process, no cache: a few files, and nothing written into the user's folder
    result = api.run(sorted(set(files)), Configs(adjust=everything), jobs=1, cache=False)
    return [f for f in result.findings if not f.code.startswith("NAN0")]


def normalized(finding: Finding) -> tuple[str, int]:
    return os.path.realpath(finding.filename), finding.span.line


TRAINING_MARKERS = re.compile(r"\.backward\(|\bautograd\.grad\(|\boptim\.|\bOptimizer\b|\bGradScaler\b|\bTrainer\(|"
                              r"\.fit\(|\.training_step\b")


def trains(files: list[str]) -> bool:
    """Whether the script or a project module it imports shows a training step (backward, an optimizer, a
    trainer): then a DataLoader loop without a step so far is evaluation before training, not inference, and
    must not end the trace."""
    for name in files:
        try:
            text = Path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        if TRAINING_MARKERS.search(text):
            return True
    return False
