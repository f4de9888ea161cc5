"""Notebooks read as one program and written back: notebooks made by nbformat, the library Jupyter saves with."""

from __future__ import annotations

import nbformat
import pytest

from peftfix.source.notebook import NotebookError, read


def _notebook(*cells) -> str:
    nb = nbformat.v4.new_notebook()
    for kind, source in cells:
        make = nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell
        nb.cells.append(make(source))
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="hello\\n")] if cells[0][0] == "code" else []
    return nbformat.writes(nb)


TEXT = _notebook(
    ("code", "!pip install peft\nimport torch\n%time x = 1"),
    ("markdown", "# Train"),
    ("code", "%%capture\nprint('quiet')"),
    ("code", "model = get_peft_model(model, config)\nmodel.train?"),
)


def test_code_cells_read_as_one_program_with_ipython_masked():
    notebook = read(TEXT)
    program = notebook.program()
    compile(program, "nb.ipynb", "exec")  # valid Python: magics and shell escapes are `pass`
    assert "import torch" in program and "get_peft_model(model, config)" in program
    assert "pip install" not in program and "print('quiet')" not in program
    row = program.splitlines().index("import torch") + 1
    assert notebook.locate(row) == (1, 2)
    row = program.splitlines().index("model = get_peft_model(model, config)") + 1
    assert notebook.locate(row) == (4, 1)  # cells are numbered among all cells, markdown included


def test_an_unchanged_program_writes_the_notebook_back_byte_for_byte():
    notebook = read(TEXT)
    assert notebook.with_program(notebook.program()) == TEXT


def test_an_edit_changes_only_its_cell_and_keeps_outputs_ids_and_magics():
    notebook = read(TEXT)
    edited = notebook.program().replace("model = get_peft_model(model, config)", "model = PeftModel(model)")
    after = nbformat.reads(notebook.with_program(edited), as_version=4)
    nbformat.validate(after)
    before = nbformat.reads(TEXT, as_version=4)
    assert after.cells[3].source == "model = PeftModel(model)\nmodel.train?"
    for index in (0, 1, 2):
        assert after.cells[index] == before.cells[index]  # source, outputs, id, metadata
    assert [cell.id for cell in after.cells] == [cell.id for cell in before.cells]


@pytest.mark.parametrize("text", ["{not json", "[]", '{"cells": 3}'])
def test_what_is_not_a_notebook_is_an_error_not_a_crash(text):
    with pytest.raises(NotebookError, match="not a notebook"):
        read(text)
