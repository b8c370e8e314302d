"""Rule triggers: a file in which no enabled rule can fire is not parsed by libcst, and the result is the
same as with the full analysis (NAN000 and NAN002 included)."""
from __future__ import annotations

import pytest

from nanlint.analysis import run as analysis_run
from nanlint.api import check_source
from nanlint.config import Config
from nanlint.rules import all_rules
from nanlint.rules.base import Rule, may_fire


@pytest.fixture
def parses(monkeypatch):
    """Counts libcst parses."""
    calls = []
    real = analysis_run.cst.parse_module
    monkeypatch.setattr(analysis_run.cst, "parse_module", lambda source, *a, **k: calls.append(1) or real(source, *a, **k))
    return calls


@pytest.fixture
def log_triggers(monkeypatch):
    monkeypatch.setattr(all_rules()["NAN101"], "triggers", ("log",))


# Only NAN101 (given log triggers by the fixture) runs, whatever triggers other rules declare.
ONLY_NAN101 = Config(select=("NAN101",))


def test_default_is_always():
    assert Rule.triggers is None
    assert may_fire(Rule, "")


def test_triggers_are_substrings():
    class R(Rule):
        triggers = ("softmax", "sigmoid")

    assert may_fire(R, "y = x.sigmoid()")
    assert not may_fire(R, "y = x.tanh()")


def test_file_without_triggers_is_not_parsed(parses, log_triggers):
    assert check_source("import torch\ny = torch.tanh(x)\n", "a.py", ONLY_NAN101) == []
    assert parses == []


def test_file_with_a_trigger_is_analysed(parses, log_triggers):
    source = "import torch\ny = torch.log(torch.softmax(x, -1))\n"
    assert [f.code for f in check_source(source, "a.py")] == ["NAN101"]
    assert parses == [1]


@pytest.mark.parametrize("source", ["def f(:\n", "x = (1,\n", "if x:\npass\n", "print 'hi'\n", "x = 1\n  y = 2\n"])
def test_syntax_errors_are_reported_as_without_the_prescreen(source, parses, monkeypatch):
    full = check_source(source, "a.py")
    assert [f.code for f in full] == ["NAN000"]
    monkeypatch.setattr(all_rules()["NAN101"], "triggers", ("log",))
    assert check_source(source, "a.py") == full


@pytest.mark.parametrize("source, message", [
    ("return 1\n", "SyntaxError: 'return' outside function"),
    ("def f():\n    yield 1\n    return 2\nawait g()\n", "SyntaxError: 'await' outside function"),
    ("nonlocal x\n", "SyntaxError: nonlocal declaration not allowed at module level"),
])
def test_compiler_only_errors_are_python_errors(source, message, parses, log_triggers):
    """CPython's compiler rejects ``return`` outside a function, libcst's grammar does not: the file does not
    run, so it is a NAN000 in Python's words, and libcst never parses it."""
    found = check_source(source, "a.py")
    assert [(f.code, f.message) for f in found] == [("NAN000", message)]
    assert parses == []


def test_unused_noqa_without_a_parse(parses, log_triggers):
    source = "x = 1  # noqa: NAN101\n"
    config = Config(select=("NAN101",), extend_select=("NAN002",))
    skipped = check_source(source, "a.py", config)
    assert [f.code for f in skipped] == ["NAN002"] and parses == []
    full = [f for f in check_source(source + "y = 'log'\n", "a.py", config)]
    assert [(f.code, f.span, f.message) for f in full] == [(f.code, f.span, f.message) for f in skipped]


# Inputs on which CPython's compiler and libcst's grammar may disagree (CPython is stricter on all of these
# that differ: semantic checks, escapes, ``from __future__``), plus plain syntax errors.
EDGE_CASES = [
    "\f\nx=1\n", "x = 1\\\n", "if x:\n\tpass\n        pass\n", "x=1\r\ny=2\r", "x = '\\N{DASH}'\n", "x = yield\n",
    "nonlocal x\n", "a, *b, *c = d\n", "def f(a, a): pass\n", "class C: return 1\n", "from __future__ import braces\n",
    "break\n", "await x\n", "f(**a, *b)\n", "f() = 1\n", "None = 1\n", "(a, b) += 1\n", "x = 0777\n", "x = 1_000_\n",
    "with (a as b, c as d):\n    pass\n", "x = 1;;\n", "x = 1 if 2\n", "@x\n", "f'{'\n", "import a.b as c.d\n",
    "try:\n    pass\nfinally:\n    continue\n", "lambda: (yield)\n", "f(a for a in b, c)\n", "del ()\n",
]


@pytest.mark.parametrize("source", EDGE_CASES)
def test_prescreen_agrees_with_the_full_analysis_on_edge_cases(source, monkeypatch):
    full = check_source(source, "a.py")
    monkeypatch.setattr(all_rules()["NAN101"], "triggers", ("no such token",))
    assert check_source(source, "a.py") == full


def test_declared_triggers_are_tuples_of_strings():
    for code, cls in all_rules().items():
        triggers = cls.triggers
        assert triggers is None or (isinstance(triggers, tuple) and triggers and all(isinstance(t, str) and t for t in triggers)), code
