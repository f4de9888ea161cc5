"""Where the base-index cache lives: ``PEFTFIX_CACHE_DIR`` when set, else ``base-index`` in the user cache directory
(``~/.cache/peftfix`` on Linux, as platformdirs says for each platform).

The cache itself is native (``peftfix._native``): a base's shard headers stored under the identity of its files, so a
second run against an unchanged base reads none of them.
"""

from __future__ import annotations

import os


def default_cache_dir() -> str:
    override = os.environ.get("PEFTFIX_CACHE_DIR")
    if override:
        return override
    from platformdirs import user_cache_dir

    return os.path.join(user_cache_dir("peftfix", appauthor=False), "base-index")
