"""Checkpoint checks (PK000-PK006): match a LoRA adapter's keys to its base checkpoint from safetensors headers.

The checkpoint wing: a thin layer over the Rust matcher in :mod:`peftfix._native` (the matching contract is
``docs/keys.md``). It turns the native report dicts into :class:`Report` objects whose findings are ordinary
:class:`~peftfix.diagnostics.Diagnostic` objects (filename = the adapter path, no location, figures in
``details``), and turns every unreadable checkpoint into a PK000 finding that names the file and the reason, so
no corrupt input ever ends in a traceback.

- ``matching``: :func:`check_adapter` and :class:`BaseIndex`; ``remap``: :func:`write_remapped`;
- ``report``: :class:`Report`; ``backend``: which module does the work; ``codes``: the PK catalog entries;
- ``reference``: the plain-Python reference matcher the native one is tested and timed against.

    >>> report = check_adapter("out/adapter", "meta-llama/Llama-3.2-1B-local")      # doctest: +SKIP
    >>> [d.code for d in report.findings], report.rewrite                             # doctest: +SKIP
    (['PK001'], {'strip': '_orig_mod.', 'add': '', 'coverage': 1.0})
    >>> write_remapped("out/adapter", "out/adapter-fixed", report)                    # doctest: +SKIP

Many adapters against one base: open a :class:`BaseIndex` once and call :meth:`BaseIndex.check_many`.
"""

from __future__ import annotations

from typing import Any

from peftfix.checkpoint.backend import read_header
from peftfix.checkpoint.matching import LOAD_AS, BaseIndex, check_adapter
from peftfix.checkpoint.remap import write_remapped
from peftfix.checkpoint.report import COUNT_KEYS, Report


def __getattr__(name: str) -> Any:
    # `from peftfix.checkpoint import CheckpointError` gives `peftfix._native.CheckpointError` (a ValueError)
    # without importing the extension when this package is imported.
    if name == "CheckpointError":
        from peftfix.checkpoint.backend import checkpoint_error

        return checkpoint_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COUNT_KEYS",
    "LOAD_AS",
    "BaseIndex",
    "CheckpointError",
    "Report",
    "check_adapter",
    "read_header",
    "write_remapped",
]
