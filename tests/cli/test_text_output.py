"""The text output as Ruff prints it: the full format (source lines, markers under the span, help, fixes as diffs),
the concise format, colour rules, --statistics, --show-fixes and --exit-non-zero-on-fix — through the real CLI on
real rule findings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

import nbformat
import pytest

STRAY = textwrap.dedent("""\
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")
    config = LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"])
    model = get_peft_model(base, config)
    model = PeftModel.from_pretrained(model, "out/adapter")
    """)
RANK = textwrap.dedent("""\
    from peft import LoraConfig

    config = LoraConfig(
        r=1024,
        target_modules=["q_proj", "v_proj"],
    )
    """)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], cwd: Path, stdin: bytes | None = None, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key not in ("NO_COLOR", "FORCE_COLOR")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "--no-cache", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=stdin is None,
        env=environment,
        timeout=120,
    )


def test_full_format_shows_the_lines_with_markers_under_the_span_and_the_fix_as_help(tmp_path):
    (tmp_path / "train.py").write_text(STRAY)
    out = run(["train.py"], tmp_path).stdout
    expected = textwrap.dedent("""\
        train.py:6:9: PF201 [*] `get_peft_model` wraps""")
    assert out.startswith(expected)
    snippet = out.split("\n", 1)[1].split("\n\n")[0]
    assert snippet == textwrap.dedent("""\
          |
        4 | base = AutoModelForCausalLM.from_pretrained("facebook/opt-125m")
        5 | config = LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"])
        6 | model = get_peft_model(base, config)
          |         ^^^^^^^^^^^^^^^^^^^^^^^^^^^^ PF201
        7 | model = PeftModel.from_pretrained(model, "out/adapter")
          |
          = help: Remove the stray `get_peft_model` call""")
    assert out.rstrip().endswith("[*] 1 fixable with the `--apply` option.")


def test_concise_format_is_one_line_per_finding(tmp_path):
    (tmp_path / "train.py").write_text(STRAY)
    (tmp_path / "rank.py").write_text(RANK)
    lines = run(["--output-format", "concise", "."], tmp_path).stdout.splitlines()
    assert [line.split(" ", 2)[:2] for line in lines[:2]] == [["rank.py:3:10:", "PF302"], ["train.py:6:9:", "PF201"]]
    assert lines[2:] == ["Found 2 errors.", "[*] 1 fixable with the `--apply` option."]


def test_a_span_over_several_lines_is_drawn_with_a_lane(tmp_path):
    (tmp_path / "rank.py").write_text(RANK)
    out = run(["rank.py"], tmp_path).stdout
    assert (
        textwrap.dedent("""\
          |
        1 |   from peft import LoraConfig
        2 |
        3 |   config = LoraConfig(
          |  __________^
        4 | |     r=1024,
        5 | |     target_modules=["q_proj", "v_proj"],
        6 | | )
          | |_^ PF302
          |""")
        in out
    )


def test_markers_stay_under_the_span_after_wide_characters_and_tabs(tmp_path):
    source = STRAY.replace("model = get_peft_model(base, config)", "名前 = 1;\tmodel = get_peft_model(base, config)")
    (tmp_path / "train.py").write_text(source)
    out = run(["train.py"], tmp_path).stdout
    code_line = next(line for line in out.splitlines() if line.startswith("6 |"))
    marker_line = out.splitlines()[out.splitlines().index(code_line) + 1]
    # Two wide characters take four columns and the tab four: the carets start under `get_peft_model`.
    before = code_line[: code_line.index("get_peft_model")]
    assert len(before) + sum(unicodedata.east_asian_width(char) == "W" for char in before) == marker_line.index("^")
    assert out.splitlines()[0].startswith("train.py:6:17: PF201")  # columns count characters, as Ruff's


def test_a_notebook_finding_shows_its_cell_lines_numbered_within_the_cell(tmp_path):
    nb = nbformat.v4.new_notebook()
    head, tail = STRAY.split("model = get_peft_model")
    nb.cells = [
        nbformat.v4.new_code_cell(head.rstrip("\n")),
        nbformat.v4.new_markdown_cell("# wrap"),
        nbformat.v4.new_code_cell("model = get_peft_model" + tail.rstrip("\n")),
    ]
    nbformat.write(nb, str(tmp_path / "nb.ipynb"))
    out = run(["nb.ipynb"], tmp_path).stdout
    assert out.startswith("nb.ipynb:cell 3:1:9: PF201 [*]")
    assert "1 | model = get_peft_model(base, config)\n  |         ^^^^" in out
    assert "2 | model = PeftModel.from_pretrained(model" in out


def test_stdin_findings_show_the_stdin_text(tmp_path):
    result = run(["--stdin-filename", "train.py", "-"], tmp_path, stdin=STRAY.encode())
    assert b"6 | model = get_peft_model(base, config)" in result.stdout


def test_show_fixes_shows_each_fix_as_a_diff_and_lists_what_apply_fixed(tmp_path):
    (tmp_path / "train.py").write_text(STRAY)
    out = run(["--show-fixes", "train.py"], tmp_path).stdout
    assert (
        textwrap.dedent("""\
        ℹ Safe fix
        1   |- from peft import LoraConfig, PeftModel, get_peft_model
          1 |+ from peft import LoraConfig, PeftModel
        2 2 |  from transformers import AutoModelForCausalLM
         ...
        5 5 |  config = LoraConfig(task_type="CAUSAL_LM", r=8, target_modules=["q_proj", "v_proj"])
        6   |- model = get_peft_model(base, config)
        7   |- model = PeftModel.from_pretrained(model, "out/adapter")
          6 |+ model = PeftModel.from_pretrained(base, "out/adapter")""")
        in out
    )

    result = run(["--apply", "--show-fixes", "train.py"], tmp_path)
    assert result.returncode == 0
    assert result.stdout.startswith("Fixed 1 error:\n- train.py:\n    1 × PF201 (stray-get-peft-model)\n")


def test_exit_non_zero_on_fix_exits_1_when_something_was_fixed(tmp_path):
    (tmp_path / "train.py").write_text(STRAY)
    assert run(["--apply", "--exit-non-zero-on-fix", "train.py"], tmp_path).returncode == 1
    assert "get_peft_model(base" not in (tmp_path / "train.py").read_text()
    assert run(["--apply", "--exit-non-zero-on-fix", "train.py"], tmp_path).returncode == 0  # nothing left to fix
    (tmp_path / "train.py").write_text(STRAY)
    assert run(["--apply", "train.py"], tmp_path).returncode == 0


def test_statistics_count_each_code_in_text_and_json(tmp_path):
    (tmp_path / "a.py").write_text(STRAY)
    (tmp_path / "b.py").write_text(STRAY)
    (tmp_path / "rank.py").write_text(RANK)
    result = run(["--statistics", "."], tmp_path)
    assert result.returncode == 1
    assert result.stdout == "2\tPF201\t[*] stray-get-peft-model\n1\tPF302\t    excessive-rank\n"
    result = run(["--statistics", "--format", "json", "."], tmp_path)
    assert json.loads(result.stdout) == [
        {"code": "PF201", "name": "stray-get-peft-model", "count": 2, "fixable": True},
        {"code": "PF302", "name": "excessive-rank", "count": 1, "fixable": False},
    ]
    result = run(["--statistics", "--format", "sarif", "."], tmp_path)
    assert result.returncode == 2 and "--statistics" in result.stderr


@pytest.mark.parametrize(
    ("env", "coloured"),
    [
        ({}, False),
        ({"FORCE_COLOR": "1"}, True),
        ({"NO_COLOR": "1", "FORCE_COLOR": "1"}, False),
        ({"NO_COLOR": ""}, False),
    ],
)
def test_colour_follows_no_color_and_force_color(tmp_path, env, coloured):
    (tmp_path / "train.py").write_text(STRAY)
    out = run(["train.py"], tmp_path, **env).stdout  # stdout is a pipe: no colour unless forced
    assert bool(ANSI.search(out)) is coloured
    assert ANSI.sub("", out) == run(["train.py"], tmp_path).stdout
