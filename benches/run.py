"""The benchmark harness: every performance target of peftfix, peftfix beside the plain-Python
reference (peftfix.checkpoint.reference) and beside the physical limit of the same work.

    python benches/run.py            # full sizes, median of 3 runs (a few minutes on 2 cores)
    python benches/run.py --quick    # small sizes, 1 run, under a minute: the CI smoke test
    python benches/run.py --runs 5 --only keys-deepseek,header-parse
    python benches/run.py --only keys-remote   # the fleet read over HTTP (tests/remote/servers.py's RangeServer)

Workloads are generated into a temporary directory (valid safetensors files; one shard and one adapter are
opened with the real `safetensors` library first). Both implementations must report the same findings before
anything is timed. Prints one table and writes benches/results/latest.json and latest.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import workloads  # noqa: E402

# The plain-Python reference, run as its own process like peftfix (python -m peftfix.checkpoint.reference).
REFERENCE = "peftfix.checkpoint.reference"
EXAMPLES = ROOT / "examples"
WORKLOADS = (
    "keys-deepseek",
    "keys-fleet",
    "keys-remote",
    "keys-ray",
    "header-parse",
    "source-tree",
    "source-corpus",
    "verify-cpu",
)
# These need build_checkpoints.
KEYS_WORKLOADS = {"keys-deepseek", "keys-fleet", "keys-remote", "keys-ray", "header-parse"}
RAY_CPUS = 2  # keys-ray: the local Ray cluster's CPUs
SLOW_DELAY_S = 0.25  # keys-ray: the delay of every request in the round-trip run (large beside the noise of timing)
REMOTE_FLEET = 20  # keys-remote: the first adapters of the keys-fleet fleet (all of them in quick mode)
NOT_IN_QUICK: set[str] = set()  # workloads a plain `--quick` run (the CI smoke test) leaves out
CORPUS = ROOT / "tests" / "corpus" / "files"
FULL = {"layers": workloads.LAYERS, "fleet": 50, "files": 5000, "runs": 3, "reference_fleet_runs": 1, "copies": 10}
QUICK = {"layers": 8, "fleet": 5, "files": 500, "runs": 1, "reference_fleet_runs": 1, "copies": 2}


# --- measuring ----------------------------------------------------------------------------------------------------


def run_child(command: list[str], ok=(0, 1)) -> tuple[float, str, int]:
    """Run a command; (seconds, stdout, peak RSS in bytes of that child alone, via wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err)
        # wait4's ru_maxrss of a forked child starts from this process's RSS, so read the child's own high-water
        # mark (VmHWM) while it runs; it is the exact figure except for a last spike between two reads.
        peak = 0
        while True:
            try:
                with open(f"/proc/{child.pid}/status") as status_file:
                    for line in status_file:
                        if line.startswith("VmHWM:"):
                            peak = max(peak, int(line.split()[1]) * 1024)
            except (OSError, ValueError):
                pass
            pid, status, usage = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.002)
        elapsed = time.perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if ok is not None and child.returncode not in ok:
        raise SystemExit(f"{' '.join(command[:6])} ... failed ({child.returncode}):\n{stderr[-3000:]}")
    return elapsed, stdout, peak or usage.ru_maxrss * 1024


def median(values):
    return statistics.median(values) if values else None


def mib(value):
    return None if value is None else round(value / 2**20, 1)


def peftfix_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "peftfix", *args]


def header_len(path: Path) -> int:
    with open(path, "rb") as handle:
        return int.from_bytes(handle.read(8), "little")


def read_header_bytes(path: str) -> None:
    """The raw read of a safetensors header (open, the 8 length bytes, the N JSON bytes): the limit of a scan."""
    with open(path, "rb") as handle:
        handle.read(int.from_bytes(handle.read(8), "little"))


def timed(fn, count: int) -> float:
    """Median seconds of ``count`` calls of ``fn`` after one untimed call (page cache warm, imports done)."""
    fn()
    out = []
    for _ in range(count):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return median(out)


# --- workload generation ------------------------------------------------------------------------------------------

PLANTED = {  # fleet index -> (kind, expected codes)
    3: ("prefix `_orig_mod.`", ["PK001"]),
    17: ("zero lora_B", ["PK004"]),
    31: ("lora_A rank 3 at layer 10 expert 5 up_proj", ["PK003", "PK005"]),
}


def planted_for(fleet: int) -> dict[int, tuple[str, list[str]]]:
    """Spread the three planted bugs over the fleet (quick mode has fewer adapters)."""
    if fleet >= 32:
        return PLANTED
    spots = [fleet // 4, fleet // 2, (3 * fleet) // 4] if fleet >= 4 else list(range(fleet))
    return dict(zip(spots, PLANTED.values(), strict=False))  # quick mode: fewer spots than bugs


def build_checkpoints(root: Path, sizes: dict) -> dict:
    layers = sizes["layers"]
    base = workloads.deepseek_v3_base(root / "base", layers=layers)
    clean = workloads.per_expert_lora(root / "clean", layers=layers)
    compiled = workloads.per_expert_lora(root / "orig-mod", key_prefix="base_model.model._orig_mod.", layers=layers)
    zero = workloads.per_expert_lora(root / "zero-b", zero_b=True, layers=layers)
    shape = workloads.per_expert_lora(root / "shape", layers=layers, wrong_rank_at=(min(10, layers - 1), 5, "up_proj"))
    bugs = {"prefix": compiled, "zero lora_B": zero, "lora_A rank": shape}
    fleet = []
    planted = planted_for(sizes["fleet"])
    for index in range(sizes["fleet"]):
        target = root / "fleet" / f"adapter-{index:03d}"
        source = clean
        if index in planted:
            source = bugs[next(key for key in bugs if planted[index][0].startswith(key))]
        shutil.copytree(source, target)  # separate files (own inodes and page-cache pages), same bytes
        fleet.append(target)
    return {"base": base, "clean": clean, "orig_mod": compiled, "fleet": fleet, "planted": planted}


def check_with_safetensors(ckpt: dict) -> str:
    """Open one shard and the adapter with the real safetensors library and read a tensor from each."""
    from safetensors import safe_open

    shard = sorted(ckpt["base"].glob("*.safetensors"))[0]
    opened = []
    for path in (shard, ckpt["clean"] / "adapter_model.safetensors"):
        with safe_open(str(path), framework="numpy") as handle:  # numpy: keeps torch out of this process
            keys = list(handle.keys())
            # numpy has no float8: read the last tensor of a dtype the framework has
            for key in reversed(keys):
                try:
                    handle.get_tensor(key)
                    break
                except (TypeError, ValueError, RuntimeError):
                    continue
            else:
                raise AssertionError(f"safetensors could read no tensor of {path}")
            opened.append(f"{path.name}: {len(keys)} tensors")
    return "; ".join(opened)


PLAIN_TEMPLATE = '''"""Module {index}: plain application code that never touches the checked libraries."""

import collections
import json
import os
from dataclasses import dataclass


@dataclass
class Record{index}:
    name: str
    size: int = 0
    tags: tuple = ()

    def describe(self) -> str:
        return f"{{self.name}} ({{self.size}} bytes, {{len(self.tags)}} tags)"


def load_records_{index}(path):
    with open(path) as handle:
        rows = json.load(handle)
    return [Record{index}(row["name"], int(row.get("size", 0)), tuple(row.get("tags", ()))) for row in rows]


def summarise_{index}(records):
    counts = collections.Counter(tag for record in records for tag in record.tags)
    total = sum(record.size for record in records)
    largest = max(records, key=lambda record: record.size, default=None)
    return {{"total": total, "largest": largest.name if largest else None, "tags": counts.most_common(5)}}


def walk_{index}(root):
    for directory, _subdirs, names in os.walk(root):
        for name in sorted(names):
            if name.endswith((".json", ".txt")):
                yield os.path.join(directory, name)


class Cache{index}:
    def __init__(self, limit=128):
        self.limit = limit
        self.items = collections.OrderedDict()

    def get(self, key, default=None):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        return default

    def put(self, key, value):
        self.items[key] = value
        self.items.move_to_end(key)
        while len(self.items) > self.limit:
            self.items.popitem(last=False)


if __name__ == "__main__":
    print(summarise_{index}(load_records_{index}("records.json")))
'''


def build_source_tree(root: Path, files: int) -> dict:
    examples = sorted(EXAMPLES.glob("*.py"))
    peft_files = max(1, files // 20)
    for index in range(files):
        target = root / f"pkg{index // 100:03d}" / f"module_{index:05d}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        if index % 20 == 0:
            shutil.copyfile(examples[(index // 20) % len(examples)], target)
        else:
            target.write_text(PLAIN_TEMPLATE.format(index=index))
    return {"files": files, "peft_files": peft_files}


# --- workloads ----------------------------------------------------------------------------------------------------


def codes_of_peftfix(output: str) -> list[tuple[str, str]]:
    return sorted((item["filename"].rstrip("/").split("/")[-1], item["code"]) for item in json.loads(output))


def codes_of_reference(output: str) -> list[tuple[str, str]]:
    reports = [json.loads(line) for line in output.splitlines() if line.strip()]
    return sorted((r["adapter"].rstrip("/").split("/")[-1], f["code"]) for r in reports for f in r["findings"])


def keys_cli_pair(label: str, adapters: list, base: Path, runs: int, reference_runs: int, *options: str):
    """`peftfix keys ADAPTER... --base BASE --format json` (one untimed run first, then ``runs``) and the reference
    process on the same files (``reference_runs``); every run of either must report the same findings.
    Returns (findings as (adapter name, code) pairs, peftfix's run_child results, the reference's)."""
    ours = peftfix_cmd("keys", *map(str, adapters), "--base", str(base), *options, "--format", "json")
    theirs = [sys.executable, "-m", REFERENCE, *map(str, adapters), "--base", str(base)]
    found = codes_of_peftfix(run_child(ours)[1])
    our_runs = [run_child(ours) for _ in range(runs)]
    their_runs = [run_child(theirs) for _ in range(reference_runs)]
    for ran, codes_of in ((our_runs, codes_of_peftfix), (their_runs, codes_of_reference)):
        for _, output, _ in ran:
            assert codes_of(output) == found, f"{label}: peftfix {found} != {codes_of(output)}"
    return found, our_runs, their_runs


def bench_keys_deepseek(ckpt: dict, runs: int) -> list[dict]:
    keys = header_keys(ckpt["clean"] / "adapter_model.safetensors")
    rows = []
    for label, adapter, expected in (
        ("clean", ckpt["clean"], []),
        ("`_orig_mod.` prefix", ckpt["orig_mod"], ["PK001"]),
    ):
        found, our_runs, their_runs = keys_cli_pair(f"keys-deepseek {label}", [adapter], ckpt["base"], runs, runs)
        assert [code for _, code in found] == expected, (label, found)
        ours_s, theirs_s = median([r[0] for r in our_runs]), median([r[0] for r in their_runs])
        rows.append(
            {
                "workload": "keys-deepseek",
                "case": f"{label} ({keys:,} adapter keys)",
                "findings": [c for _, c in found],
                "peftfix_s": ours_s,
                "reference_s": theirs_s,
                "rate": keys / ours_s,
                "reference_rate": keys / theirs_s,
                "unit": "keys/s",
                "ratio": theirs_s / ours_s,
                "target": "ratio >= 20x",
                "met": theirs_s / ours_s >= 20 if keys > 80_000 else None,  # the target is for the full-size pair
                "peftfix_rss_mib": mib(max(r[2] for r in our_runs)),
                "reference_rss_mib": mib(max(r[2] for r in their_runs)),
            }
        )
    return rows


def header_keys(path: Path) -> int:
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        return len(json.loads(handle.read(length))) - 1


def fleet_worker(impl: str, base: str, adapters: list[str], runs: int, options: dict) -> None:
    """In a child process (own peak RSS): index the base, check the fleet `runs` times, print JSON.

    ``options``: ``cache`` (peftfix: BaseIndex's ``cache`` argument; absent: its default), ``reopen`` (index the
    base again before every run, timed apart from the check; otherwise once)."""
    if impl == "peftfix":
        from peftfix.checkpoint import BaseIndex

        def open_index():
            index = BaseIndex(base, **{key: options[key] for key in ("cache",) if key in options})
            if index.error is not None:
                raise SystemExit(f"fleet worker: base {base} unreadable: {index.error}")
            return index

        def codes_of(report) -> list[str]:
            return sorted(report.codes)

        def keys_of(report) -> int:
            return report.counts["adapter_tensors"]

        def unreadable(report) -> list[str]:
            return [finding.message for finding in report.findings if finding.code == "PK000"]
    else:
        from peftfix.checkpoint import reference as reference_matcher

        def open_index():
            return reference_matcher.BaseIndex(base)

        def codes_of(report) -> list[str]:
            return sorted(f["code"] for f in report["findings"])

        def keys_of(report) -> int:
            return report["counts"]["adapter_tensors"]

        def unreadable(report) -> list[str]:
            return [finding["message"] for finding in report["findings"] if finding["code"] == "PK000"]

    index, index_times, from_cache, times, reports, failed = None, [], [], [], [], []
    for _ in range(runs):
        if index is None or options.get("reopen"):
            start = time.perf_counter()
            index = open_index()
            index_times.append(time.perf_counter() - start)
            from_cache.append(bool(getattr(index, "from_cache", False)))
        start = time.perf_counter()
        reports = index.check_many(adapters)
        times.append(time.perf_counter() - start)
        failed = [message for report in reports for message in unreadable(report)]
        if failed:  # the parent's parity check fails on these: no use timing more runs
            break
    result = {
        "index_s": index_times[0],
        "index_times": index_times,
        "from_cache": from_cache,
        "times": times,
        "codes": [codes_of(report) for report in reports],
        "keys": sum(keys_of(report) for report in reports),
        "pk000": failed,
    }
    print(json.dumps(result))


def run_fleet_worker(impl: str, base: str, adapters: list[str], runs: int, **options) -> tuple[dict, int]:
    """fleet_worker in a child process: (its result, its peak RSS in bytes)."""
    command = [sys.executable, __file__, "--fleet-worker", impl, base, str(runs), json.dumps(options), *adapters]
    _, out, rss = run_child(command, ok=(0,))
    return json.loads(out), rss


def assert_fleet_codes(label: str, codes: list[list[str]], planted: dict) -> None:
    """The planted bugs are found where they were planted, and nothing else anywhere."""
    for spot, (kind, expected) in planted.items():
        assert sorted(codes[spot]) == sorted(expected), (label, spot, kind, codes[spot])
    clean = [found for spot, found in enumerate(codes) if spot not in planted]
    assert all(found == [] for found in clean), (label, clean)


def planted_findings(codes: list[list[str]], planted: dict) -> list[str]:
    return [f"#{spot}: {'+'.join(codes[spot])}" for spot in sorted(planted)]


def bench_keys_fleet(ckpt: dict, runs: int, reference_runs: int) -> list[dict]:
    adapters = [str(path) for path in ckpt["fleet"]]
    base = str(ckpt["base"])
    results = {
        impl: run_fleet_worker(impl, base, adapters, count)
        for impl, count in (("peftfix", runs), ("reference", reference_runs))
    }
    ours, theirs = results["peftfix"][0], results["reference"][0]
    assert ours["codes"] == theirs["codes"], f"keys-fleet: peftfix {ours['codes']} != reference {theirs['codes']}"
    assert_fleet_codes("keys-fleet", ours["codes"], ckpt["planted"])
    ours_s, theirs_s = median(ours["times"]), median(theirs["times"])
    keys = ours["keys"]
    rate = keys / ours_s
    return [
        {
            "workload": "keys-fleet",
            "case": f"{len(adapters)} adapters, {keys:,} keys, base indexed once "
            f"(peftfix {ours['index_s']:.2f} s, reference {theirs['index_s']:.2f} s, not counted); "
            f"reference: median of {reference_runs} run(s), full fleet",
            "findings": planted_findings(ours["codes"], ckpt["planted"]),
            "peftfix_s": ours_s,
            "reference_s": theirs_s,
            "rate": rate,
            "reference_rate": keys / theirs_s,
            "unit": "keys/s",
            "ratio": theirs_s / ours_s,
            "target": ">= 5M keys/s",
            "met": rate >= 5e6 if keys >= 1_000_000 else None,  # judged on the full fleet only
            "peftfix_rss_mib": mib(results["peftfix"][1]),
            "reference_rss_mib": mib(results["reference"][1]),
        }
    ]


def per_run_totals(result: dict) -> list[float]:
    """Seconds of each run of a ``reopen`` fleet worker: indexing the base plus checking the fleet."""
    return [index_s + check_s for index_s, check_s in zip(result["index_times"], result["times"], strict=True)]


def bench_keys_remote(root: Path, ckpt: dict, runs: int, reference_runs: int) -> list[dict]:
    """The first REMOTE_FLEET adapters of the fleet: in-process beside the bare header scan, the CLI beside the
    reference, then base and adapters behind tests/remote/servers.py's RangeServer, without and with the
    base-index cache (PEFTFIX_CACHE_DIR, set by main to a fresh directory)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from remote.servers import RangeServer, loopback_no_proxy

    fleet = ckpt["fleet"][:REMOTE_FLEET]
    planted = {spot: bug for spot, bug in ckpt["planted"].items() if spot < len(fleet)}
    adapters, base = [str(path) for path in fleet], str(ckpt["base"])
    files = [str(path / "adapter_model.safetensors") for path in fleet]
    scan_bytes = sum(8 + header_len(Path(path)) for path in files)
    workers = len(os.sched_getaffinity(0))

    local, local_rss = run_fleet_worker("peftfix", base, adapters, runs, cache=False, reopen=True)
    assert_fleet_codes("keys-remote", local["codes"], planted)
    found = planted_findings(local["codes"], planted)
    keys = local["keys"]
    from peftfix import _native

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        raw_s = timed(lambda: list(pool.map(read_header_bytes, files)), max(runs, 3))
    # The bare header scan: the same files' headers read and validated natively on all cores, nothing kept.
    scan_s = timed(lambda: _native.scan_headers(files), max(runs, 3))
    check_s, local_s = median(local["times"]), median(per_run_totals(local))

    cli_found, cli_runs, ref_runs = keys_cli_pair(
        "keys-remote CLI", fleet, ckpt["base"], runs, reference_runs, "--no-cache"
    )
    in_process = sorted((fleet[spot].name, code) for spot, codes in enumerate(local["codes"]) for code in codes)
    assert cli_found == in_process, f"keys-remote: CLI {cli_found} != in-process {in_process}"
    cli_s, ref_s = median([r[0] for r in cli_runs]), median([r[0] for r in ref_runs])

    def remote_run(label: str, *args, **options) -> tuple[dict, int]:
        result, rss = run_fleet_worker("peftfix", *args, **options)
        assert result["codes"] == local["codes"], (
            f"keys-remote {label}: {result['codes']} != local {local['codes']} {result['pk000']}"
        )
        return result, rss

    os.environ.update(loopback_no_proxy())  # the workers' HTTP client must not send 127.0.0.1 to a proxy
    with RangeServer(root) as server:

        def url(path: Path) -> str:
            return f"{server.url}/{path.relative_to(root).as_posix()}"

        urls, base_url = [url(path) for path in fleet], url(ckpt["base"])
        server.reset()
        remote, remote_rss = remote_run("remote", base_url, urls, runs, cache=False, reopen=True)
        served, requests = server.bytes_sent / runs, len(server.requests) / runs
        warm, _ = remote_run("remote, warming the cache", base_url, urls, 1, cache=True, reopen=True)
        server.reset()
        cached, cached_rss = remote_run("remote, cached", base_url, urls, runs, cache=True, reopen=True)
        cached_served = server.bytes_sent / runs
        shard_prefix = "/" + ckpt["base"].relative_to(root).as_posix() + "/"
        shard_reads = [
            r
            for r in server.requests
            if r.method == "GET"
            and r.path.startswith(shard_prefix)
            and r.path.endswith(".safetensors")
            and r.status != 404  # the look for a single model.safetensors, not a shard read
        ]
    assert warm["from_cache"] == [False] and not any(remote["from_cache"]), "keys-remote: a cache hit without a cache"
    assert all(cached["from_cache"]), f"keys-remote: cached runs read the base ({cached['from_cache']})"
    remote_s, cached_s = median(per_run_totals(remote)), median(per_run_totals(cached))
    full = keys >= 1_000_000  # the targets are judged on the full fleet only
    fleet_text = f"{len(fleet)} adapters, {keys:,} keys, {scan_bytes / 1e6:.0f} MB of adapter headers"
    rows = [
        {
            "case": f"{fleet_text}: `BaseIndex(base, cache=False).check_many` in a child process, base indexed "
            f"before each run (median {median(local['index_times']):.3f} s, not counted); other: the bare header "
            f"scan, `_native.scan_headers` (read + validate, nothing kept) of the same files on {workers} cores "
            f"(the raw read of those 8+N bytes alone: {raw_s:.3f} s, {scan_bytes / raw_s / 1e6:,.0f} MB/s)",
            "peftfix_s": check_s,
            "reference_s": scan_s,
            "rate": scan_bytes / check_s / 1e6,
            "reference_rate": scan_bytes / scan_s / 1e6,
            "unit": "MB/s",
            "ratio": check_s / scan_s,
            "target": "in-process <= 1.5x the bare header scan",
            "met": check_s <= 1.5 * scan_s if full else None,
            "peftfix_rss_mib": mib(local_rss),
        },
        {
            "case": f"the same fleet, CLI end to end: `peftfix keys` on {len(fleet)} adapters `--no-cache "
            f"--format json`; other: the reference process (median of {reference_runs} run(s))",
            "peftfix_s": cli_s,
            "reference_s": ref_s,
            "rate": keys / cli_s,
            "reference_rate": keys / ref_s,
            "unit": "keys/s",
            "ratio": ref_s / cli_s,
            "target": "CLI >= 20x the plain-Python reference",
            "met": ref_s >= 20 * cli_s if full else None,
            "peftfix_rss_mib": mib(max(r[2] for r in cli_runs)),
            "reference_rss_mib": mib(max(r[2] for r in ref_runs)),
        },
        {
            "case": f"the same fleet in-process, base and adapters over HTTP (RangeServer on 127.0.0.1), "
            f"cache=False, index + check timed ({served / 1e6:.1f} MB served in {requests:.0f} requests per run); "
            "other: the local run of row 1, index + check",
            "peftfix_s": remote_s,
            "reference_s": local_s,
            "rate": keys / remote_s,
            "reference_rate": keys / local_s,
            "unit": "keys/s",
            "ratio": remote_s / local_s,
            "target": "remote <= 2x local",
            "met": remote_s <= 2 * local_s if full else None,
            "peftfix_rss_mib": mib(remote_rss),
            "reference_rss_mib": mib(local_rss),
        },
        {
            "case": f"the same remote run with the base-index cache (warmed by an untimed run): {len(shard_reads)} "
            f"shard headers read, {cached_served / 1e6:.1f} MB served per run; other: the uncached remote run",
            "peftfix_s": cached_s,
            "reference_s": remote_s,
            "rate": keys / cached_s,
            "reference_rate": keys / remote_s,
            "unit": "keys/s",
            "ratio": cached_s / remote_s,
            "target": "cached: no shard header read",
            "met": not shard_reads,
            "peftfix_rss_mib": mib(cached_rss),
            "reference_rss_mib": mib(remote_rss),
        },
    ]
    return [{"workload": "keys-remote", "findings": found, **row} for row in rows]


def bench_keys_ray(root: Path, ckpt: dict, runs: int) -> list[dict]:
    """The keys-fleet fleet on a local Ray cluster (`peftfix.ray.check_fleet`, ray_fleet.py in a child process)
    beside `check_many` in one process, base indexed in every run by both: local files, the same files over HTTP,
    and over HTTP with every request SLOW_DELAY_S late (how many round trips a run waits for)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from remote.servers import RangeServer, loopback_no_proxy

    try:
        import ray  # noqa: F401
    except ImportError:
        return [{"workload": "keys-ray", "case": "skipped: Ray is not installed (pip install 'peftfix[ray]')",
                 "unit": "s"}]  # fmt: skip
    from peftfix.ray import BATCH_SIZE

    adapters, base = [str(path) for path in ckpt["fleet"]], str(ckpt["base"])
    os.environ.update(loopback_no_proxy())
    local, local_rss = run_fleet_worker("peftfix", base, adapters, runs, cache=False, reopen=True)
    assert_fleet_codes("keys-ray", local["codes"], ckpt["planted"])
    keys = local["keys"]
    with RangeServer(root) as server, RangeServer(root, mode="slow", delay=SLOW_DELAY_S) as slow:

        def url(path: str, where: RangeServer) -> str:
            return f"{where.url}/{Path(path).relative_to(root).as_posix()}"

        http = {"base": url(base, server), "adapters": [url(a, server) for a in adapters]}
        late = {"base": url(base, slow), "adapters": [url(a, slow) for a in adapters]}
        server.reset()
        run_fleet_worker("peftfix", http["base"], [], 1, cache=False)
        base_bytes, base_requests = server.bytes_sent, len(server.requests)
        server.reset()
        remote, remote_rss = run_fleet_worker("peftfix", http["base"], http["adapters"], runs, cache=False, reopen=True)
        fleet_bytes = server.bytes_sent / runs - base_bytes
        fleet_requests = len(server.requests) / runs - base_requests
        delayed, _ = run_fleet_worker("peftfix", late["base"], late["adapters"], runs, cache=False, reopen=True)
        spec = {"runs": runs, "cpus": RAY_CPUS, "batch_size": BATCH_SIZE, "local": {"base": base, "adapters": adapters},
                "http": http, "slow": late}  # fmt: skip
        spec_path = root / "ray-spec.json"
        spec_path.write_text(json.dumps(spec))
        _, out, ray_rss = run_child([sys.executable, str(HERE / "ray_fleet.py"), str(spec_path)], ok=(0,))
    on_ray = json.loads(out)
    for name in ("local", "http", "slow"):
        assert on_ray[name]["codes"] == local["codes"], f"keys-ray {name}: {on_ray[name]['codes']} != {local['codes']}"
    for label, result in (("remote", remote), ("slow", delayed)):
        assert result["codes"] == local["codes"], f"keys-ray in-process {label}: {result['codes']} != local"
    local_s, remote_s = median(per_run_totals(local)), median(per_run_totals(remote))
    slow_s, fast_s = median(per_run_totals(delayed)), remote_s
    ray_local_s, ray_http_s = median(on_ray["local"]["times"]), median(on_ray["http"]["times"])
    ray_slow_s = median(on_ray["slow"]["times"])
    tasks = -(-len(adapters) // BATCH_SIZE)
    cost = {
        "adapters": len(adapters),
        "keys_per_adapter": keys // len(adapters),
        "check_s_per_adapter": median(local["times"]) / len(adapters),
        "index_s": median(local["index_times"]),
        "index_bytes": on_ray["index_bytes"],
        "index_from_bytes_s": on_ray["from_bytes_s"],
        "base_header_bytes": base_bytes,
        "base_requests": base_requests,
        "bytes_per_adapter": fleet_bytes / len(adapters),
        "requests_per_adapter": fleet_requests / len(adapters),
        "round_trips_in_process": (slow_s - fast_s) / SLOW_DELAY_S,
        "round_trips_on_ray": (ray_slow_s - ray_http_s) / SLOW_DELAY_S,
        "ray_start_s": on_ray["start_s"],
        "ray_cold_job_s": on_ray["local"]["cold_s"],
        "ray_overhead_s_per_task": (ray_local_s - local_s) / tasks,
        "tasks": tasks,
    }
    print(f"keys-ray cost model: {json.dumps(cost)}", flush=True)
    found = planted_findings(local["codes"], ckpt["planted"])
    fleet_text = f"{len(adapters)} adapters, {keys:,} keys, {tasks} tasks of up to {BATCH_SIZE} on {RAY_CPUS} CPUs"
    rows = [
        {
            "case": f"{fleet_text}: `check_fleet(adapters, base, cache=False).take_all()` on a warm local cluster "
            f"(started in {on_ray['start_s']:.1f} s, first job {on_ray['local']['cold_s']:.2f} s, neither counted; "
            f"index sent as {on_ray['index_bytes'] / 1e6:.1f} MB); other: `check_many` in one process, both "
            "indexing the base each run",
            "peftfix_s": ray_local_s,
            "reference_s": local_s,
            "rate": keys / ray_local_s,
            "reference_rate": keys / local_s,
            "unit": "keys/s",
            "ratio": ray_local_s / local_s,
            "target": "overhead ratio, reported",
            "peftfix_rss_mib": mib(ray_rss),
            "reference_rss_mib": mib(local_rss),
        },
        {
            "case": f"the same fleet over HTTP (RangeServer on 127.0.0.1): {fleet_bytes / len(adapters) / 1e6:.2f} MB "
            f"in {fleet_requests / len(adapters):.1f} requests per adapter, the base {base_bytes / 1e6:.2f} MB in "
            f"{base_requests} requests; other: `check_many` in one process over the same server",
            "peftfix_s": ray_http_s,
            "reference_s": remote_s,
            "rate": keys / ray_http_s,
            "reference_rate": keys / remote_s,
            "unit": "keys/s",
            "ratio": ray_http_s / remote_s,
            "target": "overhead ratio, reported",
            "reference_rss_mib": mib(remote_rss),
        },
        {
            "case": f"the same with every request {SLOW_DELAY_S * 1000:.0f} ms late: Ray waits "
            f"{cost['round_trips_on_ray']:.1f} round trips in all, one process {cost['round_trips_in_process']:.1f} "
            "(the delay's cost / the delay); other: one process",
            "peftfix_s": ray_slow_s,
            "reference_s": slow_s,
            "rate": keys / ray_slow_s,
            "reference_rate": keys / slow_s,
            "unit": "keys/s",
            "ratio": ray_slow_s / slow_s,
            "target": "reported",
        },
    ]
    return [{"workload": "keys-ray", "findings": found, "cost": cost, **row} for row in rows]


def bench_header_parse(ckpt: dict, runs: int) -> list[dict]:
    from peftfix import _native
    from peftfix.checkpoint import reference as reference_matcher

    files = sorted(ckpt["base"].glob("*.safetensors")) + [ckpt["clean"] / "adapter_model.safetensors"]
    total = sum(8 + header_len(path) for path in files)
    paths = [str(path) for path in files]

    def raw():
        for path in paths:
            read_header_bytes(path)

    def native_read_header():
        for path in paths:
            _native.read_header(path)

    def reference_read_header():
        for path in paths:
            reference_matcher.read_header(path)

    base = str(ckpt["base"])
    base_bytes = sum(8 + header_len(path) for path in files[:-1])

    raw_s = timed(raw, max(runs, 3))
    rows = []
    for case, fn, size in (
        (
            f"_native.BaseIndex(base): {len(files) - 1} shards, index built natively",
            lambda: _native.BaseIndex(base),
            base_bytes,
        ),
        (f"_native.read_header on {len(files)} files (incl. building the Python dicts)", native_read_header, total),
    ):
        ours_s = timed(fn, max(runs, 3))
        limit_s = raw_s * size / total
        their_s = (
            timed(reference_read_header, 1)
            if "read_header" in case
            else timed(lambda: reference_matcher.BaseIndex(base), 1)
        )
        rows.append(
            {
                "workload": "header-parse",
                "case": case,
                "findings": [],
                "peftfix_s": ours_s,
                "reference_s": their_s,
                "rate": size / ours_s / 1e6,
                "reference_rate": size / their_s / 1e6,
                "unit": "MB/s",
                "ratio": their_s / ours_s,
                "target": "reported beside raw read",
                "met": None,
                "limit_rate": size / limit_s / 1e6,
                "limit": f"raw open/read of the 8+N header bytes: {size / limit_s / 1e6:,.0f} MB/s",
            }
        )
    return rows


def cli_no_prefilter(argv: list[str]) -> None:
    """`peftfix check` with discovery's pre-filter switched off (every .py file goes to the engine)."""
    import peftfix.source.discovery as discovery

    original = discovery.find_python_files

    def every_file(paths, exclude=(), respect_gitignore=True, prefilter=True):
        return original(paths, exclude=exclude, respect_gitignore=respect_gitignore, prefilter=False)

    discovery.find_python_files = every_file
    from peftfix.cli import main

    sys.argv = ["peftfix", *argv]
    main()


def source_findings(output: str) -> list[tuple[str, str]]:
    return sorted((item["filename"].rsplit("/", 1)[-1], item["code"]) for item in json.loads(output))


def bench_source_tree(root: Path, files: int, runs: int) -> list[dict]:
    tree = root / "tree"
    info = build_source_tree(tree, files)
    # Every run analyses every file: the cache (source-corpus times it) would make all but the first run warm.
    with_filter = peftfix_cmd("check", "--no-cache", "--format", "json", str(tree))
    without = [sys.executable, __file__, "--cli-no-prefilter", "check", "--no-cache", "--format", "json", str(tree)]
    _, out, _ = run_child(with_filter)
    _, out_all, _ = run_child(without)
    found = source_findings(out)
    assert found == source_findings(out_all), "source-tree: the pre-filter changed the findings"
    flagged = {name for name, _ in found}
    assert flagged and all(name.startswith("module_") and int(name[7:12]) % 20 == 0 for name in flagged), flagged
    timed_with = [run_child(with_filter) for _ in range(runs)]
    timed_without = [run_child(without) for _ in range(runs)]
    with_s, without_s = median([r[0] for r in timed_with]), median([r[0] for r in timed_without])
    codes = sorted({code for _, code in found})
    return [
        {
            "workload": "source-tree",
            "case": f"{files:,} files, {info['peft_files']} use peft; `peftfix check` end to end (reference column: "
            f"same CLI with the pre-filter off)",
            "findings": [f"{len(found)} findings in {len(flagged)} files: {', '.join(codes)}"],
            "peftfix_s": with_s,
            "reference_s": without_s,
            "rate": files / with_s,
            "reference_rate": files / without_s,
            "unit": "files/s",
            "ratio": without_s / with_s,
            "target": "< 10 s for 5,000 files",
            "met": with_s < 10 if files >= 5000 else None,
            "peftfix_rss_mib": mib(max(r[2] for r in timed_with)),
            "reference_rss_mib": mib(max(r[2] for r in timed_without)),
        }
    ]


def bare_parse(tree: str) -> None:
    """Child process: read and `ast.parse` every Python file under ``tree`` (the limit a checker cannot beat)."""
    import ast

    for path in sorted(Path(tree).rglob("*.py")):
        ast.parse(path.read_bytes())


FINDING_LINE = re.compile(r"^(?P<file>\S+?):(?P<row>\d+):\d+: (?P<code>[A-Z]+\d+)\b", re.MULTILINE)


def corpus_findings(output: str) -> list[tuple[str, int, str]]:
    """(copy_NN/path in the corpus, row, code) of each finding in the text output."""
    return sorted(
        (match["file"].split("corpus/", 1)[-1], int(match["row"]), match["code"])
        for match in FINDING_LINE.finditer(output)
    )


def bench_source_corpus(root: Path, copies: int, runs: int) -> list[dict]:
    """The real-world corpus (tests/corpus) repeated: cold and warm cache, beside a bare read + ast.parse and
    beside Fixit (a libcst-based linter) on the same files."""
    tree = root / "corpus"
    for index in range(copies):
        shutil.copytree(CORPUS, tree / f"copy_{index:02d}")
    files = sorted(tree.rglob("*.py"))
    size = sum(path.stat().st_size for path in files)
    bare = [sys.executable, __file__, "--bare-parse", str(tree)]
    caches = root / "corpus-caches"

    def check(cache: Path) -> list[str]:
        # The default text output, as a user runs it (JSON and SARIF also build every fix's edits).
        return peftfix_cmd("check", "--exit-zero", "--cache-dir", str(cache), str(tree))

    cold_runs, warm_runs, outputs = [], [], []
    for run in range(runs):
        cache = caches / f"run-{run}"
        cold_runs.append(run_child(check(cache)))
        warm_runs.append(run_child(check(cache)))
        outputs += [cold_runs[-1][1], warm_runs[-1][1]]
    found = corpus_findings(outputs[0])
    assert all(corpus_findings(output) == found for output in outputs), "source-corpus: the cache changed findings"
    per_copy = {(name.split("/", 1)[-1], row, code) for name, row, code in found}
    assert len(found) == copies * len(per_copy), "source-corpus: copies of one file got different findings"
    bare_s = median([run_child(bare)[0] for _ in range(runs)])
    cold_s, warm_s = median([r[0] for r in cold_runs]), median([r[0] for r in warm_runs])
    rows = [
        {
            "workload": "source-corpus",
            "case": f"{len(files)} real scripts ({copies}x the corpus, {size / 1e6:.1f} MB), cold cache; other: bare "
            "read + ast.parse in one process (the limit)",
            "findings": [f"{len(found)} findings"],
            "peftfix_s": cold_s,
            "reference_s": bare_s,
            "rate": len(files) / cold_s,
            "reference_rate": len(files) / bare_s,
            "unit": "files/s",
            "ratio": cold_s / bare_s,
            "target": "cold <= 2x bare read+parse",
            "met": cold_s <= 2 * bare_s,
            "peftfix_rss_mib": mib(max(r[2] for r in cold_runs)),
        },
        {
            "workload": "source-corpus",
            "case": "the same, warm cache (second run on the unchanged tree); other: the cold run",
            "findings": [f"{len(found)} findings"],
            "peftfix_s": warm_s,
            "reference_s": cold_s,
            "rate": len(files) / warm_s,
            "reference_rate": len(files) / cold_s,
            "unit": "files/s",
            "ratio": warm_s / cold_s,
            "target": "warm <= 0.1x cold",
            "met": warm_s <= 0.1 * cold_s,
            "peftfix_rss_mib": mib(max(r[2] for r in warm_runs)),
        },
    ]
    # Fixit pins an older click than peftfix's dependencies allow: it lives in a virtualenv of its own.
    fixit = os.environ.get("PEFTFIX_BENCH_FIXIT") or shutil.which("fixit")
    if fixit is None:
        print("source-corpus: no fixit (set PEFTFIX_BENCH_FIXIT=/path/to/venv/bin/fixit): no peer row", flush=True)
        return rows
    fixit_runs = [run_child([fixit, "lint", str(tree)], ok=None) for _ in range(runs)]
    fixit_s = median([r[0] for r in fixit_runs])
    rows.append(
        {
            "workload": "source-corpus",
            "case": "the same, cold; other: Fixit (`fixit lint`, libcst-based, its default rules)",
            "findings": [f"{len(found)} findings"],
            "peftfix_s": cold_s,
            "reference_s": fixit_s,
            "rate": len(files) / cold_s,
            "reference_rate": len(files) / fixit_s,
            "unit": "files/s",
            "ratio": fixit_s / cold_s,
            "target": ">= 10x faster than Fixit",
            "met": fixit_s >= 10 * cold_s,
            "peftfix_rss_mib": mib(max(r[2] for r in cold_runs)),
            "reference_rss_mib": mib(max(r[2] for r in fixit_runs)),
        }
    )
    return rows


def verify_worker(root: str, runs: int) -> None:
    """Child process: build a tiny Llama + trained LoRA (as tests/conftest.py does), time verify_adapter."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    from peftfix.verify import verify_adapter

    base, adapter = Path(root) / "tiny-llama", Path(root) / "tiny-lora"
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).eval().save_pretrained(base)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    )
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    model.save_pretrained(adapter)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result = {}
    for device in devices:
        first = verify_adapter(adapter, base, device=device)  # warm-up: first load pays lazy imports
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            report = verify_adapter(adapter, base, device=device)
            times.append(time.perf_counter() - start)
        result[device] = {
            "times": times,
            "codes": sorted(d.code for d in report.findings),
            "first_codes": sorted(d.code for d in first.findings),
        }
    print(json.dumps(result))


def bench_verify(root: Path, runs: int) -> list[dict]:
    from peftfix.verify import missing_modules

    if missing_modules():
        return [
            {
                "workload": "verify-cpu",
                "case": f"skipped: missing {', '.join(missing_modules())}",
                "findings": [],
                "met": None,
                "unit": "s",
            }
        ]
    _, out, rss = run_child([sys.executable, __file__, "--verify-worker", str(root / "verify"), str(runs)], ok=(0,))
    rows = []
    for device, result in json.loads(out).items():
        assert result["codes"] == result["first_codes"], result
        seconds = median(result["times"])
        rows.append(
            {
                "workload": "verify-cpu" if device == "cpu" else "verify-gpu",
                "case": f"tiny Llama (2 layers, hidden 32) + LoRA r=8 on {device}, warm process",
                "findings": result["codes"],
                "peftfix_s": seconds,
                "rate": seconds,
                "unit": "s",
                "met": None,
                "target": "reported",
                "peftfix_rss_mib": mib(rss),
            }
        )
    if len(rows) == 1:
        rows.append(
            {"workload": "verify-gpu", "case": "skipped: no CUDA device", "findings": [], "met": None, "unit": "s"}
        )
    return rows


# --- report -------------------------------------------------------------------------------------------------------


def fmt_rate(value, unit):
    if value is None:
        return ""
    if unit == "s":
        return f"{value:.3f} s"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:,.1f} {unit}"


def table_rows(rows):
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}[row.get("met")]
        ref = fmt_rate(row.get("reference_rate"), row["unit"]) if row.get("reference_rate") else ""
        if row.get("limit_rate"):
            ref += f" (limit {row['limit_rate']:,.0f} MB/s)"
        rss = "/".join(str(row[k]) for k in ("peftfix_rss_mib", "reference_rss_mib") if row.get(k) is not None)
        yield [
            row["workload"],
            row["case"],
            f"{row['peftfix_s']:.3f}" if row.get("peftfix_s") is not None else "",
            fmt_rate(row.get("rate"), row["unit"]) if row["unit"] != "s" else "",
            f"{row['reference_s']:.3f}" if row.get("reference_s") is not None else "",
            ref,
            f"{row['ratio']:.1f}x" if row.get("ratio") else "",
            rss,
            f"{row.get('target', '')}: {met}" if row.get("target") else "",
            " ".join(row.get("findings") or []),
        ]


HEADERS = [
    "workload",
    "case",
    "peftfix s",
    "peftfix rate",
    "other s",
    "other rate",
    "ratio",
    "peak RSS MiB",
    "target",
    "findings (both agree)",
]


def print_table(rows, title):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        for cells in table_rows(rows):
            print(" | ".join(cells))
        return
    table = Table(title=title, show_lines=True)
    for header in HEADERS:
        table.add_column(header, overflow="fold")
    for cells in table_rows(rows):
        table.add_row(*cells)
    Console(width=max(160, shutil.get_terminal_size().columns)).print(table)


def markdown(rows, meta) -> str:
    lines = [
        f"# Benchmark results ({meta['mode']})",
        "",
        f"{meta['date']} · {meta['machine']} · Python {meta['python']} · runs: {meta['runs']} (median) · "
        f"total {meta['total_s']:.0f} s",
        "",
        '"other" is the plain-Python reference (peftfix.checkpoint.reference) for the key workloads, the '
        "plain-Python reference's `read_header`/`BaseIndex` for header-parse (the raw read limit in brackets), "
        "the same CLI with the pre-filter off for source-tree, and for keys-remote and source-corpus what each row "
        "names.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "---|" * len(HEADERS),
    ]
    for cells in table_rows(rows):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--fleet-worker":
        impl, base, runs, options, *adapters = sys.argv[2:]
        return fleet_worker(impl, base, adapters, int(runs), json.loads(options))
    if len(sys.argv) > 1 and sys.argv[1] == "--cli-no-prefilter":
        return cli_no_prefilter(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "--bare-parse":
        return bare_parse(sys.argv[2])
    if len(sys.argv) > 1 and sys.argv[1] == "--verify-worker":
        return verify_worker(sys.argv[2], int(sys.argv[3]))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 run (CI smoke test)")
    parser.add_argument("--runs", type=int, help="runs per workload (median); default 3, or 1 with --quick")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="where latest.json/.md go")
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    runs = args.runs or sizes["runs"]
    only = set(args.only.split(",")) if args.only else set(WORKLOADS) - (NOT_IN_QUICK if args.quick else set())
    unknown = only - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s): {', '.join(sorted(unknown))}")
    started = time.perf_counter()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="peftfix-bench-") as temp:
        root = Path(temp)
        # Every `peftfix keys` run of this process and its children (cache on by default) uses a fresh cache.
        os.environ["PEFTFIX_CACHE_DIR"] = str(root / "base-index-cache")
        if only & KEYS_WORKLOADS:
            t = time.perf_counter()
            ckpt = build_checkpoints(root, sizes)
            tensors = sum(
                len(json.loads(p.read_bytes()[8 : 8 + header_len(p)])) - 1 for p in ckpt["base"].glob("*.safetensors")
            )
            print(
                f"generated base ({tensors:,} tensors in {len(list(ckpt['base'].glob('*.safetensors')))} shards, "
                f"{sizes['layers']} layers) + {len(ckpt['fleet'])}-adapter fleet in {time.perf_counter() - t:.1f} s; "
                f"safetensors opens {check_with_safetensors(ckpt)}",
                flush=True,
            )
        reference_runs = runs if args.runs else sizes["reference_fleet_runs"]
        steps = [
            ("keys-deepseek", lambda: bench_keys_deepseek(ckpt, runs)),
            ("keys-fleet", lambda: bench_keys_fleet(ckpt, runs, reference_runs)),
            ("keys-remote", lambda: bench_keys_remote(root, ckpt, runs, reference_runs)),
            ("keys-ray", lambda: bench_keys_ray(root, ckpt, runs)),
            ("header-parse", lambda: bench_header_parse(ckpt, runs)),
            ("source-tree", lambda: bench_source_tree(root, sizes["files"], runs)),
            ("source-corpus", lambda: bench_source_corpus(root, sizes["copies"], runs)),
            ("verify-cpu", lambda: bench_verify(root, runs)),
        ]
        for name, step in steps:
            if name in only:
                t = time.perf_counter()
                rows += step()
                print(f"{name}: done in {time.perf_counter() - t:.1f} s", flush=True)
    meta = {
        "mode": "quick" if args.quick else "full",
        "runs": runs,
        "sizes": sizes,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} CPUs, {platform.system()}",
        "python": platform.python_version(),
        "total_s": time.perf_counter() - started,
    }
    print_table(rows, f"peftfix benchmarks ({meta['mode']}, median of {runs})")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    (args.out / "latest.md").write_text(markdown(rows, meta))
    print(f"wrote {args.out / 'latest.json'} and {args.out / 'latest.md'} ({meta['total_s']:.0f} s in all)")


if __name__ == "__main__":
    main()
