"""The check cache: an unchanged tree is not analysed again; a change to a file, to a project module it
imports, or to the settings is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from peftfix.source import engine

HELPER = """from peft import PeftModel


def load(base, path):
    return PeftModel.from_pretrained(base, path)
"""
TRAIN = """from transformers import AutoModelForCausalLM, Trainer

from helper import load

model = load(AutoModelForCausalLM.from_pretrained("m"), "adapter")
Trainer(model=model).train()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "helper.py").write_text(HELPER)
    (tmp_path / "train.py").write_text(TRAIN)
    return tmp_path


def findings(invoke, project: Path, *options: str) -> set[tuple[str, int, str]]:
    result = invoke(["--format", "json", *options, "."], cwd=project)
    assert result.exit_code in (0, 1), result.output
    return {(d["filename"], d["location"]["row"], d["code"]) for d in json.loads(result.stdout)}


def refuse_to_analyse(monkeypatch):
    def analysed(*args, **kwargs):
        raise AssertionError("the file was analysed again")

    monkeypatch.setattr(engine, "check_bytes", analysed)


def test_second_run_on_an_unchanged_tree_analyses_nothing(invoke, project, monkeypatch):
    first = findings(invoke, project)
    assert first == {("helper.py", 5, "PF203")}
    assert (project / ".peftfix_cache" / "CACHEDIR.TAG").is_file()
    assert (project / ".peftfix_cache" / ".gitignore").read_text().endswith("*\n")
    refuse_to_analyse(monkeypatch)
    assert findings(invoke, project) == first


def test_a_changed_imported_module_invalidates_its_importer(invoke, project, monkeypatch):
    findings(invoke, project)
    (project / "helper.py").write_text(HELPER.replace("base, path)", "base, path, is_trainable=True)"))
    assert findings(invoke, project) == set()


def test_a_changed_file_is_analysed_again(invoke, project):
    findings(invoke, project)
    (project / "train.py").write_text(TRAIN.replace("Trainer(model=model).train()\n", "print(model)\n"))
    assert findings(invoke, project) == set()


def test_other_settings_are_other_entries(invoke, project, monkeypatch):
    findings(invoke, project)
    assert findings(invoke, project, "--select", "PF2") == {("helper.py", 5, "PF203")}
    assert findings(invoke, project, "--ignore", "PF203") == set()


def test_no_cache_analyses_and_writes_nothing(invoke, project, monkeypatch):
    findings(invoke, project, "--no-cache")
    assert not (project / ".peftfix_cache").exists()


def test_cache_dir_option(invoke, project, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("cache")
    findings(invoke, project, "--cache-dir", str(elsewhere))
    assert not (project / ".peftfix_cache").exists()
    assert any(elsewhere.rglob("*.json"))


def test_a_broken_cache_entry_is_ignored(invoke, project):
    first = findings(invoke, project)
    for entry in (project / ".peftfix_cache").rglob("*.json"):
        entry.write_text("{not json")
    assert findings(invoke, project) == first
