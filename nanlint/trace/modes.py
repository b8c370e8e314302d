"""The two PyTorch modes the monitor watches through: ``StampMode`` above autograd (the user's line of each torch
call, stamped into the autograd nodes it created) and ``WatchMode`` below it (every aten op, handed to the
monitor)."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from nanlint.trace import spelling
from nanlint.trace.oprecords import META_KEY

if TYPE_CHECKING:
    from nanlint.trace.monitor import Monitor


class WatchMode(TorchDispatchMode):
    """Below autograd: every aten op, forward, backward and optimizer step."""

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        # torch wraps __torch_dispatch__ in torch._disable_dynamo otherwise, which costs about 10 us per op;
        # nothing is compiled while tracing (torch.compile is the identity), so there is nothing to skip
        return False

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        m = self.monitor
        if m.paused:
            return func(*args, **kwargs)
        try:
            out = func(*args, **kwargs)
        except RuntimeError as exc:
            m.op_error(func, exc)
            raise
        m.paused += 1
        try:
            m.after(func, args, kwargs, out)
        except Exception as exc:  # a monitor bug must never break the user's script
            m.internal_error(exc)
        finally:
            m.paused -= 1
        return out


class StampMode(TorchFunctionMode):
    """Above autograd: the user's line of each torch call, stamped into the autograd nodes it created."""

    def __init__(self, monitor: Monitor) -> None:
        super().__init__()
        self.monitor = monitor

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if kwargs is None:
            kwargs = {}
        m = self.monitor
        if m.paused or m.in_step:  # the step's ops are attributed to the step() line: no lookup needed
            return func(*args, **kwargs)
        previous, previous_call = m.site, m.call
        site = m.locator.site(sys._getframe(1))
        m.site, m.call = site, (func, args, kwargs)
        try:
            out = func(*args, **kwargs)
        finally:
            m.site, m.call = previous, previous_call
        if site is not None and torch.is_grad_enabled():
            try:
                if isinstance(out, torch.Tensor):
                    if out.grad_fn is not None:
                        _stamp(out.grad_fn, site)
                        if getattr(func, "__name__", None) in spelling.CAST_METHODS:
                            out.grad_fn.metadata[spelling.META_KEY] = spelling.cast_call(func, args, kwargs)
                elif isinstance(out, (tuple, list)):
                    for o in out:
                        if isinstance(o, torch.Tensor) and o.grad_fn is not None:
                            _stamp(o.grad_fn, site)
            except Exception as exc:
                m.internal_error(exc)
        return out


def _stamp(node, site) -> None:
    """Stamp ``node`` and the unstamped nodes behind it (a composite call creates several)."""
    stack = [node]
    while stack:
        n = stack.pop()
        meta = n.metadata
        if META_KEY in meta:
            continue
        meta[META_KEY] = site
        for nxt, _ in n.next_functions:
            if nxt is not None:
                stack.append(nxt)
