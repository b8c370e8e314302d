"""Where the cheap watch hears about a step: optimizer step hooks (every optimizer, or the given ones),
``backward`` (the losses), ``DataLoader`` batches, the top-level module calls and a few activations.

Top-level modules are found during the first step with a ``Module.__call__`` wrapper (every module call pays
for it, once); after that only those modules carry a hook, so submodules run at full speed."""
from __future__ import annotations

import torch

from nanlint.trace.patches import Patcher
from nanlint.trace.stopping import StopTrace


def loader_source(loader) -> str:
    """What a DataLoader is, to match its batches in a replay: the dataset's class and the batch size."""
    dataset = getattr(loader, "dataset", None)
    return f"{type(dataset).__name__}/{getattr(loader, 'batch_size', None)}"


def patch_loader_items(patcher: Patcher, on_item) -> None:
    """Every item a DataLoader yields goes through ``on_item(loader, item)``, which returns the item to yield
    (the watch records it; the replay puts the saved batch in its place)."""
    from torch.utils.data import dataloader as dl

    def next_wrapper(original):
        def __next__(self):
            return on_item(getattr(self, "_nanlint_loader", None) or self, original(self))
        return __next__

    def iter_wrapper(original):
        def __init__(self, loader, *args, **kwargs):
            self._nanlint_loader = loader
            return original(self, loader, *args, **kwargs)
        return __init__

    patcher.wrap(dl._BaseDataLoaderIter, "__init__", iter_wrapper)
    patcher.wrap(dl._BaseDataLoaderIter, "__next__", next_wrapper)


def patch_outermost_calls(patcher: Patcher, at_call):
    """``nn.Module.__call__`` patched so that ``at_call(module, args, kwargs)`` sees each outermost training call
    (a model called while no other module runs), and may return ``(args, kwargs)`` to call it with instead
    (the watch records the batch; the replay puts the saved one in its place). Returns the original."""
    original = torch.nn.Module.__call__
    depth = 0

    def __call__(module, *args, **kwargs):
        nonlocal depth
        if depth == 0 and is_training_call(module):
            replaced = at_call(module, args, kwargs)
            if replaced is not None:
                args, kwargs = replaced
        depth += 1
        try:
            return original(module, *args, **kwargs)
        finally:
            depth -= 1

    patcher.set(torch.nn.Module, "__call__", __call__)
    return original


def is_training_call(module) -> bool:
    return torch.is_grad_enabled() and (module.training or not any(True for _ in module.parameters()))


class StepHooks:
    """Feeds a ``StepWatch``. ``on_failure(failure)`` decides what a failure does (the tracer raises its stop;
    the API warns or raises); ``max_steps`` stops the run after that many optimizer steps."""

    def __init__(self, watch, patcher: Patcher, on_failure, max_steps: int | None = None,
                 optimizers: list | None = None, modules: list | None = None, pre_step: bool = True,
                 post_step: bool = True, loader: bool = True) -> None:
        self.watch = watch
        self.patcher = patcher
        self.on_failure = on_failure
        self.max_steps = max_steps
        self.only = optimizers  # None: every optimizer (global hooks)
        self.pre_step = pre_step  # False: the caller calls before_step itself (Lightning's closure)
        self.post_step = post_step  # False: the caller calls after_step itself too
        self.loader = loader  # False: a framework prefetches batches; the caller records the step's batch
        self.top: dict[int, torch.nn.Module] = {}
        self.handles: list = []
        self._discovering = modules is None
        self._given = modules or []
        self.stopped: str | None = None

    # ---- install / remove ----------------------------------------------------------------------
    def install(self) -> None:
        if self.only is None:
            from torch.optim import optimizer as optimizer_mod

            if self.pre_step:
                self.handles.append(optimizer_mod.register_optimizer_step_pre_hook(self._before))
            if self.post_step:
                self.handles.append(optimizer_mod.register_optimizer_step_post_hook(self._after))
        else:
            for opt in self.only:
                if self.pre_step:
                    self.handles.append(opt.register_step_pre_hook(self._before))
                if self.post_step:
                    self.handles.append(opt.register_step_post_hook(self._after))
        self._patch_backward()
        if self.loader:
            self._patch_loader()
        if self._discovering:
            self._patch_call()
        else:
            for module in self._given:
                self._adopt(module)

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        self.patcher.restore()

    # ---- optimizer -----------------------------------------------------------------------------
    def _before(self, optimizer, args, kwargs):
        if self.stopped:
            raise StopTrace(self.stopped)
        # args holds the optimizer itself first, then step()'s own arguments
        closure = args[1] if len(args) > 1 else kwargs.get("closure")
        if callable(closure):  # forward and backward run inside step(): check after the closure
            def checked(*a, **k):
                result = closure(*a, **k)
                self.check(optimizer)
                return result
            if len(args) > 1:
                return (args[0], checked, *args[2:]), kwargs
            return args, dict(kwargs, closure=checked)
        self.check(optimizer)
        return None

    def check(self, optimizer) -> None:
        failure = self.watch.before_step(optimizer)
        if failure is not None:
            self.on_failure(failure)

    def _after(self, optimizer, args=(), kwargs=None):
        self.watch.after_step(optimizer)
        if self._discovering and self.watch.steps >= 1:
            self._end_discovery()
        if self.max_steps and self.watch.steps >= self.max_steps and self.watch.failure is None:
            failure = self.watch.finish()
            if failure is not None:
                self.on_failure(failure)
            else:
                self.stopped = f"{self.watch.steps} optimizer step{'s' if self.watch.steps != 1 else ''} (--max-steps)"
                raise StopTrace(self.stopped)

    # ---- losses and batches --------------------------------------------------------------------
    def _patch_backward(self) -> None:
        watch = self.watch

        def wrapper(original):
            def run(*args, **kwargs):
                roots = args[0] if args else kwargs.get("tensors")
                for t in (roots if isinstance(roots, (list, tuple)) else (roots,)):
                    watch.on_loss(t)
                return original(*args, **kwargs)
            return run

        self.patcher.wrap(torch.Tensor, "backward", wrapper)
        self.patcher.wrap(torch.autograd, "backward", wrapper)

    def _patch_loader(self) -> None:
        watch = self.watch

        def seen(loader, item):
            watch.on_item(item, loader_source(loader))
            return item

        patch_loader_items(self.patcher, seen)

    # ---- module calls --------------------------------------------------------------------------
    def _patch_call(self) -> None:
        def seen(module, args, kwargs):
            self.top.setdefault(id(module), module)
            self.watch.on_call(module, args, kwargs)

        self._original_call = patch_outermost_calls(self.patcher, seen)

    def _end_discovery(self) -> None:
        self._discovering = False
        self.patcher.set(torch.nn.Module, "__call__", self._original_call)
        for module in list(self.top.values()):
            self._adopt(module)

    def _adopt(self, module) -> None:
        """A pre-hook on a top-level module (its inputs) and forward hooks on its children (sampled activations)."""
        watch = self.watch

        def pre(mod, args, kwargs):
            if is_training_call(mod):
                watch.on_call(mod, args, kwargs)

        self.handles.append(module.register_forward_pre_hook(pre, with_kwargs=True))
        if not any(True for _ in module.parameters()):  # a loss module: its output is the loss, already watched
            return
        children = list(module.named_children()) or [("", module)]
        prefix = type(module).__name__
        for name, child in children:
            label = f"{prefix}.{name}" if name else prefix

            def post(mod, args, output, label=label):
                if watch.failure is None and watch.sampling():
                    watch.on_activation(label, output)

            self.handles.append(child.register_forward_hook(post))

