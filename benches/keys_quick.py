"""Quick timing of `peftfix keys` against the plain-Python reference on a DeepSeek-V3-shaped pair.

    python benches/keys_quick.py [--runs 3]

Builds the base (~90k tensors in 163 shards) and a per-expert LoRA adapter (~89k keys) plus one with a planted
`_orig_mod.` prefix in a temporary directory, checks that both implementations report the same findings, then
prints end-to-end seconds (a fresh process each run, as a pipeline calls it) and keys/s for each.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402

REFERENCE = Path(__file__).resolve().parent / "reference_matcher.py"


def run(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{command[:4]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def codes_of_peftfix(output: str) -> list[tuple[str, str]]:
    return sorted((item["filename"].rstrip("/").split("/")[-1], item["code"]) for item in json.loads(output))


def codes_of_reference(output: str) -> list[tuple[str, str]]:
    reports = [json.loads(line) for line in output.splitlines() if line.strip()]
    return sorted((report["adapter"].rstrip("/").split("/")[-1], f["code"]) for report in reports for f in report["findings"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="peftfix-keys-") as temp:
        root = Path(temp)
        base = workloads.deepseek_v3_base(root / "base")
        clean = workloads.per_expert_lora(root / "clean")
        compiled = workloads.per_expert_lora(root / "orig-mod", key_prefix="base_model.model._orig_mod.")
        adapter_keys = len(json.loads(_header(clean / "adapter_model.safetensors"))) - 1
        rows = []
        for name, adapter in (("clean", clean), ("_orig_mod.", compiled)):
            ours = [sys.executable, "-m", "peftfix", "keys", str(adapter), "--base", str(base), "--format", "json"]
            theirs = [sys.executable, str(REFERENCE), str(adapter), "--base", str(base)]
            our_times, their_times = [], []
            for _ in range(args.runs):
                seconds, out = run(ours)
                our_times.append(seconds)
                seconds, ref = run(theirs)
                their_times.append(seconds)
            assert codes_of_peftfix(out) == codes_of_reference(ref), (out[:500], ref[:500])
            rows.append((name, statistics.median(our_times), statistics.median(their_times), codes_of_peftfix(out)))
    print(f"adapter keys: {adapter_keys}")
    print(f"{'adapter':<12} {'peftfix s':>10} {'keys/s':>12} {'reference s':>12} {'keys/s':>10} {'ratio':>7}  findings")
    for name, ours, theirs, codes in rows:
        print(f"{name:<12} {ours:>10.3f} {adapter_keys / ours:>12,.0f} {theirs:>12.3f} {adapter_keys / theirs:>10,.0f} "
              f"{theirs / ours:>6.1f}x  {[code for _, code in codes]}")


def _header(path: Path) -> bytes:
    with open(path, "rb") as handle:
        length = int.from_bytes(handle.read(8), "little")
        return handle.read(length)


if __name__ == "__main__":
    main()
