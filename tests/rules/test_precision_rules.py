"""NAN35x: half-precision constants and inf masks, with exact codes, lines and confidence."""
from __future__ import annotations

import pytest

from nanlint.fixes import apply_edits
from rule_cases import findings, hits


FLAGGED = [
    ("NAN351", """
        def f(scores, mask):
            return scores.masked_fill(mask, -1e9).softmax(-1)
        """, [2]),
    ("NAN351", """
        import torch
        def f(scores, mask):
            return torch.masked_fill(scores, mask, float("-1e10"))
        """, [3]),
    ("NAN351", """
        import torch
        def f(scores, keep):
            return torch.where(keep, scores, -1e30)
        """, [3]),
    ("NAN351", """
        def f(scores, mask, fill_value=-1e32):
            scores.masked_fill_(~mask, fill_value)
            return scores
        """, [2]),
    ("NAN351", """
        NEG = -1e9
        def f(scores, mask):
            return scores + (1.0 - mask.float()) * NEG
        """, [3]),
    ("NAN351", """
        def f(scores, attention_mask):
            return scores - 1e9 * (1 - attention_mask)
        """, [2]),
    ("NAN352", """
        import math
        def f(dots, mask):
            dots = dots.masked_fill(mask, math.inf)
            return dots.softmax(-1)
        """, [3]),
    ("NAN352", """
        def f(dots, mask):
            dots.masked_fill_(mask, -float("-inf"))
            return dots.log_softmax(-1)
        """, [2]),
    ("NAN353", """
        def f(scores, key_padding_mask):
            scores = scores.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
            return scores.softmax(-1)
        """, [2]),
    ("NAN353", """
        import numpy as np
        def f(self, x, pad):
            attn_logits = self.proj(x)
            return attn_logits.masked_fill(pad, -np.inf)
        """, [4]),
    ("NAN354", """
        import torch
        def f(x, n):
            with torch.autocast("cuda", dtype=torch.float16):
                return x / (n + 1e-8)
        """, [4]),
    ("NAN354", """
        import torch.nn.functional as F
        x = y.half()
        z = F.normalize(x, dim=-1, eps=1e-12)
        """, [3]),
    ("NAN354", """
        def f(mask):
            return (mask + 1e-45).log()
        """, [2]),
    ("NAN355", """
        def f(p):
            p = p.half()
            return p.clamp(1e-4, 1 - 1e-5)
        """, [3]),
    ("NAN355", """
        import torch
        EPS = 1e-3
        def f(p):
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return (1 - p.clamp(max=1 - EPS)).log()
        """, [5]),
    ("NAN356", """
        import torch
        model = build().half()
        opt = torch.optim.Adam(model.parameters(), eps=1e-8)
        """, [3]),
    ("NAN357", """
        import torch.nn.functional as F
        def f(x, mask):
            p = F.softmax(x, dim=-1)
            p = p * mask.float()
            return p / p.sum(-1, keepdim=True)
        """, [4]),
]

SILENT = [
    # shapes seen in transformers that must stay quiet
    ("NAN351", """
        import torch
        def f(x, p_mask):
            if p_mask.dtype == torch.float16:
                x = x * (1 - p_mask) - 65500 * p_mask
            else:
                x = x * (1 - p_mask) - 1e30 * p_mask
            return x
        """),
    ("NAN351", """
        import torch
        def f(mask, bias):
            mask = torch.where(mask > 0, 0.0, -1e10)
            return bias + mask
        """),
    ("NAN351", """
        import torch
        def f(scale):
            return torch.where(scale < 1.0, 10e9, scale).argmin()
        """),
    ("NAN351", """
        import torch
        def f(attention_mask):
            return attention_mask.float().masked_fill(~attention_mask, -1e9)
        """),
    ("NAN351", """
        import torch
        INF = 1e6
        def f(attn_score, attention_mask):
            attn_score = attn_score.float()
            attn_score = attn_score - INF * (1 - attention_mask[:, None].float())
            return torch.softmax(attn_score, -1)
        """),
    ("NAN353", """
        import torch
        def route(scores_for_choice, score_mask, k):
            scores_for_choice = scores_for_choice.masked_fill(~score_mask.bool(), float("-inf"))
            return torch.topk(scores_for_choice, k=k, dim=-1)[1]
        """),
    ("NAN353", """
        import torch
        def f(avg_tm, chain, logits):
            row_vals = avg_tm.masked_fill(chain == 0, float("-inf"))
            best = row_vals.max(dim=-1).values
            return best, torch.softmax(logits, -1)
        """),
    ("NAN354", """
        import torch
        x = torch.zeros(3).half()
        p = torch.empty(3).uniform_(0.9**2 + 1e-8, 0.999**2 + 1e-8)
        """),
    ("NAN354", """
        import torch
        def route(scores, model):
            model.to(torch.bfloat16)
            return scores / (scores.sum(-1, keepdim=True) + 1e-20)
        """),
    ("NAN355", """
        import torch
        def f(step, n):
            h = torch.arange(n, dtype=torch.float32) * step
            with torch.autocast("cuda"):
                return torch.clamp(h, max=(1.0 - 1e-6))
        """),
    ("NAN355", """
        import torch
        x = torch.zeros(3).half()
        coords = torch.arange(0, 1 - 1e-6, 0.1)
        """),
    ("NAN357", """
        import torch
        def f(gate_logits, mask):
            routing_weights = torch.softmax(gate_logits, dim=-1)
            return torch.sum(routing_weights * mask, dim=0) / torch.sum(mask, dim=0)
        """),
    ("NAN351", """
        import torch
        def f(scores, mask):
            return scores.masked_fill(mask, torch.finfo(scores.dtype).min)
        """),
    ("NAN351", """
        def f(scores, mask):
            return scores.masked_fill(mask, -10000.0)
        """),
    ("NAN351", """
        def f(scores, mask):
            return scores.masked_fill(mask, float("-inf"))
        """),
    ("NAN351", """
        def f(x):
            return x * 1e9
        """),
    ("NAN351", """
        import torch
        def f(attn, mask):
            if attn.dtype == torch.float16:
                neg = -65504.0
            else:
                neg = -1e9
            return attn.masked_fill(mask, neg)
        """),
    ("NAN352", """
        def f(dist, same):
            return dist.masked_fill(same, float("inf")).min(-1)
        """),
    ("NAN353", """
        import torch
        def f(scores):
            causal = torch.ones(4, 4).triu(1).bool()
            return scores.masked_fill(causal, float("-inf")).softmax(-1)
        """),
    ("NAN353", """
        import torch
        def f(scores, t):
            i = torch.arange(t)
            mask = i[:, None] < i[None, :]
            return scores.masked_fill(mask, float("-inf")).softmax(-1)
        """),
    ("NAN353", """
        def top_k(logits, k):
            indices_to_remove = logits < logits.topk(k)[0][..., -1, None]
            logits = logits.masked_fill(indices_to_remove, float("-inf"))
            return logits.softmax(-1)
        """),
    ("NAN353", """
        import torch
        def f(scores, pad):
            scores = scores.masked_fill(pad, float("-inf"))
            return torch.nan_to_num(scores.softmax(-1))
        """),
    ("NAN354", """
        def f(x, n):
            return x / (n + 1e-8)
        """),
    ("NAN354", """
        import torch
        def f(x, n):
            with torch.autocast("cuda", dtype=torch.float16):
                return x / (n + 1e-4)
        """),
    ("NAN354", """
        import torch
        def f(x):
            with torch.autocast("cuda"):
                return torch.nn.functional.layer_norm(x, (8,), eps=1e-12)
        """),
    ("NAN355", """
        def f(p):
            return p.clamp(1e-6, 1 - 1e-6)
        """),
    ("NAN355", """
        def f(p):
            p = p.half()
            return p.clamp(1e-3, 1 - 1e-3)
        """),
    ("NAN356", """
        import torch
        model = build().half()
        opt = torch.optim.Adam(model.parameters(), eps=1e-4)
        """),
    ("NAN357", """
        import torch.nn.functional as F
        def f(x, mask):
            p = F.softmax(x.masked_fill(~mask, -1e4), dim=-1)
            return p * mask
        """),
]


@pytest.mark.parametrize(("code", "source", "lines"), FLAGGED)
def test_flagged(code, source, lines):
    assert hits(code, source) == [(code, line) for line in lines]


@pytest.mark.parametrize(("code", "source"), SILENT)
def test_silent(code, source):
    assert hits(code, source) == []


ATTENTION = """import torch
def f(scores, mask):
    return scores.masked_fill(mask, -1e9)
"""


@pytest.mark.parametrize(
    ("extra", "precision", "confidence"),
    [("", None, "low"), ("x = y.half()\n", None, "medium"), ("", "float16", "high")],
)
def test_mask_constant_confidence_follows_the_evidence(extra, precision, confidence):
    found = findings("NAN351", ATTENTION + extra, target_precision=precision)
    assert [(f.line, f.confidence.value) for f in found] == [(3, confidence)]


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_mask_constant_is_fine_in_float32_and_bfloat16(precision):
    assert findings("NAN351", ATTENTION, target_precision=precision) == []


def test_eps_rule_follows_target_precision_without_file_evidence():
    source = "def f(x, n):\n    return x / (n + 1e-8)\n"
    assert hits("NAN354", source, target_precision="float16") == [("NAN354", 2)]
    assert hits("NAN354", source, target_precision="bfloat16") == []


def test_mask_fix_uses_the_tensors_own_dtype_and_is_unsafe():
    found = findings("NAN351", ATTENTION)
    assert found[0].fix is not None and found[0].fix.applicability.value == "unsafe"
    assert apply_edits(ATTENTION, found)[1] == 0  # not applied without --unsafe-fixes
    text, applied = apply_edits(ATTENTION, found, unsafe=True)
    assert applied == 1 and "scores.masked_fill(mask, torch.finfo(scores.dtype).min)" in text


def test_the_constants_behave_as_documented_in_torch():
    import torch

    assert torch.tensor(1e-8, dtype=torch.float16).item() == 0.0
    assert torch.tensor(1e-4, dtype=torch.float16).item() > 0.0
    assert torch.tensor(1 - 1e-5, dtype=torch.float16).item() == 1.0
    assert torch.tensor(1 - 1e-3, dtype=torch.float16).item() < 1.0
    assert torch.isinf(torch.tensor(-1e9, dtype=torch.float16))
    assert torch.tensor(1e-45, dtype=torch.bfloat16).item() == 0.0
    row = torch.full((3,), float("-inf"))
    assert torch.isnan(row.softmax(-1)).all()
    assert torch.isnan(torch.tensor([1.0, float("inf")]).softmax(-1)).any()


def test_an_eps_that_only_feeds_normalization_layers_does_not_underflow_in_half():
    """``def __init__(self, ..., eps=1e-12): self.norm = nn.LayerNorm(d, eps=eps)`` and ``ProjLayer(eps=1e-12)``:
    the LayerNorm adds its eps in a float32 accumulator; an eps kept for a division still rounds to 0 in float16."""
    source = """
        import torch
        import torch.nn as nn

        class ProjLayer(nn.Module):
            def __init__(self, in_dim, out_dim, eps=1e-12):
                super().__init__()
                self.norm = nn.LayerNorm(out_dim, eps=eps)

            def forward(self, x):
                return self.norm(x).half()

        class Guard(nn.Module):
            def __init__(self, eps=1e-12):
                super().__init__()
                self.eps = eps

            def forward(self, x):
                return (x / (x.norm() + self.eps)).half()

        def build():
            return ProjLayer(4, 4, eps=1e-12), Guard(eps=1e-12)
        """
    assert hits("NAN354", source) == [("NAN354", 13), ("NAN354", 21)]
