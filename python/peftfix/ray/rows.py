"""The rows a fleet check returns, one per adapter, and the :class:`~peftfix.checkpoint.Report` each stands for.

A row is flat and has the same columns whatever was found, so a Ray Dataset of them is one Arrow table that can be
filtered, grouped and written to Parquet as it is:

- ``adapter``: the adapter as given; ``base``: the base it was checked against (as given, or as its
  ``adapter_config.json`` names it; empty when that could not be read);
- ``codes``: the codes found, in report order (PK before PS);
- ``details``: JSON text of the whole report: ``findings`` (code, message, details), ``counts``, ``rewrite``, and
  ``notes`` (what could not be checked, such as a serving check of a remote adapter);
- ``error``: None, or the PK000 message when the adapter or its base could not be read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from peftfix.checkpoint.report import COUNT_KEYS, Report, adapter_file
from peftfix.diagnostics import Diagnostic

ROW_FIELDS = ("adapter", "base", "codes", "details", "error")


def row_of(report: Report, adapter: str, base: str, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The row of ``report``, named by ``adapter`` and ``base`` as the user gave them."""
    unreadable = [finding.message for finding in report.findings if finding.code == "PK000"]
    details = {
        "findings": [
            {"code": finding.code, "message": finding.message, "details": finding.details}
            for finding in report.findings
        ],
        "counts": report.counts,
        "rewrite": report.rewrite,
        "notes": list(notes),
    }
    return {
        "adapter": adapter,
        "base": base,
        "codes": report.codes,
        "details": json.dumps(details, sort_keys=True),
        "error": unreadable[0] if unreadable else None,
    }


def report_of(row: Mapping[str, Any]) -> Report:
    """The :class:`~peftfix.checkpoint.Report` a row stands for, as ``BaseIndex.check_many`` returns it: checkpoint
    findings point at the adapter's weights (or config) when it is a local directory here."""
    adapter = str(row["adapter"])
    data = json.loads(row["details"])
    counts = dict.fromkeys(COUNT_KEYS, 0)
    counts.update(data.get("counts") or {})
    artifact = adapter_file(adapter)
    return Report(
        adapter=adapter,
        base=str(row["base"]),
        findings=[
            Diagnostic(
                code=item["code"],
                message=item["message"],
                filename=adapter,
                details=item["details"],
                # The serving checks name the adapter itself; the checkpoint ones its file.
                artifact=artifact if item["code"].startswith("PK") else None,
            )
            for item in data["findings"]
        ],
        counts=counts,
        rewrite=data.get("rewrite"),
    )


def notes_of(row: Mapping[str, Any]) -> list[str]:
    """What could not be checked for this adapter (said, not found)."""
    return list(json.loads(row["details"]).get("notes") or ())


def row_schema() -> Any:
    """The Arrow schema of the rows (pyarrow comes with Ray Data)."""
    import pyarrow as pa

    types = {"codes": pa.list_(pa.string())}  # the others are text
    return pa.schema([(name, types.get(name, pa.string())) for name in ROW_FIELDS])


def table_of(rows: Sequence[Mapping[str, Any]]) -> Any:
    """The rows as one Arrow table of :func:`row_schema`."""
    import pyarrow as pa

    return pa.Table.from_pylist(list(rows), schema=row_schema())
