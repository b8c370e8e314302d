"""NAN4xx: losses on the wrong kind of input and stacked activations, with exact codes and lines."""
from __future__ import annotations

import pytest

from nanlint.fixes import apply_edits
from rule_cases import findings, hits


FLAGGED = [
    ("NAN401", """
        import torch.nn.functional as F
        def f(z, y):
            return F.binary_cross_entropy(z.sigmoid(), y)
        """, [3]),
    ("NAN401", """
        import torch
        from torch.nn.functional import binary_cross_entropy as bce
        def f(z, y):
            p = torch.sigmoid(z)
            return bce(p, y)
        """, [5]),
    ("NAN401", """
        import torch.nn as nn
        def f(z, y):
            return nn.BCELoss()(nn.Sigmoid()(z), y)
        """, [3]),
    ("NAN401", """
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
                self.loss_fn = nn.BCELoss()
            def loss(self, x, y):
                return self.loss_fn(self.net(x), y)
        """, [6, 8]),
    ("NAN401", """
        import torch
        from torch import nn
        class M(nn.Module):
            def forward(self, x):
                return torch.sigmoid(self.fc(x))
        criterion = nn.BCELoss()
        """, [6]),
    ("NAN402", """
        import torch.nn.functional as F
        def f(x, y):
            return F.cross_entropy(x.softmax(-1), y)
        """, [3]),
    ("NAN402", """
        import torch
        from torch import nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.criterion = nn.CrossEntropyLoss()
                self.softmax = nn.Softmax(dim=1)
            def loss(self, x, y):
                probs = self.softmax(x)
                return self.criterion(probs, y)
        """, [10]),
    ("NAN403", """
        import torch
        import torch.nn.functional as F
        def f(x, y):
            return F.nll_loss(torch.softmax(x, 1), y)
        """, [4]),
    ("NAN404", """
        import torch
        def f(x):
            return torch.tanh(torch.sigmoid(x))
        """, [3]),
    ("NAN404", """
        import torch.nn as nn
        class M(nn.Module):
            def __init__(self):
                super().__init__()
                self.act = nn.Sigmoid()
            def forward(self, x):
                h = self.act(x)
                return h.sigmoid()
        """, [8]),
    ("NAN404", """
        from torch import nn
        head = nn.Sequential(nn.Sigmoid(), nn.Identity(), nn.Sigmoid(), nn.Tanh())
        """, [2, 2]),
]

SILENT = [
    ("NAN404", """
        import torch
        def route(x, cap):
            logits = torch.tanh(x / cap) * cap
            return torch.sigmoid(logits)
        """),
    ("NAN402", """
        import torch
        from torch import nn
        class XSoftmax(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, dim):
                return torch.softmax(x, dim)
        criterion = nn.CrossEntropyLoss()
        """),
    ("NAN401", """
        import torch.nn.functional as F
        def f(z, y):
            return F.binary_cross_entropy_with_logits(z, y)
        """),
    ("NAN401", """
        import torch.nn.functional as F
        def f(p, y):
            return F.binary_cross_entropy(p, y)
        """),
    ("NAN401", """
        import torch.nn.functional as F
        def f(z, y):
            return F.binary_cross_entropy(F.softmax(z, -1), y)
        """),
    ("NAN401", """
        from torch import nn
        net = nn.Sequential(nn.Linear(4, 1))
        criterion = nn.BCELoss()
        """),
    ("NAN402", """
        import torch.nn.functional as F
        def f(x, y):
            return F.cross_entropy(x, y)
        """),
    ("NAN402", """
        import torch.nn.functional as F
        def f(x, y):
            p = F.softmax(x, -1)
            return F.cross_entropy(x, y), p
        """),
    ("NAN403", """
        import torch.nn.functional as F
        def f(x, y):
            return F.nll_loss(F.log_softmax(x, 1), y)
        """),
    ("NAN403", """
        import torch
        import torch.nn.functional as F
        def f(x, y):
            return F.nll_loss(torch.log(torch.softmax(x, 1) + 1e-8), y)
        """),
    ("NAN404", """
        import torch
        def f(x, w):
            return torch.sigmoid(w @ torch.tanh(x))
        """),
    ("NAN404", """
        from torch import nn
        mlp = nn.Sequential(nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        """),
    ("NAN404", """
        import torch
        def gate(x, h):
            return torch.sigmoid(x) * torch.tanh(h)
        """),
]


@pytest.mark.parametrize(("code", "source", "lines"), FLAGGED)
def test_flagged(code, source, lines):
    assert hits(code, source) == [(code, line) for line in lines]


@pytest.mark.parametrize(("code", "source"), SILENT)
def test_silent(code, source):
    assert hits(code, source) == []


def test_bce_fix_keeps_weight_and_reduction():
    source = "import torch\nimport torch.nn.functional as F\nloss = F.binary_cross_entropy(torch.sigmoid(z), y, weight=w, reduction='sum')\n"
    text, applied = apply_edits(source, findings("NAN401", source))
    assert applied == 1
    assert text.endswith("loss = F.binary_cross_entropy_with_logits(z, y, weight=w, reduction='sum')\n")


def test_bce_fix_on_method_sigmoid():
    source = "import torch.nn.functional as F\nloss = F.binary_cross_entropy(z.sigmoid(), y)\n"
    text, _ = apply_edits(source, findings("NAN401", source))
    assert text.endswith("loss = F.binary_cross_entropy_with_logits(z, y)\n")


def test_bce_fix_gives_the_same_loss_in_torch():
    import torch
    import torch.nn.functional as F

    z = torch.tensor([-3.0, 0.5, 4.0])
    y = torch.tensor([0.0, 1.0, 1.0])
    assert torch.allclose(F.binary_cross_entropy(torch.sigmoid(z), y), F.binary_cross_entropy_with_logits(z, y), atol=1e-6)
    big = torch.tensor([40.0])
    # saturated: BCELoss caps log(0) at -100, the logits form is exact
    assert F.binary_cross_entropy(torch.sigmoid(big), torch.zeros(1)).item() == 100.0
    assert F.binary_cross_entropy_with_logits(big, torch.zeros(1)).item() == pytest.approx(40.0)


def test_cross_entropy_and_nll_fixes_are_unsafe():
    source = "import torch.nn.functional as F\nloss = F.cross_entropy(F.softmax(x, dim=1), y)\n"
    found = findings("NAN402", source)
    assert found[0].fix.applicability.value == "unsafe"
    text, _ = apply_edits(source, found, unsafe=True)
    assert text.endswith("loss = F.cross_entropy(x, y)\n")
    source = "import torch.nn.functional as F\nloss = F.nll_loss(F.softmax(x, dim=1), y)\n"
    text, _ = apply_edits(source, findings("NAN403", source), unsafe=True)
    assert text.endswith("loss = F.nll_loss(F.log_softmax(x, dim=1), y)\n")
