"""The value analysis on its own: what it knows of a value at a point of real-looking code.

Each case is a root cause of past false positives or misses (../shared/precision/ROOT_CAUSES.md, the held-out
bug classes): the fact is asserted directly, not through a rule, so a rule change cannot hide a wrong fact.
"""
from __future__ import annotations

import math
import textwrap

import libcst as cst
import pytest

from nanlint.analysis.context import FileContext
from nanlint.analysis.domain import INF, Tier, Value, constant, join
from nanlint.analysis.walker import Walker
from nanlint.api import analysis_options
from nanlint.config import Config
from nanlint.rules.base import Rule


def probed(source: str) -> list[Value]:
    """The values of every ``probe(expr)`` in ``source``, in source order, as the walk sees them."""
    source = textwrap.dedent(source)
    module = cst.parse_module(source)
    ctx = FileContext(source, "t.py", module, analysis_options(Config(), "t.py"))
    out: list[Value] = []

    class Probe(Rule):
        code = "NAN101"  # borrows a catalog entry; never registered

        def visit_Call(self, node: cst.Call) -> None:
            if isinstance(node.func, cst.Name) and node.func.value == "probe":
                out.append(self.ctx.value(node.args[0].value))

    Walker(ctx, [Probe(ctx)], []).walk(module)
    return out


def reaches_zero(v: Value) -> bool:
    return v.zero is not None and v.zero.tier >= Tier.PLAUSIBLE


# ---- the domain ----

def test_join_keeps_the_hull_and_the_stronger_evidence():
    a = constant(0.0).bounded(0.0, 1.0)
    b = Value(lo=-2.0, hi=0.5)
    joined = join(a, b)
    assert (joined.lo, joined.hi) == (-2.0, 1.0)
    assert joined.const is None


def test_open_bounds_exclude_their_edge():
    v = Value(lo=0.0, hi=INF, lo_open=True)
    assert v.positive and not v.contains(0.0) and v.contains(1e-30)


# ---- dense activations are not zero; masked and raw data can be ----

def test_norm_of_a_dense_activation_never_reaches_zero():
    (norm,) = probed("""
        import torch
        def f(x):
            probe(x.norm(dim=-1))
    """)
    assert norm.nonneg and not reaches_zero(norm)


def test_norm_of_masked_values_reaches_zero():
    (norm,) = probed("""
        import torch
        def f(x, mask):
            probe((x * mask).norm(dim=-1))
    """)
    assert reaches_zero(norm)


def test_a_count_of_a_comparison_is_zero_for_an_all_false_mask():
    (count,) = probed("""
        import torch
        def f(labels):
            probe((labels > 0).sum())
    """)
    assert count.integer and count.lo == 0 and reaches_zero(count)


def test_rows_of_a_confusion_matrix_can_sum_to_zero():
    (rows,) = probed("""
        import torch
        def f(pred, target, n):
            cm = torch.bincount(target * n + pred, minlength=n * n).reshape(n, n)
            probe(cm.sum(1))
    """)
    assert reaches_zero(rows)


# ---- ranges implied by the code's own math ----

def test_softmax_of_scores_reaches_0_and_1_but_of_a_constant_does_not():
    scores, uniform = probed("""
        import torch
        def f(x):
            probe(torch.softmax(x, -1))
            probe(torch.softmax(torch.zeros(3), -1))
    """)
    assert scores.unit_interval and scores.at(0.0) is not None and scores.at(1.0) is not None
    assert uniform.at(0.0) is None


def test_a_hand_written_sigmoid_reaches_0_and_its_complement_reaches_0():
    s, complement = probed("""
        import torch
        def f(z):
            s = 1 / (1 + torch.exp(-z))
            probe(s)
            probe(1 - s)
    """)
    assert s.unit_interval and reaches_zero(s)
    assert reaches_zero(complement)


def test_relu_is_exactly_zero_for_negative_inputs():
    (r,) = probed("""
        import torch.nn.functional as F
        def f(x):
            probe(F.relu(x))
    """)
    assert r.lo == 0 and not r.lo_open and reaches_zero(r)


def test_one_minus_a_squared_cosine_rounds_below_zero():
    (v,) = probed("""
        import torch.nn.functional as F
        def f(a, b):
            c = F.cosine_similarity(a, b)
            probe(1 - c ** 2)
    """)
    assert v.below is not None


def test_a_discriminant_goes_below_zero():
    (v,) = probed("""
        def f(a, b, c):
            probe(b ** 2 - 4 * a * c)
    """)
    assert v.below is not None


def test_a_log_ratio_can_exceed_the_exp_range():
    (v,) = probed("""
        def f(logp, old_logp):
            probe(logp - old_logp)
    """)
    assert v.large is not None


# ---- guards ----

def test_an_if_guard_clears_a_count_of_its_zero():
    inside, outside = probed("""
        import torch
        def f(x, labels, c):
            n = (labels == c).sum()
            if n > 0:
                probe(n)
            probe(n)
    """)
    assert not reaches_zero(inside) and reaches_zero(outside)


def test_mask_any_guards_every_count_rooted_in_the_mask():
    (n,) = probed("""
        import torch
        def f(x, labels):
            pos = labels > 0
            n = pos.sum()
            if pos.any():
                probe(n)
    """)
    assert not reaches_zero(n)


def test_a_where_that_replaces_zeros_repairs_the_value():
    (d,) = probed("""
        import torch
        def f(x, d):
            d = torch.where(d == 0, torch.ones_like(d), d)
            probe(d)
    """)
    assert not reaches_zero(d)


def test_a_clamp_strictly_inside_the_unit_interval_drops_plus_minus_one():
    clamped, raw = probed("""
        import torch.nn.functional as F
        def f(a, b, eps=1e-7):
            c = F.cosine_similarity(a, b)
            probe(c.clamp(-1 + eps, 1 - eps))
            probe(c)
    """)
    assert clamped.at(1.0) is None and clamped.at(-1.0) is None
    assert raw.at(1.0) is not None


def test_an_eps_keeps_a_sum_positive():
    (v,) = probed("""
        import torch
        def f(mask, eps=1e-6):
            probe(mask.sum() + eps)
    """)
    assert v.positive and not reaches_zero(v)


# ---- where facts come from ----

def test_module_state_set_nowhere_in_the_file_is_a_parameter():
    (v,) = probed("""
        import torch
        class M(torch.nn.Module):
            def forward(self, x):
                probe(self.logit_scale)
    """)
    assert v.role == "parameter"


def test_module_constants_are_known():
    (v,) = probed("""
        NEG = -1e9
        def f(x):
            probe(NEG)
    """)
    assert v.const == -1e9


def test_a_call_into_the_files_own_function_carries_its_result():
    (v,) = probed("""
        import torch
        def safe(x):
            return x.clamp_min(1e-6)
        def f(x):
            probe(safe(x))
    """)
    assert v.lo == pytest.approx(1e-6) and v.positive


def test_exp_of_an_unbounded_value_can_overflow_to_inf():
    (v,) = probed("""
        import torch
        def f(z):
            probe(torch.exp(z))
    """)
    assert v.at(math.inf) is not None


def test_a_comparison_sum_guard_shows_a_selection_is_not_empty():
    guarded, unguarded = probed("""
        import numpy as np
        def f(p, d):
            idx = np.where(d.flatten() > 0)[0]
            if np.sum(d > 0) > 0:
                probe(p[idx])
            probe(p[idx])
    """)
    assert guarded.empty is None and unguarded.empty is not None


def test_nested_loops_of_branches_keep_a_bounded_number_of_reaches():
    from nanlint.analysis.evaluate import Evaluator
    from nanlint.analysis.flow import MAX_REACHES
    from nanlint.resolver import ImportResolver

    branches = "".join(f"            if c{i}:\n                x = x + {i}\n" for i in range(12))
    source = "def f(x, xs, c):\n    for a in xs:\n        for b in xs:\n" + branches + "    return x\n"
    module = cst.parse_module(source)
    function = module.body[0]
    flow = Evaluator(module, ImportResolver(), module.code_for_node).flow_of(function)
    longest = max(len(reaches) for reaches in flow.uses.values())
    assert 12 < longest <= MAX_REACHES  # 13 definitions of x reach the return; guard variants are capped


def test_raising_when_all_weights_are_zero_guards_their_sum():
    before, after = probed("""
        import numpy as np
        class Pick(Transform):
            def __call__(self, weights):
                probe(weights.sum())
                if np.all(weights == 0):
                    raise ValueError("at least one weight must be nonzero")
                probe(weights.sum())
    """)
    assert reaches_zero(before) and not reaches_zero(after)


# ---- facts learned from unseen metric code (torchmetrics 1.9.0) ----

def test_the_last_entry_of_a_concatenation_comes_from_its_last_part():
    last, first = probed("""
        import torch
        def roc(fps):
            fps = torch.cat([torch.zeros(1), fps])
            probe(fps[-1])
            probe(fps[0])
    """)
    assert not reaches_zero(last)  # the cumulative count, not the prepended zero
    assert first.const == 0.0


def test_a_guard_on_one_entry_holds_for_that_entry():
    (guarded,) = probed("""
        import torch
        def roc(fps):
            total = torch.cumsum(fps, 0)
            if total[-1] <= 0:
                return None
            probe(total[-1])
    """)
    assert guarded.positive


def test_unique_counts_are_at_least_one():
    counts, inverse = probed("""
        import torch
        def ranks(data):
            values, inverse, counts = torch.unique(data, return_inverse=True, return_counts=True)
            probe(counts)
            probe(inverse)
    """)
    assert counts.lo == 1.0 and not reaches_zero(counts)
    assert inverse.lo == 0.0


def test_a_buffer_handed_to_a_helper_called_for_its_effect_is_filled():
    filled, kept = probed("""
        import torch
        def bleu(preds, target):
            numerator = torch.zeros(4)
            denominator = torch.zeros(4)
            _bleu_update(preds, target, numerator)
            print(denominator)
            probe(numerator)
            probe(denominator)
    """)
    assert not reaches_zero(filled)
    assert reaches_zero(kept)  # print does not write its argument


def test_an_early_exit_on_a_zero_difference_guards_the_difference():
    (spread,) = probed("""
        def rescale(img):
            mina, maxa = img.min(), img.max()
            if maxa - mina == 0:
                return img * 0
            probe(maxa - mina)
    """)
    assert not reaches_zero(spread)


def test_a_gaussian_exponent_is_never_positive():
    (exponent,) = probed("""
        def kernel(x, sigma):
            probe(-(x ** 2) / (2 * sigma ** 2))
    """)
    assert exponent.hi <= 0  # exp of it is at most 1: it cannot overflow


def test_an_exact_zero_times_anything_is_exactly_zero():
    from nanlint.analysis import intervals as iv

    inf = float("inf")
    assert iv.mul((0.0, inf, False, False), (0.0, inf, True, False))[:3] == (0.0, inf, False)
    assert iv.mul((0.0, 1.0, True, False), (0.0, inf, True, False))[2] is True  # neither factor reaches 0


def test_a_validation_that_admits_zero_reaches_it_through_a_ratio():
    """``if any(t < 0): raise`` lets t == 0 through: t / p is then exactly 0 where t is, and log of it is -inf."""
    [ratio] = probed("""
        import torch
        def deviance(preds, targets):
            if torch.any(preds <= 0) or torch.any(targets < 0):
                raise ValueError("targets cannot be negative")
            probe(targets / preds)
    """)
    assert ratio.lo == 0 and not ratio.lo_open and reaches_zero(ratio)
