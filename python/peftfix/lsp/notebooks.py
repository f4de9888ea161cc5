"""A notebook document's cells as the nbformat-4 JSON the checker reads, and the cells' texts out of the JSON a fix
returns.

Every cell is written, markdown and raw ones included: the checker numbers cells among all cells of the notebook
(as Jupyter shows them), and the server maps a finding's cell number back to the cell's document by position.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass

# The name that makes the checker read content as a notebook.
NOTEBOOK_SUFFIX = ".ipynb"


class CellKind(str, enum.Enum):
    """nbformat's cell types."""

    CODE = "code"  # Python: checked
    MARKDOWN = "markdown"
    RAW = "raw"  # a code cell in another language, or one the editor did not send: kept for the numbering


@dataclass(frozen=True)
class Cell:
    kind: CellKind
    text: str


def to_json(cells: Sequence[Cell]) -> bytes:
    """A minimal valid nbformat-4.5 notebook of ``cells``, in order."""
    notebook = {
        "cells": [_cell_json(index, cell) for index, cell in enumerate(cells)],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(notebook, indent=1, ensure_ascii=False).encode("utf-8")


def _cell_json(index: int, cell: Cell) -> dict[str, object]:
    data: dict[str, object] = {"cell_type": cell.kind.value, "id": f"cell-{index + 1}", "metadata": {}}
    if cell.kind is CellKind.CODE:
        data.update(execution_count=None, outputs=[])
    data["source"] = cell.text
    return data


def cell_texts(data: bytes) -> list[str]:
    """Each cell's text, in order, from a notebook's JSON (a cell's source is a string or a list of lines)."""
    notebook = json.loads(data)
    texts = []
    for cell in notebook["cells"]:
        source = cell.get("source", "")
        texts.append("".join(source) if isinstance(source, list) else str(source))
    return texts
