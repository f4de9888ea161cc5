"""`peftfix check PATH...` (the default command): the source rules, with --apply / --diff."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import click

from peftfix.cli.common import UsageProblem, emit, exit_status, format_option
from peftfix.diagnostics import Diagnostic, Report
from peftfix.output.common import location_label, pluralize
from peftfix.output.snippets import SourceLines
from peftfix.output.statistics import FORMATS as STATISTICS_FORMATS
from peftfix.output.statistics import render as render_statistics

CACHE_DIR_NAME = ".peftfix_cache"

if TYPE_CHECKING:  # the check machinery is imported when a check runs
    from peftfix.source.config import ConfigResolver
    from peftfix.source.runner import CheckRun, FixMode


def _report_errors(errors: Sequence[tuple[str, str]]) -> None:
    for path, reason in errors:
        click.echo(click.style("error", fg="red", bold=True) + f": {path}: {reason}", err=True)


def _report_dropped_fixes(dropped: Sequence[Diagnostic]) -> None:
    for diagnostic in dropped:
        click.echo(
            click.style("warning", fg="yellow", bold=True)
            + f": {location_label(diagnostic)}: {diagnostic.code} fix not applied: it would leave the file"
            " unparsable (please report this)",
            err=True,
        )


def _diff_summary(report: Report) -> str:
    fixed, remaining = len(report.fixed), len(report.findings)
    if fixed == 0:
        summary = "No errors would be fixed"
    else:
        summary = f"Would fix {pluralize(fixed, 'error')}"
    hidden = report.hidden_unsafe_fix_count
    notes = [f"{remaining} remaining"] if remaining else []
    if hidden:
        notes.append(f"{pluralize(hidden, 'hidden fix', 'hidden fixes')} can be enabled with `--unsafe-fixes`")
    return summary + (f" ({'; '.join(notes)})" if notes else "") + "."


CHECK_EPILOG = """\b
PATH is a file, a directory (searched recursively; .gitignore and `exclude` are honoured) or `-` for stdin.
To check a path named like a subcommand (e.g. a directory `rules`), write `peftfix check rules` or
`peftfix ./rules`.

\b
Exit codes: 0 nothing left to report, 1 findings remain, 2 usage error, unreadable input or internal error.
"""


@click.command("check", epilog=CHECK_EPILOG, short_help="Check (and fix) Python sources. The default command.")
@click.argument("paths", nargs=-1, metavar="[PATH]...")
@click.option("--apply", "apply_fixes", is_flag=True, help="Apply safe fixes in place (atomic writes).")
@click.option(
    "--unsafe-fixes/--no-unsafe-fixes",
    default=None,
    help="Also apply (and show as fixable) fixes that may change behaviour.",
)
@click.option(
    "--diff", "show_diff", is_flag=True, help="Write nothing; print a unified diff of what --apply would change."
)
@click.option(
    "--select",
    multiple=True,
    metavar="CODES",
    help="Rules to enable, replacing the configured ones (comma-separated codes or prefixes).",
)
@click.option("--ignore", multiple=True, metavar="CODES", help="Rules to disable.")
@click.option("--extend-select", multiple=True, metavar="CODES", help="Rules to enable in addition.")
@format_option()
@click.option(
    "--output-format",
    "text_style",
    type=click.Choice(["full", "concise"]),
    default="full",
    show_default=True,
    help="The text format: each finding with its source lines, or one line per finding.",
)
@click.option("--statistics", is_flag=True, help="Show how many findings of each code, instead of the findings.")
@click.option("--show-fixes", is_flag=True, help="Show each fix as a diff, and list what --apply fixed (text format).")
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain (errors still exit 2).")
@click.option(
    "--exit-non-zero-on-fix", is_flag=True, help="Exit 1 when --apply fixed something, even if nothing remains."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A pyproject.toml with [tool.peftfix], or a toml file holding the keys at top level.",
)
@click.option(
    "--stdin-filename",
    metavar="NAME",
    help="The name of the file read from stdin (for messages and per-file-ignores).",
)
@click.option("--respect-gitignore/--no-respect-gitignore", default=True, help="Skip files ignored by .gitignore.")
@click.option("--no-cache", is_flag=True, help="Analyse every file again instead of reusing unchanged results.")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"Where to keep results between runs (default: {CACHE_DIR_NAME} at the project root).",
)
def check_command(
    paths: tuple[str, ...],
    apply_fixes: bool,
    unsafe_fixes: Optional[bool],
    show_diff: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    output_format: str,
    text_style: str,
    statistics: bool,
    show_fixes: bool,
    exit_zero: bool,
    exit_non_zero_on_fix: bool,
    config_file: Optional[Path],
    stdin_filename: Optional[str],
    respect_gitignore: bool,
    no_cache: bool,
    cache_dir: Optional[Path],
) -> None:
    """Check Python sources for PEFT/LoRA misuse; with --apply, fix them."""
    from peftfix.source.runner import FixMode

    if apply_fixes and show_diff:
        raise UsageProblem("--apply and --diff cannot be used together (--diff shows what --apply would do)")
    read_stdin = paths == ("-",) or (not paths and stdin_filename is not None)
    if "-" in paths and not read_stdin:
        raise UsageProblem("'-' (stdin) cannot be combined with other paths")
    if statistics and output_format not in STATISTICS_FORMATS:
        raise UsageProblem(f"--statistics is shown as {' or '.join(STATISTICS_FORMATS)}, not {output_format}")
    mode = FixMode.APPLY if apply_fixes else FixMode.DIFF if show_diff else FixMode.CHECK
    configs = _config_resolver(select, ignore, extend_select, unsafe_fixes, config_file)
    # JSON and SARIF show the edits of each fix, and so does text with --show-fixes: only they (and fixing) pay
    # for building them.
    with_edits = output_format in ("json", "sarif") or (output_format == "text" and show_fixes)

    stdin_text: dict[str, str] = {}
    if read_stdin:
        run = _check_stdin(configs, stdin_filename, mode, with_edits, stdin_text)
    else:
        targets = list(paths) or ["."]
        cache = None if no_cache else str(cache_dir or _default_cache_dir(configs, targets[0]))
        run = _check_paths(configs, targets, mode, respect_gitignore, with_edits, cache)

    _report_errors(run.errors)
    _report_dropped_fixes(run.dropped_fixes)
    report = run.report
    if mode is FixMode.DIFF:
        click.echo("".join(run.diffs), nl=False)
        click.echo(_diff_summary(report), err=True)
        has_findings = bool(report.findings or report.fixed)  # nothing was written: all of it remains
    else:
        # With stdin --apply, stdout carries the fixed source, so the diagnostics go to stderr (as in Ruff).
        to_stderr = read_stdin and mode is FixMode.APPLY
        if statistics:
            click.echo(render_statistics(report, output_format), nl=False, err=to_stderr)
        else:
            emit(
                report,
                output_format,
                err=to_stderr,
                full=text_style == "full",
                show_fixes=show_fixes,
                sources=SourceLines(stdin_text),
            )
        has_findings = bool(report.findings) or (exit_non_zero_on_fix and bool(report.fixed))
    click.get_current_context().exit(exit_status(run.has_errors, has_findings, exit_zero))


def _config_resolver(
    select: Sequence[str],
    ignore: Sequence[str],
    extend_select: Sequence[str],
    unsafe_fixes: Optional[bool],
    config_file: Optional[Path],
) -> ConfigResolver:
    from peftfix.source.config import CliOverrides, ConfigError, ConfigResolver, RuleSelection, parse_code_list

    overrides = CliOverrides(
        selection=RuleSelection(
            select=parse_code_list(select) if select else None,
            extend_select=parse_code_list(extend_select),
            ignore=parse_code_list(ignore),
        ),
        unsafe_fixes=unsafe_fixes,
    )
    try:
        return ConfigResolver(overrides, config_file=config_file)
    except ConfigError as error:
        raise UsageProblem(str(error)) from error


def _binary(stream: Any) -> Any:
    """The byte stream under a text stream: source is read and written as bytes, never re-encoded."""
    return getattr(stream, "buffer", stream)


def _check_stdin(
    configs: ConfigResolver, stdin_filename: Optional[str], mode: FixMode, with_edits: bool, texts: dict[str, str]
) -> CheckRun:
    """Check stdin; ``texts`` gets the text the findings are located in (for the snippets of the full format)."""
    from peftfix.source.config import ConfigError
    from peftfix.source.runner import FixMode, run_stdin

    try:
        settings = configs.for_path(stdin_filename).settings_for(stdin_filename or "-")
    except ConfigError as error:
        raise UsageProblem(str(error)) from error
    data = _binary(sys.stdin).read()
    run, fixed_output = run_stdin(data, stdin_filename or "-", settings, mode, with_edits)
    located_in = fixed_output if mode is FixMode.APPLY else data
    texts[stdin_filename or "-"] = located_in.decode("utf-8", "replace")
    if mode is FixMode.APPLY:
        stdout = _binary(sys.stdout)
        stdout.write(fixed_output)
        stdout.flush()
    return run


def _default_cache_dir(configs: ConfigResolver, path: str) -> Path:
    """``.peftfix_cache`` at the project root: the directory of the configuration file, else the working one."""
    from peftfix.source.config import ConfigError

    try:
        return Path(configs.for_path(path).root) / CACHE_DIR_NAME
    except ConfigError:
        return Path.cwd() / CACHE_DIR_NAME


def _check_paths(
    configs: ConfigResolver,
    paths: list[str],
    mode: FixMode,
    respect_gitignore: bool,
    with_edits: bool,
    cache_dir: Optional[str],
) -> CheckRun:
    from peftfix.source import runner
    from peftfix.source.config import ConfigError

    try:
        for path in paths:
            configs.for_path(path)  # every configuration error before any file is touched
    except ConfigError as error:
        raise UsageProblem(str(error)) from error
    return runner.run_check(
        paths, configs, mode, respect_gitignore=respect_gitignore, with_edits=with_edits, cache_dir=cache_dir
    )
