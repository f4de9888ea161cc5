"""Remote reads that go wrong, and what a remote check costs in bytes.

Servers that answer 404 or 403, drop the connection mid-header, send less than they promise, ignore ``Range``,
answer too slowly, or fail once then recover: each is PK000 naming the URL and the reason (or, for the last two
kinds, a correct report), and nothing hangs. A base with hundreds of MB of tensors behind the HTTP server is checked
with its header bytes, the bytes of the tensors the zero check reads, and a small slack.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from peftfix.checkpoint import BaseIndex, check_adapter
from remote.servers import RangeServer

# The native reader's first request for a safetensors file (rust/storage/remote.rs PREFIX): header and all, usually.
PREFIX = 64 * 1024
HIDDEN = 1024
RANK = 16
LAYERS = 4


def _write_sparse_safetensors(path: Path, tensors: dict[str, list[int]]) -> int:
    """A real safetensors file of F32 tensors whose data is a hole (zeros, no disk blocks); returns 8 + N."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        size = int(np.prod(shape)) * 4
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with path.open("wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        out.truncate(8 + len(text) + offset)
    return 8 + len(text)


def _large_base(root: Path) -> tuple[Path, int]:
    """A sharded Llama-shaped base of about 400 MB (an embedding and lm_head of 64k x 1024 and 4 layers): its
    directory and the header bytes of its shards."""
    base = root / "base"
    base.mkdir()
    vocab = 64 * 1024
    shards: dict[str, dict[str, list[int]]] = {
        "model-00001-of-00002.safetensors": {"model.embed_tokens.weight": [vocab, HIDDEN]},
        "model-00002-of-00002.safetensors": {"lm_head.weight": [vocab, HIDDEN], "model.norm.weight": [HIDDEN]},
    }
    for layer in range(LAYERS):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            shards["model-00001-of-00002.safetensors"][f"model.layers.{layer}.self_attn.{proj}.weight"] = [
                HIDDEN,
                HIDDEN,
            ]
    weight_map = {name: shard for shard, tensors in shards.items() for name in tensors}
    header_bytes = sum(_write_sparse_safetensors(base / shard, tensors) for shard, tensors in shards.items())
    (base / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return base, header_bytes


def _adapter(root: Path, trained: bool) -> Path:
    """A LoRA adapter on q_proj/v_proj of every layer, A before B in the file (as PEFT saves), B non-zero when
    ``trained``: each B is 16 KB, so the zero check must ask for B bytes beyond the first request."""
    adapter = root / ("adapter" if trained else "untrained")
    adapter.mkdir()
    rng = np.random.default_rng(0)
    tensors = {}
    for layer in range(LAYERS):
        for proj in ("q_proj", "v_proj"):
            key = f"base_model.model.model.layers.{layer}.self_attn.{proj}"
            tensors[f"{key}.lora_A.weight"] = rng.standard_normal((RANK, HIDDEN)).astype(np.float32)
            b = rng.standard_normal((HIDDEN, RANK)).astype(np.float32) if trained else np.zeros((HIDDEN, RANK))
            tensors[f"{key}.lora_B.weight"] = b.astype(np.float32)
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "r": RANK, "lora_alpha": 32, "target_modules": ["q_proj", "v_proj"]}
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return adapter


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    root = tmp_path_factory.mktemp("large")
    base, header_bytes = _large_base(root)
    trained, untrained = _adapter(root, True), _adapter(root, False)
    return root, base, header_bytes, trained, untrained


def _served_files(server: RangeServer) -> set[str]:
    return {path for method, path, _, status in server.requests if method == "GET" and status in (200, 206)}


def test_a_remote_check_reads_headers_and_the_zero_check_bytes_only(large):
    root, base, header_bytes, trained, _ = large
    total = sum(path.stat().st_size for path in root.rglob("*") if path.is_file())
    assert total > 400_000_000
    adapter_file = trained / "adapter_model.safetensors"
    first_b = RANK * HIDDEN * 4
    with RangeServer(root) as server:
        report = check_adapter(f"{server.url}/adapter", f"{server.url}/base", cache=False)
        served = server.bytes_sent
    assert report.codes == [], report.findings
    assert report.counts["base_shards"] == 2
    # Per safetensors file: its header, within one first request of at most PREFIX bytes (the slack). The index
    # and config whole. The zero check: one B tensor, the first one, since it is non-zero.
    files = 3
    small_files = (base / "model.safetensors.index.json").stat().st_size + (
        trained / "adapter_config.json"
    ).stat().st_size
    adapter_header = struct.unpack("<Q", adapter_file.read_bytes()[:8])[0] + 8
    limit = header_bytes + adapter_header + first_b + small_files + files * PREFIX
    assert served <= limit, (served, limit)
    assert served < total / 1000


def test_an_untrained_remote_adapter_is_pk004_reading_only_its_b_tensors(large):
    root, _, _, _, untrained = large
    adapter_file = untrained / "adapter_model.safetensors"
    with RangeServer(root) as server:
        report = check_adapter(f"{server.url}/untrained", f"{server.url}/base", cache=False)
        ranges = [
            rng for method, path, rng, _ in server.requests if path.endswith("/untrained/adapter_model.safetensors")
        ]
    assert report.codes == ["PK004"]
    all_b = 2 * LAYERS * RANK * HIDDEN * 4
    # Every B tensor is read (they are all zero), no A tensor beyond the first request.
    requested = 0
    for rng in ranges:
        start, end = rng.removeprefix("bytes=").split("-")
        requested += int(end) - int(start) + 1
    assert requested <= PREFIX + all_b, (requested, ranges)
    assert adapter_file.stat().st_size > PREFIX + all_b


def test_an_untrained_adapter_with_thousands_of_b_tensors_is_pk004_in_few_requests(tmp_path, monkeypatch):
    """Regression: the zero check sent one request per lora_B tensor, thousands in flight at once (a per-expert
    adapter has tens of thousands), and timed out. Neighbouring B tensors are now read in shared requests, a few in
    flight at a time."""
    monkeypatch.setenv("PEFTFIX_TIMEOUT", "30")
    adapter = tmp_path / "experts"
    adapter.mkdir()
    tensors = {}
    for expert in range(3000):
        key = f"base_model.model.model.layers.0.mlp.experts.{expert}.down_proj"
        tensors[f"{key}.lora_A.weight"] = np.ones((2, 8), np.float32)
        tensors[f"{key}.lora_B.weight"] = np.zeros((8, 2), np.float32)
    save_file(tensors, str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    base = tmp_path / "base"
    base.mkdir()
    save_file(
        {f"model.layers.0.mlp.experts.{e}.down_proj.weight": np.zeros((8, 8), np.float32) for e in range(3000)},
        str(base / "model.safetensors"),
    )
    local = check_adapter(adapter, base, cache=False)
    assert local.codes == ["PK004"]
    with RangeServer(tmp_path) as server:
        started = time.monotonic()
        report = check_adapter(f"{server.url}/experts", f"{server.url}/base", cache=False)
        elapsed = time.monotonic() - started
        adapter_gets = [
            r for r in server.requests if r[0] == "GET" and r[1].endswith("/experts/adapter_model.safetensors")
        ]
    assert report.codes == ["PK004"], report.findings
    assert elapsed < 10
    assert len(adapter_gets) < 50, len(adapter_gets)


def _pk000(report) -> dict:
    assert report.codes == ["PK000"], report.findings
    return report.findings[0].details


SHARD = "base/model-00001-of-00002.safetensors"


@pytest.mark.parametrize(
    ("mode", "base", "reason"),
    [
        ("404", "base", "not found"),
        ("403", "base", "403"),
        ("drop", "base", "connection closed"),
        ("drop", SHARD, "connection closed"),
        # A shorter 206 than its Content-Range; a 200 whose Content-Length lies shows as an invalid index.
        ("truncate", SHARD, "ended early"),
        ("truncate", "base", "index"),
    ],
)
def test_a_failing_server_is_pk000_naming_the_url_and_the_reason(large, mode, base, reason, monkeypatch):
    root = large[0]
    monkeypatch.setenv("PEFTFIX_TIMEOUT", "20")
    with RangeServer(root, mode=mode) as server:
        url = server.url
        started = time.monotonic()
        report = check_adapter(f"{url}/adapter", f"{url}/{base}", cache=False)
        elapsed = time.monotonic() - started
    details = _pk000(report)
    assert details["path"].startswith(f"{url}/{base}"), details
    assert reason in details["reason"].lower(), details
    assert elapsed < 15


def test_a_failing_adapter_server_names_the_adapter_file(large, monkeypatch):
    root, base = large[0], large[1]
    with RangeServer(root, mode="403") as server:
        url = server.url
        report = check_adapter(f"{url}/adapter", base, cache=False)
    details = _pk000(report)
    assert details["path"] == f"{url}/adapter/adapter_model.safetensors"
    assert "403" in details["reason"]


def test_a_server_that_ignores_range_is_read_only_up_to_the_headers(large):
    root, base, _, trained, _ = large
    local = check_adapter(trained, base, cache=False)
    with RangeServer(root, mode="ignore-range") as server:
        report = check_adapter(f"{server.url}/adapter", f"{server.url}/base", cache=False)
        served = server.bytes_sent
    assert report.codes == local.codes == []
    assert report.counts == local.counts
    # Whole-body answers are dropped once the header is in: what was sent beyond that is what the socket
    # buffers took in flight, not the 400 MB of the files.
    assert served < 64 * 1024 * 1024, served


def test_a_slow_server_times_out_with_pk000(large, monkeypatch):
    root = large[0]
    monkeypatch.setenv("PEFTFIX_TIMEOUT", "1.5")
    with RangeServer(root, mode="slow", delay=30) as server:
        url = server.url
        started = time.monotonic()
        report = check_adapter(f"{server.url}/adapter", f"{server.url}/base", cache=False)
        elapsed = time.monotonic() - started
    details = _pk000(report)
    assert "timed out" in details["reason"] or "timeout" in details["reason"].lower(), details
    assert details["path"].startswith(url)
    assert elapsed < 10


def test_a_flaky_server_is_retried(large):
    root = large[0]
    with RangeServer(root, mode="flaky") as server:
        report = check_adapter(f"{server.url}/adapter", f"{server.url}/base", cache=False)
        statuses = [status for _, _, _, status in server.requests]
    assert report.codes == []
    assert 503 in statuses


def test_an_unreachable_host_is_pk000(monkeypatch):
    from remote.servers import free_port

    monkeypatch.setenv("PEFTFIX_TIMEOUT", "10")
    url = f"http://127.0.0.1:{free_port()}"
    report = check_adapter(f"{url}/adapter", f"{url}/base", cache=False)
    details = _pk000(report)
    assert details["path"].startswith(url)
    assert "refused" in details["reason"].lower(), details


def test_a_remote_base_index_fails_once_for_every_adapter(large):
    root, _, _, trained, _ = large
    with RangeServer(root, mode="404") as server:
        index = BaseIndex(f"{server.url}/base", cache=False)
    assert index.error is not None
    reports = index.check_many([trained, trained])
    assert [r.codes for r in reports] == [["PK000"], ["PK000"]]
