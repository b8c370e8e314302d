"""Recall and fixed-version noise of nanlint on the corpus of real NaN bugs.

    python benchmarks/corpus_eval.py CORPUS_DIR [--class CLASS] [--quiet]

For every case (``<id>/buggy.py``, ``fixed.py``, ``meta.toml``) it runs every rule (``ALL`` plus preview rules)
and, separately, the default selection, then prints per bug class and overall:

* recall over the statically detectable cases: a case is found when any finding lands on one of its
  ``buggy_lines`` in ``buggy.py``;
* how many fixed versions are still flagged: a finding in ``fixed.py`` on a line that a difflib line diff maps
  from a labeled buggy line (cases with ``incomplete_fix = true`` left out);
* every other finding (``file:line code message``), for hand triage;
* the cases missed.

Exit status 0; 2 when the corpus folder cannot be read.
"""
from __future__ import annotations

import argparse
import difflib
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nanlint._toml import tomllib  # noqa: E402
from nanlint.api import check_source  # noqa: E402
from nanlint.config import Config  # noqa: E402
from nanlint.findings import Finding  # noqa: E402


@dataclass
class Case:
    ident: str
    bug_class: str
    detectable: bool
    incomplete_fix: bool
    buggy_lines: list[int]
    buggy: str
    fixed: str


@dataclass
class Outcome:
    case: Case
    found: bool
    fixed_flagged: bool
    buggy_findings: list[Finding] = field(default_factory=list)
    fixed_findings: list[Finding] = field(default_factory=list)
    mapped: set[int] = field(default_factory=set)


def load_cases(root: Path) -> list[Case]:
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        meta_path = folder / "meta.toml"
        if not meta_path.is_file():
            continue
        meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
        cases.append(
            Case(
                ident=folder.name,
                bug_class=meta.get("bug_class", "?"),
                detectable=bool(meta.get("statically_detectable", False)),
                incomplete_fix=bool(meta.get("incomplete_fix", False)),
                buggy_lines=[int(n) for n in meta.get("buggy_lines", [])],
                buggy=(folder / "buggy.py").read_text(encoding="utf-8"),
                fixed=(folder / "fixed.py").read_text(encoding="utf-8") if (folder / "fixed.py").is_file() else "",
            )
        )
    return cases


def mapped_lines(buggy: str, fixed: str, labeled: list[int]) -> set[int]:
    """Lines of ``fixed`` (1-based) that difflib maps from the labeled lines of ``buggy``: the same line in an
    equal block, every replacement line in a replaced block."""
    a, b = buggy.splitlines(), fixed.splitlines()
    out: set[int] = set()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        for line in labeled:
            i = line - 1
            if not i1 <= i < i2:
                continue
            if tag == "equal":
                out.add(j1 + (i - i1) + 1)
            elif tag == "replace":
                out.update(range(j1 + 1, j2 + 1))
    return out


def evaluate(case: Case, config: Config) -> Outcome:
    buggy_findings = check_source(case.buggy, f"{case.ident}/buggy.py", config)
    fixed_findings = check_source(case.fixed, f"{case.ident}/fixed.py", config) if case.fixed else []
    found = any(f.line in case.buggy_lines for f in buggy_findings)
    mapped = mapped_lines(case.buggy, case.fixed, case.buggy_lines)
    fixed_flagged = any(f.line in mapped for f in fixed_findings)
    return Outcome(case, found, fixed_flagged, buggy_findings, fixed_findings, mapped)


def _pct(n: int, d: int) -> str:
    return f"{100 * n / d:5.1f}%" if d else "   - "


def summarize(title: str, outcomes: list[Outcome], classes: list[str] | None = None) -> dict:
    per: dict[str, list[Outcome]] = defaultdict(list)
    for o in outcomes:
        per[o.case.bug_class].append(o)
    print(f"\n== {title}")
    print(f"{'class':22} {'detectable':>10} {'found':>6} {'recall':>7} {'fixed*':>7} {'flagged':>8} {'share':>7}")
    totals = [0, 0, 0, 0]
    for bug_class in sorted(per):
        if classes and bug_class not in classes:
            continue
        group = per[bug_class]
        detectable = [o for o in group if o.case.detectable]
        found = sum(o.found for o in detectable)
        fixed = [o for o in group if not o.case.incomplete_fix and o.case.fixed]
        flagged = sum(o.fixed_flagged for o in fixed)
        totals = [totals[0] + len(detectable), totals[1] + found, totals[2] + len(fixed), totals[3] + flagged]
        print(f"{bug_class:22} {len(detectable):10d} {found:6d} {_pct(found, len(detectable)):>7} {len(fixed):7d} {flagged:8d} {_pct(flagged, len(fixed)):>7}")
    print(f"{'overall':22} {totals[0]:10d} {totals[1]:6d} {_pct(totals[1], totals[0]):>7} {totals[2]:7d} {totals[3]:8d} {_pct(totals[3], totals[2]):>7}")
    print("  (* fixed versions counted: incomplete_fix cases left out)")
    return {"detectable": totals[0], "found": totals[1], "fixed": totals[2], "fixed_flagged": totals[3]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", help="the corpus folder (one sub-folder per case)")
    parser.add_argument("--class", dest="classes", action="append", help="only this bug class (repeatable)")
    parser.add_argument("--quiet", action="store_true", help="figures only, no finding lists")
    args = parser.parse_args(argv)
    root = Path(args.corpus)
    if not root.is_dir():
        print(f"error: corpus folder not found: {root}", file=sys.stderr)
        return 2
    try:
        cases = load_cases(root)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        print(f"error: cannot read the corpus: {exc}", file=sys.stderr)
        return 2
    if args.classes:
        cases = [c for c in cases if c.bug_class in args.classes]
    everything = Config(select=("ALL",), preview=True)
    all_outcomes = [evaluate(case, everything) for case in cases]
    default_outcomes = [evaluate(case, Config()) for case in cases]
    summarize("ALL rules (select ALL + preview)", all_outcomes)
    summarize("default selection", default_outcomes)
    if args.quiet:
        return 0
    print("\n== missed detectable cases (ALL)")
    for o in all_outcomes:
        if o.case.detectable and not o.found:
            print(f"  {o.case.ident} [{o.case.bug_class}] lines {o.case.buggy_lines}")
    print("\n== fixed versions still flagged at labeled lines (ALL)")
    for o in all_outcomes:
        if o.fixed_flagged and not o.case.incomplete_fix:
            for f in o.fixed_findings:
                if f.line in o.mapped:
                    print(f"  {f.filename}:{f.line} {f.code} {f.message}")
    print("\n== findings on labeled lines (ALL)")
    for o in all_outcomes:
        for f in o.buggy_findings:
            if f.line in o.case.buggy_lines:
                print(f"  {f.filename}:{f.line} {f.code} [{f.confidence.value}] {f.message}")
    print("\n== every other finding (ALL)")
    for o in all_outcomes:
        for f in o.buggy_findings:
            if f.line not in o.case.buggy_lines:
                print(f"  {f.filename}:{f.line} {f.code} [{f.confidence.value}] {f.message}")
        for f in o.fixed_findings:
            if f.line not in o.mapped:
                print(f"  {f.filename}:{f.line} {f.code} [{f.confidence.value}] {f.message}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
