"""Pieces shared by the output formats, so each is written once."""

from __future__ import annotations

from typing import Optional

from peftfix.diagnostics import Diagnostic, Location


def position(location: Optional[Location]) -> str:
    """`12:9` for a location, '' for none (checkpoint and runtime findings)."""
    return f"{location.row}:{location.column}" if location is not None else ""


def location_label(diagnostic: Diagnostic) -> str:
    """`path:row:col` (or just `path` when the finding has no location), as compilers and Ruff print it; in a
    notebook `path:cell N:row:col`, the row counted within the cell."""
    where = position(diagnostic.location)
    if where and diagnostic.cell is not None:
        where = f"cell {diagnostic.cell}:{where}"
    return f"{diagnostic.filename}:{where}" if where else diagnostic.filename


def in_notebook_prefix(diagnostic: Diagnostic) -> str:
    """`cell 4:3:1: ` for a notebook finding, '' otherwise: the formats that locate a finding by the lines of the
    file (GitHub annotations, SARIF) cannot point into a cell of a notebook's JSON, so its message says where."""
    if diagnostic.cell is None or diagnostic.location is None:
        return ""
    return f"cell {diagnostic.cell}:{position(diagnostic.location)}: "


def style(text: str, color: bool, fg: Optional[str] = None, bold: Optional[bool] = None) -> str:
    """``text`` in ANSI colour when ``color`` (click's styles), else as it is."""
    if not color or not text:
        return text
    import click

    return click.style(text, fg=fg, bold=bold)


def pluralize(count: int, singular: str, plural: Optional[str] = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def severity_level(diagnostic: Diagnostic, levels: dict[str, str], default: str) -> str:
    """Map our severity ("error", "warning", ...) onto a format's own level names."""
    return levels.get(diagnostic.severity, default)
