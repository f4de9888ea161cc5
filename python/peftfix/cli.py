"""The `peftfix` command line (click).

`peftfix [OPTIONS] [PATH]...` is `peftfix check [OPTIONS] [PATH]...`: any first argument that is not a
subcommand name starts a check. A path that happens to be named like a subcommand (a directory `rules`) is
checked with `peftfix check rules` or `peftfix ./rules`.

Exit codes: 0 nothing left to report, 1 findings remain, 2 usage error, unreadable input or internal error.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

import click

from peftfix import about
from peftfix.output import FORMAT_NAMES, renderer
from peftfix.diagnostics import Diagnostic
from peftfix.output.common import location_label, pluralize
from peftfix.report import Report

if TYPE_CHECKING:  # the check machinery is imported when a check runs, so `rules`/`explain` start fast
    from peftfix.config import ConfigResolver
    from peftfix.runner import CheckRun, FixMode

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

DEFAULT_COMMAND = "check"
# Subcommands that live in other modules, imported only when used so `peftfix check` starts fast:
# name -> "module:attribute" of a click.Command.
LAZY_SUBCOMMANDS: dict[str, str] = {
    "keys": "peftfix.keys_cli:keys_command",
    "verify": "peftfix.verify_cli:verify_command",
}


class UsageProblem(click.ClickException):
    """A problem with what the user asked for (bad option value, bad config, unknown rule): exit 2."""

    exit_code = EXIT_ERROR


def _debug() -> bool:
    from peftfix.runner import debug_enabled

    return debug_enabled()


class PeftfixGroup(click.Group):
    """A group whose default subcommand is `check`, that loads some subcommands lazily, and that turns any
    unexpected exception into a one-line message and exit 2 (a traceback only with PEFTFIX_DEBUG=1)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        group_options = {name for param in self.get_params(ctx) for name in param.opts + param.secondary_opts}
        if not args or (args[0] not in self.list_commands(ctx) and args[0] not in group_options):
            args = [DEFAULT_COMMAND, *args]
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_SUBCOMMANDS})

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        command = super().get_command(ctx, name)
        if command is None and name in LAZY_SUBCOMMANDS:
            module_name, _, attribute = LAZY_SUBCOMMANDS[name].partition(":")
            command = getattr(importlib.import_module(module_name), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            # click would turn this into "Aborted!" and exit 1, which reads as "findings remain".
            click.echo("peftfix: interrupted", err=True)
            ctx.exit(EXIT_ERROR)
        except Exception as error:  # the contract: never a bare traceback, always exit 2
            if _debug():
                raise
            click.echo(f"peftfix: internal error: {type(error).__name__}: {error}", err=True)
            click.echo("(set PEFTFIX_DEBUG=1 for the traceback)", err=True)
            ctx.exit(EXIT_ERROR)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"peftfix {about.version()}")
        ctx.exit(EXIT_CLEAN)


@click.group(cls=PeftfixGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version, help="Show the version."
)
def cli() -> None:
    """Find and fix the ways PEFT / LoRA fine-tuning silently goes wrong.

    `peftfix [OPTIONS] [PATH]...` is the same as `peftfix check [OPTIONS] [PATH]...`
    (`peftfix --apply src/` fixes in place). To check a path named like a subcommand, such as a
    directory `rules`, write `peftfix check rules`.
    """


def exit_status(has_errors: bool, has_findings: bool, exit_zero: bool) -> int:
    if has_errors:
        return EXIT_ERROR  # --exit-zero never hides an error
    if has_findings and not exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _wants_color(err: bool = False) -> bool:
    stream = sys.stderr if err else sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def _render(report: Report, output_format: str, err: bool) -> str:
    render = renderer(output_format)
    return render(report, color=_wants_color(err)) if output_format == "text" else render(report)


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


@cli.command("check", epilog=CHECK_EPILOG, short_help="Check (and fix) Python sources. The default command.")
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
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMAT_NAMES),
    default="text",
    show_default=True,
    help="Output format.",
)
@click.option("--exit-zero", is_flag=True, help="Exit 0 even when findings remain (errors still exit 2).")
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
def check_command(
    paths: tuple[str, ...],
    apply_fixes: bool,
    unsafe_fixes: Optional[bool],
    show_diff: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    extend_select: tuple[str, ...],
    output_format: str,
    exit_zero: bool,
    config_file: Optional[Path],
    stdin_filename: Optional[str],
    respect_gitignore: bool,
) -> None:
    """Check Python sources for PEFT/LoRA misuse; with --apply, fix them."""
    from peftfix.runner import FixMode

    if apply_fixes and show_diff:
        raise UsageProblem("--apply and --diff cannot be used together (--diff shows what --apply would do)")
    read_stdin = paths == ("-",) or (not paths and stdin_filename is not None)
    if "-" in paths and not read_stdin:
        raise UsageProblem("'-' (stdin) cannot be combined with other paths")
    mode = FixMode.APPLY if apply_fixes else FixMode.DIFF if show_diff else FixMode.CHECK
    configs = _config_resolver(select, ignore, extend_select, unsafe_fixes, config_file)

    if read_stdin:
        run = _check_stdin(configs, stdin_filename, mode)
    else:
        run = _check_paths(configs, list(paths) or ["."], mode, respect_gitignore)

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
        click.echo(_render(report, output_format, err=to_stderr), nl=False, err=to_stderr)
        has_findings = bool(report.findings)
    click.get_current_context().exit(exit_status(run.has_errors, has_findings, exit_zero))


def _config_resolver(
    select: Sequence[str],
    ignore: Sequence[str],
    extend_select: Sequence[str],
    unsafe_fixes: Optional[bool],
    config_file: Optional[Path],
) -> "ConfigResolver":
    from peftfix.config import CliOverrides, ConfigError, ConfigResolver, RuleSelection, parse_code_list

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


def _check_stdin(configs: "ConfigResolver", stdin_filename: Optional[str], mode: "FixMode") -> "CheckRun":
    from peftfix.config import ConfigError
    from peftfix.runner import FixMode, run_stdin

    try:
        settings = configs.for_path(stdin_filename).settings_for(stdin_filename or "-")
    except ConfigError as error:
        raise UsageProblem(str(error)) from error
    data = _binary(sys.stdin).read()
    run, fixed_output = run_stdin(data, stdin_filename or "-", settings, mode)
    if mode is FixMode.APPLY:
        stdout = _binary(sys.stdout)
        stdout.write(fixed_output)
        stdout.flush()
    return run


def _check_paths(
    configs: "ConfigResolver", paths: list[str], mode: "FixMode", respect_gitignore: bool
) -> "CheckRun":
    from peftfix import runner
    from peftfix.config import ConfigError

    try:
        for path in paths:
            configs.for_path(path)  # every configuration error before any file is touched
    except ConfigError as error:
        raise UsageProblem(str(error)) from error
    return runner.run_check(paths, configs, mode, respect_gitignore=respect_gitignore)


@cli.command("rules", short_help="List every rule.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_command(output_format: str) -> None:
    """List every rule: code, name, fix availability, whether it is on by default."""
    from peftfix.rule_docs import all_rule_infos

    infos = all_rule_infos()
    if output_format == "json":
        click.echo(json.dumps([info.to_json() for info in infos], indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("Code", no_wrap=True, style="bold")
    table.add_column("Name", no_wrap=True)
    table.add_column("Fix", no_wrap=True)
    table.add_column("Default", no_wrap=True)
    table.add_column("Summary", overflow="fold")
    for info in infos:
        table.add_row(
            info.code, info.name, info.fix_availability, "on" if info.default_enabled else "off", info.summary
        )
    interactive = _wants_color()
    # Piped output gets a fixed width so lines are not wrapped at rich's fallback of 80 columns.
    Console(width=None if interactive else 160, no_color=not interactive, highlight=False).print(table)


@cli.command("explain", short_help="Show a rule's documentation.")
@click.argument("code")
def explain_command(code: str) -> None:
    """Show a rule's documentation: what it does, why it is bad, an example, fix safety."""
    from peftfix.rule_docs import rule_info

    info = rule_info(code)
    if info is None:
        raise UsageProblem(f"unknown rule code {code!r}; `peftfix rules` lists them")
    header = [
        f"# {info.code} ({info.name})",
        "",
        f"Fix availability: {info.fix_availability}",
        f"Enabled by default: {'yes' if info.default_enabled else 'no'}",
    ]
    if info.summary:
        header += ["", info.summary]
    click.echo("\n".join(header) + "\n\n" + info.documentation.strip() + "\n")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point (`peftfix`, `python -m peftfix`)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="peftfix")
    except BrokenPipeError:
        # `peftfix ... | head`: the reader left; stop quietly, without a second error while flushing stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
