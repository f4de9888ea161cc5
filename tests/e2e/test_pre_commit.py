"""The pre-commit hooks of .pre-commit-hooks.yaml, run by the real pre-commit on a user's repository.

`pre-commit try-repo` installs the hooks' repository as pre-commit installs any `language: python` hook: a new
virtualenv and `pip install .`, which builds the Rust extension with maturin. That needs PyPI (maturin and the
dependencies) and is the cost of this test, so:

- both hooks run in one `try-repo` (one environment; pre-commit runs them in id order, `peftfix` first), and the
  second run, which must pass, is the only other one;
- the Rust build keeps its compiled dependencies in pytest's cache (`CARGO_TARGET_DIR`), and the release profile
  is turned down to no optimisation and no LTO: the test checks what the hooks do, not how fast the extension
  is. Warm, each build compiles only the peftfix crate. (PRE_COMMIT_HOME cannot share the environment between
  runs: try-repo keeps its store in a temporary directory of its own.)

try-repo snapshots only the files git tracks, so the hooks' repository is a commit of this working tree (tracked
files and new ones git does not ignore): uncommitted work is tested as it stands.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
PITFALL = ROOT / "examples" / "stray_get_peft_model.py"  # PF201 at 39:13, with a safe fix
CLEAN = """\
from peft import PeftModel
from transformers import AutoModelForCausalLM

base = AutoModelForCausalLM.from_pretrained("base")
model = PeftModel.from_pretrained(base, "adapter")
"""
STRAY_CALL = "model = get_peft_model(base, lora_config)"
FIXED_LOAD = "model = PeftModel.from_pretrained(base, ADAPTER_PATH)"
CHECK_HOOK, FIX_HOOK = "peftfix", "peftfix (apply fixes)"  # the hooks' names, as pre-commit prints them
# One try-repo builds the extension; cold (no compiled dependencies yet) that takes minutes.
RUN_TIMEOUT_S = 1200
GIT_IDENTITY = ["-c", "user.name=peftfix tests", "-c", "user.email=tests@peftfix.invalid", "-c", "commit.gpgsign=false"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def commit_everything(repository: Path) -> None:
    git(repository, "add", "-A")
    git(repository, "commit", "-q", "-m", "snapshot")


def snapshot_of_this_working_tree(destination: Path) -> Path:
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():  # a tracked file deleted in the working tree is left out, as a commit would
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    git(destination, "init", "-q")
    commit_everything(destination)
    return destination


def notebook_of(source: str) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Evaluate the adapter"), nbformat.v4.new_code_cell(source)]
    return notebook


@pytest.fixture(scope="module")
def hooks_repository(tmp_path_factory) -> Path:
    return snapshot_of_this_working_tree(tmp_path_factory.mktemp("hooks-repository"))


@pytest.fixture(scope="module")
def build_env(request, tmp_path_factory) -> dict[str, str]:
    """The environment pre-commit runs in, tuned so that the extension builds quickly (see the module docstring)."""
    cache = getattr(request.config, "cache", None)  # absent with `-p no:cacheprovider`
    target = cache.mkdir("pre-commit-cargo-target") if cache is not None else tmp_path_factory.mktemp("cargo-target")
    return {
        **os.environ,
        "CARGO_TARGET_DIR": str(target),
        "CARGO_PROFILE_RELEASE_OPT_LEVEL": "0",
        "CARGO_PROFILE_RELEASE_LTO": "off",
        "CARGO_PROFILE_RELEASE_CODEGEN_UNITS": "16",
    }


def try_repo(hooks_repository: Path, project: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`pre-commit try-repo` with every hook of the repository, on every file of ``project``."""
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hooks_repository), "--all-files", "--color=never"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )


def hook_sections(output: str) -> dict[str, tuple[str, str]]:
    """Hook name -> (Passed/Failed/..., what pre-commit printed under it)."""
    heading = re.compile(r"^(?P<name>\S.*?)\.{3,}(?:\(.*\))?(?P<status>Passed|Failed|Skipped)$", re.MULTILINE)
    headings = list(heading.finditer(output))
    return {
        match["name"]: (match["status"], output[match.end() : following.start() if following else len(output)])
        for match, following in zip(headings, [*headings[1:], None], strict=True)
    }


def test_hooks_report_then_fix_then_pass(hooks_repository, build_env, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    pitfall = PITFALL.read_text(encoding="utf-8")
    (project / "train.py").write_text(pitfall, encoding="utf-8")
    (project / "clean.py").write_text(CLEAN, encoding="utf-8")
    nbformat.write(notebook_of(pitfall), project / "evaluate.ipynb")
    git(project, "init", "-q")
    commit_everything(project)

    first = try_repo(hooks_repository, project, build_env)
    output = first.stdout + first.stderr
    sections = hook_sections(first.stdout)
    assert set(sections) == {CHECK_HOOK, FIX_HOOK}, output[-4000:]
    assert first.returncode == 1

    # The check hook reports each pitfall, in the script and in the notebook, and touches nothing.
    status, report = sections[CHECK_HOOK]
    assert status == "Failed" and "- exit code: 1" in report and "files were modified" not in report
    assert "train.py:39:13: PF201" in report
    assert re.search(r"^evaluate\.ipynb:.*PF201", report, re.MULTILINE), report
    assert "clean.py" not in report

    # The fix hook rewrites both files; pre-commit fails it for modifying them, as it does every fixer.
    status, report = sections[FIX_HOOK]
    assert status == "Failed" and "- files were modified by this hook" in report
    fixed = (project / "train.py").read_text(encoding="utf-8")
    assert STRAY_CALL not in fixed and FIXED_LOAD in fixed
    notebook = nbformat.read(project / "evaluate.ipynb", as_version=4)
    nbformat.validate(notebook)
    markdown, code = notebook.cells
    assert markdown.source == "# Evaluate the adapter"
    assert STRAY_CALL not in code.source and FIXED_LOAD in code.source
    assert (project / "clean.py").read_text(encoding="utf-8") == CLEAN

    second = try_repo(hooks_repository, project, build_env)
    sections = hook_sections(second.stdout)
    assert second.returncode == 0, (second.stdout + second.stderr)[-4000:]
    assert {name: status for name, (status, _) in sections.items()} == {CHECK_HOOK: "Passed", FIX_HOOK: "Passed"}
    assert (project / "train.py").read_text(encoding="utf-8") == fixed
