"""action.yml, the GitHub Action: its structure, and its scripts run here as the runner would run them.

The runner itself is not available to the tests; what it adds (setup-python, inputs, step outputs) is stood in
for by the environment each script reads: PEFTFIX, ARGS and SARIF_FILE for the run step, PYTHON, VERSION,
ACTION_PATH, RUNNER_TEMP and GITHUB_OUTPUT for the install step (with a stand-in `python` that records the pip
install instead of reaching PyPI).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml
from tests.cli.sarif_schema import SARIF_2_1_0_SUBSET

if sys.version_info >= (3, 11):
    import tomllib
else:  # a dependency of peftfix on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
STEPS = ACTION["runs"]["steps"]
PITFALL = (ROOT / "examples" / "stray_get_peft_model.py").read_text(encoding="utf-8")  # PF201 at 39:13
CLEAN = "from peft import PeftModel\nmodel = PeftModel.from_pretrained(base, 'adapter')\n"
# How the runner starts a `shell: bash` step.
RUNNER_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]


def step(name: str) -> dict:
    return next(entry for entry in STEPS if entry.get("name") == name)


def scripts() -> dict[str, str]:
    return {entry["name"]: entry["run"] for entry in STEPS if "run" in entry}


def run_script(script: str, env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "step.sh"
    path.write_text(script, encoding="utf-8")
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [*RUNNER_BASH, str(path)], env={**base, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )


# --- structure ------------------------------------------------------------------------------------------------


def test_is_a_composite_action_whose_scripts_are_bash():
    assert ACTION["runs"]["using"] == "composite"
    assert ACTION["name"] and ACTION["description"]
    assert scripts(), "no step runs a script"
    for entry in STEPS:
        assert ("run" in entry) != ("uses" in entry), entry
        if "run" in entry:
            assert entry["shell"] == "bash", entry["name"]  # a composite step must name its shell
    setup = next(entry for entry in STEPS if "uses" in entry)
    assert setup["uses"].startswith("actions/setup-python@")
    assert setup["with"]["update-environment"] is False  # the job's own Python is left alone


def test_every_input_is_used_and_every_use_is_declared():
    text = yaml.safe_dump(STEPS)
    used = set(re.findall(r"\binputs\.([\w-]+)", text))
    declared = set(ACTION["inputs"])
    assert used == declared
    assert {"args", "version", "sarif-file", "python-version"} <= declared
    for name, spec in ACTION["inputs"].items():
        assert spec["description"] and "default" in spec, name


def test_inputs_reach_scripts_through_the_environment_only():
    # `${{ inputs.args }}` inside a script would be pasted into its text: shell injection from a workflow file.
    for name, script in scripts().items():
        assert "${{" not in script, name


@pytest.mark.parametrize("name", list(scripts()))
def test_script_is_valid_bash(name):
    result = subprocess.run(["bash", "-n"], input=scripts()[name], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_peftfix_options_used_by_the_action_exist():
    help_text = subprocess.run(
        [sys.executable, "-m", "peftfix", "check", "--help"], capture_output=True, text=True, check=True
    ).stdout
    invocations = [line for script in scripts().values() for line in script.splitlines() if '"$PEFTFIX" check' in line]
    flags = {flag for line in invocations for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", line)}
    assert {"--format", "--exit-zero"} <= flags
    for flag in flags:
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text), flag
    choices = re.search(r"--format \[([^\]]+)\]", help_text)
    assert choices is not None
    used_formats = {value for line in invocations for value in re.findall(r"--format (\w+)", line)}
    assert used_formats == {"github", "sarif"} and used_formats <= set(choices[1].split("|"))


# --- the run step -------------------------------------------------------------------------------------------------


@pytest.fixture
def peftfix_command(tmp_path) -> str:
    """An executable that is this interpreter's peftfix, as the install step's output would name one."""
    wrapper = tmp_path / "bin" / "peftfix"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m peftfix "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    return str(wrapper)


@pytest.fixture
def checkout(tmp_path) -> Path:
    (tmp_path / "train.py").write_text(PITFALL, encoding="utf-8")
    (tmp_path / "clean.py").write_text(CLEAN, encoding="utf-8")
    return tmp_path


def run_step(peftfix: str, checkout: Path, args: str, sarif_file: str = "") -> subprocess.CompletedProcess[str]:
    env = {"PEFTFIX": peftfix, "ARGS": args, "SARIF_FILE": sarif_file}
    return run_script(step("Run peftfix")["run"], env, checkout)


def annotations(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("::")]


def test_findings_become_annotations_and_sarif_and_fail_the_step(peftfix_command, checkout):
    result = run_step(peftfix_command, checkout, "train.py clean.py", sarif_file="peftfix.sarif")
    assert result.returncode == 1, result.stderr
    (annotation,) = annotations(result)
    assert annotation.startswith("::error title=peftfix (PF201),file=train.py,line=39,col=13,")
    log = json.loads((checkout / "peftfix.sarif").read_text(encoding="utf-8"))
    jsonschema.validate(log, SARIF_2_1_0_SUBSET)
    assert [entry["ruleId"] for entry in log["runs"][0]["results"]] == ["PF201"]


def test_a_clean_checkout_passes_with_an_empty_sarif_log(peftfix_command, checkout):
    result = run_step(peftfix_command, checkout, "clean.py", sarif_file="peftfix.sarif")
    assert result.returncode == 0, result.stderr
    assert annotations(result) == []
    assert json.loads((checkout / "peftfix.sarif").read_text(encoding="utf-8"))["runs"][0]["results"] == []


def test_args_are_split_on_blanks_and_newlines(peftfix_command, checkout):
    # PF201 is not selected: were `--select PF3` not passed as two words, the step would report it (or fail).
    result = run_step(peftfix_command, checkout, "train.py\n  --select\tPF3\n")
    assert result.returncode == 0, result.stderr
    assert annotations(result) == []


def test_an_unwritable_sarif_file_still_annotates_first_and_fails(peftfix_command, checkout):
    result = run_step(peftfix_command, checkout, "train.py", sarif_file="missing-dir/peftfix.sarif")
    assert result.returncode == 1
    first, error = annotations(result)
    assert first.startswith("::error title=peftfix (PF201),file=train.py")
    assert error.startswith("::error title=peftfix::the SARIF log missing-dir/peftfix.sarif was not written")

    clean = run_step(peftfix_command, checkout, "clean.py", sarif_file="missing-dir/peftfix.sarif")
    assert clean.returncode != 0  # nothing to annotate, but the log a later upload expects is missing
    (only,) = annotations(clean)
    assert only.startswith("::error title=peftfix::the SARIF log missing-dir/peftfix.sarif was not written")


# --- the install step ---------------------------------------------------------------------------------------------

# Stands in for setup-python's interpreter: `-m venv DIR` makes DIR/bin/python (this script again), and
# `-m pip install ...` records its arguments.
FAKE_PYTHON = """\
#!/bin/sh
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin" && cp "$0" "$3/bin/python"
elif [ "$1 $2 $3" = "-m pip install" ]; then
    shift 3 && echo "$@" >> "$PIP_LOG"
else
    exit 9
fi
"""


@pytest.mark.parametrize(
    "version, expected",
    [
        ("", "peftfix=={own_version}"),
        ("latest", "peftfix"),
        ("0.2.0", "peftfix==0.2.0"),
        ("source", "{action_path}"),
    ],
)
def test_install_step_installs_the_version_asked_for(tmp_path, version, expected):
    python = tmp_path / "python"
    python.write_text(FAKE_PYTHON, encoding="utf-8")
    python.chmod(0o755)
    outputs, pip_log = tmp_path / "outputs", tmp_path / "pip.log"
    env = {
        "PYTHON": str(python),
        "VERSION": version,
        "ACTION_PATH": str(ROOT),
        "RUNNER_TEMP": str(tmp_path / "runner-temp"),
        "GITHUB_OUTPUT": str(outputs),
        "PIP_LOG": str(pip_log),
    }
    (tmp_path / "runner-temp").mkdir()
    result = run_script(step("Install peftfix")["run"], env, tmp_path)
    assert result.returncode == 0, result.stderr

    own_version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    spec = expected.format(own_version=own_version, action_path=ROOT)
    assert pip_log.read_text(encoding="utf-8").split() == ["--quiet", "--disable-pip-version-check", spec]
    assert outputs.read_text(encoding="utf-8") == f"peftfix={tmp_path}/runner-temp/peftfix-action/bin/peftfix\n"
