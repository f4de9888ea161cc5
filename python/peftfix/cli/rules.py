"""`peftfix rules` (every code, from the catalog) and `peftfix explain CODE` (one code's documentation)."""

from __future__ import annotations

import json

import click

from peftfix.cli.common import UsageProblem, wants_color


@click.command("rules", short_help="List every code: source rules, checkpoint and runtime checks.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
def rules_command(output_format: str) -> None:
    """List every code (PF source rules, PK checkpoint checks, PV runtime checks): name, the command that
    reports it, fix availability, whether it is on by default."""
    from peftfix.catalog import all_codes

    infos = all_codes()
    if output_format == "json":
        click.echo(json.dumps([info.to_json() for info in infos], indent=2))
        return

    from rich.console import Console
    from rich.table import Table

    table = Table()
    table.add_column("Code", no_wrap=True, style="bold")
    table.add_column("Name", no_wrap=True)
    table.add_column("Command", no_wrap=True)
    table.add_column("Fix", no_wrap=True)
    table.add_column("Default", no_wrap=True)
    table.add_column("Summary", overflow="fold")
    for info in infos:
        table.add_row(
            info.code,
            info.name,
            info.command,
            info.fix_availability,
            "on" if info.default_enabled else "off",
            info.summary,
        )
    interactive = wants_color()
    # Piped output gets a fixed width so lines are not wrapped at rich's fallback of 80 columns.
    Console(width=None if interactive else 170, no_color=not interactive, highlight=False).print(table)


@click.command("explain", short_help="Show a code's documentation.")
@click.argument("code")
def explain_command(code: str) -> None:
    """Show a code's documentation: what it finds, why it is bad, an example, how to fix it."""
    from peftfix import about
    from peftfix.catalog import code_info, reported_by

    info = code_info(code)
    if info is None:
        raise UsageProblem(f"unknown code {code!r}; `peftfix rules` lists them")
    header = [
        f"# {info.code} ({info.name})",
        "",
        f"Reported by: {reported_by(info)}",
        f"Fix availability: {info.fix_availability}",
        f"Enabled by default: {'yes' if info.default_enabled else 'no'}",
        f"Documentation: {about.rule_url(info.code)}",
    ]
    if info.summary:
        header += ["", info.summary]
    click.echo("\n".join(header) + "\n\n" + info.documentation.strip() + "\n")
