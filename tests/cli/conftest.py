"""Fixtures for the CLI, configuration, runner and output-format tests.

Hand-built diagnostics let the output formats be tested without the rule engine; the end-to-end tests use
snippets that trigger real rules.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Optional

import pytest
from click.testing import CliRunner

from peftfix.diagnostics import Applicability, Diagnostic, Edit, Fix, Location

# Triggers PF302 (r=1024, display-only) and PF301 ("dropout" is not a Linear layer; safe fix removes it).
RANK_AND_DROPOUT = textwrap.dedent("""\
    from peft import LoraConfig
    config = LoraConfig(r=1024, target_modules=["q_proj", "dropout"])
    """)
# What --apply leaves of RANK_AND_DROPOUT: PF301's element removed, PF302 (display-only) still reported.
RANK_AND_DROPOUT_FIXED_PREFIX = 'config = LoraConfig(r=1024, target_modules=["q_proj"])'
CLEAN_PEFT = textwrap.dedent("""\
    from peft import LoraConfig
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"])
    """)


def make_diagnostic(
    code: str = "PF301",
    message: str = "`dropout` is not a Linear layer",
    filename: str = "train.py",
    row: int = 2,
    column: int = 50,
    end_column: int = 59,
    fix: Optional[Fix] = None,
    located: bool = True,
    details: Optional[dict] = None,
) -> Diagnostic:
    return Diagnostic(
        code=code,
        message=message,
        filename=filename,
        location=Location(row, column) if located else None,
        end_location=Location(row, end_column) if located else None,
        fix=fix,
        details=details or {},
    )


def make_fix(applicability: Applicability = Applicability.SAFE, content: str = "", with_edits: bool = True) -> Fix:
    edits = (
        (
            Edit(
                start_offset=70,
                end_offset=81,
                content=content,
                location=Location(2, 48),
                end_location=Location(2, 59),
            ),
        )
        if with_edits
        else ()
    )
    return Fix(applicability=applicability, message="Remove `dropout` from `target_modules`", edits=edits)


@pytest.fixture
def cli_runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(cli_runner, monkeypatch):
    """Run the CLI in-process from a working directory: ``invoke(args, cwd=..., input=...)``."""
    from peftfix.cli import cli

    def run(args, cwd: Optional[Path] = None, input: Optional[bytes | str] = None, env: Optional[dict] = None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        return cli_runner.invoke(cli, list(args), input=input, env=env, catch_exceptions=False)

    return run


def run_module(
    args, cwd: Path, input: Optional[bytes] = None, env: Optional[dict] = None
) -> subprocess.CompletedProcess:
    """`python -m peftfix ARGS` in a subprocess (real stdin/stdout, real exit status)."""
    environment = dict(os.environ)
    environment.pop("PEFTFIX_DEBUG", None)
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "peftfix", *args],
        cwd=cwd,
        input=input,
        capture_output=True,
        env=environment,
        timeout=120,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def check_cli():
    """``peftfix check --no-cache ARGS`` in a fresh process (for what an in-process run cannot show: a hang, a
    non-UTF-8 file on disk): ``check_cli(*args, cwd=...)`` returns the CompletedProcess. Time-limited."""

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "peftfix", "check", "--no-cache", *args],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=cwd,
        )

    return run
