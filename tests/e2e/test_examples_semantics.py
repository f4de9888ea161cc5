"""The fixable examples go wrong the way their docstring says, and `peftfix --apply` makes them right.

Each test copies one script from ``examples/`` into a temporary directory, runs it for real (CPU, tiny Llama
from ``tests/conftest.py``), checks the *before* behaviour, runs ``peftfix --apply`` on the copy, checks that a
second ``--apply`` changes nothing, and runs the fixed script again to check the *after* behaviour.

The "before" figures are what the installed libraries do; where they differ between versions (transformers 5 fails
PF101 earlier than 4.x's ``TypeError``) both forms are accepted and the test says so.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN_TIMEOUT = 300


def run_script(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def figures(result: subprocess.CompletedProcess) -> dict:
    """The JSON object on the script's last stdout line (the script must have succeeded)."""
    assert result.returncode == 0, f"script failed:\n{result.stderr[-4000:]}"
    lines = result.stdout.strip().splitlines()
    assert lines, f"script printed nothing:\n{result.stderr[-4000:]}"
    return json.loads(lines[-1])


def failure(result: subprocess.CompletedProcess) -> str:
    """The script's traceback (the script must have failed)."""
    assert result.returncode != 0, f"script was expected to fail but printed:\n{result.stdout[-2000:]}"
    return result.stderr


def peftfix_apply(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "peftfix", "--apply", str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def apply_and_check_idempotent(path: Path, env: dict[str, str]) -> str:
    """Run `peftfix --apply` on ``path``; it must fix everything it reports, and a second run changes nothing."""
    before = path.read_text()
    first = peftfix_apply(path, env)
    after = path.read_text()
    report = f"exit {first.returncode}\nstdout:\n{first.stdout}\nstderr:\n{first.stderr}"
    assert after != before, f"peftfix --apply did not change {path.name}\n{report}"
    assert first.returncode == 0, f"findings remain after --apply on {path.name}\n{report}"
    second = peftfix_apply(path, env)
    assert path.read_text() == after, f"a second --apply changed {path.name} again"
    assert second.returncode == 0, f"second --apply: exit {second.returncode}\n{second.stdout}\n{second.stderr}"
    return after


@pytest.fixture
def example(tmp_path):
    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copyfile(EXAMPLES / name, target)
        return target

    return copy


def test_automodel_labels(example, example_env):
    """PF101: a bare LlamaModel under a CAUSAL_LM LoRA cannot train on labels."""
    script = example("automodel_labels.py")

    error = failure(run_script(script, example_env))
    # transformers 4.x: "TypeError: LlamaModel.forward() got an unexpected keyword argument 'labels'".
    # transformers 5: LlamaModel is no longer a GenerationMixin, so get_peft_model(..., task_type="CAUSAL_LM")
    # fails first with "'LlamaModel' object has no attribute 'prepare_inputs_for_generation'".
    assert ("TypeError" in error and "'labels'" in error) or (
        "AttributeError" in error and "'LlamaModel' object has no attribute 'prepare_inputs_for_generation'" in error
    ), error[-4000:]

    fixed = apply_and_check_idempotent(script, example_env)
    assert "AutoModel.from_pretrained" not in fixed

    after = figures(run_script(script, example_env))
    assert after["trainable_params"] > 0
    assert 0.0 < after["loss"] < 100.0


def test_stray_get_peft_model(example, example_env):
    """PF201: get_peft_model before PeftModel.from_pretrained leaves the trained adapter unapplied."""
    script = example("stray_get_peft_model.py")

    before = figures(run_script(script, example_env))
    assert before["max_abs_delta"] == 0.0

    fixed = apply_and_check_idempotent(script, example_env)
    assert "get_peft_model(base" not in fixed

    after = figures(run_script(script, example_env))
    assert after["max_abs_delta"] > 1e-3


def test_frozen_adapter(example, example_env):
    """PF203: an adapter loaded without is_trainable=True is trained -- and nothing changes."""
    script = example("frozen_adapter.py")

    before = figures(run_script(script, example_env))
    assert before["trainable_params"] == 0
    assert before["max_weight_update"] == 0.0

    fixed = apply_and_check_idempotent(script, example_env)
    assert "is_trainable=True" in fixed

    after = figures(run_script(script, example_env))
    assert after["trainable_params"] > 0
    assert after["max_weight_update"] > 0.0


def test_resize_before_load(example, example_env, resized_adapter):
    """PF401: an adapter saved with a resized vocabulary needs resize_token_embeddings first."""
    script = example("resize_before_load.py")
    env = {**example_env, "PEFTFIX_ADAPTER": resized_adapter}

    error = failure(run_script(script, env))
    assert "size mismatch" in error and "embed_tokens" in error, error[-4000:]

    fixed = apply_and_check_idempotent(script, env)
    assert "resize_token_embeddings(len(tokenizer))" in fixed

    after = figures(run_script(script, env))
    assert after["vocab_size"] == 136  # RESIZED_VOCAB in tests/conftest.py: 128 + 8 added tokens
    assert after["max_abs_delta"] > 1e-3
