"""``nanlint.watch(model, optimizer)``: the cheap per-step watch of ``--until-nan`` inside the user's own loop.

As a context manager it hooks the given optimizers' ``step()`` (and ``backward``, ``DataLoader`` batches, the
model's inputs) for the duration of the block; as a callback API (``hooks=False``) the loop calls
``before_step`` / ``after_step`` itself (the Lightning and Hugging Face callbacks do). At the first non-finite
step it warns (or raises ``NonFiniteError``, or calls a function), keeps that step, and can save it
(``save_failing_step``) or re-run it in-process under the full monitor (``replay(step_fn)``).

A failure of nanlint itself never breaks the loop: it is recorded in ``errors``."""
from __future__ import annotations

import warnings


class NonFiniteError(RuntimeError):
    """Raised by ``watch(..., on_nonfinite="raise")`` before the failing step's ``optimizer.step()``
    (or after it, when the update made the parameters non-finite)."""

    def __init__(self, failure) -> None:
        super().__init__(f"nanlint.watch: {failure.detected} at step {failure.step}")
        self.failure = failure


def _caller_folder() -> str:
    """The folder of the file that called ``watch()``: its lines are the user's (replay names them)."""
    import os
    import sys

    frame = sys._getframe(1)
    here = os.path.dirname(os.path.abspath(__file__))
    while frame is not None and (os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == here
                                 or frame.f_code.co_filename.startswith("<")):
        frame = frame.f_back
    return os.path.dirname(os.path.abspath(frame.f_code.co_filename)) if frame is not None else os.getcwd()


def _listed(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


class Watch:
    def __init__(self, model=None, optimizer=None, *, on_nonfinite="warn", save_dir: str | None = None,
                 sample_every: int = 10, hooks=True, project_root: str | None = None, loader: bool = True) -> None:
        from nanlint.trace.bundle import check_folder
        from nanlint.trace.cheapwatch import StepWatch

        if hooks not in (True, False, "post"):
            raise ValueError("hooks: expected True (optimizer.step hooks), False (call before_step/after_step) or 'post'")
        if on_nonfinite not in ("warn", "raise", "ignore") and not callable(on_nonfinite):
            raise ValueError("on_nonfinite: expected 'warn', 'raise', 'ignore' or a function of the failure")
        if save_dir:
            check_folder(save_dir)  # BundleError: the folder must be new or empty
        self.models = _listed(model)
        self.optimizers_given = _listed(optimizer)
        self.on_nonfinite = on_nonfinite
        self.save_dir = save_dir
        self.hooks = hooks
        self.loader = loader  # record DataLoader batches (off where a framework prefetches the next batch)
        self.project_root = project_root or _caller_folder()
        self.watch = StepWatch(sample_every)
        self._hooks = None
        self._reported = False

    # ---- context manager -------------------------------------------------------------------------
    def __enter__(self) -> "Watch":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.stop()
        return False

    def start(self) -> "Watch":
        from nanlint.trace.patches import Patcher
        from nanlint.trace.stephooks import StepHooks

        if self._hooks is None:
            self._hooks = StepHooks(self.watch, Patcher(), self._failed, optimizers=self.optimizers_given or None,
                                    modules=self.models or None, pre_step=self.hooks is True,
                                    post_step=self.hooks in (True, "post"), loader=self.loader)
            self._hooks.install()
        return self

    def stop(self) -> None:
        """End the watch: check what the last step left, remove every hook."""
        if self._hooks is None:
            return
        try:
            failure = self.watch.finish()
            if failure is not None and not self._reported:
                self._failed(failure, raising=False)
        finally:
            self._hooks.remove()
            self._hooks = None

    # ---- callback API ----------------------------------------------------------------------------
    def batch(self, *args, **kwargs) -> None:
        """Record the step's batch (call it each step, before the forward) (what ``replay`` feeds ``step_fn``, what the saved step holds)."""
        self.watch.on_item((args, kwargs), None)

    def loss(self, loss) -> None:
        self.watch.on_loss(loss)

    def before_step(self, optimizer=None):
        """After backward, before ``optimizer.step()``: returns the failure (then skip the step) or None."""
        opt = optimizer or (self.optimizers_given[0] if self.optimizers_given else None)
        if opt is None:
            raise ValueError("before_step: give the optimizer (none was given to watch())")
        failure = self.watch.before_step(opt)
        if failure is not None and not self._reported:
            self._failed(failure)
        return failure

    def after_step(self, optimizer=None) -> None:
        opt = optimizer or (self.optimizers_given[0] if self.optimizers_given else None)
        if self._hooks is not None:
            self._hooks._after(opt)
        else:
            self.watch.after_step(opt)

    # ---- results ---------------------------------------------------------------------------------
    @property
    def failure(self):
        return self.watch.failure

    @property
    def steps(self) -> int:
        return self.watch.steps

    @property
    def health(self) -> dict:
        return self.watch.health

    @property
    def errors(self) -> list[str]:
        return self.watch.errors

    def info(self) -> dict:
        f = self.failure
        return {"step": f.step if f else None, "detected": f.kind if f else None, "steps_watched": self.steps,
                "seconds": 0.0, "max_steps": None, "sample_every": self.watch.sample_every,
                "bundle": self.save_dir if f and self.save_dir else None, "html": None, "reproduced": None,
                "health": self.health}

    def write_html(self, path: str, title: str = "nanlint.watch") -> None:
        from nanlint.trace import html

        problem = html.write(path, self.info(), title)
        if problem:
            raise OSError(problem)

    def save_failing_step(self, path: str) -> None:
        from nanlint.trace import bundle

        if self.failure is None:
            raise ValueError("save_failing_step: no step went non-finite")
        bundle.save(path, self.failure.payload())

    def _failed(self, failure, raising: bool = True) -> None:
        if self._reported:  # one failure per watch: the hooks keep returning it
            return
        self._reported = True
        if self.save_dir:
            try:
                self.save_failing_step(self.save_dir)
            except Exception as exc:
                self.watch.errors.append(f"saving the failing step: {type(exc).__name__}: {exc}")
        action = self.on_nonfinite
        if action == "raise" and raising:
            raise NonFiniteError(failure)
        if action in ("warn", "raise"):
            where = f"; saved to {self.save_dir}" if self.save_dir else ""
            warnings.warn(f"nanlint.watch: {failure.detected} at step {failure.step}{where}", RuntimeWarning,
                          stacklevel=3)
        elif callable(action):
            action(failure)

    # ---- replay ----------------------------------------------------------------------------------
    def replay(self, step_fn, *args, **kwargs):
        """Put the failing step's state back (models, optimizers, RNG) and run ``step_fn`` under the full
        monitor, with the batch recorded by ``batch()`` (or the model's recorded inputs) unless arguments are
        given. Returns the monitor's events; ``first`` on the result is the first non-finite value's birth."""
        from nanlint.trace.bundle import set_rng_states
        from nanlint.trace.watch import watching

        f = self.failure
        if f is None:
            raise ValueError("replay: no step went non-finite")
        import torch

        with torch.no_grad():
            for module, (_, sd) in zip(self.models, f.modules):
                module.load_state_dict(sd)
            for opt, saved in zip(self.watch.optimizers or self.optimizers_given, f.optimizers):
                params = [p for g in opt.param_groups for p in g["params"]]
                for p, value in zip(params, saved["params"]):
                    p.copy_(value)
                opt.load_state_dict(saved["state_dict"])
        saved_hooks, self._hooks = self._hooks, None
        if saved_hooks is not None:
            saved_hooks.remove()
        with watching(project_root=self.project_root) as w:
            for i, capture in enumerate(f.captures):  # the steps since the checkpoint, or the failing one
                step_args, step_kwargs = (args, kwargs) if args or kwargs else _inputs(capture)
                set_rng_states(capture.rng)
                try:
                    step_fn(*step_args, **step_kwargs)
                except Exception as exc:  # the step's own NaN guard: the events tell what happened before it
                    self.watch.errors.append(f"the replayed step raised {type(exc).__name__}: {exc}")
                    break
        events = [e for e in w.monitor.all_events() if e.is_bug]
        for e in events:  # 1-based here
            e.step += f.start
        return Replayed(events)


def _inputs(capture) -> tuple[tuple, dict]:
    """What ``step_fn`` gets: the batch recorded by ``batch()``, else the model's recorded inputs."""
    if capture.items:
        item = capture.items[0][1]
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], dict):
            return item
        return (item,), {}
    if capture.calls:
        return capture.calls[0][1], capture.calls[0][2]
    return (), {}


class Replayed(list):
    """The non-finite values the replayed step produced (Events), first born first."""

    @property
    def first(self):
        return self[0] if self else None


def watch(model=None, optimizer=None, **options) -> Watch:
    """``with nanlint.watch(model, optimizer) as w: ...`` (see ``Watch``)."""
    return Watch(model, optimizer, **options)
