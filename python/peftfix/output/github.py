"""`--format github`: GitHub Actions workflow commands, which the runner turns into annotations on the diff.

    ::error title=peftfix (PF201),file=train.py,line=12,col=9,endLine=12,endColumn=40::PF201 message (see URL)

A workflow command has no property for a link, so the code's documentation page (`about.rule_url`) ends the
message. Escaping follows the Actions toolkit: `%`, CR and LF in the message; additionally `:` and `,` in
properties. A notebook finding is annotated on the notebook with its cell and row in the message (a row of a
cell is not a line of the file).
"""

from __future__ import annotations

from peftfix import about
from peftfix.diagnostics import Diagnostic, Report
from peftfix.output.common import in_notebook_prefix, severity_level

_LEVELS = {"error": "error", "warning": "warning"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _properties(diagnostic: Diagnostic) -> list[tuple[str, str]]:
    properties = [("title", f"peftfix ({diagnostic.code})"), ("file", diagnostic.artifact_path)]
    if diagnostic.location is not None and diagnostic.cell is None:  # a notebook's rows are not the file's lines
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
    where = in_notebook_prefix(diagnostic)
    message = f"{where}{diagnostic.code} {diagnostic.message} (see {about.rule_url(diagnostic.code)})"
    return f"::{level} {properties}::{escape_data(message)}"


def render(report: Report) -> str:
    return "".join(format_diagnostic(finding.diagnostic) + "\n" for finding in report.findings)
