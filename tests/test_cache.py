"""The result cache: same results as without it, invalidated by content, configuration and code, and
never trusting what it reads."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from nanlint import cache as cache_module
from nanlint import engine
from nanlint.cache import DIRNAME, Cache
from nanlint.config import Config
from nanlint.runner import check_files

RISKY = "import torch\nimport torch.nn.functional as F\n\ndef f(x):\n    return torch.log(F.softmax(x, dim=-1))\n"
CLEAN = "import torch\n\ndef f(x):\n    return torch.log_softmax(x, dim=-1)\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "risky.py").write_text(RISKY)
    (tmp_path / "clean.py").write_text(CLEAN)
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    return tmp_path


def _files(project: Path) -> list[str]:
    return [str(p) for p in sorted(project.glob("*.py"))]


def _config(project: Path, **changes) -> Config:
    return replace(Config(root=str(project)), **changes)


def _forbid_analysis(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("analyze() called although the cache should answer")

    monkeypatch.setattr(engine, "analyze", fail)


def _summary(results):
    return [(r.filename, r.findings, r.errors) for r in results]


def test_cached_results_equal_uncached(project, monkeypatch):
    config = _config(project)
    uncached = check_files(_files(project), config, jobs=1, use_cache=False)
    assert not (project / DIRNAME).exists()
    first = check_files(_files(project), config, jobs=1)
    codes = {f.code for r in first for f in r.findings}
    assert {"NAN101", "NAN000", "NAN001"} <= codes
    _forbid_analysis(monkeypatch)
    second = check_files(_files(project), config, jobs=1)
    assert _summary(second) == _summary(first) == _summary(uncached)
    fixes = [f.fix for r in second for f in r.findings if f.fix is not None]
    assert fixes and fixes[0].edits[0].content == "F.log_softmax(x, dim=-1)"


def test_cache_folder_is_git_ignored(project):
    check_files(_files(project), _config(project), jobs=1)
    ignore = project / DIRNAME / ".gitignore"
    assert "*" in ignore.read_text().splitlines()


def test_changed_content_is_checked_again(project, monkeypatch):
    config = _config(project)
    check_files(_files(project), config, jobs=1)
    (project / "clean.py").write_text(RISKY)
    calls = []
    real = engine.analyze
    monkeypatch.setattr(engine, "analyze", lambda source, name, options: calls.append(name) or real(source, name, options))
    results = check_files(_files(project), config, jobs=1)
    assert calls == [str(project / "clean.py")]
    assert [f.code for f in results[1].findings] == ["NAN101"]


def test_configuration_change_invalidates(project, monkeypatch):
    check_files(_files(project), _config(project), jobs=1)
    ignoring = _config(project, ignore=("NAN101",))
    calls = []
    real = engine.analyze
    monkeypatch.setattr(engine, "analyze", lambda *a: calls.append(a[1]) or real(*a))
    results = check_files(_files(project), ignoring, jobs=1)
    assert len(calls) == 3  # every decodable file again (the undecodable one never reaches analyze)
    assert "NAN101" not in {f.code for r in results for f in r.findings}


def test_code_change_invalidates(project, monkeypatch):
    config = _config(project)
    check_files(_files(project), config, jobs=1)
    monkeypatch.setattr(cache_module, "code_fingerprint", lambda: "another nanlint")
    assert Cache(project, config.fingerprint())._entries == {}


def test_per_file_codes_are_part_of_the_key(project):
    config = _config(project)
    check_files(_files(project), config, jobs=1)
    narrowed = _config(project, per_file_ignores={"risky.py": ("NAN101",)})
    results = check_files(_files(project), narrowed, jobs=1)
    assert [f.code for f in results[-1].findings] == []


@pytest.mark.parametrize("garbage", [
    b"\x00\x01not json",
    b'{"format": 1}',
    b"[1, 2, 3]",
    b'{"format": 1, "key": "KEY", "entries": {"x": {"hash": 1}}}',
    b'{"format": 1, "key": "KEY", "entries": {"PATH": {"hash": "H", "codes": "C", "used": 1, "findings": [{"code": 5}], "errors": []}}}',
    b'{"format": 1, "key": "KEY", "entries": {"PATH": {"hash": "H", "codes": "C", "used": 1, "findings": [], "errors": [{"rule": []}]}}}',
])
def test_corrupt_or_foreign_cache_is_ignored_and_rebuilt(project, monkeypatch, garbage):
    config = _config(project)
    expected = _summary(check_files(_files(project), config, jobs=1, use_cache=False))
    check_files(_files(project), config, jobs=1)
    path = next((project / DIRNAME).glob("results-*.json"))
    key = path.stem.split("-", 1)[1]
    path.write_bytes(garbage.replace(b"KEY", key.encode()).replace(b"PATH", str(project / "risky.py").encode()))
    assert Cache(project, config.fingerprint())._entries == {}
    assert _summary(check_files(_files(project), config, jobs=1)) == expected
    document = json.loads(path.read_text())
    assert set(document["entries"]) == {str(p) for p in _files(project)}


def test_a_tampered_entry_is_not_trusted_beyond_its_hash(project, monkeypatch):
    """An entry whose hash does not match the file is a miss, whatever findings it claims."""
    config = _config(project)
    check_files(_files(project), config, jobs=1)
    path = next((project / DIRNAME).glob("results-*.json"))
    document = json.loads(path.read_text())
    entry = document["entries"][str(project / "clean.py")]
    entry["findings"] = document["entries"][str(project / "risky.py")]["findings"]
    entry["hash"] = "0" * 32
    path.write_text(json.dumps(document))
    results = check_files(_files(project), config, jobs=1)
    assert results[1].findings == []


def test_two_runs_sharing_the_cache_keep_both_results(project):
    config = _config(project)
    first, second = Cache(project, config.fingerprint()), Cache(project, config.fingerprint())
    first.put("/a.py", "h1", frozenset({"NAN101"}), [], [])
    second.put("/b.py", "h2", frozenset({"NAN101"}), [], [])
    first.save()
    second.save()
    merged = Cache(project, config.fingerprint())
    assert merged.get("/a.py", "h1", frozenset({"NAN101"})) == ([], [])
    assert merged.get("/b.py", "h2", frozenset({"NAN101"})) == ([], [])
    assert [p.name for p in (project / DIRNAME).iterdir() if p.name.endswith(".tmp")] == []


def test_unwritable_cache_folder_is_not_an_error(project):
    (project / DIRNAME).write_text("a file where the folder should be")
    results = check_files(_files(project), _config(project), jobs=1)
    assert "NAN101" in {f.code for r in results for f in r.findings}


def test_stale_result_files_are_dropped(project):
    import os
    import time

    config = _config(project)
    folder = project / DIRNAME
    folder.mkdir()
    old, recent = folder / "results-0000000000000000.json", folder / "results-1111111111111111.json"
    for path in (old, recent):
        path.write_text("{}")
    long_ago = time.time() - (cache_module.KEEP_DAYS + 1) * 86400
    os.utime(old, (long_ago, long_ago))
    check_files(_files(project), config, jobs=1)
    assert not old.exists() and recent.exists()
    assert len(list(folder.glob("results-*.json"))) == 2
