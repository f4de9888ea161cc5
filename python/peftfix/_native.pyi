"""Native core of peftfix (Rust, built by maturin): parallel file discovery and the content pre-filter, and the
checkpoint key matcher.

Use discovery through :mod:`peftfix.source.discovery`. Every function releases the GIL while it works, never panics,
and raises only ``TypeError`` for arguments of the wrong type; problems with the paths themselves come back
as ``(path, reason)`` pairs. Paths are accepted as ``str`` or ``os.PathLike`` and returned as ``str``, with
``.`` components removed (``./src/a.py`` -> ``src/a.py``).

The checkpoint functions (:func:`check_adapter`, :class:`BaseIndex`, :func:`write_remapped`,
:func:`read_header`; used through :mod:`peftfix.checkpoint`) raise :class:`CheckpointError` for an unreadable
checkpoint and ``ValueError`` for a bad ``load_as``.
"""

from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any, Literal, TypedDict, final

from typing_extensions import Self

__all__ = [
    "BaseIndex",
    "CheckpointError",
    "__version__",
    "base_index_from_bytes",
    "check_adapter",
    "find_candidates",
    "mentions",
    "read_header",
    "read_small",
    "scan_headers",
    "set_http_token",
    "walk",
    "write_remapped",
]

_Path = str | PathLike[str]

__version__: str
"""Version of the native crate (equal to the package version)."""

def walk(
    paths: Sequence[_Path],
    exclude: Sequence[str] = ...,  # default: no globs (an empty list)
    respect_gitignore: bool = True,
) -> tuple[list[str], list[tuple[str, str]]]:
    """Find the Python files that ``paths`` stand for; return ``(files, errors)``.

    - A path naming a file is returned as given, whatever its extension, even when ``.gitignore`` or
      ``exclude`` would leave it out (explicitly named files are always checked, as in Ruff).
    - A directory is walked recursively, in parallel, keeping files ending in ``.py``. It honours
      ``.gitignore``/``.ignore`` files (its own, its subdirectories' and its parents'), even outside a git
      repository, unless ``respect_gitignore`` is false. Hidden entries and the directories Ruff excludes by
      default (``.git``, ``.venv``, ``venv``, ``node_modules``, ``build``, ``dist``, ``site-packages``,
      ``__pycache__``, tool caches, ...) are skipped below the walked directory, never the directory itself.
    - ``exclude`` holds gitignore-style globs (``"build"``, ``"tests/fixtures/*"``, ``"*_pb2.py"``; ``*`` may
      cross ``/`` as in Ruff) matched against each entry's basename, its path relative to the walked
      directory, its path as walked, and its absolute path. Excluded directories are not descended into.
    - ``files`` is sorted and deduplicated. ``errors`` holds ``(path, reason)`` for a missing path, a symlink
      loop, an unreadable directory, a dangling ``*.py`` symlink, a path that is neither a file nor a
      directory, or an invalid ``exclude`` pattern (reported with the pattern as its path).
    """

def mentions(paths: Sequence[_Path], needles: Sequence[bytes]) -> list[bool]:
    """For each file, in order, whether its bytes contain any of ``needles`` (searched in parallel).

    A file that cannot be read yields ``True``, so that the caller opens it and reports the error itself.
    With no needles every readable file yields ``False``.
    """

def find_candidates(
    paths: Sequence[_Path],
    exclude: Sequence[str] = ...,  # default: no globs (an empty list)
    respect_gitignore: bool = True,
    *,
    needles: Sequence[bytes],
) -> tuple[list[str], int, list[tuple[str, str]]]:
    """:func:`walk`, then :func:`mentions`, in one call: ``(files, skipped, errors)``.

    ``files`` are the discovered files that mention a needle (or cannot be read), ``skipped`` counts the
    ones that mention none. Explicitly named files go through the filter too.
    """

# --------------------------------------------------------------------------------------------------------------
# Checkpoint checks (`peftfix keys`): the contract is docs/keys.md. Every function below releases the GIL while
# it works and never panics; an unreadable checkpoint raises CheckpointError.

_LoadAs = Literal["causal-lm", "base-model"]

class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (PK000): missing, truncated, header length beyond the file or over
    100 MB, invalid UTF-8/JSON, unknown dtype, bad or overlapping offsets, a tensor name twice, a shard the index
    names that does not exist, an index naming a tensor its shard lacks, a directory without a checkpoint.

    ``str(error)`` is ``"path: reason"``; ``.path`` (str) is the file concerned, ``.reason`` the reason alone.
    """

    path: str
    reason: str

# The dict shapes below exist only in this stub (the extension returns plain dicts), hence the private names.

class _Finding(TypedDict):
    code: str
    """``PK000`` .. ``PK006``."""
    message: str
    """What PEFT does at load time and what to do."""
    details: dict[str, Any]
    """Per code (extra keys may appear):

    - PK000 (only from ``BaseIndex.check_many``): ``{"path", "reason"}``
    - PK001: ``{"rewrite": {"strip", "add"}, "coverage": float, "modules": int, "example": {"adapter", "base"}}``
    - PK002: ``{"count": int, "modules": [first 10 unmatched module paths, sorted]}``
    - PK003: ``{"module": adapter module path, "adapter_shape": [...], "base_shape": [...], "tensor": adapter key}``
      plus ``"resize_to": rows`` when the fix is ``model.resize_token_embeddings(rows)``; one finding per module
    - PK004: ``{"modules": int, "zero_modules": int}``
    - PK005: ``{"field": "adapter_config.json" | "r" | "rank_pattern" | "target_modules" | "use_dora",
      "config": ..., "tensors": ...}``; ``r``/``rank_pattern`` add ``"module"`` (first disagreeing module) and
      ``"count"``; ``target_modules`` adds ``"missing"`` and ``"unexpected"`` (last components); a missing or
      unreadable config adds ``"reason"``
    - PK006: ``{}``
    """

class _Counts(TypedDict):
    adapter_tensors: int
    adapter_modules: int
    """Distinct module paths of the adapter (LoRA, other tuners, saved copies; not prompt embeddings)."""
    matched: int
    """Modules found in the base as they are."""
    matched_after_rewrite: int
    """Modules found only after the inferred rewrite."""
    unmatched: int
    base_tensors: int
    base_shards: int
    header_bytes: int
    """Safetensors header bytes read for this report: 8 + N of the adapter plus those of every base file."""

class _Rewrite(TypedDict):
    strip: str
    """Leading components removed from the module path (after ``base_model.model.`` and any outer wrapper before
    it): "" or ending in a dot. ``strip`` and ``add`` are both "" when only the PEFT prefix is wrong."""
    add: str
    """Leading components put in front: "" or ending in a dot."""
    coverage: float
    """Modules matched after the rewrite / all adapter modules (exact matches not counted)."""

class _Report(TypedDict):
    adapter: str
    base: str
    findings: list[_Finding]
    """In code order: PK001, PK002, PK003 (by module path), PK004, PK005; or PK006 alone."""
    counts: _Counts
    rewrite: _Rewrite | None
    seconds: float

def check_adapter(
    adapter: _Path, base: _Path, load_as: _LoadAs = "causal-lm", cache_dir: _Path | None = None
) -> _Report:
    """Open ``base`` and check ``adapter`` against it (PK001-PK006); ``seconds`` covers both.

    Either may be a local path or a URL: ``s3://bucket/prefix``, ``gs://``, ``az://container/prefix``,
    ``http(s)://host/dir`` (a directory URL, or a file's). Remote files are read with ranged requests: the first
    bytes and the header of each safetensors file, the config and index whole, and only the tensor bytes the zero
    check needs. Stores are configured from the standard variables (``AWS_*``, ``GOOGLE_*``, ``AZURE_*``); every
    remote operation is limited to ``PEFTFIX_TIMEOUT`` seconds (default 120). ``cache_dir``: the base-index cache
    (see :class:`BaseIndex`); None reads the base's headers.

    ``adapter``: a directory with ``adapter_model.safetensors`` (and ``adapter_config.json``), or a
    ``.safetensors`` file (its config is looked up beside it). ``base``: a directory with ``model.safetensors``
    (preferred) or ``model.safetensors.index.json`` + shards, or one ``.safetensors`` file or index.
    ``load_as="base-model"`` checks against the tree ``AutoModel`` builds (base-model prefix stripped, heads
    ``lm_head``/``score``/``classifier`` dropped).

    Raises CheckpointError when the base or the adapter cannot be read, ValueError for a bad ``load_as``.
    """

@final
class BaseIndex:
    """A base checkpoint indexed once (headers only; shards read in parallel), to check many adapters.

    Raises CheckpointError when the base cannot be read, ValueError for a bad ``load_as``.
    Thread-safe; its checks release the GIL.
    """

    def __new__(cls, path: _Path, load_as: _LoadAs = "causal-lm", cache_dir: _Path | None = None) -> Self:
        """``path``: a local path or URL, as in :func:`check_adapter`. With ``cache_dir``, the shard headers are
        looked up there by the identity of the base's files (local: path, size, mtime; remote: URL, size, ETag)
        and stored after a miss; a hit reads no shard. A local single-file base is never cached."""
    def check(self, adapter: _Path) -> _Report:
        """Check one adapter; raises CheckpointError when it cannot be read."""
    def check_many(self, adapters: Sequence[_Path]) -> list[_Report]:
        """Check adapters in parallel (all cores), reports in input order. An adapter that cannot be read gives a
        report with a single PK000 finding (``details = {"path", "reason"}``, adapter counts 0) instead of
        raising."""
    @property
    def tensor_count(self) -> int:
        """Tensors in the checkpoint's files (before the ``load_as`` view)."""
    @property
    def shard_count(self) -> int:
        """Safetensors files read (1 for a single file)."""
    @property
    def header_bytes(self) -> int:
        """Safetensors header bytes read: 8 + N per file."""
    @property
    def base_model_prefix(self) -> str:
        """The first component all non-head keys share (``"model"``, ``"transformer"``, no dot), or ``""``."""
    @property
    def load_as(self) -> _LoadAs: ...
    @property
    def path(self) -> str:
        """The base path or URL as given."""
    @property
    def from_cache(self) -> bool:
        """Whether the shard headers came from the index cache (no shard was read)."""
    def to_bytes(self) -> bytes:
        """The index as bytes that :func:`base_index_from_bytes` builds again, here or in another process: where the
        base was read, the ``load_as`` view and each shard's header. Pickling uses it (Ray's object store)."""
    def __reduce__(self) -> tuple[Callable[[bytes], BaseIndex], tuple[bytes]]: ...

def base_index_from_bytes(data: bytes) -> BaseIndex:
    """The index :meth:`BaseIndex.to_bytes` wrote, every header validated again; ValueError for anything else
    (truncated, corrupt, or written by another peftfix version)."""

def scan_headers(paths: Sequence[_Path]) -> int:
    """Read and validate the header of every local file in parallel (all cores), keeping nothing: the total number of
    tensors. The bare header scan the checks are measured against. Raises CheckpointError for the first unreadable
    file."""

def read_small(path: _Path, limit: int) -> bytes:
    """A small file (a config) whole, local or remote; CheckpointError when it is missing, unreadable, or over
    ``limit`` bytes."""

def set_http_token(origin: str, token: str | None) -> None:
    """Send ``Authorization: Bearer <token>`` to ``origin`` (``scheme://host[:port]``) only, from now on; None stops
    it. For the Hugging Face Hub endpoint."""

def write_remapped(adapter: _Path, out: _Path, strip: str, add: str) -> int:
    """Write ``adapter`` with every key in the form PEFT loads: ``base_model.model.`` + the module path + the tuner
    parameter, where a module path starting with ``strip`` loses it and gets ``add`` in front (``strip``/``add``
    get a trailing dot if they lack one), an outer wrapper before ``base_model.model.`` (DDP's ``module.``) is
    dropped and a missing ``base_model.model.`` is added; prompt-learning keys stay. Dtypes, shapes, offsets and ``__metadata__`` are kept and the data section
    is copied byte for byte (streamed). ``out`` ending in ``.safetensors`` is the output file; anything else is a
    directory (created) that gets ``adapter_model.safetensors``. ``adapter_config.json`` is copied into the
    output's directory. Files are written to a temporary name and renamed. Returns the number of tensors
    written.

    Raises CheckpointError when the adapter cannot be read, when two keys would get the same name, when ``out``
    is the adapter itself, or when writing fails.
    """

def read_header(path: _Path) -> list[tuple[str, str, list[int], int, int]]:
    """The validated header of one safetensors file (a local path or a URL, as in :func:`check_adapter`):
    ``(name, dtype, shape, begin, end)`` per tensor in file order (offsets relative to the data section). Raises
    CheckpointError."""
