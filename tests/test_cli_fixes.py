"""Applying fixes: safe against unsafe, overlaps, line endings, diffs."""
from __future__ import annotations

from nanlint.findings import Applicability, Edit, Finding, Fix, Span
from nanlint.fixes import apply_edits, unified_diff


def fixing(line, column, end_column, content, applicability=Applicability.SAFE, end_line=None):
    span = Span(line, column, end_line or line, end_column)
    return Finding("NAN101", "log-of-probability", "m", "m.py", span, fix=Fix("f", (Edit(span, content),), applicability))


def test_safe_fixes_only_unless_unsafe():
    text = "a = x\nb = y\n"
    findings = [fixing(1, 5, 6, "X"), fixing(2, 5, 6, "Y", Applicability.UNSAFE)]
    assert apply_edits(text, findings) == ("a = X\nb = y\n", 1)
    assert apply_edits(text, findings, unsafe=True) == ("a = X\nb = Y\n", 2)


def test_overlapping_fix_waits_for_the_next_round():
    text = "value = f(g(x))\n"
    outer, inner = fixing(1, 9, 16, "F(g(x))"), fixing(1, 11, 15, "G(x)")
    assert apply_edits(text, [outer, inner]) == ("value = F(g(x))\n", 1)


def test_offsets_follow_python_line_breaks_not_str_splitlines():
    text = "a = 1\r\n\fb = 2\r\nc = x\n"
    assert apply_edits(text, [fixing(3, 5, 6, "X")]) == ("a = 1\r\n\fb = 2\r\nc = X\n", 1)


def test_multi_line_edit():
    text = "y = f(\n    x,\n)\nz = 1\n"
    assert apply_edits(text, [fixing(1, 5, 2, "g(x)", end_line=3)]) == ("y = g(x)\nz = 1\n", 1)


def test_unified_diff_marks_a_missing_final_newline():
    diff = unified_diff("m.py", "a = x", "a = X")
    assert diff.splitlines() == ["--- a/m.py", "+++ b/m.py", "@@ -1 +1 @@", "-a = x", "\\ No newline at end of file", "+a = X", "\\ No newline at end of file"]
