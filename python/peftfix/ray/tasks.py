"""What runs on the Ray workers: naming each adapter's base, indexing each base once, checking batches.

Local paths are read relative to the directory the fleet was submitted from (when the worker has it: always on a
cluster of one machine; on several machines give absolute paths on shared storage, or URLs). A worker keeps every
base index it has taken from the object store, so a base is rebuilt from its bytes once per worker process, not once
per batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Optional

import ray

from peftfix.checkpoint import BaseIndex, Report
from peftfix.checkpoint.errors import BaseNotFound
from peftfix.checkpoint.locate import base_named_by
from peftfix.ray.rows import row_of, table_of
from peftfix.serving import select, serving_findings

# adapter_config.json files read at once by one task.
CONFIG_READS = 16
# Object id -> the index it holds, in this worker process.
_OPENED: dict[str, BaseIndex] = {}


@contextmanager
def working_directory(path: str) -> Iterator[None]:
    """Run in ``path`` when this machine has it (a task worker runs one task at a time, so this is its own)."""
    if not os.path.isdir(path) or os.path.realpath(path) == os.path.realpath(os.getcwd()):
        yield
        return
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _base_of(adapter: str) -> tuple[str, Optional[str]]:
    try:
        return base_named_by(adapter), None
    except BaseNotFound as error:
        return "", str(error)


@ray.remote
def name_bases(adapters: Sequence[str], cwd: str) -> list[tuple[str, Optional[str]]]:
    """(base, None) for each adapter whose ``adapter_config.json`` names a base that can be found, ("", why not)
    otherwise. The configs are read CONFIG_READS at a time: remote, each is a round trip of waiting."""
    with working_directory(cwd), ThreadPoolExecutor(CONFIG_READS) as pool:
        return list(pool.map(_base_of, adapters))


@ray.remote
def open_index(base: str, load_as: str, cache: Any, cwd: str) -> BaseIndex:
    """The index of ``base``; it goes to the object store, pickled in its compact byte form. An unreadable base is
    an index that reports PK000 for every adapter."""
    with working_directory(cwd):
        return BaseIndex(base, load_as, cache=cache)


def _opened(ref: Any) -> BaseIndex:
    key = ref.hex()
    if key not in _OPENED:
        _OPENED[key] = ray.get(ref)
    return _OPENED[key]


def check_batch(batch: Any, indexes: Mapping[str, Any], server: Optional[str], cwd: str) -> Any:
    """Ray Data's map over a batch (an Arrow table of adapter, base, error): one result row per adapter, its
    adapters checked together against each base with ``check_many``."""
    adapters = batch.column("adapter").to_pylist()
    bases = batch.column("base").to_pylist()
    errors = batch.column("error").to_pylist()
    profile = select(server) if server is not None else None
    rows: list[Any] = [None] * len(adapters)
    by_base: dict[str, list[int]] = {}
    for position, (base, error) in enumerate(zip(bases, errors, strict=True)):
        if error is not None:
            report = Report.unreadable_checkpoint(adapters[position], base, BaseNotFound(error))
            rows[position] = row_of(report, adapters[position], base)
        else:
            by_base.setdefault(base, []).append(position)
    with working_directory(cwd):
        for base, positions in by_base.items():
            reports = _opened(indexes[base]).check_many([adapters[position] for position in positions])
            for position, report in zip(positions, reports, strict=True):
                note = None
                if profile is not None and not report.unreadable:
                    findings, note = serving_findings(adapters[position], base, profile)
                    report.findings.extend(findings)
                rows[position] = row_of(report, adapters[position], base, [note] if note else [])
    return table_of(rows)
