"""A fleet of adapters checked on Ray: which base each needs, each base indexed once, batches checked in parallel.

1. Without a ``base``, tasks read which base each adapter names (one remote read per adapter, done in parallel).
2. One task per distinct base builds its index, all at once; the index goes to the object store (its compact byte
   form), and every worker that checks against it takes it from there once.
3. The adapters, grouped by base, become a Ray Dataset mapped in batches; each batch is one ``check_many`` call
   per base, so the native reader keeps its requests in flight together.

Failures are data: an adapter or base that cannot be read, or an adapter whose base cannot be found, is a row with
PK000. A worker that dies is Ray's to retry (Ray Data retries its tasks), so a lost machine costs time, not rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Optional

from peftfix.checkpoint.backend import PathLike
from peftfix.checkpoint.matching import REMOTE_IN_FLIGHT, CacheSetting, check_load_as
from peftfix.ray.cluster import connect
from peftfix.ray.rows import table_of

# Adapters per batch: as many as one native call keeps in flight, small enough that a fleet of a few hundred still
# spreads over the workers.
BATCH_SIZE = REMOTE_IN_FLIGHT


@dataclass
class FleetPlan:
    """What the fleet check will do: the adapters with their bases (or why none), and the object refs of the base
    indexes being built."""

    items: list[dict[str, Optional[str]]]
    indexes: dict[str, Any]
    cwd: str


def plan_fleet(
    adapters: Iterable[PathLike],
    base: Optional[PathLike] = None,
    *,
    load_as: str = "causal-lm",
    cache: CacheSetting = True,
    batch_size: int = BATCH_SIZE,
) -> FleetPlan:
    """Steps 1 and 2: the bases named, then their indexes built (in the object store when this returns)."""
    ray = connect()
    from peftfix.ray import tasks

    check_load_as(load_as)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    names = [os.fspath(adapter) for adapter in adapters]
    cwd = os.getcwd()
    if base is not None:
        named: list[tuple[str, Optional[str]]] = [(os.fspath(base), None)] * len(names)
    else:
        chunks = [names[start : start + batch_size] for start in range(0, len(names), batch_size)]
        named = [pair for chunk in ray.get([tasks.name_bases.remote(chunk, cwd) for chunk in chunks]) for pair in chunk]
    items = [
        {"adapter": adapter, "base": base_name, "error": error}
        for adapter, (base_name, error) in zip(names, named, strict=True)
    ]
    # Adapters of one base side by side: a batch then needs one index and makes one native call.
    items.sort(key=lambda item: item["base"] or "")
    bases = sorted({str(item["base"]) for item in items if item["error"] is None})
    indexes = {name: tasks.open_index.remote(name, load_as, cache, cwd) for name in bases}
    # Every index built before a batch starts: a batch would only wait for it, holding a CPU Ray Data counts as busy.
    ray.wait(list(indexes.values()), num_returns=len(indexes), fetch_local=False)
    return FleetPlan(items, indexes, cwd)


def fleet_dataset(plan: FleetPlan, server: Optional[str] = None, batch_size: int = BATCH_SIZE) -> Any:
    """Step 3: the lazy Dataset of result rows."""
    ray = connect()
    from peftfix.ray import tasks

    if not plan.items:
        return ray.data.from_arrow(table_of([]))
    blocks = math.ceil(len(plan.items) / batch_size)
    dataset = ray.data.from_items(plan.items, override_num_blocks=blocks)
    return dataset.map_batches(
        tasks.check_batch,
        batch_format="pyarrow",
        batch_size=batch_size,
        fn_kwargs={"indexes": plan.indexes, "server": server, "cwd": plan.cwd},
    )


def check_fleet(
    adapters: Iterable[PathLike],
    base: Optional[PathLike] = None,
    *,
    server: Optional[str] = None,
    load_as: str = "causal-lm",
    cache: CacheSetting = True,
    batch_size: int = BATCH_SIZE,
) -> Any:
    """Check every adapter on Ray; a ``ray.data.Dataset`` of one row per adapter (see :mod:`peftfix.ray.rows`).

    ``base``: the base of every adapter; None: the one each adapter's ``adapter_config.json`` names. ``server``
    (``"vllm"``, ``"vllm==0.34.0"``, ``"sglang"``, ``"lorax"``): add the serving checks. ``cache``: the base-index
    cache of each worker (True: its default directory). Joins the cluster of ``RAY_ADDRESS``, or starts one on this
    machine, unless ``ray.init`` was called already. The base names are read and the bases indexed now; the checks
    run when the Dataset is consumed (``take_all``, ``iter_rows``, ``write_parquet``...), in no particular row order.
    """
    if server is not None:
        from peftfix.serving import select

        select(server)  # an unknown server is the caller's error, told now (ProfileError, a ValueError)
    plan = plan_fleet(adapters, base, load_as=load_as, cache=cache, batch_size=batch_size)
    return fleet_dataset(plan, server, batch_size)
