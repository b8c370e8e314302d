"""``# noqa`` comments, with ruff's syntax.

- line level: ``# noqa`` (everything) or ``# noqa: NAN101, NAN2`` (codes or prefixes) on the reported line,
  or on the first line of the statement that contains it (for calls spread over several lines);
- file level: ``# nanlint: noqa`` (everything) or ``# nanlint: noqa: NAN101`` anywhere in the file.

A list holds codes (any tool's) and nanlint rule names (``log-of-probability``), exactly; text after it is an
explanation. A list that cannot be read (``# noqa:``, ``# noqa: type-ignore``, ``# noqa: NAN1O1``) suppresses
nothing and is reported (NAN003): it is never taken for a blanket ``noqa`` or a prefix.

Comments are found with ``tokenize``, so a ``# noqa`` inside a string does not count. Codes that are not
nanlint's (``E501``, ``F401``) are kept for other tools and never reported; with NAN002 enabled, directives
that suppressed nothing, and nanlint codes that no rule has, are reported.
"""
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

NOQA = re.compile(r"#\s*noqa(?![\w-])", re.I)
FILE_NOQA = re.compile(r"#\s*nanlint\s*:\s*noqa(?![\w-])", re.I)
CODE = re.compile(r"[A-Za-z]+[0-9]+")
ITEM = re.compile(r"[^\s,#]+")
MENTIONS_NOQA = re.compile(r"noqa", re.I)
OWN_PREFIX = "NAN"


@dataclass
class Directive:
    line: int
    column: int  # 1-based column of the ``#``
    end_column: int
    codes: tuple[str, ...] | None  # None: blanket, suppresses everything
    used: set[str] = field(default_factory=set)  # the codes (or "*") that suppressed something
    malformed: str | None = None  # why the list cannot be read (then ``codes`` is empty)
    unknown: list[str] = field(default_factory=list)  # NAN codes in the list that no rule has, explained


@dataclass
class Directives:
    lines: dict[int, Directive] = field(default_factory=dict)
    files: list[Directive] = field(default_factory=list)  # ``# nanlint: noqa`` comments

    def file_directive_for(self, code: str) -> tuple[Directive, str] | None:
        for directive in self.files:
            hit = _matches(directive, code)
            if hit is not None:
                return directive, hit
        return None


def _read_list(tail: str) -> tuple[tuple[str, ...] | None, str | None, list[str]]:
    """(codes, why malformed, what is unknown) of what follows ``noqa`` in a comment: None codes for a
    blanket directive; unknown: a ``NAN`` code no rule has, with the closest one."""
    stripped = tail.lstrip()
    if not stripped.startswith(":"):
        return None, None, []
    from nanlint.catalog import load_catalog

    catalog = load_catalog()
    names = {doc.name: code for code, doc in catalog.items()}
    codes: list[str] = []
    unknown: list[str] = []
    for match in ITEM.finditer(stripped[1:].split("#", 1)[0]):
        item = match.group()
        if CODE.fullmatch(item):
            code = item.upper()
            codes.append(code)
            if code.startswith(OWN_PREFIX) and not any(known.startswith(code) for known in catalog):
                unknown.append(f"`{item}` is not a nanlint rule code{_closest(code, list(catalog))}")
        elif item in names:
            codes.append(names[item])
        elif not codes:
            return (), f"`{item}` is neither a rule code nor a nanlint rule name{_closest(item, [*names, *catalog])}", []
        elif item.upper().startswith(OWN_PREFIX):
            return (), f"`{item}` is not a nanlint rule code{_closest(item.upper(), list(catalog))}", []
        else:
            break  # an explanation follows the list
    if not codes:
        return (), "the list of codes after `noqa:` is empty", []
    return tuple(codes), None, unknown


def _closest(wrong: str, choices: list[str]) -> str:
    import difflib

    if wrong[:3].upper() == OWN_PREFIX:  # the usual typos of a code: O for 0, I or l for 1
        digits = wrong[:3].upper() + wrong[3:].upper().translate(str.maketrans("OIL", "011"))
        if digits in choices:
            return f" (did you mean `{digits}`?)"
    found = difflib.get_close_matches(wrong, choices, n=1, cutoff=0.6)
    return f" (did you mean `{found[0]}`?)" if found else ""


def _comments(source: str):
    """(line, column, text) of every comment; tokenize errors end the scan but keep what was found."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.COMMENT:
                yield token.start[0], token.start[1], token.string
    except (tokenize.TokenError, SyntaxError, ValueError):
        return


def parse(source: str) -> Directives:
    out = Directives()
    if not MENTIONS_NOQA.search(source):
        return out
    for line, col, text in _comments(source):
        for pattern, file_level in ((FILE_NOQA, True), (NOQA, False)):
            match = pattern.search(text)
            if match:
                codes, malformed, unknown = _read_list(text[match.end():])
                end = match.end() if codes is None else len(text.rstrip())
                directive = Directive(line, col + match.start() + 1, col + end + 1, codes, malformed=malformed,
                                      unknown=unknown)
                if file_level:
                    out.files.append(directive)
                else:
                    out.lines[line] = directive
                break
    return out


def _matches(directive: Directive, code: str) -> str | None:
    """What in ``directive`` covers ``code``: "*" for a blanket one, else the matching code or prefix."""
    if directive.codes is None:
        return "*"
    for prefix in directive.codes:
        if code.startswith(prefix):
            return prefix
    return None


def apply(source: str, ctx: "FileContext", reported: list[tuple[Finding, "cst.CSTNode | None"]], enabled: frozenset[str]) -> list[Finding]:
    """The findings that no directive suppresses, plus NAN002 findings when that rule is enabled."""
    directives = parse(source)
    if not directives.lines and not directives.files:
        return [finding for finding, _ in reported]
    kept: list[Finding] = []
    for finding, statement in reported:
        file_hit = directives.file_directive_for(finding.code)
        if file_hit is not None:
            file_hit[0].used.add(file_hit[1])
            continue
        candidates = [finding.span.line]
        if statement is not None and directives.lines:
            first = ctx.line_of(statement)
            if first != finding.span.line:
                candidates.append(first)
        suppressed = False
        for line in candidates:
            directive = directives.lines.get(line)
            hit = _matches(directive, finding.code) if directive is not None else None
            if hit is not None:
                directive.used.add(hit)
                suppressed = True
                break
        if not suppressed:
            kept.append(finding)
    if "NAN002" in enabled and directives.file_directive_for("NAN002") is None:
        kept.extend(unused(directives, ctx.filename, enabled))
    if "NAN003" in enabled:
        kept.extend(invalid(directives, ctx.filename))
    return kept


def invalid(directives: Directives, filename: str) -> list[Finding]:
    """NAN003 findings: one per directive whose list cannot be read or names a code no rule has."""
    out = []
    for directive in [*directives.lines.values(), *directives.files]:
        kind = "file-level `# nanlint: noqa`" if directive in directives.files else "`noqa`"
        span = Span(directive.line, directive.column, directive.line, directive.end_column)
        if directive.malformed:
            message = f"Invalid {kind} directive, it suppresses nothing: {directive.malformed}"
        elif directive.unknown:
            message = f"Unknown code in a {kind} directive, it suppresses nothing: {'; '.join(directive.unknown)}"
        else:
            continue
        out.append(Finding("NAN003", "invalid-noqa", message, filename, span, Severity.WARNING,
                           hint="list codes or rule names: `# noqa: NAN101` or `# noqa: log-of-probability`"))
    return out


def unused(directives: Directives, filename: str, enabled: frozenset[str]) -> list[Finding]:
    """NAN002 findings: one per directive that has unused, non-enabled or unknown nanlint codes."""
    from nanlint.catalog import load_catalog

    known = load_catalog()
    out = []
    for directive in [*directives.lines.values(), *directives.files]:
        kind = "file-level `# nanlint: noqa`" if directive in directives.files else "`noqa`"
        if directive.codes is not None and _matches(directive, "NAN002") is not None:
            continue  # `# noqa: NAN002` keeps its line's directive from being reported
        if directive.codes is None:
            if not directive.used:
                out.append(_finding(filename, directive, f"Unused blanket {kind} directive"))
            continue
        parts = []
        own = [c for c in directive.codes if c.startswith(OWN_PREFIX) and c not in directive.used]
        unknown = [c for c in own if not any(code.startswith(c) for code in known)]
        disabled = [c for c in own if c not in unknown and not any(code.startswith(c) for code in enabled)]
        rest = [c for c in own if c not in unknown and c not in disabled]
        if rest:
            parts.append("unused: " + ", ".join(f"`{c}`" for c in rest))
        if disabled:
            parts.append("non-enabled: " + ", ".join(f"`{c}`" for c in disabled))
        if unknown:
            parts.append("unknown: " + ", ".join(f"`{c}`" for c in unknown))
        if parts:
            out.append(_finding(filename, directive, f"Unused {kind} directive ({'; '.join(parts)})"))
    return out


def _finding(filename: str, directive: Directive, message: str) -> Finding:
    span = Span(directive.line, directive.column, directive.line, directive.end_column)
    return Finding("NAN002", "unused-noqa", message, filename, span, Severity.INFO, hint="remove the directive or the unused codes")
