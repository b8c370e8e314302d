"""The README's reliability table, one test per row: what was tried against ``nanlint check`` and what
happens. Nothing the user owns is lost, no input takes the run down, nothing is silent."""
from __future__ import annotations

import faulthandler
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from nanlint import api, runner
from nanlint.cli import main
from nanlint.config import Config

RISKY = "import torch\nimport torch.nn.functional as F\ny = torch.log(F.softmax(x, dim=-1))\n"
FIXED = "import torch\nimport torch.nn.functional as F\ny = F.log_softmax(x, dim=-1)\n"


def check(*args: str):
    return CliRunner().invoke(main, ["check", "--no-cache", "--output-format", "concise", *args], catch_exceptions=False)


def codes_by_file(result) -> dict[str, list[str]]:
    assert "Traceback" not in result.output
    out: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        if ": NAN" in line:
            name, rest = line.split(":", 1)
            out.setdefault(Path(name).name, []).append("NAN" + rest.split(" NAN", 1)[1][:3])
    return out


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


# ---- atomic writes ---------------------------------------------------------------------------------------
def _fix_in_subprocess(folder: Path, *names: str, fsize: int | None = None) -> subprocess.CompletedProcess:
    def limit():
        if fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([sys.executable, "-m", "nanlint", "check", "--no-cache", "--fix", "--output-format", "concise", *names],
                          cwd=folder, capture_output=True, text=True, preexec_fn=limit, timeout=120)


def test_fix_past_a_file_size_limit_leaves_that_file_intact_and_fixes_the_others(here):
    big = RISKY + "# padding\n" * 3000  # 30 KB: over the limit once rewritten
    (here / "big.py").write_text(big)
    (here / "small.py").write_text(RISKY)
    done = _fix_in_subprocess(here, "big.py", "small.py", fsize=20_000)
    assert done.returncode == 2, done.stderr
    assert "cannot write big.py: File too large; the file is unchanged" in done.stderr
    assert "Traceback" not in done.stderr
    assert (here / "big.py").read_text() == big
    assert (here / "small.py").read_text() == FIXED
    assert "big.py:3:5: NAN101" in done.stdout  # its finding is still reported
    assert "Fixed 1 problem." in done.stdout
    assert sorted(p.name for p in here.iterdir()) == ["big.py", "small.py"]  # no temporary file left


def test_fix_on_a_full_disk_leaves_the_file_intact(here, monkeypatch):
    """The temporary file is /dev/full, which fails every write with ENOSPC as a full file system does."""
    (here / "model.py").write_text(RISKY)
    real_mkstemp = tempfile.mkstemp
    made = []

    def full_disk(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        made.append(path)
        os.dup2(os.open("/dev/full", os.O_WRONLY), fd)
        return fd, path

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    result = check("--fix", "model.py")
    assert result.exit_code == 2
    assert "cannot write model.py: No space left on device; the file is unchanged" in result.stderr
    assert (here / "model.py").read_text() == RISKY
    assert made and not any(os.path.exists(p) for p in made)


def test_fix_on_a_real_full_tmpfs_leaves_the_file_intact(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs needs root; test_fix_on_a_full_disk_leaves_the_file_intact covers ENOSPC")
    try:
        source = RISKY + "# pad\n" * 1200  # 7 KB: the rewrite needs a second copy beside it
        (mount / "model.py").write_text(source)
        (mount / "filler").write_bytes(b"\0" * 6000)
        done = _fix_in_subprocess(mount, "model.py")
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "No space left on device; the file is unchanged" in done.stderr
        assert (mount / "model.py").read_text() == source
        assert sorted(p.name for p in mount.iterdir()) == ["filler", "model.py"]
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_fix_writes_through_a_symlink_and_keeps_the_mode(here):
    (here / "real.py").write_text(RISKY)
    os.chmod(here / "real.py", 0o750)
    os.symlink("real.py", here / "link.py")
    result = check("--fix", "link.py")
    assert result.exit_code == 0, result.output
    assert os.path.islink(here / "link.py")
    assert (here / "real.py").read_text() == FIXED
    assert os.stat(here / "real.py").st_mode & 0o777 == 0o750


# ---- no input takes the run down -----------------------------------------------------------------------
DEEP = {
    "lambdas.py": ("f = " + "lambda: " * 5000 + "1\n", "NAN000 MemoryError"),
    "attributes.py": ("x = a" + ".b" * 20000 + "\n", "NAN000 RecursionError: maximum recursion depth exceeded during compilation"),
    "sum.py": ("x = " + "+".join(["1"] * 50000) + "\n", "NAN000 RecursionError: maximum recursion depth exceeded during compilation"),
}


@pytest.mark.parametrize("name", sorted(DEEP))
def test_what_python_cannot_compile_is_nan000_in_pythons_words(here, name):
    source, expected = DEEP[name]
    (here / name).write_text(source)
    result = check(name)
    assert result.exit_code == 1
    [line] = [line for line in result.stdout.splitlines() if ": NAN" in line]
    assert line.startswith(f"{name}:1:1: {expected}")


def test_deep_files_in_a_folder_with_two_jobs_lose_no_other_finding(here):
    for name, (source, _) in DEEP.items():
        (here / name).write_text(source)
    for i in range(23):
        (here / f"m{i:02}.py").write_text(RISKY)
    result = check("-j", "2", ".")
    found = codes_by_file(result)
    assert {name: found.get(name) for name in DEEP} == {name: ["NAN000"] for name in DEEP}
    assert all(found.get(f"m{i:02}.py") == ["NAN101"] for i in range(23)), found
    assert result.exit_code == 1


def test_a_long_generated_sum_keeps_the_files_real_finding(here):
    (here / "gen.py").write_text("x = " + " + ".join(f"w{i}" for i in range(2500)) + "\n" + RISKY)
    result = check("gen.py")
    assert codes_by_file(result) == {"gen.py": ["NAN101"]}
    assert result.exit_code == 1


def _generated(lines: int) -> str:
    return "import torch\n" + "".join(f"w{i} = torch.tensor([{i}.0]) * s\n" for i in range(lines)) + RISKY


def test_a_file_over_the_token_limit_is_reported_not_analysed(here):
    (here / "generated.py").write_text(_generated(40000))  # 2 GB of libcst tree if it were parsed
    result = check("generated.py")
    [line] = [line for line in result.stdout.splitlines() if ": NAN" in line]
    assert line.startswith("generated.py:1:1: NAN001 too large to analyse: ")
    assert "over the limit of 250,000 (`max-file-tokens`" in line


def test_the_token_limit_is_a_setting(here):
    (here / "generated.py").write_text(_generated(3000))  # about 36,000 tokens
    (here / "pyproject.toml").write_text("[tool.nanlint]\nmax-file-tokens = 20000\n")
    assert codes_by_file(check("generated.py")) == {"generated.py": ["NAN001"]}
    (here / "pyproject.toml").write_text("[tool.nanlint]\nmax-file-tokens = 100000\n")
    assert codes_by_file(check("generated.py")) == {"generated.py": ["NAN101"]}
    (here / "pyproject.toml").write_text("[tool.nanlint]\nmax-file-tokens = 'big'\n")
    bad = check("generated.py")
    assert bad.exit_code == 2 and "max-file-tokens" in bad.stderr and "Traceback" not in bad.output


def test_a_large_string_literal_is_one_token(here):
    (here / "weights.py").write_text('BLOB = """\n' + "AAAA BBBB CCCC\n" * 200_000 + '"""\n' + RISKY)
    assert codes_by_file(check("weights.py")) == {"weights.py": ["NAN101"]}


def test_a_worker_that_dies_is_reported_for_its_file_only(here, monkeypatch):
    """A crash in native code (here a real SIGSEGV) in one worker: that file is an engine error, every
    other file's findings are printed."""
    for i in range(30):
        (here / f"m{i:02}.py").write_text(RISKY)
    (here / "m13.py").write_text("# crash here\n" + RISKY)
    real = runner.check_one

    def crashing(filename, options):
        if filename.endswith("m13.py"):
            faulthandler.disable()  # pytest's handler would print this worker's stack
            os.kill(os.getpid(), signal.SIGSEGV)
        return real(filename, options)

    monkeypatch.setattr(runner, "check_one", crashing)
    totals = runner.run_paths(["."], Config(), jobs=2, use_cache=False)
    files = sorted({Path(f.filename).name for f in totals.findings})
    assert files == [f"m{i:02}.py" for i in range(30) if i != 13]
    assert [(Path(e.filename).name, e.rule) for e in totals.errors] == [("m13.py", "engine")]
    assert "SIGSEGV" in totals.errors[0].message


# ---- nothing silent --------------------------------------------------------------------------------------
@pytest.mark.parametrize("comment", ["# noqa: XYZ", "# noqa: type-ignore", "# noqa:", "# noqa: NAN1O1"])
def test_a_malformed_noqa_suppresses_nothing_and_is_reported(here, comment):
    (here / "m.py").write_text(RISKY.rstrip("\n") + f"  {comment}\n")
    result = check("m.py")
    assert codes_by_file(result) == {"m.py": ["NAN101", "NAN003"]}
    assert "it suppresses nothing" in result.stdout


@pytest.mark.parametrize("comment, message", [
    ("# noqa: NAN1O1", "`NAN1O1` is neither a rule code nor a nanlint rule name (did you mean `NAN101`?)"),
    ("# noqa: log-of-probabilty", "(did you mean `log-of-probability`?)"),
    ("# noqa: NAN999", "Unknown code in a `noqa` directive, it suppresses nothing: `NAN999` is not a nanlint rule code"),
])
def test_a_mistyped_noqa_names_the_closest_code(here, comment, message):
    (here / "m.py").write_text(RISKY.rstrip("\n") + f"  {comment}\n")
    result = check("m.py")
    assert codes_by_file(result) == {"m.py": ["NAN101", "NAN003"]}
    assert message in result.stdout


@pytest.mark.parametrize("comment", ["# noqa: log-of-probability", "# noqa: NAN101 bounded upstream", "# noqa: E501, NAN101"])
def test_a_noqa_by_code_or_rule_name_suppresses(here, comment):
    (here / "m.py").write_text(RISKY.rstrip("\n") + f"  {comment}\n")
    result = check("m.py")
    assert result.exit_code == 0 and codes_by_file(result) == {}


def test_an_unreadable_folder_is_nan001(here, monkeypatch):
    """chmod 000 does not stop root: make listing this one folder fail as it does for other users."""
    (here / "locked").mkdir()
    (here / "locked" / "m.py").write_text(RISKY)
    (here / "open.py").write_text(RISKY)
    real = os.scandir

    def guarded(path="."):
        if os.path.basename(os.fspath(path)) == "locked":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", guarded)
    for args in ([".", "--select", "NAN101"], ["locked"]):
        result = check(*args)
        lines = [line for line in result.stdout.splitlines() if ": NAN001" in line]
        assert lines == ["locked:1:1: NAN001 cannot read folder: Permission denied"], result.output
        assert result.exit_code == 1


@pytest.mark.parametrize("target, message", [
    ("missing/report.txt", "cannot write missing/report.txt: its folder does not exist"),
    ("missing", "'missing' is a directory"),
])
def test_an_unwritable_output_file_fails_before_the_check(here, monkeypatch, target, message):
    (here / "m.py").write_text(RISKY)
    (here / "missing").mkdir() if target == "missing" else None

    def never(*args, **kwargs):
        raise AssertionError("the check ran")

    monkeypatch.setattr(api, "run", never)
    result = check("-o", target, "m.py")
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output


def test_ctrl_c_exits_130_not_1(here, monkeypatch):
    (here / "m.py").write_text(RISKY)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "run", interrupted)
    result = check("m.py")
    assert result.exit_code == 130
    assert result.stderr.strip() == "nanlint: interrupted"


def test_ctrl_c_of_a_real_run_exits_130(here):
    for i in range(60):
        (here / f"m{i:02}.py").write_text(RISKY * 20)
    process = subprocess.Popen([sys.executable, "-m", "nanlint", "check", "--no-cache", "-j", "2", "."], cwd=here,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        process.communicate(timeout=1.0)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    if process.returncode in (0, 1):
        pytest.fail("the run ended before it could be interrupted: give it more files")
    assert process.returncode == 130, err
    assert "Traceback" not in err and "nanlint: interrupted" in err


@pytest.mark.parametrize("fmt", ["sarif", "json", "github", "concise", "full"])
def test_every_format_handles_a_file_name_that_is_not_utf8(here, fmt):
    name = os.fsdecode(b"bad\xff.py")
    Path(name).write_text(RISKY)
    result = subprocess.run([sys.executable, "-m", "nanlint", "check", "--no-cache", "--output-format", fmt, "."],
                            cwd=here, capture_output=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert b"Traceback" not in result.stderr and b"error" not in result.stderr
    if fmt == "sarif":
        log = json.loads(result.stdout)
        location = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "bad%FF.py"
    elif fmt == "json":
        assert json.loads(result.stdout)[0]["filename"] == name
    else:
        assert b"bad" in result.stdout and b"NAN101" in result.stdout
