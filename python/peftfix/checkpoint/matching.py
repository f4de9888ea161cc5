"""Check adapters against a base: one adapter at a time, or many against a base indexed once.

Adapters and bases may be local paths, Hub ids (``org/name``, ``hf://org/name@rev/sub``) or URLs (``s3://``,
``gs://``, ``az://``, ``http(s)://``): see :mod:`peftfix.checkpoint.locate`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, Optional, Union

from peftfix.checkpoint import backend
from peftfix.checkpoint.backend import PathLike
from peftfix.checkpoint.index_cache import default_cache_dir
from peftfix.checkpoint.locate import resolve
from peftfix.checkpoint.report import Report

# ``cache``: True for the default directory, False for none, or a directory.
CacheSetting = Union[bool, PathLike]


def _cache_dir(cache: CacheSetting) -> Optional[str]:
    if cache is True:
        return default_cache_dir()
    if cache is False:
        return None
    return os.fspath(cache)


LOAD_AS = ("causal-lm", "base-model")
# Remote adapters one check_many call keeps in flight (the native checker's threads for remote adapters): a batch
# this large is one round of waiting, a larger one several.
REMOTE_IN_FLIGHT = 32


def check_load_as(load_as: str) -> str:
    if load_as not in LOAD_AS:
        raise ValueError(f"load_as must be one of {', '.join(LOAD_AS)}, not {load_as!r}")
    return load_as


def check_adapter(
    adapter: PathLike,
    base: PathLike,
    load_as: str = "causal-lm",
    *,
    cache: CacheSetting = True,
    server: Optional[str] = None,
) -> Report:
    """Check one adapter (directory or ``.safetensors`` file) against a base checkpoint (directory, file or index),
    either local, on the Hub or remote. ``cache``: the base-index cache (True: the default directory). ``server``
    (``"vllm"``, ``"vllm==0.34.0"``, ``"sglang"``, ``"lorax"``): add the serving checks PS001-PS005, which read
    local adapters and bases.

    Never raises for unreadable or corrupt checkpoints: they come back as a report with one PK000 finding.
    """
    native = backend.native()
    check_load_as(load_as)
    adapter_path, base_path = os.fspath(adapter), os.fspath(base)
    try:
        data = native.check_adapter(resolve(adapter_path), resolve(base_path), load_as, _cache_dir(cache))
    except backend.readable_errors() as error:
        return Report.unreadable_checkpoint(adapter_path, base_path, error)
    report = Report.from_native(data, adapter_path)
    if server is not None and not report.unreadable:
        from peftfix.serving import check_serving

        report.findings.extend(check_serving(adapter_path, base_path, server))
    return report


class BaseIndex:
    """A base checkpoint indexed once (headers of every shard read, module tree built), checked many times.

    An unreadable base does not raise here: every check then returns a PK000 report naming the base file.
    """

    def __init__(self, base: PathLike, load_as: str = "causal-lm", *, cache: CacheSetting = True) -> None:
        native = backend.native()
        self.base = os.fspath(base)
        self.load_as = check_load_as(load_as)
        self.error: Optional[BaseException] = None
        self._index: Any = None
        try:
            self._index = native.BaseIndex(resolve(self.base), self.load_as, _cache_dir(cache))
        except backend.readable_errors() as error:
            self.error = error

    @property
    def tensor_count(self) -> int:
        return int(self._index.tensor_count) if self._index is not None else 0

    @property
    def shard_count(self) -> int:
        return int(self._index.shard_count) if self._index is not None else 0

    @property
    def header_bytes(self) -> int:
        return int(self._index.header_bytes) if self._index is not None else 0

    @property
    def location(self) -> str:
        """Where the base was read: the local path or URL a Hub id resolved to (the base as given otherwise)."""
        return str(self._index.path) if self._index is not None else self.base

    @property
    def from_cache(self) -> bool:
        """Whether the shard headers came from the base-index cache (no shard was read)."""
        return bool(getattr(self._index, "from_cache", False))

    @property
    def base_model_prefix(self) -> str:
        return str(self._index.base_model_prefix) if self._index is not None else ""

    def _unreadable_base(self, adapter: str) -> Report:
        assert self.error is not None
        return Report.unreadable_checkpoint(adapter, self.base, self.error)

    def check(self, adapter: PathLike) -> Report:
        adapter_path = os.fspath(adapter)
        if self._index is None:
            return self._unreadable_base(adapter_path)
        try:
            data = self._index.check(resolve(adapter_path))
        except backend.readable_errors() as error:
            return Report.unreadable_checkpoint(adapter_path, self.base, error)
        return Report.from_native(data, adapter_path)

    def check_many(self, adapters: Iterable[PathLike]) -> list[Report]:
        """One report per adapter, in order; the native side checks them in parallel.

        One unreadable adapter does not hide the others: when the batch call fails, each adapter is checked on
        its own and only the broken ones get PK000.
        """
        paths = [os.fspath(adapter) for adapter in adapters]
        if self._index is None:
            return [self._unreadable_base(path) for path in paths]
        try:
            results = self._index.check_many([resolve(path) for path in paths])
        except backend.readable_errors():
            return [self.check(path) for path in paths]
        return [Report.from_native(data, path) for data, path in zip(results, paths, strict=True)]
