"""The real-world notebook corpus (tests/corpus/notebooks/): public PEFT / TRL notebooks nobody here wrote, kept
byte for byte and labelled by hand (labels.json: cell, line in the cell, code). Each must give exactly its labelled
findings, parse cell by cell (magics and shell escapes skipped), and survive --apply: the result validates with
nbformat and only the cells a fix touched differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from peftfix.source.config import CliOverrides, ConfigResolver
from peftfix.source.runner import FixMode, run_check

NOTEBOOKS = Path(__file__).resolve().parents[1] / "corpus" / "notebooks"
LABELS = {
    name: {(item["cell"], item["line"], item["code"]) for item in findings}
    for name, findings in json.loads((NOTEBOOKS / "labels.json").read_text(encoding="utf-8")).items()
    if not name.startswith("_")
}


def test_every_notebook_is_labelled():
    assert sorted(LABELS) == sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert len(LABELS) >= 15


def _check(directory: Path, mode: FixMode = FixMode.CHECK, unsafe: bool = False):
    return run_check(["."], ConfigResolver(CliOverrides(unsafe_fixes=unsafe)), mode, max_workers=1)


@pytest.mark.parametrize("name", sorted(LABELS))
def test_a_notebook_gives_exactly_its_labelled_findings(name, tmp_path, monkeypatch):
    shutil.copy(NOTEBOOKS / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    run = _check(tmp_path)
    assert run.errors == []
    found = {(d.cell, d.location.row, d.code) for d in run.report.diagnostics if d.location is not None}
    assert found == LABELS[name]


@pytest.mark.parametrize("name", sorted(name for name, labels in LABELS.items() if labels))
def test_apply_changes_only_the_cells_it_fixes_and_keeps_a_valid_notebook(name, tmp_path, monkeypatch):
    path = tmp_path / name
    shutil.copy(NOTEBOOKS / name, path)
    monkeypatch.chdir(tmp_path)
    run = _check(tmp_path, FixMode.APPLY, unsafe=True)
    assert run.errors == []
    before = nbformat.reads((NOTEBOOKS / name).read_text(encoding="utf-8"), as_version=4)
    after = nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(after)
    edited = {edit.cell for diagnostic in run.report.fixed for edit in (diagnostic.fix.edits if diagnostic.fix else ())}
    for number, (old, new) in enumerate(zip(before.cells, after.cells, strict=True), start=1):
        assert (new.get("outputs"), new.metadata, new.get("id")) == (old.get("outputs"), old.metadata, old.get("id"))
        if number not in edited:
            assert new.source == old.source, f"cell {number} changed"
    if not run.report.fixed:
        assert path.read_bytes() == (NOTEBOOKS / name).read_bytes()
    again = _check(tmp_path, FixMode.APPLY, unsafe=True)
    assert again.report.fixed == ()  # a second --apply changes nothing
