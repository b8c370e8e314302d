"""NAN30x: exp overflow rules on flagged and silent code, with exact codes and lines."""
from __future__ import annotations

import pytest

from nanlint.fixes import apply_edits
from rule_cases import findings, hits


FLAGGED = [
    ("NAN301", """
        import torch
        def ppo(logp, old_logp, adv):
            ratio = torch.exp(logp - old_logp)
            return ratio * adv
        """, [3]),
    ("NAN301", """
        from torch import exp
        def kl(logprobs_ref, logprobs):
            r = logprobs_ref - logprobs
            return exp(r) - r - 1
        """, [4]),
    ("NAN302", """
        import torch
        def f(x):
            return torch.exp(x) / torch.exp(x).sum(-1, keepdim=True)
        """, [3]),
    ("NAN302", """
        def f(x):
            e = x.exp()
            s = e.sum(1, keepdim=True)
            return e / s
        """, [2]),
    ("NAN302", """
        import torch
        def f(z):
            e = torch.exp(z)
            return e / (1 + e)
        """, [3]),
    ("NAN303", """
        import torch
        def f(x):
            return torch.log(torch.exp(x).sum(dim=1))
        """, [3]),
    ("NAN303", """
        import torch as T
        def f(x):
            s = T.sum(T.exp(x), 1)
            return T.log(s)
        """, [4]),
    ("NAN304", """
        import torch
        def f(x):
            return x.exp().clamp(max=1e4)
        """, [3]),
    ("NAN304", """
        import torch
        def f(x):
            return torch.clamp(torch.exp(x), 0, 100)
        """, [3]),
    ("NAN304", """
        import torch
        def f(x):
            e = x.exp()
            return e.clamp_max(50.0)
        """, [4]),
    ("NAN305", """
        import torch
        def f(x):
            return torch.cosh(x) + torch.expm1(x)
        """, [3, 3]),
    ("NAN305", """
        def f(x):
            return x ** 12
        """, [2]),
]

SILENT = [
    # NumPy has no gradient: clip(inf) is just the bound
    ("NAN304", """
        import numpy as np
        def f(x):
            return np.clip(np.exp(x), None, 1e6)
        """),
    ("NAN304", """
        import torch
        def f(self, a, b):
            logit_scale = torch.clamp(self.logit_scale.exp(), max=100)
            return logit_scale * a @ b.T
        """),
    ("NAN301", """
        import torch
        def f(mu, logvar):
            logvar = logvar.clamp(-10, 10)
            return mu + torch.exp(0.5 * logvar)
        """),
    ("NAN301", """
        def f(self, logvar):
            logvar.clamp_(max=10)
            return logvar.exp()
        """),
    ("NAN301", """
        import torch
        def f(log_std):
            return torch.tanh(log_std).exp()
        """),
    ("NAN301", """
        import torch
        def f(x, log_scale):
            return x * torch.exp(log_scale)
        """),
    ("NAN301", """
        import math
        def f(logvar):
            return math.exp(logvar)
        """),
    ("NAN301", """
        import torch
        def f(logits):
            return torch.log_softmax(logits, -1).exp()
        """),
    ("NAN302", """
        import torch
        def f(x):
            e = torch.exp(x - x.max(dim=-1, keepdim=True).values)
            return e / e.sum(-1, keepdim=True)
        """),
    ("NAN302", """
        import torch
        def f(x):
            x = x - torch.logsumexp(x, -1, keepdim=True)
            e = x.exp()
            return e / e.sum(-1, keepdim=True)
        """),
    ("NAN302", """
        import torch
        def f(x, t):
            return torch.exp(x) / t
        """),
    ("NAN303", """
        import torch
        def f(x):
            return torch.logsumexp(x, dim=1)
        """),
    ("NAN303", """
        import torch
        def f(x):
            return torch.log(torch.exp(x))
        """),
    ("NAN303", """
        import torch
        def f(logp):
            return torch.log(torch.exp(torch.log_softmax(logp, -1)).sum(-1))
        """),
    ("NAN304", """
        import torch
        def f(x):
            return x.exp().clamp(min=1e-6)
        """),
    ("NAN304", """
        import torch
        def f(x):
            return x.clamp(max=10).exp().clamp(max=1e4)
        """),
    ("NAN305", """
        import torch
        def f(d2):
            return torch.exp(-d2.pow(2))
        """),
    ("NAN305", """
        import torch
        def f(x):
            return torch.exp(x.clamp(max=20))
        """),
    ("NAN305", """
        import torch
        def forward(self, x):
            return -torch.exp(self.A_log.float()) * x
        """),
    ("NAN305", """
        import torch
        def f(p):
            return torch.sigmoid(p) ** 10
        """),
]


@pytest.mark.parametrize(("code", "source", "lines"), FLAGGED)
def test_flagged(code, source, lines):
    assert hits(code, source) == [(code, line) for line in lines]


# a log-variance or log-scale passes 88.7 only once training has diverged: reported with strict = true only
LOG_SCALES = [
    ("""
        import torch
        def f(mu, logvar):
            return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
        """, [3]),
    ("""
        def f(self, h):
            return self.log_std.exp()
        """, [2]),
    ("""
        import numpy as np
        def f(log_sigma):
            return np.exp(-log_sigma)
        """, [3]),
]


@pytest.mark.parametrize(("source", "lines"), LOG_SCALES)
def test_exp_of_a_log_scale_is_a_strict_finding(source, lines):
    assert hits("NAN301", source, strict=True) == [("NAN301", line) for line in lines]
    assert hits("NAN301", source) == []


@pytest.mark.parametrize(("code", "source"), SILENT)
def test_silent(code, source):
    assert hits(code, source) == []


def test_logsumexp_fix_rewrites_method_chain_and_keeps_keepdim():
    source = "def f(x):\n    return x.exp().sum(dim=-1, keepdims=True).log()\n"
    found = findings("NAN303", source)
    text, applied = apply_edits(source, found)
    assert applied == 1
    assert text == "def f(x):\n    return x.logsumexp(dim=-1, keepdim=True)\n"


def test_logsumexp_fix_is_numerically_stable_and_equal():
    import torch
    x = torch.tensor([[1.0, 2.0, 3.0], [100.0, 0.0, -5.0]])
    naive = x.exp().sum(dim=1).log()
    assert torch.isinf(naive[1])  # exp(100) overflows float32
    assert torch.allclose(x[:1].logsumexp(dim=1), naive[:1])
    assert torch.allclose(x.logsumexp(dim=1)[1], torch.tensor(100.0))


def test_no_fix_without_dim():
    found = findings("NAN303", "import torch\ndef f(x):\n    return torch.log(torch.sum(torch.exp(x)))\n")
    assert [f.code for f in found] == ["NAN303"] and found[0].fix is None


def test_hand_written_sigmoid_flagged_on_learned_scores():
    """Learned scores grow without bound in training; an image under a set gain, NumPy, a bounded input and
    no_grad code stay quiet."""
    source = """
        import torch
        import numpy as np
        class Gate(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = torch.nn.Linear(4, 4)
            def forward(self, x):
                z = self.fc(x)
                return 1 / (1 + torch.exp(-z))
        def adjust(image, gain=10.0, cutoff=0.5):
            return 1 / (1 + (gain * (cutoff - image)).exp())
        def np_sig(x):
            return 1 / (1 + np.exp(-x))
        def bounded(x):
            return 1 / (1 + torch.exp(-torch.tanh(x)))
    """
    assert hits("NAN302", source) == [("NAN302", 9)]
