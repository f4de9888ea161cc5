"""`--write-remapped`: write a copy of an adapter with its keys in the form PEFT loads (the PK001 fix)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Union

from peftfix.checkpoint import backend
from peftfix.checkpoint.backend import PathLike
from peftfix.checkpoint.locate import resolve
from peftfix.checkpoint.report import Report

RewriteLike = Union[Report, Mapping[str, Any], "tuple[str, str]"]


def _rewrite_of(report_or_rewrite: RewriteLike) -> tuple[str, str]:
    rewrite: Any = report_or_rewrite
    if isinstance(report_or_rewrite, Report):
        rewrite = report_or_rewrite.rewrite
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
    source = resolve(os.fspath(adapter))  # a Hub id found in the local cache is written from there
    return int(backend.native().write_remapped(source, os.fspath(out), strip, add))
