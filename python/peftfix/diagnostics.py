"""The data every depth of peftfix reports: diagnostics, fixes, edits, the report a renderer prints, and the
description of each code.

The shape mirrors Ruff's JSON output: a diagnostic names a code, a message, a file and a 1-based location, and
may carry a fix made of text edits. Source rules, the checkpoint matcher and the runtime verifier all produce
these, so every output format is written once.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Optional

# How many examples a message or a rendered detail lists before it says "(+N more)".
FIRST_FEW = 5


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
    cell: Optional[int] = None  # notebooks: the cell the locations are relative to (a fix may span cells)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "content": self.content,
            "location": self.location.to_json(),
            "end_location": self.end_location.to_json(),
        }
        if self.cell is not None:
            data["cell"] = self.cell
        return data


@dataclass(frozen=True)
class Fix:
    applicability: Applicability
    message: str
    edits: tuple[Edit, ...]
    # The fix exists but its edits were not built (building them needs a full syntax tree of the file, which
    # only applying or showing a fix pays for).
    deferred: bool = False

    @property
    def available(self) -> bool:
        return bool(self.edits) or self.deferred

    def is_applicable(self, unsafe_fixes: bool) -> bool:
        if not self.available:
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
    # The file a finding without a location is about (an adapter's weights or config), for the formats that must
    # point at a file (SARIF, GitHub annotations); `filename` stays what the user named. Not part of the JSON.
    artifact: Optional[str] = None
    # Notebooks: the cell (1-based among all cells, as Jupyter and Ruff number them) that ``location`` and the
    # fix's edits are relative to; None for every other file.
    cell: Optional[int] = None

    @property
    def artifact_path(self) -> str:
        return self.artifact or self.filename

    def sort_key(self) -> tuple:
        loc = self.location or Location(0, 0)
        return (self.filename, self.cell or 0, loc.row, loc.column, self.code)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "filename": self.filename,
            "severity": self.severity,
            "location": self.location.to_json() if self.location else None,
            "end_location": self.end_location.to_json() if self.end_location else None,
            "fix": self.fix.to_json() if self.fix else None,
            "details": self.details,
        }
        if self.cell is not None:  # as Ruff reports notebooks: the cell, and rows within it
            data["cell"] = self.cell
        return data


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
        """The findings in the JSON output's shape (one dict per diagnostic)."""
        return [finding.to_json() for finding in self.findings]


# --- the report every output format prints ----------------------------------------------------------------------


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
            not self.fix_applicable and fix is not None and fix.applicability is Applicability.UNSAFE and fix.available
        )


@dataclass(frozen=True)
class Report:
    """What one command found, as every output format sees it."""

    findings: tuple[Finding, ...]  # what remains to report, sorted by file and position
    fixed: tuple[Diagnostic, ...] = ()  # diagnostics whose fix was applied (or, with --diff, would be)

    @classmethod
    def build(cls, findings: Iterable[Finding], fixed: Iterable[Diagnostic] = ()) -> Report:
        return cls(
            findings=tuple(sorted(findings, key=lambda finding: finding.diagnostic.sort_key())),
            fixed=tuple(sorted(fixed, key=Diagnostic.sort_key)),
        )

    @classmethod
    def from_diagnostics(cls, diagnostics: Iterable[Diagnostic], unsafe_fixes: bool = False) -> Report:
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


# --- what a code is ---------------------------------------------------------------------------------------------

_SECTION_HEADING = re.compile(r"^##\s+(?P<title>.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class CodeInfo:
    """What users see about one code (`peftfix rules`, `peftfix explain`, SARIF rule metadata).

    ``documentation`` is Markdown in sections (`## What it does`, `## Why is this bad?`, `## Example`,
    `## Fix safety`); source rules keep it in their docstring, checkpoint and runtime checks in their wing's
    ``codes`` module.
    """

    code: str
    name: str
    summary: str
    fix_availability: str  # "safe", "unsafe", "sometimes", "display-only", "none"
    default_enabled: bool
    documentation: str
    command: str = "check"  # the command that reports it: check, keys, verify

    @classmethod
    def documented(
        cls, command: str, code: str, name: str, summary: str, documentation: str, fix_availability: str = "none"
    ) -> CodeInfo:
        """An entry for a code that ``command`` reports; ``documentation`` is Markdown in the sections above."""
        return cls(
            code=code,
            name=name,
            summary=summary,
            fix_availability=fix_availability,
            default_enabled=True,
            documentation=documentation.strip(),
            command=command,
        )

    def section(self, title: str) -> Optional[str]:
        """The body of `## <title>` (case-insensitive), or None."""
        return split_sections(self.documentation).get(title.lower())

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "name": self.name,
            "summary": self.summary,
            "command": self.command,
            "fix_availability": self.fix_availability,
            "default_enabled": self.default_enabled,
        }


def split_sections(documentation: str) -> dict[str, str]:
    """`{"what it does": "...", ...}` from a Markdown text with `## Title` headings."""
    headings = list(_SECTION_HEADING.finditer(documentation))
    sections = {}
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(documentation)
        sections[heading.group("title").lower()] = documentation[heading.end() : end].strip()
    return sections
