"""NAN211-NAN214, NAN221, NAN231: roots and powers at 0 or below, inverse trigonometry at +-1, unbiased
statistics over one element."""
from __future__ import annotations

import pytest

from nanlint.api import check_source
from nanlint.config import Config
from nanlint.findings import Confidence
from rule_cases import found


T = "import torch\nimport torch.nn.functional as F\n"

FLAGGED_211 = [
    (T + "def forward(x, mask):\n    return torch.sqrt((x * mask).abs().pow(2).sum(-1))\n", 4),
    (T + "def forward(x, valid):\n    x = x * valid\n    x = torch.mul(x, x)\n    x = torch.sum(x, dim=1)\n    return torch.sqrt(x)\n", 7),
    (T + "def forward(signal):\n    return signal.var(-1) ** 0.5\n", 4),
    # relu's 0 times a learned factor: the factor's gradient relu(v) * inf = NaN is not dropped by relu
    (T + "def forward(v, w):\n    return torch.pow(F.relu(v) * w, 1 / 3)\n", 4),
    (T + "def forward(image):\n    return torch.rsqrt(image.var(-1))\n", 4),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_211)
def test_sqrt_of_maybe_zero_flagged(source, line):
    assert found(source, "NAN211") == [("NAN211", line)]


SILENT_211 = [
    # relu's backward passes 0 where its input was <= 0: the inf gradient of the root at relu's 0s is dropped
    T + "def forward(v):\n    return torch.pow(F.relu(v), 1 / 3)\n",
    T + "def forward(out):\n    return out.relu().sqrt()\n",
    # clamp's backward also drops the gradient of entries it clamped
    T + "def forward(v):\n    return v.clamp(min=0).sqrt()\n",
    # sums of squares, variances and dot products of dense activations: never exactly 0 in practice
    T + "def forward(x):\n    return torch.sqrt(x.abs().pow(2).sum(-1))\n",
    T + "def forward(x):\n    return (x * x).sum(2).sqrt()\n",
    T + "def forward(v):\n    return v.var(-1) ** 0.5\n",
    T + "def forward(v):\n    return torch.rsqrt(v.var(-1))\n",
    T + "from kornia.linalg import batched_dot_product\ndef forward(w):\n    return batched_dot_product(w, w).sqrt()\n",
    T + "def f(x, eps=1e-6):\n    return torch.sqrt((x * x).sum(-1) + eps)\n",
    T + "def f(x):\n    return (x * x).sum(-1).clamp_min(1e-12).sqrt()\n",
    T + "def f(v, eps=1e-5):\n    return torch.rsqrt(v.var(-1) + eps)\n",
    T + "def f(x):\n    return torch.linalg.vector_norm(x, dim=-1)\n",
    T + "def f(x):\n    return torch.sqrt(x)\n",
    T + "@torch.no_grad()\ndef f(x):\n    return torch.sqrt((x * x).sum(-1))\n",
    T + "def f(x):\n    with torch.no_grad():\n        return torch.sqrt((x * x).sum(-1))\n",
    "import numpy as np\ndef f(x):\n    return np.sqrt((x * x).sum(-1))\n",
    T + "def f(x):\n    return torch.where(x > 0, torch.sqrt(x), 0.0)\n",
    T + "def f(x):\n    return torch.sqrt(x[x > 0])\n",
]


@pytest.mark.parametrize("source", SILENT_211)
def test_sqrt_of_maybe_zero_silent(source):
    assert found(source, "NAN211") == []


# NAN211 is a gradient hazard: it needs evidence that the code is differentiated.
DIFFERENTIATED_211 = [
    # a method of an nn.Module (gemma3n's `mean(h**2) ** 0.5`)
    ("import torch\nfrom torch import nn\nclass AltUp(nn.Module):\n    def project(self, h):\n"
     "        h = h * self.mask\n        return torch.mean(h**2, dim=-1, keepdim=True) ** 0.5\n", 6),
    # a helper function in a file of modules (aimv2's `pow(sum_tensor, 0.5)`)
    ("import torch\nfrom torch import nn\ndef _get_vector_norm(tensor, mask):\n    square_tensor = torch.pow(tensor * mask, 2)\n"
     "    sum_tensor = torch.sum(square_tensor, dim=-1, keepdim=True)\n    return torch.pow(sum_tensor, 0.5)\n"
     "class Head(nn.Module):\n    def forward(self, x, mask):\n        return x / _get_vector_norm(x, mask)\n", 6),
    # a loss-like function name
    (T + "def edge_loss(image):\n    gx = image[..., 1:] - image[..., :-1]\n    return torch.sqrt(gx ** 2).mean()\n", 5),
    # a method in a file that imports torch.nn, outside any class statement we can see (an excerpt)
    ("import torch\nfrom kornia.core import Module\ndef log(self, mask):\n    v = self.v * mask\n    return torch.sqrt((v * v).sum(-1))\n", 5),
    # a file that trains
    (T + "def norm(x):\n    return torch.sqrt((x * x).sum(-1))\ndef step(model, x, mask):\n    norm(model(x) * mask).sum().backward()\n", 4),
]


@pytest.mark.parametrize(("source", "line"), DIFFERENTIATED_211)
def test_sqrt_of_maybe_zero_flagged_where_differentiated(source, line):
    assert found(source, "NAN211") == [("NAN211", line)]


NOT_DIFFERENTIATED_211 = [
    # preprocessing classes: their outputs are data (parakeet / cohere_asr feature extraction)
    "import torch\nclass ParakeetFeatureExtractor(SequenceFeatureExtractor):\n    def _torch_extract_fbank_features(self, stft):\n"
    "        magnitudes = torch.view_as_real(stft)\n        return torch.sqrt(magnitudes.pow(2).sum(-1))\n",
    "import torch\nfrom torch import nn\nclass ResizeTransform(Transform):\n    def forward(self, x):\n"
    "        return torch.sqrt((x * x).sum(-1))\n",
    # box geometry in a functional module with no sign of autograd (torchvision's _geometry / _misc)
    "import torch\nfrom torch.nn.functional import grid_sample\ndef _parallelogram_to_box(x1, y1, x2, y2):\n"
    "    return torch.sqrt((x2 - x1).pow(2) + (y2 - y1).pow(2))\n",
    # inside a Module, but under no_grad
    "import torch\nfrom torch import nn\nclass M(nn.Module):\n    @torch.no_grad()\n    def forward(self, x):\n"
    "        return torch.sqrt((x * x).sum(-1))\n",
]


@pytest.mark.parametrize("source", NOT_DIFFERENTIATED_211)
def test_sqrt_of_maybe_zero_silent_where_not_differentiated(source):
    assert found(source, "NAN211") == []


def test_a_transformer_class_is_not_a_transform():
    source = ("import torch\nfrom torch import nn\nclass VisionTransformer(nn.Module):\n    def forward(self, x, mask):\n"
              "        return torch.sqrt((x * x * mask).sum(-1))\n")
    assert found(source, "NAN211") == [("NAN211", 5)]


FLAGGED_212 = [
    (T + "def f(a, w):\n    cosine = F.linear(F.normalize(a), F.normalize(w))\n    return torch.sqrt(1.0 - torch.pow(cosine, 2))\n", 5),
    (T + "def f(a, b):\n    c = F.cosine_similarity(a, b)\n    return (1 - c ** 2).sqrt()\n", 5),
    (T + "def f(outputs):\n    cosine = outputs.float()\n    return torch.sqrt(1.0 - cosine * cosine)\n", 5),
    (T + "def f(m, det):\n    return m - (m ** 2 - det).sqrt()\n", 4),
    ("import numpy as np\ndef f(m, det):\n    return np.sqrt(m ** 2 - det)\n", 3),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_212)
def test_sqrt_of_maybe_negative_flagged(source, line):
    assert found(source, "NAN212") == [("NAN212", line)]
    assert found(source, "NAN211") == []


def test_sqrt_of_named_cosine_is_medium_confidence():
    (finding,) = check_source(T + "def f(outputs):\n    cosine = outputs.float()\n    return torch.sqrt(1.0 - cosine * cosine)\n",
                              "t.py", Config(select=("NAN212",)))
    assert finding.confidence is Confidence.MEDIUM


@pytest.mark.parametrize(
    "source",
    [
        T + "def f(a, w):\n    cosine = F.linear(F.normalize(a), F.normalize(w)).clamp(-1 + 1e-7, 1 - 1e-7)\n    return torch.sqrt(1.0 - torch.pow(cosine, 2))\n",
        T + "def f(m, det, eps=1e-12):\n    return (m ** 2 - det).clamp_min(eps).sqrt()\n",
        T + "def f(alphas_cumprod):\n    return torch.sqrt(1.0 - alphas_cumprod)\n",
    ],
)
def test_sqrt_of_maybe_negative_silent(source):
    assert found(source, "NAN212") == []


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (T + "def f(images, eps=1e-5):\n    return images / (images.var(dim=(2, 3), keepdim=True).sqrt() + eps)\n", 4),
        (T + "class A(torch.nn.Module):\n    def __init__(self):\n        self.eps = 1e-5\n    def forward(self, x):\n        return (torch.sqrt(torch.var(x, dim=2)) + self.eps).view(-1)\n", 7),
        (T + "def f(x):\n    return x / (torch.sqrt((x * x).mean(-1)) + 1e-6)\n", 4),
    ],
)
def test_eps_outside_root_flagged(source, line):
    assert found(source, "NAN213") == [("NAN213", line)]


@pytest.mark.parametrize(
    "source",
    [
        T + "def f(x, eps=1e-5):\n    return x / torch.sqrt(x.var(dim=-1, keepdim=True) + eps)\n",
        "import numpy as np\ndef f(img, eps=1e-7):\n    return (img - img.mean()) / (img.std() + eps)\n",
        T + "def f(x):\n    return x.std() + 1.0\n",
        # torch's std backward is 0 where the std is 0
        T + "def f(x, eps=1e-5):\n    return x / (x.std(dim=(2, 3), keepdim=True) + eps)\n",
    ],
)
def test_eps_outside_root_silent(source):
    assert found(source, "NAN213") == []


def test_std_and_norm_backward_are_masked_at_0_and_a_hand_written_root_is_not():
    """Why NAN213 reports `sqrt(var) + eps` and not `std() + eps`: what torch really does at a constant input."""
    import torch

    def grad(f):
        x = torch.ones(2, 3, 4, requires_grad=True)
        f(x).sum().backward()
        return bool(torch.isfinite(x.grad).all())

    assert grad(lambda x: x / (x.std(dim=2, keepdim=True) + 1e-5))
    assert grad(lambda x: (x - x).norm(dim=2))
    assert not grad(lambda x: x / (x.var(dim=2, keepdim=True).sqrt() + 1e-5))
    assert found(T + "def f(x):\n    return x / (x.var(dim=2, keepdim=True).sqrt() + 1e-5)\n", "NAN213") == [("NAN213", 4)]


FLAGGED_214 = [
    (T + "def f(x, gamma=2.0):\n    p = torch.sigmoid(x)\n    return torch.pow(1.0 - p, gamma)\n", 5),
    # raw images are exactly 0 in black regions on their own: clamp passes that entry's inf gradient back
    (T + "def f(images, p):\n    return images.clamp(min=0, max=100).pow(p)\n", 4),
    (T + "def f(ce, gamma):\n    p = torch.exp(-ce)\n    return (1 - p) ** gamma * ce\n", 5),
    (T + "def f(r):\n    return torch.pow(2 * r - 1.0 - torch.pow(r, 2), 2.4)\n", None),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_214[:3])
def test_fractional_power_flagged(source, line):
    assert found(source, "NAN214") == [("NAN214", line)]


@pytest.mark.parametrize(
    "source",
    [
        T + "def f(x, gamma=2.0, eps=1e-6):\n    p = torch.sigmoid(x)\n    return torch.pow(1.0 - p + eps, gamma)\n",
        T + "def f(x, p):\n    return x.clamp(min=1e-4, max=100).pow(p)\n",
        T + "def f(x):\n    return x ** 2\n",
        T + "def f(x):\n    return F.relu(x) ** 2.4\n",
        T + "def f(lr, gamma, epoch):\n    return lr * gamma ** epoch\n",
    ],
)
def test_fractional_power_silent(source):
    assert found(source, "NAN214") == []


FLAGGED_221 = [
    (T + "def f(a, b):\n    return torch.acos(F.cosine_similarity(a, b))\n", 4, Confidence.HIGH),
    (T + "def f(cos_theta):\n    return torch.acos(cos_theta) / 3.0\n", 4, Confidence.MEDIUM),
    (T + "def f(a, b):\n    return (F.normalize(a) @ F.normalize(b).T).arcsin()\n", 4, Confidence.HIGH),
    # a dot product over the product of the same vectors' norms is a cosine, whatever its spelling
    (T + "def f(a, b, eps=1e-8):\n    cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=eps)\n"
         "    return torch.acos(cos)\n", 5, Confidence.HIGH),
    (T + "def f(u, v):\n    c = torch.dot(u, v) / (torch.sqrt(torch.sum(u * u)) * torch.sqrt(torch.sum(v ** 2)))\n"
         "    return torch.arccos(c)\n", 5, Confidence.HIGH),
    ("import numpy as np\ndef f(e1, e2):\n    dot = np.sum(np.multiply(e1, e2), axis=1)\n"
     "    norm = np.linalg.norm(e1, axis=1) * np.linalg.norm(e2, axis=1)\n    return np.arccos(dot / norm)\n", 5, Confidence.HIGH),
]


@pytest.mark.parametrize(("source", "line", "confidence"), FLAGGED_221)
def test_inverse_trig_flagged(source, line, confidence):
    findings = check_source(source, "t.py", Config(select=("NAN221",)))
    assert [(f.code, f.line) for f in findings] == [("NAN221", line)]
    assert findings[0].confidence is confidence


@pytest.mark.parametrize(
    "source",
    [
        T + "def f(a, b, eps=1e-7):\n    return torch.acos(F.cosine_similarity(a, b).clamp(-1 + eps, 1 - eps))\n",
        T + "def f(r):\n    return torch.acos(torch.clamp(r, -0.999, 0.999))\n",
        "import math\ndef f(r):\n    return math.acos(r)\n",
        "import math\nHALF = math.acos(0.5)\n",
        # a cosine never rounds past 1, and NumPy has no gradient to blow up at +-1
        "import numpy as np\ndef f(a, b):\n    c = np.cos(a)\n    return np.arccos(c)\n",
        # nothing is known of r
        T + "def f(r):\n    return torch.acos(r) / 3.0\n",
        # a cosine kept off +-1; a ratio of other vectors' norms is no cosine
        T + "def f(a, b, eps=1e-8):\n    c = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1) + eps)\n"
            "    return torch.acos(c.clamp(-1 + 1e-7, 1 - 1e-7))\n",
        T + "def f(u, v, w):\n    return torch.arccos(torch.dot(u, v) / (u.norm() * w.norm()))\n",
    ],
)
def test_inverse_trig_silent(source):
    assert found(source, "NAN221") == []


@pytest.mark.parametrize(
    ("source", "line"),
    [
        (T + "def f(x):\n    return torch.var(x, dim=(2, 3), keepdim=True)\n", 4),
        (T + "def f(model):\n    for name, param in model.named_parameters():\n        print(param.data.std())\n", 5),
        (T + "def f(model):\n    for p in model.parameters():\n        print(p.grad.var())\n", 5),
    ],
)
def test_unbiased_std_of_one_flagged(source, line):
    assert found(source, "NAN231") == [("NAN231", line)]


@pytest.mark.parametrize(
    "source",
    [
        T + "def f(x):\n    return torch.var(x, dim=(2, 3), keepdim=True, unbiased=False)\n",
        T + "def f(x):\n    return x.std(0, correction=0)\n",
        T + "def f(x):\n    return x.std(-1)\n",
        T + "def f(x):\n    return x.std()\n",
        T + "def f(model):\n    for p in model.parameters():\n        if p.numel() > 1:\n            print(p.data.std())\n",
        T + "def f(x):\n    var = torch.var(x, dim=(2, 3), keepdim=True)\n    if torch.isnan(var).any():\n        var = torch.zeros_like(var)\n    return var\n",
        "import numpy as np\ndef f(x):\n    return x.std(0)\n",
        # a batch of one is a degenerate input: reported only with `--tier degenerate`
        T + "def f(x):\n    return x.std(0)\n",
    ],
)
def test_unbiased_std_of_one_silent(source):
    assert found(source, "NAN231") == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (T + "def f(v):\n    return torch.atan2(v[..., 1], v[..., 0])\n", [("NAN222", 4)]),
        (T + "def f(a, b):\n    return torch.atan2(F.relu(a), b.abs())\n", []),  # |b| is 0 only if b is
        (T + "def f(y, x):\n    return torch.atan2(y, x)\n", []),
        (T + "def f(v):\n    s = torch.where(v.norm(dim=-1, keepdim=True) > 0, v, torch.ones_like(v))\n    return torch.atan2(s[..., 1], s[..., 0])\n", []),
        ("import numpy as np\ndef f(v):\n    return np.arctan2(v[..., 1], v[..., 0])\n", []),
    ],
)
def test_atan2_at_origin(source, expected):
    assert found(source, "NAN222") == expected


def test_numpy_arccos_of_a_clip_to_unit_interval_is_silent():
    source = ("import numpy as np\ndef angle(v1, v2):\n"
              "    c = np.clip((v1 @ v2) / (np.linalg.norm(v1) * np.linalg.norm(v2)), -1.0, 1.0)\n    return np.arccos(c)\n")
    assert found(source, "NAN221") == []


def test_torch_acos_of_a_clamp_to_unit_interval_still_flagged():
    # with autograd, the gradient at +-1 is inf: only a clamp strictly inside (-1, 1) guards it
    source = "import torch\nimport torch.nn.functional as F\ndef f(a, b):\n    return torch.acos(F.cosine_similarity(a, b).clamp(-1.0, 1.0))\n"
    assert found(source, "NAN221") == [("NAN221", 4)]


def test_sqrt_checked_by_an_assertion_call_is_silent():
    # vits' spline: `torch_compilable_check(torch.all(discriminant >= 0), ...)` raises before the root
    source = (T + "def forward(a, b, c):\n    discriminant = b.pow(2) - 4 * a * c\n"
              "    torch_compilable_check(torch.all(discriminant >= 0), 'negative')\n    return torch.sqrt(discriminant)\n")
    assert found(source, "NAN212") == []


def test_sqrt_of_discriminant_without_check_still_flagged():
    source = T + "def forward(a, b, c):\n    discriminant = b.pow(2) - 4 * a * c\n    return torch.sqrt(discriminant)\n"
    assert found(source, "NAN212") == [("NAN212", 5)]


def test_root_of_an_index_grid_is_silent():
    # convit's attention-map distances: a grid from arange carries no gradient
    source = ("import torch\nfrom torch import nn\nclass GPSA(nn.Module):\n    def get_attention_map(self, img_size):\n"
              "        ind = torch.arange(img_size).view(1, -1) - torch.arange(img_size).view(-1, 1)\n"
              "        indx = ind.repeat(img_size, img_size)\n"
              "        indy = ind.repeat_interleave(img_size, dim=0).repeat_interleave(img_size, dim=1)\n"
              "        indd = indx ** 2 + indy ** 2\n        return indd ** .5\n")
    assert found(source, "NAN211") == []


def test_root_of_a_masked_activation_grid_is_flagged():
    source = ("import torch\nfrom torch import nn\nclass M(nn.Module):\n    def forward(self, h, mask):\n"
              "        hx = (h * mask).repeat(2, 2)\n        d = hx ** 2 + hx ** 2\n        return d ** .5\n")
    assert found(source, "NAN211") == [("NAN211", 7)]


def test_numpy_spelled_std_with_axis_is_biased_and_silent():
    source = "import torch\n\ndef cmvn(x, n):\n    return x[:n].std(axis=0)\n"
    assert [f.code for f in check_source(source, "t.py", Config(select=("NAN231",)))] == []
    unbiased = "import torch\n\ndef cmvn(x, n):\n    return x[:n].std(axis=(2, 3), ddof=1)\n"
    assert [f.code for f in check_source(unbiased, "t.py", Config(select=("NAN231",)))] == ["NAN231"]


def test_a_learned_exponent_gets_no_help_from_the_clamps_select():
    """clamp drops the base's inf gradient at the entries it cut off, but d/dp = g * x**p * log(x) of a learned
    exponent is inf * 0 = NaN there once an inf arrives from further down (PyG's PowerMeanAggregation)."""
    learned = (T + "from torch import nn\nclass PowerMean(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
               "        self.p = nn.Parameter(torch.ones(4))\n    def forward(self, x):\n        return x.clamp(min=0, max=100).pow(self.p)\n")
    fixed = learned.replace("nn.Parameter(torch.ones(4))", "torch.ones(4)")
    assert found(learned, "NAN214") == [("NAN214", 9)]
    assert found(fixed, "NAN214") == []


def test_an_exponent_kept_on_the_module_may_be_learned():
    """``p = self.p`` of a module whose class is not seen may be a Parameter: the clamp's select does not save
    its gradient; an exponent handed in as an argument is taken as a setting."""
    module_state = T + "def forward(self, x):\n    p = self.p\n    return x.clamp(min=0, max=100).pow(p)\n"
    handed_in = T + "def forward(self, x, p):\n    return x.clamp(min=0, max=100).pow(p)\n"
    assert found(module_state, "NAN214") == [("NAN214", 5)]
    assert found(handed_in, "NAN214") == []
