"""The result of checking one adapter against one base: ordinary diagnostics plus the matcher's figures."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from peftfix.checkpoint.backend import PathLike
from peftfix.diagnostics import Diagnostic, FindingsMixin

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
# The files of an adapter directory, in the order a finding should point at them.
ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")


def adapter_file(adapter: str) -> str:
    """The file a finding about ``adapter`` points at: its weights (or config) when it is a directory."""
    if os.path.isdir(adapter):
        for name in ADAPTER_FILES:
            candidate = os.path.join(adapter, name)
            if os.path.isfile(candidate):
                return candidate
    return adapter


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
    def from_native(cls, data: Mapping[str, Any], adapter: Optional[str] = None) -> Report:
        adapter = str(adapter or data.get("adapter") or "")
        counts = dict.fromkeys(COUNT_KEYS, 0)
        counts.update({key: int(value) for key, value in (data.get("counts") or {}).items()})
        rewrite = data.get("rewrite")
        artifact = adapter_file(adapter)
        return cls(
            adapter=adapter,
            base=str(data.get("base") or ""),
            findings=[
                Diagnostic(
                    code=str(item["code"]),
                    message=str(item["message"]),
                    filename=adapter,
                    details=dict(item.get("details") or {}),
                    artifact=artifact,
                )
                for item in data.get("findings") or ()
            ],
            counts=counts,
            rewrite=dict(rewrite) if rewrite else None,
            seconds=float(data.get("seconds") or 0.0),
        )

    @classmethod
    def unreadable_checkpoint(cls, adapter: PathLike, base: PathLike, error: BaseException) -> Report:
        """A report with one PK000 finding for an error raised while reading ``adapter`` or ``base``."""
        adapter = os.fspath(adapter)
        path, reason = _error_parts(error)
        message = f"{path}: {reason}" if path else reason
        return cls(
            adapter=adapter,
            base=os.fspath(base),
            findings=[
                Diagnostic(
                    code="PK000",
                    message=message,
                    filename=adapter,
                    details={"path": path, "reason": reason},
                    artifact=adapter_file(adapter),
                )
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
