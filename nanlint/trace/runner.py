"""Running the user's script in-process, as ``python SCRIPT ARGS`` or ``python -m MODULE ARGS`` would: as
``__main__``, with its own ``sys.argv`` and ``sys.path[0]``, in the current working directory, so argparse,
relative imports and ``if __name__ == "__main__"`` behave as in a normal run. Everything the run patches or
changes (modes, hooks, ``torch.compile``, file protection, ``sys.argv``/``sys.path``/cwd/environment, modules
the script imported from the project) is put back afterwards."""
from __future__ import annotations

import logging
import os
import runpy
import sys
import traceback
from dataclasses import dataclass, field

from nanlint.trace.locate import NANLINT_DIR
from nanlint.trace.patches import Patcher
from nanlint.trace.stopping import StopTrace


# frames that exist only because the monitor's modes are active: a normal run would not show them
MODE_FRAMES = ("torch/_ops.py", "torch/_compile.py", "torch/_dynamo/eval_frame.py", "torch/utils/_python_dispatch.py",
               "torch/overrides.py")


@dataclass
class Outcome:
    status: str  # "stopped", "finished", "exited", "crashed", "interrupted" (SIGINT/SIGTERM)
    reason: str | None = None  # why it stopped
    exit_code: int | None = None  # the script's sys.exit code
    error: str | None = None  # "ValueError: ..." when it crashed
    traceback: str | None = None  # the script's own traceback (nanlint's frames removed)
    notes: list[str] = field(default_factory=list)


def script_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` with runpy's and nanlint's frames removed: what ``python script.py`` shows."""
    tb = traceback.TracebackException.from_exception(exc)
    runpy_file = os.path.realpath(runpy.__file__)

    def keep(frame) -> bool:
        path = os.path.realpath(frame.filename).replace(os.sep, "/")
        if path.startswith(NANLINT_DIR.replace(os.sep, "/")) or path == runpy_file or frame.filename.startswith("<frozen runpy"):
            return False
        if frame.name == "inner" and path.endswith("torch/nn/modules/module.py"):
            return False  # exists only because the health watch installs global module hooks
        return not any(path.endswith(tail) for tail in MODE_FRAMES)

    def prune(t):
        t.stack = traceback.StackSummary.from_list([f for f in t.stack if keep(f)])
        if t.__cause__:
            prune(t.__cause__)
        if t.__context__:
            prune(t.__context__)

    prune(tb)
    return "".join(tb.format())


def patch_compile(patcher: Patcher, notes: set[str]) -> None:
    """``torch.compile`` becomes the identity while tracing: compiled graphs run outside the modes."""
    import torch

    def compile(model=None, *args, **kwargs):
        notes.add("torch.compile was replaced by the identity while tracing: the eager numerics shown may differ "
                  "slightly from the compiled ones")
        if model is None:
            return lambda m: m
        return model

    patcher.set(torch, "compile", compile)


def patch_distributed(patcher: Patcher, notes: set[str]) -> None:
    """Distributed scripts run as one rank in this process: ``torch.multiprocessing.spawn`` calls the worker
    with rank 0 here (its children would run unwatched, writing files unprotected), and
    ``init_process_group`` makes a group of one over an in-memory store."""
    import torch
    import torch.multiprocessing as tmp

    def spawn(fn, args=(), nprocs=1, join=True, daemon=False, start_method="spawn", **kwargs):
        notes.add(f"torch.multiprocessing.spawn(nprocs={nprocs}): the tracer ran rank 0 only, in its own process")
        fn(0, *args)

    patcher.set(tmp, "spawn", spawn)
    patcher.set(tmp, "start_processes", spawn)
    import torch.distributed as dist

    if not dist.is_available():
        return
    original = dist.init_process_group

    def init_process_group(backend=None, init_method=None, timeout=None, world_size=-1, rank=-1, store=None,
                           *args, **kwargs):
        notes.add(f"torch.distributed.init_process_group(world_size={world_size}): the tracer made a group of "
                  "one rank (rank 0)")
        if backend is None or "nccl" not in str(backend).lower() or not torch.cuda.is_available():
            backend = "gloo"
        extra = {"timeout": timeout} if timeout is not None else {}
        return original(backend=backend, store=dist.HashStore(), world_size=1, rank=0, **extra)

    patcher.set(dist, "init_process_group", init_process_group)


def patch_processes(patcher: Patcher, notes: set[str], user_file) -> None:
    """``multiprocessing.Process`` children that run the user's code (Hogwild training) would train unwatched:
    the first one's target runs here, in the watched process, when the script starts it; the others are not
    started (the report says so). Processes whose target is library code start as usual, and are named."""
    import multiprocessing.process as mp_process

    cls = mp_process.BaseProcess
    inline: list = []
    skipped = [0]

    def start_wrapper(original):
        def start(self):
            target = getattr(self, "_target", None)
            code = getattr(target, "__code__", None)
            if code is None or user_file(code.co_filename) is None:
                notes.add("a library started a child process: what runs there is not watched")
                return original(self)
            self._nanlint_inline = True
            if inline:
                skipped[0] += 1
                notes.add(f"multiprocessing: the first child ({target.__name__}) ran in the traced process; "
                          f"{skipped[0]} other child process{'es were' if skipped[0] > 1 else ' was'} not started")
                return None
            inline.append(self)
            notes.add(f"multiprocessing: the first child ({target.__name__}) ran in the traced process, where it "
                      "is watched")
            return self.run()
        return start

    def join_wrapper(original):
        def join(self, timeout=None):
            if getattr(self, "_nanlint_inline", False):
                return None
            return original(self, timeout)
        return join

    patcher.wrap(cls, "start", start_wrapper)
    patcher.wrap(cls, "join", join_wrapper)


def end_distributed() -> None:
    """The script was stopped before ``destroy_process_group``: leave no process group behind."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # a half-built group: nothing more to undo
            pass


def hide_accelerators(patcher: Patcher, device: str | None) -> None:
    """``--device cpu`` hides CUDA and MPS from the script, also when torch was imported already."""
    import torch

    if device == "cpu":
        patcher.set(torch.cuda, "is_available", lambda: False)
        patcher.set(torch.cuda, "device_count", lambda: 0)
        if hasattr(torch.backends, "mps"):
            patcher.set(torch.backends.mps, "is_available", lambda: False)
    elif device and device.startswith("cuda:") and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.set_device(int(device.split(":", 1)[1]))


def _strip_our_frames(text: str) -> str:
    """Remove nanlint's, click's, runpy's and the modes' frames from a stack printed inside a warning
    (``detect_anomaly`` prints the forward call's traceback): the user sees the stack of a plain run."""
    if '  File "' not in text:
        return text
    lines, out, skip = text.split("\n"), [], False
    for line in lines:
        if line.startswith('  File "'):
            path = line[len('  File "'):].split('"', 1)[0]
            real = os.path.realpath(path).replace(os.sep, "/") if not path.startswith("<") else path
            skip = (real.startswith(NANLINT_DIR.replace(os.sep, "/")) or "runpy" in path or "/click/" in real
                    or any(real.endswith(tail) for tail in MODE_FRAMES))
            if skip:
                continue
        elif skip and line.startswith("    "):
            continue
        else:
            skip = False
        out.append(line)
    return "\n".join(out)


def patch_warnings(patcher: Patcher) -> None:
    import warnings

    original = warnings.showwarning

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if isinstance(message, Warning) and message.args and isinstance(message.args[0], str):
            message = category(_strip_our_frames(message.args[0]))
        elif isinstance(message, str):
            message = _strip_our_frames(message)
        return original(message, category, filename, lineno, file, line)

    patcher.set(warnings, "showwarning", showwarning)


def _restore_root_logger(handlers: list, level: int) -> None:
    """``logging.basicConfig`` in the script configured the root logger: close what it added, put ours back."""
    for handler in logging.root.handlers[:]:
        if handler not in handlers:
            logging.root.removeHandler(handler)
            try:
                handler.close()
            except Exception:  # a handler that fails to close must not hide the report
                pass
    for handler in handlers:
        if handler not in logging.root.handlers:
            logging.root.addHandler(handler)
    logging.root.setLevel(level)


def run_script(script: str | None, module: str | None, args: list[str], root: str, loaded: list[str],
               disarm=lambda: None) -> Outcome:
    """Run the script once; the monitor, hooks and patches are already in place. ``loaded`` receives the
    project files the run imported; ``disarm`` is called as soon as the script is left (no stop may be raised
    into nanlint's own code after that)."""
    saved_argv, saved_path, saved_cwd = sys.argv[:], sys.path[:], os.getcwd()
    saved_env = dict(os.environ)
    saved_logging = (logging.root.handlers[:], logging.root.level)
    saved_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True  # no __pycache__ in the project
    before = set(sys.modules)
    try:
        if module is not None:
            sys.argv = [module, *args]
            sys.path.insert(0, os.getcwd())
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        else:
            sys.argv = [script, *args]
            sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
            runpy.run_path(script, run_name="__main__")
        return Outcome("finished")
    except StopTrace as stop:
        disarm()
        return Outcome("stopped", reason=stop.reason)
    except KeyboardInterrupt:  # SIGINT (Ctrl-C) while the script ran: the report of what ran is still written
        disarm()
        return Outcome("interrupted", reason="SIGINT")
    except SystemExit as exc:
        code = exc.code
        if code is None or code == 0:
            return Outcome("exited", exit_code=0)
        if isinstance(code, int):
            return Outcome("exited", exit_code=code)
        return Outcome("exited", exit_code=1, error=str(code))
    except BaseException as exc:  # the script's own error: reported, never re-raised
        first = str(exc).splitlines()[0] if str(exc) else ""
        return Outcome("crashed", error=f"{type(exc).__name__}: {first}".rstrip(": "), traceback=script_traceback(exc))
    finally:
        disarm()
        sys.dont_write_bytecode = saved_bytecode
        sys.argv[:] = saved_argv
        sys.argv = saved_argv
        sys.path[:] = saved_path
        try:
            os.chdir(saved_cwd)
        except OSError:
            pass
        os.environ.clear()
        os.environ.update(saved_env)
        _restore_root_logger(*saved_logging)
        real_root = os.path.realpath(root) + os.sep
        for name in set(sys.modules) - before:
            path = getattr(sys.modules.get(name), "__file__", None) or ""
            real = os.path.realpath(path) if path else ""
            if (real.startswith(real_root) and not real.startswith(NANLINT_DIR)  # a venv inside the project
                    and "site-packages" not in real and "dist-packages" not in real):  # holds libraries, not user code
                loaded.append(real)
                del sys.modules[name]


def patch_environment(patcher: Patcher, notes: set[str], device: str | None, user_file) -> None:
    """What every traced run patches around the script: the devices it may see, ``torch.compile``, repeated
    warnings, ``torch.distributed`` and child processes."""
    hide_accelerators(patcher, device)
    patch_compile(patcher, notes)
    patch_warnings(patcher)
    patch_distributed(patcher, notes)
    patch_processes(patcher, notes, user_file)
