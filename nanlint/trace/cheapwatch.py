"""The cheap per-step watch behind ``--until-nan`` and ``nanlint.watch``: is the loss finite, are the gradients
finite, with one fused reduction and one host sync per step; the parameters are checked exactly only when
something went non-finite, and by norm at each checkpoint.

What re-running the failing step needs is kept cheaply: each step's batch (references), its RNG states, and
every ``checkpoint_every`` steps a checkpoint of the parameters and optimizer state (copied into reused
buffers).
A non-finite loss or gradient with finite parameters is replayed from the live state (nothing was updated
yet); parameters made non-finite by an update are replayed from the last checkpoint, re-running the steps
since then (the replay's full monitor names the step). Every ``sample_every`` steps a copy of the
parameters gives the update-to-weight ratio of that step, and the activations are sampled.

Hooks are the caller's job: it calls ``on_item`` / ``on_call`` / ``on_loss`` / ``before_step`` /
``after_step`` / ``finish``."""
from __future__ import annotations

import math

import torch

from nanlint.trace.bundle import Capture, Failure, copy_tree, numpy_state, rng_states

SAMPLE_EVERY = 10  # update-to-weight ratio and activation maxima: the first step and every 10th
CHECKPOINT_EVERY = 50  # parameters and optimizer state: the first step and every 50th (a copy of both costs a
# step's optimizer update; at most 50 steps are re-run when an update went non-finite)


class StepWatch:
    def __init__(self, sample_every: int = SAMPLE_EVERY, checkpoint_every: int = CHECKPOINT_EVERY) -> None:
        self.sample_every = max(1, sample_every)
        self.checkpoint_every = max(1, checkpoint_every)
        self._ratio: dict[int, dict] = {}  # id(optimizer) -> {"step", "params"}: weights before a sampled step
        self.steps = 0  # steps of the first optimizer that stepped (the run's step count)
        self.failure: Failure | None = None
        self.current = Capture()  # what the step in progress was fed
        self.since: list[Capture] = []  # the steps since the checkpoint, the checkpoint's own first
        self.optimizers: list = []  # in the order they first stepped
        self.checkpoint: dict | None = None  # {"step", "optimizers": {id: {...}}, "modules": {id: buffers}}
        self._ratio_due: set[int] = set()  # optimizers whose last step was sampled
        self._act: dict[str, torch.Tensor] = {}  # module -> largest |activation| of this step (device scalars)
        self.health = {"steps": [], "loss": [], "grad_norm": [], "ratio_steps": [], "update_ratio": [],
                       "act_steps": [], "activations": {}}
        self.errors: list[str] = []  # nanlint's own failures (the script goes on)

    # ---- what the step was fed ---------------------------------------------------------------
    def on_item(self, item, source: str | None = None) -> None:
        if self.failure is None:
            self.current.items.append((source, item))

    def on_call(self, module, args, kwargs) -> None:
        """A top-level module call of a training step: its inputs, and the RNG states at the first one."""
        if self.failure is not None:
            return
        if not self.current.calls:
            self.current.rng = rng_states(numpy=False)
        self.current.calls.append((type(module).__name__, args, dict(kwargs or {})))
        self.current.modules.setdefault(id(module), module)

    def on_loss(self, loss) -> None:
        if self.failure is None and isinstance(loss, torch.Tensor) and (loss.is_floating_point() or loss.is_complex()):
            self.current.losses.append(loss.detach())

    def sampling(self, n: int | None = None) -> bool:
        """Whether step ``n`` (default: the one in progress) samples the ratio and the activations."""
        n = self.steps + 1 if n is None else n
        return n == 1 or n % self.sample_every == 0

    def checkpointing(self, n: int) -> bool:
        return n == 1 or n % self.checkpoint_every == 0

    def on_activation(self, name: str, output) -> None:
        t = output if isinstance(output, torch.Tensor) else next(
            (o for o in (output if isinstance(output, (tuple, list)) else ()) if isinstance(o, torch.Tensor)), None)
        if t is None or not t.is_floating_point() or t.numel() == 0:
            return
        value = t.detach().abs().amax().float()
        old = self._act.get(name)
        self._act[name] = value if old is None else torch.maximum(old, value)

    # ---- the check ---------------------------------------------------------------------------
    def before_step(self, optimizer) -> Failure | None:
        """After backward, before ``optimizer.step()``: one sync checks this step's losses and gradients.
        Returns the failure (the step should not be taken) or None."""
        if self.failure is not None:
            return self.failure
        try:
            return self._before_step(optimizer)
        except Exception as exc:  # nanlint's own failure must not break the script
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return None

    def _before_step(self, optimizer) -> Failure | None:
        if self.current.rng is None:  # no module call seen (a closure step runs the forward later)
            self.current.rng = rng_states(numpy=False)
        params = _params(optimizer)
        if not params:
            return None
        primary = not self.optimizers or optimizer is self.optimizers[0]
        n = self.steps + 1
        device = params[0].device
        grads = [p.grad for p in params if p.grad is not None]
        parts, at = [], {}

        def add(key, value):
            at[key] = len(parts)
            parts.append(value)

        losses = self.current.losses
        if losses:
            total = [l.float().sum() for l in losses]
            total = total[0] if len(total) == 1 else torch.stack([t.to(device) for t in total]).mean()
            add("loss", total.to(device))
        if grads:
            add("grad", _total_norm(grads, device))
        sampled = self._ratio.get(id(optimizer))
        ratio = id(optimizer) in self._ratio_due and sampled is not None
        if ratio:
            add("update", _total_norm(torch._foreach_sub(params, sampled["params"]), device))
            add("before", _total_norm(sampled["params"], device))
        checkpoint = self.checkpointing(n) and (self.checkpoint is None or self.checkpoint["step"] != n
                                                or id(optimizer) not in self.checkpoint["optimizers"])
        if checkpoint:
            add("param", _total_norm(params, device))
        names = list(self._act) if primary else []
        for i, name in enumerate(names):
            add(("act", i), self._act[name].to(device))
        values = torch.stack(parts).tolist()  # the one host sync of the step
        if primary:
            self._act = {}
        get = lambda key: values[at[key]] if key in at else None  # noqa: E731
        self._ratio_due.discard(id(optimizer))
        weights = get("param")
        if weights is not None and not math.isfinite(weights) and not _all_finite(params):
            return self._fail_from_checkpoint(optimizer)
        loss, gnorm = get("loss"), get("grad")
        bad_loss = loss is not None and not math.isfinite(loss) and not _all_finite(losses)
        bad_grads = gnorm is not None and not math.isfinite(gnorm) and not _all_finite(grads)
        if bad_loss or bad_grads:
            if not all(_all_finite(_params(o)) for o in {id(o): o for o in [*self.optimizers, optimizer]}.values()):
                return self._fail_from_checkpoint(optimizer)  # an earlier update did it
            return self._fail_live("loss" if bad_loss else "gradients", optimizer)
        if primary:
            h = self.health
            h["steps"].append(n)
            h["loss"].append(loss)
            h["grad_norm"].append(gnorm)
            if ratio:
                before = get("before")
                h["ratio_steps"].append(sampled["step"])
                h["update_ratio"].append(get("update") / before if before else None)
            if names:
                h["act_steps"].append(n)
                for i, name in enumerate(names):
                    h["activations"].setdefault(name, []).append((n, values[at[("act", i)]]))
        if checkpoint:
            self._checkpoint(optimizer, params, n)
        if self.sampling(n):
            self._sample(optimizer, params, n)
        return None

    def _sample(self, optimizer, params, n: int) -> None:
        kept = self._ratio.get(id(optimizer))
        if kept is None or len(kept["params"]) != len(params):
            kept = self._ratio[id(optimizer)] = {"params": [p.detach().clone() for p in params]}
        else:
            with torch.no_grad():
                torch._foreach_copy_(kept["params"], [p.detach() for p in params])
        kept["step"] = n

    def after_step(self, optimizer) -> None:
        """After ``optimizer.step()``: the step is done (the first optimizer's steps are the run's)."""
        if self.failure is not None or optimizer is None:
            return
        if optimizer not in self.optimizers:
            self.optimizers.append(optimizer)
        kept = self._ratio.get(id(optimizer))
        if kept is not None and kept["step"] == self.steps + 1:
            self._ratio_due.add(id(optimizer))
        if optimizer is not self.optimizers[0]:
            return
        self.steps += 1
        self.since.append(self.current)
        self.current = Capture()

    def finish(self) -> Failure | None:
        """The run ended (or was stopped): a step that never reached ``optimizer.step()`` (the script's own
        NaN guard raised) and what the last updates left."""
        if self.failure is not None:
            return self.failure
        try:
            params_ok = all(_all_finite(_params(o)) for o in self.optimizers)
            if not params_ok:
                return self._fail_from_checkpoint(self.optimizers[0])
            losses = self.current.losses
            if losses and not _all_finite(losses):
                return self._fail_live("loss", self.optimizers[-1] if self.optimizers else None)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        return None

    def crashed(self) -> Failure | None:
        """The script raised inside a step that the checks passed (a NaN guard before ``backward``, or a
        bug of its own): that step, to re-run under the full monitor."""
        if self.failure is not None or not self.optimizers or not (self.current.calls or self.current.losses):
            return self.failure
        return self._fail_live("crash", self.optimizers[0])

    # ---- state -------------------------------------------------------------------------------
    def _checkpoint(self, optimizer, params, n: int) -> None:
        """Copy the parameters and the optimizer state into buffers reused from checkpoint to checkpoint, with
        this step's hyper-parameters (a scheduler changes lr after the step) and the modules' buffers."""
        if self.checkpoint is None or self.checkpoint["step"] != n:
            if self.current.rng is not None:  # NumPy's state (costly) at checkpoints only
                self.current.rng.update(numpy_state())
            old = self.checkpoint or {"optimizers": {}}
            self.checkpoint = {"step": n, "optimizers": old["optimizers"], "modules": {}, "reused": True}
            self.since = []
            for module in self.current.modules.values():
                self.checkpoint["modules"][id(module)] = {k: b.detach().clone() for k, b in module.named_buffers()}
        keys, tensors = _state_tensors(optimizer, params)
        saved = self.checkpoint["optimizers"].get(id(optimizer))
        if saved is None or saved["keys"] != keys or len(saved["params"]) != len(params):
            saved = {"keys": keys, "params": [p.detach().clone() for p in params],
                     "state": [t.detach().clone() for t in tensors]}
            self.checkpoint["optimizers"][id(optimizer)] = saved
        else:
            with torch.no_grad():
                torch._foreach_copy_(saved["params"], [p.detach() for p in params])
                if tensors:
                    torch._foreach_copy_(saved["state"], [t.detach() for t in tensors])
        saved["groups"] = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
        saved["other"] = {i: {k: v for k, v in optimizer.state[p].items() if not isinstance(v, torch.Tensor)}
                          for i, p in enumerate(params) if p in optimizer.state}

    def _all_optimizers(self, optimizer) -> list:
        out = list(self.optimizers)
        if optimizer is not None and optimizer not in out:
            out.append(optimizer)
        return out

    def _fail_live(self, kind: str, optimizer) -> Failure:
        """Nothing was updated yet: the live state is the state before the failing step."""
        modules = [(type(m).__name__, copy_tree(m.state_dict())) for m in self.current.modules.values() if m.state_dict()]
        if self.current.rng is not None and "numpy" not in self.current.rng:
            self.current.rng.update(numpy_state())  # now: a step rarely draws from NumPy after its first call
        step = self.steps + 1
        self.failure = Failure(step=step, start=step, kind=kind, captures=[self.current],
                               optimizers=[_optimizer_state(o, None) for o in self._all_optimizers(optimizer)],
                               modules=modules)
        return self.failure

    def _fail_from_checkpoint(self, optimizer) -> Failure:
        """An update made the parameters non-finite: the steps since the checkpoint, from its state."""
        ckpt = self.checkpoint
        if ckpt is None:  # non-finite before any step: loaded or initialised that way
            return self._fail_live("parameters before the first step", optimizer)
        captures = [*self.since, self.current]
        modules = []
        seen = {}
        for c in captures:
            seen.update(c.modules)
        for mid, m in seen.items():
            sd = m.state_dict()
            if not sd:
                continue
            sd = copy_tree(sd)
            for k, b in ckpt["modules"].get(mid, {}).items():
                if k in sd:
                    sd[k] = b.clone()
            modules.append((type(m).__name__, sd))  # its parameters come from the optimizers' checkpoint
        states = [_optimizer_state(o, ckpt["optimizers"].get(id(o))) for o in self._all_optimizers(optimizer)]
        self.failure = Failure(step=self.steps + 1, start=ckpt["step"], kind="parameters", captures=captures,
                               optimizers=states, modules=modules, rolled_back=True)
        return self.failure


def _params(optimizer) -> list:
    return [p for g in optimizer.param_groups for p in g["params"]]


def _total_norm(tensors: list, device) -> torch.Tensor:
    try:
        norms = torch._foreach_norm(tensors, 2, dtype=torch.float32)
    except (TypeError, RuntimeError):
        norms = [t.detach().float().norm() for t in tensors]
    if any(n.device != device for n in norms):  # parameters on several devices
        norms = [n.to(device) for n in norms]
    return torch.stack(norms).norm()


def _all_finite(tensors: list) -> bool:
    """The exact check behind a non-finite norm (a finite tensor of huge values can overflow a norm)."""
    return all(bool(torch.isfinite(t.detach()).all()) for t in tensors if t.is_floating_point() or t.is_complex())


def _state_tensors(optimizer, params) -> tuple[tuple, list]:
    keys, tensors = [], []
    state = optimizer.state
    for i, p in enumerate(params):
        s = state.get(p)
        if not s:
            continue
        for k, v in s.items():
            if isinstance(v, torch.Tensor):
                keys.append((i, k, v.shape, v.dtype, v.device))
                tensors.append(v)
    return tuple(keys), tensors


def _optimizer_state(optimizer, saved) -> dict:
    """``{"cls", "shapes", "params", "state_dict"}``: the live state, or a checkpoint's."""
    params = _params(optimizer)
    shapes = [tuple(p.shape) for p in params]
    if saved is None:
        return {"cls": type(optimizer).__name__, "shapes": shapes, "params": [p.detach().clone() for p in params],
                "state_dict": copy_tree(optimizer.state_dict())}
    sd = optimizer.state_dict()
    state: dict = {}
    for (i, k, *_), t in zip(saved["keys"], saved["state"]):
        state.setdefault(i, {})[k] = t.clone()
    for i, other in saved.get("other", {}).items():
        state.setdefault(i, {}).update(other)
    groups = [dict(g, **kept) for g, kept in zip(sd["param_groups"], saved["groups"])]
    for g, live in zip(groups, sd["param_groups"]):
        g["params"] = live["params"]
    return {"cls": type(optimizer).__name__, "shapes": shapes, "params": [t.clone() for t in saved["params"]],
            "state_dict": {"state": state, "param_groups": groups}}
