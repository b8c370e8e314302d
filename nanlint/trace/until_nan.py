"""``nanlint trace --until-nan``: run the whole script under the cheap per-step watch, and at the first step
that makes a non-finite loss, gradient or parameter, re-run that step under the full monitor (``replay.py``)
and report it like a one-step trace, with its step number.

The watched run is protected like a trace (the user's files are never changed) and its patches are put back
before the replay runs the script again."""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from nanlint.trace import sites as sites_mod
from nanlint.trace.records import Health
from nanlint.trace.session import (SIGNAL_EXIT_CODES, Interrupted, TraceError, TraceOptions, TraceResult, _device_env,
                                   _resolve_target, _say, _Signals)


@dataclass
class UntilNanOptions:
    trace: TraceOptions  # script, module, args, device, project root; its timeout is the replay's
    max_steps: int | None = None
    timeout: float | None = None  # the whole watched run (default: none)
    save_dir: str | None = None
    sample_every: int = 10


def until_nan(options: UntilNanOptions) -> TraceResult:
    t = options.trace
    if options.max_steps is not None and options.max_steps < 1:
        raise TraceError("--max-steps must be at least 1")
    if t.dtype:
        raise TraceError("--dtype cannot be combined with --until-nan (run the watched script in the dtype it uses)")
    if t.device and not (t.device in ("cpu", "cuda", "mps") or (t.device.startswith("cuda:") and t.device[5:].isdigit())):
        raise TraceError(f"--device: expected cpu, cuda, cuda:N or mps, got `{t.device}`")
    target, label = _resolve_target(t)
    root = os.path.realpath(t.project_root or sites_mod.project_root(target))
    if not os.path.isdir(root):
        raise TraceError(f"--project-root {t.project_root}: not a directory")
    if options.save_dir:
        from nanlint.trace.bundle import BundleError, check_folder

        try:
            check_folder(options.save_dir)
        except BundleError as exc:
            raise TraceError(str(exc)) from None
    saved_env = dict(os.environ)
    _device_env(t.device)
    try:
        import torch  # noqa: F401
    except ImportError:
        raise TraceError("nanlint trace needs PyTorch: pip install 'nanlint[trace]'") from None
    signals = _Signals()
    signals.install()
    try:
        watched = _watched_run(options, root, signals)
    except Exception:
        if signals.received:
            raise Interrupted(signals.received) from None
        raise
    finally:
        signals.restore()
        os.environ.clear()
        os.environ.update(saved_env)
    watch, outcome, notes, seconds, redirects = watched
    failure = None if outcome.status == "interrupted" else (watch.failure or watch.finish())
    info = {"step": failure.step if failure else None, "detected": failure.kind if failure else None,
            "steps_watched": watch.steps, "seconds": round(seconds, 3), "max_steps": options.max_steps,
            "sample_every": watch.sample_every, "bundle": None, "reproduced": None, "health": watch.health,
            "html": None}
    notes |= {f"nanlint internal error in the cheap watch (the script went on): {e}" for e in watch.errors}
    crash = None
    if failure is None and outcome.status == "crashed":
        crash = watch.crashed()  # the step the script raised in: was a non-finite value born before it?
        info["step"], info["detected"] = (crash.step, crash.kind) if crash else (None, None)
    if failure is None and crash is None:
        result = _without_replay(t, label, root, outcome, watch, seconds, notes, redirects)
        result.until_nan = info
        return result
    if crash is not None:
        from nanlint.trace import replay

        _say(f"the script raised in step {crash.step}; re-running it under the full monitor")
        result = replay.run(crash.payload(target if t.script else label, t.args), t)
        if result.first_bug is None:  # an error of the script's own: reported as today
            result = _without_replay(t, label, root, outcome, watch, seconds, notes, redirects)
            info["step"] = info["detected"] = None
            result.notes = sorted(set(result.notes) | {f"the step the script raised in (step {crash.step}) was "
                                                       "re-run under the full monitor: no non-finite value"})
        else:
            result.notes = sorted(set(result.notes) | notes)
            info["reproduced"] = True
        result.until_nan = info
        return result
    payload = failure.payload(target if t.script else label, t.args)
    if options.save_dir:
        from nanlint.trace.bundle import save

        try:
            save(options.save_dir, payload)
            info["bundle"] = os.path.abspath(options.save_dir)
        except Exception as exc:  # the report still comes: the bundle is an extra
            notes.add(f"the failing step could not be saved to {options.save_dir}: {type(exc).__name__}: {exc}")
    _say(f"step {failure.step} made {failure.detected}; re-running it under the full monitor")
    from nanlint.trace import replay

    result = replay.run(payload, t)
    info["reproduced"] = result.first_bug is not None
    if info["reproduced"] and failure.rolled_back:  # the replay of the steps since the checkpoint names it
        info["step"] = result.first_bug.step + 1
    if not info["reproduced"] and result.status != "interrupted":
        notes.add(f"the cheap watch saw {failure.detected} at step {failure.step}, but the replayed step stayed "
                  "finite: the step depends on something the replay does not restore (a functional loss's target "
                  "drawn outside a DataLoader, state outside the model and optimizer)")
        result.exit_code = 1
    result.notes = sorted(set(result.notes) | notes)
    result.until_nan = info
    return result


def _watched_run(options, root, signals):
    import torch

    from nanlint.trace.cheapwatch import StepWatch
    from nanlint.trace.locate import Locator
    from nanlint.trace.patches import Patcher
    from nanlint.trace.protect import Protector
    from nanlint.trace.runner import Outcome, end_distributed, patch_environment, run_script
    from nanlint.trace.stephooks import StepHooks
    from nanlint.trace.stopping import StopTrace

    t = options.trace
    if t.device == "cuda" and not torch.cuda.is_available():
        raise TraceError("--device cuda: no CUDA device is available")
    patcher, notes = Patcher(), set()
    watch = StepWatch(options.sample_every)

    def on_failure(failure):
        raise StopTrace(f"{failure.detected} at step {failure.step}")

    hooks = StepHooks(watch, Patcher(), on_failure, max_steps=options.max_steps)
    protector = Protector(patcher)
    locator = Locator(root)
    grad_enabled, default_dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    timer = _Timer(options.timeout)
    started = time.perf_counter()
    loaded: list[str] = []
    try:
        patch_environment(patcher, notes, t.device, locator.user_file)
        protector.install()
        hooks.install()

        def stop(name):
            raise StopTrace(name)

        signals.stop = stop
        timer.start()
        if signals.received:
            raise Interrupted(signals.received)
        _say(f"running {t.script or '-m ' + t.module} under the cheap watch until a step goes non-finite"
             + (f" (at most {options.max_steps} steps)" if options.max_steps else ""))
        try:
            outcome = run_script(t.script if not t.module else None, t.module, list(t.args), root, loaded,
                                 lambda: (signals.hold(), timer.cancel()))
        except StopTrace as exc:
            outcome = Outcome("stopped", reason=exc.reason)
        except KeyboardInterrupt:
            outcome = Outcome("interrupted", reason="SIGINT")
    finally:
        signals.hold()
        timer.cancel()
        end_distributed()
        hooks.remove()
        protector.remove()
        patcher.restore()
        torch.set_grad_enabled(grad_enabled)
        torch.set_default_dtype(default_dtype)
    interrupted = signals.received or (outcome.reason if outcome.status == "interrupted" else None)
    if interrupted:
        outcome.status, outcome.reason = "interrupted", interrupted
        notes.add(f"interrupted by {interrupted} after {watch.steps} watched steps")
    if outcome.status == "stopped" and outcome.reason == "timeout":
        notes.add(f"stopped by the timeout ({options.timeout:g} s) after {watch.steps} watched steps")
    redirects = [r.to_dict() for r in protector.redirects]
    if protector.kept_dir:
        notes.add(f"redirected files are kept in {protector.kept_dir}")
    return watch, outcome, notes, time.perf_counter() - started, redirects


class _Timer:
    """The watched run's own timeout (SIGALRM, main thread only)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._old = None

    def start(self) -> None:
        import signal
        import threading

        if not self.seconds or threading.current_thread() is not threading.main_thread():
            return
        from nanlint.trace.stopping import StopTrace

        def on_alarm(signum, frame):
            raise StopTrace("timeout")

        self._old = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def cancel(self) -> None:
        import signal

        if self._old is not None:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._old)
            self._old = None


def _without_replay(t, label, root, outcome, watch, seconds, notes, redirects) -> TraceResult:
    """The run ended without a non-finite step: clean (exit 0), or the script's own failure (exit 2)."""
    crashed = outcome.status == "crashed" or (outcome.status == "exited" and outcome.exit_code)
    exit_code = 2 if crashed or not watch.steps else 0
    if outcome.status == "interrupted":
        exit_code = SIGNAL_EXIT_CODES[outcome.reason]
    if not watch.steps and not crashed and outcome.status != "interrupted":
        notes.add("no optimizer step ran: --until-nan watches optimizer steps (torch.optim), nothing was checked")
    return TraceResult(
        target=label, args=list(t.args), project_root=root, device=t.device, dtype=None, steps_requested=0,
        status=outcome.status, stop_reason=outcome.reason, script_exit_code=outcome.exit_code, error=outcome.error,
        script_traceback=outcome.traceback, progressed=bool(watch.steps), optimizer_steps=watch.steps,
        backward_passes=0, batches=0, skipped_scaler_steps=0, ops_watched=0, seconds=seconds, files_checked=[],
        verdicts=[], events=[], missed=[], fills=[], propagated=0, propagation_path=[], health=Health(),
        redirects=redirects, notes=sorted(notes), exit_code=exit_code,
        interrupted_at=f"after {watch.steps} watched steps" if outcome.status == "interrupted" else None)
