"""Which files `peftfix check` looks at: discovery and the cheap pre-filter, done natively.

The Rust extension (`peftfix._native`) walks directories in parallel (honouring `.gitignore`, hidden entries,
Ruff's default excludes and the user's `exclude` globs) and skips files whose bytes never mention the
libraries peftfix checks, so only those few files are read and parsed by libcst. Stdin (`-`) is not a path:
the CLI handles it before calling this module.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from peftfix import _native

# A file is relevant when its bytes contain one of these. Every rule needs a name that resolves to peft or
# transformers, and resolving one needs the module's name in the file (an import, `import_module("peft")`),
# so b"peft", b"transformers" and b"unsloth" are what makes the filter sufficient; b"Peft" is a cheap hedge for
# `PeftModel` / `AutoPeftModel*` names. trl is matched as b" trl" / b",trl", which every import of it
# contains (`import trl`, `from trl import`, `import os, trl`, `import os,trl`), rather than a bare b"trl"
# that is inside every "control" and "ctrl" and would let most of a codebase through.
PREFILTER_NEEDLES: tuple[bytes, ...] = (
    b"peft",
    b"Peft",
    b"transformers",
    b" trl",
    b",trl",
    b"unsloth",
)


# Rounds of following imports from skipped files to files that passed (main.py -> jobs.py -> pipeline.py).
IMPORT_ROUNDS = 3


@dataclass(frozen=True)
class Discovery:
    """The result of discovery.

    `files`: the files to check, sorted. `skipped`: files found but left out by the pre-filter.
    `errors`: `(path, reason)` for paths that could not be looked at (missing, unreadable, symlink loop,
    invalid `exclude` pattern); the caller reports them and exits with status 2.
    """

    files: list[str] = field(default_factory=list)
    skipped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def find_python_files(
    paths: Iterable[str | os.PathLike[str]],
    exclude: Sequence[str] = (),
    respect_gitignore: bool = True,
    prefilter: bool = True,
) -> Discovery:
    """Find the Python files under `paths` (see `peftfix._native.walk` for the exact rules).

    A path naming a file is always included, whatever its name and even if ignored or excluded. With
    `prefilter`, files that mention none of `PREFILTER_NEEDLES` are dropped and counted in `skipped` — unless
    they import a module that passed (a `main.py` that only calls `from pipeline import Job`, where `pipeline.py`
    loads the adapter): the analysis follows such imports, so those files are checked too.
    """
    path_list = [os.fspath(path) for path in paths]
    exclude_list = list(exclude)
    files, errors = _native.walk(path_list, exclude_list, respect_gitignore)
    if not prefilter:
        return Discovery(files=files, skipped=0, errors=errors)
    relevant = _native.mentions(files, PREFILTER_NEEDLES)
    chosen = {file for file, keep in zip(files, relevant, strict=True) if keep}
    for _ in range(IMPORT_ROUNDS):
        rest = [file for file in files if file not in chosen]
        needles = _import_needles(chosen)
        if not rest or not needles:
            break
        found = {file for file, keep in zip(rest, _native.mentions(rest, needles), strict=True) if keep}
        if not found:
            break
        chosen |= found
    kept = [file for file in files if file in chosen]
    return Discovery(files=kept, skipped=len(files) - len(kept), errors=errors)


def _import_needles(files: Iterable[str]) -> list[bytes]:
    """Byte strings that an import of one of ``files`` contains (`import m`, `from m import`, `from .m`)."""
    needles: set[bytes] = set()
    for file in files:
        name = os.path.basename(file)
        if not name.endswith(".py"):  # a notebook is not imported
            continue
        stem = os.path.basename(os.path.dirname(file)) if name == "__init__.py" else name[: -len(".py")]
        if stem.isidentifier():
            encoded = stem.encode()
            needles |= {b"import " + encoded, encoded + b" import", b"." + encoded}
    return sorted(needles)


def mentions_checked_libraries(paths: Sequence[str | os.PathLike[str]]) -> list[bool]:
    """For each file, whether it mentions one of `PREFILTER_NEEDLES` (unreadable files count as yes)."""
    return _native.mentions([os.fspath(path) for path in paths], PREFILTER_NEEDLES)
