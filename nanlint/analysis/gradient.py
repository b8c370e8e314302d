"""Gradient context: can a gradient flow through the code at this point?

Gradient-only hazards (the inf gradient of ``sqrt`` at 0, the NaN gradient of a ``torch.where`` branch)
matter only where a backward pass can run: not under ``torch.no_grad()`` / ``inference_mode`` (blocks or
decorators), not in the ``backward`` of a custom ``autograd.Function`` (it is computed, not differentiated),
not in data processing (feature extractors, image processors, tokenizers, datasets, collators) or in
post-processing functions, whose outputs are data, nor in a helper the file calls only from such places
(``target = sharpen(target)`` inside ``with torch.no_grad():``). Values carry their own part: literals, sizes, integer and
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
# schedules of noise levels and learning rates: inference-time or bookkeeping numerics that no gradient flows through
SCHEDULE_CLASS = re.compile(r"Scheduler(Mixin|Base)?$")
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
            if node.name.value in _called_without_grad(ctx):
                return True
    for klass in ctx.class_stack:
        if without_grad_class(klass):
            return True
    function = ctx.current_function
    if function is not None and function.name.value == "backward" and ctx.class_stack:
        bases = [_base(b) for b in ctx.class_stack[-1].bases]
        if any(b.endswith("Function") for b in bases):
            return True
    return False


def without_grad_class(klass: cst.ClassDef) -> bool:
    """A data-processing or schedule class (by its name or a base's): what its methods compute has no gradient."""
    return any(pattern.search(klass.name.value) or any(pattern.search(_base(b)) for b in klass.bases)
               for pattern in (DATA_CLASS, SCHEDULE_CLASS))


def _base(base: cst.Arg) -> str:
    value = base.value
    parts = []
    while isinstance(value, cst.Attribute):
        parts.append(value.attr.value)
        value = value.value
    if isinstance(value, cst.Name):
        parts.append(value.value)
    return ".".join(reversed(parts))


# run by torch or a framework with gradients whatever the file's own calls of them look like (a teacher's
# `model.forward(x)` under no_grad says nothing of the student's)
_CALLED_BY_FRAMEWORKS = frozenset({"forward", "__call__", "step", "backward", "training_step", "closure", "loss"})


def _called_without_grad(ctx: "FileContext") -> frozenset[str]:
    """Names of the functions this module calls, every time, where no gradient flows: under ``no_grad`` or
    from a function that is itself only called so. A function it never calls is not one of them."""
    found = getattr(ctx, "_called_without_grad", None)
    if found is not None:
        return found
    calls = ctx.ev.calls
    index = calls.call_index()
    sites = {name: [(scope.name.value if isinstance(scope, cst.FunctionDef) else None, id(call) in calls.no_grad_calls)
                    for call, scope in entries] for name, entries in index.items()}
    quiet: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, made in sites.items():
            if name in _CALLED_BY_FRAMEWORKS:
                continue
            if name not in quiet and all(no_grad or (caller is not None and caller in quiet) for caller, no_grad in made):
                if all(caller != name for caller, _ in made):  # recursion proves nothing
                    quiet.add(name)
                    changed = True
    found = frozenset(quiet)
    ctx._called_without_grad = found
    return found
