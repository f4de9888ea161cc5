"""What every subcommand shares: the exit codes, usage errors and printing a report in the chosen format.

Exit codes, for every command: 0 nothing left to report, 1 findings remain, 2 usage error, unreadable input or
internal error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, Union

import click

from peftfix.diagnostics import Report
from peftfix.output import FORMAT_NAMES, renderer

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

FORMAT_OPTION_HELP = "Output format."

# What a click option decorates: a command function, or a command already built (as in click's own stubs).
FC = TypeVar("FC", bound=Union[Callable[..., Any], click.Command])


class UsageProblem(click.ClickException):
    """A problem with what the user asked for (bad option value, bad config, unknown code): exit 2."""

    exit_code = EXIT_ERROR


def exit_status(has_errors: bool, has_findings: bool, exit_zero: bool = False) -> int:
    if has_errors:
        return EXIT_ERROR  # --exit-zero never hides an error
    if has_findings and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def format_option(default: str = "text") -> Callable[[FC], FC]:
    """``--format text|json|sarif|github``, the same for every command that reports findings (a decorator)."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMAT_NAMES),
        default=default,
        show_default=True,
        help=FORMAT_OPTION_HELP,
    )


def wants_color(err: bool = False) -> bool:
    """Colour on a terminal; `NO_COLOR` (set and not empty) turns it off and, failing that, `FORCE_COLOR` on
    (no-color.org, force-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    stream = sys.stderr if err else sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def render(
    report: Report, output_format: str, err: bool = False, context: Sequence[str] = (), **text_options: Any
) -> str:
    """The report in ``output_format``. ``context`` lines (what was checked, figures) precede the findings in
    the text format only: machine formats carry the same figures in each finding's details. ``text_options``
    go to the text renderer (full format, fixes shown, sources)."""
    render_format = renderer(output_format)
    if output_format != "text":
        return render_format(report)
    lines = "".join(f"{line}\n" for line in context)
    return lines + render_format(report, color=wants_color(err), **text_options)


def emit(
    report: Report, output_format: str, err: bool = False, context: Sequence[str] = (), **text_options: Any
) -> None:
    text = render(report, output_format, err=err, context=context, **text_options)
    # click strips ANSI codes when the stream is not a terminal; FORCE_COLOR asks for them all the same.
    click.echo(text, nl=False, err=err, color=wants_color(err) if output_format == "text" else None)
