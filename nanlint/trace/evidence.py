"""Training-health evidence that matters even when the batch stays finite: the range of the first batch fed
to the model (normalization, outliers, NaN in data), the range of each module's output, the gradient norm per
module (exploding / vanishing) and the update-to-weight ratio ||dW||/||W|| per parameter group after each
optimizer step (a learning rate that rewrites the weights in one step diverges).

Also the thresholds that turn per-site figures into NEAR-MISS / AT-RISK (used by ``join``)."""
from __future__ import annotations

import inspect
import math
import sys
import weakref
from contextlib import contextmanager, nullcontext

import torch

from nanlint.trace import tensors
from nanlint.trace.monitor import Monitor
from nanlint.trace.records import Health

# Near-miss margins (fp32 unless the op ran in another dtype): how close a value came to a non-finite one.
LOG_INPUT_NEAR = 1e-20  # smallest value fed to log (0 gives -inf)
ROOT_INPUT_NEAR = 1e-10  # smallest value fed to sqrt: d sqrt(x)/dx = 1/(2 sqrt(x)) > 5e4 below it
DENOMINATOR_NEAR = 1e-6  # smallest |denominator|
EXP_HEADROOM_NEAR = 20.0  # log(max of the dtype) - largest exponent
SATURATED_NEAR = 0.0  # any sigmoid output exactly 0 or 1 (gradient 0; log of it is -inf)
UPDATE_RATIO_HIGH = 0.1  # ||dW||/||W||: healthy training is around 1e-3
GRAD_NORM_HIGH = 1e3
GRAD_NORM_LOW = 1e-8
# Adaptive optimizers move every weight by about lr on their first step, whatever the gradient: a high
# update-to-weight ratio there is the recipe (Adam at 1e-3 on a small layer), not evidence of divergence
ADAPTIVE = tuple(getattr(torch.optim, name) for name in ("Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adadelta",
                                                         "Adagrad", "RMSprop", "SparseAdam", "Adafactor")
                 if hasattr(torch.optim, name))
INPUT_ABSMAX_HIGH = 1e3  # a first batch with values this large is probably not normalized

DTYPE_MAX = {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38,
             "float64": 1.7976931348623157e308}
DTYPE_TINY = {"float16": 5.960464477539063e-08, "bfloat16": 9.183549615799121e-41, "float32": 1.401298464324817e-45,
              "float64": 4.9406564584124654e-324}  # smallest positive subnormal: anything below becomes 0


def exp_limit(dtype: str | None) -> float:
    """The largest x with exp(x) finite: 88.72 in fp32/bf16, 11.09 in fp16."""
    return math.log(DTYPE_MAX.get(dtype or "float32", DTYPE_MAX["float32"]))


def _range(tensors, known=lambda t: None) -> dict | None:
    mins, maxs, shapes = [], [], []
    nonfinite = False
    for t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 0 and t.layout == torch.strided:
            seen = known(t)
            if seen is None:
                mn, mx = tensors.minmax(t)  # under no_grad (_quiet)
                mn, mx = float(mn), float(mx)
            else:
                mn, mx = seen
            nonfinite = nonfinite or not (math.isfinite(mn) and math.isfinite(mx))
            mins.append(mn)
            maxs.append(mx)
            shapes.append(list(t.shape))
    if not mins:
        return None
    mn = float("nan") if any(m != m for m in mins) else min(mins)
    mx = float("nan") if any(m != m for m in maxs) else max(maxs)
    return {"min": mn, "max": mx, "absmax": max(abs(mn), abs(mx)) if mn == mn and mx == mx else float("nan"),
            "shapes": shapes, "nonfinite": nonfinite}


def _named(value, name: str, depth: int = 0):
    """(name, tensor) for each tensor in a call argument: ``input_ids``, ``batch.pixel_values``, ``args[0][1]``."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _named(v, f"{name}[{i}]", depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for k, v in value.items():
            yield from _named(v, f"{name}.{k}" if name else str(k), depth + 1)


def _batch(module, args, kwargs) -> list[tuple[str, torch.Tensor]]:
    """The tensors a model call was fed, by the name of the ``forward`` parameter they were passed as: keyword
    ones by keyword (the Hugging Face style ``model(input_ids=..., attention_mask=..., labels=...)``,
    ``model(**batch)``), positional ones by their parameter's name (``args[i]`` when it has none)."""
    names = [f"args[{i}]" for i in range(len(args))]
    try:
        params = [p for p in inspect.signature(module.forward).parameters.values()]
        for i, p in enumerate(params[:len(args)]):
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                names[i] = p.name
            else:
                break
    except (TypeError, ValueError):
        pass
    named = []
    for name, a in zip(names, args):
        named.extend(_named(a, name))
    for k, v in (kwargs or {}).items():
        named.extend(_named(v, str(k)))
    return named


_MODULE_FILE = torch.nn.modules.module.__file__


def _call_kwargs(module) -> dict:
    """The keyword arguments of the call of ``module`` whose forward pre-hook runs (a global pre-hook is given the
    positional ones only): read from the frame of ``Module._call_impl`` that calls the hook."""
    frame = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            break
        if frame.f_code.co_filename == _MODULE_FILE:
            names = frame.f_locals
            if names.get("self") is module:
                kwargs = names.get("kwargs")
                return kwargs if isinstance(kwargs, dict) else {}
        frame = frame.f_back
    return {}


def _tensors(value, depth=0):
    if isinstance(value, torch.Tensor):
        yield value
    elif depth < 3 and isinstance(value, (list, tuple)):
        for v in value:
            yield from _tensors(v, depth + 1)
    elif depth < 3 and isinstance(value, dict):
        for v in value.values():
            yield from _tensors(v, depth + 1)


_norms = tensors.norms
_PLAIN = (torch.Tensor, torch.nn.Parameter)
_no_function_modes = getattr(torch._C, "DisableTorchFunction", nullcontext)
_no_dispatch_modes = getattr(torch._C, "_DisableTorchDispatch", nullcontext)


def _dense(ts) -> bool:
    return all(t.layout == torch.strided and not t.is_quantized for t in ts)


SNAPSHOT_ENTRIES = 1 << 16  # entries of a parameter kept to measure its update; larger ones are sampled


def _sample(p: torch.Tensor) -> tuple[torch.Tensor, float]:
    """A strided sample of a dense parameter's entries (the same entries every call) and the factor that turns
    the sample's squared norm into an estimate of the whole tensor's: the update ratio needs the old weights,
    and copying every weight before each step cost more than the rest of the monitor (4.6 ms of a 20 ms MLP
    step). Other layouts are kept whole."""
    n = p.numel()
    if n <= SNAPSHOT_ENTRIES or p.layout != torch.strided or p.is_quantized:
        return p, 1.0
    stride = n // SNAPSHOT_ENTRIES
    sample = p.reshape(-1)[::stride][:SNAPSHOT_ENTRIES]
    return sample, n / sample.numel()


def _differences(olds: list, news: list) -> list:
    """``old - new`` per pair, written into the snapshot ``olds`` where it can be (no new tensors)."""
    if olds and _dense(olds) and _dense(news) and all(o.dtype == n.dtype and o.shape == n.shape for o, n in zip(olds, news)):
        try:
            torch._foreach_sub_(olds, news)
            return olds
        except (RuntimeError, TypeError):
            pass
    return [n - o for o, n in zip(olds, news)]


class HealthWatch:
    """Global module hooks and optimizer hooks that fill a ``Health`` record.

    The root module (one called while no other module runs) is the model: its first input is the batch, its
    named modules give names to modules and parameters. With ``autocast_dtype`` the root's forward runs under
    ``torch.autocast`` in that dtype."""

    def __init__(self, monitor: Monitor, autocast_dtype: str | None = None, device_type: str = "cpu") -> None:
        self.monitor = monitor
        self.health = Health()
        self.depth = 0
        self.names: dict[int, str] = {}  # id(module) -> qualified name
        self.roots: list[torch.nn.Module] = []
        self.autocast_dtype = autocast_dtype
        self.device_type = device_type
        self._autocast = None
        self._snapshots: dict[int, list] = {}
        self._ranges: dict[int, tuple] = {}  # id(module output) -> (ref, version, (min, max))
        self._weight_norms: dict[int, list] = {}
        self.steps = 0
        self._own_steps: dict[int, int] = {}  # id(optimizer) -> its steps
        self.notes: set[str] = set()
        self.handles = []

    @contextmanager
    def _quiet(self, plain=()):
        """The hooks' own ops: not watched, no autograd. When every tensor they touch (``plain``) is a plain
        tensor or parameter, they also bypass the modes (a paused mode still costs each op a Python call through
        it: a third of the optimizer hooks' time); a tensor subclass keeps its own dispatch."""
        self.monitor.paused += 1
        try:
            with torch.no_grad():
                if plain and all(type(t) in _PLAIN for t in plain):
                    with _no_function_modes(), _no_dispatch_modes():
                        yield
                else:
                    yield
        finally:
            self.monitor.paused -= 1

    def install(self) -> None:
        from torch.nn.modules import module as module_mod
        from torch.optim import optimizer as optimizer_mod

        self.handles.append(module_mod.register_module_forward_pre_hook(self._pre))
        self.handles.append(module_mod.register_module_forward_hook(self._post, always_call=True))
        self.handles.append(optimizer_mod.register_optimizer_step_pre_hook(self._guarded(self._step_pre)))
        self.handles.append(optimizer_mod.register_optimizer_step_post_hook(self._guarded(self._step_post)))

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()
        if self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self.monitor.autocast = False
            self._autocast = None

    # ---- modules ---------------------------------------------------------------------------------
    def _user_frames(self, depth: int):
        """The frames of the user's code calling into the hook, innermost first."""
        locator = self.monitor.locator
        frame = sys._getframe(depth + 1)
        while frame is not None:
            if locator.user_file(frame.f_code.co_filename) is not None:
                yield frame
            frame = frame.f_back

    def _owner(self, module: torch.nn.Module) -> torch.nn.Module | None:
        """The user's module whose method (Lightning's ``training_step``) calls ``module`` outside any forward:
        adopting it keeps the user's names (``encoder.0``, not ``0``)."""
        for frame in self._user_frames(3):
            owner = frame.f_locals.get("self")
            if isinstance(owner, torch.nn.Module) and owner is not module and id(owner) not in self.names:
                if any(m is module for m in owner.modules()):
                    return owner
        return None

    def _user_name(self, root: torch.nn.Module) -> str | None:
        """The name the user's code gives ``root`` (``netD``, ``self.generator``), from the calling frames."""
        for frame in self._user_frames(3):
            for name, value in list(frame.f_locals.items()):
                if value is root and not name.startswith("_"):
                    return name
                if name == "self":  # an attribute of the object whose method calls the model
                    held = {**getattr(value, "__dict__", {}), **getattr(value, "_modules", {})}
                    found = next((attr for attr, v in held.items() if v is root), None)
                    if found is not None:
                        return found
            for name, value in list(frame.f_globals.items()):
                if value is root and not name.startswith("_"):
                    return name
        return None

    def _adopt(self, root: torch.nn.Module) -> None:
        self.roots.append(root)
        try:
            named = self._user_name(root)
        except Exception:  # a frame whose locals cannot be read: fall back to the class name
            named = None
        # the first model's parameters keep their plain names (fc1.weight); later models get the user's name
        prefix = f"{named or type(root).__name__ + str(len(self.roots))}." if len(self.roots) > 1 else ""
        for name, module in root.named_modules():
            if name:
                label = f"{prefix}{name} ({type(module).__name__})"
            else:
                label = f"{prefix[:-1] if prefix else named} ({type(root).__name__})" if prefix or named else type(root).__name__
            self.names.setdefault(id(module), label)
        for name, p in root.named_parameters():
            self.monitor.param_names.setdefault(id(p), prefix + name)
        if isinstance(root, torch.nn.DataParallel):
            self.notes.add("DataParallel: replicas run in other threads, which the monitor does not see; with "
                           "one or no GPU it calls the module directly and is watched.")
        if type(root).__name__ == "DistributedDataParallel":
            self.notes.add("DistributedDataParallel: traced as a single process; collective ops are not watched.")

    def _guarded(self, hook):
        """``hook`` whose own failure is recorded for the report instead of reaching the user's script."""
        def run(*args):
            try:
                return hook(*args)
            except Exception as exc:
                self.monitor.internal_error(exc)
                return None
        return run

    def _pre(self, module, args):
        try:
            return self._enter(module, args)
        except Exception as exc:
            self.monitor.internal_error(exc)
            return None

    def _post(self, module, args, output):
        try:
            return self._leave(module, args, output)
        except Exception as exc:
            self.monitor.internal_error(exc)
            return None

    def _enter(self, module, args):
        self.depth += 1
        if self.depth != 1:
            return None
        if id(module) not in self.names:
            self._adopt(self._owner(module) or module)
        batch = None
        if self.health.first_batch is None:
            batch = _batch(module, args, _call_kwargs(module))
            with self._quiet([t for _, t in batch]):
                r = self._first_batch(batch)
            if r is not None:
                r["source"] = f"input of {type(module).__name__}"
                self.health.first_batch = r
                if r["nonfinite"]:
                    self.health.warnings.append("the first batch fed to the model holds non-finite values")
                elif r["floating"] and r["absmax"] > INPUT_ABSMAX_HIGH:
                    self.health.warnings.append(
                        f"the first batch fed to the model reaches |x| = {r['absmax']:.3g}: is it normalized?")
        if self.autocast_dtype and self._autocast is None:
            tensors_fed = [t for _, t in batch] if batch is not None else list(_tensors(args))
            device = next((t.device.type for t in tensors_fed), None)
            if device is None:
                device = next((p.device.type for p in module.parameters()), self.device_type)
            self._autocast = torch.autocast(device, dtype=getattr(torch, self.autocast_dtype))
            self._autocast.__enter__()
            self.monitor.autocast = True
        return None

    def _leave(self, module, args, output):
        self.depth = max(0, self.depth - 1)
        name = self.names.get(id(module))
        if name is not None:
            outputs = list(_tensors(output))
            with self._quiet(outputs):
                r = _range(outputs, self._known_range)
            if r is not None:
                old = self.health.module_outputs.get(name)
                if old is None:
                    self.health.module_outputs[name] = {"min": r["min"], "max": r["max"], "absmax": r["absmax"], "calls": 1}
                else:
                    old["calls"] += 1
                    old["min"] = min(old["min"], r["min"])
                    old["max"] = max(old["max"], r["max"])
                    old["absmax"] = max(old["absmax"], r["absmax"])
        if self.depth == 0 and self._autocast is not None:
            self._autocast.__exit__(None, None, None)
            self._autocast = None
            self.monitor.autocast = False
        return None

    def _first_batch(self, batch: list) -> dict | None:
        """The health figures of the first batch: the range of its floating-point tensors (of its integer ones,
        token ids and labels, when it has no other), and each tensor by name, dtype, shape and range."""
        # the data, not the counts and flags beside it (the Trainer's 0-dim ``num_items_in_batch``)
        data = [t for _, t in batch if t.dim() > 0] or [t for _, t in batch]
        floats = [t for t in data if t.is_floating_point()]
        r = _range(floats, self._batch_range)
        fed = []
        for name, t in batch:
            entry = {"name": name, "dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                     "min": None, "max": None}
            if t.layout == torch.strided and t.numel() > 0 and not t.is_complex() and t.dtype != torch.bool:
                if t.is_floating_point():
                    entry["min"], entry["max"] = self._batch_range(t)
                else:
                    mn, mx = tensors.minmax(t)
                    entry["min"], entry["max"] = int(mn), int(mx)
            fed.append(entry)
        if r is None:
            chosen = {id(t) for t in data}
            ints = [e for e, (_, t) in zip(fed, batch) if e["min"] is not None and id(t) in chosen]
            if not ints:
                return None
            mn, mx = min(e["min"] for e in ints), max(e["max"] for e in ints)
            r = {"min": mn, "max": mx, "absmax": max(abs(mn), abs(mx)), "shapes": [e["shape"] for e in ints],
                 "nonfinite": False}
        r["floating"] = bool(floats)
        r["tensors"] = fed
        return r

    def _batch_range(self, t: torch.Tensor):
        """(min, max) of a tensor of the first batch, which the monitor then need not scan again."""
        entry = self._ranges.get(id(t))
        if entry is not None and entry[0]() is t and entry[1] == t._version:
            return entry[2]
        mn, mx = tensors.minmax(t)
        seen = (float(mn), float(mx))
        self.monitor.known_leaf(t, seen)
        if not t.is_inference():
            self._ranges[id(t)] = (weakref.ref(t), t._version, seen)
        return seen

    def _known_range(self, t: torch.Tensor):
        """(min, max) of ``t`` when the monitor scanned it or an enclosing module's output was this same tensor
        (``Sequential``'s output is its last layer's): each output is scanned once; else None."""
        seen = self.monitor.known_range(t)
        if seen is not None:
            return seen
        entry = self._ranges.get(id(t))
        if entry is not None and entry[0]() is t and entry[1] == t._version:
            return entry[2]
        if t.is_inference():
            return None
        mn, mx = tensors.minmax(t)  # under no_grad (_quiet)
        seen = (float(mn), float(mx))
        if len(self._ranges) > 10_000:
            self._ranges = {k: v for k, v in self._ranges.items() if v[0]() is not None}
        self._ranges[id(t)] = (weakref.ref(t), t._version, seen)
        return seen

    # ---- gradients and steps ---------------------------------------------------------------------
    def record_grad_norms(self, known: dict | None = None) -> None:
        """||grad|| of each module's own parameters (latest backward wins); ``known``: id(param) -> ||grad||
        already taken (the step's check that every gradient is finite), the others in one call."""
        known = known or {}
        norms = {}
        owned = [(module, [p for p in module.parameters(recurse=False) if p.grad is not None])
                 for root in self.roots for module in root.modules()]
        missing = [p for _, ps in owned for p in ps if id(p) not in known]
        with self._quiet([p.grad for p in missing]):
            if missing:
                known = {**known, **dict(zip(map(id, missing), _norms([p.grad for p in missing])))}
            for module, ps in owned:
                if ps:
                    norms[self.names.get(id(module), type(module).__name__)] = math.sqrt(sum(known[id(p)] ** 2 for p in ps))
        if norms:
            self.health.grad_norms = norms

    def _step_pre(self, optimizer, args, kwargs):
        self.monitor.flush()
        params = [p for g in optimizer.param_groups for p in g["params"]]
        with self._quiet([*params, *(p.grad for p in params if p.grad is not None)]):
            for p in params:
                if id(p) not in self.monitor.param_names:
                    self.monitor.param_names[id(p)] = f"param{len(self.monitor.param_names)}"
            groups = [list(g["params"]) for g in optimizer.param_groups]  # under no_grad: nothing to detach
            samples = [[_sample(p) for p in ps] for ps in groups]
            self._snapshots[id(optimizer)] = [[sample.clone() for sample, _ in ss] for ss in samples]
            flat = [sample for ss in self._snapshots[id(optimizer)] for sample in ss]
            scales = [scale for ss in samples for _, scale in ss]
            with_grad = [p for p in params if p.grad is not None]
            values = _norms(flat + [p.grad for p in with_grad])  # weights (their samples) and gradients in one call
            weights = [math.sqrt(n * n * scale) for n, scale in zip(values[:len(flat)], scales)]
            grads = values[len(flat):]
            self._weight_norms[id(optimizer)] = [[weights.pop(0) for _ in ps] for ps in groups]
            # every gradient the optimizer is about to apply is finite: the step's fast path (only updates scanned)
            self.monitor.step_clean = all(math.isfinite(n) for n in grads)
        if not self.health.grad_norms:
            self.record_grad_norms({id(p): n for p, n in zip(with_grad, grads)})
        self.monitor.in_step = True
        self.monitor.step_site = self.monitor.locator.site(sys._getframe(1))
        return self._watch_closure(optimizer, args, kwargs)

    def _watch_closure(self, optimizer, args, kwargs):
        """``step(closure)`` (LBFGS, Lightning's optimizer loop) runs forward and backward inside the step: the
        closure is wrapped so that those ops are watched as forward and backward ops, not as the update."""
        if "closure" in kwargs and callable(kwargs["closure"]):
            return args, {**kwargs, "closure": self._forward_closure(optimizer, kwargs["closure"])}
        first = 1 if args and args[0] is optimizer else 0  # the global hook sees step's `self` in args
        if len(args) > first and callable(args[first]):
            return (*args[:first], self._forward_closure(optimizer, args[first]), *args[first + 1:]), kwargs
        return None

    def _forward_closure(self, optimizer, closure):
        monitor = self.monitor

        def closure_outside_step(*a, **k):
            monitor.flush()
            monitor.in_step = monitor.step_clean = False
            try:
                return closure(*a, **k)
            finally:
                monitor.flush()
                monitor.in_step = True
                try:
                    grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
                    with self._quiet(grads):
                        monitor.step_clean = all(math.isfinite(n) for n in _norms(grads))
                except Exception as exc:
                    monitor.internal_error(exc)
        return closure_outside_step

    def _step_post(self, optimizer, args, kwargs):
        self.monitor.in_step = False
        self.monitor.step_clean = False
        self.monitor.flush()
        self.steps += 1
        self.monitor.steps_done = self.steps
        self._own_steps[id(optimizer)] = self._own_steps.get(id(optimizer), 0) + 1
        before = self._snapshots.pop(id(optimizer), None)
        weight_norms = self._weight_norms.pop(id(optimizer), None)
        if before is None or weight_norms is None:
            return
        with self._quiet([p for g in optimizer.param_groups for p in g["params"]]):
            for gi, (group, olds, norms) in enumerate(zip(optimizer.param_groups, before, weight_norms)):
                w2 = d2 = 0.0
                samples = [_sample(p) for p in group["params"]]
                distances = _norms(_differences(olds, [sample for sample, _ in samples]))
                for p, norm, distance, (_, scale) in zip(group["params"], norms, distances, samples):
                    w2 += norm ** 2
                    d2 += distance ** 2 * scale
                    state = optimizer.state.get(p, {})
                    name = self.monitor.param_names.get(id(p))
                    for key, value in state.items() if isinstance(state, dict) else ():
                        if isinstance(value, torch.Tensor) and name:
                            self.monitor.param_names.setdefault(id(value), f"{name} ({key})")
                ratio = math.sqrt(d2) / math.sqrt(w2) if w2 > 0 else (math.inf if d2 > 0 else 0.0)
                lr = group.get("lr")
                lr = float(lr) if isinstance(lr, (int, float)) or isinstance(lr, torch.Tensor) else None
                self.health.updates.append({"step": self.steps, "optimizer": type(optimizer).__name__, "group": gi,
                                            "lr": lr, "ratio": ratio, "weight_norm": math.sqrt(w2),
                                            "update_norm": math.sqrt(d2)})
                first_adaptive_step = isinstance(optimizer, ADAPTIVE) and self._own_steps.get(id(optimizer), 0) == 1
                if ratio > UPDATE_RATIO_HIGH and math.isfinite(ratio) and not first_adaptive_step:
                    self.health.warnings.append(
                        f"step {self.steps}: update-to-weight ratio {ratio:.3g} in param group {gi} (lr={lr if lr is None else format(lr, 'g')}): one step "
                        f"moves the weights by {ratio:.3g} times their norm (healthy: ~1e-3); lower the learning rate")

    def finish(self) -> None:
        if not self.health.grad_norms:
            self.record_grad_norms()
        for name, norm in self.health.grad_norms.items():
            if not math.isfinite(norm):
                self.health.warnings.append(f"gradient of {name} is non-finite")
            elif norm > GRAD_NORM_HIGH:
                self.health.warnings.append(f"gradient norm of {name} is {norm:.3g}: exploding gradients")
        for name, r in self.health.module_outputs.items():
            if r["absmax"] > 6e4 and math.isfinite(r["absmax"]):
                self.health.warnings.append(f"output of {name} reaches |x| = {r['absmax']:.3g}: beyond float16's 65504")
