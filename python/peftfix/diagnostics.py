"""The data every depth of peftfix reports: diagnostics, fixes and edits.

The shape mirrors Ruff's JSON output (SPEC "JSON output"): a diagnostic names a code, a message, a file and a
1-based location, and may carry a fix made of text edits. Source rules, the checkpoint matcher and the runtime
verifier all produce these, so every output format is written once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Optional


class Applicability(str, enum.Enum):
    """When a fix may be applied (Ruff's terms)."""

    SAFE = "safe"  # applied by --apply
    UNSAFE = "unsafe"  # applied only with --unsafe-fixes
    DISPLAY_ONLY = "display-only"  # shown, never applied


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based row and column (columns count characters, as Ruff does)."""

    row: int
    column: int

    def to_json(self) -> dict[str, int]:
        return {"row": self.row, "column": self.column}


@dataclass(frozen=True)
class Edit:
    """Replace the text between ``start`` and ``end`` (end exclusive) with ``content``.

    ``start_offset``/``end_offset`` index the decoded source text; the engine applies edits by offset, the
    locations are what users and SARIF see.
    """

    start_offset: int
    end_offset: int
    content: str
    location: Location
    end_location: Location

    def to_json(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "location": self.location.to_json(),
            "end_location": self.end_location.to_json(),
        }


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]

    def is_applicable(self, unsafe_fixes: bool) -> bool:
        if not self.edits:
            return False
        if self.applicability is Applicability.SAFE:
            return True
        return unsafe_fixes and self.applicability is Applicability.UNSAFE

    def to_json(self) -> dict[str, Any]:
        return {
            "applicability": self.applicability.value,
            "message": self.message,
            "edits": [edit.to_json() for edit in self.edits],
        }


@dataclass
class Diagnostic:
    code: str
    message: str
    filename: str
    location: Optional[Location] = None
    end_location: Optional[Location] = None
    fix: Optional[Fix] = None
    severity: str = "error"
    details: dict[str, Any] = field(default_factory=dict)

    def sort_key(self) -> tuple:
        loc = self.location or Location(0, 0)
        return (self.filename, loc.row, loc.column, self.code)

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "filename": self.filename,
            "severity": self.severity,
            "location": self.location.to_json() if self.location else None,
            "end_location": self.end_location.to_json() if self.end_location else None,
            "fix": self.fix.to_json() if self.fix else None,
            "details": self.details,
        }


class FindingsMixin:
    """What every report with a ``findings`` list offers (checkpoint and runtime reports)."""

    findings: list[Diagnostic]

    @property
    def codes(self) -> list[str]:
        return [finding.code for finding in self.findings]

    @property
    def ok(self) -> bool:
        """No finding at all."""
        return not self.findings

    def to_json(self) -> list[dict[str, Any]]:
        """The findings in the SPEC's JSON shape (one dict per diagnostic)."""
        return [finding.to_json() for finding in self.findings]
