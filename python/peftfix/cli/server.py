"""`peftfix server`: the language server editors start (LSP over stdio)."""

from __future__ import annotations

import click


@click.command("server", short_help="Run the language server (LSP over stdio) for editors.")
@click.option(
    "--stdio",
    is_flag=True,
    help="Talk over stdin/stdout (the only transport; accepted because some LSP clients pass it).",
)
def server_command(stdio: bool) -> None:
    """Run the language server: diagnostics as you type in Python files and Jupyter notebooks, quick fixes,
    "fix all" and rule documentation on hover. The configuration is the `[tool.peftfix]` table `peftfix check`
    would use for each file. Logs go to stderr (PEFTFIX_DEBUG=1 for every message)."""
    from peftfix.lsp.server import serve  # pygls is loaded by this command only

    click.get_current_context().exit(serve())
