"""The data-flow cases under tests/fixtures/flow/<class>/ and the projects under tests/fixtures/projects/: each file
says what must be reported with trailing ``# expect: PF203`` comments on the reported lines; a file (or project)
without any is valid. A case passes when exactly the expected (file, line, code) findings are reported.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from peftfix.source.config import ConfigResolver
from peftfix.source.engine import check_bytes
from peftfix.source.flow.project import Project
from peftfix.source.registry import default_settings
from peftfix.source.runner import FixMode, run_check

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CASES = sorted((FIXTURES / "flow").glob("*/*.py"))
PROJECTS = sorted(path for path in (FIXTURES / "projects").iterdir() if path.is_dir())
EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>[A-Z]+\d+(?:\s*,\s*[A-Z]+\d+)*)")


def expected_in(path: Path, name: str) -> set[tuple[str, int, str]]:
    found = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = EXPECT.search(line)
        if match:
            found |= {(name, number, code.strip()) for code in match.group("codes").split(",")}
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_flow_case(case: Path):
    name = case.name
    outcome = check_bytes(case.read_bytes(), name, default_settings(), project=Project([str(case.parent)]))
    found = {(d.filename, d.location.row, d.code) for d in outcome.diagnostics if d.location is not None}
    assert found == expected_in(case, name)


def test_every_class_has_six_valid_and_six_invalid_cases():
    classes = {path.parent.name for path in CASES}
    assert classes >= {"calls", "methods", "guards", "correlated", "raises", "apis"}
    for name in classes:
        kinds = [path.stem.split("_")[0] for path in CASES if path.parent.name == name]
        assert kinds.count("valid") >= 6 and kinds.count("invalid") >= 6, name


@pytest.mark.parametrize("project", PROJECTS, ids=lambda path: path.name)
def test_project(project: Path, monkeypatch):
    monkeypatch.chdir(project)
    run = run_check(["."], ConfigResolver(), FixMode.CHECK)
    assert run.errors == []
    found = {(d.filename, d.location.row, d.code) for d in run.report.diagnostics if d.location is not None}
    expected = set()
    for path in sorted(project.rglob("*.py")):
        expected |= expected_in(path, os.path.relpath(path, project).replace(os.sep, "/"))
    assert found == expected
