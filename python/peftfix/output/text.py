"""Human-readable output, one line per finding, like Ruff's concise format:

    train.py:12:9: PF201 [*] message

`[*]` marks a finding whose fix `--apply` would make with the current settings. Checkpoint and runtime findings
(no location) are followed by the figures that explain them (the first few modules, the two shapes, the
display-only fix). A summary follows. Colour only when asked for (the CLI asks when stdout is a terminal).
"""

from __future__ import annotations

from typing import Optional

import click

from peftfix.diagnostics import FIRST_FEW, Diagnostic, Finding, Report
from peftfix.output.common import location_label, pluralize


def _style(text: str, color: bool, fg: Optional[str] = None, bold: Optional[bool] = None) -> str:
    return click.style(text, fg=fg, bold=bold) if color else text


def format_finding(finding: Finding, color: bool = False) -> str:
    diagnostic = finding.diagnostic
    label = location_label(diagnostic)
    code = _style(diagnostic.code, color, fg="red", bold=True)
    marker = " " + _style("[*]", color, fg="cyan") if finding.fix_applicable else ""
    return f"{_style(label, color, bold=True)}: {code}{marker} {diagnostic.message}"


def detail_lines(diagnostic: Diagnostic) -> list[str]:
    """What a location-less finding's details add to its message, one line each."""
    details = diagnostic.details
    lines = []
    modules = details.get("modules")
    if isinstance(modules, list) and modules:
        shown = ", ".join(str(module) for module in modules[:FIRST_FEW])
        more = f" (+{len(modules) - FIRST_FEW} more)" if len(modules) > FIRST_FEW else ""
        lines.append(f"modules: {shown}{more}")
    if "adapter_shape" in details and "base_shape" in details:
        lines.append(f"{details.get('module', '')}: adapter {details['adapter_shape']} vs base {details['base_shape']}")
    fix = diagnostic.fix
    if fix is not None and fix.message and fix.message not in diagnostic.message:
        lines.append(f"fix: {fix.message}")
    return lines


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
    lines = []
    for finding in report.findings:
        lines.append(format_finding(finding, color))
        if finding.diagnostic.location is None:
            lines.extend(f"    {line}" for line in detail_lines(finding.diagnostic))
    lines.extend(summary_lines(report))
    return "\n".join(lines) + "\n"
