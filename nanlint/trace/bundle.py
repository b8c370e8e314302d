"""What re-running one training step needs, in memory (``Capture``, ``Failure``) and on disk (a replay bundle
written by ``--save-failing-step DIR``, read by ``nanlint replay DIR SCRIPT``).

A bundle is a folder with ``step.pt`` (a pickle: replay only bundles you made) and ``step.json`` (what it is,
for people). It is never written over anything: the folder must be missing or empty."""
from __future__ import annotations

import json
import os
import random
from collections import OrderedDict
from dataclasses import dataclass, field

import torch

BUNDLE_FILE, META_FILE = "step.pt", "step.json"
COMPUTED = "<computed by the step>"  # an input the step computes itself (a model's output fed to a loss module)
FORMAT = "nanlint-step/1"


class BundleError(Exception):
    """A bundle folder that cannot be used: one line, exit 2."""


@dataclass
class Capture:
    """What one step was fed: DataLoader items and top-level module calls in order, RNG states at the first
    call (or at ``optimizer.step()`` when the forward runs inside it), the losses backward started from.
    The items and inputs are references, not copies (a step that changes its batch in place saves it changed)."""

    items: list = field(default_factory=list)  # (source, item)
    calls: list = field(default_factory=list)  # (module class name, args, kwargs)
    rng: dict | None = None
    losses: list = field(default_factory=list)
    modules: dict = field(default_factory=dict)  # id -> module (not saved)


@dataclass
class Failure:
    step: int  # 1-based optimizer step that made the first non-finite value (the last of ``captures``)
    start: int  # the step the saved state is from: ``captures`` run from it (one step unless rolled back)
    kind: str  # "loss", "gradients", "parameters", "parameters before the first step"
    captures: list  # [Capture] of the steps start..step
    optimizers: list  # [{"cls", "shapes", "params", "state_dict"}] before step ``start``, in the order they stepped
    modules: list  # [(class name, state_dict)] of the top-level modules the steps called
    rolled_back: bool = False  # an update went non-finite: the state is the last checkpoint's

    @property
    def capture(self) -> Capture:
        return self.captures[-1]

    @property
    def detected(self) -> str:
        return {"loss": "a non-finite loss", "gradients": "non-finite gradients",
                "parameters": "non-finite parameters after an optimizer step",
                "crash": "the script's error"}.get(self.kind, self.kind)

    def payload(self, script: str | None = None, args: list | None = None) -> dict:
        steps = [{"items": c.items, "calls": [(cls, data_only(a), data_only(k)) for cls, a, k in c.calls], "rng": c.rng}
                 for c in self.captures]
        return {"format": FORMAT, "step": self.step, "start": self.start, "kind": self.kind, "script": script,
                "args": list(args or []), "steps": steps, "optimizers": self.optimizers, "modules": self.modules}


def data_only(value):
    """The step's data, not what it computed: tensors that require grad become ``COMPUTED``."""
    if isinstance(value, torch.Tensor):
        return COMPUTED if value.requires_grad else value
    if isinstance(value, dict):
        return {k: data_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(data_only(v) for v in value) if type(value) in (list, tuple) else [data_only(v) for v in value]
    return value


def copy_tree(value):
    """A deep copy of the tensors in a nested structure (dicts, lists, tuples); other values are kept."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        out = type(value)((k, copy_tree(v)) for k, v in value.items()) if type(value) in (dict, OrderedDict) else \
            {k: copy_tree(v) for k, v in value.items()}
        if hasattr(value, "_metadata"):  # a module's state_dict: versions of its submodules
            out._metadata = value._metadata
        return out
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(copy_tree(v) for v in value)
    return value


def rng_states(numpy: bool = True) -> dict:
    """torch (CPU and every initialised CUDA device), Python's ``random`` and NumPy's global states (NumPy's
    costs 35 us: the watch takes it at checkpoints and failures only, not at every step)."""
    states = {"torch": torch.get_rng_state(), "python": random.getstate()}
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states["cuda"] = torch.cuda.get_rng_state_all()
    except Exception:  # a broken CUDA setup: CPU states only
        pass
    try:
        import sys

        if numpy and "numpy" in sys.modules:
            states["numpy"] = sys.modules["numpy"].random.get_state()
    except Exception:
        pass
    return states


def numpy_state() -> dict:
    """``{"numpy": state}``, or nothing when NumPy is not loaded."""
    import sys

    try:
        return {"numpy": sys.modules["numpy"].random.get_state()} if "numpy" in sys.modules else {}
    except Exception:
        return {}


def set_rng_states(states: dict | None) -> None:
    if not states:
        return
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(states["cuda"])
        except Exception:
            pass
    if "numpy" in states:
        try:
            import numpy

            numpy.random.set_state(states["numpy"])
        except Exception:
            pass


def check_folder(path: str) -> None:
    """Before the run: the folder must be missing or empty (a user file is never written over)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise BundleError(f"--save-failing-step {path}: is a file, not a folder")
    if os.path.isdir(path) and os.listdir(path):
        raise BundleError(f"--save-failing-step {path}: the folder is not empty (give a new or empty folder)")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise BundleError(f"--save-failing-step {path}: its parent folder does not exist")


def save(path: str, payload: dict) -> None:
    check_folder(path)
    os.makedirs(path, exist_ok=True)
    torch.save(payload, os.path.join(path, BUNDLE_FILE))
    meta = {k: payload[k] for k in ("format", "step", "start", "kind", "script", "args")}
    meta.update(steps=len(payload["steps"]), items=[len(s["items"]) for s in payload["steps"]],
                calls=[[c[0] for c in s["calls"]] for s in payload["steps"]],
                optimizers=[o["cls"] for o in payload["optimizers"]], modules=[m[0] for m in payload["modules"]],
                torch=torch.__version__)
    with open(os.path.join(path, META_FILE), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")


def load(path: str) -> dict:
    target = os.path.join(path, BUNDLE_FILE)
    if not os.path.isdir(path):
        raise BundleError(f"{path}: no such folder")
    if not os.path.isfile(target):
        raise BundleError(f"{path}: not a replay bundle (no {BUNDLE_FILE}; make one with --save-failing-step)")
    location = None if torch.cuda.is_available() else "cpu"
    try:
        payload = torch.load(target, map_location=location, weights_only=False)
    except Exception as exc:
        raise BundleError(f"{target}: cannot be read: {type(exc).__name__}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise BundleError(f"{target}: not a {FORMAT} bundle")
    return payload
