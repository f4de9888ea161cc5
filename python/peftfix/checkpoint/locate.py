"""The base checkpoint an adapter names, when no ``--base`` is given.

PEFT writes ``base_model_name_or_path`` into ``adapter_config.json``: a local directory or a Hub repo id. A
directory is used as it is; a repo id is looked up in the local Hugging Face cache (the layout huggingface_hub
writes under ``HF_HUB_CACHE`` / ``HF_HOME``), through huggingface_hub itself, without any network access.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from peftfix.files import read_regular

CONFIG_FILE = "adapter_config.json"


class BaseNotFound(ValueError):
    """The adapter does not say which base it needs, or the base it names is not here."""


def base_named_by(adapter: str) -> str:
    """A local path to the base checkpoint ``adapter`` (a directory or its ``.safetensors`` file) names."""
    directory = adapter if os.path.isdir(adapter) else os.path.dirname(adapter) or "."
    config_path = os.path.join(directory, CONFIG_FILE)
    try:
        config = json.loads(read_regular(config_path))
    except OSError as error:
        raise BaseNotFound(
            f"{adapter}: no --base given and {CONFIG_FILE} cannot be read ({error.strerror or error})"
        ) from None
    except ValueError as error:
        raise BaseNotFound(f"{adapter}: no --base given and {CONFIG_FILE} is not valid JSON ({error})") from None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BaseNotFound(f"{adapter}: no --base given and {CONFIG_FILE} names no base_model_name_or_path")
    if os.path.isdir(name) or os.path.isfile(name):
        return name
    return _from_hub_cache(adapter, name)


def _from_hub_cache(adapter: str, repo_id: str) -> str:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE
    except ImportError:  # pragma: no cover - a declared dependency
        raise BaseNotFound(
            f"{adapter}: its base {repo_id!r} is no local path, and huggingface_hub is not installed"
        ) from None
    try:
        return str(Path(snapshot_download(repo_id, local_files_only=True)))
    except Exception as error:  # LocalEntryNotFoundError, an invalid repo id, an unreadable cache
        reason = type(error).__name__
        raise BaseNotFound(
            f"{adapter}: its base {repo_id!r} (adapter_config.json) is neither a local path nor in the Hugging Face "
            f"cache ({HF_HUB_CACHE}; {reason}); give --base"
        ) from None
