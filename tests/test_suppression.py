"""``# noqa`` and ``# nanlint: noqa``: what they suppress, where they must sit, and NAN002 for stale ones."""
from __future__ import annotations

import pytest

from nanlint.api import check_source
from nanlint.config import Config
from nanlint.suppression import parse

HEADER = "import torch\nimport torch.nn.functional as F\n"
HAZARD = "torch.log(F.softmax(x, dim=-1))"
ONLY_101 = Config(select=("NAN101",))
WITH_002 = Config(select=("NAN101", "NAN002"))


def codes(source: str, config: Config = ONLY_101) -> list[tuple[str, int]]:
    return [(f.code, f.line) for f in check_source(HEADER + source, "m.py", config)]


def test_unsuppressed_hazard_is_reported():
    assert codes(f"y = {HAZARD}\n") == [("NAN101", 3)]


@pytest.mark.parametrize(
    "comment",
    ["# noqa", "# noqa: NAN101", "# noqa: NAN1", "# noqa:NAN101", "#noqa: NAN101", "# NOQA: nan101",
     "# noqa: E501, NAN101", "# noqa: E501 NAN101", "# noqa: NAN101 -- p is clamped upstream",
     "# type: ignore  # noqa: NAN101"],
)
def test_noqa_on_the_reported_line_suppresses(comment):
    assert codes(f"y = {HAZARD}  {comment}\n") == []


@pytest.mark.parametrize("comment", ["# noqa: NAN102", "# noqa: NAN2", "# noqa: E501", "# no qa", "# noqa NAN2 is not a list"])
def test_noqa_for_other_codes_does_not_suppress(comment):
    # `# noqa NAN2` (no colon) is not a code list; ruff reads it as blanket, and so do we
    expected = [] if comment.startswith("# noqa NAN2") else [("NAN101", 3)]
    assert codes(f"y = {HAZARD}  {comment}\n") == expected


def test_noqa_inside_a_string_does_not_count():
    assert codes(f'y = {HAZARD}; s = "# noqa"\n') == [("NAN101", 3)]


def test_noqa_on_first_line_of_a_multi_line_statement_suppresses_a_finding_below():
    source = f"loss = compute(  # noqa: NAN101\n    a,\n    {HAZARD},\n)\n"
    assert codes(source) == []
    unsuppressed = f"loss = compute(\n    a,\n    {HAZARD},\n)\n"
    assert codes(unsuppressed) == [("NAN101", 5)]


def test_noqa_on_the_reported_line_inside_a_multi_line_statement():
    assert codes(f"loss = compute(\n    a,\n    {HAZARD},  # noqa: NAN101\n)\n") == []


def test_noqa_on_an_unrelated_line_does_not_suppress():
    assert codes(f"y = {HAZARD}\nz = 1  # noqa: NAN101\n") == [("NAN101", 3)]
    assert codes(f"# noqa: NAN101\ny = {HAZARD}\n") == [("NAN101", 4)]


def test_noqa_on_a_compound_statement_covers_its_header_only():
    source = f"def f(x):  # noqa: NAN101\n    return {HAZARD}\n"
    assert codes(source) == [("NAN101", 4)]
    header = f"if {HAZARD}.sum() > 0:  # noqa: NAN101\n    pass\n"
    assert codes(header) == []


@pytest.mark.parametrize("comment", ["# nanlint: noqa", "# nanlint: noqa: NAN101", "# nanlint: noqa: NAN1", "#nanlint:noqa"])
def test_file_level_noqa(comment):
    assert codes(f"{comment}\ny = {HAZARD}\n\nz = {HAZARD}\n") == []


def test_file_level_noqa_for_other_code_does_not_suppress():
    assert codes(f"# nanlint: noqa: NAN2\ny = {HAZARD}\n") == [("NAN101", 4)]


def test_flake8_style_file_noqa_is_not_ours():
    assert codes(f"# flake8: noqa\ny = {HAZARD}\n") == [("NAN101", 4)]


def test_parse_reads_codes_and_positions():
    directives = parse("x = 1  # noqa: NAN101, nan2 because reasons\n# nanlint: noqa: NAN3\ny = 2  # noqa\n")
    assert directives.lines[1].codes == ("NAN101", "NAN2")
    assert directives.lines[1].column == 8
    assert directives.lines[3].codes is None
    assert [d.codes for d in directives.files] == [("NAN3",)]


def test_parse_keeps_directives_before_a_tokenize_error():
    directives = parse("x = 1  # noqa: NAN101\ny = (\n")
    assert directives.lines[1].codes == ("NAN101",)


# ---- NAN002: suppressions that suppress nothing ----

def messages(source: str, config: Config = WITH_002) -> list[tuple[int, int, str]]:
    return [(f.line, f.column, f.message) for f in check_source(HEADER + source, "m.py", config) if f.code == "NAN002"]


def test_nan002_is_off_by_default():
    assert check_source(HEADER + "z = 1  # noqa: NAN101\n", "m.py", Config()) == []


def test_used_noqa_is_not_reported():
    assert messages(f"y = {HAZARD}  # noqa: NAN101\n") == []
    assert messages(f"y = {HAZARD}  # noqa\n") == []


def test_unused_blanket_noqa_is_reported_at_the_comment():
    assert messages("z = 1  # noqa\n") == [(3, 8, "Unused blanket `noqa` directive")]


def test_unused_codes_are_reported_and_other_tools_codes_left_alone():
    assert messages("z = 1  # noqa: NAN101, E501\n") == [(3, 8, "Unused `noqa` directive (unused: `NAN101`)")]
    assert messages("z = 1  # noqa: E501\n") == []


def test_partly_used_directive_reports_only_the_unused_code():
    found = messages(f"y = {HAZARD}  # noqa: NAN101, NAN000\n")
    assert found == [(3, 38, "Unused `noqa` directive (unused: `NAN000`)")]


def test_unknown_and_non_enabled_codes():
    assert messages("z = 1  # noqa: NAN999\n") == [(3, 8, "Unused `noqa` directive (unknown: `NAN999`)")]
    config = Config(select=("NAN002",))
    assert messages("z = 1  # noqa: NAN101\n", config) == [(3, 8, "Unused `noqa` directive (non-enabled: `NAN101`)")]


def test_noqa_naming_nan002_is_not_reported():
    assert messages("z = 1  # noqa: NAN101, NAN002\n") == []


def test_unused_file_level_noqa_is_reported():
    assert messages("# nanlint: noqa: NAN101\nz = 1\n") == [(3, 1, "Unused file-level `# nanlint: noqa` directive (unused: `NAN101`)")]
    assert messages(f"# nanlint: noqa: NAN101\ny = {HAZARD}\n") == []


def test_nan002_findings_are_info_and_carry_a_hint():
    finding = [f for f in check_source(HEADER + "z = 1  # noqa\n", "m.py", WITH_002) if f.code == "NAN002"][0]
    assert finding.severity.value == "info"
    assert finding.name == "unused-noqa"
    assert finding.span.end_column == finding.span.column + len("# noqa")
