"""Kill-safe tracing: real traced scripts that delete the user's files, killed (SIGKILL, SIGTERM, SIGINT) at
several moments. The user's files never move: after any kill each one is in place with its content, and
nothing was added next to them. SIGTERM and SIGINT still write the report (exit 143 / 130, never 0 or 1).
The script itself sees its deletions and its own files."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from tests.trace_fixtures.helpers import ROOT, trace

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

USER_FILES = {"precious.txt": "precious\n", "notes.md": "# notes\n", "data/a.txt": "a\n", "data/sub/b.txt": "b\n",
              "out/old.ckpt": "last week's checkpoint\n"}

# prints a marker (flushed) at each moment the test kills at; argv: "once" or "loop"
SCRIPT = '''\
import os, pathlib, shutil, sys, time
import torch

model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
print("before", flush=True)
time.sleep(1.0)  # a kill right after "before" lands before the deletions
os.remove("precious.txt")
pathlib.Path("notes.md").unlink()
shutil.rmtree("out")
os.makedirs("out")
shutil.rmtree("data")
print("deleted", flush=True)
torch.save(model.state_dict(), "out/model.pt")
if sys.argv[1] == "loop":  # the kill lands somewhere inside these deletions and writes
    print("looping", flush=True)
    while True:
        with open("precious.txt", "w") as f:
            f.write("overwritten")
        os.remove("precious.txt")
        os.makedirs("data/sub", exist_ok=True)
        pathlib.Path("data/sub/b.txt").write_text("overwritten")
        shutil.rmtree("data")
        os.replace("out/model.pt", "out/moved.pt")
        os.rename("out/moved.pt", "out/model.pt")
print("sleeping", flush=True)
time.sleep(60)
model(torch.ones(1, 2)).sum().backward()
optimizer.step()
'''


def _project(tmp_path, script: str = SCRIPT):
    project = tmp_path / "project"
    for name, text in USER_FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "train.py").write_text(script)
    return project, _snapshot(project)


def _snapshot(folder) -> dict:
    """Every file and folder under ``folder`` (dot files too), with the files' content."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in folder.rglob("*")}


def _start(tmp_path, project, *options: str, mode: str = "once") -> subprocess.Popen:
    (tmp_path / "tmp").mkdir(exist_ok=True)  # the tracer's temporary folder: outside the user's, removed by pytest
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    return subprocess.Popen([sys.executable, "-m", "nanlint", "trace", "--device", "cpu", *options, "train.py", mode],
                            cwd=project, env=env, stdout=subprocess.PIPE, stderr=open(tmp_path / "stderr.txt", "w"),
                            text=True)


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 120.0) -> list[str]:
    """Read the script's output until the line ``marker``; kill the run if it never comes."""
    watchdog = threading.Timer(timeout, proc.kill)
    watchdog.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if lines[-1] == marker:
                return lines
    finally:
        watchdog.cancel()
    raise AssertionError(f"the script never printed {marker!r}: {lines}")


def _finish(proc: subprocess.Popen, timeout: float = 120.0) -> str:
    out, _ = proc.communicate(timeout=timeout)
    return out


@pytest.mark.parametrize("moment", ["before", "deleted", "sleeping", "looping"])
def test_sigkill_at_any_moment_leaves_every_user_file_in_place(tmp_path, moment):
    project, before = _project(tmp_path)
    proc = _start(tmp_path, project, mode="loop" if moment == "looping" else "once")
    try:
        _wait_for(proc, moment)
        if moment == "looping":
            time.sleep(0.3)  # inside the loop of deletions, writes and renames
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    # every file in place with its content; nothing added next to them (no *.nanlint-hidden-*, no copies)
    assert _snapshot(project) == before


def test_sigterm_stops_the_run_writes_the_report_and_exits_143(tmp_path):
    project, before = _project(tmp_path)
    proc = _start(tmp_path, project)
    _wait_for(proc, "sleeping")
    proc.send_signal(signal.SIGTERM)
    out = _finish(proc)
    assert proc.returncode == 143, out
    assert "Result: interrupted by SIGTERM during step 1 of 1; no non-finite value was produced until then " \
           "(exit 143)" in out
    assert "interrupted by SIGTERM during step 1 of 1; " in out  # the status line
    assert "the script saw it deleted; your file was left in place" in out
    stderr = (tmp_path / "stderr.txt").read_text()
    assert "Traceback" not in stderr and "Traceback" not in out
    assert _snapshot(project) == before


def test_sigint_writes_the_json_report_and_exits_130(tmp_path):
    import jsonschema

    from nanlint.trace.report import JSON_SCHEMA

    project, before = _project(tmp_path)
    report = tmp_path / "report.json"
    proc = _start(tmp_path, project, "--output-format", "json", "--output-file", str(report))
    _wait_for(proc, "sleeping")
    proc.send_signal(signal.SIGINT)
    _finish(proc)
    assert proc.returncode == 130, (tmp_path / "stderr.txt").read_text()
    data = json.loads(report.read_text())
    jsonschema.validate(data, JSON_SCHEMA)
    assert data["exit_code"] == 130
    assert (data["run"]["status"], data["run"]["stop_reason"]) == ("interrupted", "SIGINT")
    assert any(n.startswith("interrupted by SIGINT during step 1 of 1") for n in data["notes"])
    assert {(d["operation"], os.path.basename(d["path"])) for d in data["redirects"]} >= {
        ("remove", "precious.txt"), ("remove", "notes.md"), ("rmtree", "out"), ("rmtree", "data"),
        ("torch.save", "model.pt")}
    assert "Traceback" not in (tmp_path / "stderr.txt").read_text()
    assert _snapshot(project) == before


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to see when torch is being loaded")
def test_sigint_before_the_script_starts_exits_130(tmp_path):
    project, before = _project(tmp_path, "print('started', flush=True)\n" + SCRIPT)
    proc = _start(tmp_path, project)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:  # inside the trace: torch is being loaded
            try:
                if "libtorch" in open(f"/proc/{proc.pid}/maps").read():
                    break
            except OSError:
                pass
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        out = _finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 130, stderr
    assert "started" not in out
    assert "nanlint: interrupted by SIGINT before the script started" in stderr and "Traceback" not in stderr
    assert _snapshot(project) == before


VIEWS = '''\
import errno, glob, os, pathlib, shutil
import torch


def missing(call, *args):
    try:
        call(*args)
    except FileNotFoundError as exc:
        assert exc.errno == errno.ENOENT and str(exc).startswith("[Errno 2] No such file or directory"), exc
    else:
        raise AssertionError(f"{call.__name__}{args} saw a deleted file")


os.remove("precious.txt")
assert not os.path.exists("precious.txt") and not os.path.lexists("precious.txt")
assert not os.path.isfile("precious.txt") and not pathlib.Path("precious.txt").exists()
assert "precious.txt" not in os.listdir(".") and "precious.txt" not in [e.name for e in os.scandir(".")]
missing(open, "precious.txt")
missing(os.stat, "precious.txt")
missing(os.remove, "precious.txt")  # a second deletion fails as in a plain run
pathlib.Path("notes.md").unlink()
pathlib.Path("notes.md").unlink(missing_ok=True)
assert not any(p.name == "notes.md" for p in pathlib.Path(".").iterdir())
shutil.rmtree("data")
assert not os.path.isdir("data") and not os.path.exists("data/sub/b.txt") and not pathlib.Path("data").is_dir()
missing(shutil.rmtree, "data")
missing(os.listdir, "data")
missing(open, "data/a.txt")
assert glob.glob("data/*") == [] and list(pathlib.Path(".").glob("data/*")) == []
assert not [p for p in glob.glob("**/*.txt", recursive=True) if p.startswith("data")]
assert not any(root.startswith("./data") or "data" in dirs for root, dirs, _ in os.walk("."))
if os.path.exists("out"):
    shutil.rmtree("out")
os.makedirs("out")
assert os.path.isdir("out") and os.listdir("out") == [] and not os.path.exists("out/old.ckpt")
os.makedirs("out", exist_ok=True)
# its own files are where it wrote them
model = torch.nn.Linear(2, 1)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
torch.save(model.state_dict(), "out/model.pt")
assert os.path.exists("out/model.pt") and os.path.isfile("out/model.pt") and os.path.getsize("out/model.pt") > 0
assert os.listdir("out") == ["model.pt"] and [e.name for e in os.scandir("out") if e.is_file()] == ["model.pt"]
assert set(torch.load("out/model.pt")) == {"weight", "bias"}
pathlib.Path("precious.txt").write_text("written by the script")
assert pathlib.Path("precious.txt").read_text() == "written by the script" and "precious.txt" in os.listdir(".")
os.makedirs("logs/run1")
pathlib.Path("logs/run1/metrics.json").write_text("{}")
walked = {os.path.join(root, f) for root, _, files in os.walk(".") for f in files}
assert {"./out/model.pt", "./precious.txt", "./logs/run1/metrics.json"} <= walked, walked
assert not walked & {"./out/old.ckpt", "./notes.md", "./data/a.txt"}, walked
assert sorted(glob.glob("**/*.pt", recursive=True)) == ["out/model.pt"]
model(torch.ones(1, 2)).sum().backward()
optimizer.step()
'''


def test_the_script_sees_its_deletions_and_its_own_files_and_signal_handlers_are_restored(tmp_path, monkeypatch):
    project, before = _project(tmp_path, VIEWS)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    views = os.stat, os.lstat, os.listdir, os.scandir, os.mkdir
    monkeypatch.chdir(project)
    result = trace(project / "train.py")
    assert result.status == "stopped" and result.exit_code == 0, (result.error, result.script_traceback)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert (os.stat, os.lstat, os.listdir, os.scandir, os.mkdir) == views
    assert _snapshot(project) == before  # logs/ (created by the script) was removed: empty
    assert os.path.exists(project / "precious.txt") and "precious.txt" in os.listdir(project)
