"""`peftfix verify ADAPTER [--base BASE]`: load the adapter for real and prove it changes the model (PV001-PV004).

torch, transformers and peft (the ``verify`` extra) are imported only when the command runs; without them it
says how to install them and exits 2. Exit codes: 0 clean, 1 findings, 2 when loading failed (PV004), a
checkpoint could not be read (PK000) or the command was misused (e.g. a hub name as base without --base).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
FIRST_FEW = 5


class VerifyProblem(click.ClickException):
    """The verifier could not start: exit 2 with a one-line message."""

    exit_code = EXIT_ERROR


@click.command("verify", short_help="Load an adapter for real and check that it changes the model's output.")
@click.argument("adapter", metavar="ADAPTER")
@click.option("--base", metavar="BASE", help="Local base model directory (default: adapter_config.json's base).")
@click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    help="auto = CUDA when available, else CPU.",
)
@click.option(
    "--dtype", type=click.Choice(["auto", "float32", "bfloat16", "float16"]), default="auto", show_default=True,
    help="auto = bfloat16 on CUDA, float32 on CPU.",
)
@click.option("--prompt", metavar="TEXT", help="Probe text (needs a tokenizer beside the adapter or the base).")
@click.option("--atol", type=float, default=None, metavar="FLOAT", help="Largest logit delta that counts as none.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(
    adapter: str,
    base: Optional[str],
    device: str,
    dtype: str,
    prompt: Optional[str],
    atol: Optional[float],
    output_format: str,
) -> None:
    """Load ADAPTER on its base with the real torch/transformers/peft and check, on one copy of the weights,
    that enabling the adapter changes the logits (PV001), that no adapter key was dropped (PV002), that every
    LoRA layer is active (PV003) and that loading works at all (PV004)."""
    from peftfix import verify

    missing = verify.missing_modules()
    if missing:
        raise VerifyProblem(
            f"peftfix verify loads the model for real and needs {', '.join(missing)}: {verify.INSTALL_HINT}"
        )
    try:
        report = verify.verify_adapter(
            adapter,
            base=base,
            device=device,
            dtype=dtype,
            prompt=prompt,
            atol=verify.DEFAULT_ATOL if atol is None else atol,
        )
    except verify.VerifyUsageError as error:
        raise VerifyProblem(str(error)) from error
    if output_format == "json":
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(render_text(report))
    if report.load_failed:
        sys.exit(EXIT_ERROR)
    sys.exit(EXIT_FINDINGS if report.findings else EXIT_CLEAN)


def _figure(value: Any, spec: str = ".4g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def render_text(report: Any) -> str:
    details = report.details
    lines = [
        f"{report.adapter} on {report.base} ({details.get('model_class')}"
        + (f", {details['architecture']}" if details.get("architecture") else "")
        + f"): {details.get('device')}, {details.get('dtype')}, {_figure(details.get('seconds'), '.2f')} s"
        + (
            f", peak {details['peak_memory_bytes'] / 2**20:.0f} MiB"
            if isinstance(details.get("peak_memory_bytes"), int)
            else ""
        )
    ]
    if "max_abs_delta" in details:
        lines.append(
            f"  logit delta max {_figure(details['max_abs_delta'])}, mean {_figure(details['mean_abs_delta'])}; "
            f"KL {_figure(details['kl_divergence'])}; top-1 agreement {details['top1_agreement']:.1%} over "
            f"{details['positions']} positions ({details.get('probe')}); {details['lora_layers']} LoRA layers"
        )
    for finding in report.findings:
        lines.append(f"  {finding.code} {finding.message}")
        if finding.fix is not None and finding.fix.message not in finding.message:
            lines.append(f"      fix: {finding.fix.message}")
        modules = finding.details.get("modules")
        if finding.code.startswith("PK") and isinstance(modules, list) and modules:
            lines.append(f"      modules: {', '.join(map(str, modules[:FIRST_FEW]))}")
    found = len(report.findings)
    lines.append("All checks passed!" if not found else f"Found {found} finding{'s' if found != 1 else ''}.")
    return "\n".join(lines)
