"""Fleets checked on a real local Ray cluster (`peftfix.ray.check_fleet`, `peftfix keys --ray`): the same results as
`BaseIndex.check_many` in one process, each base read once, unreadable inputs as PK000 rows, a killed worker retried.

All of it runs on one cluster (`ray.init(num_cpus=2)`), on one pytest worker (the `ray` xdist group). The adapters
are the real PEFT saves of the checkpoint cases, local and behind the HTTP server of the remote tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from peftfix.checkpoint import BaseIndex
from remote.servers import RangeServer

from .ckpt_cases import CASES, CASES_BY_NAME, CORRUPT

ray = pytest.importorskip("ray")
from peftfix.ray import ROW_FIELDS, check_fleet, notes_of, report_of  # noqa: E402  (needs ray)
from peftfix.ray.fleet import plan_fleet  # noqa: E402

pytestmark = pytest.mark.xdist_group("ray")

# Every adapter of the cases read as AutoModelForCausalLM from a llama base directory, and the broken adapters.
LLAMA_CASES = [
    case
    for case in CASES
    if case.base == "llama" and case.base_form == "dir" and case.load_as == "causal-lm" and not case.adapter_file
]
BROKEN = [case.adapter for case in CORRUPT if case.broken == "adapter"]
# The process title of a Ray Data worker while it runs a batch of the fleet.
BATCH_TITLE = b"ray::MapBatches(check_batch)"


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster of this machine with 2 CPUs, for this module; its address for other processes."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=256 * 1024 * 1024)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _summary(report) -> tuple:
    """What a fleet row must carry of a report: every finding with its message and details, counts, rewrite."""
    findings = [(f.code, f.message, json.dumps(f.details, sort_keys=True)) for f in report.findings]
    return (report.adapter, findings, report.counts, report.rewrite)


def _rows(dataset) -> dict[str, Any]:
    rows = dataset.take_all()
    assert len({row["adapter"] for row in rows}) == len(rows)
    return {row["adapter"]: row for row in rows}


def _fleet(checkpoints) -> list[str]:
    return [checkpoints.adapter_path(case) for case in LLAMA_CASES] + [str(checkpoints.adapters[a]) for a in BROKEN]


def test_rows_equal_check_many_in_one_process(cluster, checkpoints):
    adapters = _fleet(checkpoints)
    base = str(checkpoints.bases["llama"])
    expected = BaseIndex(base, cache=False).check_many(adapters)
    rows = _rows(check_fleet(adapters, base, cache=False, batch_size=8))
    assert sorted(rows) == sorted(adapters)
    for report in expected:
        row = rows[report.adapter]
        assert _summary(report_of(row)) == _summary(report)
        assert row["codes"] == report.codes and row["base"] == base
        pk000 = [f.message for f in report.findings if f.code == "PK000"]
        assert row["error"] == (pk000[0] if pk000 else None)
    assert sum(row["error"] is not None for row in rows.values()) == len(BROKEN)


def test_an_empty_fleet_is_an_empty_dataset_with_the_row_columns(cluster, checkpoints):
    dataset = check_fleet([], str(checkpoints.bases["llama"]))
    assert dataset.take_all() == [] and tuple(dataset.schema().names) == ROW_FIELDS


def test_without_a_base_each_adapter_is_checked_against_the_base_it_names(cluster, checkpoints):
    names = ["llama-qv", "orig-mod", "gpt2-c-attn-fan-in-fan-out", "qwen2-qkv-bias", "untrained", "config-missing"]
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in names]
    plan = plan_fleet(adapters, cache=False)
    # One index per base, whatever the number of adapters; the adapter without a config has no base.
    assert sorted(plan.indexes) == sorted(str(checkpoints.bases[b]) for b in ("llama", "gpt2", "qwen2"))
    rows = _rows(check_fleet(adapters, cache=False))
    for name, adapter in zip(names, adapters, strict=True):
        case = CASES_BY_NAME[name]
        if name == "config-missing":
            assert rows[adapter]["codes"] == ["PK000"] and "adapter_config.json" in rows[adapter]["error"]
            continue
        [expected] = BaseIndex(checkpoints.base_path(case), cache=False).check_many([adapter])
        assert _summary(report_of(rows[adapter])) == _summary(expected)
        assert rows[adapter]["base"] == str(checkpoints.bases[case.base])


def test_an_unreadable_base_is_a_pk000_row_for_each_adapter(cluster, checkpoints):
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in ("llama-qv", "orig-mod")]
    rows = _rows(check_fleet(adapters, str(checkpoints.bases["missing-shard"]), cache=False))
    assert [rows[a]["codes"] for a in adapters] == [["PK000"], ["PK000"]]
    assert all("model-00002-of-00003.safetensors" in rows[a]["error"] for a in adapters)


def test_serving_checks_run_on_the_workers(cluster, checkpoints):
    case = CASES_BY_NAME["llama-qv"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    [row] = check_fleet([adapter], base, server="vllm", cache=False).take_all()
    from peftfix.serving import check_serving

    [expected] = BaseIndex(base, cache=False).check_many([adapter])
    expected.findings.extend(check_serving(adapter, base, "vllm"))
    assert _summary(report_of(row)) == _summary(expected) and notes_of(row) == []
    with pytest.raises(ValueError, match="nosuchserver"):
        check_fleet([adapter], base, server="nosuchserver")


def _url(server: RangeServer, root: Path, path: str) -> str:
    return f"{server.url}/{Path(path).relative_to(root).as_posix()}"


def test_a_fleet_behind_http_reads_the_base_once(cluster, checkpoints):
    adapters = [checkpoints.adapter_path(case) for case in LLAMA_CASES]
    base = str(checkpoints.bases["llama"])
    local = {Path(r.adapter).name: _summary(r)[1:] for r in BaseIndex(base, cache=False).check_many(adapters)}
    with RangeServer(checkpoints.root) as server:
        BaseIndex(_url(server, checkpoints.root, base), cache=False)
        one_index = [r.path for r in server.requests]
        server.reset()
        urls = [_url(server, checkpoints.root, adapter) for adapter in adapters]
        rows = _rows(check_fleet(urls, _url(server, checkpoints.root, base), cache=False, batch_size=4))
        base_requests = [r.path for r in server.requests if r.path.startswith("/base-llama/")]
    # Many batches on two workers, and the base's headers were fetched as for one index.
    assert sorted(base_requests) == sorted(one_index)
    for url in urls:
        report = report_of(rows[url])
        findings = [
            (code, message.replace(url, "<adapter>"), details) for code, message, details in _summary(report)[1]
        ]
        name = url.rsplit("/", 1)[1]
        expected = [(c, m.replace(str(checkpoints.root / name), "<adapter>"), d) for c, m, d in local[name][0]]
        assert (findings, report.counts, report.rewrite) == (expected, *local[name][1:])


def _batch_workers() -> list[int]:
    """The pids of the Ray workers running a batch of the fleet now."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                title = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if title.startswith(BATCH_TITLE):
                pids.append(int(entry))
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds Ray's workers through /proc")
def test_a_worker_killed_mid_run_is_retried_and_the_rows_are_the_same(cluster, checkpoints):
    adapters = [checkpoints.adapter_path(case) for case in LLAMA_CASES]
    base = str(checkpoints.bases["llama"])
    expected = {Path(r.adapter).name: _summary(r)[2:] for r in BaseIndex(base, cache=False).check_many(adapters)}
    # Every request takes 0.2 s, so each batch runs long enough to be caught running.
    with RangeServer(checkpoints.root, mode="slow", delay=0.2) as server:
        urls = [_url(server, checkpoints.root, adapter) for adapter in adapters]
        dataset = check_fleet(urls, _url(server, checkpoints.root, base), cache=False, batch_size=4)
        result: dict[str, Any] = {}
        job = threading.Thread(target=lambda: result.setdefault("rows", dataset.take_all()))
        job.start()
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and job.is_alive() and time.monotonic() < deadline:
            running = _batch_workers()
            if running:
                killed = running[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.01)
        job.join(timeout=120)
    assert killed is not None, "no batch was caught running"
    assert not job.is_alive() and "rows" in result
    rows = {row["adapter"]: row for row in result["rows"]}
    assert sorted(rows) == sorted(urls)
    got = {url.rsplit("/", 1)[1]: _summary(report_of(rows[url]))[2:] for url in urls}
    assert got == expected


def _keys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", "--no-cache", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("output_format", ["json", "text"])
def test_keys_ray_prints_what_keys_prints(cluster, checkpoints, tmp_path, output_format):
    adapters = _fleet(checkpoints)[::3]
    listing = tmp_path / "fleet.txt"
    listing.write_text("\n".join(adapters[1:]) + "\n")
    base = str(checkpoints.bases["llama"])
    here = _keys(adapters[0], "--from-file", str(listing), "--base", base, "--format", output_format)
    # `--ray ADDRESS` with the address of the test cluster: a second driver joins it.
    on_ray = _keys(
        "--ray", cluster, adapters[0], "--from-file", str(listing), "--base", base, "--format", output_format
    )
    assert on_ray.returncode == here.returncode == 2, on_ray.stderr
    assert on_ray.stdout == here.stdout
    assert "Traceback" not in on_ray.stderr


def test_keys_ray_without_an_address_joins_ray_address(cluster, checkpoints):
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in ("orig-mod", "untrained", "llama-qv")]
    here = _keys(*adapters, "--format", "json")
    # `--ray` right before an adapter: the adapter is not taken for an address.
    on_ray = _keys("--ray", *adapters, "--format", "json", env={"RAY_ADDRESS": cluster})
    assert on_ray.returncode == here.returncode == 1, on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(here.stdout)


def test_keys_ray_reports_an_adapter_without_a_base_as_pk000(cluster, checkpoints):
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in ("llama-qv", "config-missing")]
    result = _keys("--ray", cluster, *adapters, "--format", "json")
    assert result.returncode == 2, result.stderr
    findings = json.loads(result.stdout)
    assert [(f["filename"], f["code"]) for f in findings] == [(adapters[1], "PK000")]
    assert "no --base given" in findings[0]["message"]


def test_keys_ray_to_an_address_with_no_cluster_is_a_clear_error(cluster, checkpoints):
    adapter = checkpoints.adapter_path(CASES_BY_NAME["llama-qv"])
    result = _keys("--ray", "127.0.0.1:9", adapter)
    assert result.returncode == 2
    assert "cannot join the Ray cluster at 127.0.0.1:9" in result.stderr and "Traceback" not in result.stderr


def test_keys_ray_with_no_address_at_all_still_checks(checkpoints):
    """No ADDRESS and no RAY_ADDRESS: Ray's own choice, the cluster `ray start` runs here or a new one."""
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[name]) for name in ("orig-mod", "llama-qv")]
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    here = _keys(*adapters, "--format", "json")
    on_ray = subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", "--no-cache", "--ray", *adapters, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )
    assert on_ray.returncode == here.returncode == 1, on_ray.stderr
    assert json.loads(on_ray.stdout) == json.loads(here.stdout)
