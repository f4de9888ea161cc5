"""The pieces of `peftfix server` that need no client: positions in the negotiated encoding, the one edit of a
"fix all", the bytes a document is checked as, and the notebook JSON built from a notebook document's cells."""

from __future__ import annotations

import nbformat
from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from lsp.edits import apply_text_edits
from peftfix.diagnostics import Location
from peftfix.lsp import notebooks
from peftfix.lsp.checking import check_python, source_bytes
from peftfix.lsp.convert import TextPositions, replacement

UTF16 = PositionCodec(types.PositionEncodingKind.Utf16)


def test_lines_are_split_where_python_splits_them() -> None:
    # A form feed and U+2028 end no line for Python (str.splitlines would split there); \r and \r\n do.
    text = "a = 1\x0c; b = 2\u2028; c\r\nx\ry = '😀'; z\n"
    positions = TextPositions(text, UTF16)
    assert positions.position(Location(1, 13)) == types.Position(line=0, character=12)
    assert positions.position(Location(3, 1)) == types.Position(line=2, character=0)
    # `z` is the 10th character of its line, after one outside the BMP (two UTF-16 units): unit 10 (0-based).
    assert positions.position(Location(3, 10)) == types.Position(line=2, character=10)
    assert positions.end() == types.Position(line=3, character=0)


@settings(max_examples=300, deadline=None)
@given(
    old=st.text(alphabet="ab\n\ré😀", max_size=12),
    new=st.text(alphabet="ab\n\ré😀", max_size=12),
)
def test_one_edit_turns_any_text_into_any_other(old: str, new: str) -> None:
    edit = replacement(TextPositions(old, UTF16), new)
    if old == new:
        assert edit is None
    else:
        assert edit is not None
        assert apply_text_edits(old, [edit]) == new


def test_the_edit_of_a_fix_all_spans_only_the_changed_lines() -> None:
    old = "keep\nold one\nold two\nkeep too\n"
    edit = replacement(TextPositions(old, UTF16), "keep\nnew\nkeep too\n")
    assert edit == types.TextEdit(
        range=types.Range(start=types.Position(line=1, character=0), end=types.Position(line=3, character=0)),
        new_text="new\n",
    )


def test_a_document_is_checked_as_the_bytes_its_coding_cookie_names() -> None:
    latin1 = "# -*- coding: latin-1 -*-\nname = 'café'\n"
    assert source_bytes(latin1) == (latin1.encode("latin-1"), "iso-8859-1")
    assert source_bytes("name = 'café'\n") == ("name = 'café'\n".encode(), "utf-8")
    # Text the cookie's encoding cannot hold: as the editor has it, for the checker to report.
    assert source_bytes("# coding: ascii\nname = 'café'\n")[1] == "utf-8"


def test_an_unsaved_document_is_checked_without_a_path() -> None:
    text = "from peft import LoraConfig\nconfig = LoraConfig(r=8, target_modules=['q_proj', 'dropout'])\n"
    (finding,) = check_python(text, None)
    assert finding.diagnostic.code == "PF301"
    assert finding.diagnostic.filename == "-"


def test_notebook_cells_become_a_valid_nbformat_4_notebook() -> None:
    cells = [
        notebooks.Cell(notebooks.CellKind.MARKDOWN, "# Title"),
        notebooks.Cell(notebooks.CellKind.CODE, "import peft\nx = 'é'"),
        notebooks.Cell(notebooks.CellKind.RAW, "%%R\nx <- 1"),
    ]
    data = notebooks.to_json(cells)
    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    nbformat.validate(notebook)
    assert [cell.cell_type for cell in notebook.cells] == ["markdown", "code", "raw"]
    assert notebooks.cell_texts(data) == [cell.text for cell in cells]
