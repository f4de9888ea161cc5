"""`peftfix keys` end to end: exit codes, text and JSON reports, --write-remapped, --load-as, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.usefixtures("native")


def keys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "peftfix", "keys", *args], capture_output=True, text=True)


def test_clean_adapter_exits_zero(checkpoints):
    result = keys(str(checkpoints.adapters["llama-qv"]), "--base", str(checkpoints.bases["llama"]))
    assert result.returncode == 0, result.stderr
    assert "All checks passed!" in result.stdout
    assert "4 matched" in result.stdout


def test_findings_in_json_and_several_adapters(checkpoints):
    adapters = [str(checkpoints.adapters[name]) for name in ("llama-qv", "orig-mod", "resized", "untrained")]
    result = keys(*adapters, "--base", str(checkpoints.bases["llama"]), "--format", "json")
    assert result.returncode == 1, result.stderr
    found = {(item["filename"], item["code"]) for item in json.loads(result.stdout)}
    assert found == {(adapters[1], "PK001"), (adapters[2], "PK003"), (adapters[3], "PK004")}
    pk001 = next(item for item in json.loads(result.stdout) if item["code"] == "PK001")
    assert pk001["details"]["rewrite"] == {"strip": "_orig_mod.", "add": ""}
    assert pk001["location"] is None and pk001["fix"] is None
    resize = [item["message"] for item in json.loads(result.stdout) if item["code"] == "PK003"]
    assert any("resize_token_embeddings(136)" in message for message in resize)


def test_write_remapped_gives_a_clean_adapter(checkpoints, tmp_path):
    base = str(checkpoints.bases["llama"])
    out = tmp_path / "fixed"
    result = keys(str(checkpoints.adapters["orig-mod"]), "--base", base, "--write-remapped", str(out))
    assert result.returncode == 1 and "wrote" in result.stderr
    assert (out / "adapter_config.json").is_file()
    assert keys(str(out), "--base", base).returncode == 0


@pytest.mark.parametrize("name", ["ddp-outer", "no-peft-prefix"])
def test_write_remapped_fixes_the_peft_prefix(checkpoints, tmp_path, name):
    # Module paths match as they are: only the PEFT prefix is wrong, so the rewrite is empty yet still applied.
    base = str(checkpoints.bases["llama"])
    result = keys(str(checkpoints.adapters[name]), "--base", base, "--format", "json")
    (finding,) = json.loads(result.stdout)
    assert finding["code"] == "PK001" and finding["details"]["rewrite"] == {"strip": "", "add": ""}
    assert finding["details"]["peft_prefix"]["expected"] == "base_model.model."
    out = tmp_path / "fixed"
    result = keys(str(checkpoints.adapters[name]), "--base", base, "--write-remapped", str(out))
    assert result.returncode == 1 and "wrote" in result.stderr, result.stderr
    assert keys(str(out), "--base", base).returncode == 0


def test_adapter_trained_on_automodel_against_the_causal_lm_checkpoint(checkpoints):
    result = keys(str(checkpoints.adapters["automodel"]), "--base", str(checkpoints.bases["llama"]), "--format", "json")
    (finding,) = json.loads(result.stdout)
    assert finding["code"] == "PK001" and finding["details"]["rewrite"] == {"strip": "", "add": "model."}


def test_load_as_base_model_sees_what_automodel_builds(checkpoints):
    # A causal-LM adapter loaded into AutoModel (seed 002): its `model.` prefix no longer matches.
    result = keys(
        str(checkpoints.adapters["llama-qv"]),
        "--base",
        str(checkpoints.bases["llama"]),
        "--load-as",
        "base-model",
        "--format",
        "json",
    )
    (finding,) = json.loads(result.stdout)
    assert finding["code"] == "PK001" and finding["details"]["rewrite"] == {"strip": "model.", "add": ""}


def test_unreadable_base_exits_two_naming_the_file(checkpoints):
    result = keys(str(checkpoints.adapters["llama-qv"]), "--base", str(checkpoints.bases["missing-shard"]))
    assert result.returncode == 2
    assert "PK000" in result.stdout and "model-00002-of-00003.safetensors" in result.stdout
    assert "Traceback" not in result.stderr


def test_missing_base_option_is_a_usage_error(checkpoints):
    assert keys(str(checkpoints.adapters["llama-qv"])).returncode == 2
