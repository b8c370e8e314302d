"""Every documented fix computes what the code it replaces computed.

For each ``[[examples.bad]]`` in ``rules/*.toml`` with a ``fixed`` version, both snippets are executed and
every function defined at the top level of both (same name) is called on the same small finite inputs; the
results must agree: values (``torch.testing.assert_close``), dtypes, shapes, and the arguments after the
call (so a lost ``out=`` or in-place write shows).

Convention for the inputs: each parameter without a default gets ``torch.randn(4, 8, dtype=dtype) * 3``,
for ``dtype`` float32 and float64 in turn. An example whose functions need other inputs declares them in an
``inputs`` table of Python expressions by parameter name, evaluated with ``torch``, ``np`` (NumPy), ``F``
(``torch.nn.functional``), ``dtype`` (the torch dtype of the round) and ``np_dtype`` (its NumPy name) in
scope, after seeding torch and NumPy with 0::

    [[examples.bad]]
    code = '''...'''
    fixed = '''...'''
    inputs = { target = "torch.randint(0, 8, (4, 1))", y = "torch.rand(4, 8, dtype=dtype)" }
"""
from __future__ import annotations

import inspect
import types

import numpy as np
import pytest

from nanlint._toml import tomllib
from nanlint.catalog import catalog_dir

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

DTYPES = (torch.float32, torch.float64)


def _fixed_examples():
    for path in sorted(catalog_dir().glob("NAN*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for index, example in enumerate(data.get("examples", {}).get("bad", [])):
            if example.get("fixed") is not None:
                yield pytest.param(example, id=f"{data['code']}-bad{index}")


EXAMPLES = list(_fixed_examples())


def _functions(code: str, label: str) -> dict[str, types.FunctionType]:
    namespace: dict = {"__name__": f"nanlint_example_{label}"}
    exec(compile(code, f"<{label}>", "exec"), namespace)  # noqa: S102 - the catalog's own examples
    return {name: obj for name, obj in namespace.items()
            if inspect.isfunction(obj) and obj.__code__.co_filename == f"<{label}>"}


def _inputs(function, declared: dict[str, str], dtype) -> dict:
    torch.manual_seed(0)
    np.random.seed(0)
    scope = {"torch": torch, "np": np, "F": F, "dtype": dtype, "np_dtype": str(dtype).removeprefix("torch.")}
    out = {}
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.default is not inspect.Parameter.empty or parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name in declared:
            out[name] = eval(declared[name], dict(scope))  # noqa: S307 - expressions from the catalog
        else:
            out[name] = torch.randn(4, 8, dtype=dtype) * 3
    return out


def _same(before, after, where: str) -> None:
    if isinstance(before, (tuple, list)):
        assert type(after) is type(before) and len(after) == len(before), where
        for i, (a, b) in enumerate(zip(before, after)):
            _same(a, b, f"{where}[{i}]")
        return
    if isinstance(before, dict):
        assert isinstance(after, dict) and after.keys() == before.keys(), where
        for key in before:
            _same(before[key], after[key], f"{where}[{key!r}]")
        return
    if isinstance(before, (torch.Tensor, np.ndarray, np.generic)):
        assert type(after) is type(before), f"{where}: {type(before).__name__} became {type(after).__name__}"
        assert after.dtype == before.dtype, f"{where}: dtype {before.dtype} became {after.dtype}"
        assert tuple(after.shape) == tuple(before.shape), f"{where}: shape {tuple(before.shape)} became {tuple(after.shape)}"
        if isinstance(before, torch.Tensor):
            torch.testing.assert_close(after, before, msg=lambda m: f"{where}: {m}")
        else:
            np.testing.assert_allclose(after, before, rtol=1e-6, atol=1e-6, err_msg=where)
        return
    if isinstance(before, float):
        assert isinstance(after, float) and after == pytest.approx(before, rel=1e-6, abs=1e-6), where
        return
    assert after == before, where


def _finite(value) -> bool:
    if isinstance(value, (tuple, list)):
        return all(_finite(v) for v in value)
    if isinstance(value, torch.Tensor):
        return bool(torch.isfinite(value).all()) if value.is_floating_point() or value.is_complex() else True
    if isinstance(value, (np.ndarray, np.generic, float)):
        return bool(np.isfinite(value).all())
    return True


@pytest.mark.parametrize("example", EXAMPLES)
def test_fixed_example_computes_what_the_original_computes(example):
    original = _functions(example["code"], "original")
    fixed = _functions(example["fixed"], "fixed")
    shared = sorted(original.keys() & fixed.keys())
    assert shared, "the example and its fixed version define no function of the same name"
    declared = example.get("inputs", {})
    for name in shared:
        for dtype in DTYPES:
            args_before = _inputs(original[name], declared, dtype)
            args_after = _inputs(fixed[name], declared, dtype)
            before = original[name](**args_before)
            after = fixed[name](**args_after)
            where = f"{name}(dtype={dtype})"
            assert _finite(before), f"{where}: the original is not finite on these inputs; declare `inputs` in the toml"
            _same(before, after, where)
            _same(args_before, args_after, f"{where} arguments after the call")


def test_every_rule_with_a_safe_fix_has_a_fixed_example():
    codes = {example.id.split("-")[0] for example in EXAMPLES}
    for path in sorted(catalog_dir().glob("NAN*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if data.get("fix") == "safe":
            assert data["code"] in codes, f"{path.name}: a safe fix needs an example with its `fixed` version"


def test_the_comparison_catches_a_lost_out_argument():
    """The harness itself: a rewrite that drops ``out=`` (the bug this file guards against) fails it."""
    original = "import torch\nimport torch.nn.functional as F\ndef f(x, buf):\n    return torch.log(F.softmax(x, -1), out=buf)\n"
    wrong = "import torch\nimport torch.nn.functional as F\ndef f(x, buf):\n    return F.log_softmax(x, -1)\n"
    with pytest.raises(AssertionError):
        test_fixed_example_computes_what_the_original_computes({"code": original, "fixed": wrong})
