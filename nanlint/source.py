"""Reading a file's text: PEP 263 coding lines honoured; unreadable or undecodable files become a NAN001
finding rather than an exception."""
from __future__ import annotations

import io
import os
import tokenize
from dataclasses import dataclass

from nanlint.findings import Finding, Severity, Span


@dataclass(frozen=True)
class SourceText:
    filename: str
    text: str | None
    problem: Finding | None = None


def _problem(filename: str, message: str) -> Finding:
    return Finding("NAN001", "unreadable-file", message, filename, Span(1, 1, 1, 1), Severity.ERROR)


def decode(data: bytes, filename: str) -> SourceText:
    if b"\x00" in data:
        return SourceText(filename, None, _problem(filename, "binary file (contains NUL bytes), not Python source"))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        return SourceText(filename, None, _problem(filename, f"bad coding declaration: {exc.msg}"))
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        return SourceText(filename, None, _problem(filename, f"cannot decode as {encoding}{where}: {reason}"))
    if text.startswith("\ufeff"):
        text = text[1:]
    return SourceText(filename, text)


def read(filename: str) -> SourceText:
    try:
        with open(filename, "rb") as handle:
            data = handle.read()
    except IsADirectoryError:
        return SourceText(filename, None, _problem(filename, "is a directory, not a file"))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if os.path.islink(filename) and not os.path.exists(filename):
            reason = "dangling symbolic link" if exc.errno != 40 else "symbolic link loop"
        return SourceText(filename, None, _problem(filename, f"cannot read: {reason}"))
    return decode(data, filename)
