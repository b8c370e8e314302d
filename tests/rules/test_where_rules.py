"""NAN241: risky ops in a branch of torch.where, and the idioms that make the operand safe first."""
from __future__ import annotations

import textwrap

import pytest

from nanlint.api import check_source
from nanlint.config import Config


def found(source: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "t.py", Config(select=("NAN241",), preview=True))
    return [(f.code, f.line) for f in findings if f.code == "NAN241"]


FLAGGED = [
    ("import torch\ndef f(z, eps=1e-8):\n    return torch.where(z.abs() > eps, 1.0 / z, torch.ones_like(z))\n", [3]),
    ("import torch\ndef f(x):\n    return torch.where(x > 0, torch.sqrt(x), torch.zeros_like(x))\n", [3]),
    ("import torch\ndef f(x):\n    return torch.where(x > 0, x.log(), x)\n", [3]),
    ("import torch\ndef f(x):\n    y = x ** 2 - 1\n    return torch.where(x > 1, y.sqrt(), 0.0)\n", [4]),
    ("import torch\ndef f(r):\n    return torch.where(r > 0.04, torch.pow((r + 0.055) / 1.055, 2.4), r / 12.92)\n", [3]),
    ("import torch\ndef f(x):\n    return torch.where(x > 1, (1 / x).arccos(), torch.where(x > 0, x.log(), 0.0))\n", [3, 3]),
    ("import torch\ndef f(x, n):\n    return torch.where(n > 0, x / n, torch.zeros_like(x))\n", [3]),
]


@pytest.mark.parametrize(("source", "lines"), FLAGGED)
def test_where_branch_flagged(source, lines):
    assert [line for _, line in found(source)] == lines


SILENT = [
    # a hazard the selected elements reach too is the other rules' (NAN101 here), not a where trap
    "import torch\ndef f(p, mask):\n    return torch.where(mask, torch.log(p.softmax(-1)), 0.0)\n",
    # the double-where idiom
    "import torch\ndef f(x):\n    ok = x > 0\n    safe_x = torch.where(ok, x, torch.ones_like(x))\n    return torch.where(ok, torch.sqrt(safe_x), 0.0)\n",
    "import torch\ndef f(x):\n    safe = torch.where(x > 0, x, 1.0)\n    return torch.where(x > 0, safe.log(), 0.0)\n",
    "import torch\ndef f(z, eps=1e-8):\n    return torch.where(z.abs() > eps, 1.0 / z.clamp_min(eps), torch.ones_like(z))\n",
    "import torch\ndef f(x):\n    return torch.where(x > 0.008856, torch.pow(x.clamp(min=0.008856), 1 / 3.0), 7.787 * x)\n",
    "import torch\ndef f(x):\n    return torch.where(x > 0, x * 2, x / 12.92)\n",
    "import torch\ndef f(x, y):\n    return torch.where(x > 0, x, y)\n",
    "import numpy as np\ndef f(x):\n    return np.where(x > 0, np.sqrt(x), 0.0)\n",
    "import torch\ndef f(x):\n    return torch.where(x > 0)\n",
    "import torch\n@torch.no_grad()\ndef f(w, g):\n    return torch.where(g > 0, w / g, 1.0)\n",
]


@pytest.mark.parametrize("source", SILENT)
def test_where_branch_silent(source):
    assert found(source) == []


def test_where_trap_message_names_the_where_line():
    source = "import torch\ndef f(x):\n    return torch.where(\n        x > 0.01,\n        torch.pow(x, 1 / 3),\n        x,\n    )\n"
    (finding,) = check_source(source, "t.py", Config(select=("NAN241",)))
    assert finding.line == 5 and "`where` (line 3)" in finding.message


def test_division_rule_leaves_where_branch_to_nan241():
    source = "import torch\ndef f(x, mask):\n    n = mask.sum()\n    return torch.where(n > 0, x / n, 0.0)\n"
    codes = [f.code for f in check_source(source, "t.py", Config(select=("NAN2",)))]
    assert codes == ["NAN241"]


def test_where_branch_without_gradient_is_silent():
    # sam2's stability score: both sides of the division count a comparison, so no gradient flows through the
    # branch, and the where keeps the forward value finite
    source = (
        "import torch\nfrom torch import nn\nclass Decoder(nn.Module):\n    def scores(self, mask_logits, delta):\n"
        "        area_i = torch.sum(mask_logits > delta, dim=-1).float()\n"
        "        area_u = torch.sum(mask_logits > -delta, dim=-1).float()\n"
        "        return torch.where(area_u > 0, area_i / area_u, 1.0)\n"
    )
    assert [f.code for f in check_source(source, "t.py", Config(select=("NAN241", "NAN201"), preview=True))] == []


def test_where_branch_with_a_differentiable_numerator_still_flagged():
    source = (
        "import torch\nfrom torch import nn\nclass Decoder(nn.Module):\n    def scores(self, mask_logits, delta):\n"
        "        inter = torch.sum(mask_logits.sigmoid(), dim=-1)\n"
        "        area_u = torch.sum(mask_logits > -delta, dim=-1).float()\n"
        "        return torch.where(area_u > 0, inter / area_u, 1.0)\n"
    )
    assert [(f.code, f.line) for f in check_source(source, "t.py", Config(select=("NAN241",)))] == [("NAN241", 7)]


def test_one_finding_per_branch_names_the_other_risky_ops():
    source = "import torch\ndef f(x):\n    return torch.where(x > 1, (1 / x).arccos(), 0.0)\n"
    findings = [f for f in check_source(source, "t.py", Config(select=("NAN241",))) if f.code == "NAN241"]
    assert len(findings) == 1
    assert "`acos`" in findings[0].message
