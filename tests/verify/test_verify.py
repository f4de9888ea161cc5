"""The runtime verifier (PV001-PV004) on tiny real models: `verify_adapter`, `verify_model`, `peftfix verify`."""

from __future__ import annotations

import json
import warnings

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from click.testing import CliRunner

import peftfix
from peftfix.cli import cli
from peftfix.verify import AdapterVerificationError, VerifyUsageError, verify_adapter, verify_model

HUB_NAME = "meta-llama/Llama-3.2-1B"  # what hub_named_adapter's config names (tests/verify/conftest.py)
RESIZED_VOCAB = 136  # tests/conftest.py: 128 tokens + 8 added

pytestmark = pytest.mark.filterwarnings("ignore")


def _codes(report) -> set[str]:
    return set(report.codes)


def _one(report, code):
    found = [d for d in report.findings if d.code == code]
    assert len(found) == 1, report.codes
    return found[0]


# --- verify_adapter ---------------------------------------------------------------------------------------------


def test_trained_adapter_is_clean(tiny_adapter, tiny_base):
    report = verify_adapter(tiny_adapter, base=tiny_base, device="cpu")
    assert report.findings == []
    d = report.details
    assert d["max_abs_delta"] > 0 and d["mean_abs_delta"] > 0 and d["kl_divergence"] > 0
    assert 0.0 <= d["top1_agreement"] <= 1.0
    assert d["device"] == "cpu" and d["dtype"] == "float32" and d["seconds"] > 0
    assert d["peak_memory_bytes"] is None  # CUDA only
    assert d["lora_layers"] == 4 and d["model_class"] == "AutoModelForCausalLM"
    assert d["probe"].startswith("tokenizer:")  # the base directory's tokenizer


def test_base_from_adapter_config_and_auto_device(tiny_adapter):
    report = verify_adapter(tiny_adapter)  # base_model_name_or_path is the local tiny base
    assert report.ok and report.details["max_abs_delta"] > 0
    assert report.details["device"] in ("cpu", "cuda")


def test_untrained_adapter_pv001_pv003(untrained_adapter, tiny_base):
    report = verify_adapter(untrained_adapter, base=tiny_base, device="cpu")
    assert {"PV001", "PV003"} <= _codes(report)
    pv001 = _one(report, "PV001")
    assert pv001.details["max_abs_delta"] == 0.0
    assert pv001.filename == untrained_adapter and pv001.location is None
    assert "PK004" in report.codes and "PK004" in pv001.details["explained_by"]
    pv003 = _one(report, "PV003")
    assert pv003.details["count"] == pv003.details["total"] == 4
    assert pv003.details["modules"][0] == "model.layers.0.self_attn.q_proj"


def test_prefix_mismatch_pv001_pv002_with_pk001(orig_mod_adapter, tiny_base):
    report = verify_adapter(orig_mod_adapter, base=tiny_base, device="cpu")
    assert {"PK001", "PV001", "PV002"} <= _codes(report)
    assert report.checkpoint is not None and report.checkpoint.rewrite["strip"] == "_orig_mod."
    pv002 = _one(report, "PV002")
    assert pv002.details["missing_keys"] == 8
    assert all("lora_" in key for key in pv002.details["missing_examples"])
    pv001 = _one(report, "PV001")
    assert pv001.details["max_abs_delta"] == 0.0
    assert pv001.details["rewrite"] == {"strip": "_orig_mod.", "add": ""}
    assert "PK001" in pv001.message and pv001.fix is not None and "--write-remapped" in pv001.fix.message


def test_resized_vocabulary_pv004_names_the_size(resized_adapter, tiny_base):
    report = verify_adapter(resized_adapter, base=tiny_base, device="cpu")
    assert report.load_failed
    pv004 = _one(report, "PV004")
    assert pv004.details["resize_to"] == RESIZED_VOCAB
    assert f"resize_token_embeddings({RESIZED_VOCAB})" in pv004.message
    assert "size mismatch" in pv004.details["library_message"]
    assert "max_abs_delta" not in report.details


def test_remapped_adapter_is_clean(remapped_adapter, tiny_base):
    report = verify_adapter(remapped_adapter, base=tiny_base, device="cpu")
    assert report.findings == []
    assert report.details["max_abs_delta"] > 0


def test_deterministic_ids_without_tokenizer(tiny_adapter, tiny_base, tmp_path):
    import shutil
    from pathlib import Path

    base = tmp_path / "base-no-tokenizer"
    base.mkdir()
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (Path(tiny_base) / name).exists():
            shutil.copy(Path(tiny_base) / name, base / name)
    first = verify_adapter(tiny_adapter, base=str(base), device="cpu")
    second = verify_adapter(tiny_adapter, base=str(base), device="cpu")
    assert first.details["probe"] == "token-ids" and first.ok
    assert first.details["positions"] >= 4 * 8  # several sequences
    assert first.details["max_abs_delta"] == second.details["max_abs_delta"]


def test_hub_name_base_is_a_clear_error(hub_named_adapter):
    with pytest.raises(VerifyUsageError, match="--base"):
        verify_adapter(hub_named_adapter)


def test_lazy_reexports():
    assert peftfix.verify_adapter is verify_adapter
    assert peftfix.verify_model is verify_model


# --- verify_model -----------------------------------------------------------------------------------------------


def _base_model(tiny_base):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_base)


def test_verify_model_loaded_adapter_is_clean(tiny_adapter, tiny_base):
    from peft import PeftModel

    model = PeftModel.from_pretrained(_base_model(tiny_base), tiny_adapter)
    model.train()
    report = verify_model(model, strict=True)
    assert report.ok and report.details["max_abs_delta"] > 0
    assert model.training  # put back as it was


def test_verify_model_with_token_inputs(tiny_adapter, tiny_base):
    import torch
    from peft import PeftModel

    model = PeftModel.from_pretrained(_base_model(tiny_base), tiny_adapter)
    report = verify_model(model, inputs={"input_ids": torch.tensor([[1, 5, 6, 7, 8]])})
    assert report.ok and report.details["positions"] == 5


def test_verify_model_fresh_get_peft_model(tiny_base):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(_base_model(tiny_base), LoraConfig(r=4, target_modules=["q_proj", "v_proj"]))
    report = verify_model(model)
    assert {"PV001", "PV003"} <= _codes(report)
    assert _one(report, "PV001").details["max_abs_delta"] == 0.0
    with pytest.raises(AdapterVerificationError) as raised:
        verify_model(model, strict=True)
    assert "PV001" in raised.value.report.codes
    assert isinstance(raised.value, AssertionError)


def test_stray_get_peft_model_before_from_pretrained(tiny_adapter, tiny_base):
    """Seed: `model = get_peft_model(base, config)` then `PeftModel.from_pretrained(model, adapter)`."""
    from peft import LoraConfig, PeftModel, get_peft_model

    stray = get_peft_model(_base_model(tiny_base), LoraConfig(r=8, target_modules=["q_proj", "v_proj"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PeftModel.from_pretrained(stray, tiny_adapter)
    report = verify_model(model)
    assert "PV001" in report.codes
    assert _one(report, "PV001").details["max_abs_delta"] == 0.0


# --- the command ------------------------------------------------------------------------------------------------


def _run(*args):
    return CliRunner().invoke(cli, ["verify", *args])


def test_cli_clean_exit_0(tiny_adapter, tiny_base):
    result = _run(tiny_adapter, "--base", tiny_base, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "All checks passed!" in result.output and "logit delta max" in result.output


def test_cli_findings_exit_1_json_shape(untrained_adapter, tiny_base):
    result = _run(untrained_adapter, "--base", tiny_base, "--format", "json", "--dtype", "float32")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    by_code = {item["code"]: item for item in data}
    assert {"PV001", "PV003"} <= set(by_code)
    for item in data:
        assert set(item) == {"code", "message", "filename", "severity", "location", "end_location", "fix", "details"}
        assert item["filename"] == untrained_adapter and item["location"] is None
    assert by_code["PV001"]["details"]["max_abs_delta"] == 0.0


def test_cli_load_failure_exit_2(resized_adapter, tiny_base):
    result = _run(resized_adapter, "--base", tiny_base, "--format", "json")
    assert result.exit_code == 2, result.output
    pv004 = [item for item in json.loads(result.stdout) if item["code"] == "PV004"]
    assert pv004 and pv004[0]["details"]["resize_to"] == RESIZED_VOCAB
    assert pv004[0]["fix"]["applicability"] == "display-only"


def test_cli_prefix_mismatch_text(orig_mod_adapter, tiny_base):
    result = _run(orig_mod_adapter, "--base", tiny_base, "--prompt", "hello world the model")
    assert result.exit_code == 1, result.output
    for code in ("PK001", "PV001", "PV002"):
        assert code in result.output


def test_cli_text_gives_the_figures_then_the_findings(untrained_adapter, tiny_base):
    result = _run(untrained_adapter, "--base", tiny_base, "--dtype", "float32")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{untrained_adapter} on {tiny_base} (AutoModelForCausalLM")
    assert "logit delta max 0" in lines[1]
    assert any(line.startswith(f"{untrained_adapter}: PV001 ") for line in lines)
    assert any(line.startswith(f"{untrained_adapter}: PK004 ") for line in lines)


def test_cli_sarif_documents_pv_codes_and_points_at_the_adapter_file(untrained_adapter, tiny_base):
    import jsonschema
    from tests.cli.sarif_schema import SARIF_2_1_0_SUBSET

    result = _run(untrained_adapter, "--base", tiny_base, "--format", "sarif", "--dtype", "float32")
    assert result.exit_code == 1, result.output
    log = json.loads(result.stdout)
    jsonschema.validate(log, SARIF_2_1_0_SUBSET)
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    codes = {entry["ruleId"] for entry in run["results"]}
    assert {"PV001", "PV003", "PK004"} <= codes
    for entry in run["results"]:
        assert rules[entry["ruleIndex"]]["id"] == entry["ruleId"]
        uri = entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert uri.endswith("/adapter_model.safetensors"), uri
    pv001 = next(rule for rule in rules if rule["id"] == "PV001")
    assert pv001["name"] == "no-output-delta" and "disable_adapter" in pv001["help"]["text"]


def test_cli_github_format(untrained_adapter, tiny_base):
    result = _run(untrained_adapter, "--base", tiny_base, "--format", "github", "--dtype", "float32")
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("::error title=peftfix (PV001),file=") for line in lines)
    assert all(line.startswith("::") for line in lines)


def test_cli_hub_name_without_base_exit_2(hub_named_adapter):
    result = _run(hub_named_adapter)
    assert result.exit_code == 2
    assert HUB_NAME in result.output and "--base" in result.output
    assert "Traceback" not in result.output


def test_cli_bad_usage_exit_2(tiny_adapter):
    assert _run(tiny_adapter, "--device", "tpu").exit_code == 2
    assert _run(tiny_adapter, "--base", "/does/not/exist").exit_code == 2


def test_cli_without_the_extra_exit_2(tiny_adapter, monkeypatch):
    import peftfix.verify as verify

    monkeypatch.setattr(verify, "missing_modules", lambda: ["torch", "peft"])
    result = _run(tiny_adapter)
    assert result.exit_code == 2
    assert "peftfix[verify]" in result.output
