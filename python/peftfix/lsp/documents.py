"""What the checker sees as one file, made of the editor's open documents: a Python file is one document, a
notebook one document per cell. Its findings and fixed texts come back keyed by the document they belong to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from urllib.parse import unquote

from lsprotocol import types
from pygls.uris import to_fs_path
from pygls.workspace import Workspace

from peftfix.diagnostics import Edit, Finding
from peftfix.lsp import checking
from peftfix.lsp.notebooks import Cell, CellKind

PYTHON_LANGUAGE = "python"
PYTHON_SUFFIXES = (".py", ".pyi")


@dataclass(frozen=True)
class DocumentText:
    """One open document as it was when read: a Python file, or a notebook cell."""

    uri: str
    version: Optional[int]
    text: str


@dataclass(frozen=True)
class CheckedFile:
    """A Python file (one document) or a notebook (``cells``: one per document, in order)."""

    path: Optional[str]  # on disk, where its configuration and imports are found; None for an unsaved buffer
    documents: tuple[DocumentText, ...]
    cells: Optional[tuple[Cell, ...]] = None  # None: a Python file

    def document(self, uri: str) -> Optional[DocumentText]:
        return next((document for document in self.documents if _same_uri(document.uri, uri)), None)

    def findings(self, with_edits: bool = False) -> dict[str, list[Finding]]:
        """The findings, by the URI of the document they lie in (every document has an entry)."""
        by_uri: dict[str, list[Finding]] = {document.uri: [] for document in self.documents}
        if self.cells is None:
            by_uri[self.documents[0].uri] = checking.check_python(self.documents[0].text, self.path, with_edits)
            return by_uri
        for finding in checking.check_notebook(self.cells, self.path, with_edits):
            by_uri[self.documents[self._cell_index(finding.diagnostic.cell)].uri].append(finding)
        return by_uri

    def edit_document(self, finding: Finding, edit: Edit) -> DocumentText:
        """The document an edit of ``finding``'s fix applies to (in a notebook, a fix may edit several cells)."""
        if self.cells is None:
            return self.documents[0]
        cell = edit.cell if edit.cell is not None else finding.diagnostic.cell
        return self.documents[self._cell_index(cell)]

    def fixed_texts(self) -> dict[str, str]:
        """Each document's text with every fix `peftfix --apply` would apply, by URI."""
        if self.cells is None:
            return {self.documents[0].uri: checking.fix_python(self.documents[0].text, self.path)}
        texts = checking.fix_notebook(self.cells, self.path)
        return {document.uri: text for document, text in zip(self.documents, texts, strict=True)}

    def _cell_index(self, cell: Optional[int]) -> int:
        """The index of cell number ``cell`` (1-based); a finding about no cell goes to the first code cell."""
        assert self.cells is not None
        if cell is not None and 1 <= cell <= len(self.cells):
            return cell - 1
        return next((index for index, each in enumerate(self.cells) if each.kind is CellKind.CODE), 0)


def file_of(workspace: Workspace, uri: str) -> Optional[CheckedFile]:
    """The file the open document ``uri`` belongs to (a notebook for a notebook or one of its cells); None for a
    document that is not open or not Python."""
    notebook = workspace.get_notebook_document(notebook_uri=uri) or workspace.get_notebook_document(cell_uri=uri)
    if notebook is not None:
        return notebook_file(workspace, notebook)
    document = workspace.text_documents.get(unquote(uri))
    if document is None:
        return None
    path = to_fs_path(document.uri)
    if document.language_id != PYTHON_LANGUAGE and not (path or "").endswith(PYTHON_SUFFIXES):
        return None
    return CheckedFile(path, (DocumentText(document.uri, document.version, document.source),))


def open_files(workspace: Workspace) -> list[CheckedFile]:
    """Every open Python file and notebook."""
    files = [notebook_file(workspace, notebook) for notebook in workspace.notebook_documents.values()]
    for uri in list(workspace.text_documents):
        if workspace.get_notebook_document(cell_uri=uri) is None:
            checked = file_of(workspace, uri)
            if checked is not None:
                files.append(checked)
    return files


def notebook_file(workspace: Workspace, notebook: types.NotebookDocument) -> CheckedFile:
    documents, cells = [], []
    for cell in notebook.cells:
        document = workspace.text_documents.get(unquote(cell.document))
        text = document.source if document is not None else ""
        version = document.version if document is not None else None
        documents.append(DocumentText(cell.document, version, text))
        cells.append(Cell(_cell_kind(cell, document.language_id if document is not None else None), text))
    return CheckedFile(to_fs_path(notebook.uri), tuple(documents), tuple(cells))


def _cell_kind(cell: types.NotebookCell, language: Optional[str]) -> CellKind:
    if cell.kind == types.NotebookCellKind.Markup:
        return CellKind.MARKDOWN
    # A code cell in another language, or one the editor does not send (not matching our selector), is kept as
    # a raw cell: not checked, but counted, so the cells after it keep their numbers.
    return CellKind.CODE if language == PYTHON_LANGUAGE else CellKind.RAW


def _same_uri(first: str, second: str) -> bool:
    return first == second or unquote(first) == unquote(second)
