"""Download and unpack a set of real source trees listed in benchmarks/trees.toml, for precision_eval.py and
check_speed.py. Third-party code never enters the repository: it goes to DEST.

    python benchmarks/fetch_trees.py unseen-2026-12-03 /tmp/trees
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

TREES = Path(__file__).with_name("trees.toml")


def main() -> int:
    sets = tomllib.loads(TREES.read_text())["sets"]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set", choices=sorted(sets))
    parser.add_argument("dest", type=Path)
    args = parser.parse_args()
    wheels = args.dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for spec in sets[args.set]["packages"]:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), spec])
        if done.returncode:
            print(f"fetch_trees: cannot download {spec}", file=sys.stderr)
            return 2
    for archive in sorted(wheels.iterdir()):
        name = archive.name.split("-")[0]
        target = args.dest / name
        if target.exists():
            continue
        if archive.suffix == ".whl" or archive.suffix == ".zip":
            with zipfile.ZipFile(archive) as z:
                z.extractall(target)
        elif archive.name.endswith((".tar.gz", ".tgz")):
            with tarfile.open(archive) as t:
                t.extractall(target, filter="data")
        print(f"{target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
