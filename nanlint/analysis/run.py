"""Analysis of one file: a pure function of its source text and the effective configuration.

Parse with libcst, walk the tree once calling every enabled rule's visitors (the values they ask about are
evaluated lazily by :mod:`nanlint.analysis.evaluate`), then drop suppressed findings. Positions are computed
only when something is reported. :mod:`nanlint.engine` is the import-light face of this module.
"""
from __future__ import annotations

import contextlib
import sys
import threading
import warnings

import libcst as cst

from nanlint import suppression
from nanlint.analysis.context import FileContext
from nanlint.analysis.walker import Walker
from nanlint.findings import Finding, InternalError, Severity, Span
from nanlint.options import AnalysisOptions, FileResult
from nanlint.rules import all_rules
from nanlint.rules.base import may_fire


@contextlib.contextmanager
def _deep_recursion(limit: int = 20000):
    """Python 3.11+ runs Python-to-Python calls without growing the C stack, so a long chain of ``+`` in a
    generated file can be walked with a higher recursion limit than the default 1000."""
    old = sys.getrecursionlimit()
    if sys.version_info >= (3, 11) and old < limit:
        sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _syntax_error_finding(filename: str, exc: cst.ParserSyntaxError) -> Finding:
    message = exc.message.strip().splitlines()[0] if exc.message else "invalid syntax"
    line, column = max(exc.raw_line, 1), exc.raw_column + 1
    return Finding(
        code="NAN000",
        name="syntax-error",
        message=f"SyntaxError: {message}",
        filename=filename,
        span=Span(line, column, line, column),
        severity=Severity.ERROR,
    )


_PARSE_LOCK = threading.Lock()


def _no_validation(self: cst.CSTNode) -> None:
    return None


def parse_without_validation(source: str) -> cst.Module:
    """``cst.parse_module`` without re-validating every node the parser builds (about a tenth of the parse
    time; libcst's own comment on ``CSTNode.__post_init__`` calls that work avoidable when parsing): the
    parser only builds valid trees. Nodes created outside this call are validated as usual."""
    with _PARSE_LOCK:
        original = cst.CSTNode.__post_init__
        cst.CSTNode.__post_init__ = _no_validation  # type: ignore[method-assign]
        try:
            return cst.parse_module(source)
        finally:
            cst.CSTNode.__post_init__ = original  # type: ignore[method-assign]


def analyze(source: str, filename: str, options: AnalysisOptions, compiles: bool = False) -> FileResult:
    """Check one file's source. Never raises for any input: parse failures become NAN000 findings and
    exceptions inside rules become :class:`InternalError` entries.

    Rules whose ``triggers`` do not occur in the text cannot fire and are not run; when no enabled rule
    can fire, the libcst parse is skipped and CPython's parser checks the syntax (see :func:`_syntax_ok`);
    ``compiles``: the caller knows CPython compiles ``source``."""
    result = FileResult(filename)
    rule_classes = all_rules()
    enabled = [(code, cls) for code, cls in rule_classes.items() if code in options.codes]
    active = [(code, cls) for code, cls in enabled if may_fire(cls, source)]
    if not active and (compiles or _syntax_ok(source, filename)):
        result.findings.extend(_unsuppressed(source, _NoTree(filename), [], options.codes))
        return result
    try:
        module = parse_without_validation(source)
    except cst.ParserSyntaxError as exc:
        if "NAN000" in options.codes:
            result.findings.append(_syntax_error_finding(filename, exc))
        return result
    except (RecursionError, MemoryError, ValueError) as exc:
        result.findings.append(
            Finding("NAN000", "syntax-error", f"could not parse: {type(exc).__name__}", filename, Span(1, 1, 1, 1), Severity.ERROR)
        )
        return result
    ctx = FileContext(source, filename, module, options)
    rules = [cls(ctx, options.rule_options.get(code)) for code, cls in active]
    if rules:
        walker = Walker(ctx, rules, result.errors)
        with _deep_recursion():
            try:
                walker.walk(module)
            except RecursionError:
                result.errors.append(InternalError(filename, "engine", "RecursionError: the file nests too deeply to analyze"))
    result.findings.extend(_unsuppressed(source, ctx, ctx.findings, options.codes))
    return result


def _unsuppressed(source: str, ctx, reported: list, codes: frozenset[str]) -> list[Finding]:
    """The findings ``# noqa`` leaves, sorted. Reading the directives tokenizes the whole file (a fifth of
    the parse time on torch's sources), so it is skipped when there is nothing to suppress, NAN002 (unused
    ``noqa``) is off and no comment can be an invalid ``noqa`` (NAN003): the answer is empty then anyway."""
    if not reported and "NAN002" not in codes and ("NAN003" not in codes or not suppression.MENTIONS_NOQA.search(source)):
        return []
    return sorted(suppression.apply(source, ctx, reported, codes), key=Finding.sort_key)


class _NoTree:
    """The context suppression sees when no rule ran (it only needs the file name then)."""

    def __init__(self, filename: str):
        self.filename = filename

    def line_of(self, node):  # pragma: no cover - never called: nothing was reported
        raise AssertionError("no findings without a tree")


def _syntax_ok(source: str, filename: str) -> bool:
    """Whether CPython compiles ``source``. Used only to decide that the libcst parse may be skipped: a
    file CPython rejects still goes through libcst, so NAN000 findings keep libcst's exact message and
    position. What is guaranteed: a file libcst rejects is reported unless CPython accepts it (libcst
    grammar gaps; none known for the syntax of the running CPython); a file both accept is never reported.
    Errors of the compiler proper (``return`` outside a function, ...) also send the file to libcst."""
    try:
        with warnings.catch_warnings():  # invalid escapes etc. must not print SyntaxWarnings
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", dont_inherit=True)  # bytecode: 3x faster than building an ast
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True
