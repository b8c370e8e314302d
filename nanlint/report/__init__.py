"""Reporters turn findings (plain values) into text; none of them knows libcst. Each is
``render(findings, sources, color) -> str`` where ``sources`` maps a file name to its text."""
from __future__ import annotations

from typing import Callable

from nanlint.report import concise, full, github, json_format, sarif

FORMATS: dict[str, Callable] = {
    "full": full.render,
    "concise": concise.render,
    "json": json_format.render,
    "sarif": sarif.render,
    "github": github.render,
}
# the formats that end with the human summary (``Found N problems.``)
HUMAN = frozenset({"full", "concise"})
