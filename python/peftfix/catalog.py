"""Every code peftfix reports, in one catalog: the source rules (PF), the checkpoint checks (PK), the serving
checks (PS) and the runtime checks (PV). It feeds `peftfix rules`, `peftfix explain`, the SARIF rule metadata and the docs pages.

Each wing describes its own codes: a source rule in its class (one file per rule, read through the rule
registry), the checkpoint and runtime checks in ``peftfix.checkpoint.codes`` and ``peftfix.verify.codes``. The
wings are imported only when the catalog is read, so commands that never need it start fast.
"""

from __future__ import annotations

from typing import Optional

from peftfix.diagnostics import CodeInfo

# The order `peftfix rules` lists them in: the depth a user meets first comes first.
COMMANDS = ("check", "keys", "verify")
# How `peftfix explain` and the docs pages name the command that reports a code.
REPORTED_BY = {"check": "peftfix check", "keys": "peftfix keys", "verify": "peftfix verify"}


def all_codes() -> list[CodeInfo]:
    """Every code, grouped by the command that reports it, each group ordered by code."""
    from peftfix.checkpoint.codes import CODES as checkpoint_codes
    from peftfix.serving.codes import CODES as serving_codes
    from peftfix.source.registry import code_infos
    from peftfix.verify.codes import CODES as verify_codes

    infos = [*code_infos(), *checkpoint_codes, *serving_codes, *verify_codes]
    return sorted(infos, key=lambda info: (COMMANDS.index(info.command), info.code))


def code_info(code: str) -> Optional[CodeInfo]:
    """The entry for ``code`` (case and surrounding blanks ignored), or None."""
    wanted = code.strip().upper()
    return next((info for info in all_codes() if info.code == wanted), None)


def codes_for(command: str) -> list[CodeInfo]:
    """The codes one command reports."""
    return [info for info in all_codes() if info.command == command]


def reported_by(info: CodeInfo) -> str:
    """The command line that reports ``info``'s code (`peftfix keys`)."""
    return REPORTED_BY.get(info.command, info.command)
