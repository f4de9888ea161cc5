"""Checkpoint checks (PK000-PK006): match a LoRA adapter's keys to its base checkpoint from safetensors headers.

A thin layer over the Rust matcher in :mod:`peftfix._native` (the matching contract is ``docs/keys.md``). It turns
the native report dicts into :class:`Report` objects whose findings are ordinary
:class:`~peftfix.diagnostics.Diagnostic` objects (filename = the adapter path, no location, figures in
``details``), and turns every unreadable checkpoint into a PK000 finding that names the file and the reason,
so no corrupt input ever ends in a traceback.

    >>> report = check_adapter("out/adapter", "meta-llama/Llama-3.2-1B-local")      # doctest: +SKIP
    >>> [d.code for d in report.findings], report.rewrite                             # doctest: +SKIP
    (['PK001'], {'strip': '_orig_mod.', 'add': '', 'coverage': 1.0})
    >>> write_remapped("out/adapter", "out/adapter-fixed", report)                    # doctest: +SKIP

Many adapters against one base: open a :class:`BaseIndex` once and call :meth:`BaseIndex.check_many`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Union

from peftfix.diagnostics import Diagnostic, FindingsMixin

LOAD_AS = ("causal-lm", "base-model")
COUNT_KEYS = (
    "adapter_tensors",
    "adapter_modules",
    "matched",
    "matched_after_rewrite",
    "unmatched",
    "base_tensors",
    "base_shards",
    "header_bytes",
)

PathLike = Union[str, "os.PathLike[str]"]

# The module that does the work: `peftfix._native` (resolved on first use). Tests may set this to another
# module with the same API (the plain-Python reference in benches/reference_matcher.py).
_backend: Any = None


def _native() -> Any:
    global _backend
    if _backend is None:
        from peftfix import _native as native

        if not hasattr(native, "check_adapter"):
            raise RuntimeError(
                "peftfix._native was built without the checkpoint matcher; rebuild the extension "
                "(`pip install -e .`)"
            )
        _backend = native
    return _backend


def _checkpoint_error() -> type[BaseException]:
    return _native().CheckpointError


def __getattr__(name: str) -> Any:
    # `from peftfix.checkpoint import CheckpointError` gives `peftfix._native.CheckpointError` (a ValueError)
    # without importing the extension when this module is imported.
    if name == "CheckpointError":
        return _checkpoint_error()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass
class Report(FindingsMixin):
    """The checkpoint check of one adapter against one base."""

    adapter: str
    base: str
    findings: list[Diagnostic] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNT_KEYS, 0))
    rewrite: Optional[dict[str, Any]] = None  # {"strip", "add", "coverage"} when PK001 was found
    seconds: float = 0.0

    @property
    def unreadable(self) -> bool:
        """The adapter or the base could not be read (PK000)."""
        return any(finding.code == "PK000" for finding in self.findings)

    @classmethod
    def from_native(cls, data: Mapping[str, Any], adapter: Optional[str] = None) -> "Report":
        adapter = str(data.get("adapter") or adapter or "")
        counts = dict.fromkeys(COUNT_KEYS, 0)
        counts.update({key: int(value) for key, value in (data.get("counts") or {}).items()})
        rewrite = data.get("rewrite")
        return cls(
            adapter=adapter,
            base=str(data.get("base") or ""),
            findings=[
                Diagnostic(
                    code=str(item["code"]),
                    message=str(item["message"]),
                    filename=adapter,
                    details=dict(item.get("details") or {}),
                )
                for item in data.get("findings") or ()
            ],
            counts=counts,
            rewrite=dict(rewrite) if rewrite else None,
            seconds=float(data.get("seconds") or 0.0),
        )

    @classmethod
    def unreadable_checkpoint(cls, adapter: PathLike, base: PathLike, error: BaseException) -> "Report":
        """A report with one PK000 finding for an error raised while reading ``adapter`` or ``base``."""
        adapter = os.fspath(adapter)
        path, reason = _error_parts(error)
        message = f"{path}: {reason}" if path else reason
        return cls(
            adapter=adapter,
            base=os.fspath(base),
            findings=[
                Diagnostic(code="PK000", message=message, filename=adapter, details={"path": path, "reason": reason})
            ],
        )


def _error_parts(error: BaseException) -> tuple[Optional[str], str]:
    """(file, reason) of a native CheckpointError (attributes when it has them, else its message) or OSError."""
    if isinstance(error, OSError):
        path = error.filename if error.filename is not None else None
        return (os.fspath(path) if path is not None else None), (error.strerror or str(error))
    path = getattr(error, "path", None)
    reason = getattr(error, "reason", None)
    if path is not None and reason is not None:
        return str(path), str(reason)
    text = str(error)
    head, sep, tail = text.partition(": ")
    if sep and path is None:
        return head, tail
    return (str(path) if path is not None else None), text


def _load_as(load_as: str) -> str:
    if load_as not in LOAD_AS:
        raise ValueError(f"load_as must be one of {', '.join(LOAD_AS)}, not {load_as!r}")
    return load_as


def _readable_errors() -> tuple[type[BaseException], ...]:
    return (_checkpoint_error(), OSError)


def check_adapter(adapter: PathLike, base: PathLike, load_as: str = "causal-lm") -> Report:
    """Check one adapter (directory or ``.safetensors`` file) against a base checkpoint (directory, file or index).

    Never raises for unreadable or corrupt checkpoints: they come back as a report with one PK000 finding.
    """
    native = _native()
    _load_as(load_as)
    adapter_path, base_path = os.fspath(adapter), os.fspath(base)
    try:
        data = native.check_adapter(adapter_path, base_path, load_as)
    except _readable_errors() as error:
        return Report.unreadable_checkpoint(adapter_path, base_path, error)
    return Report.from_native(data, adapter_path)


class BaseIndex:
    """A base checkpoint indexed once (headers of every shard read, module tree built), checked many times.

    An unreadable base does not raise here: every check then returns a PK000 report naming the base file.
    """

    def __init__(self, base: PathLike, load_as: str = "causal-lm") -> None:
        native = _native()
        self.base = os.fspath(base)
        self.load_as = _load_as(load_as)
        self.error: Optional[BaseException] = None
        self._index: Any = None
        try:
            self._index = native.BaseIndex(self.base, self.load_as)
        except _readable_errors() as error:
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
    def base_model_prefix(self) -> str:
        return str(self._index.base_model_prefix) if self._index is not None else ""

    def check(self, adapter: PathLike) -> Report:
        adapter_path = os.fspath(adapter)
        if self._index is None:
            assert self.error is not None
            return Report.unreadable_checkpoint(adapter_path, self.base, self.error)
        try:
            data = self._index.check(adapter_path)
        except _readable_errors() as error:
            return Report.unreadable_checkpoint(adapter_path, self.base, error)
        return Report.from_native(data, adapter_path)

    def check_many(self, adapters: Iterable[PathLike]) -> list[Report]:
        """One report per adapter, in order; the native side checks them in parallel.

        One unreadable adapter does not hide the others: when the batch call fails, each adapter is checked on
        its own and only the broken ones get PK000.
        """
        paths = [os.fspath(adapter) for adapter in adapters]
        if self._index is None:
            assert self.error is not None
            return [Report.unreadable_checkpoint(path, self.base, self.error) for path in paths]
        try:
            results = self._index.check_many(paths)
        except _readable_errors():
            return [self.check(path) for path in paths]
        return [Report.from_native(data, path) for data, path in zip(results, paths)]


RewriteLike = Union[Report, Mapping[str, Any], "tuple[str, str]"]


def _rewrite_of(report_or_rewrite: RewriteLike) -> tuple[str, str]:
    rewrite: Any = report_or_rewrite
    if isinstance(rewrite, Report):
        rewrite = rewrite.rewrite
        if rewrite is None:
            raise ValueError(f"{report_or_rewrite.adapter}: no prefix rewrite was inferred (no PK001 finding)")
    if isinstance(rewrite, Mapping):
        inner = rewrite.get("rewrite")  # a PK001 finding's details
        if isinstance(inner, Mapping):
            rewrite = inner
        return str(rewrite.get("strip") or ""), str(rewrite.get("add") or "")
    if isinstance(rewrite, tuple) and len(rewrite) == 2:
        return str(rewrite[0] or ""), str(rewrite[1] or "")
    raise TypeError(f"expected a Report, a rewrite dict or a (strip, add) pair, not {type(rewrite).__name__}")


def write_remapped(adapter: PathLike, out: PathLike, report_or_rewrite: RewriteLike) -> int:
    """Write ``adapter`` to ``out`` with its keys rewritten by the inferred prefix rewrite (PK001).

    ``out`` is a directory (``adapter_model.safetensors`` + a copy of ``adapter_config.json``) or a
    ``.safetensors`` path. Tensor bytes are copied unchanged. Returns the number of tensors written. Raises
    :class:`CheckpointError` when the adapter cannot be read, ``ValueError`` when a report has no rewrite.

    Every key is written as ``base_model.model.`` + the rewritten module path + the tuner parameter (any outer
    wrapper such as DDP's ``module.`` dropped, a missing ``base_model.model.`` added), so an empty rewrite
    (``strip`` and ``add`` both "") still fixes keys that PEFT would drop for their prefix.
    """
    strip, add = _rewrite_of(report_or_rewrite)
    return int(_native().write_remapped(os.fspath(adapter), os.fspath(out), strip, add))


def read_header(path: PathLike) -> Any:
    """The validated safetensors header of one file (``peftfix._native.read_header``)."""
    return _native().read_header(os.fspath(path))


__all__ = [
    "BaseIndex",
    "CheckpointError",
    "LOAD_AS",
    "Report",
    "check_adapter",
    "read_header",
    "write_remapped",
]
