"""Applying LSP text edits as a client does, independently of the server's code: positions are 0-based lines
(split at \\n, \\r\\n and \\r) and code units of the negotiated encoding (UTF-16 unless agreed otherwise) within
the line."""

from __future__ import annotations

import re
from collections.abc import Iterable

from lsprotocol import types

_AFTER_LINE_BREAK = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")


def code_units(text: str, encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """How long ``text`` is in an LSP position encoding's units."""
    if encoding == types.PositionEncodingKind.Utf8:
        return len(text.encode("utf-8"))
    if encoding == types.PositionEncodingKind.Utf32:
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def offset(text: str, position: types.Position, encoding: str = types.PositionEncodingKind.Utf16) -> int:
    """The index into ``text`` of an LSP position."""
    lines = _AFTER_LINE_BREAK.split(text)
    if position.line >= len(lines):
        return len(text)
    start = sum(len(line) for line in lines[: position.line])
    line = lines[position.line].rstrip("\r\n")
    units = 0
    for index, character in enumerate(line):
        if units >= position.character:
            return start + index
        units += code_units(character, encoding)
    return start + len(line)


def apply_text_edits(
    text: str, edits: Iterable[types.TextEdit], encoding: str = types.PositionEncodingKind.Utf16
) -> str:
    """``text`` with ``edits`` (non-overlapping, all relative to the original text) applied."""
    spans = sorted(
        (
            (offset(text, edit.range.start, encoding), offset(text, edit.range.end, encoding), edit.new_text)
            for edit in edits
        ),
        reverse=True,
    )
    for start, end, new_text in spans:
        text = text[:start] + new_text + text[end:]
    return text


def edits_by_uri(edit: types.WorkspaceEdit) -> dict[str, list[types.TextEdit]]:
    """The text edits of a workspace edit by document, whether sent as `documentChanges` or `changes`."""
    if edit.document_changes is not None:
        by_uri: dict[str, list[types.TextEdit]] = {}
        for change in edit.document_changes:
            assert isinstance(change, types.TextDocumentEdit), change
            by_uri.setdefault(change.text_document.uri, []).extend(change.edits)
        return by_uri
    return {uri: list(edits) for uri, edits in (edit.changes or {}).items()}
