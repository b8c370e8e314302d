"""In a float16/bfloat16 run, a value that does not fit is born in a cast: the report names the cast as the user
wrote it (``.half()``, ``.to(torch.float16)``, ``model.half()``, the input autocast cast) at the user's line, not
the aten op ``_to_copy`` every cast becomes."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.trace_fixtures.helpers import FIXTURES, line_of, trace

torch = pytest.importorskip("torch")

from nanlint.trace.watch import watching  # noqa: E402

HALF_CAST = FIXTURES / "half_cast.py"
HERE = str(Path(__file__).resolve().parent)
THIS = Path(__file__).resolve()


@pytest.mark.parametrize("cast, text, op", [
    ("half", "batch = x.half()", ".half()"),
    ("to", "batch = x.to(torch.float16)", ".to(torch.float16)"),
    ("model", "    model = model.half()", ".half()"),  # a weight of 1e5, cast by Module.half()
])
def test_an_inf_born_in_a_cast_is_named_as_the_user_wrote_it(cast, text, op):
    from nanlint.trace.report import render_full

    result = trace(HALF_CAST, args=["--cast", cast])
    e = result.first_bug
    assert (e.kind, e.value, e.line, e.op, e.phase) == ("origin", "inf", line_of(HALF_CAST, text), op, "forward")
    report = render_full(result)
    assert f"born at tests/trace_fixtures/half_cast.py:{e.line} in `{op}`" in report.splitlines()[3]  # Result:
    assert "_to_copy" not in report
    # the advice for a cast, unless the line has a rule's own fix (NAN502 at model.half(): use a GradScaler)
    assert ("does not fit the dtype it is cast to" in report) == (cast != "model")


def test_an_inf_born_in_the_cast_autocast_makes_names_the_call_it_was_cast_for():
    result = trace(HALF_CAST, args=["--cast", "autocast"], dtype="float16")
    e = result.first_bug
    assert (e.value, e.line, e.op) == ("inf", line_of(HALF_CAST, "model(batch).float()"),
                                       "autocast to float16 (input of linear)")


def test_every_spelling_of_a_cast_and_its_backward():
    x = torch.full((4,), 1e5)
    with watching(HERE) as w:
        a = x.half()
        b = x.to(dtype=torch.bfloat16).to(torch.float16)  # bfloat16 holds 1e5; float16 does not
        c = x.to("cpu", torch.float16)
        d = x.type(torch.float16)
        small = torch.full((3,), 1.0, dtype=torch.float16, requires_grad=True)
        (small.float() * 1e5).sum().backward()  # the gradient, 1e5, is cast back to float16
    w.monitor.flush()
    lines = THIS.read_text().splitlines()
    seen = [(lines[e.line - 1].strip(), e.op, e.phase) for e in w.monitor.all_events() if e.is_bug]
    assert seen == [
        ("a = x.half()", ".half()", "forward"),
        ("b = x.to(dtype=torch.bfloat16).to(torch.float16)  # bfloat16 holds 1e5; float16 does not",
         ".to(torch.float16)", "forward"),
        ('c = x.to("cpu", torch.float16)', ".to('cpu', torch.float16)", "forward"),
        ("d = x.type(torch.float16)", ".type(torch.float16)", "forward"),
        ("(small.float() * 1e5).sum().backward()  # the gradient, 1e5, is cast back to float16", ".float()",
         "backward"),
    ]
