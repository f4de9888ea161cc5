"""Time `peftfix` on a tree of copies of the shipped examples (every file uses peft, so every file is parsed).

    python benches/source_tree.py [--copies 1000] [--runs 3]

Prints files/s for the check alone and for `--apply` (on a fresh copy of the tree each run). The tree is built
in a temporary directory; nothing is written elsewhere.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def build_tree(root: Path, copies: int) -> int:
    sources = sorted(EXAMPLES.glob("*.py"))
    count = 0
    for index in range(copies):
        source = sources[index % len(sources)]
        target = root / f"pkg{index // 100:03d}" / f"{source.stem}_{index:05d}.py"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        count += 1
    return count


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if completed.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} failed ({completed.returncode}): {completed.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    peftfix = [sys.executable, "-m", "peftfix"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="peftfix-bench-") as temp:
        pristine = Path(temp) / "pristine"
        files = build_tree(pristine, args.copies)
        check = [timed(peftfix + ["--format", "json", str(pristine)]) for _ in range(args.runs)]
        rows.append(("check", files, statistics.median(check)))
        apply_times = []
        for run in range(args.runs):
            tree = Path(temp) / f"apply{run}"
            shutil.copytree(pristine, tree)
            apply_times.append(timed(peftfix + ["--apply", "--format", "json", str(tree)]))
        rows.append(("--apply", files, statistics.median(apply_times)))
    print(f"{'workload':<10} {'files':>7} {'median s':>10} {'files/s':>9}")
    for name, count, seconds in rows:
        print(f"{name:<10} {count:>7} {seconds:>10.2f} {count / seconds:>9.1f}")


if __name__ == "__main__":
    main()
