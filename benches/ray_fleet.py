"""The child process of the `keys-ray` workload: a local Ray cluster with 2 CPUs checking the fleet with
`peftfix.ray.check_fleet`, local and over HTTP, printed as JSON for run.py.

    python benches/ray_fleet.py JOB.json

JOB: {"runs", "cpus", "batch_size", "local": {"base", "adapters"}, "http": {"base", "adapters"} | null, "slow": {...} | null}.
Each fleet is checked once cold (the first job pays for the worker processes and their imports) and then `runs`
times warm; every run plans again, so each one indexes the base in a task, as a new job would.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def check(fleet: dict, batch_size: int) -> tuple[float, dict[str, list[str]]]:
    from peftfix.ray import check_fleet

    start = time.perf_counter()
    rows = check_fleet(fleet["adapters"], fleet["base"], cache=False, batch_size=batch_size).take_all()
    elapsed = time.perf_counter() - start
    return elapsed, {row["adapter"]: sorted(row["codes"]) for row in rows}


def main(spec: dict) -> None:
    import ray
    from ray.data import DataContext

    start = time.perf_counter()
    ray.init(num_cpus=spec["cpus"], include_dashboard=False, logging_level=logging.WARNING)
    started_s = time.perf_counter() - start
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    DataContext.get_current().enable_progress_bars = False
    from peftfix import _native
    from peftfix.checkpoint import BaseIndex

    # What a worker pays once per base: the index's bytes from the object store, rebuilt (headers validated again).
    data = BaseIndex(spec["local"]["base"], cache=False)._index.to_bytes()
    start = time.perf_counter()
    _native.base_index_from_bytes(data)
    result: dict = {"start_s": started_s, "index_bytes": len(data), "from_bytes_s": time.perf_counter() - start}
    for name in ("local", "http", "slow"):
        fleet = spec.get(name)
        if not fleet:
            continue
        cold_s, codes = check(fleet, spec["batch_size"])
        times = []
        for _ in range(spec["runs"]):
            elapsed, again = check(fleet, spec["batch_size"])
            assert again == codes, f"{name}: run to run the codes differ"
            times.append(elapsed)
        result[name] = {"cold_s": cold_s, "times": times, "codes": [codes[a] for a in fleet["adapters"]]}
    ray.shutdown()
    print(json.dumps(result))


if __name__ == "__main__":
    with open(sys.argv[1]) as handle:
        main(json.load(handle))
