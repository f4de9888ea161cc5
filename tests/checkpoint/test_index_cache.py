"""The base-index cache: a second run against an unchanged base reads none of its shard headers.

Keyed by the identity of the base's files (local: path, size, mtime; remote: URL, size, ETag), so a changed shard
is read again; ``--no-cache`` / ``cache=False`` skip it; a local single-file base is never cached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from peftfix.checkpoint import BaseIndex, check_adapter
from remote.servers import RangeServer

from .ckpt_cases import CASES_BY_NAME


def _scramble_keeping_size_and_mtime(path: Path) -> None:
    """Overwrite every byte of ``path`` (an unreadable header now) with its size and mtime unchanged."""
    stat = path.stat()
    path.write_bytes(b"\xff" * stat.st_size)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _copy_base(checkpoints, tmp_path: Path, name: str = "llama") -> Path:
    import shutil

    return Path(shutil.copytree(checkpoints.bases[name], tmp_path / "base"))


def test_a_second_index_of_a_local_sharded_base_reads_no_shard(checkpoints, tmp_path):
    base = _copy_base(checkpoints, tmp_path)
    cache = tmp_path / "cache"
    first = BaseIndex(base, cache=cache)
    assert first.error is None and not first.from_cache and first.shard_count == 3
    # The shards are now garbage of the same size and mtime: only a read would notice.
    for shard in base.glob("model-*.safetensors"):
        _scramble_keeping_size_and_mtime(shard)
    second = BaseIndex(base, cache=cache)
    assert second.error is None and second.from_cache
    assert (second.tensor_count, second.header_bytes) == (first.tensor_count, first.header_bytes)
    adapter = checkpoints.adapter_path(CASES_BY_NAME["orig-mod"])
    assert [f.code for f in second.check(adapter).findings] == ["PK001"]
    # Without the cache, the shards are read: PK000 for the scrambled one.
    assert BaseIndex(base, cache=False).error is not None


def test_a_changed_shard_is_read_again(checkpoints, tmp_path):
    base = _copy_base(checkpoints, tmp_path)
    cache = tmp_path / "cache"
    BaseIndex(base, cache=cache)
    shard = next(base.glob("model-*.safetensors"))
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    again = BaseIndex(base, cache=cache)
    assert again.error is None and not again.from_cache
    assert BaseIndex(base, cache=cache).from_cache


def test_a_local_single_file_base_is_not_cached(checkpoints, tmp_path):
    cache = tmp_path / "cache"
    base = checkpoints.bases["llama-single"]
    BaseIndex(base, cache=cache)
    assert not BaseIndex(base, cache=cache).from_cache
    assert not cache.exists() or not any(cache.iterdir())


def test_a_remote_base_is_not_fetched_again(checkpoints, tmp_path):
    """Second index of a base behind HTTP: HEAD requests (the identity) and no GET of any shard."""
    cache = tmp_path / "cache"
    case = CASES_BY_NAME["llama-qv"]
    root = Path(checkpoints.root)
    base_rel = Path(checkpoints.base_path(case)).relative_to(root).as_posix()
    with RangeServer(root) as server:
        first = BaseIndex(f"{server.url}/{base_rel}", cache=cache)
        assert first.error is None and not first.from_cache
        server.reset()
        second = BaseIndex(f"{server.url}/{base_rel}", cache=cache)
        requests = list(server.requests)
    assert second.from_cache and second.shard_count == 3
    # (A GET of model.safetensors answered 404 is the look for a single-file base, no shard read.)
    shard_gets = [r for r in requests if r[0] == "GET" and r[1].endswith(".safetensors") and r[3] != 404]
    assert shard_gets == [], requests
    assert any(r[0] == "HEAD" and r[1].endswith(".safetensors") for r in requests)


def test_check_adapter_uses_the_cache_too(checkpoints, tmp_path):
    case = CASES_BY_NAME["llama-qv"]
    base = _copy_base(checkpoints, tmp_path)
    cache = tmp_path / "cache"
    adapter = checkpoints.adapter_path(case)
    assert check_adapter(adapter, base, cache=cache).codes == []
    for shard in base.glob("model-*.safetensors"):
        _scramble_keeping_size_and_mtime(shard)
    assert check_adapter(adapter, base, cache=cache).codes == []
    assert check_adapter(adapter, base, cache=False).codes == ["PK000"]


def test_cli_second_run_says_the_headers_came_from_the_cache_and_no_cache_reads_them(checkpoints, tmp_path):
    base = _copy_base(checkpoints, tmp_path)
    adapter = checkpoints.adapter_path(CASES_BY_NAME["llama-qv"])
    env = {**os.environ, "PEFTFIX_CACHE_DIR": str(tmp_path / "cli-cache")}

    def keys(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "peftfix", "keys", adapter, "--base", str(base), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )

    first = keys()
    assert first.returncode == 0 and "from the index cache" not in first.stdout, first.stdout + first.stderr
    second = keys()
    assert second.returncode == 0 and "from the index cache" in second.stdout, second.stdout
    uncached = keys("--no-cache")
    assert "from the index cache" not in uncached.stdout
    assert json.loads(keys("--format", "json").stdout) == []
