"""The user's spelling of a dtype cast: the report names ``.half()`` or ``.to(torch.float16)`` at the user's line,
not the aten op ``_to_copy`` they all become. ``StampMode`` knows the torch call being made; the monitor asks
here how to name a cast born in it (also in the backward pass, through the autograd node's metadata)."""
from __future__ import annotations

import torch

CAST_METHODS = frozenset({"half", "bfloat16", "float", "double", "to", "type"})
CAST_OPS = frozenset({"_to_copy"})  # what every cast becomes below autograd
META_KEY = "nanlint.call"  # the spelling, in grad_fn.metadata of the nodes a cast created


def _argument(value) -> str:
    if isinstance(value, torch.dtype):
        return str(value)  # torch.float16
    if isinstance(value, torch.device):
        return repr(str(value))
    if isinstance(value, torch.Tensor):
        return "tensor"
    return repr(value)


def cast_call(func, args, kwargs) -> str | None:
    """``.half()``, ``.to(torch.float16)``, ``.to('cuda', dtype=torch.bfloat16)``, ``.type(torch.float16)``; None
    when ``func`` is not a cast method."""
    name = getattr(func, "__name__", None)
    if name not in CAST_METHODS:
        return None
    if name in ("half", "bfloat16", "float", "double"):
        return f".{name}()"
    shown = [_argument(a) for a in args[1:]]
    shown += [f"{k}={_argument(v)}" for k, v in (kwargs or {}).items() if k in ("dtype", "device")]
    return f".{name}({', '.join(shown)})"


def _autocast_on() -> bool:
    try:
        return any(torch.is_autocast_enabled(device) for device in ("cpu", "cuda"))
    except TypeError:  # torch before 2.4: no device argument
        return bool(torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled())


def cast_name(call, dtype: torch.dtype, autocast: bool = False) -> str:
    """How the report names a cast to ``dtype`` made while the torch call ``call`` (``(func, args, kwargs)`` or
    None) ran: the user's cast method, or the call whose input autocast cast (``autocast``: autocast is on; it
    cannot be asked from inside its own kernels), or the call that cast."""
    target = str(dtype).replace("torch.", "")
    if call is None:
        return f"cast to {target}"
    spelled = cast_call(*call)
    if spelled is not None:
        return spelled
    name = getattr(call[0], "__name__", None) or "?"
    if autocast or _autocast_on():
        return f"autocast to {target} (input of {name})"
    return f"{name} (cast to {target})"
