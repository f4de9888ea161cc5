"""The module that does the checkpoint work: ``peftfix._native``, resolved on first use.

Tests point ``_backend`` at another module with the same API (the plain-Python reference in
:mod:`peftfix.checkpoint.reference`) to check that both report the same.
"""

from __future__ import annotations

import os
from typing import Any, Union

from peftfix.checkpoint.errors import LocationError

PathLike = Union[str, "os.PathLike[str]"]

_backend: Any = None


def native() -> Any:
    global _backend
    if _backend is None:
        from peftfix import _native

        if not hasattr(_native, "check_adapter"):
            raise RuntimeError(
                "peftfix._native was built without the checkpoint matcher; rebuild the extension (`pip install -e .`)"
            )
        _backend = _native
    return _backend


def checkpoint_error() -> type[BaseException]:
    """``peftfix._native.CheckpointError`` (a ValueError): an unreadable checkpoint (PK000)."""
    return native().CheckpointError


def readable_errors() -> tuple[type[BaseException], ...]:
    """What reading a checkpoint raises for bad input (never for a bug): PK000 material. A Hub id that cannot be
    resolved (:class:`~peftfix.checkpoint.errors.LocationError`) is one too."""
    return (checkpoint_error(), OSError, LocationError)


def read_header(path: PathLike) -> Any:
    """The validated safetensors header of one file (``peftfix._native.read_header``)."""
    return native().read_header(os.fspath(path))
