"""Progress on a terminal: `peftfix keys` shows what it fetches and a bar for fleets on stderr when stderr is a
terminal, and never anything but the report on stdout (JSON stays parseable)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

from remote.servers import RangeServer

from .ckpt_cases import CASES_BY_NAME


def _run_with_stderr_on_a_terminal(args: list[str]) -> tuple[int, str, str]:
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "TERM": "xterm"}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "peftfix", "keys", *args], stdout=subprocess.PIPE, stderr=follower, env=env
    )
    os.close(follower)
    stdout, _ = process.communicate(timeout=120)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return process.returncode, stdout.decode(), b"".join(chunks).decode(errors="replace")


def test_fleet_progress_goes_to_the_terminal_and_json_stays_clean(checkpoints):
    root = Path(checkpoints.root)
    case = CASES_BY_NAME["llama-qv"]
    adapter = Path(checkpoints.adapter_path(case)).relative_to(root).as_posix()
    base = Path(checkpoints.base_path(case)).relative_to(root).as_posix()
    with RangeServer(root) as server:
        adapters = [f"{server.url}/{adapter}"] * 6
        code, stdout, terminal = _run_with_stderr_on_a_terminal(
            [*adapters, "--base", f"{server.url}/{base}", "--format", "json", "--no-cache"]
        )
    assert code == 0, terminal
    assert json.loads(stdout) == []
    assert "checking against" in terminal or "reading the headers" in terminal, terminal


def test_no_progress_when_stderr_is_not_a_terminal(checkpoints):
    case = CASES_BY_NAME["llama-qv"]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    result = subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", *[adapter] * 6, "--base", base, "--format", "json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert json.loads(result.stdout) == []
    assert result.stderr == ""
