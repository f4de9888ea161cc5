"""The source lines a finding points at, for the text output's full format.

Files are read back when the report is printed (after `--apply`, what remains is located in the fixed file,
which is what is on disk then); text that is not on disk (stdin) is handed in. A notebook's finding shows its
cell. Anything that cannot be read shows no snippet: the one-line header still says where the finding is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Optional

from peftfix.diagnostics import Diagnostic

# Files larger than this are not read back for snippets (the header line still locates the finding).
MAX_SNIPPET_FILE_BYTES = 8 * 1024 * 1024


class SourceLines:
    """Lines of the checked files by name, read once each."""

    def __init__(self, texts: Optional[Mapping[str, str]] = None):
        self._texts: dict[str, Optional[str]] = dict(texts or {})
        self._lines: dict[tuple[str, Optional[int]], Optional[list[str]]] = {}

    def lines(self, diagnostic: Diagnostic, cell: Optional[int] = None) -> Optional[list[str]]:
        """The lines (without line ends) of the file, or of notebook cell ``cell`` (default: the finding's)."""
        cell = cell if cell is not None else diagnostic.cell
        key = (diagnostic.filename, cell)
        if key not in self._lines:
            self._lines[key] = self._read(diagnostic.filename, cell)
        return self._lines[key]

    def _read(self, filename: str, cell: Optional[int]) -> Optional[list[str]]:
        text = self._text(filename)
        if text is None:
            return None
        if cell is not None:
            from peftfix.source.notebook import NotebookError, read

            try:
                text = read(text).cell_source(cell)
            except NotebookError:
                return None
            if text is None:
                return None
        return _split(text)

    def _text(self, filename: str) -> Optional[str]:
        if filename not in self._texts:
            self._texts[filename] = _read_text(filename)
        return self._texts[filename]


def _read_text(filename: str) -> Optional[str]:
    from peftfix.files import read_regular
    from peftfix.source.decoding import SourceError, decode

    try:
        if os.path.getsize(filename) > MAX_SNIPPET_FILE_BYTES:
            return None
        data = read_regular(filename)
    except (OSError, ValueError):
        return None
    if filename.lower().endswith(".ipynb"):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return None
    try:
        return decode(data)[0]
    except SourceError:
        return None


def _split(text: str) -> list[str]:
    # Python's line ends only (\n, \r\n, \r): a form feed inside a line is not a line break.
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
