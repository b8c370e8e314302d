"""NAN101-NAN107: which log sites are flagged (code and line), which stay silent, and what the fixes write."""
from __future__ import annotations

import textwrap

import pytest

from nanlint.api import check_source
from nanlint.config import Config
from nanlint.findings import Applicability, Confidence
from nanlint.fixes import apply_edits
from rule_cases import found, hits


def fixed(source: str, code: str, unsafe: bool = False) -> str:
    text = textwrap.dedent(source)
    findings = [f for f in check_source(text, "t.py", Config(select=(code,), preview=True)) if f.code == code]
    return apply_edits(text, findings, unsafe=unsafe)[0]


FLAGGED_101 = [
    ("import torch\nimport torch.nn.functional as F\ndef f(x):\n    return torch.log(F.softmax(x, -1))\n", 4),
    ("import torch\ndef f(x):\n    p = x.softmax(-1)\n    return p.log()\n", 4),
    ("from torch import softmax, log as ln\ndef f(x):\n    return ln(softmax(x, 1))\n", 3),
    ("import torch\ndef f(x):\n    return torch.Tensor.log(torch.sigmoid(x))\n", 3),
    ("import numpy as np\ndef f(z):\n    p = 1 / (1 + np.exp(-z))\n    return np.log(p)\n", 4),
    ("import math\ndef f(z):\n    p = 1 / (1 + math.exp(-z))\n    return math.log(1 - p)\n", 4),
    ("import torch\ndef f(x):\n    p, q = torch.sigmoid(x), x\n    return torch.log2(p)\n", 4),
    ("import torch\nimport torch.nn as nn\nclass M(nn.Module):\n    def __init__(self):\n        self.act = nn.Softmax(dim=-1)\n"
     "    def forward(self, x):\n        return torch.log(self.act(x))\n", 7),
    ("import tensorflow as tf\np = tf.nn.softmax(logits)\nloss = tf.log(p)\n", 3),
    # the head word decides: `depths_out_logits` are scores of depths, not raw depth data
    ("import torch.nn.functional as F\ndef f(depths_out_logits):\n    p = F.softmax(depths_out_logits, 1)\n    return p.log()\n", 4),
    ("import torch.nn.functional as F\ndef f(image_scores):\n    return F.softmax(image_scores, 1).log()\n", 3),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_101)
def test_log_of_probability_flagged(source, line):
    assert found(source, "NAN101") == [("NAN101", line)]


SILENT_101 = [
    "import torch.nn.functional as F\ndef f(x):\n    return F.log_softmax(x, -1)\n",
    "import torch\ndef f(x, eps=1e-8):\n    return torch.log(torch.softmax(x, -1) + eps)\n",
    "import torch\ndef f(x):\n    return torch.log(torch.softmax(x, -1).clamp_min(1e-6))\n",
    "import torch\ndef f(x):\n    return torch.log(torch.sigmoid(x).clamp(min=torch.finfo(x.dtype).eps))\n",
    "import torch\ndef f(x):\n    p = torch.softmax(x, -1)\n    return torch.log(torch.clamp(p, 1e-7, 1 - 1e-7))\n",
    "import torch\ndef f(x, eps=1e-6):\n    p = torch.sigmoid(x)\n    return torch.log(torch.max(p, torch.tensor(eps)))\n",
    "import torch\ndef f(x):\n    return torch.special.xlogy(x, x)\n",
    "class L:\n    def step(self, x):\n        self.log('loss', x.softmax(-1))\n",
]


@pytest.mark.parametrize("source", SILENT_101)
def test_log_of_probability_silent(source):
    assert found(source, "NAN101") == []


def test_log_of_probability_message_names_origin_line():
    source = "import torch\ndef f(x):\n    p = torch.softmax(x, -1)\n    y = p * 2\n    return torch.log(p)\n"
    (finding,) = [f for f in check_source(source, "t.py", Config(select=("NAN101",))) if f.code == "NAN101"]
    assert "`p`, a `softmax` output (line 3)" in finding.message
    assert finding.confidence is Confidence.HIGH


def test_log_sigmoid_fix_uses_functional_alias():
    source = "import torch\nimport torch.nn.functional as F\ndef f(z):\n    return torch.log(torch.sigmoid(z)) + torch.log(1 - torch.sigmoid(z * 2))\n"
    assert fixed(source, "NAN101") == "import torch\nimport torch.nn.functional as F\ndef f(z):\n    return F.logsigmoid(z) + F.logsigmoid(-(z * 2))\n"


def test_log_sigmoid_without_functional_import_has_no_fix():
    source = "from torch import sigmoid, log\ndef f(z):\n    return log(sigmoid(z))\n"
    (finding,) = [f for f in check_source(source, "t.py", Config(select=("NAN101",)))]
    assert finding.fix is None


FLAGGED_102 = [
    ("import torch\ndef f(labels):\n    c = torch.bincount(labels)\n    return torch.log(c.float())\n", 4),
    ("import torch\ndef f(mask):\n    return torch.log(mask.sum(-1))\n", 3),
    ("import torch\nimport torch.nn.functional as F\ndef f(x):\n    return F.relu(x).log()\n", 4),
    ("import torch\ndef f(x, mask):\n    n = (x * mask).norm(dim=-1)\n    n *= 2\n    return torch.log(n)\n", 5),
    ("import numpy as np\ndef f(audio):\n    return np.log(np.abs(audio))\n", 3),
    ("import torch\ndef f(x):\n    return torch.log(x.clamp(min=0))\n", 3),
    ("from keras import backend as K\ndef f(z):\n    return K.log(K.relu(z))\n", 3),
]


@pytest.mark.parametrize(("source", "line"), FLAGGED_102)
def test_log_of_maybe_zero_flagged(source, line):
    assert found(source, "NAN102") == [("NAN102", line)]


def test_log_of_guessed_zero_is_medium_confidence():
    source = "from keras import backend as K\ndef f(audio):\n    return K.log(K.abs(audio))\n"
    (finding,) = check_source(source, "t.py", Config(select=("NAN102",)))
    assert finding.confidence is Confidence.MEDIUM


SILENT_102 = [
    "import torch\ndef f(labels, eps=1e-6):\n    c = torch.bincount(labels)\n    return torch.log(c.float() + eps)\n",
    "import torch\ndef f(mask):\n    return torch.log(mask.sum(-1).clamp_min(1))\n",
    "import torch\ndef f(x):\n    return torch.log(x.norm(dim=-1) + 1e-8)\n",
    "import torch\ndef f(x):\n    return torch.log(torch.exp(x).sum(-1))\n",
    "import torch\ndef f(x):\n    return torch.log(x)\n",
    "import torch\ndef f(mask):\n    n = mask.sum()\n    if n == 0:\n        return n\n    return torch.log(n)\n",
    "import math\ndef f(d):\n    return math.log(d.size(-1))\n",
    # T5 relative-position buckets: the log becomes an integer index, -inf entries are selected away
    "import math\nimport torch\ndef f(rel, max_exact, n):\n    rel = torch.abs(rel)\n"
    "    return max_exact + (torch.log(rel.float() / max_exact) / math.log(n) * 8).to(torch.long)\n",
]


@pytest.mark.parametrize("source", SILENT_102)
def test_log_of_maybe_zero_silent(source):
    assert found(source, "NAN102") == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\nimport torch.nn.functional as F\ndef f(x):\n    return torch.log(1 + torch.exp(x))\n",
         "import torch\nimport torch.nn.functional as F\ndef f(x):\n    return F.softplus(x)\n"),
        ("import torch\ndef f(x):\n    return torch.log1p(torch.exp(x))\n",
         "import torch\ndef f(x):\n    return torch.nn.functional.softplus(x)\n"),
        ("import torch\ndef f(x):\n    return (x.exp() + 1).log()\n",
         "import torch\ndef f(x):\n    return torch.nn.functional.softplus(x)\n"),
    ],
)
def test_manual_softplus_fix(source, expected):
    assert found(source, "NAN103")
    assert fixed(source, "NAN103") == expected


def test_manual_softplus_silent_on_softplus_and_log_of_plain_exp():
    assert found("import torch.nn.functional as F\ndef f(x):\n    return F.softplus(x)\n", "NAN103") == []
    assert found("import torch\ndef f(x):\n    return torch.log(2 + torch.exp(x))\n", "NAN103") == []


def test_log_one_plus_fix_and_silences():
    assert fixed("import math\ndef f(x):\n    return math.log(1 + x)\n", "NAN105") == "import math\ndef f(x):\n    return math.log1p(x)\n"
    assert found("import torch\ndef f(deg):\n    return torch.log(deg.clamp(min=1) + 1)\n", "NAN105") == []
    assert found("import torch\ndef f(x):\n    return torch.log(1 + torch.exp(x))\n", "NAN105") == []
    assert "NAN105" not in Config().enabled_codes  # off by default


def test_gumbel_noise_flagged_once_per_inner_log():
    source = "import torch as t\ndef f(scores):\n    noise = t.rand(scores.shape).cuda()\n    return -t.log(-t.log(noise))\n"
    assert found(source, "NAN106") == [("NAN106", 4)]
    assert found(source, "NAN101") == []


def test_gumbel_noise_repaired_in_place_is_silent():
    source = "import torch as t\ndef f(scores):\n    noise = t.rand(scores.shape)\n    noise[noise == 0] = 1e-8\n    return -t.log(-t.log(noise))\n"
    assert found(source, "NAN106") == []


def test_log_cast_to_an_index_statements_later_is_silent():
    # wavlm/T5 relative-position buckets: the log feeds an integer bucket a few lines down, selected by a where
    source = (
        "import math\nimport torch\ndef bucket(relative_positions, num_buckets, max_distance):\n"
        "    relative_positions = torch.abs(relative_positions)\n    max_exact = num_buckets // 2\n"
        "    is_small = relative_positions < max_exact\n    large = torch.log(relative_positions.float() / max_exact)\n"
        "    large = large / math.log(max_distance / max_exact)\n    large = large * (num_buckets - max_exact)\n"
        "    bucket_if_large = (max_exact + large).to(torch.long)\n    return torch.where(is_small, relative_positions, bucket_if_large)\n"
    )
    assert found(source, "NAN102") == []


def test_log_that_stays_a_float_is_still_flagged():
    source = "import torch\ndef energy(signal):\n    e = torch.log(signal.abs())\n    e = e * 2\n    return e.sum()\n"
    assert found(source, "NAN102") == [("NAN102", 3)]


# ---- NAN107: p * log(p) ----
ZERO_LOG_ZERO_FLAGGED = [
    ("""
        import torch
        def kl(p, q):
            p = p / p.sum(-1, keepdim=True)
            q = q / q.sum(-1, keepdim=True)
            return (p * torch.log(p / q)).sum(-1)
        """, [5]),
    ("""
        import torch
        def label_entropy(y):
            counts = torch.bincount(y).float()
            p = counts / counts.sum()
            return -(p * p.log()).sum()
        """, [5]),
    ("""
        import torch
        def kl(p, q):
            p = p / p.sum()
            ratio = p / q
            return (ratio.log() * p).sum()
        """, [5]),
]

ZERO_LOG_ZERO_SILENT = [
    """
        import torch
        def entropy(p, eps=1e-8):
            p = p / p.sum()
            return -(p * torch.log(p + eps)).sum()
    """,
    """
        import torch
        def kl(p, q):
            p = p / p.sum()
            return torch.xlogy(p, p / q).sum()
    """,
    """
        import numpy as np
        def smoothed(counts):
            counts = counts + 1
            p = counts / counts.sum()
            return (p * np.log(p)).sum()
    """,
    """
        import torch
        def kl(p, q):
            return (p * torch.log(p / q)).sum()
    """,
    """
        import math
        def h(p):
            p = p / sum(p)
            return p * math.log(p)
    """,
    """
        import torch
        def entropy(logits):
            p = torch.softmax(logits, -1)
            return -(p * torch.log(p)).sum(-1)
    """,
]


@pytest.mark.parametrize(("source", "lines"), ZERO_LOG_ZERO_FLAGGED)
def test_zero_times_log_zero_flagged(source, lines):
    assert hits("NAN107", source) == [("NAN107", line) for line in lines]


@pytest.mark.parametrize("source", ZERO_LOG_ZERO_SILENT)
def test_zero_times_log_zero_silent(source):
    assert hits("NAN107", source) == []
