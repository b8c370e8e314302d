"""What the cheap per-step watch of ``nanlint trace --until-nan`` / ``nanlint.watch`` costs on clean runs,
side by side with ``torch.autograd.detect_anomaly`` (the target: watched <= 1.10x plain).

    python benchmarks/watch_overhead.py [--steps 20] [--rounds 15] [--device cpu] [--threads 1] [--clock cpu|wall]
                                        [--no-anomaly]

Models (CPU-sized): an MLP on 784-d inputs (Adam), a small CNN on 32x32 images (SGD with momentum), a
2-layer transformer encoder (AdamW). Each mode trains the same model on the same pre-made batches, in chunks
interleaved round by round (``--rounds`` x ``--steps`` clean steps per mode: 300 by default); the figure is
the median of the per-round ratios to plain, so that the other load of a shared box cancels out. Modes:

- ``plain``: the loop as it is;
- ``watch``: inside ``nanlint.watch(model, optimizer)`` (hooks on the given optimizer and model);
- ``until-nan``: the hooks ``--until-nan`` installs (every optimizer, top-level modules found in step 1);
- ``anomaly``: inside ``torch.autograd.detect_anomaly()``.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import warnings

import torch
import torch.nn as nn


def mlp():
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 10))
    return model, torch.optim.Adam(model.parameters(), 1e-3), lambda: (torch.randn(64, 784), torch.randint(0, 10, (64,)))


def cnn():
    model = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32 * 8 * 8, 10))
    return (model, torch.optim.SGD(model.parameters(), 0.01, momentum=0.9),
            lambda: (torch.randn(32, 3, 32, 32), torch.randint(0, 10, (32,))))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(1000, 64)
        layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.1, batch_first=True)
        self.body = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(64, 10)

    def forward(self, tokens):
        return self.head(self.body(self.embed(tokens)).mean(1))


def transformer():
    model = Encoder()
    return (model, torch.optim.AdamW(model.parameters(), 3e-4),
            lambda: (torch.randint(0, 1000, (16, 32)), torch.randint(0, 10, (16,))))


MODELS = {"mlp": mlp, "cnn": cnn, "transformer": transformer}


def until_nan_hooks(model, optimizer):
    from nanlint.trace.cheapwatch import StepWatch
    from nanlint.trace.patches import Patcher
    from nanlint.trace.stephooks import StepHooks

    def failed(failure):
        raise RuntimeError(f"unexpected: {failure.detected} at step {failure.step}")

    hooks = StepHooks(StepWatch(), Patcher(), failed)

    @contextlib.contextmanager
    def active():
        hooks.install()
        try:
            yield
        finally:
            hooks.remove()
    return active()


def watch(model, optimizer):
    import nanlint

    return nanlint.watch(model, optimizer, on_nonfinite="raise")


def anomaly(model, optimizer):
    warnings.filterwarnings("ignore", message="Anomaly Detection has been enabled")
    return torch.autograd.detect_anomaly()


MODES = {"plain": lambda m, o: contextlib.nullcontext(), "watch": watch, "until-nan": until_nan_hooks,
         "anomaly": anomaly}


def measure(name: str, steps: int, rounds: int, device: str, modes, clock=time.process_time) -> dict:
    """Seconds per step of each mode: one model, the modes interleaved in chunks of ``steps`` steps,
    ``rounds`` times; the median round ratio against ``plain`` (the box's other load cancels out)."""
    torch.manual_seed(0)
    model, optimizer, make = MODELS[name]()
    model.to(device)
    batches = [tuple(t.to(device) for t in make()) for _ in range(16)]
    loss_fn = nn.CrossEntropyLoss()

    def step(i):
        x, y = batches[i % len(batches)]
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def chunk(mode) -> float:
        with MODES[mode](model, optimizer):
            for i in range(3):  # inside the mode (the until-nan hooks find the top-level modules in step 1)
                step(i)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = clock()
            for i in range(steps):
                step(i)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            return (clock() - start) / steps

    for _ in range(2):
        chunk("plain")  # warm-up
    times = {mode: [] for mode in modes}
    for r in range(rounds):
        for mode in modes[r % len(modes):] + modes[:r % len(modes)]:  # each mode in each position in turn
            times[mode].append(chunk(mode))
    plain = statistics.median(times["plain"])
    ratios = {mode: statistics.median(t / p for t, p in zip(times[mode], times["plain"])) for mode in modes}
    return {"plain_ms": plain * 1e3, **ratios}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="steps per chunk")
    parser.add_argument("--rounds", type=int, default=15, help="chunks of each mode (interleaved)")
    parser.add_argument("--clock", choices=["cpu", "wall"], default=None,
                        help="cpu: this process's CPU time (default with 1 thread on a CPU: a shared box's other "
                             "load does not count); wall: elapsed time (default otherwise)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--no-anomaly", action="store_true", help="skip detect_anomaly (slow)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    modes = [m for m in MODES if not (args.no_anomaly and m == "anomaly")]
    clock_name = args.clock or ("cpu" if args.threads == 1 and args.device == "cpu" else "wall")
    clock = time.process_time if clock_name == "cpu" else time.perf_counter
    print(f"torch {torch.__version__}, device {args.device}, {torch.get_num_threads()} thread(s), "
          f"{args.rounds} rounds x {args.steps} clean steps per mode ({args.rounds * args.steps} steps), "
          f"{clock_name} time, median of the per-round ratios to plain")
    print(f"{'model':<12} {'plain ms/step':>14}" + "".join(f"{m:>12}" for m in modes[1:]))
    for name in args.models.split(","):
        r = measure(name, args.steps, args.rounds, args.device, modes, clock)
        print(f"{name:<12} {r['plain_ms']:>14.3f}" + "".join(f"{r[m]:>11.3f}x" for m in modes[1:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
