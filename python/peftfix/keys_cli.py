"""`peftfix keys ADAPTER... --base BASE`: the checkpoint checks (PK000-PK006) from the command line.

The base is indexed once and every adapter is checked against it (in parallel on the native side). A long run
on a terminal shows a progress bar on stderr. Exit codes as everywhere: 0 clean, 1 findings, 2 when a checkpoint
could not be read (PK000) or the command was misused.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import click

from peftfix.checkpoint import LOAD_AS, BaseIndex, Report, write_remapped

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
# Below this many adapters the bar would only flicker.
PROGRESS_MIN_ADAPTERS = 4
FIRST_FEW = 5


@click.command("keys", short_help="Match adapter keys against a base checkpoint (safetensors headers only).")
@click.argument("adapters", nargs=-1, required=True, metavar="ADAPTER...")
@click.option("--base", required=True, metavar="BASE", help="Base checkpoint: directory, .safetensors or index file.")
@click.option(
    "--load-as",
    type=click.Choice(LOAD_AS),
    default="causal-lm",
    show_default=True,
    help="The module tree the adapter is loaded into: AutoModelForCausalLM's or AutoModel's.",
)
@click.option(
    "--write-remapped",
    "remapped_out",
    metavar="OUT",
    help="Write a fixed adapter with the inferred prefix rewrite (one adapter: OUT; several: OUT/<name>).",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def keys_command(
    adapters: Sequence[str], base: str, load_as: str, remapped_out: Optional[str], output_format: str
) -> None:
    index = BaseIndex(base, load_as)
    reports = _check_all(index, adapters)
    written = _write_remapped(reports, remapped_out) if remapped_out else []
    if output_format == "json":
        click.echo(json.dumps([d for report in reports for d in report.to_json()], indent=2))
    else:
        click.echo(render_text(reports, index))
    for line in written:
        click.echo(line, err=True)
    if any(report.unreadable for report in reports):
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if any(report.findings for report in reports) else EXIT_CLEAN)


def _check_all(index: BaseIndex, adapters: Sequence[str]) -> list[Report]:
    if len(adapters) < PROGRESS_MIN_ADAPTERS or not sys.stderr.isatty():
        return index.check_many(adapters)
    from rich.progress import Progress

    reports = []
    with Progress(transient=True) as progress:
        task = progress.add_task(f"checking against {index.base}", total=len(adapters))
        for adapter in adapters:
            reports.append(index.check(adapter))
            progress.advance(task)
    return reports


def _write_remapped(reports: list[Report], out: str) -> list[str]:
    lines = []
    for report in reports:
        if report.rewrite is None:
            lines.append(f"{report.adapter}: no prefix rewrite to apply; nothing written")
            continue
        target = out if len(reports) == 1 else os.path.join(out, Path(report.adapter.rstrip("/")).name)
        count = write_remapped(report.adapter, target, report)
        lines.append(f"{report.adapter}: wrote {target} ({count} keys rewritten)")
    return lines


def render_text(reports: list[Report], index: BaseIndex) -> str:
    lines = []
    if index.error is None:
        lines.append(
            f"base {index.base}: {index.tensor_count} tensors in {index.shard_count} "
            f"shard{'s' if index.shard_count != 1 else ''} ({index.header_bytes:,} header bytes)"
        )
    for report in reports:
        counts = report.counts
        lines.append(
            f"{report.adapter}: {counts['adapter_tensors']} tensors, {counts['adapter_modules']} modules, "
            f"{counts['matched']} matched"
            + (f", {counts['matched_after_rewrite']} after rewrite" if counts["matched_after_rewrite"] else "")
            + (f", {counts['unmatched']} unmatched" if counts["unmatched"] else "")
        )
        for finding in report.findings:
            lines.append(f"  {finding.code} {finding.message}")
            lines.extend(f"      {line}" for line in _detail_lines(finding.details))
    found = sum(len(report.findings) for report in reports)
    lines.append("All checks passed!" if not found else f"Found {found} finding{'s' if found != 1 else ''}.")
    return "\n".join(lines)


def _detail_lines(details: dict) -> list[str]:
    lines = []
    modules = details.get("modules")
    if isinstance(modules, list) and modules:
        shown = ", ".join(str(module) for module in modules[:FIRST_FEW])
        more = f" (+{len(modules) - FIRST_FEW} more)" if len(modules) > FIRST_FEW else ""
        lines.append(f"modules: {shown}{more}")
    if "adapter_shape" in details and "base_shape" in details:
        lines.append(f"{details.get('module', '')}: adapter {details['adapter_shape']} vs base {details['base_shape']}")
    return lines
