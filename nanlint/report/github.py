"""``--output-format github``: GitHub Actions workflow commands, one annotation per finding
(``::error file=..,line=..,col=..,endLine=..,endColumn=..,title=..::message``). Severity maps to the
command: error -> ``error``, warning -> ``warning``, info -> ``notice``."""
from __future__ import annotations

from nanlint.findings import Finding
from nanlint.report.locations import Locations

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    out = []
    where = Locations(sources)
    for f in findings:
        line, column, end_line, end_column = where.region(f.filename, f.span.line, f.span.column, f.span.end_line, f.span.end_column)
        props = [
            f"file={_escape_property(f.filename)}",
            f"line={line}",
            f"col={column}",
            f"endLine={end_line}",
            f"endColumn={end_column}",
            f"title={_escape_property(f'nanlint ({f.code})')}",
        ]
        message = _escape_data(f"{where.prefix(f)} {f.code} {where.message(f)}")
        out.append(f"::{COMMANDS[f.severity.value]} {','.join(props)}::{message}\n")
    return "".join(out)
