"""The monitor's cheap paths (what makes a traced step cost little more than a plain one) never hide a non-finite
value: a result is left unscanned only when bounds prove it finite, what an in-place write makes stale is dropped,
a tensor made outside the monitor is scanned once per version and view, and the statistics stay exact."""
from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from nanlint.trace import tensors  # noqa: E402
from nanlint.trace.monitor import Monitor  # noqa: E402
from nanlint.trace.watch import watching  # noqa: E402

HERE = str(Path(__file__).resolve().parent)
THIS = str(Path(__file__).resolve())


def _line(text: str) -> int:
    for number, line in enumerate(Path(THIS).read_text().splitlines(), 1):
        if text in line and "_line(" not in line:
            return number
    raise AssertionError(text)


def _bugs(w):
    w.monitor.flush()
    return [(e.line, e.op, e.phase, e.value, e.kind) for e in w.monitor.all_events() if e.is_bug]


@pytest.fixture
def scans(monkeypatch):
    """How many tensors the monitor scanned (leaves and results)."""
    count = [0]
    original = Monitor._stats

    def counting(self, t):
        count[0] += 1
        return original(self, t)

    monkeypatch.setattr(Monitor, "_stats", counting)
    return count


def test_a_product_is_not_scanned_while_its_bound_fits_and_its_overflow_is_still_an_origin(scans):
    x = torch.full((64,), 2.0)
    with watching(HERE) as w:
        y = x
        for _ in range(9):
            y = y * y  # 2 ** (2 ** k): the bound fits float32 up to 2 ** 64, 2 ** 128 is inf
    assert _bugs(w) == [(_line("y = y * y  #"), "mul", "forward", "inf", "origin")]
    # the leaf, the product whose bound no longer fits (inf), and the two that carry the inf on
    assert scans[0] == 4


def test_a_write_through_a_view_drops_the_bound_of_its_base():
    a = torch.ones(4, 4)
    with watching(HERE) as w:
        x = a @ a  # bounded by 4: not scanned
        x[0].mul_(1e30)  # through a view: x is no longer bounded by 4
        y = x * 1e10  # 4e40: inf in float32
    assert _bugs(w) == [(_line("y = x * 1e10"), "mul", "forward", "inf", "origin")]


def test_an_in_place_write_to_a_base_drops_the_bound_of_its_older_views():
    a = torch.ones(4, 4)
    with watching(HERE) as w:
        x = a @ a
        v = x[0]
        x.mul_(1e30)
        z = v * 1e10
    assert _bugs(w) == [(_line("z = v * 1e10"), "mul", "forward", "inf", "origin")]


def test_a_weight_viewed_at_every_call_is_scanned_once_and_a_partial_view_is_not_the_whole(scans):
    weight = torch.randn(8, 3)
    data = torch.randn(4, 8)
    data[3, 0] = math.nan
    with watching(HERE) as w:
        for _ in range(5):
            out = data[:3] @ weight.t().t()  # a new view of each at every call
    assert _bugs(w) == [] and scans[0] == 2  # each view's values scanned once, the products bounded
    with watching(HERE) as w:
        out = data[:3] @ weight
        out = data.t().t() @ weight  # every element, the NaN included
    assert _bugs(w) == [(_line("out = data.t().t() @ weight"), "input of mm", "forward", "nan", "input")]


def test_a_nan_constant_fill_is_an_origin():
    with watching(HERE) as w:
        t = torch.zeros(4).fill_(1.0)
        t = torch.zeros(4).fill_(math.nan)
    assert _bugs(w) == [(_line("fill_(math.nan)"), "fill_", "forward", "nan", "origin")]


def test_a_bounded_update_is_not_scanned_and_an_overflowing_one_is_born_in_the_step(scans):
    p = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.SGD([p], lr=0.1)
    with watching(HERE) as w:
        (p * 3.0).sum().backward()
        before = scans[0]
        optimizer.step()
    assert _bugs(w) == [] and scans[0] == before  # 1 + 0.1 * 3 is finite: proved, not scanned
    assert w.health.health.updates[0]["update_norm"] == pytest.approx(0.6)
    optimizer = torch.optim.SGD([p], lr=1e38)
    with watching(HERE) as w:
        p.grad = None
        (p * 1e5).sum().backward()
        optimizer.step()  # 1 - 1e38 * 1e5
    assert _bugs(w) == [(_line("optimizer.step()  # 1 - 1e38"), "add_", "step", "-inf", "origin")]


def test_minmax_is_exact_on_any_layout():
    x = torch.randn(16, 64, 128)
    for view in (x.transpose(0, 1), x.permute(2, 0, 1), x[:, ::2], x[0].t(), x):
        mn, mx = tensors.minmax(view)
        assert (mn.item(), mx.item()) == (view.min().item(), view.max().item())
    y = x.transpose(0, 1).clone()
    y[3, 2, 1] = math.nan
    assert all(math.isnan(v.item()) for v in tensors.minmax(y.transpose(0, 1)))


def test_norms_are_taken_in_the_tensors_precision_and_again_in_float64_when_that_overflows():
    values = tensors.norms([torch.full((4,), 1e20), torch.full((100,), 60000.0, dtype=torch.float16),
                            torch.tensor([1.0, math.nan]), torch.tensor([math.inf]), torch.arange(4),
                            torch.randn(3, 3).to_sparse(), None])
    assert values[0] == pytest.approx(2e20, rel=1e-6)  # 4e40 overflows float32's sum of squares, not float64's
    assert values[1] == pytest.approx(6e5, rel=1e-3)
    assert math.isnan(values[2]) and values[3] == math.inf
    assert values[4] == pytest.approx(math.sqrt(14)) and values[5] > 0 and values[6] == 0.0


def test_the_update_of_a_large_parameter_is_measured_on_a_sample_that_estimates_the_whole():
    from nanlint.trace.evidence import SNAPSHOT_ENTRIES, _sample

    torch.manual_seed(0)
    weight = torch.randn(1024, 300)  # 4.7 times the sample size
    sample, scale = _sample(weight)
    assert sample.numel() == SNAPSHOT_ENTRIES and scale == weight.numel() / SNAPSHOT_ENTRIES
    old = sample.clone()
    update = torch.randn_like(weight) * 1e-3
    weight += update
    new_sample, _ = _sample(weight)  # the same entries again
    estimate = ((new_sample - old).norm() ** 2 * scale).sqrt()
    assert abs(estimate / update.norm() - 1) < 0.02
    small = torch.randn(10, 10)
    assert _sample(small) == (small, 1.0)  # kept whole
