"""The plain values every stage of the checker shares: what one file's analysis depends on, and what it
produced. At the bottom of the import graph: it imports nothing of nanlint but the findings."""
from __future__ import annotations

from dataclasses import dataclass, field

from nanlint.findings import Finding, InternalError


@dataclass
class FileResult:
    filename: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[InternalError] = field(default_factory=list)


@dataclass(frozen=True)
class AnalysisOptions:
    """The part of the configuration that the analysis of one file depends on."""

    codes: frozenset[str]
    rule_options: dict = field(default_factory=dict, hash=False, compare=False)
    target_precision: str | None = None
    strict: bool = False  # also report hazards reached only on degenerate inputs
    max_file_tokens: int | None = None  # larger files are reported (NAN001), not analysed; None: no limit
