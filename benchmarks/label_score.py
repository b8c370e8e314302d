"""Precision against a labeled sample: what became of each labeled finding, and which findings are new.

    python benchmarks/label_score.py LABELS.tsv TREES_DIR [--show FALSE,DEBATABLE] [--new]

LABELS.tsv (benchmarks/labels/) has the columns n, package, file, line, rule, label (TRUE / FALSE /
DEBATABLE), why; TREES_DIR holds one folder per package, as `fetch_trees.py` unpacks the set. The default
rule selection runs over TREES_DIR; a finding matches a label by (package, path inside the package's folder,
line, rule). Prints the labeled findings still reported and those gone, by label, the precision
TRUE / (TRUE + FALSE) of what is still reported, and the count of new (unlabeled) findings, which need a read
before the figure means anything.
"""
from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path


def findings(tree: Path) -> set[tuple[str, str, int, str]]:
    done = subprocess.run([sys.executable, "-m", "nanlint", "check", "--isolated", "--no-cache", "--exit-zero",
                           "--output-format", "json", "."], cwd=tree, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"label_score: nanlint failed: {done.stderr.strip()[-500:]}")
    out = set()
    for f in json.loads(done.stdout):
        package, _, path = f["filename"].removeprefix("./").partition("/")
        out.add((package, path, f["location"]["row"], f["code"]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", type=Path)
    parser.add_argument("trees", type=Path)
    parser.add_argument("--show", default="", help="labels whose still-reported findings to list (FALSE,DEBATABLE)")
    parser.add_argument("--new", action="store_true", help="list the new findings")
    args = parser.parse_args()
    with args.labels.open(encoding="utf-8") as f:
        labels = {(r["package"].split("==")[0], r["file"], int(r["line"]), r["rule"]): r
                  for r in csv.DictReader(f, delimiter="\t")}
    found = findings(args.trees)
    kept, gone = Counter(), Counter()
    for key, row in labels.items():
        (kept if key in found else gone)[row["label"]] += 1
    new = sorted(found - labels.keys())
    t, fa = kept["TRUE"], kept["FALSE"]
    print(f"findings {len(found)}; labeled and still reported: {dict(kept)}; labeled and gone: {dict(gone)}; new: {len(new)}")
    print(f"precision of the labeled findings still reported: TRUE/(TRUE+FALSE) = {t}/{t + fa}"
          + (f" = {t / (t + fa):.0%}" if t + fa else ""))
    show = {s.strip().upper() for s in args.show.split(",") if s.strip()}
    for key, row in sorted(labels.items()):
        if key in found and row["label"] in show:
            print(row["label"], *key, "-", row["why"][:160])
    if args.new:
        for key in new:
            print("NEW", *key)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
