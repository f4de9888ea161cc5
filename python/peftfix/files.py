"""Reading files that must be regular files, without ever blocking.

Opening a named pipe for reading blocks until a writer appears: a FIFO given as a configuration file, a source
file or a project module (or reached through a symlink) would hang the run. Files are opened non-blocking and
their type is checked on the open descriptor, so anything but a regular file is refused with an ``OSError`` that
says what it is.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Union

PathLike = Union[str, "os.PathLike[str]", Path]


class NotRegularFile(OSError):
    """The path names a FIFO, a socket, a device or a directory."""


def read_regular(path: PathLike) -> bytes:
    """The bytes of ``path`` if it is a regular file (symlinks followed); :class:`NotRegularFile` otherwise."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = describe_mode(mode)
            raise NotRegularFile(0, f"{kind}, not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


def describe_mode(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"
