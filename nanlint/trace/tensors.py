"""What the monitor can measure in a tensor, whatever its dtype and layout.

Real scripts hold float64 models, complex parameters, sparse gradients (``Embedding(sparse=True)``), quantized
and meta tensors. Every statistic the tracer takes goes through ``real_values``: a strided, real tensor that
holds the same numbers (the stored values of a sparse tensor, the real and imaginary parts of a complex one), or
None when there is nothing to measure. Norms are taken in float64 so no dtype narrows or overflows on the way.
"""
from __future__ import annotations

import torch

REAL_DTYPES = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
COMPLEX_DTYPES = frozenset({torch.complex32, torch.complex64, torch.complex128})
WATCHED_DTYPES = REAL_DTYPES | COMPLEX_DTYPES
SPARSE_VALUES = {torch.sparse_coo: "_values", torch.sparse_csr: "values", torch.sparse_csc: "values",
                 torch.sparse_bsr: "values", torch.sparse_bsc: "values"}


def watched(t) -> bool:
    """A floating-point or complex tensor with values to look at (not meta, not empty)."""
    return (isinstance(t, torch.Tensor) and t.dtype in WATCHED_DTYPES
            and (t.layout == torch.strided or t.layout in SPARSE_VALUES)
            and t.device.type != "meta" and t.numel() > 0)


def real_values(t: torch.Tensor) -> torch.Tensor | None:
    """A strided real tensor holding the numbers of ``t`` (None if it holds none the monitor can read)."""
    t = t.detach()
    if t.layout != torch.strided:
        accessor = SPARSE_VALUES.get(t.layout)
        if accessor is None:
            return None
        t = getattr(t, accessor)()
    if t.dtype in COMPLEX_DTYPES:
        if t.dtype == torch.complex32:
            t = t.to(torch.complex64)
        t = torch.view_as_real(t.resolve_conj().resolve_neg())
    if t.dtype not in REAL_DTYPES or t.numel() == 0:
        return None
    return t


def norms(tensors: list) -> list[float]:
    """Euclidean norms of ``tensors`` (any dtype or layout; 0.0 for one with nothing to measure), one host sync."""
    values = []
    for t in tensors:
        v = real_values(t) if isinstance(t, torch.Tensor) else None
        if v is None and isinstance(t, torch.Tensor) and not t.is_quantized and t.numel() > 0 and t.layout == torch.strided:
            v = t.detach()  # integers and bools: their norm is still a number
        if v is not None:
            wide = torch.float32 if v.device.type == "mps" else torch.float64  # MPS has no float64
            v = torch.linalg.vector_norm(v if v.is_floating_point() else v.to(wide), dtype=wide)
        values.append(v)
    result = [0.0] * len(values)
    by_device: dict = {}
    for i, v in enumerate(values):
        if v is not None:
            by_device.setdefault(v.device, []).append(i)
    for indices in by_device.values():  # one host sync per device
        for i, x in zip(indices, torch.stack([values[i] for i in indices]).tolist()):
            result[i] = x
    return result
