"""Glob patterns for `exclude` and `per-file-ignores`, matched the way Ruff matches them.

A pattern matches a file when it matches the file's basename, its path relative to the directory of the
configuration file, or one of that path's parent directories (so `legacy` and `legacy/*` both cover
`legacy/a/b.py`). Absolute patterns are matched against the absolute path. As in Ruff (globset's default),
`*` may cross `/`; `**/` also matches no directory at all, so `**/test_*.py` covers a top-level `test_x.py`.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath


@functools.lru_cache(maxsize=512)
def compile_glob(pattern: str) -> re.Pattern[str]:
    """Translate one glob (`*`, `**`, `?`, `[...]`, `[!...]`) into an anchored regular expression."""
    regex: list[str] = []
    index = 0
    length = len(pattern)
    while index < length:
        char = pattern[index]
        if pattern.startswith("**/", index):
            regex.append("(?:.*/)?")
            index += 3
        elif char == "*":
            while index < length and pattern[index] == "*":
                index += 1
            regex.append(".*")
        elif char == "?":
            regex.append("[^/]")
            index += 1
        elif char == "[":
            closing = pattern.find("]", index + 2 if pattern.startswith("[!", index) else index + 1)
            if closing == -1:
                regex.append(re.escape(char))
                index += 1
                continue
            body = pattern[index + 1 : closing]
            if body.startswith("!"):
                body = "^" + body[1:]
            regex.append("[" + body.replace("\\", "\\\\") + "]")
            index = closing + 1
        else:
            regex.append(re.escape(char))
            index += 1
    return re.compile("".join(regex) + r"\Z", re.DOTALL)


def _normalise_pattern(pattern: str) -> str:
    pattern = pattern.replace(os.sep, "/")
    while pattern.startswith("./"):
        pattern = pattern[2:]
    return pattern.rstrip("/") or pattern


def escape(text: str) -> str:
    """A glob matching ``text`` literally."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def anchor(pattern: str, root: Path | str) -> str:
    """Make a relative pattern that names a path (`src/legacy/*`) absolute under ``root``.

    Discovery matches globs against each entry's basename, relative, walked and absolute path; anchoring makes
    `exclude` patterns from a configuration file mean "relative to that file's directory" wherever the walk
    starts, as in Ruff. Basename patterns (`build`, `*_pb2.py`) and absolute ones are kept as they are.
    """
    normalised = _normalise_pattern(pattern)
    if "/" not in normalised or normalised.startswith(("/", "**/")):
        return normalised
    return escape(Path(os.path.abspath(root)).as_posix()) + "/" + normalised


def _candidates(path: Path, root: Path) -> Iterator[str]:
    """Every string a pattern may match for ``path``: basename, relative path and its parents, absolute path."""
    absolute = Path(os.path.abspath(path))
    yield absolute.name
    try:
        relative = PurePosixPath(absolute.relative_to(Path(os.path.abspath(root))).as_posix())
    except ValueError:
        relative = None
    if relative is not None and str(relative) != ".":
        yield str(relative)
        yield from (str(parent) for parent in relative.parents if str(parent) != ".")
    posix_absolute = PurePosixPath(absolute.as_posix())
    yield str(posix_absolute)
    yield from (str(parent) for parent in posix_absolute.parents)


def matches_any(path: Path | str, root: Path | str, patterns: Iterable[str]) -> bool:
    """True when any of ``patterns`` (relative to ``root``) matches ``path``."""
    compiled = [compile_glob(_normalise_pattern(pattern)) for pattern in patterns]
    if not compiled:
        return False
    return any(regex.match(candidate) for candidate in _candidates(Path(path), Path(root)) for regex in compiled)
