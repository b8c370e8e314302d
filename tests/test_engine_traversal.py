"""The engine's own traversal must visit exactly what libcst's visitor visits, in the same order."""
from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest

import nanlint
from nanlint.analysis.context import FileContext
from nanlint.analysis.walker import Walker
from nanlint.api import analysis_options
from nanlint.config import Config
from nanlint.rules.base import Rule
from nanlint.traversal import Plan, concrete_node_types, iter_nodes

# Real, varied Python: nanlint's own modules (always present, no torch needed).
PACKAGE = Path(nanlint.__file__).resolve().parent
REAL_FILES = sorted(PACKAGE.rglob("*.py"))

EXTRA = '''
import torch.nn.functional as F
from torch import (softmax as sm, log)
@decorator(1)
async def f(a, /, b: int = 2, *args, c, **kw) -> "T":
    async with ctx() as (x, y), other:
        yield [i async for i in g() if i]
    global z
    match a:
        case [1, *rest] if rest: pass
        case {"k": v, **others}: pass
        case Point(x=0) | None: pass
    try:
        del a[1:2, ::3]
    except* ValueError as e:
        raise
    lambda q, *, r=1: (q := r)
    print(f"{x!r:>{width}} {y=}", *args, sep="", **kw)
    return not -x ** 2 if x else {**kw, 1: 2}
class C(Base, metaclass=M):
    x: int = 1; y = z = 2
    def m(self): self.p = F.softmax(x, -1); return log(self.p)
'''


class _Recorder(cst.CSTVisitor):
    def __init__(self):
        super().__init__()
        self.events: list[tuple[bool, int]] = []

    def on_visit(self, node):
        self.events.append((True, id(node)))
        return True

    def on_leave(self, node):
        self.events.append((False, id(node)))


def _modules():
    sources = [path.read_text(encoding="utf-8") for path in REAL_FILES] + [EXTRA]
    return [cst.parse_module(source) for source in sources]


def test_every_node_type_in_libcsts_order():
    plan = Plan(concrete_node_types())
    for module in _modules():
        recorder = _Recorder()
        module.visit(recorder)
        assert [(entering, id(node)) for entering, node in iter_nodes(module, plan)] == recorder.events


@pytest.mark.parametrize("wanted", [{"Call"}, {"Name", "Assign"}, {"Comment", "FunctionDef"}, {"Integer", "Subscript", "Lambda"}])
def test_pruned_walk_sees_the_same_nodes_of_the_wanted_types(wanted):
    plan = Plan(wanted)
    for module in _modules():
        recorder = _Recorder()
        module.visit(recorder)
        nodes = {}
        for _, node in iter_nodes(module, Plan(concrete_node_types())):
            nodes[id(node)] = node
        expected = [(e, i) for e, i in recorder.events if type(nodes[i]).__name__ in wanted]
        got = [(e, id(n)) for e, n in iter_nodes(module, plan) if type(n).__name__ in wanted]
        assert got == expected


def test_pruning_skips_whitespace_and_tokens():
    module = cst.parse_module("x = f(a, b)  # c\n")
    seen = {type(n).__name__ for _, n in iter_nodes(module, Plan({"Call"}))}
    assert "Call" in seen
    assert not seen & {"SimpleWhitespace", "Comma", "Comment", "AssignEqual", "Name"}


def _kind(frame) -> str:
    """Which scope the walk is in: the frame of the module or of a function."""
    return "module" if isinstance(frame.function, cst.Module) else "function"


class _Spy(Rule):
    code = "NAN101"  # borrows a real catalog entry; never registered

    def __init__(self, ctx, options=None):
        super().__init__(ctx, options)
        self.log: list[tuple] = []

    def visit_Call(self, node):
        self.log.append(("visit", self.ctx.code_for(node), len(self.ctx.statement_stack), _kind(self.ctx.frame)))

    def leave_FunctionDef(self, node):
        self.log.append(("leave", node.name.value, len(self.ctx.statement_stack), _kind(self.ctx.frame)))


def test_rule_hooks_statement_stack_and_scopes():
    source = "import torch\ny = torch.log(x)\ndef f(a):\n    if a:\n        return g(a)\n"
    module = cst.parse_module(source)
    options = analysis_options(Config(), "t.py")
    ctx = FileContext(source, "t.py", module, options)
    spy = _Spy(ctx)
    Walker(ctx, [spy], []).walk(module)
    assert spy.log == [
        ("visit", "torch.log(x)", 1, "module"),
        ("visit", "g(a)", 3, "function"),
        ("leave", "f", 1, "function"),
    ]
    assert ctx.resolver.qualify(cst.parse_expression("torch.log")) == "torch.log"
    assert ctx.statement_stack == [] and isinstance(ctx.frame.function, cst.Module)


def test_a_failing_rule_becomes_an_internal_error_and_others_still_run():
    class Broken(_Spy):
        code = "NAN999"
        def visit_Call(self, node):
            raise KeyError("boom")

    source = "a = f(1)\nb = g(2)\n"
    module = cst.parse_module(source)
    ctx = FileContext(source, "t.py", module, analysis_options(Config(), "t.py"))
    errors = []
    broken, spy = Broken(ctx), _Spy(ctx)
    Walker(ctx, [broken, spy], errors).walk(module)
    assert len(errors) == 1 and errors[0].rule == "NAN999" and "KeyError" in errors[0].message
    assert [entry[1] for entry in spy.log] == ["f(1)", "g(2)"]


def test_parse_without_validation_gives_the_same_tree_and_restores_validation():
    import libcst as cst

    from nanlint.analysis import parse_without_validation

    source = "import torch\n\ndef f(x, *, eps=1e-6):\n    return torch.log(x.softmax(-1) + eps)  # c\n"
    assert parse_without_validation(source).deep_equals(cst.parse_module(source))
    assert parse_without_validation(source).code == source
    with pytest.raises(cst.CSTValidationError):
        cst.Name("not valid")  # validation is back for nodes built after the parse
    with pytest.raises(cst.ParserSyntaxError):
        parse_without_validation("def f(:\n")
    with pytest.raises(cst.CSTValidationError):
        cst.Name("1x")
