"""What a local adapter directory says about itself (``adapter_config.json``), for rules that need its task.

Only paths written in the script (a literal, or the default of an environment lookup) that exist on this
machine are read; a hub name or a missing directory gives None, never an error.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Optional


def adapter_task_type(path: str, relative_to: Optional[str]) -> Optional[str]:
    candidates = [Path(path)]
    if relative_to and not Path(path).is_absolute():
        candidates.insert(0, Path(relative_to).parent / path)
    for candidate in candidates:
        task = _task_type(str(candidate))
        if task is not None:
            return task
    return None


@lru_cache(maxsize=256)
def _task_type(directory: str) -> Optional[str]:
    try:
        config = json.loads((Path(directory) / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    task = config.get("task_type") if isinstance(config, dict) else None
    return task if isinstance(task, str) else None
