"""NAN201-NAN203: divisions by values that can be 0, division by an own norm, means of empty selections."""
from __future__ import annotations

import pytest

from nanlint.api import check_source
from nanlint.config import Config
from nanlint.findings import Confidence
from nanlint.fixes import apply_edits
from rule_cases import found


FLAGGED_201 = [
    ("def f(events, use_cuda):\n    total = sum([e.t for e in events]) if use_cuda else 0\n    out = []\n    for e in events:\n"
     "        if not use_cuda:\n            out.append(e.t * 100.0 / total)\n    return out\n", 6),
    # two loops over the same range meet on the diagonal
    ("def f(n, x):\n    out = []\n    for i in range(n):\n        for j in range(n):\n            out.append(x / (j - i))\n    return out\n", 5),
    # ...weights that come with the data are
    ("import torch\ndef f(tp, batch):\n    weights = batch['weights']\n    return (tp * weights).sum() / weights.sum()\n", 4),
    # ...but summed over its rows (dim 0) it is the sum of nothing, 0
    ("import torch\ndef f(x, labels):\n    sel = x[labels == 3]\n    return x / sel.sum(0)\n", 4),
    # the same helper given a count that can be 0 keeps that too
    ("import torch\nfrom .utils import broadcast, degree\ndef f(out, index, n):\n    count = degree(index, n)\n"
     "    count = broadcast(count, ref=out, dim=0)\n    return out / count\n", 6),
    ("import torch\ndef f(loss, mask):\n    return (loss * mask).sum(-1) / mask.sum(-1)\n", 3),
    ("import torch\ndef f(signal):\n    return signal / signal.std()\n", 3),
    ("import numpy as np\ndef f(v):\n    return (v - np.mean(v)) / np.std(v)\n", 3),
    ("import torch\ndef f(wav):\n    return torch.div(wav, wav.abs().max())\n", 3),
    ("import torch\ndef f(x, labels, c):\n    n = (labels == c).sum()\n    x /= n\n    return x\n", 4),
    ("import torch\ndef f(x, labels):\n    return x.div_((labels == 0).float().sum())\n", 3),
    ("import torch\ndef f(x, mask):\n    return torch.reciprocal(torch.norm(mask.float(), dim=1))\n", 3),
    ("import torch\ndef f(image):\n    return image.var(0).reciprocal()\n", 3),
    ("def f(xs):\n    keep = [x for x in xs if x > 0]\n    return sum(keep) / len(keep)\n", 3),
    ("import torch\ndef f(x, index):\n    deg = torch.bincount(index)\n    return x / torch.log(deg + 1)\n", 4),
    ("import torch\nEPS = 1e-6\ndef f(z):\n    z = torch.where(torch.abs(z) > EPS, z, torch.sign(z) * EPS)\n    return 1.0 / z\n", 5),
    ("import torch\ndef f(p, w, eps):\n    g = p.grad\n    curr_eps = eps * min(1, torch.sqrt(torch.mean(g * g)))\n    base = w + curr_eps\n    return g / base\n", 6),
    ("import torch\ndef f(signal):\n    return signal / signal.abs().max()\n", 3),
    # kornia's saturation: the peak of a black image is 0
    ("import torch\ndef f(image):\n    maxc = image.max(-3)[0]\n    return (maxc - image.min(-3)[0]) / maxc\n", 4),
    ("import torch\nfrom audio import compute_amplitude\ndef f(w, n):\n    return w / compute_amplitude(w, n)\n", 4),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_201)
def test_division_by_maybe_zero_flagged(source, line):
    assert found(source, "NAN201") == [("NAN201", line)]


@pytest.mark.parametrize(
    ("source", "confidence"),
    [
        ("import torch\ndef f(x, labels, c):\n    return x / (labels == c).sum()\n", Confidence.HIGH),
        ("import torch\ndef f(x, signal):\n    return x / signal.abs().max()\n", Confidence.MEDIUM),
    ],
)
def test_division_confidence(source, confidence):
    (finding,) = check_source(source, "t.py", Config(select=("NAN201",)))
    assert finding.confidence is confidence


SILENT_201 = [
    # the 0 arm is taken only when use_cuda is false, and the division runs only when it is true
    "def f(events, use_cuda):\n    total = sum([e.t for e in events]) if use_cuda else 0\n    out = []\n    for e in events:\n"
    "        if use_cuda:\n            out.append(e.t * 100.0 / total)\n    return out\n",
    # the inner loop starts past the outer index: j - i >= 2; entries of a grid are distinct by construction
    "def f(n, x):\n    out = []\n    for i in range(n):\n        for j in range(i + 2, n):\n            out.append(x / (j - i))\n    return out\n",
    "import torch\ndef f(start: float = 0.0, stop: float = 5.0, n: int = 50):\n    offset = torch.linspace(start, stop, n)\n"
    "    return -0.5 / (offset[1] - offset[0]).item() ** 2\n",
    # weights the user configures (a list of floats) are not "all 0 for an empty batch"
    "import torch\nfrom typing import List, Optional\ndef f(tp, class_weights: Optional[List[float]] = None):\n"
    "    class_weights = class_weights if class_weights is not None else 1.0\n"
    "    class_weights = torch.tensor(class_weights).to(tp.device)\n    return (tp * class_weights).sum() / class_weights.sum()\n",
    # a selection of no row reduced along its rows' own dim is empty, and so is the quotient: no inf
    "import torch\ndef f(edge_vec, mask):\n    return edge_vec[mask] / torch.norm(edge_vec[mask], dim=1).unsqueeze(1)\n",
    "import torch\ndef f(x, mask):\n    sel = x[mask]\n    return sel / sel.sum(dim=1, keepdim=True)\n",
    # the code's own arithmetic, only imprecisely known, is not "counts that can be 0" because of its name
    "import numpy as np\ndef f(ys, k, n):\n    counts = np.zeros((n, k), dtype=np.int32)\n    for i in range(n):\n"
    "        u, c = np.unique(ys[i], return_counts=True)\n        counts[i, u] = c\n    counts += 1\n"
    "    counts = counts / counts.sum(1).reshape(-1, 1)\n    return counts[0] / counts[1]\n",
    "import torch\ndef f(sample, distance):\n    mask_pixel_spacing = sample['pixel_spacing'] * 2 ** sample['level']\n"
    "    return distance / (mask_pixel_spacing * 2)\n",
    # a project helper handed the count gives it back under its name: the clamp to >= 1 still holds
    "import torch\nfrom .utils import broadcast, degree\ndef f(out, index, n):\n    count = degree(index, n)\n"
    "    count = count.sqrt().clamp(min=1.0)\n    count = broadcast(count, ref=out, dim=0)\n    return out / count\n",
    # a size below num: num > 0 there
    "import torch\ndef f(found, k):\n    num = 0\n    if k:\n        num = int(k * 2)\n    if found.size(1) < num:\n"
    "        return found.size(1) / num\n    return 1.0\n",
    # statistics of values the function knows nothing of: a dense activation is never constant or all 0 in practice
    "import torch\ndef f(x):\n    return x / x.std()\n",
    "import torch\ndef f(x):\n    return torch.div(x, x.abs().max())\n",
    "import torch\ndef f(x):\n    return torch.reciprocal(torch.norm(x, dim=1))\n",
    "import torch\ndef f(x):\n    return x.var(0).reciprocal()\n",
    # torchvision's `y / y.abs().max()` of box coordinates
    "import torch\ndef f(y):\n    y_max = torch.max(y.abs(), dim=1, keepdim=True)[0]\n    return y / y_max\n",
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
    assert "`n`, a count (`mask.sum(-1)`) (line 3)" in finding.message and "the mask `mask`" in finding.message


FLAGGED_202 = [
    ("import torch\ndef f(x, mask):\n    x = x * mask\n    return x / x.norm(dim=-1, keepdim=True)\n", 4),
    ("import torch\ndef f(image):\n    return image / torch.norm(image, p=2, dim=1, keepdim=True)\n", 3),
    ("import torch\ndef f(x, valid):\n    x = x * valid.float()\n    n = torch.linalg.vector_norm(x, dim=1, keepdim=True)\n    return x / n\n", 5),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_202)
def test_division_by_own_norm_flagged(source, line):
    assert found(source, "NAN202") == [("NAN202", line)]
    assert found(source, "NAN201") == []  # one finding per site


def test_division_by_own_norm_unsafe_fix():
    source = "import torch\nimport torch.nn.functional as F\ndef f(image):\n    return image / image.norm(dim=-1, keepdim=True)\n"
    findings = check_source(source, "t.py", Config(select=("NAN202",)))
    assert apply_edits(source, findings)[1] == 0  # not applied without --unsafe-fixes
    assert apply_edits(source, findings, unsafe=True)[0] == "import torch\nimport torch.nn.functional as F\ndef f(image):\n    return F.normalize(image, dim=-1)\n"


@pytest.mark.parametrize(
    "source",
    [
        "import torch.nn.functional as F\ndef f(x):\n    return F.normalize(x, dim=-1)\n",
        # the norm of a dense activation or an embedding is never 0 in practice
        "import torch\ndef f(x):\n    return x / x.norm(dim=-1, keepdim=True)\n",
        "import torch\ndef f(text_embeds):\n    return text_embeds / text_embeds.norm(p=2, dim=-1, keepdim=True)\n",
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


# A sum or peak of values of unknown sign is rarely exactly 0: NAN201 leaves it to NAN204 (preview, low confidence).
UNSIGNED_SUMS = [
    # qwen2_5_omni's kaiser filter
    ("import torch\ndef f(window, sinc):\n    taps = 2 * window * sinc\n    taps /= taps.sum()\n    return taps\n", 4),
    # idefics3's patch count
    ("import torch\ndef f(patch_attention_mask):\n    n = patch_attention_mask[:, :, 0].sum(dim=1)\n    return 1.0 / n\n", 4),
]


@pytest.mark.parametrize(("source", "line"), UNSIGNED_SUMS)
def test_division_by_unsigned_sum_is_nan204_not_nan201(source, line):
    assert found(source, "NAN201") == []
    assert found(source, "NAN204") == [("NAN204", line)]
    (finding,) = check_source(source, "t.py", Config(select=("NAN204",), preview=True))
    assert finding.confidence is Confidence.LOW
    assert check_source(source, "t.py", Config()) == []  # not in the default selection


def test_nan204_leaves_the_stronger_reasons_to_nan201():
    source = "import torch\ndef f(x, labels, c):\n    return x / (labels == c).sum()\n"
    assert found(source, "NAN201") == [("NAN201", 3)]
    assert found(source, "NAN204") == []


def test_division_by_norm_of_top_softmax_values_is_silent():
    # dbrx: the top-k values of a distribution are >= 1/n, their norm is never 0
    source = ("import torch\ndef route(logits, k):\n    probs = torch.nn.functional.softmax(logits, dim=1)\n"
              "    top, idx = torch.topk(probs, k, dim=-1)\n    return top / torch.norm(top, p=1, dim=-1, keepdim=True)\n")
    assert found(source, "NAN202") == []
    assert found(source, "NAN201") == []


def test_division_by_norm_of_top_sigmoid_values_is_silent():
    # a sigmoid does not sum to 1, but all k top values underflow together only if every logit is below -104
    source = ("import torch\ndef f(logits, k):\n    top, _ = torch.topk(torch.sigmoid(logits), k)\n"
              "    return top / torch.norm(top, dim=-1, keepdim=True)\n")
    assert found(source, "NAN202") == []


def test_mean_of_rows_picked_by_a_loop_position_is_silent():
    # qwen4_exp: `raw_keys[batch_idx]` is one row of the batch, not a selection by a mask
    source = ("import torch\ndef f(raw_keys, index, batch_size):\n    for batch_idx in range(batch_size):\n"
              "        groups = raw_keys[batch_idx].index_select(0, index)\n        pooled = groups.float().mean(dim=1)\n")
    assert found(source, "NAN203") == []


def test_mean_of_positions_that_can_be_none_is_flagged():
    source = "import torch\ndef f(loss, labels):\n    pos_idx = torch.nonzero(labels > 0).squeeze(1)\n    return loss[pos_idx].mean()\n"
    assert found(source, "NAN203") == [("NAN203", 4)]


def test_division_by_peak_of_cos_sin_pairs_is_silent():
    # deformable DETR's sampling-offset init: max(|cos t|, |sin t|) >= 1/sqrt(2), never 0
    source = ("import math\nimport torch\ndef init(n):\n    thetas = torch.arange(n).float() * (2.0 * math.pi / n)\n"
              "    grid = torch.stack([thetas.cos(), thetas.sin()], -1)\n    return grid / grid.abs().max(-1, keepdim=True)[0]\n")
    assert found(source, "NAN201") == []


def test_division_by_abs_of_a_scale_is_silent():
    # d_fine's `points / reg_scale` after `reg_scale = abs(reg_scale)`: no riskier than dividing by reg_scale itself
    source = ("import torch\ndef distance2bbox(points, distance, reg_scale):\n    reg_scale = abs(reg_scale)\n"
              "    return points[..., 0] - (0.5 * reg_scale + distance[..., 0]) * (points[..., 2] / reg_scale)\n")
    assert found(source, "NAN201") == []


WEIGHTED_MEANS = [
    ("import torch\ndef loss(loss_map, gt_score):\n    return torch.sum(loss_map * gt_score) / torch.sum(gt_score)\n", 3),
    ("import torch\ndef loss(per_frame, batch):\n    weight = batch[2][0][0:1].float()\n    return torch.dot(per_frame, weight[0]) / torch.sum(weight)\n", 4),
    ("import torch\ndef loss(l, batch):\n    w = batch['weights']\n    total = (l * w).sum()\n    return total / w.sum()\n", 5),
]


def test_a_weighted_mean_with_weights_nothing_says_vanish_is_silent():
    """Quadrature weights, or per-sample weights handed in: all 0 only by the caller's error."""
    assert found("import torch\ndef loss(l, w):\n    return (l * w).sum() / w.sum()\n", "NAN201") == []
    assert found("import torch\ndef f(x, n):\n    q = torch.rand(n) + 0.5\n    return (x * q).sum() / q.sum()\n", "NAN201") == []


@pytest.mark.parametrize(("source", "line"), WEIGHTED_MEANS)
def test_weighted_mean_by_a_weight_sum_is_nan201_not_the_preview_rule(source, line):
    assert found(source, "NAN201") == [("NAN201", line)]
    assert found(source, "NAN204") == []


@pytest.mark.parametrize(
    "source",
    [
        # normalizing a vector by its own sum is not a weighted mean: left to the preview rule NAN204
        "import torch\ndef f(window, sinc):\n    filt = window * sinc\n    filt /= filt.sum()\n    return filt\n",
        # the weight sum is clamped
        "import torch\ndef loss(l, w):\n    return (l * w).sum() / w.sum().clamp_min(1e-6)\n",
    ],
)
def test_weighted_mean_rule_is_quiet_on_normalization_and_guards(source):
    assert found(source, "NAN201") == []
