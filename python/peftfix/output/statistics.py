"""`--statistics`: how many findings of each code, instead of the findings, as Ruff counts them.

    3	PF201	[*] stray-get-peft-model
    1	PF302	    excessive-rank

`[*]`: every finding of that code would be fixed by `--apply` with the current settings. In JSON, one object
per code: ``{"code", "name", "count", "fixable"}``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from peftfix.diagnostics import Report

FORMATS = ("text", "json")


@dataclass(frozen=True)
class CodeCount:
    code: str
    name: str
    count: int
    fixable: bool

    def to_json(self) -> dict[str, object]:
        return {"code": self.code, "name": self.name, "count": self.count, "fixable": self.fixable}


def count_codes(report: Report) -> list[CodeCount]:
    """One entry per code, the most frequent first."""
    from peftfix.catalog import code_info

    counts: Counter[str] = Counter()
    fixable: Counter[str] = Counter()
    for finding in report.findings:
        counts[finding.diagnostic.code] += 1
        fixable[finding.diagnostic.code] += finding.fix_applicable
    entries = []
    for code, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        info = code_info(code)
        entries.append(CodeCount(code, info.name if info is not None else code, count, fixable[code] == count))
    return entries


def render(report: Report, output_format: str = "text") -> str:
    entries = count_codes(report)
    if output_format == "json":
        return json.dumps([entry.to_json() for entry in entries], indent=2) + "\n"
    if not entries:
        return ""
    count_width = max(len(str(entry.count)) for entry in entries)
    code_width = max(len(entry.code) for entry in entries)
    any_fixable = any(entry.fixable for entry in entries)
    lines = []
    for entry in entries:
        marker = "[*] " if entry.fixable else ("    " if any_fixable else "")
        lines.append(f"{entry.count:>{count_width}}\t{entry.code:<{code_width}}\t{marker}{entry.name}")
    return "\n".join(lines) + "\n"
