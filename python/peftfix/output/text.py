"""Human-readable output, like Ruff's. Each finding opens with one line:

    train.py:12:9: PF201 [*] message

`[*]` marks a finding whose fix `--apply` would make with the current settings. The concise format stops there;
the full format (the default of `peftfix check`) adds the source lines with a marker under the span and the fix's
message as help, and with `show_fixes` the fix itself as a diff (``snippet.py``). Checkpoint and runtime findings
(no location) are followed by the figures that explain them (the first few modules, the two shapes, the
display-only fix). A summary follows. Colour only when asked for (the CLI decides: a terminal, NO_COLOR,
FORCE_COLOR).
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

from peftfix.diagnostics import FIRST_FEW, Diagnostic, Finding, Report
from peftfix.output.common import location_label, pluralize, style
from peftfix.output.snippet import snippet_lines
from peftfix.output.snippets import SourceLines

_style = style


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


def fixed_lines(report: Report) -> list[str]:
    """What `--apply` fixed, per file and code (`--show-fixes`), as Ruff enumerates it."""
    if not report.fixed:
        return []
    from peftfix.catalog import code_info

    by_file: dict[str, Counter[str]] = {}
    for diagnostic in report.fixed:
        by_file.setdefault(diagnostic.filename, Counter())[diagnostic.code] += 1
    lines = [f"Fixed {pluralize(len(report.fixed), 'error')}:"]
    for filename, counts in by_file.items():
        lines.append(f"- {filename}:")
        for code, count in sorted(counts.items()):
            info = code_info(code)
            lines.append(f"    {count} × {code} ({info.name if info is not None else code})")
    return lines + [""]


def render(
    report: Report,
    color: bool = False,
    *,
    full: bool = False,
    show_fixes: bool = False,
    sources: Optional[SourceLines] = None,
) -> str:
    """The report as text; ``full``: with source snippets (read through ``sources``), ``show_fixes``: with each
    fix shown as a diff, and what `--apply` fixed enumerated."""
    lines = []
    sources = sources if sources is not None else SourceLines()
    for finding in report.findings:
        lines.append(format_finding(finding, color))
        diagnostic = finding.diagnostic
        if diagnostic.location is None:
            lines.extend(f"    {line}" for line in detail_lines(diagnostic))
        elif full:
            lines.extend(snippet_lines(diagnostic, sources, color, show_fix=show_fixes))
    if show_fixes:
        lines.extend(fixed_lines(report))
    lines.extend(summary_lines(report))
    return "\n".join(lines) + "\n"
