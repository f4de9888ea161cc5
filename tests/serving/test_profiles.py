"""PS001-PS005 on adapters saved by real PEFT from tiny real models, for each server profile.

Each row: an adapter, the base it is served on, the server, and the (code, effect) pairs the profile must give;
the cases follow the servers' own code and tests (cited in the profiles).
"""

from __future__ import annotations

import pytest

from peftfix.serving import ProfileError, check_serving, profiles, select

CASES = [
    # adapter, base, server, expected (code, effect)
    ("llama-qv", "llama", "vllm", set()),
    ("llama-dora", "llama", "vllm", {("PS002", "reject")}),
    ("llama-mts", "llama", "vllm", {("PS002", "reject")}),
    ("qwen2-qkv", "qwen2", "vllm", {("PS002", "reject")}),  # lora_bias
    ("llama-r32", "llama", "vllm", {("PS003", "reject")}),
    ("llama-rslora", "llama", "vllm", set()),
    ("llama-rank-pattern", "llama", "vllm", set()),
    ("llama-embedding", "llama", "vllm", set()),  # Llama lists embed_tokens among its embedding modules
    ("qwen2-embedding", "qwen2", "vllm", {("PS001", "reject")}),  # Qwen2 does not
    ("llama-trainable-tokens", "llama", "vllm", {("PS002", "reject")}),
    ("resized", "llama", "vllm", {("PS002", "reject")}),  # modules_to_save and the added vocabulary
    ("automodel", "llama", "vllm", {("PS004", "no-op")}),  # `layers.0...`: no such module in the served model
    ("llama-bin", "llama", "vllm", set()),
    ("llama-pissa", "llama", "vllm", {("PS002", "reject")}),  # PiSSA changes the base weights
    ("llama-bias-all", "llama", "vllm", {("PS002", "reject")}),
    ("llama-named", "llama", "vllm", {("PS005", "reject")}),  # the adapter sits in `chat/`
    ("llama-sharded", "llama", "vllm", {("PS005", "reject")}),
    ("no-lora-alpha", "llama", "vllm", {("PS005", "reject")}),
    ("gpt2-c-attn", "gpt2", "vllm", {("PS001", "reject")}),  # vLLM's GPT-2 class does not implement SupportsLoRA
    ("llama-qv", "llama", "sglang", set()),
    ("llama-q-only", "llama", "sglang", {("PS001", "reject")}),  # q_proj without v_proj: KeyError (#25913)
    ("llama-dora", "llama", "sglang", {("PS002", "reject")}),
    ("llama-rslora", "llama", "sglang", {("PS002", "ignore")}),
    ("llama-rank-pattern", "llama", "sglang", {("PS002", "reject")}),
    ("llama-mts", "llama", "sglang", {("PS002", "ignore")}),
    # get_hidden_dim is not implemented for c_attn; and GPT-2 keys have no `layers.N.`, which SGLang places keys by.
    ("gpt2-c-attn", "gpt2", "sglang", {("PS001", "reject"), ("PS004", "no-op")}),
    ("automodel", "llama", "sglang", set()),  # SGLang places keys by `layers.N.`: the prefix does not matter
    ("llama-sharded", "llama", "sglang", set()),
    ("llama-r32", "llama", "sglang", set()),
    ("tied-lm-head-lora", "llama-tied", "sglang", set()),  # test_lora_tied_lm_head.py
    ("tied-lm-head-lora", "llama-tied", "vllm", set()),  # Llama lists lm_head among its embedding modules
    ("tied-lm-head-lora", "llama-tied", "lorax", set()),
    ("llama-qv", "llama", "lorax", set()),
    ("llama-dora", "llama", "lorax", {("PS002", "ignore")}),
    ("llama-embedding", "llama", "lorax", {("PS001", "ignore")}),
    ("automodel", "llama", "lorax", {("PS004", "no-op")}),
    ("llama-sharded", "llama", "lorax", set()),
    ("llama-named", "llama", "lorax", {("PS005", "reject")}),
    # layers_to_transform=[0]: LoraWeights.load drops q_proj and v_proj from every layer when one layer lacks them.
    ("llama-layers0", "llama", "lorax", {("PS004", "no-op")}),
    ("llama-layers0", "llama", "vllm", set()),
    ("llama-layers0", "llama", "sglang", set()),
]


def _codes(findings):
    return {(finding.code, finding.details["effect"]) for finding in findings}


@pytest.mark.parametrize(
    ("adapter", "base", "server", "expected"), CASES, ids=lambda v: str(v) if isinstance(v, str) else ""
)
def test_profile_gives_the_expected_findings(checkpoints, adapter, base, server, expected):
    findings = check_serving(checkpoints.adapters[adapter], checkpoints.bases[base], server)
    assert _codes(findings) == expected, [f.message for f in findings]
    for finding in findings:
        assert finding.message.startswith(f"{finding.details['server']} {finding.details['version']}: ")
        assert "::" in finding.details["source"]  # the server function the rule encodes


def test_rank_limit_names_the_smallest_allowed_flag(checkpoints):
    (finding,) = check_serving(checkpoints.adapters["llama-r32"], checkpoints.bases["llama"], "vllm")
    assert finding.details["flag"] == "--max-lora-rank 32"
    assert "LoRA rank 32 is greater than max_lora_rank 16." in finding.message


def test_every_server_has_a_profile_and_the_newest_is_the_default():
    assert {profile.server for profile in profiles()} == {"vllm", "sglang", "lorax"}
    assert select("vllm") == select("vllm==0.34.0")
    older = select("vllm==0.32.0")  # extends 0.34.0: only the text fallback differs
    assert (older.rank, older.features, older.files) == (
        select("vllm").rank,
        select("vllm").features,
        select("vllm").files,
    )
    assert not older.paths.text_fallback and select("vllm").paths.text_fallback
    assert select(" VLLM ").server == "vllm"
    with pytest.raises(ProfileError, match="choose one of"):
        select("tgi")
    with pytest.raises(ProfileError, match=r"profiles exist for 0\.32\.0, 0\.34\.0"):
        select("vllm==0.1.0")


def test_check_adapter_adds_the_serving_findings_after_the_key_check(checkpoints):
    from peftfix import check_adapter

    report = check_adapter(checkpoints.adapters["resized"], checkpoints.bases["llama"], server="vllm")
    codes = report.codes
    assert "PK003" in codes and "PS002" in codes
    assert codes.index("PK003") < codes.index("PS002")


def test_keys_cli_reports_serving_findings_and_refuses_an_unknown_server(checkpoints):
    from click.testing import CliRunner

    from peftfix.cli import cli

    adapter, base = str(checkpoints.adapters["llama-dora"]), str(checkpoints.bases["llama"])
    result = CliRunner().invoke(cli, ["keys", adapter, "--base", base, "--server", "vllm", "--format", "json"])
    assert result.exit_code == 1, result.output
    assert '"PS002"' in result.output and "vLLM does not yet support DoRA." in result.output
    result = CliRunner().invoke(cli, ["keys", adapter, "--base", base, "--server", "tgi"])
    assert result.exit_code == 2 and "unknown server 'tgi'" in result.output


def test_vllm_refuses_keys_it_cannot_parse(checkpoints):
    # Saved under the adapter name "lora" by PEFT before 0.18: `q_proj_A.weight` is no LoRA weight vLLM parses.
    findings = check_serving(checkpoints.adapters["adapter-named-lora"], checkpoints.bases["llama"], "vllm")
    assert _codes(findings) == {("PS005", "reject")}
    assert "is unsupported LoRA weight" in findings[0].message and "PK002" in findings[0].message


def test_vllm_drops_vision_tower_lora_without_the_flag(llava):
    findings = check_serving(llava["full"], llava["base"], "vllm")
    assert _codes(findings) == {("PS001", "ignore")}, [f.message for f in findings]
    assert findings[0].details["flag"] == "--enable-tower-connector-lora"
    assert all("vision_tower" in module for module in findings[0].details["modules"])


def test_vllm_finds_a_text_only_adapter_under_the_llava_wrapper(llava):
    # Since vLLM 0.33 a multimodal wrapper also looks its text modules up by their text-only names.
    assert check_serving(llava["text"], llava["base"], "vllm") == []


def test_vllm_applies_an_automodel_adapter_on_llava_to_nothing(llava):
    findings = check_serving(llava["automodel"], llava["base"], "vllm")
    assert _codes(findings) == {("PS004", "no-op")}
    assert findings[0].details["count"] == findings[0].details["total"] == 4


def test_vllm_before_0_33_applies_a_text_only_adapter_on_llava_to_nothing(llava):
    # vLLM issues #34186 and #48019: the rename map has no `model.` rule for LLaVA, and 0.32 has no fallback.
    findings = check_serving(llava["text"], llava["base"], "vllm==0.32.0")
    assert _codes(findings) == {("PS004", "no-op")}
    assert check_serving(llava["full"], llava["base"], "vllm==0.32.0")[0].details["effect"] == "ignore"


def test_lorax_does_not_serve_adapters_on_llava(llava):
    findings = check_serving(llava["full"], llava["base"], "lorax")
    assert _codes(findings) == {("PS001", "reject")}
    assert "does not support adapter loading" in findings[0].message


@pytest.mark.parametrize(
    "config_text",
    ["{not json", "[1, 2]", '{"r": "8", "lora_alpha": null, "target_modules": 5, "use_dora": "yes"}', ""],
    ids=["invalid-json", "a-list", "wrong-types", "empty"],
)
@pytest.mark.parametrize("server", ["vllm", "sglang", "lorax"])
def test_a_broken_config_gives_findings_not_a_traceback(checkpoints, tmp_path, config_text, server):
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    (adapter / "adapter_config.json").write_text(config_text)
    findings = check_serving(adapter, checkpoints.bases["llama"], server)
    assert all(f.code.startswith("PS") and f.details["effect"] in ("reject", "ignore", "no-op") for f in findings)


def test_the_serving_checks_read_local_files_only(checkpoints):
    from peftfix.serving import ServingInputError

    with pytest.raises(ServingInputError, match="local"):
        check_serving("s3://bucket/adapter", checkpoints.bases["llama"], "vllm")


def test_vllm_refuses_config_fields_of_the_wrong_type(checkpoints, tmp_path):
    import json
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "lora_alpha": None}))
    (finding,) = check_serving(adapter, checkpoints.bases["llama"], "vllm")
    assert (finding.code, finding.details["fields"]) == ("PS005", ["lora_alpha"])
    (adapter / "adapter_config.json").write_text("{not json")
    (finding,) = check_serving(adapter, checkpoints.bases["llama"], "vllm")
    assert finding.code == "PS005" and "cannot read" in finding.message


def test_a_fifo_in_place_of_a_config_is_refused_without_hanging(checkpoints, tmp_path):
    import os
    import shutil

    adapter = tmp_path / "adapter"
    shutil.copytree(checkpoints.adapters["llama-qv"], adapter)
    (adapter / "adapter_config.json").unlink()
    os.mkfifo(adapter / "adapter_config.json")
    (finding,) = check_serving(adapter, checkpoints.bases["llama"], "vllm")
    assert finding.code == "PS005" and "cannot read" in finding.message
