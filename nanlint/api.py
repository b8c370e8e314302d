"""The public Python API: ``check_source`` and ``check_paths``, and ``run``, the one call ``nanlint check``
makes to check its files."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Iterable

from nanlint.config import Config
from nanlint.discovery import STDIN, discover, excluded_by_name
from nanlint.engine import AnalysisOptions, FileResult, analyze
from nanlint.findings import Finding, InternalError
from nanlint.hierarchy import Configs
from nanlint.source import SourceText, decode, read


class AnalysisError(Exception):
    """A rule raised while checking the source given to :func:`check_source`. ``findings`` holds what the
    other rules found, ``errors`` what failed."""

    def __init__(self, errors: list[InternalError], findings: list[Finding]):
        self.errors = errors
        self.findings = findings
        super().__init__("; ".join(f"{e.filename}: rule {e.rule} failed: {e.message}" for e in errors))


def analysis_options(config: Config, filename: str) -> AnalysisOptions:
    return config.analysis_options(filename)


def analyze_text(text: str, filename: str, config: "Config | Configs") -> FileResult:
    """Analyze one decoded source text (see :func:`nanlint.engine.analyze`) with ``filename``'s
    configuration."""
    return analyze(text, filename, analysis_options(Configs.of(config).for_path(filename), filename))


def check_source(source: str | bytes, filename: str = "<stdin>", config: Config | None = None) -> list[Finding]:
    """Findings for one source text (``bytes`` are decoded as Python would, coding line included), sorted by
    position. Raises :class:`AnalysisError` if a rule fails on it."""
    config = config or Config()
    if isinstance(source, bytes):
        text = decode(source, filename)
        if text.text is None:
            return [text.problem] if text.problem else []
        source = text.text
    result = analyze_text(source, filename, config)
    if result.errors:
        raise AnalysisError(result.errors, result.findings)
    return result.findings


def check_text(text: SourceText, config: "Config | Configs") -> FileResult:
    if text.text is None:
        return FileResult(text.filename, [text.problem] if text.problem else [])
    return analyze_text(text.text, text.filename, config)


def check_file(filename: str, config: "Config | Configs") -> FileResult:
    return check_text(read(filename), config)


@dataclass
class RunResult:
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)
    files: int = 0
    stdin: SourceText | None = None  # what was read from standard input, when ``-`` was checked


def read_stdin(filename: str) -> SourceText:
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    return decode(data, filename)


def run(
    paths: Iterable[str],
    config: "Config | Configs",
    force_exclude: bool = False,
    *,
    stdin_filename: str | None = None,
    jobs: int | None = None,
    cache: bool | None = None,
    progress=None,
) -> RunResult:
    """Check every file under ``paths`` (``-`` reads standard input, reported as ``stdin_filename``);
    results sorted by path, line, column, code. ``jobs``: processes (None: one per CPU); ``cache``: use
    ``.nanlint_cache/`` (None: as configured). Files go through :mod:`nanlint.runner`."""
    from nanlint.runner import check_files

    configs = Configs.of(config)
    result = RunResult()
    filenames = []
    for filename in discover(list(paths), configs, force_exclude):
        if filename != STDIN:
            filenames.append(filename)
            continue
        shown = stdin_filename or STDIN
        result.stdin = read_stdin(shown)
        if force_exclude and stdin_filename and excluded_by_name(stdin_filename, configs):
            continue
        file_result = check_text(result.stdin, configs.for_path(stdin_filename or STDIN))
        result.files += 1
        result.findings.extend(file_result.findings)
        result.errors.extend(file_result.errors)
    for file_result in check_files(filenames, configs, jobs, cache, progress):
        result.files += 1
        result.findings.extend(file_result.findings)
        result.errors.extend(file_result.errors)
    result.findings.sort(key=Finding.sort_key)
    return result


def check_paths(paths: Iterable[str] | str, config: Config | None = None, force_exclude: bool = False) -> list[Finding]:
    """Findings for every Python file and notebook under ``paths`` (files or folders), sorted by path, line,
    column. Each file uses its closest configuration file (as ``nanlint check`` does) unless ``config`` is
    given. Raises :class:`AnalysisError` if a rule fails on one of them."""
    if isinstance(paths, str):
        paths = [paths]
    result = run(paths, Configs.of(config), force_exclude)
    if result.errors:
        raise AnalysisError(result.errors, result.findings)
    return result.findings
