"""``--add-noqa``: adopt nanlint on an existing codebase by suppressing what it reports today, as ruff does.

Each line with findings gets ``# noqa: CODE, ...`` (its codes merged into a ``noqa`` list already there).
Lines where a comment would change the program are left alone and counted: inside a multi-line string, or
ending in a backslash continuation; so are lines whose ``noqa`` cannot be read (NAN003 says why)."""
from __future__ import annotations

import io
import re
import tokenize

from nanlint import suppression
from nanlint.findings import Finding

_LINE_END = re.compile(r"(\r\n|\r|\n)?$")


def _string_lines(text: str) -> set[int]:
    """Lines whose end lies inside a string (a multi-line string or f-string)."""
    inside: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)) and token.end[0] > token.start[0]:
                inside.update(range(token.start[0], token.end[0]))
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass
    return inside


def _list_end(comment: str) -> int:
    """Where the list of a ``# noqa: A, B explanation`` comment ends (after ``B``)."""
    from nanlint.catalog import load_catalog

    names = {doc.name for doc in load_catalog().values()}
    colon = comment.index(":", comment.lower().index("noqa"))
    end = colon + 1
    for match in suppression.ITEM.finditer(comment, colon + 1):
        if not (suppression.CODE.fullmatch(match.group()) or match.group() in names):
            break
        end = match.end()
    return end


def add_noqa(text: str, findings: list[Finding]) -> tuple[str, int, int]:
    """(new text, directives added or extended, lines that could not take one)."""
    wanted: dict[int, list[str]] = {}
    for f in findings:
        if f.code not in ("NAN000", "NAN001", "NAN003"):
            codes = wanted.setdefault(f.span.line, [])
            if f.code not in codes:
                codes.append(f.code)
    if not wanted:
        return text, 0, 0
    lines = text.splitlines(keepends=True)
    directives = suppression.parse(text).lines
    strings = _string_lines(text)
    added = skipped = 0
    for number, codes in sorted(wanted.items()):
        if not 1 <= number <= len(lines):
            continue
        line = lines[number - 1]
        ending = _LINE_END.search(line).group(0)
        body = line[: len(line) - len(ending)]
        directive = directives.get(number)
        if directive is not None and directive.codes is None:
            continue  # a blanket noqa already covers the line
        if number in strings or body.rstrip().endswith("\\") or directive is not None and directive.malformed:
            skipped += 1
            continue
        if directive is not None and directive.codes:
            missing = [c for c in codes if not any(c.startswith(have) for have in directive.codes)]
            if not missing:
                continue
            end = directive.column - 1 + _list_end(body[directive.column - 1:])
            body = body[:end] + ", " + ", ".join(missing) + body[end:]
        else:
            body = body.rstrip() + "  # noqa: " + ", ".join(codes)
        lines[number - 1] = body + ending
        added += 1
    return "".join(lines), added, skipped
