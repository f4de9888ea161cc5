"""An index is data from the checkpoint's author: its shard names must stay inside the base directory. A shard
that is a symlink inside it (the HF cache layout) is fine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("native")


def keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", *args, "--format", "json"], capture_output=True, text=True, timeout=60
    )


def sharded_copy(checkpoints, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(checkpoints.bases["llama"], base)
    index = base / "model.safetensors.index.json"
    if not index.exists():
        pytest.skip("the test base is not sharded")
    return base, index


@pytest.mark.parametrize("outside", ["../../../../../../etc/passwd", "/etc/passwd", "sub/../../secret.safetensors"])
def test_shard_outside_the_base_is_pk000(checkpoints, tmp_path, outside):
    base, index = sharded_copy(checkpoints, tmp_path)
    data = json.loads(index.read_text())
    first = next(iter(data["weight_map"]))
    data["weight_map"][first] = outside
    index.write_text(json.dumps(data))
    result = keys(str(checkpoints.adapters["llama-qv"]), "--base", str(base))
    (finding,) = json.loads(result.stdout)
    assert finding["code"] == "PK000"
    assert "outside the base directory" in finding["message"]
    assert "root:" not in result.stdout  # nothing of the outside file is read


def test_symlinked_shards_inside_the_base_are_followed(checkpoints, tmp_path):
    base, index = sharded_copy(checkpoints, tmp_path)
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    for shard in set(json.loads(index.read_text())["weight_map"].values()):
        (base / shard).rename(blobs / shard)
        (base / shard).symlink_to(blobs / shard)
    result = keys(str(checkpoints.adapters["llama-qv"]), "--base", str(base))
    assert result.returncode == 0, result.stdout + result.stderr
