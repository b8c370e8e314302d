"""Recall on real inf/NaN bugs in released PyPI packages: ``benchmarks/labels/release_bugs.toml``.

Each entry names a package, a release that holds the bug and a later release that holds its fix, the file,
the buggy line and the fixed line (references only: the sources are downloaded here, never committed). The
set was mined from public issues and fix commits by someone who did not look at nanlint's rules, so it
measures whether the analysis generalizes. A bug counts as found when a finding of the default selection
(or of every rule, with ``--all``) lies on its buggy line, with the whole released file checked; the fixed
release should give no finding on its fixed line.

    python benchmarks/release_bugs.py [--bugs FILE] [--cache DIR] [--all] [--strict] [--verbose]

Entry keys: ``id``, ``package``, ``buggy_version``, ``fixed_version``, ``file`` (inside the wheel, or inside an
sdist's top folder with ``sdist = true``), ``buggy_line``, ``fixed_line`` (0: the line was deleted),
``bug_class``, ``url``, ``summary``.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nanlint.api import check_source  # noqa: E402
from nanlint.config import Config  # noqa: E402

HERE = Path(__file__).resolve().parent


def release_file(cache: Path, package: str, version: str, path: str, sdist: bool) -> str | None:
    """The text of ``path`` in ``package==version``, downloading and unpacking the release once."""
    where = cache / f"{package}-{version}"
    if not where.is_dir():
        archives = cache / "archives" / f"{package}-{version}"
        archives.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(archives), f"{package}=={version}"]
        if sdist:
            command += ["--no-binary", ":all:"]
        if subprocess.run(command, capture_output=True).returncode:
            return None
        for archive in archives.iterdir():
            if archive.suffix in (".whl", ".zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(where)
            elif archive.name.endswith((".tar.gz", ".tgz")):
                with tarfile.open(archive) as t:
                    t.extractall(where, filter="data")
    if sdist:
        tops = [p for p in where.iterdir() if p.is_dir()] if where.is_dir() else []
        candidates = [top / path for top in tops]
    else:
        candidates = [where / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.read_text(encoding="utf-8", errors="replace")
    return None


def flagged(source: str, line: int, every_rule: bool, strict: bool = False) -> list:
    config = Config(select=("ALL",), preview=True, strict=strict) if every_rule else Config(strict=strict)
    return [f for f in check_source(source, "release.py", config) if f.line == line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bugs", default=str(HERE / "labels" / "release_bugs.toml"))
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "nanlint-release-bugs"))
    parser.add_argument("--all", action="store_true", help="every rule, preview included (default: the default selection)")
    parser.add_argument("--strict", action="store_true", help="also the hazards only degenerate inputs reach")
    parser.add_argument("--verbose", action="store_true", help="print each bug's findings")
    args = parser.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    bugs = tomllib.loads(Path(args.bugs).read_text())["bug"]
    per_class: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    found = still = scored = 0
    for bug in bugs:
        sdist = bool(bug.get("sdist"))
        buggy = release_file(cache, bug["package"], bug["buggy_version"], bug["file"], sdist)
        fixed = release_file(cache, bug["package"], bug["fixed_version"], bug["file"], sdist)
        if buggy is None:
            print(f"{'UNAVAIL':7} {bug['id']}")
            continue
        scored += 1
        hit = flagged(buggy, int(bug["buggy_line"]), args.all, args.strict)
        after = flagged(fixed, int(bug["fixed_line"]), args.all, args.strict) if fixed is not None and int(bug.get("fixed_line", 0)) else []
        row = per_class[bug.get("bug_class", "other")]
        row[0] += 1
        row[1] += bool(hit)
        row[2] += bool(after)
        found += bool(hit)
        still += bool(after)
        mark = "found" if hit else "MISSED"
        print(f"{mark:7} {bug['id']:55} {bug.get('bug_class', ''):15} {', '.join(sorted({f.code for f in hit})) or '-'}"
              + (f"   (fixed still flagged: {', '.join(sorted({f.code for f in after}))})" if after else ""))
        if args.verbose:
            for f in hit + after:
                print(f"          {f.code} line {f.line}: {f.message}")
    print()
    print(f"{'class':16} {'bugs':>5} {'found':>6} {'fixed flagged':>14}")
    for name, (n, hit, after) in sorted(per_class.items()):
        print(f"{name:16} {n:5} {hit:6} {after:14}")
    print(f"found {found}/{scored} ({100 * found / max(scored, 1):.0f}%), fixed releases still flagged at the fixed line: {still}/{scored}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
