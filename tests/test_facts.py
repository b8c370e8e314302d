"""The shared value facts, asked through ``probe(expr)`` markers in small programs."""
from __future__ import annotations

import textwrap

import libcst as cst
import pytest

from nanlint.analysis import FileContext, _Walker
from nanlint.engine import AnalysisOptions
from nanlint.facts import F, Fact, constant_value, literal_value


class _Probe:
    code = "PROBE"

    def __init__(self, ctx: FileContext):
        self.ctx = ctx
        self.facts: list[Fact] = []

    def visit_Call(self, node: cst.Call) -> None:
        if isinstance(node.func, cst.Name) and node.func.value == "probe":
            self.facts.append(self.ctx.fact(node.args[0].value))


def facts_of(source: str) -> list[Fact]:
    source = textwrap.dedent(source)
    module = cst.parse_module(source)
    ctx = FileContext(source, "probe.py", module, AnalysisOptions(codes=frozenset()))
    probe = _Probe(ctx)
    errors: list = []
    _Walker(ctx, [probe], errors).walk(module)
    assert not errors
    return probe.facts


def fact_of(source: str) -> Fact:
    (fact,) = facts_of(source)
    return fact


PRELUDE = "import torch\nimport torch.nn as nn\nimport torch.nn.functional as F\nimport numpy as np\nimport math\n"


@pytest.mark.parametrize(
    ("body", "flag"),
    [
        ("p = F.softmax(x, -1)\nprobe(p)", F.PROB),
        ("p = torch.nn.functional.softmax(x, dim=1)\nprobe(p)", F.PROB),
        ("p = x.softmax(-1)\nprobe(p)", F.PROB),
        ("p = torch.Tensor.sigmoid(x)\nprobe(p)", F.PROB),
        ("p = 1 / (1 + torch.exp(-z))\nprobe(p)", F.PROB),
        ("p = torch.sigmoid(z)\nq = 1 - p\nprobe(q)", F.PROB),
        ("a, b = torch.sigmoid(z), x\nprobe(a)", F.PROB),
        ("n = mask.sum()\nprobe(n)", F.COUNT),
        ("n = len([v for v in xs if v > 0])\nprobe(n)", F.MAY_ZERO),
        ("s = (x * x).sum(-1)\nprobe(s)", F.GUESS_ZERO),
        ("s = (F.relu(x) ** 2).sum(-1)\nprobe(s)", F.MAY_ZERO),
        ("s = (x.abs() ** 2).sum(-1)\nprobe(s)", F.GUESS_ZERO),
        ("s = x.abs().max()\nprobe(s)", F.GUESS_ZERO),
        ("s = F.relu(x).max()\nprobe(s)", F.MAY_ZERO),
        ("s = torch.norm(x, dim=1)\nprobe(s)", F.MAY_ZERO),
        ("s = x.std(0)\nprobe(s)", F.MAY_ZERO),
        ("r = F.relu(x)\nr = r.mean()\nprobe(r)", F.MAY_ZERO),
        ("c = F.linear(F.normalize(a), F.normalize(w))\nprobe(c)", F.MAY_ONE),
        ("c = F.linear(F.normalize(a), F.normalize(w))\nprobe(1.0 - torch.pow(c, 2))", F.MAY_NEG),
        ("probe((m ** 2 - d))", F.MAY_NEG),
        ("u = torch.rand(3)\nprobe(u)", F.MAY_ZERO),
        ("probe(torch.log(deg + 1))", F.GUESS_ZERO),
        ("probe(torch.sum(w))", F.GUESS_ZERO),
        ("probe(torch.sign(z) * 1e-6)", F.MAY_ZERO),
        ("probe(x.clamp(min=0))", F.MAY_ZERO),
        ("e = eps * min(1, torch.sqrt(torch.mean(g * g)))\nprobe(e)", F.GUESS_ZERO),
        ("e = eps * min(1, torch.sqrt(torch.mean(F.relu(g))))\nprobe(e)", F.MAY_ZERO),
    ],
)
def test_function_facts_have_flag(body, flag):
    source = PRELUDE + "def f(x, z, w, a, mask, xs, m, d, deg, g, eps=1e-8):\n" + textwrap.indent(body, "    ") + "\n"
    assert fact_of(source).has(flag)


@pytest.mark.parametrize(
    "body",
    [
        "probe(x.clamp(min=1e-6))",
        "probe(x.clamp_min(eps))",
        "probe(torch.clamp(x, min=1e-8))",
        "probe(x + 1e-8)",
        "probe(x.abs() + eps)",
        "probe(max(x.std(), 1e-12))",
        "probe(torch.finfo(x.dtype).eps)",
        "probe(torch.where(x == 0, torch.ones_like(x), x))",
        "probe(torch.where(x.abs() > 1e-6, x, torch.ones_like(x)))",
        "probe(torch.where(x > 0, x, 1.0))",
        "y = x.norm()\ny[y == 0] = 1\nprobe(y)",
        "probe(x.masked_fill(x == 0, 1.0))",
        "probe(torch.log(deg.clamp(min=1) + 1))",
    ],
)
def test_guarded_values_are_away_from_zero(body):
    source = PRELUDE + "def f(x, deg, eps=1e-8):\n" + textwrap.indent(body, "    ") + "\n"
    fact = fact_of(source)
    assert fact.is_guarded and not fact.may_be_zero and not fact.may_be_zero_guess


def test_where_guard_that_keeps_zero_is_not_a_guard():
    fact = fact_of(PRELUDE + "EPS = 1e-6\ndef f(z):\n    z = torch.where(torch.abs(z) > EPS, z, torch.sign(z) * EPS)\n    probe(z)\n")
    assert fact.may_be_zero
    assert "sign" in fact.origin.what


def test_repair_applies_only_after_it():
    facts = facts_of(PRELUDE + "def f(x):\n    n = x.norm()\n    probe(n)\n    n[n == 0] = 1\n    probe(n)\n")
    assert facts[0].may_be_zero and not facts[1].may_be_zero


def test_later_assignment_wins():
    facts = facts_of(PRELUDE + "def f(x):\n    p = x.softmax(-1)\n    probe(p)\n    p = p.clamp_min(1e-6)\n    probe(p)\n")
    assert facts[0].is_probability and not facts[0].is_guarded
    assert facts[1].is_guarded


def test_module_constant_and_self_attribute():
    facts = facts_of(PRELUDE + "EPS = 1e-8\nclass M(nn.Module):\n    def __init__(self):\n        self.eps = 1e-5\n        self.act = nn.Sigmoid()\n"
                     "    def forward(self, x):\n        probe(EPS)\n        probe(self.eps)\n        probe(self.act(x))\n")
    assert facts[0].value == 1e-8 and facts[0].has(F.EPS)
    assert facts[1].has(F.POSITIVE)
    assert facts[2].is_probability


def test_sequential_last_layer():
    fact = fact_of(PRELUDE + "class M(nn.Module):\n    def __init__(self):\n        self.head = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())\n"
                   "    def forward(self, x):\n        probe(self.head(x))\n")
    assert fact.is_probability


def test_aliased_import():
    fact = fact_of("from torch import sigmoid as sg\ndef f(x):\n    probe(sg(x))\n")
    assert fact.is_probability


def test_eps_named_variable_that_can_be_zero_is_not_a_guard():
    fact = fact_of(PRELUDE + "def f(g, eps):\n    curr_eps = eps * min(1, torch.sqrt(torch.mean(g * g)))\n    probe(curr_eps)\n")
    assert fact.may_be_zero_guess and not fact.is_guarded


def test_offset_of_unknown_sign_is_not_a_guard():
    assert not fact_of(PRELUDE + "def f(t):\n    probe(t + 1.0)\n").is_guarded
    assert fact_of(PRELUDE + "def f(t):\n    probe(t.abs() + 1.0)\n").has(F.POSITIVE)


def test_eps_inside_matmul_does_not_guard():
    fact = fact_of(PRELUDE + "EPS = 1e-8\ndef f(M, x):\n    probe(torch.matmul(M, x.abs().pow(2) + EPS))\n")
    assert fact.may_be_zero_guess and not fact.is_guarded


def test_cosine_by_name():
    fact = fact_of(PRELUDE + "def f(outputs):\n    cosine = outputs.float()\n    probe(cosine)\n")
    assert fact.has(F.MAY_ONE) and fact.is_guess


def test_amplitude_call_by_name():
    fact = fact_of(PRELUDE + "from sp import compute_amplitude\ndef f(w, l):\n    den = compute_amplitude(w, l)\n    probe(den)\n")
    assert fact.may_be_zero_guess and fact.is_guess


def test_constant_folding():
    expr = cst.parse_expression("1 / 3")
    assert literal_value(expr) is None
    assert constant_value(expr) == pytest.approx(1 / 3)
    assert constant_value(cst.parse_expression("-1 + 1e-7")) == pytest.approx(-1 + 1e-7)
    assert constant_value(cst.parse_expression("math.pi")) == pytest.approx(3.14159265)


def test_tuple_unpacked_from_a_local_function_call():
    source = (PRELUDE + "def med_mad(x, factor=1.4826):\n    med = np.median(x)\n    mad = np.median(np.absolute(x - med)) * factor\n"
              "    return med, mad\n\ndef norm(signal):\n    med, mad = med_mad(signal)\n    probe(mad)\n    probe(med)\n")
    mad, med = facts_of(source)
    assert mad.may_be_zero_guess and "median" in mad.origin.what
    assert not med.may_be_zero


def test_local_function_return_and_dict_entries():
    facts = facts_of(PRELUDE + "def energy(x):\n    return (F.relu(x) ** 2).sum(-1)\n"
                     "def f(x, state):\n    state['step'] = 0\n    probe(energy(x))\n    probe(state['exp_avg_sq'])\n")
    assert facts[0].may_be_zero
    assert facts[1].flags == F.NONE


def test_shape_unpacking_gives_sizes():
    fact = fact_of(PRELUDE + "def f(x):\n    B, C, H, W = x.shape\n    probe(H * W)\n")
    assert fact.has(F.POSITIVE)


def test_topk_values_keep_probability_facts():
    fact = fact_of(PRELUDE + "def f(logits):\n    w = logits.softmax(-1)\n    top, idx = torch.topk(w, 2)\n    probe(top)\n")
    assert fact.is_probability


def test_clamp_to_an_unknown_floor_is_a_guard():
    fact = fact_of(PRELUDE + "def f(p, threshold):\n    probe((1.0 - p.sigmoid()).clamp(min=threshold))\n")
    assert fact.is_guarded and fact.is_guess
