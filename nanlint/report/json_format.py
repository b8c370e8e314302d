"""``--output-format json``: a list of objects, one per finding, in the output order. The schema is stable
(documented in the README); fields are only ever added.

    code, name, message, severity ("error" | "warning" | "info"), confidence ("high" | "medium" | "low"),
    filename, location {row, column}, end_location {row, column} (1-based; the end column is exclusive),
    fix (null or {message, applicability ("safe" | "unsafe"), edits [{content, location, end_location}]}),
    hint (null or text), docs (the command that prints the rule's documentation)
"""
from __future__ import annotations

import json

from nanlint.findings import Finding


def _point(line: int, column: int) -> dict:
    return {"row": line, "column": column}


def finding_to_json(f: Finding) -> dict:
    fix = None
    if f.fix is not None:
        fix = {
            "message": f.fix.message,
            "applicability": f.fix.applicability.value,
            "edits": [
                {
                    "content": e.content,
                    "location": _point(e.span.line, e.span.column),
                    "end_location": _point(e.span.end_line, e.span.end_column),
                }
                for e in f.fix.edits
            ],
        }
    return {
        "code": f.code,
        "name": f.name,
        "message": f.message,
        "severity": f.severity.value,
        "confidence": f.confidence.value,
        "filename": f.filename,
        "location": _point(f.span.line, f.span.column),
        "end_location": _point(f.span.end_line, f.span.end_column),
        "fix": fix,
        "hint": f.hint,
        "docs": f"nanlint rule {f.code}",
    }


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    return json.dumps([finding_to_json(f) for f in findings], indent=2) + "\n"
