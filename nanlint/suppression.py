"""``# noqa`` comments: line-level (``# noqa``, ``# noqa: NAN101, NAN2``) on the reported line or the first
line of the statement that contains it, and file-level ``# nanlint: noqa`` / ``# nanlint: noqa: NAN101``.
Comments are found with ``tokenize`` (so a ``# noqa`` inside a string does not count), and only when the
text mentions ``noqa`` at all."""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nanlint.findings import Finding, Severity, Span

if TYPE_CHECKING:
    import libcst as cst

    from nanlint.engine import FileContext

NOQA = re.compile(r"#\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:[\s,]+[A-Z]+[0-9]*)*))?", re.I)
FILE_NOQA = re.compile(r"#\s*nanlint\s*:\s*noqa(?::\s*(?P<codes>[A-Z]+[0-9]*(?:[\s,]+[A-Z]+[0-9]*)*))?", re.I)
CODE_SPLIT = re.compile(r"[\s,]+")


@dataclass
class Directive:
    line: int
    column: int
    codes: tuple[str, ...] | None  # None: bare noqa, suppresses everything
    used: set[str] = field(default_factory=set)


@dataclass
class Directives:
    lines: dict[int, Directive] = field(default_factory=dict)
    file_codes: tuple[str, ...] | None = ()  # () none; None everything

    def file_suppresses(self, code: str) -> bool:
        if self.file_codes is None:
            return True
        return any(code.startswith(prefix) for prefix in self.file_codes)


def _codes(text: str | None) -> tuple[str, ...] | None:
    if not text:
        return None
    return tuple(c.upper() for c in CODE_SPLIT.split(text.strip()) if c)


def parse(source: str) -> Directives:
    out = Directives()
    if "noqa" not in source:
        return out
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = []
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        text = token.string
        match = FILE_NOQA.search(text)
        if match:
            codes = _codes(match.group("codes"))
            if codes is None:
                out.file_codes = None
            elif out.file_codes is not None:
                out.file_codes = tuple(out.file_codes) + codes
            continue
        match = NOQA.search(text)
        if match:
            line, col = token.start
            out.lines[line] = Directive(line, col + match.start() + 1, _codes(match.group("codes")))
    return out


def _matches(directive: Directive, code: str) -> str | None:
    if directive.codes is None:
        return "*"
    for prefix in directive.codes:
        if code.startswith(prefix):
            return prefix
    return None


def apply(source: str, ctx: "FileContext", reported: list[tuple[Finding, "cst.CSTNode | None"]], enabled: frozenset[str]) -> list[Finding]:
    directives = parse(source)
    kept: list[Finding] = []
    for finding, statement in reported:
        if directives.file_suppresses(finding.code):
            continue
        lines = [finding.span.line]
        if statement is not None and directives.lines:
            first = ctx.line_of(statement)
            if first != finding.span.line:
                lines.append(first)
        suppressed = False
        for line in lines:
            directive = directives.lines.get(line)
            if directive is None:
                continue
            hit = _matches(directive, finding.code)
            if hit is not None:
                directive.used.add(hit)
                suppressed = True
                break
        if not suppressed:
            kept.append(finding)
    if "NAN002" in enabled:
        kept.extend(_unused(directives, ctx.filename))
    return kept


def _unused(directives: Directives, filename: str) -> list[Finding]:
    from nanlint.catalog import load_catalog

    known = load_catalog()
    out = []
    for directive in directives.lines.values():
        if directive.codes is None:
            if not directive.used:
                out.append(_unused_finding(filename, directive, "Unused blanket `noqa` directive"))
            continue
        unused = [c for c in directive.codes if c not in directive.used]
        unknown = [c for c in unused if c.startswith("NAN") and not any(code.startswith(c) for code in known)]
        if unknown:
            out.append(_unused_finding(filename, directive, f"Unknown rule code in `noqa`: {', '.join(unknown)}"))
        rest = [c for c in unused if c not in unknown and c.upper().startswith("NAN")]
        if rest:
            out.append(_unused_finding(filename, directive, f"Unused `noqa` directive (unused: {', '.join(rest)})"))
    return out


def _unused_finding(filename: str, directive: Directive, message: str) -> Finding:
    span = Span(directive.line, directive.column, directive.line, directive.column)
    return Finding("NAN002", "unused-noqa", message, filename, span, Severity.INFO)
