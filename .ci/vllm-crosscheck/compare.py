"""Compare peftfix's vLLM profile with vLLM's own verdicts: every adapter must get the same accept/reject. vLLM's
verdicts on the public configs must also equal those recorded in the repository (the test suite checks the
profile against that record where vLLM is not installed); `--record` rewrites the record.

python compare.py MANIFEST VLLM_VERDICTS RECORD [--record]     # exit 1 on any disagreement
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REAL = "real:"


def check_record(theirs: dict, record: Path, rewrite: bool) -> list[str]:
    """Names whose recorded vLLM verdict differs from vLLM's verdict now (none after ``rewrite``)."""
    now = {name[len(REAL) :]: result["verdict"] for name, result in theirs.items() if name.startswith(REAL)}
    if rewrite:
        record.write_text(json.dumps(dict(sorted(now.items())), indent=1) + "\n")
        return []
    recorded = json.loads(record.read_text())
    stale = sorted(name for name in now.keys() | recorded.keys() if now.get(name) != recorded.get(name))
    for name in stale:
        print(f"STALE {name}: recorded {recorded.get(name)}, vLLM now {now.get(name)}")
    return stale


def main(manifest: str, verdicts: str) -> int:
    ours, theirs = json.loads(Path(manifest).read_text()), json.loads(Path(verdicts).read_text())
    wrong = []
    for name, case in sorted(ours.items()):
        got = theirs[name]["verdict"]
        mark = "ok " if got == case["peftfix"] else "BAD"
        print(f"{mark} {name}: peftfix {case['peftfix']} {case['codes']}, vLLM {got} {theirs[name]['message'][:120]}")
        if got != case["peftfix"]:
            wrong.append(name)
    print(f"{len(ours) - len(wrong)} of {len(ours)} adapters agree with vLLM")
    return 1 if wrong else 0


if __name__ == "__main__":
    failed = main(sys.argv[1], sys.argv[2])
    stale = check_record(json.loads(Path(sys.argv[2]).read_text()), Path(sys.argv[3]), "--record" in sys.argv[4:])
    sys.exit(1 if failed or stale else 0)
