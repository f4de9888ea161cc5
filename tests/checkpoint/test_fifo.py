"""Named pipes where files belong: `peftfix keys` and `check_adapter` refuse them at once (PK000 naming the path)
instead of blocking forever on the open."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.usefixtures("native"),
    pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX"),
]


def keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", *args, "--format", "json"], capture_output=True, text=True, timeout=60
    )


def pk000_about(result: subprocess.CompletedProcess, name: str) -> str:
    findings = json.loads(result.stdout)
    assert [item["code"] for item in findings] == ["PK000"], result.stdout
    message = findings[0]["message"]
    assert name in message and "named pipe" in message, message
    return message


def test_fifo_as_base_file(checkpoints, tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    pk000_about(keys(str(checkpoints.adapters["llama-qv"]), "--base", str(fifo)), "model.safetensors")


def test_fifo_as_base_index_and_through_a_symlink(checkpoints, tmp_path):
    base = tmp_path / "base"
    shutil.copytree(checkpoints.bases["llama"], base)
    index = base / "model.safetensors.index.json"
    if (base / "model.safetensors").exists():
        (base / "model.safetensors").unlink()
    if index.exists():
        index.unlink()
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    index.symlink_to(pipe)
    pk000_about(keys(str(checkpoints.adapters["llama-qv"]), "--base", str(base)), "model.safetensors.index.json")


def test_fifo_as_adapter_weights(checkpoints, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.unlink()
    os.mkfifo(weights)
    pk000_about(keys(str(adapter), "--base", str(checkpoints.bases["llama"])), "adapter_model.safetensors")


def test_fifo_adapter_through_the_api(checkpoints, tmp_path):
    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (adapter / name).unlink()
        os.mkfifo(adapter / name)
    script = (
        "import sys\n"
        "from peftfix.checkpoint import check_adapter\n"
        "report = check_adapter(sys.argv[1], sys.argv[2])\n"
        "print([(f.code, f.message) for f in report.findings])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(adapter), str(checkpoints.bases["llama"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "PK000" in result.stdout and "named pipe" in result.stdout, result.stdout
