"""Native core of peftfix (Rust, built by maturin): parallel file discovery and the content pre-filter.

Use it through :mod:`peftfix.discovery`. Every function releases the GIL while it works, never panics,
and raises only ``TypeError`` for arguments of the wrong type; problems with the paths themselves come back
as ``(path, reason)`` pairs. Paths are accepted as ``str`` or ``os.PathLike`` and returned as ``str``, with
``.`` components removed (``./src/a.py`` -> ``src/a.py``).
"""

from collections.abc import Sequence
from os import PathLike

_Path = str | PathLike[str]

__version__: str
"""Version of the native crate (equal to the package version)."""

def walk(
    paths: Sequence[_Path],
    exclude: Sequence[str] = (),
    respect_gitignore: bool = True,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Find the Python files that ``paths`` stand for; return ``(files, errors)``.

    - A path naming a file is returned as given, whatever its extension, even when ``.gitignore`` or
      ``exclude`` would leave it out (explicitly named files are always checked, as in Ruff).
    - A directory is walked recursively, in parallel, keeping files ending in ``.py``. It honours
      ``.gitignore``/``.ignore`` files (its own, its subdirectories' and its parents'), even outside a git
      repository, unless ``respect_gitignore`` is false. Hidden entries and the directories Ruff excludes by
      default (``.git``, ``.venv``, ``venv``, ``node_modules``, ``build``, ``dist``, ``site-packages``,
      ``__pycache__``, tool caches, ...) are skipped below the walked directory, never the directory itself.
    - ``exclude`` holds gitignore-style globs (``"build"``, ``"tests/fixtures/*"``, ``"*_pb2.py"``; ``*`` may
      cross ``/`` as in Ruff) matched against each entry's basename, its path relative to the walked
      directory, its path as walked, and its absolute path. Excluded directories are not descended into.
    - ``files`` is sorted and deduplicated. ``errors`` holds ``(path, reason)`` for a missing path, a symlink
      loop, an unreadable directory, a dangling ``*.py`` symlink, a path that is neither a file nor a
      directory, or an invalid ``exclude`` pattern (reported with the pattern as its path).
    """

def mentions(paths: Sequence[_Path], needles: Sequence[bytes]) -> list[bool]:
    """For each file, in order, whether its bytes contain any of ``needles`` (searched in parallel).

    A file that cannot be read yields ``True``, so that the caller opens it and reports the error itself.
    With no needles every readable file yields ``False``.
    """

def find_candidates(
    paths: Sequence[_Path],
    exclude: Sequence[str] = (),
    respect_gitignore: bool = True,
    *,
    needles: Sequence[bytes],
) -> tuple[list[str], int, list[tuple[str, str]]]:
    """:func:`walk`, then :func:`mentions`, in one call: ``(files, skipped, errors)``.

    ``files`` are the discovered files that mention a needle (or cannot be read), ``skipped`` counts the
    ones that mention none. Explicitly named files go through the filter too.
    """
