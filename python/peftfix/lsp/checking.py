"""An editor's document given to the checker `peftfix check -` runs: the bytes the saved file would hold, the
configuration the command line finds for its path, and only the findings that belong to that document.

Nothing here knows about LSP: a Python file is its text, a notebook its cells (see :mod:`peftfix.lsp.notebooks`).
"""

from __future__ import annotations

import io
import tokenize
from collections.abc import Sequence
from typing import Optional

from peftfix.diagnostics import Finding
from peftfix.lsp import notebooks
from peftfix.source import runner
from peftfix.source.config import ConfigError, ConfigResolver
from peftfix.source.notebook import is_notebook
from peftfix.source.runner import FixMode, run_stdin
from peftfix.source.settings import Settings

# What `peftfix check -` calls content without a file (an editor buffer never saved).
UNSAVED_NAME = "-"
# An unsaved notebook still needs a notebook's name: the checker reads `.ipynb` content as a notebook.
UNSAVED_NOTEBOOK_NAME = "untitled.ipynb"


class CheckFailed(Exception):
    """The document could not be checked: the configuration is invalid, or the checker failed on it."""


def check_python(text: str, path: Optional[str], with_edits: bool = False) -> list[Finding]:
    """The findings in a Python file's text (each with whether `peftfix --apply` would fix it); ``with_edits``:
    build the edits of their fixes (for code actions)."""
    data, _encoding = source_bytes(text)
    return _check(data, path or UNSAVED_NAME, with_edits)


def fix_python(text: str, path: Optional[str]) -> str:
    """The text with every fix `peftfix --apply` would apply (the configuration decides about unsafe fixes)."""
    data, encoding = source_bytes(text)
    return _fix(data, path or UNSAVED_NAME).decode(encoding)


def check_notebook(cells: Sequence[notebooks.Cell], path: Optional[str], with_edits: bool = False) -> list[Finding]:
    """The findings in a notebook's cells, each with the number of its cell (1-based among all cells) and rows
    counted within that cell."""
    return _check(notebooks.to_json(cells), _notebook_name(path), with_edits)


def fix_notebook(cells: Sequence[notebooks.Cell], path: Optional[str]) -> list[str]:
    """Each cell's text with every fix `peftfix --apply` would apply, in the order of ``cells``."""
    return notebooks.cell_texts(_fix(notebooks.to_json(cells), _notebook_name(path)))


def source_bytes(text: str) -> tuple[bytes, str]:
    """(the bytes a file with this text holds, their encoding): what its coding cookie names (PEP 263), else
    UTF-8, so that the checker decodes exactly the editor's text."""
    utf8 = text.encode("utf-8", "surrogatepass")
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(utf8).readline)
    except SyntaxError:  # an unknown encoding: the checker reports it as it reads the same bytes
        return utf8, "utf-8"
    if encoding == "utf-8-sig":  # a byte-order mark, which the text carries as U+FEFF already
        encoding = "utf-8"
    try:
        return text.encode(encoding), encoding
    except (UnicodeError, LookupError):  # the cookie's encoding cannot hold the text: the file could not be saved
        return utf8, "utf-8"


def _notebook_name(path: Optional[str]) -> str:
    if path is None:
        return UNSAVED_NOTEBOOK_NAME
    # A notebook opened from a file of another name is still read as a notebook.
    return path if is_notebook(path) else path + notebooks.NOTEBOOK_SUFFIX


def _check(data: bytes, name: str, with_edits: bool) -> list[Finding]:
    runner.forget_project_files()  # files edited since the last check are read again
    run, _output = run_stdin(data, name, _settings(name), FixMode.CHECK, with_edits=with_edits)
    if run.errors:
        raise CheckFailed("; ".join(reason for _path, reason in run.errors))
    # Following the document's imports may report findings located in other files: those are theirs to show.
    return [finding for finding in run.report.findings if finding.diagnostic.filename == name]


def _fix(data: bytes, name: str) -> bytes:
    runner.forget_project_files()  # files edited since the last check are read again
    run, output = run_stdin(data, name, _settings(name), FixMode.APPLY)
    if run.errors:
        raise CheckFailed("; ".join(reason for _path, reason in run.errors))
    return output


def _settings(name: str) -> Settings:
    """The settings `peftfix check` uses for ``name``, read again for every check: a long-running server must see
    an edited pyproject.toml at once (reading it costs a millisecond)."""
    path = None if name == UNSAVED_NAME else name
    try:
        return ConfigResolver().for_path(path).settings_for(name)
    except ConfigError as error:
        raise CheckFailed(f"invalid configuration: {error}") from error
