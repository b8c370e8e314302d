"""Our positions equal libcst's PositionProvider for every node, on real files and on odd layouts."""
from __future__ import annotations

from pathlib import Path

import libcst as cst
import pytest
from libcst.metadata import MetadataWrapper, PositionProvider

from nanlint import analysis
from nanlint.positions import positions

PACKAGE = Path(analysis.__file__).resolve().parent

ODD = [
    "", "\n", "x = 1", "x = 1\r\ny = (2,\r\n     3)\r\n", "x = 1\ry = 2\r", "if x:\n\ty = f(a,\n\t      b)\n",
    "def f():\n    '''doc\n    string'''\n    return (\n        a\n        + b  # c\n    )", "x = 1 \\\n    + 2\n",
    "\f\nclass C:\n    pass\n", "s = f'{a!r:>{w}} {b}'\nt = '''x\r\ny'''\n", "# only a comment", "@d\n\n# c\ndef f(): ...\n",
    "x = 'é' + '漢字' + f(ß=1)\n",
]


def _same(source: str) -> None:
    module = cst.parse_module(source)
    reference = MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider)
    ours = positions(module, source)
    assert reference, source
    for node, expected in reference.items():
        assert ours[node] == expected, (type(node).__name__, source)


@pytest.mark.parametrize("source", ODD)
def test_odd_layouts(source):
    _same(source)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_real_files(path):
    _same(path.read_text(encoding="utf-8"))
