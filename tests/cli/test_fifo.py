"""Named pipes where `peftfix check` reads files: ignore files inside a checked tree, `--config`, a project
module. The run ends at once with an error naming the path (exit 2); nothing blocks."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")

PITFALL = (
    'from peft import PeftModel, get_peft_model\nm = get_peft_model(base, cfg)\nm = PeftModel.from_pretrained(m, "a")\n'
)


@pytest.mark.parametrize("name", [".gitignore", ".ignore"])
def test_fifo_ignore_file_in_a_subdirectory(check_cli, tmp_path, name):
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "train.py").write_text(PITFALL)
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / "infer.py").write_text(PITFALL)
    os.mkfifo(tmp_path / "blocked" / name)
    result = check_cli(".", cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"blocked/{name}" in result.stdout + result.stderr
    assert "ok/train.py:2" in result.stdout  # the rest of the tree is still checked


def test_fifo_ignore_file_at_the_root(check_cli, tmp_path):
    (tmp_path / "train.py").write_text(PITFALL)
    os.mkfifo(tmp_path / ".gitignore")
    result = check_cli(".", cwd=tmp_path)
    assert result.returncode == 2
    assert ".gitignore" in result.stdout + result.stderr


def test_fifo_as_config(check_cli, tmp_path):
    (tmp_path / "train.py").write_text(PITFALL)
    os.mkfifo(tmp_path / "peftfix.toml")
    result = check_cli("--config", "peftfix.toml", "train.py", cwd=tmp_path)
    assert result.returncode == 2
    assert "peftfix.toml" in result.stderr and "named pipe" in result.stderr, result.stderr


def test_fifo_pyproject_is_not_a_config(check_cli, tmp_path):
    (tmp_path / "train.py").write_text(PITFALL)
    os.mkfifo(tmp_path / "pyproject.toml")
    result = check_cli("train.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "train.py:2" in result.stdout


def test_fifo_project_module(check_cli, tmp_path):
    (tmp_path / "train.py").write_text("from helpers import load\nmodel = load()\n" + PITFALL)
    os.mkfifo(tmp_path / "helpers.py")
    result = check_cli("train.py", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "train.py:4" in result.stdout
