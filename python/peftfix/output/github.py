"""`--format github`: GitHub Actions workflow commands, which the runner turns into annotations on the diff.

    ::error title=peftfix (PF201),file=train.py,line=12,col=9,endLine=12,endColumn=40::PF201 message

Escaping follows the Actions toolkit: `%`, CR and LF in the message; additionally `:` and `,` in properties.
"""

from __future__ import annotations

from peftfix.diagnostics import Diagnostic, Report
from peftfix.output.common import severity_level

_LEVELS = {"error": "error", "warning": "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _properties(diagnostic: Diagnostic) -> list[tuple[str, str]]:
    properties = [("title", f"peftfix ({diagnostic.code})"), ("file", diagnostic.artifact_path)]
    if diagnostic.location is not None:
        properties += [("line", str(diagnostic.location.row)), ("col", str(diagnostic.location.column))]
        if diagnostic.end_location is not None:
            properties += [
                ("endLine", str(diagnostic.end_location.row)),
                ("endColumn", str(diagnostic.end_location.column)),
            ]
    return properties


def format_diagnostic(diagnostic: Diagnostic) -> str:
    level = severity_level(diagnostic, _LEVELS, default="notice")
    properties = ",".join(f"{name}={escape_property(value)}" for name, value in _properties(diagnostic))
    return f"::{level} {properties}::{escape_data(f'{diagnostic.code} {diagnostic.message}')}"


def render(report: Report) -> str:
    return "".join(format_diagnostic(finding.diagnostic) + "\n" for finding in report.findings)
