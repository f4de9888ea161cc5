"""The package's version and home page (read from the installed distribution's metadata), where each code's
documentation page is online, and the environment switch that turns one-line internal errors into tracebacks."""

from __future__ import annotations

import functools
import os

DISTRIBUTION = "peftfix"
# Used when running from a source tree that is not installed, or when the metadata names no URL.
FALLBACK_HOMEPAGE = "https://pypi.org/project/peftfix/"
FALLBACK_VERSION = "0+unknown"
# PEFTFIX_DEBUG=1: show the traceback of an internal error instead of a one-line message.
DEBUG_ENV = "PEFTFIX_DEBUG"

# One page per code, generated into the repository by `python -m peftfix.rule_docs` (RULE_DOCS_DIR is relative
# to the repository root). A constant, not the installed metadata's Project-URL: an editable install keeps the
# metadata of the day it was installed, and the links must be the same wherever peftfix runs.
REPOSITORY_URL = "https://github.com/peftfix/peftfix"
RULE_DOCS_DIR = "docs/rules"
RULE_DOCS_BASE_URL = f"{REPOSITORY_URL}/blob/main/{RULE_DOCS_DIR}"


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


def rule_url(code: str) -> str:
    """The documentation page of ``code`` (``PF201`` -> ``.../docs/rules/PF201.md``)."""
    return f"{RULE_DOCS_BASE_URL}/{code.strip().upper()}.md"
