"""Helpers shared by the rule test modules: run one rule (preview included) over a dedented snippet."""
from __future__ import annotations

import textwrap

from nanlint.api import check_source
from nanlint.config import Config


def findings(code: str, source: str, **config):
    """Findings of rule ``code`` alone over ``source`` (dedented, leading blank lines dropped)."""
    return check_source(textwrap.dedent(source).lstrip("\n"), "case.py", Config(select=(code,), preview=True, **config))


def hits(code: str, source: str, **config) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in findings(code, source, **config)]


def found(source: str, code: str) -> list[tuple[str, int]]:
    """``(code, line)`` of rule ``code``'s findings over ``source``, dedented with its lines kept in place."""
    result = check_source(textwrap.dedent(source), "t.py", Config(select=(code,), preview=True))
    return [(f.code, f.line) for f in result if f.code == code]
