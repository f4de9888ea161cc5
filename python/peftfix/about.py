"""The package's version and home page (read from the installed distribution's metadata), and the environment
switch that turns one-line internal errors into tracebacks."""

from __future__ import annotations

import functools
import os

DISTRIBUTION = "peftfix"
# Used when running from a source tree that is not installed, or when the metadata names no URL.
FALLBACK_HOMEPAGE = "https://pypi.org/project/peftfix/"
FALLBACK_VERSION = "0+unknown"
# PEFTFIX_DEBUG=1: show the traceback of an internal error instead of a one-line message.
DEBUG_ENV = "PEFTFIX_DEBUG"


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


@functools.lru_cache(maxsize=1)
def version() -> str:
    from importlib import metadata  # ~40 ms to import: only when the version is asked for

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return FALLBACK_VERSION


@functools.lru_cache(maxsize=1)
def homepage() -> str:
    from importlib import metadata

    try:
        meta = metadata.metadata(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return FALLBACK_HOMEPAGE
    for entry in meta.get_all("Project-URL") or []:
        # "Homepage, https://..." / "Repository, https://..."
        _label, _, url = entry.partition(",")
        if url.strip().startswith("http"):
            return url.strip()
    homes = meta.get_all("Home-page") or []  # (PackageMetadata.get is typed only from Python 3.12)
    home = homes[0] if homes else None
    return home if home and home.startswith("http") else FALLBACK_HOMEPAGE
