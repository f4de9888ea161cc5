"""Notebooks through the whole command line: discovery, findings located by cell, --apply / --diff that edit only
the affected cells (outputs, ids, metadata and the file's JSON formatting kept), stdin, and bad notebooks.

The notebooks are written by nbformat, the library Jupyter saves with, and every result is validated with it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import nbformat
import pytest

from .sarif_schema import SARIF_2_1_0_SUBSET

LOAD = """\
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM"""
BASE = 'base = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")'
WRAP = """\
config = LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"])
model = get_peft_model(base, config)"""
LOAD_ADAPTER = 'model = PeftModel.from_pretrained(model, "out/adapter")\nmodel.eval()'


def notebook(*cells: tuple[str, str]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        if kind == "code":
            cell = nbformat.v4.new_code_cell(source, execution_count=len(nb.cells) + 1)
            cell.outputs = [nbformat.v4.new_output("stream", text=f"output of cell {len(nb.cells) + 1}\n")]
        else:
            cell = nbformat.v4.new_markdown_cell(source)
        nb.cells.append(cell)
    return nb


def stray_notebook() -> nbformat.NotebookNode:
    """PF201 spread over cells: the base loaded in cell 3, wrapped in cell 5, the adapter loaded in cell 6."""
    return notebook(
        ("code", "!pip install -q peft transformers\n%env TOKENIZERS_PARALLELISM=false"),
        ("code", LOAD),
        ("code", "%%time\n" + "x = 1"),  # a cell magic: the whole cell is not Python
        ("code", BASE),
        ("markdown", "## Train a LoRA"),
        ("code", WRAP),
        ("code", LOAD_ADAPTER),
    )


def run(args: list[str], cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", *args], cwd=cwd, input=stdin, capture_output=True, timeout=120
    )


def write(path: Path, nb: nbformat.NotebookNode) -> bytes:
    nbformat.write(nb, str(path))
    return path.read_bytes()


def test_a_finding_spread_over_cells_is_reported_at_its_cell_and_line(tmp_path):
    write(tmp_path / "tutorial.ipynb", stray_notebook())
    result = run(["--no-cache", "tutorial.ipynb"], tmp_path)
    assert result.returncode == 1, result.stderr
    assert "tutorial.ipynb:cell 6:2:9: PF201 [*]" in result.stdout.decode()

    result = run(["--no-cache", "--format", "json", "tutorial.ipynb"], tmp_path)
    [finding] = json.loads(result.stdout)
    assert (finding["code"], finding["cell"], finding["location"]) == ("PF201", 6, {"row": 2, "column": 9})
    assert "(cell 7, line 1)" in finding["message"]  # the other call named as the notebook shows it


def test_directories_include_notebooks_and_exclude_can_leave_them_out(tmp_path):
    (tmp_path / "nbs").mkdir()
    write(tmp_path / "nbs" / "tutorial.ipynb", stray_notebook())
    assert b"nbs/tutorial.ipynb:cell 6:2:9: PF201" in run(["--no-cache", "."], tmp_path).stdout
    (tmp_path / "pyproject.toml").write_text('[tool.peftfix]\nexclude = ["*.ipynb"]\n')
    result = run(["--no-cache", "."], tmp_path)
    assert result.returncode == 0 and b"All checks passed!" in result.stdout


def test_apply_edits_only_the_affected_cell_and_keeps_outputs_ids_and_formatting(tmp_path):
    path = tmp_path / "tutorial.ipynb"
    before = write(path, stray_notebook())
    result = run(["--no-cache", "--apply", "tutorial.ipynb"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    after = path.read_bytes()
    fixed = nbformat.reads(after.decode(), as_version=4)
    nbformat.validate(fixed)
    original = nbformat.reads(before.decode(), as_version=4)
    assert (
        fixed.cells[5].source == 'config = LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"])'
    )
    assert fixed.cells[6].source == 'model = PeftModel.from_pretrained(base, "out/adapter")\nmodel.eval()'
    assert "get_peft_model" not in fixed.cells[1].source  # the import the fix left unused goes too
    for index in (0, 2, 3, 4):  # untouched cells: source (magics included), outputs, id, metadata
        assert fixed.cells[index] == original.cells[index]
    for old, new in zip(original.cells, fixed.cells, strict=True):
        assert (new.id, new.get("outputs"), new.metadata) == (old.id, old.get("outputs"), old.metadata)
    assert fixed.metadata == original.metadata
    # Jupyter's own formatting: one-space indent, the same keys in the same order, the final newline.
    assert after.decode() == nbformat.writes(fixed) + "\n" or after.decode() == nbformat.writes(fixed)
    assert after.splitlines()[1].startswith(b' "cells"') and after.endswith(before[-1:])
    assert run(["--no-cache", "--apply", "tutorial.ipynb"], tmp_path).returncode == 0
    assert path.read_bytes() == after  # a second --apply changes nothing


def test_diff_shows_the_cells_that_would_change_and_writes_nothing(tmp_path):
    path = tmp_path / "tutorial.ipynb"
    before = write(path, stray_notebook())
    result = run(["--no-cache", "--diff", "tutorial.ipynb"], tmp_path)
    diff = result.stdout.decode()
    assert "--- tutorial.ipynb:cell 6" in diff and "+++ tutorial.ipynb:cell 6" in diff
    assert "--- tutorial.ipynb:cell 7" in diff
    assert "-model = get_peft_model(base, config)" in diff
    assert '+model = PeftModel.from_pretrained(base, "out/adapter")' in diff
    assert "--- tutorial.ipynb:cell 2" in diff  # the import left unused
    assert "cell 4" not in diff and "pip install" not in diff
    assert path.read_bytes() == before


def test_a_cell_that_does_not_parse_is_reported_and_the_other_cells_still_checked(tmp_path):
    nb = stray_notebook()
    nb.cells.insert(1, nbformat.v4.new_code_cell("def broken(:\n    pass"))
    path = tmp_path / "broken.ipynb"
    before = write(path, nb)
    out = run(["--no-cache", "broken.ipynb"], tmp_path).stdout.decode()
    assert "broken.ipynb:cell 2:1:12: PF000" in out
    assert "broken.ipynb:cell 7:2:9: PF201" in out
    result = run(["--no-cache", "--apply", "broken.ipynb"], tmp_path)
    assert result.returncode == 1
    assert path.read_bytes() == before  # a notebook that does not parse is not fixed, as a Python file is not


@pytest.mark.parametrize(
    "content",
    [b"{not json", b'{"cells": 3}', b"\xff\xfe binary", b'{"nbformat": 3, "worksheets": []}'],
    ids=["invalid-json", "cells-not-a-list", "not-utf8", "nbformat-3"],
)
def test_what_is_not_a_notebook_is_pf000_and_left_untouched(tmp_path, content):
    path = tmp_path / "bad.ipynb"
    path.write_bytes(content + b"\nimport peft\n")
    result = run(["--no-cache", "--apply", "bad.ipynb"], tmp_path)
    assert result.returncode == 1
    assert "bad.ipynb:1:1: PF000" in result.stdout.decode()
    assert path.read_bytes() == content + b"\nimport peft\n"


def test_ipython_syntax_is_skipped_in_every_form(tmp_path):
    nb = notebook(
        ("code", "%pip install peft \\\n    transformers\nfiles = !ls\n" + LOAD),
        ("code", "for name in files:\n    !echo {name}\n    print(name)\nbase?\n?base\nbase.to??"),
        ("code", "%%capture\n!pip install bitsandbytes\n    indented = 'inside a cell magic'"),
        ("code", BASE + "\n" + WRAP),
        ("code", "await model.generate()\n" + LOAD_ADAPTER),  # top-level await is valid in a notebook
    )
    write(tmp_path / "magics.ipynb", nb)
    out = run(["--no-cache", "magics.ipynb"], tmp_path).stdout.decode()
    assert "PF000" not in out
    assert "magics.ipynb:cell 4:3:9: PF201" in out


def test_stdin_takes_a_notebook_named_by_stdin_filename(tmp_path):
    data = nbformat.writes(stray_notebook()).encode()
    result = run(["--no-cache", "--format", "json", "--stdin-filename", "nb/train.ipynb", "-"], tmp_path, data)
    [finding] = json.loads(result.stdout)
    assert (finding["filename"], finding["cell"]) == ("nb/train.ipynb", 6)

    result = run(["--apply", "--stdin-filename", "train.ipynb", "-"], tmp_path, data)
    fixed = nbformat.reads(result.stdout.decode(), as_version=4)
    nbformat.validate(fixed)
    assert fixed.cells[6].source.startswith('model = PeftModel.from_pretrained(base, "out/adapter")')


def test_a_fix_spanning_cells_names_each_edit_s_cell_in_json(tmp_path):
    write(tmp_path / "tutorial.ipynb", stray_notebook())
    [finding] = json.loads(run(["--no-cache", "--format", "json", "tutorial.ipynb"], tmp_path).stdout)
    edits = {(edit["cell"], edit["location"]["row"], edit["content"]) for edit in finding["fix"]["edits"]}
    # The stray call goes from cell 6, the adapter is loaded onto `base` in cell 7, the unused import goes in cell 2.
    assert {cell for cell, _, _ in edits} == {2, 6, 7}, edits
    assert (7, 1, "base") in edits


def test_github_and_sarif_put_the_cell_in_the_message_not_a_line_of_the_json(tmp_path):
    write(tmp_path / "tutorial.ipynb", stray_notebook())
    [annotation] = run(["--no-cache", "--format", "github", "tutorial.ipynb"], tmp_path).stdout.decode().splitlines()
    properties, message = annotation.split("::")[1:3]
    assert "file=tutorial.ipynb" in properties and "line=" not in properties
    assert message.startswith("cell 6:2:9: PF201 ")

    log = json.loads(run(["--no-cache", "--format", "sarif", "tutorial.ipynb"], tmp_path).stdout)
    jsonschema.validate(log, SARIF_2_1_0_SUBSET)
    [result] = log["runs"][0]["results"]
    assert result["message"]["text"].startswith("cell 6:2:9: ")
    assert "region" not in result["locations"][0]["physicalLocation"] and "fixes" not in result
    assert (result["properties"]["cell"], result["properties"]["row"]) == (6, 2)
