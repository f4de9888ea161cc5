"""`peftfix keys` end to end: exit codes, text and JSON reports, --write-remapped, --load-as, bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    # A causal-LM adapter loaded into AutoModel: its `model.` prefix no longer matches.
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


def _adapter_naming(checkpoints, tmp_path, base_name) -> Path:
    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = base_name
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    return adapter


def test_without_base_the_adapter_config_names_it(checkpoints, tmp_path):
    adapter = _adapter_naming(checkpoints, tmp_path, str(checkpoints.bases["llama"]))
    result = keys(str(adapter))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 matched" in result.stdout


def test_without_base_a_hub_id_is_found_in_the_hf_cache_offline(checkpoints, tmp_path):
    """The cache laid out as huggingface_hub lays it out: refs/main holds the commit, snapshots/<commit>/ the files."""
    cache = tmp_path / "hf-cache"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--tiny-org--tiny-llama" / "snapshots" / commit
    shutil.copytree(checkpoints.bases["llama"], snapshot)
    (cache / "models--tiny-org--tiny-llama" / "refs").mkdir()
    (cache / "models--tiny-org--tiny-llama" / "refs" / "main").write_text(commit)
    adapter = _adapter_naming(checkpoints, tmp_path, "tiny-org/tiny-llama")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", str(adapter)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert str(snapshot) in result.stdout  # the base it checked against


def test_without_base_an_unknown_base_is_a_usage_error(checkpoints, tmp_path):
    adapter = _adapter_naming(checkpoints, tmp_path, "nobody/no-such-model")
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "peftfix", "keys", str(adapter)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 2
    assert "nobody/no-such-model" in result.stderr and "give --base" in result.stderr
    assert "Traceback" not in result.stderr


# --- one output layer: the same formats as `peftfix check` --------------------------------------------------------


def test_text_lists_what_was_checked_then_each_finding_with_its_figures(checkpoints):
    adapter = str(checkpoints.adapters["orig-mod"])
    result = keys(adapter, "--base", str(checkpoints.bases["llama"]))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"base {checkpoints.bases['llama']}: ") and "shard" in lines[0]
    assert lines[1].startswith(f"{adapter}: ") and "after rewrite" in lines[1]
    finding = next(line for line in lines if " PK001 " in line)
    assert finding.startswith(f"{adapter}: PK001 ") and "_orig_mod." in finding
    assert lines[-1] == "Found 1 error."


def test_sarif_documents_the_pk_codes_and_points_at_the_adapter_file(checkpoints):
    import jsonschema
    from tests.cli.sarif_schema import SARIF_2_1_0_SUBSET

    adapters = [str(checkpoints.adapters[name]) for name in ("orig-mod", "resized")]
    result = keys(*adapters, "--base", str(checkpoints.bases["llama"]), "--format", "sarif")
    assert result.returncode == 1, result.stderr
    log = json.loads(result.stdout)
    jsonschema.validate(log, SARIF_2_1_0_SUBSET)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    by_id = {rule["id"]: rule for rule in rules}
    assert "## What it does" in by_id["PK001"]["help"]["markdown"]
    results = {result["ruleId"]: result for result in run["results"]}
    assert set(results) == {"PK001", "PK003"}
    for code, adapter in (("PK001", adapters[0]), ("PK003", adapters[1])):
        entry = results[code]
        assert rules[entry["ruleIndex"]]["id"] == code
        uri = entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.endswith(f"{adapter.rstrip('/').split('/')[-1]}/adapter_model.safetensors"), uri
        assert "region" not in entry["locations"][0]["physicalLocation"]
    assert results["PK001"]["properties"]["rewrite"] == {"strip": "_orig_mod.", "add": ""}


def test_github_annotations_name_the_adapter_file(checkpoints):
    adapter = str(checkpoints.adapters["untrained"])
    result = keys(adapter, "--base", str(checkpoints.bases["llama"]), "--format", "github")
    assert result.returncode == 1, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"::error title=peftfix (PK004),file={adapter}/adapter_model.safetensors::PK004 ")


def test_unreadable_base_in_json_is_pk000_and_exit_two(checkpoints):
    adapter = str(checkpoints.adapters["llama-qv"])
    result = keys(adapter, "--base", str(checkpoints.bases["missing-shard"]), "--format", "json")
    assert result.returncode == 2
    (finding,) = json.loads(result.stdout)
    assert finding["code"] == "PK000" and finding["filename"] == adapter
    assert finding["details"]["path"].endswith("model-00002-of-00003.safetensors")


# --- --write-remapped never overwrites, and its failures are ordinary errors ----------------------------------------


def test_adapters_sharing_a_name_get_distinct_targets(checkpoints, tmp_path):
    base = str(checkpoints.bases["llama"])
    first, second = tmp_path / "x" / "ad", tmp_path / "y" / "ad"
    shutil.copytree(checkpoints.adapters["orig-mod"], first)
    shutil.copytree(checkpoints.adapters["orig-mod"], second)
    out = tmp_path / "out"
    result = keys(str(first), str(second), "--base", base, "--write-remapped", str(out))
    assert result.returncode == 1, result.stderr
    assert sorted(path.name for path in out.iterdir()) == ["ad", "ad-2"]
    for written in ("ad", "ad-2"):
        assert keys(str(out / written), "--base", base).returncode == 0


@pytest.mark.parametrize("occupied", ["file", "directory"])
def test_an_existing_target_is_never_overwritten(checkpoints, tmp_path, occupied):
    base = str(checkpoints.bases["llama"])
    out = tmp_path / "fixed"
    if occupied == "file":
        out.write_bytes(b"precious")
    else:
        out.mkdir()
        (out / "notes.txt").write_bytes(b"precious")
    result = keys(str(checkpoints.adapters["orig-mod"]), "--base", base, "--write-remapped", str(out))
    assert result.returncode == 2
    assert "already exists; nothing written" in result.stderr and "internal error" not in result.stderr
    kept = out if occupied == "file" else out / "notes.txt"
    assert kept.read_bytes() == b"precious"


def test_unwritable_target_is_an_ordinary_error(checkpoints, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"x")
    result = keys(
        str(checkpoints.adapters["orig-mod"]),
        "--base",
        str(checkpoints.bases["llama"]),
        "--write-remapped",
        str(blocker / "out"),
    )
    assert result.returncode == 2
    assert "not written to" in result.stderr and "internal error" not in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_write_remapped_is_a_usage_error(checkpoints):
    result = keys(
        str(checkpoints.adapters["orig-mod"]), "--base", str(checkpoints.bases["llama"]), "--write-remapped", ""
    )
    assert result.returncode == 2
    assert "empty path" in result.stderr


def test_writing_over_the_adapter_itself_is_refused(checkpoints, tmp_path):
    adapter = tmp_path / "ad"
    shutil.copytree(checkpoints.adapters["orig-mod"], adapter)
    before = (adapter / "adapter_model.safetensors").read_bytes()
    result = keys(str(adapter), "--base", str(checkpoints.bases["llama"]), "--write-remapped", str(adapter))
    assert result.returncode == 2
    assert "already exists; nothing written" in result.stderr and "internal error" not in result.stderr
    assert (adapter / "adapter_model.safetensors").read_bytes() == before
