"""When to stop the traced script, and how.

After N optimizer steps (the global step post-hook covers every optimizer class); with a GradScaler, after
``GradScaler.update()`` of the N-th step that was not skipped; for scripts that never step, when the DataLoader
is asked for batch N+1 (inference) or when backward pass N+1 is about to start (hand-written SGD with no
optimizer object); at the timeout as a last resort. The stop is a ``BaseException`` so that a user's
``except Exception:`` cannot swallow it."""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import weakref

import torch

from nanlint.trace.patches import Patcher

SWALLOWED_RETRY = 2.0  # seconds after a stop that did not reach the runner: raise it again
# GradScaler overflow is calibration while the scale that overflowed is above 1 (it halves at each skip:
# init_scale=2**24 takes 9 skips); at a scale <= 1 the gradients themselves overflow. The count is a backstop.
PERSISTENT_SKIPS = 40


class StopTrace(BaseException):
    """Raised inside the traced script to end it; caught by the runner."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Stopper:
    def __init__(self, steps: int, monitor, health, patcher: Patcher) -> None:
        self.steps = steps
        self.monitor = monitor
        self.health = health
        self.patcher = patcher
        self.optimizers = 0
        self.live_optimizers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> its line
        self.steps_of: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # optimizer -> steps taken
        self.optimizer_steps = 0
        self.scaler_steps = 0  # non-skipped GradScaler steps
        self.skipped = 0
        self.consecutive_skips = 0
        self.scaler_used = False
        self._in_scaler_step = False
        self._stepped_in_scaler = False
        self._last_skipped = False
        self._boundary = 0  # first event index of the current scaler step
        self.batches = 0
        self.backwards = 0
        self._backward_depth = 0
        self.losses_finite = True  # every tensor a backward pass started from was finite
        self.stopped: str | None = None
        self.notes: set[str] = set()
        self._timer = None
        self._old_alarm = None
        self.handles = []
        self.optimizer_sites: set[tuple[str, int]] = set()  # user lines that built an optimizer
        self.expect_training = False  # the code shows a training step: batches alone never end the trace
        self.swallowed = 0  # how many times the script caught the stop and went on
        self._disarmed = False

    @property
    def progressed(self) -> bool:
        """Whether at least one unit of work (step, batch, backward) completed."""
        return bool(self.optimizer_steps or self.scaler_steps or self.batches or self.backwards)

    def stop(self, reason: str):
        if self.stopped is not None:  # the script caught the first stop (a bare `except:`) and went on
            self.swallowed += 1
            self._escape()
            raise StopTrace(self.stopped)
        self.stopped = reason
        if self._old_alarm is not None and not self._disarmed:  # if the script swallows it and runs on
            signal.setitimer(signal.ITIMER_REAL, SWALLOWED_RETRY)
        raise StopTrace(reason)

    def _escape(self) -> None:
        """Make the stop leave every bare ``except:``/``except BaseException:`` that catches it: a line tracer
        raises it again at the first line a handler runs in the user's code (outside the ``try`` that caught
        it). CPython removes a trace function that raises, so a profile function (which sees every call and
        return) puts it back. Library frames are never traced, so their ``__exit__``/``finally`` restore their
        state."""
        locator, reason = self.monitor.locator, self.stopped

        def raiser(frame, event, arg):
            if locator.user_file(frame.f_code.co_filename) is None:
                return None
            if event == "line" and not self._disarmed:
                raise StopTrace(reason)
            return raiser

        def arm(frame):
            while frame is not None:
                if locator.user_file(frame.f_code.co_filename) is not None:
                    frame.f_trace = raiser
                frame = frame.f_back
            sys.settrace(raiser)

        def rearm(frame, event, arg):
            if not self._disarmed and sys.gettrace() is None:
                arm(frame)

        self.notes.add("the script caught nanlint's stop (a bare `except:` or `except BaseException:`); it was "
                       "raised again until the script let it through")
        arm(sys._getframe(1))
        sys.setprofile(rearm)

    # ---- installation ----------------------------------------------------------------------------
    def install(self, timeout: float | None) -> None:
        from torch.optim import optimizer as optimizer_mod

        self.handles.append(optimizer_mod.register_optimizer_step_pre_hook(self._before_step))
        self.handles.append(optimizer_mod.register_optimizer_step_post_hook(self._after_step))
        stopper = self

        def init_wrapper(original):
            def __init__(self, *args, **kwargs):
                stopper.optimizers += 1
                site = stopper.monitor.locator.site(sys._getframe(1))
                if site is not None:
                    stopper.optimizer_sites.add(site)
                result = original(self, *args, **kwargs)
                try:
                    stopper.live_optimizers[self] = site
                except TypeError:  # an optimizer class without weak references: it only counts
                    pass
                return result
            return __init__

        self.patcher.wrap(torch.optim.Optimizer, "__init__", init_wrapper)
        self._patch_scaler()
        self._patch_dataloader()
        self._patch_backward()
        if timeout:
            self._start_timer(timeout)

    def disarm(self) -> None:
        """The stop reached the runner: no more line tracing, no more alarms raising into nanlint's code."""
        self._disarmed = True
        sys.setprofile(None)
        sys.settrace(None)
        if self._old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)

    def remove(self) -> None:
        self.disarm()
        for h in self.handles:
            h.remove()
        self.handles.clear()
        if self._timer is not None:
            self._timer.cancel()
        if self._old_alarm is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old_alarm)
            self._old_alarm = None

    def _start_timer(self, timeout: float) -> None:
        def on_alarm(signum, frame):
            if self.stopped is None:
                self.stop("timeout")
            elif not self._disarmed:  # stopped, and the script swallowed it: try again every second
                signal.setitimer(signal.ITIMER_REAL, SWALLOWED_RETRY)
                self.stop(self.stopped)

        if threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer"):
            self._old_alarm = signal.signal(signal.SIGALRM, on_alarm)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        else:  # not the main thread: ask the monitor to raise at the next op
            def late():
                self.stopped = "timeout"
                self.monitor.stop_request = StopTrace("timeout")
            self._timer = threading.Timer(timeout, late)
            self._timer.daemon = True
            self._timer.start()

    # ---- optimizer steps -------------------------------------------------------------------------
    def _before_step(self, optimizer, args, kwargs):
        """The loop came around to an optimizer that took its steps already while another one never stepped
        (an optimizer built for a later phase): stop here, and say which one did not step."""
        if self.scaler_used or self._in_scaler_step or self._taken(optimizer) < self.steps:
            return
        for other, site in list(self.live_optimizers.items()):
            if self._taken(other) < self.steps:
                where = f" built at {os.path.basename(site[0])}:{site[1]}" if site else ""
                self.notes.add(f"{type(other).__name__}{where} took {self._taken(other)} of {self.steps} steps "
                               "before the loop came around to the next step of another optimizer: it was not "
                               "watched")
        self.stop(self._steps_reason())

    def _taken(self, optimizer) -> int:
        try:
            return self.steps_of.get(optimizer, 0)
        except TypeError:
            return self.optimizer_steps

    def _after_step(self, optimizer, args, kwargs):
        self.optimizer_steps += 1
        try:
            self.steps_of[optimizer] = self.steps_of.get(optimizer, 0) + 1
        except TypeError:
            pass
        if self._in_scaler_step:
            self._stepped_in_scaler = True
            return
        if self.scaler_used:
            return
        # every optimizer of the script takes its steps (a GAN steps the discriminator, then the generator)
        if all(self._taken(o) >= self.steps for o in list(self.live_optimizers)) and self._taken(optimizer) >= self.steps:
            self.stop(self._steps_reason())

    def _steps_reason(self) -> str:
        stepped = sum(1 for o in list(self.live_optimizers) if self._taken(o))
        if stepped > 1:
            return f"{self.steps} step{'s' if self.steps > 1 else ''} of each of {stepped} optimizers"
        n = self.optimizer_steps
        return f"{n} optimizer step{'s' if n > 1 else ''}"

    def _patch_scaler(self) -> None:
        stopper = self
        scaler_cls = torch.amp.GradScaler

        def step_wrapper(original):
            def step(self, optimizer, *args, **kwargs):
                if not self.is_enabled():  # a disabled scaler only calls optimizer.step(): a plain step
                    return original(self, optimizer, *args, **kwargs)
                stopper.scaler_used = True
                stopper._in_scaler_step = True
                stopper._stepped_in_scaler = False
                try:
                    return original(self, optimizer, *args, **kwargs)
                finally:
                    stopper._in_scaler_step = False
                    stopper._last_skipped = not stopper._stepped_in_scaler
            return step

        def update_wrapper(original):
            def update(self, *args, **kwargs):
                result = original(self, *args, **kwargs)
                if not stopper.scaler_used or not self.is_enabled():
                    return result
                stopper.monitor.flush()
                if stopper._last_skipped:
                    stopper.skipped += 1
                    stopper.consecutive_skips += 1
                    try:  # the scale that overflowed; update() has just halved it
                        overflowed_at = float(self.get_scale()) / float(getattr(self, "_backoff_factor", 0.5) or 0.5)
                    except Exception:  # a scaler without the usual state: count the skips only
                        overflowed_at = math.inf
                    if overflowed_at > 1.0 and stopper.consecutive_skips < PERSISTENT_SKIPS:
                        for e in stopper.monitor.events:
                            if e.index >= stopper._boundary and e.phase in ("backward", "step"):
                                e.calibration = True
                    else:
                        stopper.notes = {n for n in stopper.notes if not n.startswith("GradScaler skipped")}
                        stopper.notes.add(f"GradScaler skipped {stopper.consecutive_skips} steps in a row, the last "
                                          f"at a loss scale of {overflowed_at:g}: the overflow persists, it is not "
                                          "calibration")
                else:
                    stopper.consecutive_skips = 0
                    stopper.scaler_steps += 1
                stopper._boundary = len(stopper.monitor.events) + len(stopper.monitor.fills)
                if stopper.scaler_steps >= stopper.steps:
                    stopper.stop(f"{stopper.scaler_steps} GradScaler step{'s' if stopper.scaler_steps > 1 else ''}")
                return result
            return update

        self.patcher.wrap(scaler_cls, "step", step_wrapper)
        self.patcher.wrap(scaler_cls, "update", update_wrapper)

    # ---- batches ---------------------------------------------------------------------------------
    def _patch_dataloader(self) -> None:
        from torch.utils.data import dataloader as dl

        stopper = self

        def init_wrapper(original):
            def __init__(self, *args, **kwargs):
                original(self, *args, **kwargs)
                if self.num_workers:
                    stopper.notes.add(f"DataLoader num_workers={self.num_workers} forced to 0: batches are loaded "
                                      "in-process, where the monitor sees them")
                    self.num_workers = 0
            return __init__

        def next_wrapper(original):
            def __next__(self):
                if (stopper.batches >= stopper.steps and not stopper.optimizers and not stopper.backwards
                        and not stopper.scaler_used and not stopper.expect_training):
                    stopper.stop(f"{stopper.batches} batch{'es' if stopper.batches > 1 else ''} (no training step)")
                batch = original(self)
                stopper.batches += 1
                return batch
            return __next__

        self.patcher.wrap(dl.DataLoader, "__init__", init_wrapper)
        self.patcher.wrap(dl._BaseDataLoaderIter, "__next__", next_wrapper)

    # ---- backward passes -------------------------------------------------------------------------
    def _check_loss(self, roots) -> None:
        """Whether the values a backward pass starts from (the losses) are finite: an inf in the forward pass
        is only harmless when it never reached them."""
        if not self.losses_finite:  # known already: no more host syncs
            return
        tensors = [roots] if isinstance(roots, torch.Tensor) else [t for t in roots or () if isinstance(t, torch.Tensor)]
        self.monitor.paused += 1
        try:
            with torch.no_grad():
                for t in tensors:
                    if (t.is_floating_point() or t.is_complex()) and not bool(torch.isfinite(t.detach()).all()):
                        self.losses_finite = False
        except Exception as exc:  # a tensor subclass that cannot be checked: assume the worst
            self.losses_finite = False
            self.monitor.internal_error(exc)
        finally:
            self.monitor.paused -= 1

    def _patch_backward(self) -> None:
        stopper = self

        def wrapper(original):
            def run(*args, **kwargs):
                if stopper._backward_depth:
                    return original(*args, **kwargs)
                if stopper.backwards >= stopper.steps and not stopper.optimizers:
                    stopper.stop(f"{stopper.backwards} backward pass{'es' if stopper.backwards > 1 else ''} "
                                 "(no optimizer object)")
                stopper._check_loss(args[0] if args else kwargs.get("tensors", kwargs.get("outputs")))
                stopper._backward_depth += 1
                stopper.monitor.backward_site = stopper.monitor.locator.site(sys._getframe(1))
                try:
                    return original(*args, **kwargs)
                finally:
                    stopper._backward_depth -= 1
                    stopper.backwards += 1
                    stopper.monitor.flush()
                    stopper.monitor.last_phase = "forward"
                    if not stopper.optimizers and stopper.health is not None:
                        stopper.health.record_grad_norms()
            return run

        self.patcher.wrap(torch.Tensor, "backward", wrapper)
        self.patcher.wrap(torch.autograd, "backward", wrapper)
        self.patcher.wrap(torch.autograd, "grad", wrapper)
