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
from itertools import accumulate

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
        if "invalid or missing encoding declaration" in exc.msg:
            # no declaration, and the first two lines are not UTF-8: say where, not "bad declaration"
            encoding = "utf-8"
        else:
            message = exc.msg.replace(f" for {filename!r}", "")
            return SourceText(filename, None, _problem(filename, f"bad coding declaration: {message}"))
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


def read_bytes(filename: str) -> tuple[bytes | None, Finding | None]:
    """The raw bytes of ``filename``, or a NAN001 finding saying in one line why they cannot be had. Never
    opens a FIFO or device (that would block or never end)."""
    try:
        info = os.stat(filename)
    except OSError as exc:
        return None, _problem(filename, f"cannot read: {_os_reason(filename, exc)}")
    if stat.S_ISDIR(info.st_mode):
        return None, _problem(filename, "is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        return None, _problem(filename, "not a regular file (FIFO, socket or device)")
    try:
        with open(filename, "rb") as handle:
            return handle.read(), None
    except OSError as exc:
        return None, _problem(filename, f"cannot read: {_os_reason(filename, exc)}")


def read(filename: str) -> SourceText:
    """The decoded text of ``filename``, or a NAN001 finding saying in one line why it cannot be had."""
    data, problem = read_bytes(filename)
    if data is None:
        return SourceText(filename, None, problem)
    return decode(data, filename)


def write(filename: str, original: SourceText, text: str) -> None:
    """Write a fixed ``text`` back with the encoding and BOM the file had; line endings are kept as they
    are in ``text`` (it was read without newline translation)."""
    data = text.encode(original.encoding)
    if original.bom:
        data = b"\xef\xbb\xbf" + data
    with open(filename, "wb") as handle:
        handle.write(data)


# Python refuses more than 200 nested brackets ("too many nested parentheses"); libcst's native parser
# overflows its stack (a segfault, measured at 1,500 levels) before it can say so.
MAX_NESTING = 200
_BRACKET = re.compile(r"[][(){}]")
_STEP = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


def nesting_error(source: str, filename: str) -> Finding | None:
    """A NAN000 finding for a file that nests brackets deeper than Python allows, found without handing
    it to libcst; None for every other file. Brackets in strings and comments are counted too, so a deep
    count is only a reason to ask ``compile``, which decides."""
    if source.count("(") + source.count("[") + source.count("{") <= MAX_NESTING:
        return None
    if max(accumulate(map(_STEP.__getitem__, _BRACKET.findall(source))), default=0) <= MAX_NESTING:
        return None
    try:
        return python_syntax_error(source, filename)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        message = f"SyntaxError: the file nests too deeply to parse ({type(exc).__name__})"
        return Finding("NAN000", "syntax-error", message, filename, Span(1, 1, 1, 1), Severity.ERROR)


def python_syntax_error(source: str, filename: str) -> Finding | None:
    """What ``compile`` says about ``source``: a NAN000 finding at Python's position, or None if Python
    accepts it. Raises what ``compile`` raises besides ``SyntaxError``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        line = exc.lineno or 1
        column = max(exc.offset or 1, 1)
        end_line = exc.end_lineno or line
        end_column = max(exc.end_offset or column, 1)
        if (end_line, end_column) < (line, column):
            end_line, end_column = line, column
        span = Span(line, column, end_line, end_column)
        return Finding("NAN000", "syntax-error", f"{type(exc).__name__}: {exc.msg}", filename, span, Severity.ERROR)
    return None


_LIBCST_PREFIX = re.compile(r"^(?:parser error: )?error at \d+:\d+: ")


def syntax_error(source: str, filename: str, fallback: Finding) -> Finding:
    """A NAN000 finding phrased as Python phrases it (``SyntaxError: expected ':'``, at Python's position).

    libcst's own messages (``parser error: error at 8:0: expected one of ->, :``) are replaced by what
    ``compile`` says; when Python accepts the file (libcst rejects a few constructs Python allows) the libcst
    message is kept, cleaned of its prefix."""
    try:
        found = python_syntax_error(source, filename)
    except (ValueError, RecursionError, MemoryError, OverflowError):
        found = None
    if found is not None:
        return found
    message = fallback.message
    if message.startswith("SyntaxError: "):
        message = "SyntaxError: " + _LIBCST_PREFIX.sub("", message[len("SyntaxError: "):])
    return Finding("NAN000", "syntax-error", message, filename, fallback.span, Severity.ERROR)
