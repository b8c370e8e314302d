"""Odd but valid Python must never make the facts or the NAN1xx/NAN2xx rules raise."""
from __future__ import annotations

import pytest

from nanlint.api import analysis_options
from nanlint.config import Config
from nanlint.engine import analyze

ODD = [
    "x = y = torch.log(a.sum())\n",
    "a, *rest = torch.sqrt(x), 1, 2\nb = rest[0] / a\n",
    "def f(x):\n    (a, b), c = x, torch.std(x)\n    return a / c\n",
    "def f(x):\n    n = x.sum()\n    def g():\n        return 1 / n\n    return g\n",
    "def f(x):\n    if (n := x.norm()) > 0:\n        return x / n\n",
    "f = lambda x: x / x.norm()\n",
    "async def f(x):\n    return torch.log(await x)\n",
    "def f(x):\n    match x:\n        case [a, b]:\n            return a / b.sum()\n",
    "class A:\n    eps = 1e-8\n    def f(self, x):\n        return x / (x.std() + self.eps)\n",
    "def f(x):\n    x[x == 0] += 1\n    x[...] = 0\n    x[0:2] = 1\n    return 1 / x\n",
    "def f(x):\n    for i, (a, b) in enumerate(x):\n        x = a / b.sum()\n    return torch.where(x > 0, torch.log(x), x)\n",
    "def f(x):\n    return torch.where(x)\n",
    "def f(*args, **kwargs):\n    return torch.log(*args) / torch.sqrt(**kwargs)\n",
    "def f(x):\n    y = x\n    y = y\n    x = y\n    return torch.log(x) / x.sum()\n",
    "def f(x):\n    x = x.softmax(-1)\n    x = torch.log(x)\n    x = torch.log(x)\n    return x\n",
    "def rec(x):\n    return rec(x) / rec(x).sum()\n",
    "def f():\n    return f()[0] / f()[1]\n",
    "x = 1 / 0\ny = 2 ** -1 ** 0.5\nz = math.sqrt(1 - math.cos(0) ** 2)\n",
    "def f(x):\n    return x.where(x > 0, 0).sqrt() + torch.atan2(x[0], x[1])\n",
    "t = torch.tensor(float('nan')); u = t / t.norm(p='fro')\n",
]


@pytest.mark.parametrize("body", ODD)
def test_rules_never_raise(body):
    source = "import torch\nimport math\n" + body
    codes = Config(select=("NAN1", "NAN2"), preview=True)
    result = analyze(source, "odd.py", analysis_options(codes, "odd.py"))
    assert result.errors == []
