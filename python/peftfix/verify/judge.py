"""From the measured figures to findings: PV001 (no output delta, with its cause) and PV003 (inactive layers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from peftfix.diagnostics import FIRST_FEW
from peftfix.verify.report import VerifyReport


def judge(report: VerifyReport, figures: Mapping[str, Any], branches: Mapping[str, float], atol: float) -> None:
    """PV001 / PV003 from the measured figures; explain a zero delta with the attached findings."""
    explained = [d for d in report.findings if d.code.startswith("PK") or d.code == "PV002"]
    if figures["max_abs_delta"] <= atol:
        details: dict[str, Any] = {
            "max_abs_delta": figures["max_abs_delta"],
            "mean_abs_delta": figures["mean_abs_delta"],
            "atol": atol,
            "positions": figures["positions"],
            "explained_by": [d.code for d in explained],
        }
        message = (
            f"the adapter does not change the output: max |logit delta| {figures['max_abs_delta']:.3g} <= atol {atol:g} "
            f"over {figures['positions']} positions"
        )
        fix = None
        rewrite = report.checkpoint.rewrite if report.checkpoint is not None else None
        if rewrite:
            details["rewrite"] = {"strip": rewrite.get("strip", ""), "add": rewrite.get("add", "")}
            fix = (
                f"the adapter keys need the prefix rewrite strip {rewrite.get('strip', '')!r} add "
                f"{rewrite.get('add', '')!r} (PK001): peftfix keys {report.adapter} --base {report.base} "
                "--write-remapped OUT, then load OUT"
            )
            message += "; cause: PK001, the adapter keys do not match the model (PEFT dropped them)"
        elif any(d.code == "PK004" for d in explained):
            message += "; cause: PK004, every lora_B is zero (the adapter was never trained or saved before training)"
        elif any(d.code == "PV002" for d in explained):
            message += "; cause: PV002, the libraries dropped adapter keys while loading"
        elif not figures["lora_layers"]:
            message += "; the model has no LoRA layer"
        elif explained:
            message += f"; see {', '.join(d.code for d in explained)}"
        report.add("PV001", message, details, fix=fix)
    inactive = [name for name, value in branches.items() if value == 0.0]
    if inactive:
        report.add(
            "PV003",
            f"{len(inactive)} of {len(branches)} LoRA layers have a zero branch output on the probe: "
            + ", ".join(inactive[:FIRST_FEW])
            + (f" (+{len(inactive) - FIRST_FEW} more)" if len(inactive) > FIRST_FEW else ""),
            {"count": len(inactive), "total": len(branches), "modules": inactive[: FIRST_FEW * 4]},
        )
