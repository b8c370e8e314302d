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


# ---- safe fixes never change behaviour (regressions) ----

import os
import shutil
import subprocess
import textwrap

import pytest
from click.testing import CliRunner

from nanlint.api import check_source
from nanlint.cli import main
from nanlint.config import Config
from nanlint.fixes import diff_bytes, fix_diff
from nanlint.source import decode


def _fix(code: str, source: str, unsafe: bool = False) -> tuple[str, list]:
    text = textwrap.dedent(source).lstrip("\n")
    findings = [f for f in check_source(text, "t.py", Config(select=(code,), preview=True)) if f.code == code]
    assert findings, f"{code} does not fire on the case"
    return apply_edits(text, findings, unsafe=unsafe)[0], findings


def _no_fix(code: str, source: str) -> None:
    text, findings = _fix(code, source, unsafe=True)
    assert text == textwrap.dedent(source).lstrip("\n"), f"a fix was applied: {text}"
    assert all(f.fix is None for f in findings)


KEEPS_ARGUMENTS = [
    ("NAN101", """
        import torch
        import torch.nn.functional as F

        def f(x, buf):
            return torch.log(F.softmax(x, -1), out=buf)
        """),
    ("NAN101", """
        import torch
        import torch.nn.functional as F

        def f(x, buf):
            return torch.log(torch.sigmoid(x, out=buf))
        """),
    ("NAN101", """
        import numpy as np
        import torch

        def f(x):
            return np.log(torch.softmax(x, -1))
        """),
    ("NAN103", """
        import torch
        import torch.nn.functional as F

        def f(x, buf):
            return torch.log1p(torch.exp(x), out=buf)
        """),
    ("NAN103", """
        import torch
        import torch.nn.functional as F

        def f(x, buf):
            return torch.log(1 + torch.exp(x, out=buf))
        """),
    ("NAN103", """
        import torch
        import torch.nn.functional as F

        def f(x):
            return torch.log(torch.exp(x).add(1, alpha=2))
        """),
    ("NAN103", """
        import numpy as np

        def f(x, m):
            return np.log(1 + np.exp(x), where=m)
        """),
    ("NAN103", """
        import torch
        import torch.nn.functional as F

        def f(x):
            e = torch.exp(x)
            x = x * 0
            return torch.log(1 + e)
        """),
    ("NAN303", """
        import torch

        def f(x, buf):
            return torch.log(torch.sum(torch.exp(x), dim=-1), out=buf)
        """),
    ("NAN303", """
        import torch

        def f(x, buf):
            return torch.log(torch.sum(torch.exp(x, out=buf), dim=-1))
        """),
    ("NAN303", """
        import torch

        def f(x):
            return torch.log(torch.sum(torch.exp(x), dim=-1, dtype=torch.float64))
        """),
    ("NAN105", """
        import torch

        def f(rate, buf):
            return torch.log(1 + rate, out=buf)
        """),
]


@pytest.mark.parametrize(("code", "source"), KEEPS_ARGUMENTS)
def test_no_safe_fix_drops_an_argument(code, source):
    _no_fix(code, source)


def test_fix_never_uses_an_f_imported_only_in_another_function():
    text, _ = _fix("NAN101", """
        import torch

        def helper():
            import torch.nn.functional as F
            return F

        def f(x):
            return torch.log(torch.sigmoid(x))
        """)
    assert "return torch.nn.functional.logsigmoid(x)" in text


def test_fix_never_uses_a_parameter_named_f():
    text, _ = _fix("NAN101", """
        import torch
        import torch.nn.functional as F

        def f(x, F):
            return torch.log(torch.sigmoid(x))

        def g(x):
            return torch.log(torch.sigmoid(x))
        """)
    assert "def f(x, F):\n    return torch.nn.functional.logsigmoid(x)" in text
    assert "def g(x):\n    return F.logsigmoid(x)" in text


SHADOWED = [
    # F bound in the function, a comprehension, a lambda, the class body, or rebound at module level; torch not
    # imported (or shadowed) to fall back on
    """
    import torch.nn.functional as F

    def f(x):
        F = object()
        return x.sigmoid().log()
    """,
    """
    import torch.nn.functional as F

    def f(xs):
        return [x.sigmoid().log() for F in xs for x in F]
    """,
    """
    import torch.nn.functional as F

    g = lambda x, F: x.sigmoid().log()
    """,
    """
    import torch.nn.functional as F

    class M:
        F = None
        y = w.sigmoid().log()
    """,
    """
    import torch.nn.functional as F

    F = None

    def f(x):
        return x.sigmoid().log()
    """,
    """
    import torch

    def f(x, torch):
        return x.sigmoid().log()
    """,
    """
    def f(x):
        import torch
        return torch.log(torch.sigmoid(x))
    """,
    """
    try:
        import torch.nn.functional as F
    except ImportError:
        F = None

    def f(x):
        return x.sigmoid().log()
    """,
    """
    import torch.nn.functional as F

    def f(x):
        global F
        return x.sigmoid().log()
    """,
]


@pytest.mark.parametrize("source", SHADOWED)
def test_no_fix_through_a_shadowed_or_unbound_name(source):
    _no_fix("NAN101", source)


def test_method_in_a_class_with_an_f_attribute_still_sees_the_module_f():
    text, _ = _fix("NAN101", """
        import torch.nn.functional as F

        class M:
            F = None

            def forward(self, x):
                return x.sigmoid().log()
        """)
    assert "return F.logsigmoid(x)" in text


def test_reused_module_name_must_be_the_module():
    # the resolver maps F to torch.nn.functional (imported in another function); here F is a parameter
    _no_fix("NAN101", """
        import torch

        def helper():
            import torch.nn.functional as F

        def f(x, F):
            return torch.log(F.softmax(x, -1))
        """)


NOT_FLOATING = [
    "z = torch.view_as_complex(z)\n    return torch.log1p(torch.exp(z))",
    "z = z.long()\n    return torch.log1p(torch.exp(z))",
    "z = torch.zeros(3, dtype=torch.cfloat) + z\n    return torch.log(1 + torch.exp(z))",
    "return torch.log1p(torch.exp(torch.fft.fft(z)))",
    "z = torch.tensor([1, 2, 3]) * n\n    return torch.log(1 + torch.exp(z))",
    "z = torch.arange(n) * n\n    return torch.log(1 + torch.exp(z))",
    "z = torch.randint(0, n, (3,))\n    return torch.log(1 + torch.exp(z))",
    "return torch.log(1 + torch.exp(z.to(torch.int64)))",
    "return torch.log(1 + torch.exp(z * 1j))",
    "return torch.log(1 + torch.exp(z // n))",
]


@pytest.mark.parametrize("body", NOT_FLOATING)
def test_no_softplus_for_complex_or_integer_values(body):
    source = "import torch\nimport torch.nn.functional as F\n\ndef f(z, n):\n    " + body + "\n"
    text, findings = _fix("NAN103", source)
    assert text == source and all(f.fix is None for f in findings)


@pytest.mark.parametrize("body", ["z = z.float()\n    return torch.log(1 + torch.exp(z))", "return torch.log1p(torch.exp(z * n))"])
def test_softplus_for_floating_or_unknown_values(body):
    source = "import torch\nimport torch.nn.functional as F\n\ndef f(z, n):\n    " + body + "\n"
    text, _ = _fix("NAN103", source)
    assert "F.softplus(z" in text


def test_softplus_is_not_implemented_for_complex_and_integer_tensors():
    import torch
    import torch.nn.functional as F

    for z in (torch.randn(3, dtype=torch.cfloat), torch.arange(3)):
        torch.log1p(torch.exp(z))  # the original works
        with pytest.raises((NotImplementedError, RuntimeError)):
            F.softplus(z)


def test_no_logsigmoid_for_integer_values():
    _no_fix("NAN101", """
        import torch
        import torch.nn.functional as F

        def f(labels):
            k = labels.long()
            return torch.log(torch.sigmoid(k))
        """)


def test_no_numpy_logaddexp_for_complex_values():
    _no_fix("NAN103", """
        import numpy as np

        def f(x):
            z = x.astype(np.complex64)
            return np.log(1 + np.exp(z))
        """)


def test_a_comment_inside_the_rewritten_call_blocks_the_fix():
    _no_fix("NAN101", """
        import torch

        def f(x):
            return torch.log(  # why
                torch.softmax(x, -1)  # keep
            )
        """)
    _no_fix("NAN103", """
        import torch
        import torch.nn.functional as F

        def f(x):
            return torch.log(1 + torch.exp(  # overflows
                x))
        """)


def test_a_comment_the_rewrite_carries_is_kept_with_its_indentation():
    text, _ = _fix("NAN101", """
        import torch

        def f(x):
            return torch.log(torch.softmax(x,  # c
                -1))
        """)
    assert text.endswith("    return torch.log_softmax(x,  # c\n        -1)\n")


NORMS = [
    ("x / torch.linalg.norm(x, ord=1, dim=-1, keepdim=True)", None),
    ("x / x.norm(p=1, dim=-1, keepdim=True)", None),
    ("x / x.norm(1, -1, True)", None),
    ("x / torch.linalg.vector_norm(x, ord=float('inf'), dim=-1, keepdim=True)", None),
    ("x / torch.norm(x, p='fro', dim=-1, keepdim=True)", None),
    ("x / torch.linalg.norm(x, ord=2, dim=(-2, -1), keepdim=True)", None),
    ("x / x.norm(dim=-1, keepdim=True, dtype=torch.float64)", None),
    ("x / x.norm(dim=-1, keepdim=True)", "F.normalize(x, dim=-1)"),
    ("x / x.norm(2, -1, True)", "F.normalize(x, dim=-1)"),
    ("x / torch.linalg.norm(x, dim=-1, keepdim=True)", "F.normalize(x, dim=-1)"),
    ("x / torch.linalg.vector_norm(x, 2, dim=-1, keepdim=True)", "F.normalize(x, dim=-1)"),
    ("x / torch.norm(x, p=2, dim=1, keepdim=True)", "F.normalize(x, dim=1)"),
]


@pytest.mark.parametrize(("division", "expected"), NORMS)
def test_normalize_fix_only_for_the_two_norm(division, expected):
    source = f"import torch\nimport torch.nn.functional as F\n\ndef f(x, mask):\n    x = x * mask.unsqueeze(-1)\n    return {division}\n"
    text, findings = _fix("NAN202", source, unsafe=True)
    if expected is None:
        assert text == source and all(f.fix is None for f in findings)
    else:
        assert text.endswith(f"    return {expected}\n")


def test_normalize_fix_matches_the_two_norm_division():
    import torch
    import torch.nn.functional as F

    x = torch.randn(4, 5, dtype=torch.float64)
    for norm in (x.norm(dim=-1, keepdim=True), x.norm(2, -1, True), torch.linalg.norm(x, dim=-1, keepdim=True),
                 torch.linalg.vector_norm(x, 2, dim=-1, keepdim=True)):
        torch.testing.assert_close(x / norm, F.normalize(x, dim=-1))
    assert not torch.allclose(x / torch.linalg.norm(x, ord=1, dim=-1, keepdim=True), F.normalize(x, dim=-1))


# ---- --diff is exactly what --fix writes ----

RISKY = "import torch\n\n\ndef f(x):\n    return torch.log(torch.softmax(x, -1))\n\n\ny = 1\n"
FIXED = "import torch\n\n\ndef f(x):\n    return torch.log_softmax(x, -1)\n\n\ny = 1\n"
LATIN1 = "# -*- coding: latin-1 -*-\nimport torch\n\n\ndef f(x):  # café\n    return torch.log(torch.softmax(x, -1))  # naïve\n"


def _variants():
    for name, newline in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
        yield name, RISKY.replace("\n", newline).encode("utf-8")
    yield "latin1", LATIN1.encode("latin-1")
    yield "latin1-crlf", LATIN1.replace("\n", "\r\n").encode("latin-1")


VARIANTS = list(_variants())


def _run(args, cwd):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, catch_exceptions=False)
    finally:
        os.chdir(old)


@pytest.mark.parametrize(("name", "data"), VARIANTS, ids=[n for n, _ in VARIANTS])
def test_diff_is_byte_for_byte_the_change_fix_writes(tmp_path, name, data):
    (tmp_path / "m.py").write_bytes(data)
    args = ["check", "m.py", "--isolated", "--no-cache", "--select", "NAN101"]
    diff = _run([*args, "--diff"], tmp_path)
    assert (tmp_path / "m.py").read_bytes() == data  # --diff writes nothing
    _run([*args, "--fix"], tmp_path)
    after = (tmp_path / "m.py").read_bytes()
    assert after != data
    assert diff.stdout_bytes == diff_bytes("m.py", data, after)


@pytest.mark.parametrize(("name", "data"), VARIANTS, ids=[n for n, _ in VARIANTS])
def test_fix_diff_is_the_diff_of_the_bytes_on_disk(name, data):
    source = decode(data, "m.py")
    findings = check_source(data, "m.py", Config(select=("NAN101",)))
    after_text, applied = apply_edits(source.text, findings)
    assert applied == 1
    after = after_text.encode(source.encoding)
    expected = FIXED if name in ("lf", "crlf", "cr") else None
    if expected is not None:
        newline = {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[name]
        assert after == expected.replace("\n", newline).encode("utf-8")
    assert fix_diff("m.py", source, source.text, after_text) == diff_bytes("m.py", data, after)


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch program")
def test_patch_applies_a_diff_of_several_files_whatever_their_line_endings(tmp_path):
    files = {f"{name}.py": data for name, data in VARIANTS}
    for filename, data in files.items():
        (tmp_path / filename).write_bytes(data)
    patch = b""
    fixed = {}
    for filename, data in files.items():
        source = decode(data, filename)
        findings = check_source(data, filename, Config(select=("NAN101",)))
        after_text, _ = apply_edits(source.text, findings)
        fixed[filename] = after_text.encode(source.encoding)
        patch += fix_diff(filename, source, source.text, after_text)
    subprocess.run(["patch", "-p1", "--binary", "-s"], input=patch, cwd=tmp_path, check=True)
    for filename, after in fixed.items():
        assert (tmp_path / filename).read_bytes() == after


def test_unified_diff_text_splits_lines_as_patch_does():
    diff = unified_diff("m.py", "a\rb = x\r", "a\rb = X\r")
    assert diff == "--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-a\rb = x\r\n\\ No newline at end of file\n+a\rb = X\r\n\\ No newline at end of file\n"
