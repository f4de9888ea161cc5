"""`peftfix verify ADAPTER [--base BASE]`: load the adapter for real and prove it changes the model (PV001-PV004).

torch, transformers and peft (the ``verify`` extra) are imported only when the command runs; without them it
says how to install them and exits 2. Exit codes: 0 clean, 1 findings, 2 when loading failed (PV004), a
checkpoint could not be read (PK000) or the command was misused (e.g. a hub name as base without --base).
"""

from __future__ import annotations

from typing import Any, Optional

import click

from peftfix.cli.common import UsageProblem, emit, exit_status, format_option
from peftfix.diagnostics import Report


@click.command("verify", short_help="Load an adapter for real and check that it changes the model's output.")
@click.argument("adapter", metavar="ADAPTER")
@click.option("--base", metavar="BASE", help="Local base model directory (default: adapter_config.json's base).")
@click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="auto = CUDA when available, else CPU.",
)
@click.option(
    "--dtype",
    type=click.Choice(["auto", "float32", "bfloat16", "float16"]),
    default="auto",
    show_default=True,
    help="auto = bfloat16 on CUDA, float32 on CPU.",
)
@click.option("--prompt", metavar="TEXT", help="Probe text (needs a tokenizer beside the adapter or the base).")
@click.option("--atol", type=float, default=None, metavar="FLOAT", help="Largest logit delta that counts as none.")
@format_option()
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
    from peftfix.verify.environment import missing_extra_message

    missing = verify.missing_modules()
    if missing:
        raise UsageProblem(missing_extra_message(missing))
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
        raise UsageProblem(str(error)) from error
    emit(Report.from_diagnostics(report.findings), output_format, context=context_lines(report))
    click.get_current_context().exit(exit_status(report.load_failed, bool(report.findings)))


def _figure(value: Any, spec: str = ".4g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else "-"


def context_lines(report: Any) -> list[str]:
    """What was loaded and measured, for the text format."""
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
    return lines
