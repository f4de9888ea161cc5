"""Human-readable output, one line per finding, like Ruff's concise format:

    train.py:12:9: PF201 [*] message

`[*]` marks a finding whose fix `--apply` would make with the current settings. A summary follows.
Colour only when asked for (the CLI asks when stdout is a terminal).
"""

from __future__ import annotations

import click

from peftfix.output.common import location_label, pluralize
from peftfix.report import Finding, Report


def _style(text: str, color: bool, **style: object) -> str:
    return click.style(text, **style) if color else text  # type: ignore[arg-type]


def format_finding(finding: Finding, color: bool = False) -> str:
    diagnostic = finding.diagnostic
    label = location_label(diagnostic)
    code = _style(diagnostic.code, color, fg="red", bold=True)
    marker = " " + _style("[*]", color, fg="cyan") if finding.fix_applicable else ""
    return f"{_style(label, color, bold=True)}: {code}{marker} {diagnostic.message}"


def summary_lines(report: Report) -> list[str]:
    remaining = len(report.findings)
    fixed = len(report.fixed)
    if remaining == 0 and fixed == 0:
        return ["All checks passed!"]
    lines = []
    if fixed:
        lines.append(f"Found {pluralize(remaining + fixed, 'error')} ({fixed} fixed, {remaining} remaining).")
    else:
        lines.append(f"Found {pluralize(remaining, 'error')}.")
    fixable, hidden = report.fixable_count, report.hidden_unsafe_fix_count
    hidden_note = (
        f"{pluralize(hidden, 'hidden fix', 'hidden fixes')} can be enabled with the `--unsafe-fixes` option"
        if hidden
        else ""
    )
    if fixable:
        suffix = f" ({hidden_note})" if hidden else ""
        lines.append(f"[*] {fixable} fixable with the `--apply` option{suffix}.")
    elif hidden:
        lines.append(f"No fixes available ({hidden_note}).")
    return lines


def render(report: Report, color: bool = False) -> str:
    lines = [format_finding(finding, color) for finding in report.findings]
    lines.extend(summary_lines(report))
    return "\n".join(lines) + "\n"
