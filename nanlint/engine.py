"""The engine's public face: check one file's source with :func:`analyze`.

This module stays import-light on purpose: the parsing, traversal and rule machinery (libcst, about 0.3 s
to import) lives in :mod:`nanlint.analysis` and is loaded on the first :func:`analyze` call, so a run whose
results all come from the cache never pays for it. ``FileContext`` and the other names that used to live
here are still importable from this module.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from nanlint.findings import Finding
from nanlint.options import AnalysisOptions, FileResult

if TYPE_CHECKING:
    from nanlint.analysis import FileContext  # noqa: F401


def analyze(source: str, filename: str, options: AnalysisOptions) -> FileResult:
    """Check one file's source. Never raises for any input: parse failures become NAN000 findings and
    exceptions inside rules become :class:`InternalError` entries.

    CPython compiles the file first (a tenth of libcst's parse time): what Python rejects is a NAN000 in
    Python's words and never reaches libcst, whose native parser overflows its stack (a segfault) on nesting
    that Python refuses with a ``RecursionError`` or ``MemoryError``. A file of more than ``max_file_tokens``
    tokens is a NAN001: libcst's tree and the analysis take about 4 KB of memory per token."""
    from nanlint.source import compile_error, syntax_error, too_large

    large = too_large(source, filename, options.max_file_tokens)
    if large is not None:
        return FileResult(filename, [large])
    rejected = compile_error(source, filename)
    if rejected is not None:
        return FileResult(filename, [rejected] if "NAN000" in options.codes else [])
    from nanlint.analysis import analyze as _analyze

    result = _analyze(source, filename, options, compiles=True)
    if any(f.code == "NAN000" for f in result.findings):
        result.findings = [syntax_error(source, filename, f) if f.code == "NAN000" else f for f in result.findings]
    return result


def iter_codes(findings: Iterable[Finding]) -> set[str]:
    return {f.code for f in findings}


def __getattr__(name: str):
    """``FileContext`` & co. resolve lazily from :mod:`nanlint.analysis`."""
    if name.startswith("__"):
        raise AttributeError(name)
    from nanlint import analysis

    try:
        return getattr(analysis, name)
    except AttributeError:
        raise AttributeError(f"module 'nanlint.engine' has no attribute {name!r}") from None
