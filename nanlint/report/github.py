"""``--output-format github``: GitHub Actions workflow commands, one annotation per finding
(``::error file=..,line=..,col=..,endLine=..,endColumn=..,title=..::message``). Severity maps to the
command: error -> ``error``, warning -> ``warning``, info -> ``notice``."""
from __future__ import annotations

from nanlint.findings import Finding

COMMANDS = {"error": "error", "warning": "warning", "info": "notice"}


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    out = []
    for f in findings:
        props = [
            f"file={_escape_property(f.filename)}",
            f"line={f.span.line}",
            f"col={f.span.column}",
            f"endLine={f.span.end_line}",
            f"endColumn={f.span.end_column}",
            f"title={_escape_property(f'nanlint ({f.code})')}",
        ]
        message = _escape_data(f"{f.filename}:{f.line}:{f.column}: {f.code} {f.message}")
        out.append(f"::{COMMANDS[f.severity.value]} {','.join(props)}::{message}\n")
    return "".join(out)
