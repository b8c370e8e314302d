"""A stable JSON schema (documented in the README): a list of objects, one per finding."""
from __future__ import annotations

import json

from nanlint.findings import Finding

DOCS_URL = "https://github.com/nanlint/nanlint/blob/main/rules/{code}-{name}.toml"


def finding_to_json(f: Finding) -> dict:
    fix = None
    if f.fix is not None:
        fix = {
            "message": f.fix.message,
            "applicability": f.fix.applicability.value,
            "edits": [
                {
                    "content": e.content,
                    "location": {"row": e.span.line, "column": e.span.column},
                    "end_location": {"row": e.span.end_line, "column": e.span.end_column},
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
        "location": {"row": f.span.line, "column": f.span.column},
        "end_location": {"row": f.span.end_line, "column": f.span.end_column},
        "fix": fix,
        "hint": f.hint,
        "docs": f"nanlint rule {f.code}",
    }


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    return json.dumps([finding_to_json(f) for f in findings], indent=2) + "\n"
