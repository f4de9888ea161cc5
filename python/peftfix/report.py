"""The outcome of one check run, as every output format sees it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from peftfix.diagnostics import Applicability, Diagnostic


@dataclass(frozen=True)
class Finding:
    """A diagnostic that is still reported, and whether its fix would be applied with the current settings."""

    diagnostic: Diagnostic
    fix_applicable: bool

    @property
    def fix_hidden_by_unsafe(self) -> bool:
        """An unsafe fix that `--unsafe-fixes` would enable."""
        fix = self.diagnostic.fix
        return (
            not self.fix_applicable
            and fix is not None
            and fix.applicability is Applicability.UNSAFE
            and bool(fix.edits)
        )


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]  # what remains to report, sorted by file and position
    fixed: tuple[Diagnostic, ...] = ()  # diagnostics whose fix was applied (or, with --diff, would be)

    @classmethod
    def build(cls, findings: Iterable[Finding], fixed: Iterable[Diagnostic] = ()) -> "Report":
        return cls(
            findings=tuple(sorted(findings, key=lambda finding: finding.diagnostic.sort_key())),
            fixed=tuple(sorted(fixed, key=Diagnostic.sort_key)),
        )

    @classmethod
    def from_diagnostics(cls, diagnostics: Iterable[Diagnostic], unsafe_fixes: bool = False) -> "Report":
        """Build a report where one `unsafe_fixes` setting governs every diagnostic."""
        return cls.build(
            Finding(diagnostic, diagnostic.fix is not None and diagnostic.fix.is_applicable(unsafe_fixes))
            for diagnostic in diagnostics
        )

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [finding.diagnostic for finding in self.findings]

    @property
    def fixable_count(self) -> int:
        return sum(finding.fix_applicable for finding in self.findings)

    @property
    def hidden_unsafe_fix_count(self) -> int:
        return sum(finding.fix_hidden_by_unsafe for finding in self.findings)
