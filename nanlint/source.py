"""Reading a file's text: PEP 263 coding lines honoured; unreadable or undecodable files become a NAN001
finding rather than an exception. Also the one place that knows how to write a fixed file back (same
encoding, same BOM, same line endings) and how to phrase a syntax error the way Python does."""
from __future__ import annotations

import ast
import contextlib
import errno
import io
import os
import re
import stat
import tempfile
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
    notebook: bytes | None = None  # a notebook's JSON as read (``text`` is its code cells joined)


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
    from nanlint import notebook

    if notebook.is_notebook(filename):
        try:
            return SourceText(filename, notebook.to_source(data), notebook=data)
        except notebook.NotebookError as exc:
            return SourceText(filename, None, _problem(filename, str(exc)))
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
        try:
            os.scandir(filename).close()
        except OSError as exc:
            return None, _problem(filename, f"cannot read folder: {_os_reason(filename, exc)}")
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
    are in ``text`` (it was read without newline translation).

    Atomic: the bytes go to a temporary file beside the target (through a symbolic link, beside the file it
    points to), are flushed to disk, and replace the file in one rename, with the file's permission bits.
    Any failure (a full disk, a file-size limit, a read-only folder) leaves the original as it was and raises
    :class:`WriteError` saying so."""
    if original.notebook is not None:
        from nanlint import notebook

        data = notebook.write_back(original.notebook, text)
    else:
        data = text.encode(original.encoding)
        if original.bom:
            data = b"\xef\xbb\xbf" + data
    target = os.path.realpath(filename)
    folder = os.path.dirname(target) or "."
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except OSError as exc:
        raise WriteError(filename, exc) from None
    temp = None
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".nanlint-tmp", dir=folder)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
        temp = None
    except OSError as exc:
        raise WriteError(filename, exc) from None
    finally:
        if temp is not None:
            with contextlib.suppress(OSError):
                os.unlink(temp)


class WriteError(OSError):
    """A fixed file could not be written; the original is unchanged."""

    def __init__(self, filename: str, cause: OSError):
        reason = cause.strerror or str(cause)
        super().__init__(f"cannot write {filename}: {reason}; the file is unchanged")
        self.path = filename


def too_large(source: str, filename: str, limit: int | None) -> Finding | None:
    """A NAN001 finding for a file of more than ``limit`` tokens (None: no limit), else None. Cost is in
    tokens, not bytes: a megabyte string literal is one token, a megabyte of generated code 300,000."""
    if limit is None or len(source) <= limit:  # every token takes at least one character
        return None
    tokens = count_tokens(source)
    if tokens <= limit:
        return None
    return _problem(filename, f"too large to analyse: {tokens:,} tokens, over the limit of {limit:,} "
                              f"(`max-file-tokens`; about 4 KB of memory per token)")


# strings and comments are one token each; names and numbers one; any other character one
_TOKEN = re.compile(r"""[rRbBuUfF]{0,2}(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')"""
                    r"|#[^\n]*|\w+|[^\s\w]")


def count_tokens(source: str) -> int:
    """About the number of Python tokens in ``source`` (a regular expression, 10 MB per second)."""
    return sum(1 for _ in _TOKEN.finditer(source))


def compile_error(source: str, filename: str) -> Finding | None:
    """What CPython's ``compile`` says against ``source`` as a NAN000 finding in Python's words (syntax errors
    at Python's position; ``RecursionError``/``MemoryError`` for nesting too deep), or None if it compiles."""
    try:
        with warnings.catch_warnings():  # invalid escapes etc. must not print SyntaxWarnings
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return _syntax_finding(exc, filename)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        message = str(exc) or "the file nests too deeply to compile"
        return Finding("NAN000", "syntax-error", f"{type(exc).__name__}: {message}", filename, Span(1, 1, 1, 1), Severity.ERROR)
    return None


def _syntax_finding(exc: SyntaxError, filename: str) -> Finding:
    line = exc.lineno or 1
    column = max(exc.offset or 1, 1)
    end_line = exc.end_lineno or line
    end_column = max(exc.end_offset or column, 1)
    if (end_line, end_column) < (line, column):
        end_line, end_column = line, column
    span = Span(line, column, end_line, end_column)
    return Finding("NAN000", "syntax-error", f"{type(exc).__name__}: {exc.msg}", filename, span, Severity.ERROR)


def python_syntax_error(source: str, filename: str) -> Finding | None:
    """What ``compile`` says about ``source``'s syntax: a NAN000 finding at Python's position, or None if
    Python parses it. Raises what ``compile`` raises besides ``SyntaxError``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, filename, "exec", flags=ast.PyCF_ONLY_AST, dont_inherit=True)
    except SyntaxError as exc:
        return _syntax_finding(exc, filename)
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
