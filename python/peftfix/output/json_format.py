"""`--format json`: one JSON array of diagnostics in Ruff's shape."""

from __future__ import annotations

import json

from peftfix.diagnostics import Report


def render(report: Report) -> str:
    return json.dumps([finding.diagnostic.to_json() for finding in report.findings], indent=2) + "\n"
