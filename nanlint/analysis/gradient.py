"""Gradient context: can a gradient flow through the code at this point?

Gradient-only hazards (the inf gradient of ``sqrt`` at 0, the NaN gradient of a ``torch.where`` branch)
matter only where a backward pass can run: not under ``torch.no_grad()`` / ``inference_mode`` (blocks or
decorators), not in the ``backward`` of a custom ``autograd.Function`` (it is computed, not differentiated),
not in data processing (feature extractors, image processors, tokenizers, datasets, collators) or in
post-processing functions, whose outputs are data. Values carry their own part: literals, sizes, integer and
boolean tensors, index grids, random draws, NumPy arrays and ``.detach()``-ed tensors have no gradient.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import libcst as cst

from nanlint.analysis.flow import _is_no_grad

if TYPE_CHECKING:
    from nanlint.analysis.context import FileContext

DATA_CLASS = re.compile(r"(FeatureExtractor|ImageProcessor|Processor|Processing|Tokenizer|Collator|Dataset|Sampler|DataModule|Transform|Augmentation|Augment)s?(Mixin|Base|Fast)?$")
_DATA_FUNCTION = re.compile(r"^_*(post_?process\w*|pre_?process\w*|postprocess\w*|preprocess\w*|collate\w*|decode_\w+|evaluate\w*|compute_metrics?|__getitem__|apply_transform|augment\w*)$")


def no_grad_here(ctx: "FileContext") -> bool:
    resolver = ctx.resolver
    for node in ctx.statement_stack:
        if isinstance(node, cst.With):
            if any(_is_no_grad(item.item, resolver) for item in node.items):
                return True
        elif isinstance(node, cst.FunctionDef):
            if any(_is_no_grad(d.decorator, resolver) for d in node.decorators):
                return True
            if _DATA_FUNCTION.match(node.name.value):
                return True
    for klass in ctx.class_stack:
        if DATA_CLASS.search(klass.name.value) or any(DATA_CLASS.search(_base(b)) for b in klass.bases):
            return True
    function = ctx.current_function
    if function is not None and function.name.value == "backward" and ctx.class_stack:
        bases = [_base(b) for b in ctx.class_stack[-1].bases]
        if any(b.endswith("Function") for b in bases):
            return True
    return False


def _base(base: cst.Arg) -> str:
    value = base.value
    parts = []
    while isinstance(value, cst.Attribute):
        parts.append(value.attr.value)
        value = value.value
    if isinstance(value, cst.Name):
        parts.append(value.value)
    return ".".join(reversed(parts))
