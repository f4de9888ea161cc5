"""The output formats of every command (`check`, `keys`, `verify`): one module per format, each with
`render(report) -> str` over the shared :class:`~peftfix.diagnostics.Report`."""

from __future__ import annotations

from collections.abc import Callable

from peftfix.diagnostics import Report

FORMAT_NAMES = ("text", "json", "sarif", "github")


def renderer(format_name: str) -> Callable[..., str]:
    """The `render` function of a format (imported lazily: SARIF needs the catalog, text needs click)."""
    if format_name == "text":
        from peftfix.output import text

        return text.render
    if format_name == "json":
        from peftfix.output import json_format

        return json_format.render
    if format_name == "sarif":
        from peftfix.output import sarif

        return sarif.render
    if format_name == "github":
        from peftfix.output import github

        return github.render
    raise ValueError(f"unknown output format {format_name!r}; expected one of {', '.join(FORMAT_NAMES)}")


__all__ = ["FORMAT_NAMES", "Report", "renderer"]
