"""One ``nanlint trace`` run, end to end: static sites, the monitored run, the join, the exit code.

``trace(TraceOptions(...))`` is the Python entry point (the command line and the tests use it); it returns a
``TraceResult`` that the reporters render."""
from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass, field

from nanlint.findings import Finding
from nanlint.trace import sites as sites_mod
from nanlint.trace.records import Event, Health, SiteVerdict

DEFAULT_TIMEOUT = 300.0
STATIC_NOTE = ("writes by C extensions that open files themselves (native loggers, HDF5) and by subprocesses are "
               "not redirected")  # said where the script wrote files


class TraceError(Exception):
    """The script cannot be traced (missing file, bad option): one line, exit 2."""


# exit codes of an interrupted trace: 128 + the signal's number, what a shell reports for a process it ended
SIGNAL_EXIT_CODES = {"SIGINT": 130, "SIGTERM": 143}


class Interrupted(BaseException):
    """SIGTERM before the traced script started (SIGINT raises ``KeyboardInterrupt`` there), or a second signal
    of either kind while the result was being made: the trace ends without a result; ``nanlint trace`` exits
    143 (SIGTERM) or 130 (SIGINT)."""

    def __init__(self, signal_name: str, again: bool = False) -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        self.again = again  # a second signal, after the script was left


class _Signals:
    """SIGINT and SIGTERM for the duration of one trace (main thread only; a signal the caller ignores stays
    ignored; the previous handlers are put back). While the script runs, SIGINT raises ``KeyboardInterrupt``
    into it (as in a plain run) and SIGTERM stops it like the step limit does; the run's result then says
    ``interrupted``. Once the script is left (``hold``), a first signal is only recorded, so that the report of
    what ran is still made; a second one ends the trace at once."""

    def __init__(self) -> None:
        self.received: str | None = None  # the first signal's name
        self.stop = None  # while the script runs: raises the stop into it (Stopper.stop)
        self.holding = False
        self._previous: dict = {}

    def install(self) -> None:
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGINT, signal.SIGTERM):
            current = signal.getsignal(sig)
            if current is None or current == signal.SIG_IGN:  # set outside Python, or ignored: left alone
                continue
            self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        import signal

        name = signal.Signals(signum).name
        again = self.received is not None
        if not again:
            self.received = name
        if self.holding:
            if not again:
                return
            raise Interrupted(name, again=True)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.stop is not None:
            self.stop(name)  # raises StopTrace into the script
        raise Interrupted(name)

    def hold(self) -> None:
        self.holding = True
        self.stop = None

    def restore(self) -> None:
        import signal

        while self._previous:
            sig, previous = self._previous.popitem()
            signal.signal(sig, previous)


@dataclass
class TraceOptions:
    script: str | None = None
    module: str | None = None
    args: list[str] = field(default_factory=list)
    device: str | None = None
    steps: int = 1
    timeout: float | None = DEFAULT_TIMEOUT
    dtype: str | None = None
    project_root: str | None = None
    deferred: bool | None = None  # keep per-op results on the device until the phase ends (auto: on CUDA)
    findings: list[Finding] | None = None  # instead of running the checker (tests, API users)


@dataclass
class TraceResult:
    target: str
    args: list[str]
    project_root: str
    device: str | None
    dtype: str | None
    steps_requested: int
    status: str
    stop_reason: str | None
    script_exit_code: int | None
    error: str | None
    script_traceback: str | None
    progressed: bool
    optimizer_steps: int
    backward_passes: int
    batches: int
    skipped_scaler_steps: int
    ops_watched: int
    seconds: float
    files_checked: list[str]
    verdicts: list[SiteVerdict]
    events: list[Event]
    missed: list[Event]
    fills: list[Event]
    propagated: int
    propagation_path: list[dict]
    health: Health
    redirects: list[dict]
    notes: list[str]
    exit_code: int
    interrupted_at: str | None = None  # "during step 1 of 1" when a signal stopped the run (status "interrupted")

    @property
    def first_bug(self) -> Event | None:
        return next((e for e in self.events if e.is_bug), None)


ABSORBED = "absorbed: it never turned into a NaN nor reached the gradients or the weights (an intentional mask?)"


def _absorb_infinities(events: list[Event], monitor, finite_backward: bool) -> None:
    """An inf born in the forward pass (``log`` of a 0/1 causal mask) that a softmax or ``where`` absorbed is
    intentional: when a backward pass ran from finite losses, nothing non-finite reached it, the gradients or
    the step, and no NaN appeared anywhere, those origins become fills (not bugs)."""
    if not finite_backward:
        return
    late = {"backward", "step"}
    if any(e.value == "nan" or e.phase in late for e in events if e.kind != "fill"):
        return
    if any(phase in late for _, _, phase, _, _ in monitor.propagations):
        return
    for e in events:
        if e.kind == "origin" and e.phase == "forward":
            e.kind, e.message = "fill", ABSORBED


def _resolve_target(options: TraceOptions) -> tuple[str, str]:
    """(file to check, label). Raises TraceError for a missing script or module."""
    if options.module:
        sys.path.insert(0, os.getcwd())
        try:
            spec = importlib.util.find_spec(options.module)
        except (ImportError, ValueError) as exc:
            raise TraceError(f"cannot find module `{options.module}`: {exc}") from None
        finally:
            sys.path.pop(0)
        if spec is None or not spec.origin or not os.path.isfile(spec.origin):
            raise TraceError(f"cannot find module `{options.module}`")
        origin = spec.origin
        if spec.submodule_search_locations:
            main = os.path.join(os.path.dirname(origin), "__main__.py")
            if not os.path.isfile(main):
                raise TraceError(f"`{options.module}` is a package and has no __main__.py")
            origin = main
        return os.path.realpath(origin), f"-m {options.module}"
    if not options.script:
        raise TraceError("give a SCRIPT or -m MODULE")
    if os.path.isdir(options.script):
        raise TraceError(f"{options.script}: is a folder, not a script (give its .py file, or -m PACKAGE)")
    if not os.path.isfile(options.script):
        raise TraceError(f"{options.script}: no such file")
    return os.path.realpath(options.script), options.script


def _device_env(device: str | None) -> None:
    """Before torch initializes CUDA: show the script only the GPUs --device allows."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif device and device.startswith("cuda:"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.split(":", 1)[1]


def trace(options: TraceOptions) -> TraceResult:
    """Trace one run. SIGINT or SIGTERM while the script runs stops it: the result has status ``interrupted``
    and exit code 130 (SIGINT) or 143 (SIGTERM). Before the script starts, SIGINT raises ``KeyboardInterrupt``
    and SIGTERM ``Interrupted``."""
    signals = _Signals()
    signals.install()
    try:
        return _trace(options, signals)
    except Exception:
        if signals.received:  # a library turned the KeyboardInterrupt into another error (a failed import)
            raise Interrupted(signals.received) from None
        raise
    finally:
        signals.restore()


def _trace(options: TraceOptions, signals: _Signals) -> TraceResult:
    if options.steps < 1:
        raise TraceError("--steps must be at least 1")
    if options.device and not (options.device in ("cpu", "cuda", "mps") or
                               (options.device.startswith("cuda:") and options.device[5:].isdigit())):
        raise TraceError(f"--device: expected cpu, cuda, cuda:N or mps, got `{options.device}`")
    target, label = _resolve_target(options)
    root = os.path.realpath(options.project_root or sites_mod.project_root(target))
    if not os.path.isdir(root):
        raise TraceError(f"--project-root {options.project_root}: not a directory")
    started = time.perf_counter()
    files = sites_mod.imported_files(target, root, [os.path.dirname(target)])
    findings = list(options.findings) if options.findings is not None else _static_findings(files)
    saved_env = dict(os.environ)
    torch_was_loaded = "torch" in sys.modules
    _device_env(options.device)
    try:
        import torch  # noqa: F401  (after CUDA_VISIBLE_DEVICES)
    except ImportError:
        raise TraceError("nanlint trace needs PyTorch: pip install 'nanlint[trace]'") from None
    finally:
        if torch_was_loaded:
            os.environ.clear()
            os.environ.update(saved_env)
    return _run(options, target, label, root, files, findings, started, saved_env, signals)


def _static_findings(files: list[str]) -> list:
    """The flagged sites, each file with its own configuration; a broken configuration file is one line, exit 2."""
    from nanlint.catalog import CatalogError
    from nanlint.config import ConfigError

    try:
        return sites_mod.static_findings(files)
    except (ConfigError, CatalogError) as exc:
        raise TraceError(str(exc)) from None


def _say(text: str) -> None:
    """What the trace is doing, for a person at a terminal (standard error only, never in a pipe or a log)."""
    stream = sys.__stderr__
    try:
        if stream is not None and stream.isatty():
            stream.write(f"nanlint: {text}\n")
            stream.flush()
    except (OSError, ValueError):
        pass


def _interrupted_at(stopper, monitor, steps: int) -> str:
    """Where the run was when a signal stopped it."""
    if not stopper.progressed and not monitor.ops_seen:
        return "before the first step"
    if stopper.scaler_used:
        done = stopper.scaler_steps
    elif stopper.optimizers:
        done = min((stopper.steps_of.get(o, 0) for o in list(stopper.live_optimizers)), default=stopper.optimizer_steps)
    elif stopper.backwards:
        done = stopper.backwards
    elif stopper.batches:  # inference: batches are the steps
        return f"after {stopper.batches} batch{'es' if stopper.batches != 1 else ''}"
    else:
        done = 0
    if done >= steps:  # the requested steps had run: the signal came while the run was being stopped
        return f"after step {steps} of {steps}"
    return f"during step {done + 1} of {steps}"


def _run(options, target, label, root, files, findings, started, saved_env, signals) -> TraceResult:
    import torch

    from nanlint.trace.evidence import HealthWatch
    from nanlint.trace.join import join
    from nanlint.trace.locate import Locator
    from nanlint.trace.modes import StampMode, WatchMode
    from nanlint.trace.monitor import Monitor
    from nanlint.trace.patches import Patcher
    from nanlint.trace.protect import Protector
    from nanlint.trace.runner import Outcome, end_distributed, patch_environment, run_script
    from nanlint.trace.stopping import Stopper, StopTrace

    if options.device == "cuda" and not torch.cuda.is_available():
        raise TraceError("--device cuda: no CUDA device is available")
    if options.device == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise TraceError("--device mps: MPS is not available")
    deferred = options.deferred
    if deferred is None:
        deferred = options.device != "cpu" and torch.cuda.is_available()
    locator = Locator(root)
    flagged = {sites_mod.normalized(f) for f in findings}
    monitor = Monitor(locator, flagged, deferred=deferred)
    patcher = Patcher()
    notes: set[str] = set()
    health = HealthWatch(monitor, options.dtype)
    stopper = Stopper(options.steps, monitor, health, patcher)
    stopper.expect_training = sites_mod.trains(files)
    protector = Protector(patcher)
    loaded: list[str] = []
    grad_enabled, default_dtype = torch.is_grad_enabled(), torch.get_default_dtype()
    anomaly = (torch.is_anomaly_enabled(), torch.is_anomaly_check_nan_enabled())
    try:
        patch_environment(patcher, notes, options.device, locator.user_file)
        protector.install()
        health.install()
        stopper.install(options.timeout)
        signals.stop = stopper.stop  # SIGTERM stops the script the way the step limit does

        def left_the_script():
            signals.hold()  # a signal from now on lets the report be made
            stopper.disarm()

        if signals.received:  # a signal that a library swallowed while nanlint was getting ready
            raise Interrupted(signals.received)
        steps = f"{options.steps} optimizer step{'s' if options.steps != 1 else ''}"
        _say(f"{len(findings)} flagged site{'s' if len(findings) != 1 else ''} in {len(files)} file{'s' if len(files) != 1 else ''}; "
             f"running {label} under the monitor (it stops after {steps} or {options.timeout:g} s)")
        try:
            with StampMode(monitor), WatchMode(monitor):
                outcome = run_script(options.script if not options.module else None, options.module,
                                     list(options.args), root, loaded, left_the_script)
        except StopTrace as stop:  # the timer (or SIGTERM) fired after the script returned
            outcome = Outcome("stopped", reason=stop.reason)
        except KeyboardInterrupt:  # SIGINT while the modes were entered or left, outside the script
            outcome = Outcome("interrupted", reason="SIGINT")
    finally:
        signals.hold()
        end_distributed()
        stopper.remove()
        health.remove()
        protector.remove()
        patcher.restore()
        torch.set_grad_enabled(grad_enabled)
        torch.set_default_dtype(default_dtype)
        torch.autograd.set_detect_anomaly(*anomaly)
        os.environ.clear()
        os.environ.update(saved_env)
    interrupted_at = None
    # the script may have caught the KeyboardInterrupt and gone on: still interrupted
    interrupted = signals.received or (outcome.reason if outcome.status == "interrupted" else None)
    if interrupted:
        outcome.status, outcome.reason = "interrupted", interrupted
        interrupted_at = _interrupted_at(stopper, monitor, options.steps)
        notes.add(f"interrupted by {interrupted} {interrupted_at}: the report covers what ran until then")
    _say(f"the script stopped ({outcome.reason or outcome.status}); joining what ran with the flagged sites")
    monitor.flush()
    health.finish()
    extra = sorted({f for f in loaded if f not in set(files) and f.endswith(".py")})
    if extra and options.findings is None:
        try:
            findings += _static_findings(extra)
        except TraceError as exc:  # the script has run: the report is still made, without those files' sites
            notes.add(f"flagged sites of files loaded during the run were not found: {exc}")
    files = sorted(set(files) | set(extra))
    events = monitor.all_events()
    _absorb_infinities(events, monitor, stopper.backwards and stopper.losses_finite)
    bugs_and_inputs = [e for e in events if e.kind != "fill"]
    verdicts, missed = join(findings, bugs_and_inputs, monitor.evidence, monitor.sites_run, locator.ran,
                            health.health.updates, stopper.optimizer_sites)
    notes |= health.notes | stopper.notes
    notes |= {f"nanlint internal error while watching (results may be incomplete): {e}" for e in monitor.internal_errors}
    if outcome.status == "stopped" and outcome.reason == "timeout":
        notes.add(f"stopped by the timeout ({options.timeout:g} s) before the requested steps completed")
    persistent = any("persists" in n for n in stopper.notes)
    has_bug = any(e.is_bug for e in events) or persistent
    crashed = outcome.status == "crashed" or (outcome.status == "exited" and outcome.exit_code)
    timed_out = outcome.status == "stopped" and outcome.reason == "timeout"
    # a crash (even after a batch: a shape error in the first forward) and a run in which nothing was watched
    # are never reported as clean
    unwatched = not stopper.progressed and (timed_out or not monitor.ops_seen)
    exit_code = 1 if has_bug else 2 if crashed or unwatched else 0
    if interrupted:  # never 0 (the run did not end) nor 1 (which says a NaN was found, not that it was stopped)
        exit_code = SIGNAL_EXIT_CODES[interrupted]
    return TraceResult(
        target=label, args=list(options.args), project_root=root, device=options.device, dtype=options.dtype,
        steps_requested=options.steps, status=outcome.status, stop_reason=outcome.reason,
        script_exit_code=outcome.exit_code, error=outcome.error, script_traceback=outcome.traceback,
        progressed=stopper.progressed, optimizer_steps=stopper.optimizer_steps, backward_passes=stopper.backwards,
        batches=stopper.batches, skipped_scaler_steps=stopper.skipped, ops_watched=monitor.ops_seen,
        seconds=time.perf_counter() - started, files_checked=files, verdicts=verdicts,
        events=[e for e in events if e.kind != "fill"], missed=missed, fills=[e for e in events if e.kind == "fill"],
        propagated=monitor.propagated,
        propagation_path=[{"filename": s[0] if s else None, "line": s[1] if s else None, "op": op, "phase": ph,
                           "param": p, "value": v} for s, op, ph, p, v in monitor.propagations[:200]],
        health=health.health, redirects=[r.to_dict() for r in protector.redirects],
        notes=sorted(notes) + ([STATIC_NOTE] if protector.redirects else [])
        + ([f"redirected files are kept in {protector.kept_dir}"] if protector.kept_dir else []),
        exit_code=exit_code, interrupted_at=interrupted_at)
