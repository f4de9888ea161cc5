"""A finding's source snippet in the text output's full format, as Ruff draws it:

      |
   38 |     )
   39 |     model = get_peft_model(base, lora_config)
      |             ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ PF201
   40 |     model = PeftModel.from_pretrained(model, ADAPTER_PATH)
      |
      = help: Remove the `get_peft_model` call and load the adapter onto the base model

and, when fixes are shown, the fix as a diff of the lines it changes (a notebook's per cell). Markers are placed
by display width, so a wide character or a tab before the span keeps them under it.
"""

from __future__ import annotations

import difflib
import unicodedata
from itertools import groupby
from typing import Optional

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Location
from peftfix.output.common import style
from peftfix.output.snippets import SourceLines

CONTEXT_LINES = 2  # shown before and after the span
MAX_SPAN_LINES = 8  # a longer span shows its first and last lines around an ellipsis
TAB_WIDTH = 4
_FIX_TITLES = {
    Applicability.SAFE: "Safe fix",
    Applicability.UNSAFE: "Unsafe fix",
    Applicability.DISPLAY_ONLY: "Display-only fix",
}


def snippet_lines(diagnostic: Diagnostic, sources: SourceLines, color: bool, show_fix: bool = False) -> list[str]:
    """The lines drawn under a finding's header; none when its source cannot be read back."""
    start = diagnostic.location
    lines = sources.lines(diagnostic)
    if start is None or lines is None or not 1 <= start.row <= len(lines):
        return []
    end = diagnostic.end_location if diagnostic.end_location is not None else start
    last_row = min(max(end.row, start.row), len(lines))
    first = max(1, start.row - CONTEXT_LINES)
    last = min(len(lines), last_row + CONTEXT_LINES)
    while first < start.row and not lines[first - 1].strip():
        first += 1
    while last > last_row and not lines[last - 1].strip():
        last -= 1
    width = len(str(last))

    def gutter(number: object = "") -> str:
        return style(f"{number!s:>{width}} |", color, fg="blue", bold=True)

    multiline = last_row > start.row
    out = [gutter()]
    for row in range(first, last + 1):
        if start.row + MAX_SPAN_LINES // 2 <= row <= last_row - MAX_SPAN_LINES // 2:
            if row == start.row + MAX_SPAN_LINES // 2:
                out.append(style(f"{'...':>{width}}", color, fg="blue", bold=True))
            continue
        text = lines[row - 1]
        # A multi-line span is drawn as annotate-snippets draws it: a lane left of the code links its ends.
        lane = ("| " if start.row < row <= last_row else "  ") if multiline else ""
        out.append(f"{gutter(row)} {style(lane, color, fg='red', bold=True)}{_expand(text)}".rstrip())
        if not multiline:
            if row == start.row:
                marks = _markers(text, start.column, end.column if end.row == row else len(text) + 1)
                out.append(f"{gutter()} {style(marks + ' ' + diagnostic.code, color, fg='red', bold=True)}")
        elif row == start.row:
            out.append(f"{gutter()} {style(' ' + _lane_to(text, start.column), color, fg='red', bold=True)}")
        elif row == last_row:
            stop = end.column - 1 if end.row == row else len(text)
            marks = "|" + _lane_to(text, max(stop, 1)) + " " + diagnostic.code
            out.append(f"{gutter()} {style(marks, color, fg='red', bold=True)}")
    out.append(gutter())
    fix = diagnostic.fix
    if fix is not None and fix.message:
        out.append(f"{' ' * width} {style('= help:', color, fg='cyan', bold=True)} {fix.message}")
    if show_fix and fix is not None and fix.edits:
        out += ["", style(f"ℹ {_FIX_TITLES[fix.applicability]}", color, fg="cyan", bold=True)]
        out += _fix_diff(diagnostic, fix.edits, sources, color)
    out.append("")
    return out


def _fix_diff(diagnostic: Diagnostic, edits: tuple[Edit, ...], sources: SourceLines, color: bool) -> list[str]:
    out = []
    by_cell = groupby(sorted(edits, key=lambda edit: (edit.cell or 0, edit.location)), key=lambda edit: edit.cell)
    for cell, cell_edits in by_cell:
        before = sources.lines(diagnostic, cell)
        after = _apply(before, list(cell_edits)) if before is not None else None
        if before is None or after is None:
            continue
        if cell is not None:
            out.append(style(f"cell {cell}", color, bold=True))
        out += _diff_rows(before, after, color)
    return out


def _apply(lines: list[str], edits: list[Edit]) -> Optional[list[str]]:
    """``lines`` with ``edits`` made, by their locations; None when an edit lies outside them."""
    text = "\n".join(lines)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line) + 1)

    def offset(location: Location) -> Optional[int]:
        if not 1 <= location.row <= len(lines) or location.column - 1 > len(lines[location.row - 1]) + 1:
            return None
        return starts[location.row - 1] + location.column - 1

    for edit in sorted(edits, key=lambda edit: edit.location, reverse=True):
        begin, stop = offset(edit.location), offset(edit.end_location)
        if begin is None or stop is None:
            return None
        text = text[:begin] + edit.content + text[stop:]
    return text.split("\n")


def _diff_rows(before: list[str], after: list[str], color: bool) -> list[str]:
    """Ruff-style rows: old and new line numbers, `-` removed and `+` added lines, one line of context."""
    width = len(str(max(len(before), len(after))))
    rows = []
    for index, group in enumerate(difflib.SequenceMatcher(None, before, after, autojunk=False).get_grouped_opcodes(1)):
        if index:
            rows.append(style(f"{'...':>{width * 2 + 2}}", color, fg="blue"))  # ends under the gutter's bar
        for tag, old_start, old_end, new_start, new_end in group:
            if tag == "equal":
                for old, new in zip(range(old_start, old_end), range(new_start, new_end), strict=True):
                    rows.append(f"{old + 1:>{width}} {new + 1:>{width}} |  {_expand(before[old])}".rstrip())
                continue
            for old in range(old_start, old_end):
                rows.append(style(f"{old + 1:>{width}} {'':>{width}} |- {_expand(before[old])}", color, fg="red"))
            for new in range(new_start, new_end):
                rows.append(style(f"{'':>{width}} {new + 1:>{width}} |+ {_expand(after[new])}", color, fg="green"))
    return rows


def _expand(text: str) -> str:
    return text.replace("\t", " " * TAB_WIDTH)


def _markers(text: str, begin: int, stop: int) -> str:
    """Spaces up to column ``begin`` and carets to ``stop`` (1-based, end exclusive), by display width."""
    begin = max(1, min(begin, len(text) + 1))
    stop = max(begin, min(stop, len(text) + 1))
    return " " * _width(text[: begin - 1]) + "^" * max(1, _width(text[begin - 1 : stop - 1]))


def _lane_to(text: str, column: int) -> str:
    """Underscores from the lane to column ``column`` (1-based) of ``text``, and a caret under it."""
    column = max(1, min(column, len(text) + 1))
    return "_" * (1 + _width(text[: column - 1])) + "^"


def _width(text: str) -> int:
    total = 0
    for char in text:
        if char == "\t":
            total += TAB_WIDTH
        elif unicodedata.combining(char):
            continue
        else:
            total += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return total
