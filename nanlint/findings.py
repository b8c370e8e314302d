"""Findings are plain values: the engine produces them, reporters, the cache and the tracer consume them.

Nothing here knows libcst or the terminal, so findings pickle across processes and round-trip through JSON.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Confidence(str, Enum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Applicability(str, Enum):
    SAFE = "safe"
    UNSAFE = "unsafe"


@dataclass(frozen=True, order=True)
class Span:
    """1-based lines, 1-based columns; the end column is exclusive (as in ruff's JSON)."""

    line: int
    column: int
    end_line: int
    end_column: int


@dataclass(frozen=True)
class Edit:
    """Replace the text inside ``span`` with ``content``."""

    span: Span
    content: str


@dataclass(frozen=True)
class Fix:
    message: str
    edits: tuple[Edit, ...]
    applicability: Applicability = Applicability.SAFE


@dataclass(frozen=True)
class Finding:
    code: str
    name: str
    message: str
    filename: str
    span: Span
    severity: Severity = Severity.WARNING
    confidence: Confidence = Confidence.HIGH
    fix: Fix | None = None
    hint: str | None = None
    # the rule that suppressed nothing, internal errors, etc. carry no fix
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def line(self) -> int:
        return self.span.line

    @property
    def column(self) -> int:
        return self.span.column

    def sort_key(self) -> tuple:
        return (self.filename, self.span.line, self.span.column, self.code)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["confidence"] = self.confidence.value
        if self.fix is not None:
            data["fix"]["applicability"] = self.fix.applicability.value
        return data


@dataclass(frozen=True)
class InternalError:
    """A rule (or the engine) raised on one file. Reported with exit 2; other findings still count."""

    filename: str
    rule: str
    message: str
