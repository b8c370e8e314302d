"""Configuration: ``[tool.nanlint]`` in the closest ``pyproject.toml`` that has that table, or
``nanlint.toml`` (which wins when both sit in one folder), searched upward from the current directory;
``--config FILE`` and ``--isolated`` override the search. Every key and type is validated."""
from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nanlint._toml import tomllib
from nanlint.catalog import load_catalog
from nanlint.options import AnalysisOptions
from nanlint import selection

DEFAULT_EXCLUDE = (
    ".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", ".mypy_cache", ".pytest_cache", ".ruff_cache",
    ".nanlint_cache", "__pycache__", "__pypackages__", "build", "dist", "site-packages", "node_modules",
    ".eggs", "*.egg-info", ".ipynb_checkpoints",
)
PRECISIONS = ("float32", "float16", "bfloat16")
#: files with more tokens are reported (NAN001) instead of analysed: libcst's tree and the analysis take about
#: 4 KB of memory per token, so this stays under 1 GB (torch's largest hand-written file has 203,000)
DEFAULT_MAX_FILE_TOKENS = 250_000


class ConfigError(Exception):
    """A configuration problem: reported as one line, exit 2."""


@dataclass(frozen=True)
class Config:
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    extend_exclude: tuple[str, ...] = ()
    per_file_ignores: dict[str, tuple[str, ...]] = field(default_factory=dict)
    rule_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    preview: bool = False
    strict: bool = False  # also report hazards that only degenerate inputs reach (an empty graph, a constant schedule)
    target_precision: str | None = None
    respect_gitignore: bool = True
    cache: bool = True
    max_file_tokens: int = DEFAULT_MAX_FILE_TOKENS
    source: str | None = None  # the file this came from, None for defaults
    root: str = "."  # the folder per-file-ignores and excludes are relative to
    # selection layers applied after the file's own (the command line's --select/--extend-select/--ignore)
    overrides: tuple[selection.Layer, ...] = ()

    @functools.cached_property
    def enabled_codes(self) -> frozenset[str]:
        layers = [selection.Layer(self.select, self.extend_select, self.ignore), *self.overrides]
        return selection.resolve_layers(load_catalog(), layers, self.preview)

    def codes_for(self, filename: str) -> frozenset[str]:
        """The enabled codes minus those ``per-file-ignores`` turns off for ``filename``."""
        codes = self.enabled_codes
        if not self.per_file_ignores:
            return codes
        rel = _relative(filename, self.root)
        for pattern, ignored in self.per_file_ignores.items():
            if _glob_match(rel, pattern):
                codes = (codes - selection.expand(ignored, load_catalog())) | selection.ALWAYS_ON
        return frozenset(codes)

    def analysis_options(self, filename: str) -> AnalysisOptions:
        """What the analysis of ``filename`` depends on."""
        return AnalysisOptions(codes=self.codes_for(filename), rule_options=self.rule_options,
                               target_precision=self.target_precision, strict=self.strict,
                               max_file_tokens=self.max_file_tokens)

    def fingerprint(self) -> str:
        data = {
            "enabled": sorted(self.enabled_codes),
            "per_file_ignores": self.per_file_ignores, "rule_options": self.rule_options,
            "preview": self.preview, "strict": self.strict, "target_precision": self.target_precision, "root": self.root,
            "max_file_tokens": self.max_file_tokens,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {
            "config-file": self.source or "(none: defaults)",
            "root": self.root,
            "select": list(self.select) if self.select is not None else "(default)",
            "extend-select": list(self.extend_select),
            "ignore": list(self.ignore),
            "command-line": [
                {"select": list(layer.select) if layer.select is not None else None,
                 "extend-select": list(layer.extend_select), "ignore": list(layer.ignore)}
                for layer in self.overrides
            ],
            "exclude": list(self.exclude),
            "extend-exclude": list(self.extend_exclude),
            "per-file-ignores": {k: list(v) for k, v in self.per_file_ignores.items()},
            "preview": self.preview,
            "strict": self.strict,
            "target-precision": self.target_precision or "(auto: from the file)",
            "respect-gitignore": self.respect_gitignore,
            "cache": self.cache,
            "max-file-tokens": self.max_file_tokens,
            "rules": self.rule_options,
            "enabled-rules": sorted(self.enabled_codes),
        }


def _relative(filename: str, root: str) -> str:
    try:
        return Path(os.path.abspath(filename)).relative_to(Path(root).absolute()).as_posix()
    except ValueError:
        return Path(filename).as_posix()


def _glob_match(rel: str, pattern: str) -> bool:
    return fnmatch.fnmatch(rel, pattern) or fnmatch.fnmatch(Path(rel).name, pattern) or fnmatch.fnmatch(rel, pattern.rstrip("/") + "/*")


# key -> (attribute, expected type description, checker)
def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


KEYS = {
    "select": _str_list,
    "extend-select": _str_list,
    "ignore": _str_list,
    "exclude": _str_list,
    "extend-exclude": _str_list,
    "per-file-ignores": lambda v: isinstance(v, dict) and all(_str_list(x) for x in v.values()),
    "rules": lambda v: isinstance(v, dict) and all(isinstance(x, dict) for x in v.values()),
    "preview": lambda v: isinstance(v, bool),
    "strict": lambda v: isinstance(v, bool),
    "target-precision": lambda v: v in PRECISIONS,
    "respect-gitignore": lambda v: isinstance(v, bool),
    "cache": lambda v: isinstance(v, bool),
    "max-file-tokens": lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
}
TYPES = {
    "select": "a list of rule codes", "extend-select": "a list of rule codes", "ignore": "a list of rule codes",
    "exclude": "a list of glob patterns", "extend-exclude": "a list of glob patterns",
    "per-file-ignores": "a table of glob = [codes]", "rules": "a table of rule tables", "preview": "true or false",
    "strict": "true or false",
    "target-precision": "one of " + ", ".join(PRECISIONS), "respect-gitignore": "true or false",
    "cache": "true or false", "max-file-tokens": "a positive integer",
}


def find_config_file(start: Path) -> tuple[Path, dict] | None:
    """The closest ``nanlint.toml``, or ``pyproject.toml`` with ``[tool.nanlint]``, upward from ``start``."""
    folder = start.resolve()
    if folder.is_file():
        folder = folder.parent
    for directory in (folder, *folder.parents):
        for name in ("nanlint.toml", "pyproject.toml"):
            candidate = directory / name
            if not candidate.is_file():
                continue
            data = _read_toml(candidate)
            if name == "nanlint.toml":
                return candidate, data.get("tool", {}).get("nanlint", data)
            if "nanlint" in data.get("tool", {}):
                return candidate, data["tool"]["nanlint"]
    return None


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def load(config_file: str | None = None, isolated: bool = False, start: Path | None = None) -> Config:
    if isolated:
        return Config(root=str(Path.cwd()))
    if config_file is not None:
        path = Path(config_file)
        if not path.is_file():
            raise ConfigError(f"config file not found: {config_file}")
        data = _read_toml(path)
        table = data.get("tool", {}).get("nanlint", data if path.name != "pyproject.toml" else {})
        return from_table(table, path)
    found = find_config_file(start or Path.cwd())
    if found is None:
        return Config(root=str(Path.cwd()))
    return from_table(found[1], found[0])


def from_table(table: dict, path: Path | None) -> Config:
    where = str(path) if path else "configuration"
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [tool.nanlint] must be a table")
    for key, value in table.items():
        check = KEYS.get(key)
        if check is None:
            raise ConfigError(f"{where}: unknown key `{key}` (known: {', '.join(sorted(KEYS))})")
        if not check(value):
            raise ConfigError(f"{where}: `{key}` must be {TYPES[key]}, got {value!r}")
    docs = load_catalog()
    try:
        for key in ("select", "extend-select", "ignore"):
            selection.validate(table.get(key, ()), docs, f"{where}: `{key}`")
        for pattern, codes in table.get("per-file-ignores", {}).items():
            selection.validate(codes, docs, f"{where}: `per-file-ignores` `{pattern}`")
    except selection.SelectionError as exc:
        raise ConfigError(str(exc)) from None
    rule_options = _rule_options(table.get("rules", {}), where)
    select = table.get("select")
    return Config(
        select=tuple(select) if select is not None else None,
        extend_select=tuple(table.get("extend-select", ())),
        ignore=tuple(table.get("ignore", ())),
        exclude=tuple(table.get("exclude", DEFAULT_EXCLUDE)),
        extend_exclude=tuple(table.get("extend-exclude", ())),
        per_file_ignores={k: tuple(v) for k, v in table.get("per-file-ignores", {}).items()},
        rule_options=rule_options,
        preview=table.get("preview", False),
        strict=table.get("strict", False),
        target_precision=table.get("target-precision"),
        respect_gitignore=table.get("respect-gitignore", True),
        cache=table.get("cache", True),
        max_file_tokens=table.get("max-file-tokens", DEFAULT_MAX_FILE_TOKENS),
        source=str(path) if path else None,
        root=str(path.parent.resolve()) if path else str(Path.cwd()),
    )


def _rule_options(raw: dict, where: str) -> dict[str, dict[str, Any]]:
    from nanlint.rules import all_rules

    rules = all_rules()
    by_name = {cls.doc.name: code for code, cls in rules.items()}
    out: dict[str, dict[str, Any]] = {}
    for key, options in raw.items():
        code = key.upper() if key.upper() in rules else by_name.get(key)
        if code is None:
            raise ConfigError(f"{where}: `rules.{key}`: unknown rule")
        defaults = rules[code].default_options
        for name, value in options.items():
            if name not in defaults:
                known = ", ".join(sorted(defaults)) or "none"
                raise ConfigError(f"{where}: `rules.{key}.{name}`: unknown option (options of {code}: {known})")
            expected = type(defaults[name])
            ok = isinstance(value, expected) or (expected is float and isinstance(value, int) and not isinstance(value, bool))
            if not ok or (expected is int and isinstance(value, bool)):
                raise ConfigError(f"{where}: `rules.{key}.{name}` must be {expected.__name__}, got {value!r}")
        out[code] = {**out.get(code, {}), **options}
    return out
