"""Compare peftfix's vLLM profile with vLLM's own verdicts: every adapter must get the same accept/reject.

python compare.py MANIFEST VLLM_VERDICTS     # exit 1 on any disagreement
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


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
    sys.exit(main(sys.argv[1], sys.argv[2]))
