"""How noisy are the rules on real, working code?

    python benchmarks/precision_eval.py PKG_DIR... [--sample N --seed S] [--selection default|all|both]
                                        [--codes NAN3,NAN4] [--jobs J]

Runs nanlint over the given source trees twice: with every rule (``--select ALL --preview``) and with the
default selection. Prints the lines of code checked, the findings per 1,000 lines by rule, and with
``--sample N`` a reproducible random sample of N findings of the default selection (``--sample-from all`` for
the other run), each with the source lines around it, for triage by reading. Library code such as torchvision, timm or transformers is overwhelmingly
correct, so a rule that fires often there is mostly firing on safe code.
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nanlint.api import check_file  # noqa: E402
from nanlint.config import Config  # noqa: E402
from nanlint.discovery import discover  # noqa: E402


def _count_lines(path: str) -> int:
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return 0


def _check(args: tuple[str, Config]):
    filename, config = args
    result = check_file(filename, config)
    return filename, result.findings, [f"{e.code}: {e.message}" for e in result.errors]


def run(paths: list[str], config: Config, jobs: int):
    files = list(discover(paths, config, False))
    findings, errors = [], []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for _, found, errs in pool.map(_check, [(f, config) for f in files], chunksize=16):
            findings.extend(found)
            errors.extend(errs)
    return files, findings, errors


def _select(codes: list[str] | None, everything: bool) -> Config:
    if everything:
        return Config(select=("ALL",), preview=True, cache=False, respect_gitignore=False)
    if codes:
        return Config(select=tuple(codes), cache=False, respect_gitignore=False)
    return Config(cache=False, respect_gitignore=False)


def _table(findings, kloc: float, title: str, prefixes: tuple[str, ...]) -> None:
    counts = Counter(f.code for f in findings if not prefixes or f.code.startswith(prefixes))
    print(f"\n## {title}: {sum(counts.values())} findings, {sum(counts.values()) / kloc:.3f} per kLOC")
    print(f"{'rule':8} {'name':38} {'count':>6} {'per kLOC':>9}")
    names = {f.code: f.name for f in findings}
    for code, n in sorted(counts.items()):
        print(f"{code:8} {names[code]:38} {n:6d} {n / kloc:9.3f}")


def _context(finding, radius: int = 3) -> str:
    try:
        lines = Path(finding.filename).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "    (unreadable)"
    start, end = max(1, finding.line - radius), min(len(lines), finding.line + radius)
    return "\n".join(f"{'>' if n == finding.line else ' '} {n:5d} | {lines[n - 1]}" for n in range(start, end + 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", metavar="PKG_DIR")
    parser.add_argument("--sample", type=int, default=0, help="print N random findings of the default selection with context")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample-from", choices=("default", "all"), default="default", help="which run's findings to sample")
    parser.add_argument("--selection", choices=("default", "all", "both"), default="both")
    parser.add_argument("--codes", default="", help="comma-separated code prefixes to report on (e.g. NAN3,NAN4,NAN5,NAN6)")
    parser.add_argument("--jobs", type=int, default=max(1, min(2, os.cpu_count() or 1)))
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).exists()]
    if missing:
        print(f"error: no such path: {', '.join(missing)}", file=sys.stderr)
        return 2
    prefixes = tuple(c.strip() for c in args.codes.split(",") if c.strip())

    sampled = {}
    for everything in ((True, False) if args.selection == "both" else ((args.selection == "all"),)):
        started = time.perf_counter()
        files, findings, errors = run(args.paths, _select(None, everything), args.jobs)
        elapsed = time.perf_counter() - started
        loc = sum(_count_lines(f) for f in files)
        kloc = max(loc / 1000, 1e-9)
        title = "ALL + preview" if everything else "default selection"
        print(f"# {title}: {len(files)} files, {loc} non-blank lines, {elapsed:.1f} s")
        if errors:
            print(f"internal errors: {len(errors)} (first: {errors[0]})")
        _table(findings, kloc, title, prefixes)
        sampled["all" if everything else "default"] = findings

    if args.sample:
        source = sampled.get(args.sample_from)
        if source is None:
            _, source, _ = run(args.paths, _select(None, args.sample_from == "all"), args.jobs)
        pool = [f for f in source if not prefixes or f.code.startswith(prefixes)]
        pool.sort(key=lambda f: (f.filename, f.line, f.column, f.code))
        chosen = random.Random(args.seed).sample(pool, min(args.sample, len(pool)))
        print(f"\n## sample of {len(chosen)} findings of the {args.sample_from} selection (seed {args.seed}) of {len(pool)}")
        for i, f in enumerate(chosen, 1):
            print(f"\n[{i}] {f.filename}:{f.line}:{f.column} {f.code} ({f.confidence.value}) {f.message}")
            print(_context(f))
    return 0


if __name__ == "__main__":
    sys.exit(main())
