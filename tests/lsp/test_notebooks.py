"""`peftfix server` on a Jupyter notebook (LSP 3.17 notebook sync): findings land on the cell they are in, a fix
that edits several cells edits each cell's document as `peftfix --apply` edits the notebook file, and a changed
cell is checked again."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner
from lsprotocol import types
from pytest_lsp import LanguageClient

from lsp.conftest import forget, published
from lsp.edits import apply_text_edits, edits_by_uri
from peftfix.cli import cli

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Cell 1 is markdown (it still counts in the numbering), cell 2 loads the base, cell 3 wraps it in a stray
# get_peft_model before loading the trained adapter (PF201; its fix edits the import in cell 2 and cell 3).
CELLS = [
    (types.NotebookCellKind.Markup, "markdown", "# Evaluate the adapter"),
    (
        types.NotebookCellKind.Code,
        "python",
        textwrap.dedent("""\
            from peft import LoraConfig, PeftModel, get_peft_model
            from transformers import AutoModelForCausalLM

            base = AutoModelForCausalLM.from_pretrained("base")"""),
    ),
    (
        types.NotebookCellKind.Code,
        "python",
        textwrap.dedent("""\
            model = get_peft_model(base, LoraConfig(task_type="CAUSAL_LM"))
            model = PeftModel.from_pretrained(model, "adapter")"""),
    ),
]


def notebook_json(texts: list[str]) -> str:
    cells = []
    for index, ((kind, _language, _text), text) in enumerate(zip(CELLS, texts, strict=True)):
        cell = {"cell_type": "markdown" if kind == types.NotebookCellKind.Markup else "code", "id": f"c{index}"}
        cell["metadata"] = {}
        if kind == types.NotebookCellKind.Code:
            cell.update(execution_count=None, outputs=[])
        cell["source"] = text
        cells.append(cell)
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}, indent=1)


def applied_by_cli(path: Path, texts: list[str]) -> list[str]:
    """Each cell's text after `peftfix --apply` on a notebook file of these cells."""
    path.write_text(notebook_json(texts), encoding="utf-8")
    result = CliRunner().invoke(cli, ["--apply", "--no-cache", str(path)])
    assert result.exit_code in (0, 1), result.output
    return ["".join(cell["source"]) for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]]


async def test_notebook_findings_go_to_their_cell_and_fixes_edit_the_cells(
    client: LanguageClient, workspace: Path
) -> None:
    path = workspace / "evaluate.ipynb"
    texts = [text for _kind, _language, text in CELLS]
    path.write_text(notebook_json(texts), encoding="utf-8")
    notebook_uri = path.as_uri()
    # As VS Code names cells: the notebook's path, and a fragment per cell.
    cell_uris = [f"vscode-notebook-cell:{path.as_posix()}#W{index}" for index in range(len(CELLS))]
    forget(client, *cell_uris)
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=notebook_uri,
                notebook_type="jupyter-notebook",
                version=1,
                cells=[
                    types.NotebookCell(kind=kind, document=uri)
                    for (kind, _, _), uri in zip(CELLS, cell_uris, strict=True)
                ],
            ),
            cell_text_documents=[
                types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
                for (_, language, text), uri in zip(CELLS, cell_uris, strict=True)
            ],
        )
    )
    markdown, first, second = await published(client, *cell_uris)
    assert markdown == [] and first == []
    (diagnostic,) = second
    assert diagnostic.code == "PF201"
    line = texts[2].splitlines()[0]
    assert diagnostic.range == types.Range(
        start=types.Position(line=0, character=line.index("get_peft_model")),
        end=types.Position(line=0, character=len(line)),
    )

    # The quick fix on cell 3 also drops the import of cell 2: each cell's document gets its own edits.
    actions = await client.text_document_code_action_async(
        types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(uri=cell_uris[2]),
            range=diagnostic.range,
            context=types.CodeActionContext(diagnostics=[diagnostic], only=["quickfix"]),
        )
    )
    (action,) = actions or []
    assert isinstance(action, types.CodeAction) and action.edit is not None
    edits = edits_by_uri(action.edit)
    assert set(edits) == {cell_uris[1], cell_uris[2]}
    fixed = [apply_text_edits(text, edits.get(uri, [])) for text, uri in zip(texts, cell_uris, strict=True)]
    assert fixed == applied_by_cli(workspace / "copy.ipynb", texts)

    # The fixed text sent as the cells' changes: nothing left to report.
    forget(client, *cell_uris)
    client.notebook_document_did_change(
        types.DidChangeNotebookDocumentParams(
            notebook_document=types.VersionedNotebookDocumentIdentifier(uri=notebook_uri, version=2),
            change=types.NotebookDocumentChangeEvent(
                cells=types.NotebookDocumentCellChanges(
                    text_content=[
                        types.NotebookDocumentCellContentChanges(
                            document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
                            changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
                        )
                        for uri, text in zip(cell_uris[1:], fixed[1:], strict=True)
                    ]
                )
            ),
        )
    )
    assert await published(client, *cell_uris) == [[], [], []]

    # Closing the notebook clears its cells.
    forget(client, *cell_uris)
    client.notebook_document_did_close(
        types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=notebook_uri),
            cell_text_documents=[types.TextDocumentIdentifier(uri=uri) for uri in cell_uris],
        )
    )
    assert await published(client, *cell_uris) == [[], [], []]
