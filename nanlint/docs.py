"""The README's rule table, generated from ``rules/`` and committed; ``python -m nanlint.docs`` rewrites it
between the markers, ``python -m nanlint.docs --check`` fails when it is stale (the test suite does the
same)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nanlint.catalog import RuleDoc, load_catalog

BEGIN = "<!-- begin rules table: generated from rules/ by `python -m nanlint.docs`, do not edit -->"
END = "<!-- end rules table -->"
FIX = {"safe": "safe", "unsafe": "unsafe", "none": ""}


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def rule_table(docs: dict[str, RuleDoc] | None = None) -> str:
    docs = load_catalog() if docs is None else docs
    rows = ["| Code | Name | Severity | Default | Fix | Summary |", "|---|---|---|---|---|---|"]
    for doc in docs.values():
        rows.append(f"| {doc.code} | `{doc.name}` | {doc.severity} | {doc.default} | {FIX[doc.fix]} | {_cell(doc.summary)} |")
    return "\n".join(rows) + "\n"


def with_table(readme: str, table: str) -> str:
    """``readme`` with the text between the markers replaced by ``table``."""
    start = readme.find(BEGIN)
    end = readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the README has no rule table markers ({BEGIN} ... {END})")
    return readme[: start + len(BEGIN)] + "\n" + table + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nanlint.docs", description=__doc__)
    parser.add_argument("readme", nargs="?", default="README.md", help="the README to update (default: README.md)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the table is stale instead of writing it")
    args = parser.parse_args(argv)
    path = Path(args.readme)
    try:
        current = path.read_text(encoding="utf-8")
        updated = with_table(current, rule_table())
    except (OSError, ValueError) as exc:
        print(f"nanlint.docs: error: {path}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != current:
            print(f"{path}: the rule table is stale; run `python -m nanlint.docs`", file=sys.stderr)
            return 1
        return 0
    if updated != current:
        path.write_text(updated, encoding="utf-8")
        print(f"{path}: rule table updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
