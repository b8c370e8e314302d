"""Reporters turn findings (plain values) into text; none of them knows libcst."""
from __future__ import annotations

from typing import Callable

from nanlint.report import concise, full, json_format

FORMATS: dict[str, Callable] = {
    "full": full.render,
    "concise": concise.render,
    "json": json_format.render,
}
