"""Re-running one saved step under the full monitor, without the steps before it.

The script runs again as a one-step trace; at its first training step the ``Injector`` puts the saved step in
place: the RNG states, the top-level modules' state, the optimizers' parameters and state, and the batch (the
DataLoader items the step drew, else the inputs of its top-level module calls: model and loss modules).
So a step that went NaN after 150 shuffled steps is traced as the script's first step."""
from __future__ import annotations

import contextlib

import torch

from nanlint.trace.bundle import COMPUTED, set_rng_states
from nanlint.trace.patches import Patcher
from nanlint.trace.stephooks import loader_source, patch_loader_items, patch_outermost_calls


@contextlib.contextmanager
def _unwatched():
    """The injection's own copies are not the script's ops: pause the monitor, if one runs."""
    from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

    monitors = [m.monitor for m in _get_current_dispatch_mode_stack() if hasattr(m, "monitor")]
    for m in monitors:
        m.paused += 1
    try:
        with torch.no_grad():
            yield
    finally:
        for m in monitors:
            m.paused -= 1


def _like(saved, original):
    """``saved`` on the device of what the replayed script computed in its place (what the step computed
    itself is the replay's own)."""
    if isinstance(saved, str) and saved == COMPUTED:
        return original
    if isinstance(saved, torch.Tensor) and isinstance(original, torch.Tensor):
        return saved.to(original.device)
    if isinstance(saved, dict) and isinstance(original, dict):
        out = dict(saved)
        for k, v in saved.items():
            if k in original:
                out[k] = _like(v, original[k])
        return type(saved)(out) if type(saved) is not dict and _rebuildable(saved) else out
    if isinstance(saved, (list, tuple)) and isinstance(original, (list, tuple)) and len(saved) == len(original):
        items = [_like(s, o) for s, o in zip(saved, original)]
        return type(saved)(items) if type(saved) in (list, tuple) else items
    return saved


def _rebuildable(value) -> bool:
    try:
        type(value)(dict(value))
        return True
    except Exception:
        return False


class Injector:
    def __init__(self, payload: dict) -> None:
        self.payload = payload
        self.patcher = Patcher()
        self.notes: set[str] = set()
        self.optimizers: list = []  # created during the replay, in order
        self.steps = list(payload.get("steps") or [])
        self.index = 0  # the saved step the replay is in
        self.modules = list(payload.get("modules") or [])
        self.primary = None  # the first optimizer that steps: its steps are the run's
        self._load(0)
        self.restored_opts = False
        self.saved_params: dict[int, torch.Tensor] = {}  # id(param) -> saved value
        self.substituted = {"items": 0, "calls": 0, "modules": 0, "optimizers": 0}

    def install(self) -> None:
        from torch.optim import optimizer as optimizer_mod

        injector = self

        def init_wrapper(original):
            def __init__(self, *args, **kwargs):
                original(self, *args, **kwargs)
                injector.optimizers.append(self)
            return __init__

        self.patcher.wrap(torch.optim.Optimizer, "__init__", init_wrapper)
        self._handle = optimizer_mod.register_optimizer_step_pre_hook(self._before_step)
        self._post = optimizer_mod.register_optimizer_step_post_hook(self._after_step)
        patch_outermost_calls(self.patcher, self._at_call)

        patch_loader_items(self.patcher, self._at_item)

    def remove(self) -> None:
        self._handle.remove()
        self._post.remove()
        self.patcher.restore()

    # ---- the step's beginning ---------------------------------------------------------------------
    def _load(self, i: int) -> None:
        step = self.steps[i] if i < len(self.steps) else {}
        self.items = list(step.get("items") or [])
        self.calls = list(step.get("calls") or []) if not self.items else []
        self.rng = step.get("rng")
        self.started = False  # this step's RNG states were put in place

    def _start(self) -> None:
        if not self.started:
            self.started = True
            if self.index < len(self.steps):
                set_rng_states(self.rng)
        self._restore_optimizers()

    def _after_step(self, optimizer, args, kwargs):
        if self.primary is None:
            self.primary = optimizer
        if optimizer is not self.primary:
            return
        if self.items and self.index < len(self.steps):
            self.notes.add(f"replay: {len(self.items)} saved batch(es) of step {self.payload.get('start', 1) + self.index} "
                           "were not drawn by the replayed step")
        self.index += 1
        self._load(self.index)

    def _restore_optimizers(self) -> None:
        saved = self.payload.get("optimizers") or []
        if self.restored_opts or len(self.optimizers) < len(saved):
            return
        self.restored_opts = True
        free = list(self.optimizers)
        with _unwatched():
            for s in saved:
                match = next((o for o in free if type(o).__name__ == s["cls"] and
                              [tuple(p.shape) for g in o.param_groups for p in g["params"]] == list(map(tuple, s["shapes"]))), None)
                if match is None:
                    self.notes.add(f"replay: no {s['cls']} with the saved parameter shapes was built: its state was not restored")
                    continue
                free.remove(match)
                params = [p for g in match.param_groups for p in g["params"]]
                for p, value in zip(params, s["params"]):
                    p.copy_(value)
                    self.saved_params[id(p)] = value
                match.load_state_dict(s["state_dict"])
                self.substituted["optimizers"] += 1

    def _before_step(self, optimizer, args, kwargs):
        self._start()
        return None

    def _at_call(self, module, args, kwargs):
        self._start()
        self._restore_module(module)
        if self.calls:
            cls, saved_args, saved_kwargs = self.calls[0]
            if cls == type(module).__name__:
                self.calls.pop(0)
                self.substituted["calls"] += 1
                return _like(tuple(saved_args), args), _like(dict(saved_kwargs), kwargs)
            self.notes.add(f"replay: the step called {type(module).__name__} where the saved step called {cls}: "
                           "its inputs were not replaced")
            self.calls = []
        return args, kwargs

    def _restore_module(self, module) -> None:
        name = type(module).__name__
        for i, (cls, sd) in enumerate(self.modules):
            if cls != name:
                continue
            own = module.state_dict()
            if set(own) != set(sd) or any(tuple(own[k].shape) != tuple(v.shape) for k, v in sd.items()
                                          if isinstance(v, torch.Tensor) and isinstance(own[k], torch.Tensor)):
                continue
            self.modules.pop(i)
            with _unwatched():
                module.load_state_dict(sd)
                for p in module.parameters():  # after a bad update the optimizers hold the state before it
                    value = self.saved_params.get(id(p))
                    if value is not None:
                        p.copy_(value)
            self.substituted["modules"] += 1
            return

    def _at_item(self, loader, item):
        if not self.items:
            return item
        source, saved = self.items[0]
        here = loader_source(loader)
        if source is not None and here != source:
            return item  # another DataLoader (validation): left alone
        self.items.pop(0)
        self.substituted["items"] += 1
        return _like(saved, item)

    def summary(self) -> list[str]:
        s = self.substituted
        notes = sorted(self.notes)
        if self.items and self.index < len(self.steps):
            notes.append(f"replay: {len(self.items)} saved batch(es) were not drawn by the replayed step")
        if self.modules:
            notes.append("replay: the state of " + ", ".join(m[0] for m in self.modules) + " was not restored (never called)")
        what = []
        if s["items"]:
            what.append(f"{s['items']} DataLoader batch(es)")
        if s["calls"]:
            what.append(f"the inputs of {s['calls']} module call(s)")
        what.append(f"{s['modules']} module state(s), {s['optimizers']} optimizer state(s) and the RNG states")
        start, last = self.payload.get("start") or self.payload.get("step"), self.payload.get("step")
        steps = f"step {last}" if start == last else f"steps {start}-{last} (from the checkpoint of step {start})"
        notes.append(f"replay of {steps}: restored " + ", ".join(what))
        return notes


def run(payload: dict, options):
    """Trace the saved step as the script's first step (``options``: a ``TraceOptions``); the result's events
    and health carry the saved step's number."""
    from dataclasses import replace

    from nanlint.trace.session import trace

    injector = Injector(payload)
    options = replace(options, steps=max(1, len(payload.get("steps") or [])))
    injector.install()
    try:
        result = trace(options)
    finally:
        injector.remove()
    shift = int(payload.get("start") or payload.get("step") or 1) - 1
    for e in {id(e): e for e in [*result.events, *result.missed, *result.fills]}.values():
        e.step += shift
    for u in result.health.updates:
        u["step"] = u.get("step", 1) + shift
    result.notes = list(result.notes) + injector.summary()
    result.injected = dict(injector.substituted)
    result.replayed = {"start": shift + 1, "step": payload.get("step"), "bundle": None}
    return result
