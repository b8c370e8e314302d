"""The persistent result cache: ``.nanlint_cache/`` in the project root (the configuration's folder).

One JSON file per (nanlint version, code and catalog fingerprint, effective configuration); inside it one
entry per checked path: the blake2b hash of the file's bytes, the rule codes that applied to it, and its
findings and internal errors as plain values. An entry is used only when the hash and the codes match.

Two runs may share the cache: writes go to a temporary file that ``os.replace`` moves into place, after
merging whatever another run wrote meanwhile, so a reader sees an old or a new file, never half of one.
Anything that does not validate (a corrupt, truncated, foreign or older-format file) is ignored and
rebuilt: the cache is data, never code (no pickle).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from nanlint.findings import Applicability, Confidence, Edit, Finding, Fix, InternalError, Severity, Span

DIRNAME = ".nanlint_cache"
FORMAT = 1
#: entries not used for this many days are dropped when the cache is written
KEEP_DAYS = 30


class CacheFormatError(ValueError):
    """A cache file that does not have the expected shape."""


def content_hash(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@functools.lru_cache(maxsize=None)
def code_fingerprint() -> str:
    """A hash of nanlint's own code and rule catalog: any edit to a rule (or its TOML) invalidates the cache."""
    from nanlint import __version__
    from nanlint.catalog import catalog_dir

    package = Path(__file__).resolve().parent
    digest = hashlib.blake2b(__version__.encode(), digest_size=16)
    files = sorted(package.rglob("*.py"))
    try:
        files += sorted(catalog_dir().glob("*.toml"))
    except Exception:  # no catalog: the run fails elsewhere with a clear message
        pass
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        digest.update(str(path.relative_to(path.parent.parent)).encode())
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def codes_key(codes: frozenset[str]) -> str:
    return ",".join(sorted(codes))


class Cache:
    """Results by path for one configuration. ``get`` and ``put`` work in memory; ``save`` writes once."""

    def __init__(self, root: str | os.PathLike, config_fingerprint: str):
        from nanlint import __version__

        self.folder = Path(root) / DIRNAME
        key = hashlib.blake2b(f"{__version__}|{code_fingerprint()}|{config_fingerprint}".encode(), digest_size=8).hexdigest()
        self.path = self.folder / f"results-{key}.json"
        self.key = key
        self.today = int(time.time() // 86400)
        self._entries: dict[str, dict] = self._load()
        self._dirty: set[str] = set()

    # ---- reading ----
    def _load(self) -> dict[str, dict]:
        try:
            raw = self.path.read_bytes()
        except OSError:
            return {}
        try:
            return _validate(json.loads(raw), self.key)
        except (ValueError, UnicodeDecodeError, RecursionError, CacheFormatError):
            return {}  # corrupt or foreign: ignored, and replaced on the next save

    def get(self, path: str, digest: str, codes: frozenset[str]) -> tuple[list[Finding], list[InternalError]] | None:
        entry = self._entries.get(path)
        if entry is None or entry["hash"] != digest or entry["codes"] != codes_key(codes):
            return None
        try:
            findings = [_finding(item, path) for item in entry["findings"]]
            errors = [InternalError(path, str(e["rule"]), str(e["message"])) for e in entry["errors"]]
        except (KeyError, TypeError, ValueError):
            return None
        if entry.get("used") != self.today:
            entry["used"] = self.today
            self._dirty.add(path)
        return findings, errors

    # ---- writing ----
    def put(self, path: str, digest: str, codes: frozenset[str], findings: list[Finding], errors: list[InternalError]) -> None:
        self._entries[path] = {
            "hash": digest,
            "codes": codes_key(codes),
            "used": self.today,
            "findings": [_finding_dict(f) for f in findings],
            "errors": [{"rule": e.rule, "message": e.message} for e in errors],
        }
        self._dirty.add(path)

    def save(self) -> None:
        """Write the entries this run touched, merged with what is on disk now. Never raises for I/O."""
        if not self._dirty:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                _atomic_write(ignore, b"# created by nanlint: the cache is not part of the project\n*\n")
            merged = self._load()  # another run may have written meanwhile
            for path in self._dirty:
                merged[path] = self._entries[path]
            horizon = self.today - KEEP_DAYS
            merged = {p: e for p, e in merged.items() if e.get("used", 0) >= horizon}
            document = {"format": FORMAT, "key": self.key, "entries": merged}
            _atomic_write(self.path, json.dumps(document, separators=(",", ":")).encode())
            _drop_stale_files(self.folder, keep=self.path)
        except OSError:
            return  # a read-only project still gets checked, only without a cache
        self._entries = merged
        self._dirty.clear()


def _drop_stale_files(folder: Path, keep: Path) -> None:
    """Result files of configurations or nanlint versions not used for ``KEEP_DAYS`` (and temporary files
    a killed run left behind a day ago) are deleted."""
    now = time.time()
    for path in folder.iterdir():
        if path == keep or not (path.name.startswith("results-") and path.suffix in (".json", ".tmp")):
            continue
        try:
            age = now - path.stat().st_mtime
            if age > KEEP_DAYS * 86400 or (path.suffix == ".tmp" and age > 86400):
                path.unlink()
        except OSError:
            pass


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache is as readable as the project
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ---- (de)serialisation: plain JSON values, checked field by field ----
def _finding_dict(f: Finding) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": f.code, "name": f.name, "message": f.message, "span": _span_list(f.span),
        "severity": f.severity.value, "confidence": f.confidence.value,
    }
    if f.hint is not None:
        out["hint"] = f.hint
    if f.fix is not None:
        out["fix"] = {
            "message": f.fix.message,
            "applicability": f.fix.applicability.value,
            "edits": [[_span_list(e.span), e.content] for e in f.fix.edits],
        }
    if f.extra:
        out["extra"] = json.loads(json.dumps(f.extra, default=str))
    return out


def _span_list(span: Span) -> list[int]:
    return [span.line, span.column, span.end_line, span.end_column]


def _span(value: Any) -> Span:
    if not (isinstance(value, list) and len(value) == 4 and all(type(v) is int for v in value)):
        raise CacheFormatError("bad span")
    return Span(*value)


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise CacheFormatError("expected a string")
    return value


def _finding(item: Any, filename: str) -> Finding:
    if not isinstance(item, dict):
        raise CacheFormatError("finding must be an object")
    fix = None
    raw_fix = item.get("fix")
    if raw_fix is not None:
        if not isinstance(raw_fix, dict) or not isinstance(raw_fix.get("edits"), list):
            raise CacheFormatError("bad fix")
        edits = []
        for edit in raw_fix["edits"]:
            if not (isinstance(edit, list) and len(edit) == 2):
                raise CacheFormatError("bad edit")
            edits.append(Edit(_span(edit[0]), _str(edit[1])))
        fix = Fix(_str(raw_fix.get("message")), tuple(edits), Applicability(raw_fix.get("applicability")))
    hint = item.get("hint")
    extra = item.get("extra", {})
    if not isinstance(extra, dict):
        raise CacheFormatError("bad extra")
    return Finding(
        code=_str(item.get("code")),
        name=_str(item.get("name")),
        message=_str(item.get("message")),
        filename=filename,
        span=_span(item.get("span")),
        severity=Severity(item.get("severity")),
        confidence=Confidence(item.get("confidence")),
        fix=fix,
        hint=_str(hint) if hint is not None else None,
        extra=extra,
    )


def _validate(document: Any, key: str) -> dict[str, dict]:
    """The entries of a cache document, checked down to every finding; raises CacheFormatError."""
    if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("key") != key:
        raise CacheFormatError("not a nanlint cache of this version and configuration")
    entries = document.get("entries")
    if not isinstance(entries, dict):
        raise CacheFormatError("no entries")
    for path, entry in entries.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str) or not isinstance(entry.get("codes"), str):
            raise CacheFormatError(f"bad entry for {path}")
        if type(entry.get("used")) is not int or not isinstance(entry.get("findings"), list) or not isinstance(entry.get("errors"), list):
            raise CacheFormatError(f"bad entry for {path}")
        for item in entry["findings"]:
            _finding(item, path)  # raises on anything malformed
        for error in entry["errors"]:
            if not isinstance(error, dict) or not isinstance(error.get("rule"), str) or not isinstance(error.get("message"), str):
                raise CacheFormatError(f"bad error for {path}")
    return entries
