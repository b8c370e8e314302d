"""Shared helpers for the trace tests (not a test module)."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
FIXTURES = ROOT / "tests" / "trace_fixtures"


def line_of(path: Path, text: str) -> int:
    """The 1-based line of the first line holding ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def trace(path: Path, **options):
    from nanlint.trace.session import TraceOptions, trace as run

    return run(TraceOptions(script=str(path), **options))


def origins(result):
    return [(e.filename, e.line, e.op, e.phase, e.value) for e in result.events if e.is_bug]
