"""Where a checkpoint named on the command line or in an API call lives, in the form the native reader takes.

- A local path is used as it is.
- A URL of an object store or an HTTP directory (``s3://``, ``gs://``, ``az://``, ``http(s)://``) goes to the native
  reader unchanged: it fetches headers with ranged requests.
- A Hugging Face Hub repo, ``hf://org/name[@revision][/subfolder]`` or a bare ``org/name`` that is no local path, is
  resolved through huggingface_hub: the local cache first (the layout it writes under ``HF_HUB_CACHE`` /
  ``HF_HOME``), then, unless ``HF_HUB_OFFLINE`` is set, the Hub at ``HF_ENDPOINT`` with ``HF_TOKEN``: the revision
  is pinned to its commit and the files are read remotely under ``<endpoint>/<repo>/resolve/<commit>/``.

``base_named_by`` reads which base an adapter names (``base_model_name_or_path`` in ``adapter_config.json``).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from typing import Optional
from urllib.parse import urlsplit

from peftfix.checkpoint.errors import BaseNotFound, LocationError

CONFIG_FILE = "adapter_config.json"
# The files that make a directory an adapter or a base; a cached snapshot holding none of them is not used.
CHECKPOINT_FILES = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
REMOTE_SCHEMES = ("s3", "s3a", "gs", "az", "adl", "azure", "abfs", "abfss", "http", "https")
HUB_SCHEME = "hf://"
# Largest adapter_config.json read (real ones are a few kilobytes).
MAX_CONFIG_BYTES = 64 * 1024 * 1024
# huggingface_hub's repo id rule: one optional namespace, names of letters, digits, '-', '_', '.'.
_REPO_ID = re.compile(r"^(?:[\w.-]+/)?[\w.-]+$")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True)
class HubRef:
    repo_id: str
    revision: Optional[str] = None
    subfolder: str = ""

    def __str__(self) -> str:
        text = HUB_SCHEME + self.repo_id + (f"@{self.revision}" if self.revision else "")
        return text + (f"/{self.subfolder}" if self.subfolder else "")


def is_url(spec: str) -> bool:
    """Whether ``spec`` is a URL the native reader fetches remotely."""
    scheme, _, rest = spec.partition("://")
    return bool(rest) and scheme.lower() in REMOTE_SCHEMES


def hub_ref(spec: str) -> Optional[HubRef]:
    """The Hub repo ``spec`` names: ``hf://org/name[@revision][/subfolder]``, or ``org/name`` when no such local path
    exists; None for anything else."""
    if spec.startswith(HUB_SCHEME):
        parts = spec[len(HUB_SCHEME) :].strip("/").split("/")
        if len(parts) < 2:
            return None
        namespace, name_rev, subfolder = parts[0], parts[1], "/".join(parts[2:])
        name, _, revision = name_rev.partition("@")
        repo_id = f"{namespace}/{name}"
        if not _REPO_ID.match(repo_id) or "@" in revision:
            return None
        return HubRef(repo_id, revision or None, subfolder)
    if os.path.exists(spec) or spec.count("/") != 1 or not _REPO_ID.match(spec) or spec.startswith(("./", "../")):
        return None
    return HubRef(spec)


def offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it, but at call time (it reads it once, at import)."""
    if "HF_HUB_OFFLINE" in os.environ:
        return os.environ["HF_HUB_OFFLINE"].strip().upper() in _TRUE
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve(spec: str) -> str:
    """The local path or URL the native reader takes for ``spec``; LocationError for a Hub id that cannot be found."""
    if is_url(spec):
        return spec
    ref = hub_ref(spec)
    if ref is None:
        return spec
    cached = _from_cache(ref)
    if cached is not None:
        return cached
    if offline():
        raise LocationError(str(ref), "not in the Hugging Face cache, and HF_HUB_OFFLINE is set")
    return _from_hub(ref)


def _from_cache(ref: HubRef) -> Optional[str]:
    """The cached snapshot directory (or its subfolder) when it holds a checkpoint file; None otherwise."""
    from huggingface_hub import snapshot_download

    try:
        snapshot = snapshot_download(ref.repo_id, revision=ref.revision, local_files_only=True)
    except Exception:  # LocalEntryNotFoundError, an invalid id, an unreadable cache: not cached
        return None
    directory = os.path.join(snapshot, ref.subfolder) if ref.subfolder else snapshot
    if os.path.isfile(directory) or any(os.path.isfile(os.path.join(directory, name)) for name in CHECKPOINT_FILES):
        return directory
    return None


def _endpoint() -> str:
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


# Commits found on the Hub, by (endpoint, repo, revision, token): a fleet of adapters naming one base asks once.
# Kept a few minutes only, so a long-running pipeline still sees a branch move.
_COMMITS: dict[tuple[str, str, Optional[str], Optional[str]], tuple[float, str]] = {}
COMMIT_TTL_SECONDS = 300.0


def _commit(endpoint: str, token: Optional[str], ref: HubRef) -> str:
    from huggingface_hub import HfApi

    key = (endpoint, ref.repo_id, ref.revision, token)
    now = time.monotonic()
    known = _COMMITS.get(key)
    if known is not None and now - known[0] < COMMIT_TTL_SECONDS:
        return known[1]
    try:
        info = HfApi(endpoint=endpoint, token=token).model_info(ref.repo_id, revision=ref.revision)
    except Exception as error:  # RepositoryNotFoundError, RevisionNotFoundError, GatedRepoError, network errors
        raise LocationError(str(ref), f"cannot be resolved on {endpoint} ({_hub_reason(error)})") from None
    if not info.sha:
        raise LocationError(str(ref), f"{endpoint} gave no commit for it")
    _COMMITS[key] = (now, info.sha)
    return info.sha


def _from_hub(ref: HubRef) -> str:
    """``<endpoint>/<repo>/resolve/<commit>[/<subfolder>]``, the revision pinned to its commit; the token is sent to
    the endpoint only."""
    from huggingface_hub import get_token

    from peftfix.checkpoint import backend

    endpoint, token = _endpoint(), get_token()
    commit = _commit(endpoint, token, ref)
    split = urlsplit(endpoint)
    backend.native().set_http_token(f"{split.scheme}://{split.netloc}", token)
    url = f"{endpoint}/{ref.repo_id}/resolve/{commit}"
    return f"{url}/{ref.subfolder}" if ref.subfolder else url


def _hub_reason(error: Exception) -> str:
    """huggingface_hub's error, one line: its class says what (RepositoryNotFoundError, ...), the first line why."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


def _adapter_config(adapter: str) -> bytes:
    """The bytes of the adapter's ``adapter_config.json`` (beside a ``.safetensors`` file, or in the directory)."""
    from peftfix.checkpoint import backend

    location = resolve(adapter)
    if location.endswith(".safetensors"):
        directory = location.rsplit("/", 1)[0] if is_url(location) else (os.path.dirname(location) or ".")
    else:
        directory = location.rstrip("/")
    config_path = f"{directory}/{CONFIG_FILE}" if is_url(directory) else os.path.join(directory, CONFIG_FILE)
    return bytes(backend.native().read_small(config_path, MAX_CONFIG_BYTES))


def base_named_by(adapter: str) -> str:
    """The base ``adapter`` names in its ``adapter_config.json`` (a local path or a Hub id), checked to be
    resolvable: BaseNotFound says why not."""
    from peftfix.checkpoint.backend import readable_errors

    try:
        config = json.loads(_adapter_config(adapter))
    except LocationError as error:
        raise BaseNotFound(f"{adapter}: no --base given and the adapter cannot be found ({error.reason})") from None
    except readable_errors() as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or str(error)
        raise BaseNotFound(f"{adapter}: no --base given and {CONFIG_FILE} cannot be read ({reason})") from None
    except ValueError as error:
        raise BaseNotFound(f"{adapter}: no --base given and {CONFIG_FILE} is not valid JSON ({error})") from None
    name = config.get("base_model_name_or_path") if isinstance(config, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise BaseNotFound(f"{adapter}: no --base given and {CONFIG_FILE} names no base_model_name_or_path")
    if os.path.exists(name) or is_url(name):
        return name
    if hub_ref(name) is None:
        raise BaseNotFound(
            f"{adapter}: its base {name!r} (adapter_config.json) is neither a local path nor a Hub id; give --base"
        )
    if offline():
        # Resolving is a cache lookup then: an absent base is told now, as a usage error. Online, the Hub is
        # asked once, when the base is opened, and a failure is that base's PK000.
        try:
            resolve(name)
        except LocationError as error:
            raise BaseNotFound(
                f"{adapter}: its base {name!r} (adapter_config.json) is {error.reason}; give --base"
            ) from None
    return name
