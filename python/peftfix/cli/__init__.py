"""The `peftfix` command line (click): the group, its default command and the entry point.

`peftfix [OPTIONS] [PATH]...` is `peftfix check [OPTIONS] [PATH]...`: any first argument that is not a
subcommand name starts a check. A path that happens to be named like a subcommand (a directory `rules`) is
checked with `peftfix check rules` or `peftfix ./rules`.

One module per command (`check`, `keys`, `verify`, `rules` with `explain`, `server`), each imported only when its
command runs, so a command starts without loading the others' machinery. What they share (exit codes, the output
formats) is in `common`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import click

from peftfix import about
from peftfix.cli.common import EXIT_CLEAN, EXIT_ERROR

DEFAULT_COMMAND = "check"
# Subcommands, imported only when used: name -> "module:attribute" of a click.Command.
LAZY_SUBCOMMANDS: dict[str, str] = {
    "check": "peftfix.cli.check:check_command",
    "keys": "peftfix.cli.keys:keys_command",
    "verify": "peftfix.cli.verify:verify_command",
    "rules": "peftfix.cli.rules:rules_command",
    "explain": "peftfix.cli.rules:explain_command",
    "server": "peftfix.cli.server:server_command",
}


class PeftfixGroup(click.Group):
    """A group whose default subcommand is `check`, that loads its subcommands lazily, and that turns any
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
            if about.debug_enabled():
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


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Console-script entry point (`peftfix`, `python -m peftfix`)."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="peftfix")
    except BrokenPipeError:
        # `peftfix ... | head`: the reader left; stop quietly, without a second error while flushing stdout.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(EXIT_ERROR)
    except SystemExit as done:
        # Everything is written: leave without freeing the syntax trees of a large check one object at a time
        # (a second on a 1 MB file). Nothing else is left to clean up: worker pools and files are closed.
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else EXIT_ERROR)
        if isinstance(done.code, str):
            print(done.code, file=sys.stderr)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
