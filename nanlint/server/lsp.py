"""The language server itself, on pygls: diagnostics on open, change (debounced) and save; the fixes, "add
noqa" and "fix all" as code actions. Imported only when the server starts, so nanlint works without pygls."""
from __future__ import annotations

import asyncio
import logging
import os
import traceback
from urllib.parse import unquote
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.protocol import LanguageServerProtocol, lsp_method

from nanlint import __version__, api
from nanlint.add_noqa import add_noqa
from nanlint.config import ConfigError
from nanlint.findings import Applicability, Finding, Severity
from nanlint.server import positions

logger = logging.getLogger(__name__)

#: seconds to wait after a change before checking, so that typing does not check every keystroke
DEBOUNCE = 0.15
#: the kind of the "apply all safe fixes" action (also run by editors' "fix all on save")
FIX_ALL = "source.fixAll.nanlint"
#: configuration files: saving one re-checks every open document
CONFIG_FILES = ("pyproject.toml", "nanlint.toml")

_SEVERITY = {
    Severity.ERROR: types.DiagnosticSeverity.Error,
    Severity.WARNING: types.DiagnosticSeverity.Warning,
    Severity.INFO: types.DiagnosticSeverity.Information,
}


class _Protocol(LanguageServerProtocol):
    @lsp_method(types.INITIALIZE)
    def lsp_initialize(self, params: types.InitializeParams):
        # nanlint counts code points: take UTF-32 whenever the client offers it, whatever its order of
        # preference (pygls takes the first it knows); otherwise positions are converted
        general = params.capabilities.general
        offered = list(general.position_encodings or ()) if general is not None else []
        if types.PositionEncodingKind.Utf32 in offered:
            general.position_encodings = [types.PositionEncodingKind.Utf32] + [e for e in offered if e != types.PositionEncodingKind.Utf32]
        return (yield from super().lsp_initialize(params))


@dataclass
class Analysis:
    version: int | None
    text: str
    lines: list[str]
    findings: list[Finding]


class NanlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nanlint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Full, protocol_cls=_Protocol)
        self.analyses: dict[str, Analysis] = {}
        self.open: set[str] = set()  # the URIs of the open documents, as the client spells them
        self.pending: dict[str, asyncio.TimerHandle] = {}
        self.docs_url: str | None = None  # initializationOptions.docsUrl, with {code} and {name}
        self._config_error_of: dict[str, str] = {}  # uri -> the configuration error shown for it
        self._shown: set[str] = set()
        self._logged: set[tuple[str, str]] = set()

    # -- helpers ---------------------------------------------------------------------------------

    def document(self, uri: str):
        """The open document ``uri`` (pygls keeps them by unquoted URI), or None."""
        return self.workspace.text_documents.get(unquote(uri))

    @property
    def encoding(self) -> str:
        encoding = self.workspace.position_encoding
        return str(getattr(encoding, "value", encoding) or positions.UTF16)

    def path_of(self, document) -> str:
        """The file name a document is checked as: its path, or for an unsaved one (``untitled:``) a name
        in the workspace, so that the workspace's configuration applies."""
        if document.uri.startswith("file:"):
            return document.path
        root = self.workspace.root_path or os.getcwd()
        name = os.path.basename(document.path or "") or "untitled"
        return os.path.join(root, name if name.endswith((".py", ".pyi")) else name + ".py")

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        self.window_show_message(types.ShowMessageParams(type=kind, message=message))

    def log(self, message: str, kind: types.MessageType = types.MessageType.Warning) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    def _config_error(self, uri: str, message: str) -> None:
        if message not in self._shown:
            self._shown.add(message)
            self.show(f"nanlint: configuration error: {message}")
        self._config_error_of[uri] = message

    def _config_ok(self, uri: str) -> None:
        message = self._config_error_of.pop(uri, None)
        if message is not None and message not in self._config_error_of.values():
            self._shown.discard(message)  # fixed: show it again if it comes back

    # -- analysis --------------------------------------------------------------------------------

    def analyze(self, uri: str) -> Analysis | None:
        """Check the open document ``uri`` as it is now (None for one that is not open or not Python)."""
        from nanlint.discovery import excluded_by_name
        from nanlint.hierarchy import Configs

        document = self.document(uri)
        if document is None:
            return None
        path = self.path_of(document)
        python = document.language_id == "python" if document.language_id else path.endswith((".py", ".pyi"))
        if not python or path.endswith(".ipynb"):
            return None  # a configuration file or another language the client sent; notebooks are not checked
        text = document.source
        findings: list[Finding] = []
        configs = Configs()  # read afresh each time (about a millisecond): edits to the configuration apply at once
        try:
            if not excluded_by_name(path, configs):
                result = api.analyze_text(text, path, configs)
                findings = result.findings
                for error in result.errors:
                    if (error.rule, error.message) not in self._logged:
                        self._logged.add((error.rule, error.message))
                        self.log(f"nanlint: rule {error.rule} failed on {path}: {error.message}", types.MessageType.Error)
            self._config_ok(uri)
        except ConfigError as exc:
            self._config_error(uri, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failed check must never take the server down
            self.log(traceback.format_exc(), types.MessageType.Error)
            message = f"nanlint: internal error checking {path}: {type(exc).__name__}: {exc}"
            if message not in self._shown:
                self._shown.add(message)
                self.show(message)
        analysis = Analysis(document.version, text, positions.lines(text), findings)
        self.analyses[uri] = analysis
        return analysis

    def current(self, uri: str) -> Analysis | None:
        """The analysis of the document as it is now, from the last check when the text is unchanged."""
        document = self.document(uri)
        if document is None:
            return None
        analysis = self.analyses.get(uri)
        if analysis is not None and analysis.version == document.version and analysis.text == document.source:
            return analysis
        return self.analyze(uri)

    def lint(self, uri: str) -> None:
        """Check ``uri`` and publish its diagnostics."""
        self.pending.pop(uri, None)
        analysis = self.analyze(uri)
        if analysis is None:
            return
        diagnostics = [self.diagnostic(f, analysis.lines) for f in analysis.findings]
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=analysis.version)
        )

    def lint_later(self, uri: str) -> None:
        self.cancel(uri)
        self.pending[uri] = asyncio.get_running_loop().call_later(DEBOUNCE, self.lint, uri)

    def cancel(self, uri: str) -> None:
        handle = self.pending.pop(uri, None)
        if handle is not None:
            handle.cancel()

    # -- conversions -----------------------------------------------------------------------------

    def range(self, lines: list[str], span) -> types.Range:
        (sl, sc), (el, ec) = positions.span_range(lines, span, self.encoding)
        return types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec))

    def href(self, finding: Finding) -> str | None:
        from nanlint.catalog import load_catalog

        doc = load_catalog().get(finding.code)
        if self.docs_url:
            try:
                return self.docs_url.format(code=finding.code, name=finding.name)
            except (KeyError, IndexError, ValueError):
                pass  # a template with other fields: the catalog file instead
        if doc is not None and doc.path and os.path.exists(doc.path):
            return Path(doc.path).resolve().as_uri()
        return None

    def diagnostic(self, finding: Finding, lines: list[str]) -> types.Diagnostic:
        href = self.href(finding)
        message = finding.message + (f"\nhelp: {finding.hint}" if finding.hint else "")
        return types.Diagnostic(
            range=self.range(lines, finding.span),
            message=message,
            severity=_SEVERITY.get(finding.severity, types.DiagnosticSeverity.Warning),
            code=finding.code,
            code_description=types.CodeDescription(href=href) if href else None,
            source="nanlint",
            data={"name": finding.name, "fix": finding.fix.applicability.value if finding.fix else None},
        )

    def replacement(self, uri: str, before: str, after: str) -> types.WorkspaceEdit | None:
        change = positions.minimal_replacement(before, after, self.encoding)
        if change is None:
            return None
        (sl, sc), (el, ec), new_text = change
        edit = types.TextEdit(
            range=types.Range(start=types.Position(line=sl, character=sc), end=types.Position(line=el, character=ec)),
            new_text=new_text,
        )
        return types.WorkspaceEdit(changes={uri: [edit]})

    # -- code actions ----------------------------------------------------------------------------

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        analysis = self.current(uri)
        if analysis is None:
            return []
        only = list(params.context.only or ())

        def wanted(kind: str) -> bool:
            # source actions (fix all) only when asked for by kind, as the "Source Action" menu and
            # "fix all on save" do; quick fixes also when no kind is given (the light bulb)
            if not only:
                return not kind.startswith("source")
            return any(kind == o or kind.startswith(f"{o}.") for o in only)

        lines = analysis.lines
        encoding = self.encoding
        start = positions.from_client_position(lines, params.range.start.line, params.range.start.character, encoding)
        end = positions.from_client_position(lines, params.range.end.line, params.range.end.character, encoding)
        asked = {(d.code, d.range.start.line, d.range.start.character, d.range.end.line, d.range.end.character)
                 for d in params.context.diagnostics if d.source in (None, "nanlint")}
        actions: list[types.CodeAction] = []
        noqa_done: set[tuple[int, str]] = set()
        for finding in analysis.findings:
            diagnostic = self.diagnostic(finding, lines)
            r = diagnostic.range
            key = (finding.code, r.start.line, r.start.character, r.end.line, r.end.character)
            span_start, span_end = (finding.span.line, finding.span.column), (finding.span.end_line, finding.span.end_column)
            if key not in asked and not (span_start <= end and start <= span_end):
                continue
            if wanted(types.CodeActionKind.QuickFix) and finding.fix is not None:
                safe = finding.fix.applicability is Applicability.SAFE
                edits = [types.TextEdit(range=self.range(lines, e.span), new_text=e.content) for e in finding.fix.edits]
                actions.append(types.CodeAction(
                    title=f"{finding.code}: {finding.fix.message}" + ("" if safe else " (unsafe)"),
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    is_preferred=safe,
                    edit=types.WorkspaceEdit(changes={uri: edits}),
                ))
            if wanted(types.CodeActionKind.QuickFix) and (finding.span.line, finding.code) not in noqa_done:
                noqa_done.add((finding.span.line, finding.code))
                new_text, added, _ = add_noqa(analysis.text, [finding])
                edit = self.replacement(uri, analysis.text, new_text) if added else None
                if edit is not None:
                    actions.append(types.CodeAction(
                        title=f"{finding.code}: add `# noqa: {finding.code}` to this line",
                        kind=types.CodeActionKind.QuickFix,
                        diagnostics=[diagnostic],
                        edit=edit,
                    ))
        if wanted(FIX_ALL) and any(f.fix is not None and f.fix.applicability is Applicability.SAFE for f in analysis.findings):
            fixed = self.fix_all(uri, analysis)
            edit = self.replacement(uri, analysis.text, fixed)
            if edit is not None:
                actions.append(types.CodeAction(title="nanlint: apply all safe fixes", kind=FIX_ALL, edit=edit))
        return actions

    def fix_all(self, uri: str, analysis: Analysis) -> str:
        """The text with every safe fix applied, re-checked after each round as ``nanlint check --fix``
        does."""
        from nanlint.fixes import apply_edits
        from nanlint.hierarchy import Configs

        path = self.path_of(self.document(uri))
        text, findings = analysis.text, analysis.findings
        configs = Configs()
        for _ in range(10):
            new_text, applied = apply_edits(text, findings, unsafe=False)
            if not applied or new_text == text:
                break
            text = new_text
            try:
                findings = api.analyze_text(text, path, configs).findings
            except Exception:  # noqa: BLE001 - keep what was fixed so far
                break
        return text


def create() -> NanlintServer:
    server = NanlintServer()

    @server.feature(types.INITIALIZE)
    def initialize(ls: NanlintServer, params: types.InitializeParams) -> None:
        options = params.initialization_options
        if isinstance(options, dict) and isinstance(options.get("docsUrl"), str):
            ls.docs_url = options["docsUrl"]

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: NanlintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.open.add(params.text_document.uri)
        ls.lint(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    async def did_change(ls: NanlintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.lint_later(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: NanlintServer, params: types.DidSaveTextDocumentParams) -> None:
        uri = params.text_document.uri
        if uri.endswith(CONFIG_FILES):
            relint_all(ls)
            return
        ls.cancel(uri)
        ls.lint(uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: NanlintServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        ls.cancel(uri)
        ls.open.discard(uri)
        ls.analyses.pop(uri, None)
        ls._config_ok(uri)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def did_change_watched_files(ls: NanlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        relint_all(ls)

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def did_change_configuration(ls: NanlintServer, params: types.DidChangeConfigurationParams) -> None:
        relint_all(ls)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL]),
    )
    def code_action(ls: NanlintServer, params: types.CodeActionParams) -> Sequence[types.CodeAction]:
        try:
            return ls.code_actions(params)
        except Exception as exc:  # noqa: BLE001 - answer with no actions rather than an error
            ls.log(traceback.format_exc(), types.MessageType.Error)
            ls.show(f"nanlint: internal error computing code actions: {type(exc).__name__}: {exc}")
            return []

    return server


def relint_all(ls: NanlintServer) -> None:
    for uri in sorted(ls.open):
        if not uri.endswith(CONFIG_FILES):
            ls.cancel(uri)
            ls.lint(uri)
