"""Jupyter notebooks as Python programs: the code cells read as one program, in order, and back.

- :func:`read` parses the notebook JSON (its key order kept) and notes how it was formatted (indent, trailing
  newline), so that writing it back changes nothing but the edited cells.
- :meth:`Notebook.program` joins the code cells, each opened by a marker comment line, into one program: a
  model loaded in cell 2 and trained in cell 5 is one flow. IPython syntax that is not Python (``!pip install``,
  ``%time``, ``ls?``) becomes a ``pass`` of the same indentation, tagged so it can be put back; a cell whose first
  line is a cell magic (``%%capture``) becomes ``pass`` lines throughout.
- :meth:`Notebook.locate` maps a row of the program to (cell number, row in the cell), cells numbered from 1
  among all cells of the notebook, as Jupyter shows them and Ruff reports them.
- :meth:`Notebook.with_program` splits an edited program back into its cells, restores the masked lines and
  returns the notebook's new text; outputs, metadata, cell ids and every other cell are untouched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

MARKER = "# %% peftfix: cell {number}"
MARKER_LINE = re.compile(r"^# %% peftfix: cell (\d+)\n?$")
MASK = "pass  # peftfix: ipython {index}"
MASK_LINE = re.compile(r"^(\s*)pass  # peftfix: ipython (\d+)(\n?)$")
# Line magics, shell escapes and help requests: not Python, skipped.
IPYTHON_LINE = re.compile(r"^\s*(?:[%!]|\?|\w[\w.]*\?\??\s*$)")


class NotebookError(ValueError):
    """Not a notebook: invalid JSON, or JSON without a cell list."""


@dataclass
class Notebook:
    data: dict[str, Any]
    indent: int | None
    trailing_newline: bool
    ensure_ascii: bool
    # Filled by program(): the masked lines, by tag, and the first program row of each code cell.
    masked: list[str] = field(default_factory=list)
    starts: list[tuple[int, int]] = field(default_factory=list)  # (first program row of the cell, cell number)

    def code_cells(self) -> list[tuple[int, dict[str, Any]]]:
        """(number from 1 among all cells, cell) of the code cells, in order."""
        cells = self.data.get("cells")
        return [
            (number, cell)
            for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1)
            if isinstance(cell, dict) and cell.get("cell_type") == "code"
        ]

    def program(self) -> str:
        self.masked, self.starts = [], []
        lines: list[str] = []
        for number, cell in self.code_cells():
            lines.append(MARKER.format(number=number) + "\n")
            self.starts.append((len(lines) + 1, number))
            source = _lines(cell.get("source", ""))
            whole_cell = bool(source) and source[0].lstrip().startswith("%%")
            for line in source:
                body = line.rstrip("\n")
                if whole_cell or IPYTHON_LINE.match(body):
                    indent = body[: len(body) - len(body.lstrip())]
                    lines.append(indent + MASK.format(index=len(self.masked)) + "\n")
                    self.masked.append(line)
                else:
                    lines.append(line if line.endswith("\n") else line + "\n")
        return "".join(lines)

    def locate(self, row: int) -> tuple[int, int] | None:
        """(cell number, row in the cell) of program row ``row`` (1-based); None for a marker line."""
        found = None
        for start, number in self.starts:
            if start > row:
                break
            found = (number, row - start + 1)
        if found is None or found[1] < 1:
            return None
        return found

    def with_program(self, program: str) -> str:
        """The notebook's text with each code cell's source taken from ``program`` (as edited)."""
        by_number: dict[int, list[str]] = {}
        current: list[str] | None = None
        for line in program.splitlines(keepends=True):
            marker = MARKER_LINE.match(line)
            if marker:
                current = by_number.setdefault(int(marker.group(1)), [])
                continue
            if current is None:  # a line a fix put above the first cell: it belongs to the first
                first = self.code_cells()[0][0] if self.code_cells() else None
                if first is None:
                    continue
                current = by_number.setdefault(first, [])
            mask = MASK_LINE.match(line)
            current.append(self.masked[int(mask.group(2))] if mask else line)
        for number, cell in self.code_cells():
            old = cell.get("source", "")
            new = by_number.get(number, [])
            # Jupyter saves a cell's last line without its newline; program() added one.
            if new and not "".join(_lines(old)).endswith("\n"):
                new[-1] = new[-1].rstrip("\n")
            if "".join(new) != "".join(_lines(old)):
                cell["source"] = "".join(new) if isinstance(old, str) else new
        return dump(self)


def _lines(source: Any) -> list[str]:
    if isinstance(source, list):
        return [str(part) for part in source]
    return str(source).splitlines(keepends=True)


def read(text: str) -> Notebook:
    try:
        data = json.loads(text)
    except ValueError as error:
        raise NotebookError(f"not a notebook: invalid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list):
        raise NotebookError("not a notebook: no list of cells")
    indent_match = re.search(r"\n( +)\S", text)
    return Notebook(
        data,
        indent=len(indent_match.group(1)) if indent_match else None,
        trailing_newline=text.endswith("\n"),
        ensure_ascii=text.isascii(),
    )


def dump(notebook: Notebook) -> str:
    """The notebook as JSON, written as Jupyter writes it (the file's own indent, non-ASCII kept as it was)."""
    text = json.dumps(notebook.data, indent=notebook.indent, ensure_ascii=notebook.ensure_ascii)
    return text + ("\n" if notebook.trailing_newline else "")
