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
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any

from peftfix.diagnostics import Diagnostic, Location

MARKER = "# %% peftfix: cell {number}"
MARKER_LINE = re.compile(r"^# %% peftfix: cell (\d+)\n?$")
MASK = "pass  # peftfix: ipython {index}"
MASK_LINE = re.compile(r"^(\s*)pass  # peftfix: ipython (\d+)(\n?)$")
# Line magics, shell escapes and help requests (`%time f()`, `!pip install peft`, `model.train?`, `?model`) and
# assignments from them (`files = !ls`, `t = %timeit -o f()`): not Python, skipped.
IPYTHON_LINE = re.compile(r"^\s*(?:[%!?]|\w[\w.]*\?\??\s*$|[\w.\[\]'\", ]+=\s*[%!])")


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

    def program(self, unparsable: Collection[int] = ()) -> str:
        """The code cells as one program; the cells numbered in ``unparsable`` are masked whole."""
        self.masked, self.starts = [], []
        lines: list[str] = []
        for number, cell in self.code_cells():
            lines.append(MARKER.format(number=number) + "\n")
            self.starts.append((len(lines) + 1, number))
            lines += _python_lines(cell, self.masked, mask_all=number in unparsable)
        return "".join(lines)

    def cell_programs(self) -> list[tuple[int, str]]:
        """(cell number, the cell as Python with IPython masked) of each code cell, to be parsed on its own."""
        return [(number, "".join(_python_lines(cell, []))) for number, cell in self.code_cells()]

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
        """The notebook's text with each code cell's source taken from ``program`` (as edited).

        Raises :class:`NotebookError` when the edits moved a cell marker or a masked line (a fix that crossed a
        cell's boundary): such a program cannot be split back into the cells it came from.
        """
        lines = program.splitlines(keepends=True)
        markers = [int(match.group(1)) for match in map(MARKER_LINE.match, lines) if match]
        tags = sorted(int(match.group(2)) for match in map(MASK_LINE.match, lines) if match)
        if markers != [number for number, _ in self.code_cells()] or tags != list(range(len(self.masked))):
            raise NotebookError("the edits cross a cell boundary: the notebook cannot be rebuilt from them")
        by_number: dict[int, list[str]] = {}
        current: list[str] | None = None
        for line in lines:
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

    def cell_source(self, number: int) -> str | None:
        """The source of cell ``number`` (1-based among all cells), or None."""
        cells = self.data.get("cells")
        if not isinstance(cells, list) or not 1 <= number <= len(cells) or not isinstance(cells[number - 1], dict):
            return None
        return "".join(_lines(cells[number - 1].get("source", "")))

    def in_cells(self, diagnostic: Diagnostic) -> Diagnostic:
        """``diagnostic`` (located in the program) located in its cell: the cell, and rows counted within it, for
        its location, its end and its fix's edits (whose offsets stay the program's, for applying them)."""
        if diagnostic.location is None:
            return diagnostic
        start = self.locate(diagnostic.location.row)
        if start is None:  # a program-only line (a marker): the first row of the next cell
            start = self.locate(diagnostic.location.row + 1) or (self.starts[0][1] if self.starts else 1, 1)
            return replace(diagnostic, cell=start[0], location=Location(start[1], 1), end_location=None)
        cell = start[0]

        def in_cell(location: Location) -> tuple[int, Location] | None:
            found = self.locate(location.row)
            return (found[0], Location(found[1], location.column)) if found is not None else None

        fix = diagnostic.fix
        if fix is not None and fix.edits:
            spans = [(edit, in_cell(edit.location), in_cell(edit.end_location)) for edit in fix.edits]
            if all(first and last and first[0] == last[0] for _, first, last in spans):
                fix = replace(
                    fix,
                    edits=tuple(
                        replace(edit, cell=first[0], location=first[1], end_location=last[1])
                        for edit, first, last in spans
                        if first and last
                    ),
                )
            else:  # an edit across a cell boundary cannot be shown in cell terms (nor is it applied)
                fix = replace(fix, edits=())
        end = in_cell(diagnostic.end_location) if diagnostic.end_location is not None else None
        return replace(
            diagnostic,
            cell=cell,
            location=Location(start[1], diagnostic.location.column),
            end_location=end[1] if end is not None and end[0] == cell else None,
            fix=fix,
        )


def cell_diffs(before: Notebook, after: Notebook, name: str) -> str:
    """A unified diff per changed code cell, headed `name:cell N` as Ruff shows notebook diffs."""
    import difflib

    old = {number: "".join(_lines(cell.get("source", ""))) for number, cell in before.code_cells()}
    chunks = []
    for number, cell in after.code_cells():
        new = "".join(_lines(cell.get("source", "")))
        if old.get(number) == new:
            continue
        for line in difflib.unified_diff(
            _with_final_newline(old.get(number, "")),
            _with_final_newline(new),
            fromfile=f"{name}:cell {number}",
            tofile=f"{name}:cell {number}",
        ):
            chunks.append(line)
    return "".join(chunks)


def _with_final_newline(text: str) -> list[str]:
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    return lines


def cell_of_row(program: str, row: int) -> tuple[int, int] | None:
    """(cell number, row in the cell) of row ``row`` of a notebook's program, read from its markers (for messages
    that name another line of the notebook); None above the first cell."""
    found = None
    for number, line in enumerate(program.splitlines()[:row], start=1):
        marker = MARKER_LINE.match(line)
        if marker:
            found = (int(marker.group(1)), number)
    return (found[0], row - found[1]) if found is not None and row > found[1] else None


def is_notebook(name: str) -> bool:
    return name.lower().endswith(".ipynb")


def _python_lines(cell: dict[str, Any], masked: list[str], mask_all: bool = False) -> list[str]:
    """The cell's lines as Python: IPython lines become tagged `pass` lines, their text appended to ``masked``."""
    source = _lines(cell.get("source", ""))
    # A cell magic (`%%capture`, `%%bash`) makes the whole cell something other than Python.
    mask_all = mask_all or (bool(source) and source[0].lstrip().startswith("%%"))
    lines = []
    continued, group_indent = False, ""
    for line in source:
        body = line.rstrip("\r\n")
        if mask_all or continued or IPYTHON_LINE.match(body):
            if not continued:  # continuation lines of `!pip install a \` keep the first line's indent
                group_indent = "" if mask_all else body[: len(body) - len(body.lstrip())]
            lines.append(group_indent + MASK.format(index=len(masked)) + "\n")
            masked.append(line)
            continued = not mask_all and body.endswith("\\")
        else:
            lines.append(line if line.endswith("\n") else line + "\n")
    return lines


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
