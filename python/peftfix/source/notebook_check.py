"""Checking and fixing a Jupyter notebook: its code cells run through the engine as one program, the findings
and fixes brought back to the cells.

A cell that does not parse on its own is reported (PF000 at its cell and line) and masked, so the other cells are
still checked; such a notebook is not fixed, as a Python file that does not parse is not. A fix that would cross a
cell's boundary is not applied: its finding stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Optional

from peftfix.diagnostics import Location
from peftfix.source import notebook as notebooks
from peftfix.source.decoding import SourceError
from peftfix.source.engine import FileOutcome, check_text, parse_errors
from peftfix.source.flow.project import Project
from peftfix.source.parsing import parse_python
from peftfix.source.settings import Settings


def check_notebook(
    data: bytes,
    filename: str,
    settings: Settings,
    fix: bool = False,
    *,
    project: Optional[Project] = None,
    with_edits: bool = True,
    importers: Iterable[str] = (),
) -> FileOutcome:
    """Like :func:`peftfix.source.engine.check_bytes`, for a notebook's JSON: diagnostics carry their cell, and
    ``new_bytes`` is the notebook with the fixed cells' sources (everything else kept)."""
    try:
        text = data.decode("utf-8")  # nbformat files are UTF-8 JSON
        notebook = notebooks.read(text)
    except (UnicodeDecodeError, notebooks.NotebookError) as error:
        reason = f"not UTF-8: {error.reason}" if isinstance(error, UnicodeDecodeError) else str(error)
        return FileOutcome(filename, parse_errors(SourceError(reason), filename, settings))

    broken = _unparsable_cells(notebook)
    program = notebook.program(broken)
    outcome = check_text(
        program, filename, settings, fix and not broken, project=project, with_edits=with_edits, importers=importers
    )
    cell_errors = [
        replace(diagnostic, cell=number)
        for number, (message, location) in sorted(broken.items())
        for diagnostic in parse_errors(SourceError(message, location), filename, settings)
    ]
    outcome.diagnostics = cell_errors + [notebook.in_cells(d) for d in outcome.diagnostics]
    outcome.fixed = [notebook.in_cells(d) for d in outcome.fixed]
    outcome.dropped = [notebook.in_cells(d) for d in outcome.dropped]
    fixed_program = outcome.new_source
    outcome.source = outcome.new_source = None  # the program is not the file: the diff is made per cell
    if fixed_program is not None:
        _write_back(outcome, notebook, fixed_program, text, filename)
    return outcome


def _write_back(
    outcome: FileOutcome, notebook: notebooks.Notebook, fixed_program: str, text: str, filename: str
) -> None:
    """Put the fixed program back into the notebook's cells, or, when that cannot be done, keep the findings."""
    try:
        new_text = notebook.with_program(fixed_program)
    except notebooks.NotebookError as error:
        outcome.diagnostics += outcome.fixed
        outcome.fixed = []
        outcome.not_fixed = str(error)
        return
    outcome.new_bytes = new_text.encode("utf-8")
    outcome.diff = notebooks.cell_diffs(notebooks.read(text), notebook, filename)


def _unparsable_cells(notebook: notebooks.Notebook) -> dict[int, tuple[str, Location]]:
    """Cell number -> (why, where in the cell) for each code cell that CPython cannot parse on its own."""
    broken = {}
    for number, source in notebook.cell_programs():
        try:
            parse_python(source)
        except SyntaxError as error:
            broken[number] = (f"syntax error: {error.msg}", Location(error.lineno or 1, max(error.offset or 1, 1)))
        except (RecursionError, MemoryError, ValueError) as error:
            broken[number] = (f"cannot parse: {type(error).__name__}: {error or 'nested too deeply'}", Location(1, 1))
    return broken
