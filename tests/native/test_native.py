"""The native discovery core (`peftfix._native`), exercised through `peftfix.source.discovery`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peftfix import _native
from peftfix.source.discovery import PREFILTER_NEEDLES, Discovery, find_python_files, mentions_checked_libraries

USES_PEFT = "from peft import LoraConfig, get_peft_model\n"
UNRELATED = "import os\n\nprint(os.getcwd())\n"


def write(root: Path, relative: str, content: str = USES_PEFT) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    return path


def relative_files(discovery: Discovery, root: Path) -> list[str]:
    return [Path(file).relative_to(root).as_posix() for file in discovery.files]


def test_module_exposes_version_and_functions() -> None:
    assert isinstance(_native.__version__, str) and _native.__version__
    assert callable(_native.walk) and callable(_native.mentions) and callable(_native.find_candidates)


def test_directory_walk_finds_nested_python_files_sorted(tmp_path: Path) -> None:
    for name in ["b.py", "a/x.py", "a/deep/y.py", "a/readme.md", "a/stub.pyi"]:
        write(tmp_path, name)
    found = find_python_files([tmp_path], prefilter=False)
    assert relative_files(found, tmp_path) == ["a/deep/y.py", "a/x.py", "b.py"]
    assert found.errors == [] and found.skipped == 0
    assert all(isinstance(file, str) for file in found.files)


def test_gitignore_is_honoured_outside_a_git_repository(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    write(tmp_path, "scratch.py")
    write(tmp_path, "generated/model.py")
    (tmp_path / ".gitignore").write_text("scratch.py\ngenerated/\n")
    assert not (tmp_path / ".git").exists()
    assert relative_files(find_python_files([tmp_path]), tmp_path) == ["train.py"]
    ignoring_nothing = find_python_files([tmp_path], respect_gitignore=False)
    assert relative_files(ignoring_nothing, tmp_path) == ["generated/model.py", "scratch.py", "train.py"]


def test_hidden_and_default_excluded_directories_are_skipped(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    for name in [".hidden/a.py", ".venv/lib/b.py", "venv/c.py", "node_modules/d.py", "pkg/__pycache__/e.py"]:
        write(tmp_path, name)
    assert relative_files(find_python_files([tmp_path]), tmp_path) == ["train.py"]


def test_exclude_patterns_prune_files_and_directories(tmp_path: Path) -> None:
    for name in ["train.py", "api_pb2.py", "tests/fixtures/bad.py", "tests/test_ok.py", "third_party/x/y.py"]:
        write(tmp_path, name)
    found = find_python_files([tmp_path], exclude=["*_pb2.py", "tests/fixtures/*", "third_party"])
    assert relative_files(found, tmp_path) == ["tests/test_ok.py", "train.py"]
    assert found.errors == []


def test_prefilter_skips_files_that_never_mention_checked_libraries(tmp_path: Path) -> None:
    write(tmp_path, "train.py", USES_PEFT)
    write(tmp_path, "model.py", "from transformers import AutoModelForCausalLM\n")
    write(tmp_path, "sft.py", "import os, trl\n")
    write(tmp_path, "util.py", UNRELATED)
    write(tmp_path, "control.py", "ctrl = 'control'\n")
    found = find_python_files([tmp_path])
    assert relative_files(found, tmp_path) == ["model.py", "sft.py", "train.py"]
    assert found.skipped == 2
    unfiltered = find_python_files([tmp_path], prefilter=False)
    assert len(unfiltered.files) == 5 and unfiltered.skipped == 0


@pytest.mark.parametrize(
    "source",
    [
        "import peft\n",
        "from peft import PeftModel\n",
        "import transformers as tf\n",
        "from transformers import AutoModel\n",
        "import trl\n",
        "from trl import SFTTrainer\n",
        "import os, trl\n",
        "import os,trl\n",
        "from peft.tuners.lora import LoraConfig\n",
    ],
)
def test_every_import_of_a_checked_library_passes_the_prefilter(tmp_path: Path, source: str) -> None:
    path = write(tmp_path, "script.py", source)
    assert mentions_checked_libraries([path]) == [True]
    assert any(needle in source.encode() for needle in PREFILTER_NEEDLES)


def test_explicit_file_is_checked_whatever_its_name_or_ignore_rules(tmp_path: Path) -> None:
    script = write(tmp_path, "train_script", USES_PEFT)  # no .py extension
    ignored = write(tmp_path, "ignored.py", USES_PEFT)
    excluded = write(tmp_path, "api_pb2.py", USES_PEFT)
    (tmp_path / ".gitignore").write_text("ignored.py\n")
    found = find_python_files([str(script), ignored, excluded], exclude=["*_pb2.py"])
    assert found.files == sorted([str(script), str(ignored), str(excluded)])
    assert found.errors == []


def test_explicit_file_goes_through_the_prefilter(tmp_path: Path) -> None:
    unrelated = write(tmp_path, "util.py", UNRELATED)
    found = find_python_files([unrelated])
    assert found.files == [] and found.skipped == 1
    assert find_python_files([unrelated], prefilter=False).files == [str(unrelated)]


def test_relative_paths_are_returned_without_dot_components(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "pkg/train.py")
    monkeypatch.chdir(tmp_path)
    found = find_python_files([".", "./pkg/train.py"])
    assert found.files == [os.path.join("pkg", "train.py")]


def test_missing_path_is_an_error_and_other_paths_still_run(tmp_path: Path) -> None:
    train = write(tmp_path, "train.py")
    missing = tmp_path / "nope"
    found = find_python_files([missing, train])
    assert found.files == [str(train)]
    assert found.errors == [(str(missing), "No such file or directory")]


def test_invalid_exclude_pattern_is_an_error_not_an_exception(tmp_path: Path) -> None:
    write(tmp_path, "train.py")
    found = find_python_files([tmp_path], exclude=["[unclosed"])
    assert relative_files(found, tmp_path) == ["train.py"]
    assert len(found.errors) == 1 and "invalid exclude pattern" in found.errors[0][1]


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_symlink_loop_is_reported_and_does_not_hang(tmp_path: Path) -> None:
    write(tmp_path, "pkg/train.py")
    (tmp_path / "pkg" / "back").symlink_to(tmp_path, target_is_directory=True)
    self_link = tmp_path / "self.py"
    self_link.symlink_to(self_link)
    # In a child process, so a walker that followed the loop forever fails this test instead of hanging the run.
    program = (
        "import json, sys; from peftfix.source.discovery import find_python_files; "
        "found = find_python_files(sys.argv[1:]); print(json.dumps([found.files, found.errors]))"
    )
    child = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path), str(self_link)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    files, errors = json.loads(child.stdout)
    assert [Path(file).relative_to(tmp_path).as_posix() for file in files] == ["pkg/train.py"]
    reported = {Path(path).name: reason for path, reason in errors}
    assert set(reported) == {"back", "self.py"}, errors
    assert "symlink loop" in reported["back"]


def test_unreadable_file_passes_the_prefilter_so_the_checker_reports_it(tmp_path: Path) -> None:
    missing = tmp_path / "vanished.py"
    assert _native.mentions([str(missing)], list(PREFILTER_NEEDLES)) == [True]


def test_wrong_argument_types_raise_type_error() -> None:
    with pytest.raises(TypeError):
        _native.walk("not-a-list")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        _native.mentions(["a.py"], ["str-needle"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        _native.find_candidates(["."])  # type: ignore[call-arg]  # needles is required
