"""Reading a file's text: PEP 263 coding lines honoured; unreadable or undecodable files become a NAN001
finding rather than an exception. Also the one place that knows how to write a fixed file back (same
encoding, same BOM, same line endings) and how to phrase a syntax error the way Python does."""
from __future__ import annotations

import ast
import errno
import io
import os
import re
import stat
import tokenize
import warnings
from dataclasses import dataclass

from nanlint.findings import Finding, Severity, Span

# The line breaks Python (and libcst) count; ``str.splitlines`` also splits on \f, \v, \x1c.. and would shift
# every line number after a form feed.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class SourceText:
    filename: str
    text: str | None
    problem: Finding | None = None
    encoding: str = "utf-8"
    bom: bool = False


def _problem(filename: str, message: str) -> Finding:
    return Finding("NAN001", "unreadable-file", message, filename, Span(1, 1, 1, 1), Severity.ERROR)


def lines(text: str) -> list[str]:
    """The source lines without their line breaks, split the way Python counts lines."""
    out = LINE_BREAK.split(text)
    if out and out[-1] == "":
        out.pop()
    return out


def line_starts(text: str) -> list[int]:
    """Offset of the first character of each line (1-based line n starts at ``line_starts(text)[n - 1]``)."""
    starts = [0]
    starts.extend(match.end() for match in LINE_BREAK.finditer(text))
    return starts


def decode(data: bytes, filename: str) -> SourceText:
    if b"\x00" in data:
        return SourceText(filename, None, _problem(filename, "binary file (contains NUL bytes), not Python source"))
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        return SourceText(filename, None, _problem(filename, f"bad coding declaration: {exc.msg}"))
    bom = encoding == "utf-8-sig"
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        reason = exc.reason if isinstance(exc, UnicodeDecodeError) else str(exc)
        where = f" at byte {exc.start}" if isinstance(exc, UnicodeDecodeError) else ""
        shown = "utf-8" if bom else encoding
        return SourceText(filename, None, _problem(filename, f"cannot decode as {shown}{where}: {reason}"))
    if text.startswith("\ufeff"):
        text = text[1:]
    return SourceText(filename, text, encoding="utf-8" if bom else encoding, bom=bom)


def _os_reason(filename: str, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symbolic link loop"
    if exc.errno == errno.ENOENT and os.path.islink(filename):
        return "dangling symbolic link (target does not exist)"
    return exc.strerror or str(exc)


def read(filename: str) -> SourceText:
    """The decoded text of ``filename``, or a NAN001 finding saying in one line why it cannot be had."""
    try:
        info = os.stat(filename)
    except OSError as exc:
        return SourceText(filename, None, _problem(filename, f"cannot read: {_os_reason(filename, exc)}"))
    if stat.S_ISDIR(info.st_mode):
        return SourceText(filename, None, _problem(filename, "is a directory, not a file"))
    if not stat.S_ISREG(info.st_mode):
        # a FIFO or device would block or never end
        return SourceText(filename, None, _problem(filename, "not a regular file (FIFO, socket or device)"))
    try:
        with open(filename, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return SourceText(filename, None, _problem(filename, f"cannot read: {_os_reason(filename, exc)}"))
    return decode(data, filename)


def write(filename: str, original: SourceText, text: str) -> None:
    """Write a fixed ``text`` back with the encoding and BOM the file had; line endings are kept as they
    are in ``text`` (it was read without newline translation)."""
    data = text.encode(original.encoding)
    if original.bom:
        data = b"\xef\xbb\xbf" + data
    with open(filename, "wb") as handle:
        handle.write(data)


_LIBCST_PREFIX = re.compile(r"^(?:parser error: )?error at \d+:\d+: ")


def syntax_error(source: str, filename: str, fallback: Finding) -> Finding:
    """A NAN000 finding phrased as Python phrases it (``SyntaxError: expected ':'``, at Python's position).

    libcst's own messages (``parser error: error at 8:0: expected one of ->, :``) are replaced by what
    ``compile`` says; when Python accepts the file (libcst rejects a few constructs Python allows) the libcst
    message is kept, cleaned of its prefix."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        kind = type(exc).__name__
        line = exc.lineno or 1
        column = exc.offset or 1
        end_line = exc.end_lineno or line
        end_column = exc.end_offset or column
        if (end_line, end_column) < (line, column):
            end_line, end_column = line, column
        message = f"{kind}: {exc.msg}"
        return Finding("NAN000", "syntax-error", message, filename, Span(line, max(column, 1), end_line, max(end_column, 1)), Severity.ERROR)
    except (ValueError, RecursionError, MemoryError, OverflowError):
        pass
    message = fallback.message
    if message.startswith("SyntaxError: "):
        message = "SyntaxError: " + _LIBCST_PREFIX.sub("", message[len("SyntaxError: "):])
    return Finding("NAN000", "syntax-error", message, filename, fallback.span, Severity.ERROR)
