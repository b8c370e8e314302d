"""``path:line:col: CODE message``, one line per finding."""
from __future__ import annotations

from nanlint.findings import Finding


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    return "".join(f"{f.filename}:{f.line}:{f.column}: {f.code} {f.message}\n" for f in findings)
