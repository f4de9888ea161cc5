"""What the runtime verifier reports, and the errors its entry points raise."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Optional

from peftfix.diagnostics import Applicability, Diagnostic, FindingsMixin, Fix

DEFAULT_ATOL = 1e-6


class VerifyUsageError(ValueError):
    """The verifier cannot start: unknown base, hub name without --base, bad device/dtype, missing extra."""


class AdapterVerificationError(AssertionError):
    """Raised by ``verify_model(..., strict=True)`` when the report has findings; ``.report`` holds it."""

    def __init__(self, report: VerifyReport) -> None:
        self.report = report
        super().__init__(report.summary())


@dataclass
class VerifyReport(FindingsMixin):
    """What the runtime verifier found for one adapter (or one in-memory model)."""

    adapter: str
    base: Optional[str] = None
    findings: list[Diagnostic] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    checkpoint: Any = None  # the peftfix.checkpoint.Report of the key check, when it ran
    artifact: Optional[str] = None  # the adapter file its findings point at (SARIF, GitHub annotations)

    @property
    def load_failed(self) -> bool:
        """Loading raised (PV004) or a checkpoint could not be read (PK000): exit 2 on the command line."""
        return any(code in ("PV004", "PK000") for code in self.codes)

    def summary(self) -> str:
        if not self.findings:
            return f"{self.adapter}: the adapter is live (max |logit delta| {self.details.get('max_abs_delta')})"
        return f"{self.adapter}: " + "; ".join(f"{d.code} {d.message}" for d in self.findings)

    def add(self, code: str, message: str, details: Mapping[str, Any], fix: Optional[str] = None) -> Diagnostic:
        """Record a finding; ``fix`` is the display-only advice, when there is one."""
        diagnostic = Diagnostic(
            code=code,
            message=message,
            filename=self.adapter,
            fix=Fix(Applicability.DISPLAY_ONLY, fix, ()) if fix else None,
            details=dict(details),
            artifact=self.artifact,
        )
        self.findings.append(diagnostic)
        return diagnostic
