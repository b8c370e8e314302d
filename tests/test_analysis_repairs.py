"""Facts of guards, repairs and provenance: what a test, a repair or the origin of a value says about the
edges it reaches. Each case is the general form of a false positive seen on real code."""
from __future__ import annotations

from nanlint.analysis.domain import Tier
from nanlint.api import check_source
from nanlint.config import Config
from tests.test_analysis import probed, reaches_zero


def codes(source: str) -> list[tuple[str, int]]:
    import textwrap

    return [(f.code, f.line) for f in check_source(textwrap.dedent(source).lstrip("\n"), "t.py")]


def test_a_bound_the_guard_did_not_set_is_not_carved():
    """``if (r > 1).any(): raise`` caps a norm at 1; its 0 comes from the norm, not from the test."""
    [r] = probed("""
        import torch
        def f(x):
            r = x.norm(dim=-1)
            if torch.any(r > 1.0):
                raise RuntimeError("outside the unit ball")
            probe(r)
    """)
    assert r.hi == 1.0 and not reaches_zero(r)


def test_a_bound_the_guard_sets_is_met():
    """``if (d < 0).any(): raise`` admits d == 0: the lower bound it sets is reached."""
    [v] = probed("""
        import torch
        def f(a, b):
            d = a - b
            if torch.any(d < 0):
                raise ValueError
            probe(d)
    """)
    assert v.lo == 0 and reaches_zero(v)


def test_a_condition_bound_to_a_name_guards_where():
    """``is_zero = d == 0; safe = where(is_zero, 1, d)``: the name stands for its test."""
    [safe, other] = probed("""
        import torch
        def f(sigma, pos, x):
            d = 2 * sigma.pow(2.0)
            is_zero = d == 0
            probe(torch.where(is_zero, torch.ones_like(d), d))
            c = torch.relu(x)
            keep = ~pos & (c != 0.0)
            probe(torch.where(keep, c, torch.ones_like(c)))
    """)
    assert safe.nonzero and not reaches_zero(other)


def test_method_comparisons_are_conditions():
    """``where(d.eq(0), 1e10, d)`` repairs the zeros like ``where(d == 0, ...)``; ``torch.gt(x, 0)`` bounds x."""
    [repaired, positive] = probed("""
        import torch
        def f(x):
            d = x[..., 1:] - x[..., :-1]
            probe(torch.where(d.eq(0.0), torch.tensor(1e10), d).sort(dim=-1)[0][..., 0])
            probe(torch.where(torch.gt(x, 0), x, 1.0))
    """)
    assert not reaches_zero(repaired)
    assert positive.positive


def test_entries_read_at_their_own_nonzero_positions_are_nonzero():
    [v] = probed("""
        import torch
        def f(boxes):
            d = boxes[:, 1:] - boxes[:, :-1]
            probe(d[torch.nonzero(d[:, 0])[0], 0])
    """)
    assert not reaches_zero(v)


def test_a_validation_that_raises_is_not_the_code_meeting_its_edge():
    """``if width <= 0: raise`` refuses 0: a later ``x / width`` is not 'tested against 0'; the same test used
    to pick a branch (``if n == 0: ...``) says the code meets it."""
    assert codes("""
        import torch
        def normalize(x, width):
            if width <= 0:
                raise ValueError("width must be positive")
            return x / width
    """) == []
    assert codes("""
        import torch
        def f(x, n):
            y = x / n
            if n == 0:
                print("empty")
            return y
    """) == [("NAN201", 3)]


def test_a_sign_check_says_nothing_of_zero():
    [v] = probed("""
        import torch
        def f(w):
            y = w * 2
            ok = bool((w >= 0).all())
            probe(w)
    """)
    assert not reaches_zero(v)


def test_exp_of_a_schedule_computed_without_gradient_overflows_only_for_extreme_settings():
    """np.exp of a log-SNR grid built from the configuration reaches inf only if the configuration is extreme;
    exp of a learned score does at 88.7."""
    [sched, score] = probed("""
        import numpy as np
        import torch
        def f(alphas, n, logits):
            lambdas = np.flip(np.log(alphas))
            lam = np.linspace(lambdas[0], lambdas[-1], n)
            probe(np.exp(lam))
            probe(torch.exp(logits))
    """)
    [(_, e)] = [(p, e) for p, e in sched.points if p == float("inf")]
    assert e.tier == Tier.DEGENERATE
    [(_, e)] = [(p, e) for p, e in score.points if p == float("inf")]
    assert e.tier == Tier.PLAUSIBLE


def test_two_entries_coincide_for_coordinates_of_data_not_for_interpolation_nodes():
    assert codes("""
        import torch
        def width(boxes):
            return 1.0 / (boxes[:, 2] - boxes[:, 0])
    """) == [("NAN201", 3)]
    assert codes("""
        def lagrange(lambda_list):
            return 1 / (lambda_list[0] - lambda_list[1])
    """) == []


def test_a_quotient_repaired_right_after_is_quiet():
    assert codes("""
        import torch
        def f(t, edge_count):
            counts = torch.zeros(10)
            counts[edge_count] += 1
            norm = (t / counts).clamp_(0, 1e4)
            norm[torch.isnan(norm)] = 0.1
            return norm
    """) == []
    assert codes("""
        import torch
        def trust(w_norm, g_norm):
            g_norm = torch.zeros(3)
            g_norm[w_norm.long()] += 1
            ratio = w_norm / g_norm
            ratio = torch.where(g_norm > 0, ratio, 1.0)
            return ratio
    """) == []
    # unrepaired, the same division is reported
    assert codes("""
        import torch
        def f(t, edge_count):
            counts = torch.zeros(10)
            counts[edge_count] += 1
            return t / counts
    """) == [("NAN201", 5)]


def test_findings_name_their_fact():
    [f] = check_source("import torch\ndef f(x):\n    p = torch.softmax(x, -1)\n    return torch.log(p)\n", "t.py")
    assert f.extra["fact"] == {"kind": "underflow", "tier": "plausible", "line": 3}


def test_a_difference_laid_out_by_a_schedule_is_not_plausibly_negative():
    """sqrt(sigma_to**2 - sigma_up**2) over values computed without gradient (a sampler's schedule) goes
    below 0 only for a broken configuration; over values that vary with the data it plausibly does."""
    [schedule, data] = probed("""
        import numpy as np
        import torch
        def step(sigmas, i, x, y):
            s = torch.from_numpy(np.asarray(sigmas)).float()
            sigma_to, sigma_up = s[i + 1], s[i] * 0.5
            probe(sigma_to**2 - sigma_up**2)
            probe(x**2 - y**2)
    """)
    assert schedule.below is not None and schedule.below.tier == Tier.DEGENERATE
    assert data.below is not None and data.below.tier == Tier.PLAUSIBLE


def test_log_of_an_indicator_is_a_mask_not_a_log_of_zero():
    """log of a 0/1 mask is the additive -inf mask idiom (NAN102 quiet); added to scores before a softmax it
    is an -inf fill, and NAN353 asks whether a whole row can be masked."""
    from nanlint.config import Config
    import textwrap

    source = textwrap.dedent("""
        import torch
        def masked_log_softmax(vector, mask):
            mask = mask.float()
            vector = vector + mask.log()
            return torch.nn.functional.log_softmax(vector, dim=-1)
        def delta_log_prob(x, v):
            return (x == v).type(x.dtype).log()
        def dead(scores):
            return torch.log(torch.relu(scores))
    """).lstrip("\n")
    assert [(f.code, f.line) for f in check_source(source, "t.py")] == [("NAN102", 9)]
    picked = check_source(source, "t.py", Config(select=("NAN353",)))
    assert [(f.code, f.line) for f in picked] == [("NAN353", 4)]


def test_what_a_constructor_takes_is_configuration():
    """A dataset's or a transform's ``__init__`` arguments (block sizes, nodes per class) are settings, not
    the samples its methods receive; a method's argument is a sample."""
    assert codes("""
        import torch
        from torch.utils.data import Dataset
        class Blocks(Dataset):
            def __init__(self, block_sizes, num_nodes_per_class: int, degree: float):
                self.block_sizes = torch.as_tensor(block_sizes)
                self.weights = self.block_sizes / self.block_sizes.sum()
                self.density = degree / num_nodes_per_class
    """) == []
    assert codes("""
        import torch
        from torch.utils.data import Dataset
        class Standardize(Dataset):
            def __call__(self, image):
                return (image - image.mean()) / image.std()
    """) == [("NAN201", 5)]


def test_a_test_of_an_earlier_value_says_nothing_of_the_new_one():
    """``w = s.sum(); e = where(w > 0, s, 1); w = e.sum()``: the test was about the first ``w``."""
    [first, second] = probed("""
        import torch
        def f(s, v):
            n = s.abs().sum()
            probe(n)
            if n == 0:
                print("empty")
            n = v.abs().sum()
            probe(n)
    """)
    assert reaches_zero(first) and first.zero.kind == "tested"
    assert not reaches_zero(second)


def test_a_length_named_after_a_mask_is_not_a_mask():
    [length, mask] = probed("""
        def f(mask_time_length, attention_mask_len, mask):
            probe(mask_time_length)
            probe(mask)
    """)
    assert length.role is None and not reaches_zero(length)
    assert mask.role == "mask"


def test_an_adjacency_is_all_zero_for_a_graph_without_edges():
    """Degrees of a graph (sums of its adjacency) are 0 for an edgeless graph."""
    import textwrap

    source = textwrap.dedent("""
        import torch
        def spectral(s, adj):
            degrees = torch.einsum('ijk->ij', adj)
            m = degrees.sum(-1) / 2
            return (s.sum(-1) / m).mean()
    """).lstrip("\n")
    assert [(f.code, f.line) for f in check_source(source, "t.py")] == [("NAN201", 5)]


def test_a_mask_handed_in_is_empty_one_sample_at_a_time():
    """A padding or span mask handed in can be all False for one sample (an empty span, a fully padded row),
    so a count along its rows reaches 0; over the whole batch every sample must be empty at once: degenerate."""
    row, whole, mean = probed("""
        import torch
        def f(mask):
            probe(mask.sum(dim=1))
            probe(mask.sum())
            probe(mask.float().mean())
    """)
    assert row.zero.tier == Tier.PLAUSIBLE
    assert whole.zero.tier == Tier.DEGENERATE and mean.zero.tier == Tier.DEGENERATE


def test_a_mask_computed_here_can_be_empty_over_the_whole_batch():
    """``labels == c`` is all False whenever class c is absent from the batch: a plausible edge over the batch."""
    [whole] = probed("""
        import torch
        def f(labels, c):
            probe((labels == c).sum())
    """)
    assert whole.zero.tier == Tier.PLAUSIBLE


def test_a_selection_by_a_mask_handed_in_is_empty_only_for_an_empty_batch():
    assert codes("""
        import torch
        def f(x, mask):
            return x[mask].mean()
    """) == []
    assert codes("""
        import torch
        def f(x, labels):
            return x[labels > 2].mean()
    """) == [("NAN203", 3)]


def test_a_masked_mean_over_the_batch_is_strict_only_and_per_row_is_reported():
    whole = "import torch\ndef f(loss, mask):\n    return (loss * mask).sum() / mask.sum()\n"
    rows = "import torch\ndef f(loss, mask):\n    return (loss * mask).sum(-1) / mask.sum(-1)\n"
    assert codes(whole) == [] and codes(rows) == [("NAN201", 3)]
    strict = [(f.code, f.line) for f in check_source(whole, "t.py", Config(strict=True))]
    assert strict == [("NAN201", 3)]


RELU_SELECTS = [
    # (source of f, whether its backward pass really gives a non-finite gradient: nanlint must say the same)
    ("def f(v):\n    return torch.pow(torch.relu(v), 1 / 3).sum()\n", False),
    ("def f(v):\n    return v.relu().sqrt().sum()\n", False),
    ("def f(v):\n    return v.clamp(min=0).sqrt().sum()\n", False),
    ("def f(v, w):\n    return torch.pow(torch.relu(v) * w, 1 / 3).sum()\n", True),
]


def test_relu_and_clamp_drop_the_gradient_at_their_zeros_as_torch_does():
    """The fact matches PyTorch: relu's and clamp's backward select, so the root's inf gradient at their 0s never
    reaches the input; a learned factor multiplied in afterwards still gets relu(v) * inf = NaN."""
    import torch

    for source, nonfinite in RELU_SELECTS:
        namespace = {"torch": torch}
        exec(source, namespace)
        v = torch.tensor([-1.0, 0.5, -2.0], requires_grad=True)
        args = [v, torch.tensor([2.0, 2.0, 2.0], requires_grad=True)] if "(v, w)" in source else [v]
        namespace["f"](*args).backward()
        grads = torch.cat([a.grad for a in args])
        assert bool((~torch.isfinite(grads)).any()) == nonfinite, source
        flagged = [c for c, _ in codes("import torch\n" + source) if c in ("NAN211", "NAN214")]
        assert bool(flagged) == nonfinite, source


def test_a_guard_on_a_name_bound_to_the_negated_mask_clears_its_selection():
    """``drop = ~keep; if drop.sum() > 0: x[~keep].mean()``: the test was made on the same mask, under another name."""
    guarded = """
        import torch
        def f(angles, labels):
            keep = labels > 3
            drop = ~keep
            if torch.sum(drop) > 0:
                return torch.mean(angles[~keep])
    """
    assert codes(guarded) == []
    assert codes(guarded.replace("            if torch.sum(drop) > 0:\n    ", "")) == [("NAN203", 5)]


def test_a_guard_on_a_name_bound_to_a_length_clears_the_selection():
    source = """
        import torch
        def f(losses, low):
            losses = losses[losses > low]
            n = len(losses)
            if n >= 1:
                return torch.mean(losses)
            return losses.sum() * 0
    """
    assert codes(source) == []
    assert codes(source.replace("if n >= 1:", "if low:")) == [("NAN203", 6)]


def test_a_step_counter_below_a_bound_makes_the_bound_positive():
    """``if step < warmup_steps: ... / warmup_steps``: a step counts up from 0, so warmup_steps >= 1 there."""
    [inside] = probed("""
        def f(step, warmup_steps):
            if step < warmup_steps:
                probe(warmup_steps)
    """)
    assert inside.positive


def test_a_hand_written_max_shift_bounds_the_exponent():
    """``max_val = torch.max(pos, neg.max(1, keepdim=True)[0]).detach()`` bounds both pos and neg entry by
    entry, so ``pos - max_val`` and ``neg - max_val`` are <= 0 and their exp cannot overflow; a max of another
    tensor bounds nothing."""
    pos, neg, other = probed("""
        import torch
        def f(pos, neg, scores):
            pos = pos.unsqueeze(1) / 0.1
            max_val = torch.max(pos, torch.max(neg, dim=1, keepdim=True)[0]).detach()
            probe(pos - max_val)
            probe(neg - max_val)
            probe(scores - max_val)
    """)
    assert pos.hi <= 0 and neg.hi <= 0 and pos.large is None
    assert other.hi > 0


def test_the_counts_of_unique_are_at_least_one_through_a_slice_of_its_results():
    [counts] = probed("""
        import numpy as np
        def f(keys):
            inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)[1:]
            probe(counts)
    """)
    assert counts.lo >= 1 and not reaches_zero(counts)


def test_an_index_grid_is_0_only_at_its_first_entry():
    """``l = arange(n)`` is 0 at l[0]: ``1 / l`` with ``r[0] = ...`` right after is repaired, and
    ``l[-1]`` / ``l[1:]`` never hold the 0."""
    assert codes("""
        import torch
        def f(n):
            l = torch.arange(0, n)
            r = 1.0 / l / (l + 1)
            r[0] = 1.0
            return r, 1.0 / (l * (l + 1))[-1], 1.0 / l[1:]
    """) == []
    assert codes("""
        import torch
        def f(n):
            l = torch.arange(0, n)
            return 1.0 / l
    """) == [("NAN201", 4)]


def test_a_buffer_of_zeros_handed_to_a_kernel_is_filled():
    """``alpha_sum = zeros(...); kernels.step(q, acc, alpha_sum); acc / alpha_sum``: a custom kernel or the
    project's module fills the buffers it is handed; torch functions do not."""
    source = """
        import torch
        from mypkg import kernels
        def f(q, n):
            acc = torch.zeros(n)
            alpha_sum = torch.zeros(n)
            kernels.forward_step.default(q, acc, alpha_sum)
            return acc / alpha_sum
    """
    assert codes(source) == []
    looped = source.replace("            kernels.forward_step", "            for step in range(n):\n                kernels.forward_step")
    assert codes(looped) == []
    assert codes(source.replace("kernels.forward_step.default(q, acc, alpha_sum)", "torch.add(q, acc, alpha=2)")) == [("NAN201", 7)]


def test_a_bound_on_the_smallest_or_largest_element_bounds_every_element():
    """``if x.min() <= -1 or x.max() >= 1: raise`` leaves x in (-1, 1): 1 - x**2 > 0 and its log is finite."""
    [v, w] = probed("""
        import torch
        def inverse(x, y):
            if torch.min(x) <= -1 or torch.max(x) >= 1:
                raise ValueError("outside (-1, 1)")
            assert y.amax().item() < 0.5
            probe(x)
            probe(y)
    """)
    assert (v.lo, v.hi, v.lo_open, v.hi_open) == (-1.0, 1.0, True, True)
    assert v.hi == 1.0 and w.hi == 0.5 and w.lo == float("-inf")
    assert codes("""
        import torch
        def inverse(x):
            if torch.min(x) <= -1 or torch.max(x) >= 1:
                raise ValueError("outside (-1, 1)")
            return -torch.log(1 - x ** 2)
    """) == []


def test_the_wrong_extreme_bounds_nothing():
    """``x.max() > -1`` says nothing of x's smallest element, nor ``torch.max(y, z) < 1`` of y's."""
    [v, w] = probed("""
        import torch
        def f(x, y, z):
            if x.max() <= -1:
                raise ValueError
            if torch.max(y, z) <= -1:
                raise ValueError
            probe(x)
            probe(y)
    """)
    assert v.lo == float("-inf") and w.hi == float("inf")


def test_an_unpacked_shape_entry_is_a_size_whatever_its_name():
    """``n_images, h, w, c = x.shape``: each entry is a size, as ``x.shape[0]`` is, not raw data by its name."""
    [n, h] = probed("""
        import numpy as np
        def tile(img_nhwc):
            n_images, height, width, n_channels = img_nhwc.shape
            probe(n_images)
            probe(height)
    """)
    assert n.lo == 1 and n.integer and not reaches_zero(n) and h.lo == 1
    assert codes("""
        import numpy as np
        def tile(img_nhwc):
            n_images, height, width, n_channels = img_nhwc.shape
            new_height = int(np.ceil(np.sqrt(n_images)))
            return float(n_images) / new_height
    """) == []


def test_a_mask_comparing_a_tensor_with_its_own_unique_values_holds_a_true():
    """``for c in torch.unique(labels): labels == c`` selects at least one element, so the per-class mean is
    finite; a class handed in from outside can be absent."""
    [own, broadcast, outside] = probed("""
        import torch
        def f(labels, c):
            for k in torch.unique(labels):
                probe(labels == k)
            u = labels.unique()
            probe(labels == u[:, None])
            probe(labels == c)
    """)
    assert own.vanish is None and broadcast.vanish is None
    assert outside.vanish is not None and outside.vanish.tier >= Tier.PLAUSIBLE
    assert codes("""
        import torch
        def per_class_mean(x, labels):
            out = []
            for k in torch.unique(labels):
                out.append(x[labels == k].mean(0))
            u = torch.unique(labels)
            mask = labels == u.unsqueeze(1)
            return out, (x.sum(1) * mask).sum(1) / mask.sum(1)
    """) == []


def test_dividing_by_a_temperature_grows_a_value_halving_it_does_not():
    """``s / 0.05`` passes exp's 88.7 for a score of 4.5; ``s / 0.5`` only doubles the score."""
    [cold, half] = probed("""
        import torch
        def f(s):
            probe(s / 0.05)
            probe(s / 0.5)
    """)
    assert cold.large is not None and half.large is None
    assert codes("""
        import torch
        def f(emb):
            s = (emb @ emb.T).clamp(0, float("inf"))
            return torch.exp(s / 0.5)
    """) == []


def test_a_power_with_a_nonpositive_exponent_of_a_probability_is_never_0():
    """``p ** (-q)`` for p in [0, 1] and q >= 0 is >= 1 (inf at p = 0), so its log never meets log(0)."""
    [v] = probed("""
        import torch
        import torch.nn.functional as F
        def f(logits, t):
            p = F.softmax(logits, dim=1)
            q = F.softmax(t, dim=1)
            probe(p ** (-q))
    """)
    assert v.lo == 1.0 and not reaches_zero(v) and v.vanish is None
    assert [c for c in codes("""
        import torch
        import torch.nn.functional as F
        def f(logits):
            m = F.softmax(logits, dim=1).mean(0)
            return torch.log(m ** (-m)).sum()
    """) if c[0].startswith("NAN10")] == []


def test_a_mask_name_is_its_condition_after_an_if_chain():
    """``safe = n > 0`` reaches ``x[safe] / n[safe]`` along each branch of an ``if``/``elif`` chain between
    them: it is the same definition, and the selection keeps only n > 0."""
    assert codes("""
        import torch
        def f(I_pos, s, variant):
            n = torch.sum(I_pos, dim=1)
            safe = n > 0
            if variant == "a":
                s = torch.log(1 + s)
            elif variant == "b":
                s = s * 2
            return torch.sum(s * I_pos, dim=-1)[safe] / n[safe].reshape(-1)
    """) == []


def test_a_running_total_is_what_its_increments_add_up_to():
    """``s += (x == 1).sum()`` round a loop is a count (0 when no element ever matched); ``n += 1`` is at least 1
    once the loop ran; ``t += y.abs()`` stays >= 0: the loop's back edge widens the total, it does not erase it."""
    [s, n, t] = probed("""
        import torch
        def f(xs, ys):
            s = 0
            n = 0
            for x in xs:
                s += (x == 1).sum()
                n += 1
            t = torch.zeros(3)
            for y in ys:
                t += y.abs()
            probe(s)
            probe(n)
            probe(t)
    """)
    assert (s.lo, s.hi, s.integer) == (0.0, float("inf"), True) and reaches_zero(s)
    assert (n.lo, n.hi) == (1.0, float("inf")) and not reaches_zero(n)
    assert t.lo == 0.0 and t.hi == float("inf")


def test_a_metric_state_updated_across_methods_keeps_its_counts():
    """``self.pos += (pred == 1).sum()`` in ``update``, read in ``compute``: 0 for a class never predicted;
    ``self.total += y.shape[0]`` is 0 only before any update; ``if self.pos == 0: return`` guards the read;
    ``tps[c], fps[c] = stat_scores(...)`` writes each item of the tuple into its own buffer."""
    assert codes("""
        import torch
        class Precision:
            def __init__(self):
                self.tp = 0
                self.pos = 0
                self.correct = 0
                self.total = 0
            def update(self, pred, y):
                self.tp += ((pred == 1) & (y == 1)).sum()
                self.pos += (pred == 1).sum()
                self.correct += (pred == y).sum()
                self.total += y.shape[0]
            def compute(self):
                return self.tp / self.pos
            def accuracy(self):
                return self.correct / self.total
            def guarded(self):
                if self.pos == 0:
                    return torch.zeros(())
                return self.tp / self.pos
    """) == [("NAN201", 14)]
    assert codes("""
        import torch
        def stat_scores(pred, target, c):
            tp = ((pred == c) * (target == c)).sum()
            fp = ((pred == c) * (target != c)).sum()
            return tp, fp
        def iou(pred, target, num_classes):
            tps = torch.zeros((num_classes,))
            fps = torch.zeros((num_classes,))
            for c in range(num_classes):
                tps[c], fps[c] = stat_scores(pred, target, c)
            return tps / (fps + tps)
    """) == [("NAN201", 11)]


def test_a_test_of_a_tensor_converted_to_a_number_guards_the_tensor():
    """``if observed.item() == 0: ... else: total / observed`` and ``float(n) > 0`` are tests of the tensor."""
    assert codes("""
        import torch
        def f(mats, labels, cl):
            total = torch.zeros(())
            observed = torch.zeros(())
            for mat in mats:
                valid = mat[labels == cl]
                total += valid.sum()
                observed += valid.numel()
            if observed.item() == 0:
                return torch.tensor(0.0)
            n = (labels == cl).sum()
            if float(n) > 0:
                return total / observed, total / n
            return total / observed
    """) == []


def test_a_size_less_the_count_of_a_mask_of_the_same_tensor_counts_the_rest():
    """``target.size(0) - (target == ignore).sum()`` is the count of the targets kept: 0 when every one is
    ignored; ``len(x) - 1`` and a size less a count of another tensor say nothing of the sort."""
    [rest, other, minus_one] = probed("""
        import torch
        def f(target, ignore_index, y):
            ignored = target == ignore_index
            probe(target.size(0) - ignored.sum())
            probe(target.size(0) - (y > 0).sum())
            probe(len(target) - 1)
    """)
    assert rest.lo == 0 and rest.integer and reaches_zero(rest)
    assert not reaches_zero(other) and not reaches_zero(minus_one)
    assert codes("""
        import torch
        def mean_loss(loss, target, ignore_index):
            ignored = target == ignore_index
            size = float((target.size(0) - ignored.sum()).item())
            return loss.masked_fill(ignored, 0.0).sum() / size
    """) == [("NAN201", 5)]


def test_a_test_before_an_assignment_is_about_the_old_value():
    """``x[x < eps] = eps; x = x.sqrt()``: the test repaired the old ``x``; it says nothing of the root's result
    being 0. A test after the assignment (``r = v.sqrt(); if (r == 0).any(): ...``) does."""
    assert codes("""
        import torch
        def f(v, eps=1e-8):
            norms = v.pow(2).sum(-1)
            norms[norms < eps] = eps
            norms = norms.sqrt()
            return norms
    """) == []


def test_a_device_move_keeps_the_values_also_of_an_attribute_moved_in_place():
    """``self.n = c_f.to_device(self.n, device=d)`` keeps what ``self.n`` held (integers 0..m), so
    ``(1 - c**2) ** self.n`` is an integer power, defined at 0."""
    assert codes("""
        import torch
        from . import common_functions as c_f
        class L(torch.nn.Module):
            def __init__(self, margin=4):
                super().__init__()
                self.n_range = torch.tensor([n for n in range(0, margin // 2 + 1)])
            def cast_types(self, dtype, device):
                self.n_range = c_f.to_device(self.n_range, device=device, dtype=dtype)
            def forward(self, cosine):
                return ((1 - cosine ** 2) ** self.n_range).sum()
    """) == []


def test_the_squared_distance_expansion_with_a_negated_cross_term_or_einops_rounds_below_0():
    """``x2 + y2 + xy`` with ``xy = x @ y.T * -2``, and the einops spelling (``reduce(x ** 2, ..., 'sum')``,
    ``rearrange``, ``einsum(x, y, ...)``) are the expansion ``|x|^2 + |y|^2 - 2 x.y``: a sqrt of it is NaN for
    nearly equal points; ``torch.cdist`` is not."""
    assert codes("""
        import torch
        from einops import einsum, rearrange, reduce
        def cdist(x, y):
            x2 = reduce(x ** 2, 'b n d -> b n', 'sum')
            y2 = reduce(y ** 2, 'b n d -> b n', 'sum')
            xy = einsum(x, y, 'b i d, b j d -> b i j') * -2
            return (rearrange(x2, 'b i -> b i 1') + rearrange(y2, 'b j -> b 1 j') + xy).sqrt()
        def plain(x, y):
            x2 = (x ** 2).sum(-1)
            y2 = (y ** 2).sum(-1)
            return (x2[:, None] + y2[None, :] + x @ y.T * -2).sqrt()
        def library(x, y):
            return torch.cdist(x, y)
    """) == [("NAN212", 7), ("NAN212", 11)]


def test_einops_moves_keep_values_and_its_reduce_is_a_reduction():
    """``reduce(mask, 'b n -> b', 'sum')`` is a count per sample (0 for a sample whose mask is all False);
    ``rearrange`` keeps a softmax a softmax; a clamped count is safe."""
    assert codes("""
        import torch
        from einops import rearrange, reduce
        def masked_mean(t, mask):
            return reduce(t * mask, 'b n -> b', 'sum') / reduce(mask, 'b n -> b', 'sum')
        def clamped(t, mask):
            den = reduce(mask.float(), 'b n -> b', 'sum').clamp(min=1e-5)
            return reduce(t, 'b n -> b', 'sum') / den
        def log_prob(logits):
            return torch.log(rearrange(logits.softmax(-1), 'b n -> n b'))
    """) == [("NAN201", 4), ("NAN101", 9)]


def test_registered_state_joins_the_attribute_and_its_updates():
    """``self.add_state("tp", default=torch.tensor(0))`` / ``self.register_buffer(...)``: ``self.tp += count``
    in ``update`` makes ``tp / (tp + fp)`` 0/0 for a class never predicted; a registered counter that only
    starts at 0 (``num_batches_tracked``) is 0 only before the first step."""
    assert codes("""
        import torch
        from torchmetrics import Metric
        class MyPrecision(Metric):
            def __init__(self):
                super().__init__()
                self.add_state("tp", default=torch.tensor(0), dist_reduce_fx="sum")
                self.add_state("fp", default=torch.tensor(0), dist_reduce_fx="sum")
                self.add_state("total", default=torch.tensor(0), dist_reduce_fx="sum")
            def update(self, preds, target):
                self.tp += ((preds == 1) & (target == 1)).sum()
                self.fp += ((preds == 1) & (target == 0)).sum()
                self.total += target.numel()
            def compute(self):
                return self.tp / (self.tp + self.fp), self.tp.float() / self.total
        class Norm(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
            def forward(self, x):
                if self.training:
                    self.num_batches_tracked += 1
                return x / self.num_batches_tracked
    """) == [("NAN201", 14)]


def test_python_numbers_divided_by_zero_raise_instead_of_making_nan():
    """``total / n`` of Python ints (annotated, documented, ``len``, ``.item()``, ``.shape[0]``) raises
    ZeroDivisionError: no inf or NaN is made, so NAN201 is quiet; a tensor on either side still divides to inf."""
    source = '''
        import math
        import torch

        def annotated(sample_count: int, total_count: int):
            return math.ceil(total_count / sample_count)

        def documented(sample_count, total_count):
            """Repeat a subset.

            Arguments
            ---------
            sample_count: int
                the number of samples
            total_count : int, optional
                the total
            """
            return total_count / sample_count

        def measured(x, mask):
            k = len(mask.nonzero())
            return x.shape[0] / k

        def tensor_by_count(x, mask):
            k = len(mask.nonzero())
            return x.sum() / k

        def tensor_documented(values, sample_count):
            """values: torch.Tensor, sample_count: the count

            sample_count : torch.Tensor
                the counts
            """
            return values / sample_count
    '''
    found = codes(source)
    lines = [line for code, line in found if code == "NAN201"]
    assert len(lines) == 2, found  # the tensor divided by a length, and the count documented as a tensor
    import textwrap

    text = textwrap.dedent(source).lstrip("\n").splitlines()
    assert {text[line - 1].strip() for line in lines} == {"return x.sum() / k", "return values / sample_count"}


def test_a_documented_scalar_type_is_read_from_numpy_google_and_sphinx_docstrings():
    import libcst as cst

    from nanlint.analysis.calls import documented_type

    fn = cst.parse_module('''
def f(a, b, c, d, e, g, h):
    """Doc.

    a: int
        the number
    b : float, optional
    c (int): y
    d: torch.Tensor
    :type e: int
    :param float g: w
    h : int or None
    """
''').body[0]
    assert [documented_type(fn, n) for n in "abcdegh"] == ["int", "float", "int", None, "int", "float", None]


def _division_sides(source: str, numerator_first: bool):
    """The zero evidence of the denominator of the one division in ``source``, asked after (or before) the
    numerator's value, on the very same nodes (the memo is keyed by node)."""
    import textwrap

    import libcst as cst

    from nanlint.analysis.context import FileContext
    from nanlint.analysis.walker import Walker
    from nanlint.api import analysis_options
    from nanlint.rules.base import Rule

    source = textwrap.dedent(source)
    module = cst.parse_module(source)
    ctx = FileContext(source, "t.py", module, analysis_options(Config(), "t.py"))
    out = []

    class Sides(Rule):
        code = "NAN101"  # borrows a catalog entry; never registered

        def visit_BinaryOperation(self, node):
            if isinstance(node.operator, cst.Divide):
                if numerator_first:
                    self.ctx.value(node.left)
                out.append(self.ctx.value(node.right).zero)

    Walker(ctx, [Sides(ctx)], []).walk(module)
    return out


def test_a_value_read_through_a_loop_back_edge_does_not_depend_on_what_was_asked_first():
    """``image[b] = (img - img.mean()) / img.std()`` in a loop: asking for the numerator first evaluates the
    write, whose value reads ``img.std()`` while ``image`` is being evaluated (a cut back edge). What is computed
    under that cut is provisional; the denominator asked afterwards is still a std of a constant image."""
    source = '''
        import numpy as np
        def normalize(image):
            for batch in range(image.shape[0]):
                img = image[batch]
                image[batch] = (img - img.mean()) / img.std()
            return image
    '''
    [first] = _division_sides(source, numerator_first=False)
    [after] = _division_sides(source, numerator_first=True)
    assert first is not None and first.kind == "constant"
    assert after == first


def test_a_helper_the_file_calls_only_under_no_grad_carries_no_gradient():
    """``target = sharpen(probs)`` inside ``with torch.no_grad():`` is the only call of ``sharpen``: its
    gradient-only hazards (a fractional power at 0) cannot fire. A helper also called with gradients, and
    ``forward`` (run by torch whatever the file's own calls say), keep theirs."""
    source = '''
        import torch

        def sharpen(probabilities, temperature):
            return probabilities ** (1.0 / temperature)

        def used_both(probabilities, temperature):
            return probabilities ** (1.0 / temperature)

        def relay(probabilities, temperature):
            return sharpen(probabilities, temperature)

        class Teacher(torch.nn.Module):
            def forward(self, probabilities, temperature):
                return probabilities ** (1.0 / temperature)

        class Loss(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.teacher = Teacher()

            def forward(self, a, b, t):
                with torch.no_grad():
                    target = relay(torch.softmax(b, -1), t)
                    z = used_both(torch.softmax(b, -1), t)
                    q = self.teacher.forward(torch.softmax(b, -1), t)
                w = used_both(torch.softmax(a, -1), t)
                return (target * torch.log_softmax(a, -1)).sum() + z.sum() + w.sum() + q.sum()
    '''
    assert [line for code, line in codes(source) if code == "NAN214"] == [7, 14]


def test_confusion_matrix_cells_are_counts_and_a_guard_on_a_sum_is_read_as_spelled():
    """A confusion matrix handed in holds counts (0 for a class never predicted, no gradient): ``tp / (tp + fp)``
    is a 0/0, ``where((tp + fp) > 0, tp / (tp + fp), nan)`` guards it (the condition tests the very sum), and the
    where's unused branch has no gradient to poison (NAN241 is quiet on counts)."""
    source = '''
        import torch

        def precision(confusion_matrix):
            tp, fp = confusion_matrix[..., 0], confusion_matrix[..., 1]
            return tp / (tp + fp)

        def guarded(confusion_matrix):
            tp, fp = confusion_matrix[..., 0], confusion_matrix[..., 1]
            nan = torch.tensor(float("nan"))
            return torch.where((tp + fp) > 0, tp / (tp + fp), nan)
    '''
    assert codes(source) == [("NAN201", 5)]


def test_writing_a_selection_into_a_full_tensor_does_not_make_it_empty():
    """``scores = ones_like(rss); scores[cond] = 1 - rss[cond] / tss[cond]``: ``scores`` keeps its own extent, so
    its mean is over every entry even when ``cond`` selects nothing."""
    source = '''
        import torch

        def r2(rss, tss):
            cond = tss != 0
            scores = torch.ones_like(rss)
            scores[cond] = 1 - rss[cond] / tss[cond]
            return torch.mean(scores)

        def selected(rss, tss):
            cond = tss != 0
            return torch.mean(rss[cond])
    '''
    assert codes(source) == [("NAN203", 11)]


def test_a_selection_tested_for_elements_is_guarded_as_spelled():
    """``-1 if len(p[p > -1]) == 0 else mean(p[p > -1])``, and the same as an early return: the mean is over a
    selection the test showed is not empty."""
    source = '''
        import torch

        def ap(prec):
            return torch.tensor([-1.0]) if len(prec[prec > -1]) == 0 else torch.mean(prec[prec > -1])

        def ap_return(prec):
            if len(prec[prec > -1]) == 0:
                return -1.0
            return float(prec[prec > -1].mean())

        def unguarded(prec):
            return torch.mean(prec[prec > -1])
    '''
    assert codes(source) == [("NAN203", 12)]


def test_a_selection_of_one_element_is_plausible_for_a_class_and_degenerate_for_a_threshold():
    """``x[labels == c].std()``: a class with one sample in the batch is ordinary. ``x[x > t].var()`` or a mask
    handed in that picks exactly one entry is a degenerate input: reported only with ``--strict``."""
    import textwrap

    source = textwrap.dedent('''
        import torch

        def per_class(x, labels, c):
            return x[labels == c].std()

        def above(x, t):
            return x[x > t].var()

        def masked(item, item_mask):
            return item.masked_select(item_mask).var()
    ''').lstrip("\n")
    default = [(f.code, f.line) for f in check_source(source, "t.py") if f.code == "NAN231"]
    strict = [(f.code, f.line) for f in check_source(source, "t.py", Config(strict=True)) if f.code == "NAN231"]
    assert default == [("NAN231", 4)]
    assert strict == [("NAN231", 4), ("NAN231", 7), ("NAN231", 10)]


def test_a_mask_narrowed_in_place_can_end_all_false_but_one_kept_by_a_slice_write_cannot():
    """CTC decoding: ``sel = ones(n, bool); sel[1:] = ids[1:] != ids[:-1]`` keeps entry 0 True, but
    ``sel &= ids != 0`` (drop blanks) is all False for an all-blank output, and the mean score of nothing is NaN."""
    source = '''
        import torch

        def decode(preds_idx, preds_prob):
            selection = torch.ones(len(preds_idx), dtype=torch.bool)
            selection[1:] = preds_idx[1:] != preds_idx[:-1]
            selection &= preds_idx != 0
            return preds_prob[selection].mean().item()

        def deduplicated(preds_idx, preds_prob):
            selection = torch.ones(len(preds_idx), dtype=torch.bool)
            selection[1:] = preds_idx[1:] != preds_idx[:-1]
            return preds_prob[selection].mean().item()
    '''
    assert [f for f in codes(source) if f[0] == "NAN203"] == [("NAN203", 7)]


def test_the_arguments_of_a_custom_autograd_function_reach_its_forward_through_apply():
    """``Cumulation.apply(q, k)`` calls ``Cumulation.forward(ctx, q, k)``: normalized q and k make the
    ``acos(q @ k.T)`` in forward the acos of a cosine, which rounds past 1 for nearly parallel vectors."""
    source = '''
        import math
        import torch
        import torch.nn.functional as F

        class Cumulation(torch.autograd.Function):
            @staticmethod
            def forward(ctx, query, key):
                return 1 - torch.acos(torch.matmul(query, key.transpose(-1, -2))) / math.pi

            @staticmethod
            def backward(ctx, grad):
                return grad, grad

        def attend(q, k):
            q = F.normalize(q, p=2, dim=-1)
            k = F.normalize(k, p=2, dim=-1)
            return Cumulation.apply(q, k)
    '''
    assert codes(source) == [("NAN221", 8)]


def test_a_list_built_by_append_holds_what_was_appended():
    """``out = []; for t in xs: out.append(F.normalize(t))``: its elements (indexed, unpacked) are unit vectors,
    so ``acos(a @ b.T)`` of two of them is the acos of a cosine; a list extended from a list of unknown
    origin holds unknown values as well."""
    [element, product, mixed] = probed("""
        import torch
        import torch.nn.functional as F
        def f(xs, given):
            out = []
            for t in xs:
                out.append(F.normalize(t, dim=-1))
            a, b = out
            probe(out[0])
            probe(torch.matmul(a, b.T))
            given.append(F.normalize(xs[0], dim=-1))
            probe(given[0])
    """)
    assert element.unit and product.beyond is not None
    assert not mixed.unit


def test_the_parameters_of_a_schedule_or_no_grad_function_carry_no_gradient():
    """In a noise scheduler's step (and under ``@torch.no_grad()``) the sigmas are a schedule laid out to stay
    ordered: ``(sigma_hat**2 - sigma**2) ** 0.5`` going below 0 is a degenerate schedule. The same arithmetic on
    values of a model's forward can cross 0 on ordinary inputs."""
    source = '''
        import torch

        class EulerScheduler(SchedulerMixin):
            def step(self, model_output, sigma, sigma_hat, sample):
                return sample + torch.randn_like(sample) * (sigma_hat**2 - sigma**2) ** 0.5

        @torch.no_grad()
        def sample_euler(x, sigma, sigma_hat):
            return x + torch.randn_like(x) * (sigma_hat**2 - sigma**2) ** 0.5

        class Head(torch.nn.Module):
            def forward(self, model_output, sigma, sigma_hat, sample):
                return sample + model_output * (sigma_hat**2 - sigma**2) ** 0.5
    '''
    assert codes(source) == [("NAN212", 13)]


def test_limits_and_settings_named_after_a_signal_are_not_signals():
    """``max_pixels``, ``min_depth``, ``pixel_shuffle_factor``, ``video_fps``: a limit or a factor named after
    pixels or frames is a setting, not a black image; ``image_max`` (a value of the data) still is one."""
    source = '''
        import math
        import torch

        def smart_resize(height, width, max_pixels, pixel_shuffle_factor, video_fps):
            beta = math.sqrt((height * width) / max_pixels)
            return beta / pixel_shuffle_factor, 1.0 / video_fps

        def anchors(ref_y, valid_ratios, height, image_shapes, frames_indices):
            return ref_y / (valid_ratios[:, 1] * height), ref_y / image_shapes[0], ref_y / frames_indices

        def rescale(x, image_max):
            return x / image_max
    '''
    assert codes(source) == [("NAN201", 12)]


def test_every_value_computed_in_a_scheduler_step_is_without_gradient():
    """``sigma_hat = sigma * (gamma + 1)`` read from the scheduler's own table: nothing in a scheduler's step
    carries a gradient, so its ``(sigma_hat**2 - sigma**2) ** 0.5`` going below 0 is a degenerate schedule."""
    source = '''
        import torch

        class EulerDiscreteScheduler(SchedulerMixin, ConfigMixin):
            def step(self, model_output, sample, s_churn=0.0):
                sigma = self.sigmas[self.step_index]
                gamma = min(s_churn / (len(self.sigmas) - 1), 2**0.5 - 1)
                sigma_hat = sigma * (gamma + 1)
                eps = torch.randn_like(model_output)
                return sample + eps * (sigma_hat**2 - sigma**2) ** 0.5

        class Noise(torch.nn.Module):
            def forward(self, sample, sigma, sigma_hat):
                return sample + (sigma_hat**2 - sigma**2) ** 0.5
    '''
    assert [c for c in codes(source) if c[0] == "NAN212"] == [("NAN212", 13)]
