"""peftfix diagnostics and fixes as LSP diagnostics, ranges and text edits.

peftfix locates by 1-based row and a 1-based column counting characters; LSP by 0-based line and a character
offset in the code units the client and server agreed on (UTF-16 unless the client offers better). pygls' position
codec counts the units. Lines are split where both Python and LSP split them (\\n, \\r\\n, \\r), not where
``str.splitlines`` also would (form feed, U+2028...), so rows mean the same on both sides.
"""

from __future__ import annotations

import re
from typing import Optional

from lsprotocol import types
from pygls.workspace.position_codec import PositionCodec

from peftfix.about import rule_url
from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix, Location

SOURCE = "peftfix"
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
# After a line break, except between the two characters of \r\n.
_AFTER_LINE_BREAK = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")
_SEVERITIES = {
    "error": types.DiagnosticSeverity.Error,
    "warning": types.DiagnosticSeverity.Warning,
    "info": types.DiagnosticSeverity.Information,
    "note": types.DiagnosticSeverity.Information,
}


class TextPositions:
    """Positions in one text (a file, or a notebook cell) in the client's units."""

    def __init__(self, text: str, codec: PositionCodec) -> None:
        self.text = text
        self.lines = _LINE_BREAK.split(text)
        self._codec = codec

    def position(self, location: Optional[Location]) -> types.Position:
        """A peftfix location as an LSP position; none (a finding about the whole file) is the file's start."""
        if location is None:
            return types.Position(line=0, character=0)
        in_characters = types.Position(line=max(location.row - 1, 0), character=max(location.column - 1, 0))
        return self._codec.position_to_client_units(self.lines, in_characters)

    def range(self, start: Optional[Location], end: Optional[Location]) -> types.Range:
        first = self.position(start)
        return types.Range(start=first, end=self.position(end) if end is not None else first)

    def end(self) -> types.Position:
        """The position after the text's last character."""
        return types.Position(line=len(self.lines) - 1, character=self._codec.client_num_units(self.lines[-1]))


def diagnostic(finding: Diagnostic, positions: TextPositions) -> types.Diagnostic:
    return types.Diagnostic(
        range=positions.range(finding.location, finding.end_location),
        message=finding.message,
        severity=_SEVERITIES.get(finding.severity, types.DiagnosticSeverity.Error),
        code=finding.code,
        code_description=types.CodeDescription(href=rule_url(finding.code)),
        source=SOURCE,
    )


def offers_edit(fix: Optional[Fix]) -> bool:
    """Whether a fix can be offered as a code action: a display-only fix is advice, not an edit."""
    return fix is not None and bool(fix.edits) and fix.applicability is not Applicability.DISPLAY_ONLY


def fix_title(finding: Diagnostic, fix: Fix) -> str:
    title = f"peftfix ({finding.code}): {fix.message or 'apply the fix'}"
    return title + " (unsafe)" if fix.applicability is Applicability.UNSAFE else title


def text_edit(edit: Edit, positions: TextPositions) -> types.TextEdit:
    return types.TextEdit(range=positions.range(edit.location, edit.end_location), new_text=edit.content)


def replacement(old: TextPositions, new_text: str) -> Optional[types.TextEdit]:
    """One edit turning ``old`` into ``new_text``: the lines between their common first and last lines (an edit of
    the whole text would move the editor's cursor and folds); None when they are equal."""
    if old.text == new_text:
        return None
    old_lines, new_lines = _lines_with_breaks(old.text), _lines_with_breaks(new_text)
    shorter = min(len(old_lines), len(new_lines))
    head = 0
    while head < shorter and old_lines[head] == new_lines[head]:
        head += 1
    tail = 0
    while tail < shorter - head and old_lines[-1 - tail] == new_lines[-1 - tail]:
        tail += 1
    start = types.Position(line=head, character=0)
    if tail:
        end = types.Position(line=len(old_lines) - tail, character=0)
    else:
        end = old.end()
    return types.TextEdit(
        range=types.Range(start=start, end=end), new_text="".join(new_lines[head : len(new_lines) - tail])
    )


def _lines_with_breaks(text: str) -> list[str]:
    return [line for line in _AFTER_LINE_BREAK.split(text) if line]


def ranges_touch(first: types.Range, second: types.Range) -> bool:
    """Whether two ranges overlap or meet (a cursor at either end of a finding is on it)."""
    return _key(first.start) <= _key(second.end) and _key(second.start) <= _key(first.end)


def contains(outer: types.Range, position: types.Position) -> bool:
    return _key(outer.start) <= _key(position) <= _key(outer.end)


def _key(position: types.Position) -> tuple[int, int]:
    return position.line, position.character
