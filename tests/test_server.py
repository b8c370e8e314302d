"""``nanlint server`` end to end: the server runs as a subprocess over stdio, driven by pygls's own LSP
client; plus the position conversions, which need no server."""
from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from nanlint.findings import Span
from nanlint.server import positions, server

pygls = pytest.importorskip("pygls")

from lsprotocol import types  # noqa: E402
from pygls.lsp.client import LanguageClient  # noqa: E402

BAD = "import torch\ny = torch.log(torch.softmax(x, -1))\n"
CLEAN = "import torch\ny = torch.log_softmax(x, -1)\n"
TIMEOUT = 15


# -- a client-side text edit applier, written apart from the server's own conversions ------------------


def _offset(text: str, line: int, character: int, encoding: str) -> int:
    starts = [0] + [m.end() for m in re.finditer(r"\r\n|\r|\n", text)]
    start = starts[line]
    units = 0
    index = start
    while units < character and index < len(text) and text[index] not in "\r\n":
        units += len(text[index].encode("utf-16-le")) // 2 if encoding == "utf-16" else 1
        index += 1
    return index


def apply(text: str, edits, encoding: str = "utf-16") -> str:
    spans = [(_offset(text, e.range.start.line, e.range.start.character, encoding),
              _offset(text, e.range.end.line, e.range.end.character, encoding), e.new_text) for e in edits]
    for start, end, new in sorted(spans, reverse=True):
        text = text[:start] + new + text[end:]
    return text


# -- the client ------------------------------------------------------------------------------------------


class Session:
    def __init__(self, client: LanguageClient):
        self.client = client
        self.diagnostics: dict[str, asyncio.Queue] = {}
        self.messages: list[types.ShowMessageParams] = []

        @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
        def published(params: types.PublishDiagnosticsParams) -> None:
            self.queue(params.uri).put_nowait(params)

        @client.feature(types.WINDOW_SHOW_MESSAGE)
        def shown(params: types.ShowMessageParams) -> None:
            self.messages.append(params)

        @client.feature(types.WINDOW_LOG_MESSAGE)
        def logged(params: types.LogMessageParams) -> None:
            pass

    def queue(self, uri: str) -> asyncio.Queue:
        return self.diagnostics.setdefault(uri, asyncio.Queue())

    async def published(self, uri: str) -> types.PublishDiagnosticsParams:
        return await asyncio.wait_for(self.queue(uri).get(), TIMEOUT)

    def open(self, uri: str, text: str, version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text)))

    def change(self, uri: str, text: str, version: int) -> None:
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)]))

    async def actions(self, uri: str, range_: types.Range, diagnostics=(), only=None) -> list[types.CodeAction]:
        result = await asyncio.wait_for(self.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=uri),
            range=range_,
            context=types.CodeActionContext(diagnostics=list(diagnostics), only=only),
        )), TIMEOUT)
        return list(result or [])


def _run(scenario) -> None:
    """Run ``scenario(sessions)``; a server it started is killed if it fails halfway."""
    sessions: list[Session] = []

    async def main():
        try:
            await scenario(sessions)
        finally:
            for session in sessions:
                process = session.client._server
                if process is not None and process.returncode is None:
                    process.kill()
                    await process.wait()

    asyncio.run(main())


async def _start(root: Path, encodings=None, sessions=None, options=None):
    client = LanguageClient("nanlint-test", "1")
    session = Session(client)
    if sessions is not None:
        sessions.append(session)
    await client.start_io(sys.executable, "-c", "from nanlint.server import main; main()", cwd=str(root))
    general = types.GeneralClientCapabilities(position_encodings=encodings) if encodings else None
    result = await asyncio.wait_for(client.initialize_async(types.InitializeParams(
        process_id=None,
        root_uri=root.as_uri(),
        capabilities=types.ClientCapabilities(general=general),
        initialization_options=options,
    )), TIMEOUT)
    client.initialized(types.InitializedParams())
    return session, result


async def _stop(session: Session) -> int:
    client = session.client
    await asyncio.wait_for(client.shutdown_async(None), TIMEOUT)
    client.exit(None)
    returncode = await asyncio.wait_for(client._server.wait(), TIMEOUT)
    await asyncio.wait_for(client.stop(), TIMEOUT)
    return returncode


def _edits(action: types.CodeAction, uri: str):
    assert action.edit is not None and action.edit.changes is not None
    return action.edit.changes[uri]


# -- end to end --------------------------------------------------------------------------------------------


def test_server_end_to_end(tmp_path):
    async def scenario(sessions):
        session, result = await _start(tmp_path, sessions=sessions)
        assert result.server_info.name == "nanlint"
        assert result.capabilities.position_encoding in (types.PositionEncodingKind.Utf16, "utf-16")
        assert result.capabilities.code_action_provider is not None
        uri = (tmp_path / "model.py").as_uri()

        # didOpen: NAN101 on line 2, columns 5..36 (1-based, end exclusive) -> LSP 1:4..1:35
        session.open(uri, BAD)
        published = await session.published(uri)
        assert published.version == 1
        [diagnostic] = published.diagnostics
        assert diagnostic.code == "NAN101"
        assert diagnostic.source == "nanlint"
        assert diagnostic.severity == types.DiagnosticSeverity.Error
        assert (diagnostic.range.start.line, diagnostic.range.start.character) == (1, 4)
        assert (diagnostic.range.end.line, diagnostic.range.end.character) == (1, 35)
        assert "softmax" in diagnostic.message and "help:" in diagnostic.message
        assert diagnostic.code_description is not None and "NAN101" in diagnostic.code_description.href

        # codeAction at the finding: the safe fix (preferred) and "add noqa"
        actions = await session.actions(uri, diagnostic.range, [diagnostic])
        fixes = [a for a in actions if a.is_preferred]
        assert len(fixes) == 1 and fixes[0].kind == types.CodeActionKind.QuickFix
        fixed = apply(BAD, _edits(fixes[0], uri))
        assert fixed == CLEAN
        [noqa] = [a for a in actions if "noqa" in a.title]
        assert noqa.kind == types.CodeActionKind.QuickFix
        assert apply(BAD, _edits(noqa, uri)) == "import torch\ny = torch.log(torch.softmax(x, -1))  # noqa: NAN101\n"
        # a cursor (an empty range) inside the call, no diagnostics given, finds the same actions
        inside = types.Range(start=types.Position(line=1, character=10), end=types.Position(line=1, character=10))
        assert {a.title for a in await session.actions(uri, inside)} >= {fixes[0].title, noqa.title}
        # elsewhere: nothing
        assert await session.actions(uri, types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=3))) == []
        # fix all on request of its kind only
        [fix_all] = await session.actions(uri, inside, only=["source.fixAll"])
        assert fix_all.kind == "source.fixAll.nanlint"
        assert apply(BAD, _edits(fix_all, uri)) == CLEAN
        assert all(a.kind != "source.fixAll.nanlint" for a in await session.actions(uri, inside, only=["quickfix"]))

        # didChange to clean code: empty diagnostics
        session.change(uri, CLEAN, 2)
        published = await session.published(uri)
        assert (published.version, list(published.diagnostics)) == (2, [])

        # didChange back, then didSave: published again
        session.change(uri, BAD, 3)
        assert [d.code for d in (await session.published(uri)).diagnostics] == ["NAN101"]
        session.client.text_document_did_save(types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))
        published = await session.published(uri)
        assert published.version == 3 and [d.code for d in published.diagnostics] == ["NAN101"]

        # a syntax error: NAN000, and the server lives on
        broken = (tmp_path / "broken.py").as_uri()
        session.open(broken, "import torch\ny = (\n")
        [syntax] = (await session.published(broken)).diagnostics
        assert syntax.code == "NAN000" and syntax.range.start.line == 1
        assert await session.actions(broken, syntax.range, [syntax]) == []

        # an emoji before the finding on its line: UTF-16 counts it as two units
        emoji = (tmp_path / "emoji.py").as_uri()
        emoji_text = 'import torch\ns = "😀"; y = torch.log(torch.softmax(x, -1))\n'
        session.open(emoji, emoji_text)
        [d] = (await session.published(emoji)).diagnostics
        assert (d.range.start.character, d.range.end.character) == (14, 45)  # code points: 13 and 44
        [fix] = [a for a in await session.actions(emoji, d.range, [d]) if a.is_preferred]
        assert apply(emoji_text, _edits(fix, emoji)) == 'import torch\ns = "😀"; y = torch.log_softmax(x, -1)\n'

        # an unsafe fix is offered, marked and not preferred; "fix all" applies safe fixes only
        unsafe = (tmp_path / "unsafe.py").as_uri()
        unsafe_text = "import torch\n\ndef pooled(x, mask):\n    v = (x * mask).sum(1)\n    return v / v.norm(dim=-1, keepdim=True)\n"
        session.open(unsafe, unsafe_text)
        [d] = (await session.published(unsafe)).diagnostics
        assert d.code == "NAN202"
        [fix, noqa] = await session.actions(unsafe, d.range, [d])
        assert fix.title.endswith("(unsafe)") and not fix.is_preferred
        assert apply(unsafe_text, _edits(fix, unsafe)).endswith("    return torch.nn.functional.normalize(v, dim=-1)\n")
        assert "noqa" in noqa.title
        assert await session.actions(unsafe, d.range, [d], only=["source"]) == []

        # didClose clears the document's diagnostics
        session.client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=emoji)))
        assert list((await session.published(emoji)).diagnostics) == []

        assert session.messages == []
        assert await _stop(session) == 0

    _run(scenario)


def test_server_negotiates_utf32_takes_a_docs_url_and_reports_a_broken_configuration(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.nanlint]\nbogus-option = 1\n")

    async def scenario(sessions):
        session, result = await _start(tmp_path, [types.PositionEncodingKind.Utf16, types.PositionEncodingKind.Utf32], sessions,
                                       {"docsUrl": "https://example.org/rules/{code}-{name}"})
        assert result.capabilities.position_encoding in (types.PositionEncodingKind.Utf32, "utf-32")
        uri = (tmp_path / "model.py").as_uri()
        text = 'import torch\ns = "😀"; y = torch.log(torch.softmax(x, -1))\n'
        session.open(uri, text)
        published = await session.published(uri)
        assert list(published.diagnostics) == []
        [message] = session.messages
        assert message.type == types.MessageType.Error and "bogus-option" in message.message

        # the configuration is fixed: the next change is checked with it, in code points
        (tmp_path / "pyproject.toml").write_text("[tool.nanlint]\n")
        session.change(uri, text, 2)
        [d] = (await session.published(uri)).diagnostics
        assert (d.range.start.character, d.range.end.character) == (13, 44)
        assert d.code_description.href == "https://example.org/rules/NAN101-log-of-probability"
        [fix] = [a for a in await session.actions(uri, d.range, [d]) if a.is_preferred]
        assert apply(text, _edits(fix, uri), "utf-32") == 'import torch\ns = "😀"; y = torch.log_softmax(x, -1)\n'
        assert len(session.messages) == 1
        assert await _stop(session) == 0

    _run(scenario)


# -- positions ----------------------------------------------------------------------------------------------


def test_utf16_positions_count_an_emoji_as_two_units():
    line = 's = "😀"; y = torch.log(p)'
    text_lines = ["import torch", line]
    column = line.index("torch") + 1  # 1-based, in code points: 13
    span = Span(2, column, 2, len(line) + 1)
    assert positions.span_range(text_lines, span, positions.UTF16) == ((1, column), (1, len(line) + 1))
    assert positions.span_range(text_lines, span, positions.UTF32) == ((1, column - 1), (1, len(line)))
    assert positions.span_range(text_lines, span, positions.UTF8) == ((1, column - 1 + 3), (1, len(line) + 3))
    # and back; the middle of the surrogate pair counts as the emoji's start
    assert positions.from_client_position(text_lines, 1, column, positions.UTF16) == (2, column)
    emoji = line.index("😀")
    assert positions.from_client(line, emoji + 1, positions.UTF16) == emoji
    assert positions.from_client(line, emoji + 2, positions.UTF16) == emoji + 1
    assert positions.from_client(line, 999, positions.UTF16) == len(line)
    # before the emoji nothing changes
    assert positions.to_client(line, 2, positions.UTF16) == 2


def test_minimal_replacement_and_line_breaks():
    before = "a = 1\r\nb = 😀 + log(p)\r\n"
    after = "a = 1\r\nb = 😀 + log(p)  # noqa: NAN101\r\n"
    start, end, new = positions.minimal_replacement(before, after)
    assert start == end == (1, len("b = ") + 2 + len(" + log(p)"))
    assert new == "  # noqa: NAN101"
    assert positions.minimal_replacement(before, before) is None
    assert positions.lines("a\r\nb\rc\nd\x0ce") == ["a", "b", "c", "d\x0ce"]  # a form feed does not end a line


def test_server_command_help_is_whole_sentences():
    result = CliRunner().invoke(server, ["--help"])
    assert result.exit_code == 0
    assert "language server" in result.output
    assert server.name == "server"
