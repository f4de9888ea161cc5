"""`--format sarif`: a SARIF 2.1.0 log (one run), for GitHub code scanning and other SARIF viewers.

Rules carry the catalog's documentation (every code: source, checkpoint and runtime); results carry their region and, where the finding has a fix with
edits, a SARIF `fix` (deleted regions and inserted text). Columns count characters, which SARIF calls
`unicodeCodePoints` (its default would be UTF-16 code units).
"""

from __future__ import annotations

import json
import os
import urllib.parse
from pathlib import Path
from typing import Any, Optional

from peftfix import about
from peftfix.catalog import all_codes
from peftfix.diagnostics import CodeInfo, Diagnostic, Fix, Location, Report
from peftfix.output.common import in_notebook_prefix, severity_level

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
_LEVELS = {"error": "error", "warning": "warning", "note": "note", "info": "note"}


def artifact_uri(filename: str) -> str:
    """A URI for the file: relative paths stay relative (resolved against the checkout by viewers)."""
    if os.path.isabs(filename):
        return Path(filename).as_uri()
    return urllib.parse.quote(filename.replace(os.sep, "/"), safe="/")


def region(start: Location, end: Optional[Location]) -> dict[str, int]:
    result = {"startLine": start.row, "startColumn": start.column}
    if end is not None:
        result.update(endLine=end.row, endColumn=end.column)
    return result


def rule_descriptor(info: CodeInfo) -> dict[str, Any]:
    descriptor: dict[str, Any] = {
        "id": info.code,
        "name": info.name,
        "shortDescription": {"text": info.summary or info.name},
        "fullDescription": {"text": info.section("What it does") or info.summary or info.name},
        "defaultConfiguration": {"enabled": info.default_enabled, "level": "error"},
        "properties": {"fixAvailability": info.fix_availability},
        # GitHub code scanning links the rule's help to this page.
        "helpUri": about.rule_url(info.code),
    }
    if info.documentation:
        descriptor["help"] = {"text": info.documentation, "markdown": info.documentation}
    return descriptor


def _fix(fix: Fix, uri: str) -> Optional[dict[str, Any]]:
    if not fix.edits:
        return None  # SARIF requires at least one replacement
    return {
        "description": {"text": fix.message},
        "artifactChanges": [
            {
                "artifactLocation": {"uri": uri},
                "replacements": [
                    {
                        "deletedRegion": region(edit.location, edit.end_location),
                        "insertedContent": {"text": edit.content},
                    }
                    for edit in fix.edits
                ],
            }
        ],
        "properties": {"applicability": fix.applicability.value},
    }


def result(diagnostic: Diagnostic, rule_index: int) -> dict[str, Any]:
    uri = artifact_uri(diagnostic.artifact_path)
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    # A notebook's rows count within a cell, not the file's lines: no region, the cell and row go in the message
    # and the properties, and no fix (its regions would name lines of the JSON).
    in_notebook = diagnostic.cell is not None
    if diagnostic.location is not None and not in_notebook:
        physical["region"] = region(diagnostic.location, diagnostic.end_location)
    entry: dict[str, Any] = {
        "ruleId": diagnostic.code,
        "ruleIndex": rule_index,
        "level": severity_level(diagnostic, _LEVELS, default="warning"),
        "message": {"text": in_notebook_prefix(diagnostic) + diagnostic.message},
        "locations": [{"physicalLocation": physical}],
    }
    fix = _fix(diagnostic.fix, uri) if diagnostic.fix is not None and not in_notebook else None
    if fix is not None:
        entry["fixes"] = [fix]
    properties = dict(diagnostic.details)
    if in_notebook and diagnostic.location is not None:
        properties.update(cell=diagnostic.cell, row=diagnostic.location.row, column=diagnostic.location.column)
    if properties:
        entry["properties"] = properties
    return entry


def build_log(report: Report, rules: Optional[list[CodeInfo]] = None) -> dict[str, Any]:
    """The SARIF log as a dict. ``rules`` defaults to the catalog; codes outside it get a bare descriptor."""
    descriptors = [rule_descriptor(info) for info in (rules if rules is not None else all_codes())]
    index_of = {descriptor["id"]: index for index, descriptor in enumerate(descriptors)}
    results = []
    for finding in report.findings:
        code = finding.diagnostic.code
        if code not in index_of:  # a code the given rules do not describe
            index_of[code] = len(descriptors)
            descriptors.append({"id": code, "shortDescription": {"text": code}})
        results.append(result(finding.diagnostic, index_of[code]))
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "peftfix",
                        "informationUri": about.homepage(),
                        "version": about.version(),
                        "rules": descriptors,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render(report: Report, rules: Optional[list[CodeInfo]] = None) -> str:
    return json.dumps(build_log(report, rules), indent=2) + "\n"
