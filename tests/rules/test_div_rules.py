"""NAN201-NAN203: divisions by values that can be 0, division by an own norm, means of empty selections."""
from __future__ import annotations

import textwrap

import pytest

from nanlint.api import check_source
from nanlint.config import Config
from nanlint.findings import Confidence
from nanlint.fixes import apply_edits


def found(source: str, code: str) -> list[tuple[str, int]]:
    findings = check_source(textwrap.dedent(source), "t.py", Config(select=(code,), preview=True))
    return [(f.code, f.line) for f in findings if f.code == code]


FLAGGED_201 = [
    ("import torch\ndef f(loss, mask):\n    return (loss * mask).sum(-1) / mask.sum(-1)\n", 3),
    ("import torch\ndef f(x):\n    return x / x.std()\n", 3),
    ("import numpy as np\ndef f(v):\n    return (v - np.mean(v)) / np.std(v)\n", 3),
    ("import torch\ndef f(x):\n    return torch.div(x, x.abs().max())\n", 3),
    ("import torch\ndef f(x, mask):\n    n = mask.sum()\n    x /= n\n    return x\n", 4),
    ("import torch\ndef f(x, mask):\n    return x.div_(mask.float().sum())\n", 3),
    ("import torch\ndef f(x):\n    return torch.reciprocal(torch.norm(x, dim=1))\n", 3),
    ("import torch\ndef f(x):\n    return x.var(0).reciprocal()\n", 3),
    ("def f(xs):\n    keep = [x for x in xs if x > 0]\n    return sum(keep) / len(keep)\n", 3),
    ("import torch\ndef f(x, deg):\n    return x / torch.log(deg + 1)\n", 3),
    ("import torch\nEPS = 1e-6\ndef f(z):\n    z = torch.where(torch.abs(z) > EPS, z, torch.sign(z) * EPS)\n    return 1.0 / z\n", 5),
    ("import torch\ndef f(g, w, eps):\n    curr_eps = eps * min(1, torch.sqrt(torch.mean(g * g)))\n    base = w + curr_eps\n    return g / base\n", 5),
    ("import torch\ndef f(loss, weight):\n    return torch.dot(loss, weight) / torch.sum(weight)\n", 3),
    ("import torch\nfrom audio import compute_amplitude\ndef f(w, n):\n    return w / compute_amplitude(w, n)\n", 4),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_201)
def test_division_by_maybe_zero_flagged(source, line):
    assert found(source, "NAN201") == [("NAN201", line)]


@pytest.mark.parametrize(
    ("source", "confidence"),
    [
        ("import torch\ndef f(x, mask):\n    return x / mask.sum()\n", Confidence.HIGH),
        ("import torch\ndef f(x, w):\n    return x / torch.sum(w)\n", Confidence.MEDIUM),
    ],
)
def test_division_confidence(source, confidence):
    (finding,) = check_source(source, "t.py", Config(select=("NAN201",)))
    assert finding.confidence is confidence


SILENT_201 = [
    "import torch\ndef f(loss, mask):\n    return (loss * mask).sum(-1) / mask.sum(-1).clamp_min(1)\n",
    "import torch\ndef f(loss, mask):\n    return loss.sum() / torch.clamp(mask.sum(), min=1)\n",
    "import torch\ndef f(x, eps=1e-5):\n    return (x - x.mean()) / (x.std() + eps)\n",
    "import numpy as np\ndef f(v, eps=1e-12):\n    return (v - np.mean(v)) / max(np.std(v), eps)\n",
    "import math\nimport torch\ndef f(q, k):\n    return q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))\n",
    "import torch\ndef f(x):\n    return x / x.shape[0]\n",
    "import torch\ndef f(x, xs):\n    return x / len(xs)\n",
    "import torch\ndef f(x):\n    return x / 255.0\n",
    "import torch\ndef f(x, temperature=0.07):\n    return x / temperature\n",
    "import torch\ndef f(x, mask):\n    n = mask.sum()\n    if n > 0:\n        x = x / n\n    return x\n",
    "import torch\ndef f(x, mask):\n    n = mask.sum()\n    if n == 0:\n        return x * 0\n    return x / n\n",
    "import torch\ndef f(x, mask):\n    n = mask.sum()\n    return x / n if n > 0 else x * 0\n",
    "import torch\ndef f(x, d):\n    d = torch.where(d == 0, torch.ones_like(d), d)\n    return x / d\n",
    "import torch\ndef f(x, n):\n    n = n.norm(dim=-1)\n    n[n == 0] = 1\n    return x / n\n",
    "import torch\ndef f(x):\n    v = x.norm(dim=-1, keepdim=True) + 1e-8\n    return x / v\n",
    "import torch\ndef f(x, beta):\n    return x / (1 - beta ** 2)\n",
    "import torch\ndef f(x, s):\n    return x / s ** 2\n",
    "import torch\ndef f(p, q):\n    return p / p.sigmoid().sum()\n",
    "import torch\ndef f(idx, mask):\n    return torch.div(idx, mask.sum(), rounding_mode='floor')\n",
    "import torch\ndef f(idx, mask):\n    return idx // mask.sum()\n",
    "import torch\ndef f(i, xs):\n    return i / (len(xs) - 1)\n",
]


@pytest.mark.parametrize("source", SILENT_201)
def test_division_by_maybe_zero_silent(source):
    assert found(source, "NAN201") == []


def test_division_message_names_origin():
    source = "import torch\ndef f(x, mask):\n    n = mask.sum(-1)\n    return x / n\n"
    (finding,) = check_source(source, "t.py", Config(select=("NAN201",)))
    assert "`n`, a `sum`" in finding.message and "(line 3)" in finding.message


FLAGGED_202 = [
    ("import torch\ndef f(x):\n    return x / x.norm(dim=-1, keepdim=True)\n", 3),
    ("import torch\ndef f(x):\n    return x / torch.norm(x, p=2, dim=1, keepdim=True)\n", 3),
    ("import torch\ndef f(x):\n    n = torch.linalg.vector_norm(x, dim=1, keepdim=True)\n    return x / n\n", 4),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_202)
def test_division_by_own_norm_flagged(source, line):
    assert found(source, "NAN202") == [("NAN202", line)]
    assert found(source, "NAN201") == []  # one finding per site


def test_division_by_own_norm_unsafe_fix():
    source = "import torch\nimport torch.nn.functional as F\ndef f(x):\n    return x / x.norm(dim=-1, keepdim=True)\n"
    findings = check_source(source, "t.py", Config(select=("NAN202",)))
    assert apply_edits(source, findings)[1] == 0  # not applied without --unsafe-fixes
    assert apply_edits(source, findings, unsafe=True)[0] == "import torch\nimport torch.nn.functional as F\ndef f(x):\n    return F.normalize(x, dim=-1)\n"


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\ndef f(x):\n    return F.normalize(x, dim=-1)\n",
        "import torch\ndef f(x, eps=1e-6):\n    return x / (x.norm(dim=-1, keepdim=True) + eps)\n",
        "import torch\ndef f(x):\n    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)\n",
        "import torch\ndef f(x, y):\n    return x / y.norm(dim=-1, keepdim=True).clamp_min(1e-12)\n",
    ],
)
def test_division_by_own_norm_silent(source):
    assert found(source, "NAN202") == []


FLAGGED_203 = [
    ("import torch\ndef f(loss, labels):\n    return loss[labels > 0].mean()\n", 3),
    ("import torch\ndef f(loss, labels):\n    pos = labels > 0\n    return torch.mean(loss[pos])\n", 4),
    ("import numpy as np\ndef f(x):\n    return np.mean(x[x > 0])\n", 3),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_203)
def test_mean_of_empty_selection_flagged(source, line):
    assert found(source, "NAN203") == [("NAN203", line)]


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ndef f(loss, labels):\n    pos = labels > 0\n    if pos.any():\n        return loss[pos].mean()\n    return loss.sum() * 0\n",
        "import torch\ndef f(loss, labels):\n    pos = labels > 0\n    if not pos.any():\n        return loss.sum() * 0\n    return loss[pos].mean()\n",
        "import torch\ndef f(loss):\n    return loss[:, 0].mean()\n",
        "import torch\ndef f(loss, idx):\n    return loss[idx.long()].mean()\n",
    ],
)
def test_mean_of_empty_selection_silent(source):
    assert found(source, "NAN203") == []
