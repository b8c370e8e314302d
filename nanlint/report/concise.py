"""``path:line:col: CODE message``, one line per finding."""
from __future__ import annotations

from nanlint.findings import Applicability, Finding
from nanlint.report.locations import Locations

BOLD, RED, RESET = "\033[1m", "\033[31m", "\033[0m"


def render(findings: list[Finding], sources: dict[str, str], color: bool = False) -> str:
    out = []
    where = Locations(sources)
    for f in findings:
        location = where.prefix(f)
        code = f.code
        if color:
            location, code = f"{BOLD}{location}{RESET}", f"{RED}{BOLD}{code}{RESET}"
        fixable = " [*]" if f.fix is not None and f.fix.applicability is Applicability.SAFE else ""
        out.append(f"{location} {code}{fixable} {where.message(f)}\n")
    return "".join(out)
