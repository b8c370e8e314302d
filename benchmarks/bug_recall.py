"""Recall on a held-out set of real NaN bugs: ``benchmarks/bugs/cases.toml``.

Each case is a minimal excerpt of an upstream bug (its issue or fix commit in ``url``), with the line that
produced the inf/NaN and the upstream fix. The excerpts are third-party code, so the set is kept outside the
repository (pass its path with ``--cases``); only this scorer is committed. The set was collected from public issues by someone who did not
look at nanlint's rules or tests, so it measures whether the analysis generalizes, not whether it was
tuned. A case counts as found when a finding of the default selection (or of every rule, with ``--all``)
lies on the buggy line; the fixed version should give no finding on that line.

    python benchmarks/bug_recall.py --cases PATH/cases.toml [--all] [--verbose]

The file holds ``[[case]]`` tables with ``id``, ``url``, ``project``, ``bug_class``, ``buggy_line`` (1-based, in
``buggy``), ``buggy`` and ``fixed`` (code strings) and ``notes``.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from nanlint.api import check_source
from nanlint.config import Config

HERE = Path(__file__).resolve().parent


def findings(code: str, every_rule: bool):
    config = Config(select=("ALL",), preview=True) if every_rule else Config()
    return check_source(textwrap.dedent(code).lstrip("\n"), "case.py", config)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", required=True, help="a cases.toml of held-out bugs (see the module docstring for its format)")
    parser.add_argument("--all", action="store_true", help="every rule, preview included (default: the default selection)")
    parser.add_argument("--verbose", action="store_true", help="print each case's findings")
    args = parser.parse_args()
    cases = tomllib.loads(Path(args.cases).read_text())["case"]
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    found = fixed_flagged = 0
    for case in cases:
        line = int(case["buggy_line"])
        hit = [f for f in findings(case["buggy"], args.all) if f.line == line]
        still = [f for f in findings(case["fixed"], args.all) if f.line == line] if case.get("fixed") else []
        row = per_class[case.get("bug_class", "other")]
        row[0] += 1
        row[1] += bool(hit)
        row[2] += bool(still)
        found += bool(hit)
        fixed_flagged += bool(still)
        mark = "found" if hit else "MISSED"
        print(f"{mark:7} {case['id']:45} {case.get('bug_class', ''):13} {', '.join(sorted({f.code for f in hit})) or '-'}")
        if args.verbose:
            for f in hit:
                print(f"          {f.code} {f.message}")
    print()
    print(f"{'class':15} {'cases':>5} {'found':>5} {'recall':>7} {'fixed still flagged':>20}")
    for name, (n, hit, still) in sorted(per_class.items()):
        print(f"{name:15} {n:5} {hit:5} {hit / n:7.0%} {still:20}")
    n = len(cases)
    print(f"{'overall':15} {n:5} {found:5} {found / n:7.0%} {fixed_flagged:20}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
