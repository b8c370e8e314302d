"""``--output-format sarif``: SARIF 2.1.0, as GitHub code scanning accepts it. Every catalog rule is listed
with its metadata and documentation; file locations are URIs relative to the current directory
(``uriBaseId`` ``%SRCROOT%``), the form code scanning maps onto the repository."""
from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

from nanlint import __version__
from nanlint.catalog import load_catalog
from nanlint.findings import Finding
from nanlint.report.locations import Locations

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
LEVELS = {"error": "error", "warning": "warning", "info": "note"}
PROBLEM_SEVERITY = {"error": "error", "warning": "warning", "info": "recommendation"}
ROOT = "%SRCROOT%"


def _artifact(filename: str) -> dict:
    """A relative URI below the current directory, else an absolute ``file://`` URI."""
    cwd = Path.cwd()
    absolute = Path(os.path.abspath(filename))
    try:
        relative = absolute.relative_to(cwd)
    except ValueError:
        return {"uri": absolute.as_uri()}
    return {"uri": quote(os.fsencode(relative.as_posix())), "uriBaseId": ROOT}  # any bytes the file system allows


def _region(line: int, column: int, end_line: int, end_column: int) -> dict:
    return {"startLine": line, "startColumn": column, "endLine": end_line, "endColumn": max(end_column, 1)}


def _rules() -> tuple[list[dict], dict[str, int]]:
    rules, index = [], {}
    for i, (code, doc) in enumerate(load_catalog().items()):
        index[code] = i
        rules.append({
            "id": code,
            "name": doc.name,
            "shortDescription": {"text": doc.summary},
            "fullDescription": {"text": doc.what_it_does.strip()},
            "help": {"text": doc.render(), "markdown": doc.render()},
            "defaultConfiguration": {"level": LEVELS[doc.severity], "enabled": doc.default == "on"},
            "properties": {
                "tags": ["nanlint", doc.family],
                "problem.severity": PROBLEM_SEVERITY[doc.severity],
            },
        })
    return rules, index


def _result(f: Finding, index: dict[str, int], where: Locations) -> dict:
    def region(span) -> dict:
        return _region(*where.region(f.filename, span.line, span.column, span.end_line, span.end_column))

    location = {"physicalLocation": {
        "artifactLocation": _artifact(f.filename),
        "region": region(f.span),
    }}
    result = {
        "ruleId": f.code,
        "level": LEVELS[f.severity.value],
        "message": {"text": where.message(f) + (f" (help: {f.hint})" if f.hint else "")},
        "locations": [location],
        "properties": {"confidence": f.confidence.value},
    }
    cell = where.cell(f)
    if cell is not None:  # rows are within the notebook's cell
        result["properties"]["cell"] = cell
    if f.code in index:
        result["ruleIndex"] = index[f.code]
    if f.fix is not None:
        result["fixes"] = [{
            "description": {"text": f.fix.message},
            "artifactChanges": [{
                "artifactLocation": _artifact(f.filename),
                "replacements": [
                    {
                        "deletedRegion": region(e.span),
                        "insertedContent": {"text": e.content},
                    }
                    for e in f.fix.edits
                ],
            }],
            "properties": {"applicability": f.fix.applicability.value},
        }]
    return result


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    rules, index = _rules()
    where = Locations(sources)
    log = {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "nanlint",
                "version": __version__,
                "semanticVersion": __version__,
                "informationUri": "https://pypi.org/project/nanlint/",
                "rules": rules,
            }},
            "originalUriBaseIds": {ROOT: {"uri": Path.cwd().as_uri().rstrip("/") + "/"}},
            "columnKind": "unicodeCodePoints",
            "results": [_result(f, index, where) for f in findings],
        }],
    }
    return json.dumps(log, indent=2) + "\n"
