"""The language server: diagnostics for open Python files and Jupyter notebooks (on open, change and save), each
fix as a quick fix, a "fix all" source action, and a rule's documentation on hover.

Handlers run one at a time on pygls' event loop: a check takes milliseconds, and the checker keeps per-process
state (parsed project files) that is not meant to be shared between threads.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Optional

from lsprotocol import types
from pygls.lsp.server import LanguageServer

from peftfix import about
from peftfix.diagnostics import Applicability, Finding
from peftfix.lsp import convert
from peftfix.lsp.checking import CheckFailed
from peftfix.lsp.documentation import rule_markdown
from peftfix.lsp.documents import CheckedFile, DocumentText, file_of, notebook_file, open_files

NAME = "peftfix"
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.peftfix"
FIX_ALL_TITLE = "peftfix: Fix all auto-fixable issues"
# Notebooks Jupyter saves, their Python cells (the cells the checker reads).
NOTEBOOK_SYNC = types.NotebookDocumentSyncOptions(
    notebook_selector=[
        types.NotebookDocumentFilterWithNotebook(
            notebook=types.NotebookDocumentFilterNotebookType(notebook_type="jupyter-notebook"),
            cells=[types.NotebookCellLanguage(language="python")],
        )
    ],
    save=True,
)

logger = logging.getLogger(__name__)


class PeftfixServer(LanguageServer):
    """pygls' server, and what it remembers between messages."""

    def __init__(self) -> None:
        super().__init__(
            NAME,
            about.version(),
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=NOTEBOOK_SYNC,
        )
        # What each document was last told, for hovers: the LSP diagnostics, by document URI.
        self.published: dict[str, list[types.Diagnostic]] = {}
        # The last file checked with the edits of its fixes, and its findings: a client asks for code actions
        # on every move of the cursor, the findings only change with the text.
        self.edits_checked: Optional[tuple[CheckedFile, dict[str, list[Finding]]]] = None
        self.last_failure: Optional[str] = None
        self.shutdown_requested = False

    def positions(self, document: DocumentText) -> convert.TextPositions:
        return convert.TextPositions(document.text, self.workspace.position_codec)

    # ------------------------------------------------------------------------------------------ diagnostics

    def publish(self, checked: Optional[CheckedFile]) -> None:
        """Check a file and tell the client what each of its documents has."""
        if checked is None:
            return
        try:
            findings = checked.findings()
        except CheckFailed as failure:
            self.report_failure(str(failure))
            findings = {}
        else:
            self.last_failure = None
        for document in checked.documents:
            positions = self.positions(document)
            diagnostics = [
                convert.diagnostic(finding.diagnostic, positions) for finding in findings.get(document.uri, [])
            ]
            self.send_diagnostics(document.uri, diagnostics, document.version)

    def check_all(self) -> None:
        """Check every open file again: a saved file may be one the others import, or the configuration."""
        self.edits_checked = None
        for checked in open_files(self.workspace):
            self.publish(checked)

    def clear(self, uris: Iterable[str]) -> None:
        for uri in uris:
            self.send_diagnostics(uri, [], None)
            self.published.pop(uri, None)

    def send_diagnostics(self, uri: str, diagnostics: list[types.Diagnostic], version: Optional[int]) -> None:
        self.published[uri] = diagnostics
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
        )

    def report_failure(self, message: str) -> None:
        """Log why a file was not checked; show it once (not on every keystroke while it lasts)."""
        logger.error("%s", message)
        if message != self.last_failure:
            self.window_show_message(
                types.ShowMessageParams(type=types.MessageType.Error, message=f"peftfix: {message}")
            )
        self.last_failure = message

    # ----------------------------------------------------------------------------------------- code actions

    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        checked = file_of(self.workspace, params.text_document.uri)
        document = checked.document(params.text_document.uri) if checked is not None else None
        if checked is None or document is None:
            return []
        try:
            actions = []
            if _kind_wanted(types.CodeActionKind.QuickFix, params.context.only):
                actions += self.quick_fixes(checked, document, params.range)
            if _kind_wanted(FIX_ALL_KIND, params.context.only):
                actions += self.fix_all(checked, explicitly_asked=params.context.only is not None)
            return actions
        except CheckFailed as failure:
            self.report_failure(str(failure))
            return []

    def quick_fixes(self, checked: CheckedFile, document: DocumentText, at: types.Range) -> list[types.CodeAction]:
        actions = []
        for finding in self.findings_with_edits(checked).get(document.uri, []):
            fix = finding.diagnostic.fix
            if fix is None or not convert.offers_edit(fix):
                continue
            diagnostic = convert.diagnostic(finding.diagnostic, self.positions(document))
            if not convert.ranges_touch(diagnostic.range, at):
                continue
            edits: dict[str, list[types.TextEdit]] = {}
            for edit in fix.edits:
                target = checked.edit_document(finding, edit)
                edits.setdefault(target.uri, []).append(convert.text_edit(edit, self.positions(target)))
            actions.append(
                types.CodeAction(
                    title=convert.fix_title(finding.diagnostic, fix),
                    kind=types.CodeActionKind.QuickFix,
                    diagnostics=[diagnostic],
                    is_preferred=fix.applicability is Applicability.SAFE,
                    edit=self.workspace_edit(checked, edits),
                )
            )
        return actions

    def fix_all(self, checked: CheckedFile, explicitly_asked: bool) -> list[types.CodeAction]:
        """The source action applying what `peftfix --apply` would; offered unasked only when something is
        fixable (it costs a fix run)."""
        if not explicitly_asked and not any(
            finding.fix_applicable for findings in self.findings_with_edits(checked).values() for finding in findings
        ):
            return []
        edits: dict[str, list[types.TextEdit]] = {}
        for uri, text in checked.fixed_texts().items():
            document = checked.document(uri)
            edit = convert.replacement(self.positions(document), text) if document is not None else None
            if edit is not None:
                edits[uri] = [edit]
        if not edits:
            return []
        return [types.CodeAction(title=FIX_ALL_TITLE, kind=FIX_ALL_KIND, edit=self.workspace_edit(checked, edits))]

    def findings_with_edits(self, checked: CheckedFile) -> dict[str, list[Finding]]:
        if self.edits_checked is None or self.edits_checked[0] != checked:
            self.edits_checked = (checked, checked.findings(with_edits=True))
        return self.edits_checked[1]

    def workspace_edit(self, checked: CheckedFile, edits: dict[str, list[types.TextEdit]]) -> types.WorkspaceEdit:
        """Edits of the documents' versions that were checked, when the client can refuse edits of another version."""
        capabilities = self.client_capabilities.workspace
        versioned = bool(capabilities and capabilities.workspace_edit and capabilities.workspace_edit.document_changes)
        if not versioned:
            return types.WorkspaceEdit(changes=edits)
        changes = []
        for uri, text_edits in edits.items():
            document = checked.document(uri)
            version = document.version if document is not None else None
            changes.append(
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
                    edits=list(text_edits),
                )
            )
        return types.WorkspaceEdit(document_changes=changes)

    # ----------------------------------------------------------------------------------------------- hover

    def hover(self, params: types.HoverParams) -> Optional[types.Hover]:
        """The documentation of the rules reported where the cursor is."""
        here = [
            diagnostic
            for diagnostic in self.published.get(params.text_document.uri, [])
            if convert.contains(diagnostic.range, params.position)
        ]
        codes = list(dict.fromkeys(str(diagnostic.code) for diagnostic in here))
        pages = [page for page in map(rule_markdown, codes) if page is not None]
        if not pages:
            return None
        return types.Hover(
            contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value="\n\n---\n\n".join(pages)),
            range=here[0].range,
        )


def _kind_wanted(kind: str, only: Optional[Sequence[str]]) -> bool:
    """Whether the client asked for actions of ``kind`` (kinds are hierarchical: `source` includes
    `source.fixAll.peftfix`); a request without `only` asks for every kind."""
    if only is None:
        return True
    kind = _kind_name(kind)
    return any(kind == wanted or kind.startswith(wanted + ".") for wanted in map(_kind_name, only))


def _kind_name(kind: str) -> str:
    # lsprotocol hands known kinds over as enum members, whose str() is not their value on every Python.
    return kind.value if isinstance(kind, types.CodeActionKind) else kind


def create_server() -> PeftfixServer:
    server = PeftfixServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        server.publish(file_of(server.workspace, params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        server.publish(file_of(server.workspace, params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(_params: types.DidSaveTextDocumentParams) -> None:
        server.check_all()

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.clear([params.text_document.uri])

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_did_open(params: types.DidOpenNotebookDocumentParams) -> None:
        server.publish(_notebook(server, params.notebook_document.uri))

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_did_change(params: types.DidChangeNotebookDocumentParams) -> None:
        structure = params.change.cells.structure if params.change.cells is not None else None
        if structure is not None and structure.did_close:  # removed cells keep no diagnostics
            server.clear(cell.uri for cell in structure.did_close)
        server.publish(_notebook(server, params.notebook_document.uri))

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_did_save(_params: types.DidSaveNotebookDocumentParams) -> None:
        server.check_all()

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_did_close(params: types.DidCloseNotebookDocumentParams) -> None:
        server.clear(cell.uri for cell in params.cell_text_documents)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND]),
    )
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        return server.code_actions(params)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams) -> Optional[types.Hover]:
        return server.hover(params)

    @server.feature(types.SHUTDOWN)
    def shutdown(_params: None) -> None:
        server.shutdown_requested = True

    return server


def _notebook(server: PeftfixServer, uri: str) -> Optional[CheckedFile]:
    notebook = server.workspace.get_notebook_document(notebook_uri=uri)
    return notebook_file(server.workspace, notebook) if notebook is not None else None


def serve() -> int:
    """Speak LSP over stdin/stdout until the client says `exit`; the exit status LSP asks for (0 after a
    `shutdown` request, else 1).

    Only LSP messages may reach stdout: the protocol gets its own handle on it, and the process's stdout is
    pointed at stderr, so that a stray print (ours, a library's, native code's) lands in the log instead of
    corrupting the stream.
    """
    sys.stdout.flush()
    protocol_out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if about.debug_enabled() else logging.WARNING,
        format="peftfix server %(levelname)s %(name)s: %(message)s",
    )
    server = create_server()
    server.start_io(sys.stdin.buffer, protocol_out)
    return 0 if server.shutdown_requested else 1
