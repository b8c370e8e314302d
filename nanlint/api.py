"""The public Python API: ``check_source`` and ``check_paths``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from nanlint.config import Config
from nanlint.discovery import discover
from nanlint.engine import AnalysisOptions, FileResult, analyze
from nanlint.findings import Finding, InternalError
from nanlint.source import read


def analysis_options(config: Config, filename: str) -> AnalysisOptions:
    return AnalysisOptions(
        codes=config.codes_for(filename),
        rule_options=config.rule_options,
        target_precision=config.target_precision,
    )


def check_source(source: str, filename: str = "<stdin>", config: Config | None = None) -> list[Finding]:
    """Findings for one source text, sorted by position."""
    config = config or Config()
    return analyze(source, filename, analysis_options(config, filename)).findings


def check_file(filename: str, config: Config) -> FileResult:
    text = read(filename)
    if text.text is None:
        return FileResult(filename, [text.problem] if text.problem else [])
    return analyze(text.text, filename, analysis_options(config, filename))


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    files: int = 0


def run(paths: Iterable[str], config: Config, force_exclude: bool = False, jobs: int | None = None, cache: bool | None = None) -> RunResult:
    """Check every file under ``paths``; results sorted by path, line, column, code. ``jobs``: processes
    (None: one per CPU); ``cache``: use ``.nanlint_cache/`` (None: as configured). See :mod:`nanlint.runner`."""
    from nanlint.runner import run_paths

    totals = run_paths(paths, config, force_exclude, jobs=jobs, use_cache=cache)
    return RunResult(totals.findings, totals.errors, totals.files)


def check_paths(paths: Iterable[str], config: Config | None = None, force_exclude: bool = False) -> list[Finding]:
    """Findings for every Python file under ``paths``."""
    return run(paths, config or Config(), force_exclude).findings
