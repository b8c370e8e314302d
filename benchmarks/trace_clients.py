"""Real clients of `nanlint trace`: pytorch/examples programs on synthetic data.

    python benchmarks/trace_clients.py EXAMPLES_DIR [--only mnist,dcgan] [--timeout 300]

EXAMPLES_DIR is a local checkout of https://github.com/pytorch/examples (nothing is downloaded: torchvision
datasets are replaced by small synthetic ones through a `sitecustomize` shim). Each program is copied to a
temporary folder, run once plainly until its first optimizer step (the shim ends the process there) and once
under `nanlint trace --output-format json`. Prints per program: exit code, steps, verdicts, trace and plain
wall times (whole process: imports, model building, first step) and their ratio. Needs torchvision and
matplotlib (time_sequence_prediction). The plain run keeps the script's DataLoader workers, which the trace
runs in-process: where a script starts workers, its plain time includes their start-up.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# (name, folder, script, arguments, setup script run first or None)
PROGRAMS = [
    ("mnist", "mnist", "main.py", ["--epochs", "1", "--no-accel"], None),
    ("mnist_rnn", "mnist_rnn", "main.py", ["--epochs", "1"], None),
    ("vae", "vae", "main.py", ["--epochs", "1"], None),
    ("siamese", "siamese_network", "main.py", ["--epochs", "1"], None),
    ("mnist_hogwild", "mnist_hogwild", "main.py", ["--epochs", "1", "--num-processes", "2"], None),
    ("mnist_forward_forward", "mnist_forward_forward", "main.py", ["--epochs", "2"], None),
    ("dcgan", "dcgan", "main.py", ["--dataset", "fake", "--niter", "1", "--batchSize", "8"], None),
    ("imagenet_resnet18", "imagenet", "main.py", ["--dummy", "-a", "resnet18", "-b", "4", "--epochs", "1",
                                                 "--workers", "0"], None),
    ("regression", "regression", "main.py", [], None),
    ("time_sequence_lbfgs", "time_sequence_prediction", "train.py", ["--steps", "2"], "generate_sine_wave.py"),
    ("word_lm_lstm", "word_language_model", "main.py", ["--epochs", "1", "--model", "LSTM", "--emsize", "32",
                                                         "--nhid", "32", "--bptt", "8"], None),
    ("word_lm_transformer", "word_language_model", "main.py", ["--epochs", "1", "--model", "Transformer",
                                                                "--emsize", "32", "--nhid", "32", "--nhead", "2",
                                                                "--bptt", "8"], None),
]

SHIM = '''
"""Synthetic torchvision datasets, and (NANLINT_BENCH_PLAIN=1) an exit after the first optimizer step."""
import os, sys, types

# a PyPI torchvision next to a CPU-only torch cannot register its C++ ops' fake kernels: the examples
# use only datasets, transforms, models and utils, which do not need them
sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")

def _patch_datasets():
    try:
        import torch
        import torchvision.datasets as d
        from PIL import Image
    except Exception:
        return

    class SyntheticMNIST(torch.utils.data.Dataset):
        def __init__(self, root=None, train=True, transform=None, target_transform=None, download=False):
            g = torch.Generator().manual_seed(0 if train else 1)
            n = 512 if train else 128
            self.data = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
            self.targets = torch.randint(0, 10, (n,), generator=g)
            self.transform, self.target_transform = transform, target_transform
            self.classes = [str(i) for i in range(10)]

        def __len__(self):
            return len(self.data)

        def __getitem__(self, i):
            img = Image.fromarray(self.data[i].numpy(), mode="L")
            target = int(self.targets[i])
            if self.transform is not None:
                img = self.transform(img)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return img, target

    # picklable for spawned children (Hogwild), which import this shim too
    SyntheticMNIST.__qualname__ = SyntheticMNIST.__name__
    SyntheticMNIST.__module__ = __name__
    globals()["SyntheticMNIST"] = SyntheticMNIST
    d.MNIST = d.FashionMNIST = SyntheticMNIST
    original_fake = d.FakeData

    def small_fake(size=1000, *args, **kwargs):
        return original_fake(min(size, 64), *args, **kwargs)

    d.FakeData = small_fake

import importlib.machinery


class _AfterImport:
    """Runs a function right after a module is imported (a meta-path finder that wraps the real loader)."""

    def __init__(self, name, then):
        self.name, self.then = name, then

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        original, then = spec.loader.exec_module, self.then

        def exec_module(module):
            original(module)
            then(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport("torchvision.datasets", lambda module: _patch_datasets()))

if os.environ.get("NANLINT_BENCH_PLAIN"):
    def _stop_after_first_step(optim):
        def stop(optimizer, args, kwargs):
            sys.stdout.flush()
            os._exit(0)

        optim.register_optimizer_step_post_hook(stop)

    sys.meta_path.insert(0, _AfterImport("torch.optim.optimizer", _stop_after_first_step))
'''


def run(cmd, cwd, env, timeout):
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - start
    except subprocess.TimeoutExpired:
        return None, "", "timeout", time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", type=Path)
    parser.add_argument("--only", default="")
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--nanlint", default=str(Path(sys.executable).with_name("nanlint")))
    opts = parser.parse_args()
    if not (opts.examples / "mnist" / "main.py").is_file():
        print(f"error: {opts.examples} is not a pytorch/examples checkout", file=sys.stderr)
        return 2
    only = set(filter(None, opts.only.split(",")))
    shim_dir = Path(tempfile.mkdtemp(prefix="nanlint-clients-shim-"))
    (shim_dir / "sitecustomize.py").write_text(SHIM)
    rows = []
    try:
        for name, folder, script, args, setup in PROGRAMS:
            if only and name not in only:
                continue
            work = Path(tempfile.mkdtemp(prefix=f"nanlint-client-{name}-"))
            try:
                shutil.copytree(opts.examples / folder, work / folder)
                cwd = work / folder
                # time_sequence_prediction saves numpy arrays with torch.save, which torch.load refuses by default since 2.6
                env = {**os.environ, "PYTHONPATH": str(shim_dir), "CUDA_VISIBLE_DEVICES": "",
                       "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
                if setup:
                    run([sys.executable, setup], cwd, env, opts.timeout)
                plain = run([sys.executable, script, *args], cwd, {**env, "NANLINT_BENCH_PLAIN": "1"}, opts.timeout)
                report = cwd / "nanlint-trace.json"
                traced = run([opts.nanlint, "trace", "--timeout", str(opts.timeout), "--output-format", "json",
                              "--output-file", str(report), script, "--", *args], cwd, env, opts.timeout + 30)
                data = json.loads(report.read_text()) if report.is_file() else {}
                verdicts: dict[str, int] = {}
                for site in data.get("sites", []):
                    verdicts[site["verdict"]] = verdicts.get(site["verdict"], 0) + 1
                run_info = data.get("run", {})
                first = data.get("first_nonfinite") or {}
                rows.append({
                    "program": name, "exit": traced[0], "plain_exit": plain[0],
                    "stop": run_info.get("stop_reason"), "steps": run_info.get("optimizer_steps"),
                    "verdicts": verdicts, "first": f"{first.get('op')}@{Path(first.get('filename') or '?').name}:{first.get('line')}" if first else "",
                    "trace_s": traced[3], "plain_s": plain[3], "ratio": traced[3] / plain[3] if plain[3] else None,
                    "error": (traced[2].strip().splitlines() or [""])[-1][:120] if traced[0] == 2 else "",
                })
            finally:
                shutil.rmtree(work, ignore_errors=True)
            r = rows[-1]
            print(f"{r['program']:<24} exit {r['exit']!s:<4} plain-exit {r['plain_exit']!s:<4} {str(r['stop']):<36} "
                  f"steps {r['steps']!s:<3} {json.dumps(r['verdicts']):<40} {r['first']:<28} "
                  f"trace {r['trace_s']:6.1f}s plain {r['plain_s']:6.1f}s x{(r['ratio'] or 0):.2f} {r['error']}",
                  flush=True)
    finally:
        shutil.rmtree(shim_dir, ignore_errors=True)
    ratios = sorted(r["ratio"] for r in rows if r["ratio"])
    if ratios:
        print(f"\n{len(rows)} programs; trace/plain wall time: median x{ratios[len(ratios) // 2]:.2f}, "
              f"range x{ratios[0]:.2f}-x{ratios[-1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
