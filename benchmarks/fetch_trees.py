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
    chosen = sets[args.set]
    if chosen.get("layout") == "package":
        return fetch_packages(chosen["packages"], args.dest)
    wheels = args.dest / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    for spec in chosen["packages"]:
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


PRUNED = ("tests", "test", "docs", "doc", "examples", "tutorials")


def fetch_packages(specs: list[str], dest: Path) -> int:
    """``layout = "package"``: each package's sources in DEST/<name>/ as its labels name them: the sdist
    (the wheel where there is none) with its top folder stripped, Python files only, without the folders of
    tests, docs and examples and without test modules (``*_test.py``, ``test_*.py``, ``conftest.py``)."""
    import shutil
    import tempfile

    for spec in specs:
        name = spec.split("==")[0]
        target = dest / name
        if target.exists():
            continue
        with tempfile.TemporaryDirectory() as tmp:
            got = Path(tmp)
            done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--no-binary", name,
                                   "-d", str(got), spec])
            if done.returncode:
                done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(got), spec])
            archives = list(got.iterdir())
            if done.returncode or len(archives) != 1:
                print(f"fetch_trees: cannot download {spec}", file=sys.stderr)
                return 2
            unpacked = got / "unpacked"
            archive = archives[0]
            if archive.suffix in (".whl", ".zip"):
                with zipfile.ZipFile(archive) as z:
                    z.extractall(unpacked)
            else:
                with tarfile.open(archive) as t:
                    t.extractall(unpacked, filter="data")
            tops = list(unpacked.iterdir())
            root = tops[0] if archive.suffix != ".whl" and len(tops) == 1 and tops[0].is_dir() else unpacked
            for path in sorted(root.rglob("*.py")):
                rel = path.relative_to(root)
                if any(part in PRUNED for part in rel.parts[:-1]) or _test_module(rel.name):
                    continue
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / rel)
        print(target)
    return 0


def _test_module(filename: str) -> bool:
    return filename == "conftest.py" or filename.startswith("test_") or filename.endswith("_test.py")


if __name__ == "__main__":
    raise SystemExit(main())
