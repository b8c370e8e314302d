"""``--output-format json``: a list of objects, one per finding, in the output order. The schema is stable
(documented in the README); fields are only ever added.

    code, name, message, severity ("error" | "warning" | "info"), confidence ("high" | "medium" | "low"),
    filename, location {row, column}, end_location {row, column} (1-based; the end column is exclusive),
    fix (null or {message, applicability ("safe" | "unsafe"), edits [{content, location, end_location}]}),
    hint (null or text), docs (the command that prints the rule's documentation);
    fact, when the finding rests on a fact of the value analysis: {kind (what the value is: "count", "underflow",
    "relu", "difference", ...), tier ("plausible" or "degenerate": reached only on degenerate inputs), row (the
    line the fact came from, or null)};
    in a notebook also cell (the cell's number, counting every cell from 1), and rows are within that cell
"""
from __future__ import annotations

import json

from nanlint.findings import Finding
from nanlint.report.locations import Locations


def _point(line: int, column: int) -> dict:
    return {"row": line, "column": column}


def finding_to_json(f: Finding, where: Locations | None = None) -> dict:
    where = where or Locations({})

    def point(line: int, column: int) -> dict:
        return _point(where.point(f.filename, line)[1], column)

    fix = None
    if f.fix is not None:
        fix = {
            "message": f.fix.message,
            "applicability": f.fix.applicability.value,
            "edits": [
                {
                    "content": e.content,
                    "location": point(e.span.line, e.span.column),
                    "end_location": point(e.span.end_line, e.span.end_column),
                }
                for e in f.fix.edits
            ],
        }
    data = {
        "code": f.code,
        "name": f.name,
        "message": where.message(f),
        "severity": f.severity.value,
        "confidence": f.confidence.value,
        "filename": f.filename,
        "location": point(f.span.line, f.span.column),
        "end_location": point(f.span.end_line, f.span.end_column),
        "fix": fix,
        "hint": f.hint,
        "docs": f"nanlint rule {f.code}",
    }
    fact = f.extra.get("fact")
    if fact:
        row = fact.get("line")
        data["fact"] = {"kind": fact["kind"], "tier": fact["tier"],
                        "row": where.point(f.filename, row)[1] if row is not None else None}
    cell = where.cell(f)
    if cell is not None:
        data["cell"] = cell
    return data


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    where = Locations(sources)
    return json.dumps([finding_to_json(f, where) for f in findings], indent=2) + "\n"
