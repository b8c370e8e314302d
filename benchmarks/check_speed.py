"""How fast is ``nanlint check``, against libcst's own parse and against peers?

    python benchmarks/check_speed.py TREE [TREE ...] [--repeat 3] [--peers-venv /tmp/peers-venv]

Every measurement runs in a fresh subprocess (interpreter start and imports included, as a user sees it)
and reports the best wall time of ``--repeat`` rounds (measurements interleaved round by round), with the peak memory of that run: the largest single
process (``ru_maxrss`` from ``wait4``, which covers reaped pool workers too) and the peak of the whole
process tree (sampled from /proc every 100 ms). Measurements:

- ``ast compile``: CPython's parser over every file (the pre-screen's cost), one process.
- ``libcst parse``: ``libcst.parse_module`` over every file, trees dropped: the floor for a libcst tool.
- ``nanlint cold -j1``: ``nanlint check --no-cache --jobs 1``.
- ``nanlint cold -jN``: a fresh cache folder, all CPUs (writes the cache).
- ``nanlint warm``: the same again, answered by the cache.
- ``pre-commit 10 files``: ``nanlint check`` on 10 named files of the tree, nothing cached.
- ``fixit lint`` and ``torchfix`` when ``--peers-venv`` has them. Install them apart from nanlint's venv
  (they pin other libcst versions):  ``python -m venv /tmp/peers-venv && /tmp/peers-venv/bin/pip install
  fixit torchfix``. Both use every CPU by default; TorchFix is also run with ``-j 1``.

``--breakdown`` adds an in-process split of one pass over the files: parse, an empty ``CSTVisitor``, the
engine's own walk with the default rules, ``PositionProvider`` and nanlint's own positions.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

FILES_SNIPPET = """
import sys
sys.path.insert(0, __ROOT__)
from nanlint.config import Config
from nanlint.discovery import discover
files = list(discover(__TREES__, Config()))
"""

PARSE = FILES_SNIPPET + """
import libcst
for name in files:
    with open(name, encoding="utf-8") as handle:
        libcst.parse_module(handle.read())
"""

COMPILE = FILES_SNIPPET + """
import warnings
warnings.simplefilter("ignore")
for name in files:
    with open(name, encoding="utf-8") as handle:
        compile(handle.read(), name, "exec", dont_inherit=True)
"""

COUNT = FILES_SNIPPET + """
lines = 0
for name in files:
    with open(name, "rb") as handle:
        lines += handle.read().count(b"\\n")
print(len(files), lines)
print("\\n".join(files[:: max(1, len(files) // 10)][:10]))
"""

BREAKDOWN = FILES_SNIPPET + """
import time
import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from nanlint import analysis
from nanlint.api import analysis_options
from nanlint.positions import positions as fast_positions
sources = [open(name, encoding="utf-8").read() for name in files]
options = analysis_options(Config(), "x.py")
rules = [cls for code, cls in analysis.all_rules().items() if code in options.codes]
class Empty(cst.CSTVisitor):
    pass
parse = visit = walk = positions = ours = 0.0
for name, source in zip(files, sources):
    t0 = time.perf_counter(); module = cst.parse_module(source); t1 = time.perf_counter()
    module.visit(Empty()); t2 = time.perf_counter()
    ctx = analysis.FileContext(source, name, module, options)
    analysis._Walker(ctx, [cls(ctx, None) for cls in rules], []).walk(module); t3 = time.perf_counter()
    MetadataWrapper(module, unsafe_skip_copy=True).resolve(PositionProvider); t4 = time.perf_counter()
    fast_positions(module, source); t5 = time.perf_counter()
    parse += t1 - t0; visit += t2 - t1; walk += t3 - t2; positions += t4 - t3; ours += t5 - t4
print(f"  libcst parse           {parse:7.2f} s  (1.00x)")
print(f"  empty CSTVisitor       {visit:7.2f} s  ({visit / parse:.2f}x parse)")
print(f"  engine walk, rules {sorted(c.code for c in rules)}  {walk:7.2f} s  ({walk / parse:.2f}x parse)")
print(f"  PositionProvider       {positions:7.2f} s  ({positions / parse:.2f}x parse)")
print(f"  nanlint positions      {ours:7.2f} s  ({ours / parse:.2f}x parse; paid only by files with findings)")
"""


def script(template: str, trees: list[str]) -> str:
    return template.replace("__ROOT__", repr(str(ROOT))).replace("__TREES__", repr(trees))


class TreeSampler(threading.Thread):
    """Peak total RSS of a process and all its descendants, sampled from /proc."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.stop = threading.Event()

    def run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self.stop.wait(0.1):
            parents: dict[int, int] = {}
            rss: dict[int, int] = {}
            for entry in os.listdir("/proc"):
                if not entry.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry}/stat") as handle:
                        fields = handle.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                parents[int(entry)] = int(fields[1])
                rss[int(entry)] = int(fields[21]) * page
            tree, frontier = {self.pid}, [self.pid]
            while frontier:
                current = frontier.pop()
                for child, parent in parents.items():
                    if parent == current and child not in tree:
                        tree.add(child)
                        frontier.append(child)
            self.peak = max(self.peak, sum(rss.get(p, 0) for p in tree))


def measure(command: list[str], cwd: str, env: dict | None = None, timeout: float | None = None) -> tuple[float, int, int, int, float]:
    """(wall seconds, largest process KiB, process-tree peak KiB, exit status, CPU seconds) of one run."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = TreeSampler(process.pid)
    sampler.start()
    deadline = None if timeout is None else start + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            process.kill()
            os.wait4(process.pid, 0)
            sampler.stop.set()
            return float("inf"), 0, 0, -9, float("inf")
        time.sleep(0.005)
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    process.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss, sampler.peak // 1024, process.returncode, usage.ru_utime + usage.ru_stime


class Measurements:
    """Runs every measurement once per round, round after round, and keeps each one's best run: on a
    shared machine the load drifts, and interleaving spreads the drift over all of them alike."""

    def __init__(self):
        self.items: list[tuple[str, list[str], dict]] = []
        self.runs: dict[str, list[tuple[float, int, int, int, float]]] = {}

    def add(self, label: str, command: list[str], **kwargs) -> None:
        self.items.append((label, command, kwargs))
        self.runs[label] = []

    def run(self, rounds: int) -> None:
        for _ in range(rounds):
            for label, command, kwargs in self.items:
                before = kwargs.get("before")
                if before is not None:
                    before()
                options = {k: v for k, v in kwargs.items() if k in ("cwd", "env", "timeout")}
                self.runs[label].append(measure(command, **options))

    def report(self, reference: str | None) -> None:
        """Best wall time, best CPU time (user + system, pool workers included: steadier than wall time
        when other jobs share the machine), peak memory of the best-wall run, ratios to the parse."""
        runs = self.runs.get(reference) or []
        parse_wall = min(r[0] for r in runs) if runs else None
        parse_cpu = min(r[4] for r in runs) if runs else None
        for label, _, _ in self.items:
            wall, largest, tree, status, _ = min(self.runs[label])
            cpu = min(r[4] for r in self.runs[label])
            ratio = f"  wall {wall / parse_wall:6.2f}x  cpu {cpu / parse_cpu:6.2f}x parse" if parse_wall and wall != float("inf") else ""
            note = "" if status in (0, 1) else f"  (exit {status})"
            print(f"{label:<26} wall {wall:7.2f} s  cpu {cpu:7.2f} s  largest process {largest / 1024:5.0f} MiB  tree {tree / 1024:5.0f} MiB{ratio}{note}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trees", nargs="+")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is reported")
    parser.add_argument("--peers-venv", default="/tmp/peers-venv", help="venv with fixit and torchfix installed")
    parser.add_argument("--peers-repeat", type=int, default=1)
    parser.add_argument("--peers-timeout", type=float, default=900)
    parser.add_argument("--breakdown", action="store_true", help="also split one pass into parse/visit/walk/positions")
    parser.add_argument("--skip", action="append", default=[], help="labels to skip: compile, parse, cold1, coldN, warm, precommit, peers")
    args = parser.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees]
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    work = tempfile.mkdtemp(prefix="nanlint-bench-")
    try:
        out = subprocess.run([python, "-c", script(COUNT, trees)], capture_output=True, text=True, check=True)
        head, *sample = out.stdout.split("\n")
        files, lines = map(int, head.split())
        sample = [s for s in sample if s][:10]
        jobs = len(os.sched_getaffinity(0))
        print(f"{files} files, {lines} lines; {jobs} CPUs; python {sys.version.split()[0]}; best of {args.repeat}", flush=True)
        nanlint = [python, "-m", "nanlint", "check", "--isolated", "--exit-zero", "-q", "--output-format", "concise"]
        cache = Path(work) / ".nanlint_cache"
        clear = lambda: shutil.rmtree(cache, ignore_errors=True)  # noqa: E731
        warm_up = lambda: subprocess.run(nanlint + trees, cwd=work, env=env, capture_output=True)  # noqa: E731
        ours = Measurements()
        plain = dict(cwd=work, env=env)
        if "compile" not in args.skip:
            ours.add("ast compile (1 process)", [python, "-c", script(COMPILE, trees)], **plain)
        if "parse" not in args.skip:
            ours.add("libcst parse (1 process)", [python, "-c", script(PARSE, trees)], **plain)
        if "cold1" not in args.skip:
            ours.add("nanlint cold -j1", nanlint + ["--no-cache", "--jobs", "1", *trees], **plain)
        if "coldN" not in args.skip:
            ours.add(f"nanlint cold -j{jobs}", nanlint + ["--jobs", str(jobs), *trees], before=clear, **plain)
        if "warm" not in args.skip:
            ours.add("nanlint warm (cached)", nanlint + trees, before=warm_up, **plain)
        if "precommit" not in args.skip:
            ours.add(f"pre-commit {len(sample)} files", nanlint + sample, before=clear, **plain)
        ours.run(args.repeat)
        ours.report("libcst parse (1 process)")
        if args.breakdown:
            print("one pass, in-process:", flush=True)
            subprocess.run([python, "-c", script(BREAKDOWN, trees)], check=True, env=env)
        peers = Path(args.peers_venv) / "bin"
        if "peers" not in args.skip:
            others = Measurements()
            options = dict(cwd=work, timeout=args.peers_timeout)
            if (peers / "fixit").exists():
                others.add("fixit lint", [str(peers / "fixit"), "lint", *trees], **options)
            else:
                print(f"fixit: not installed in {args.peers_venv} (pip install fixit)")
            if (peers / "torchfix").exists():
                others.add("torchfix (all CPUs)", [str(peers / "torchfix"), *trees], **options)
                others.add("torchfix -j1", [str(peers / "torchfix"), "-j", "1", *trees], **options)
            else:
                print(f"torchfix: not installed in {args.peers_venv} (pip install torchfix)")
            if not others.items:
                return
            others.run(args.peers_repeat)
            others.items.insert(0, ("libcst parse (1 process)", [], {}))
            others.runs.setdefault("libcst parse (1 process)", ours.runs.get("libcst parse (1 process)", []))
            others.items = [item for item in others.items if others.runs[item[0]]]
            others.report("libcst parse (1 process)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
