"""What PEFT 0.21 really writes and does, where docs/keys.md is silent or wrong.

These pin down facts about the libraries (so a change in PEFT shows up here first) and mark the matcher
behaviour the contract does not yet cover.
"""

from __future__ import annotations

import json
import warnings

import pytest

from .ckpt_cases import PEFT


def _keys(folder) -> dict[str, list[int]]:
    from safetensors import safe_open

    with safe_open(folder / "adapter_model.safetensors", "pt") as handle:
        return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}  # noqa: SIM118 (safe_open has no __iter__)


def _config(folder) -> dict:
    return json.loads((folder / "adapter_config.json").read_text())


def test_lora_keys_have_no_adapter_name(checkpoints):
    keys = _keys(checkpoints.adapters["llama-qv"])
    assert f"{PEFT}model.layers.0.self_attn.q_proj.lora_A.weight" in keys
    assert f"{PEFT}model.layers.0.self_attn.q_proj.lora_B.weight" in keys
    assert not any(".default." in key for key in keys)


def test_dora_magnitude_has_no_weight_suffix(checkpoints):
    keys = _keys(checkpoints.adapters["llama-dora"])
    assert keys[f"{PEFT}model.layers.0.self_attn.q_proj.lora_magnitude_vector"] == [32]


def test_embedding_lora_saves_the_base_embedding_as_base_layer(checkpoints):
    # docs/keys.md does not list `base_layer`: PEFT 0.21 saves the targeted embedding's own weight under it
    # (save_embedding_layers="auto"), so a matcher must treat it as a copy of `model.embed_tokens.weight`.
    keys = _keys(checkpoints.adapters["llama-embedding"])
    assert keys == {
        f"{PEFT}model.embed_tokens.base_layer.weight": [128, 32],
        f"{PEFT}model.embed_tokens.lora_embedding_A": [8, 128],
        f"{PEFT}model.embed_tokens.lora_embedding_B": [32, 8],
    }


def test_modules_to_save_is_saved_under_the_plain_module_name(checkpoints):
    keys = _keys(checkpoints.adapters["llama-mts"])
    assert keys[f"{PEFT}lm_head.weight"] == [128, 32]
    assert not any("modules_to_save" in key or "original_module" in key for key in keys)


def test_resized_modules_to_save_writes_three_copies_per_module(checkpoints):
    # With a resized vocabulary PEFT also saves the embedding layers, and with them the wrapper's
    # modules_to_save and original_module tensors: three [136, 32] tensors per module.
    keys = _keys(checkpoints.adapters["resized"])
    for module in ("lm_head", "model.embed_tokens"):
        for infix in ("", ".modules_to_save", ".original_module"):
            assert keys[f"{PEFT}{module}{infix}.weight"] == [136, 32]


def test_all_linear_config_lists_full_module_paths(checkpoints):
    # target_modules="all-linear" is saved expanded to full paths: docs/keys.md's rule "an adapter LoRA module
    # whose last component is not in the list" would flag every module; PEFT's own rule (the path equals an
    # entry or ends with ".entry") does not.
    targets = _config(checkpoints.adapters["llama-all-linear"])["target_modules"]
    assert "model.layers.0.mlp.gate_proj" in targets and "gate_proj" not in targets


def test_gpt2_conv1d_config_records_fan_in_fan_out(checkpoints):
    assert _config(checkpoints.adapters["gpt2-c-attn"])["fan_in_fan_out"] is True
    keys = _keys(checkpoints.adapters["gpt2-c-attn"])
    assert keys[f"{PEFT}transformer.h.0.attn.c_attn.lora_A.weight"] == [4, 32]
    assert keys[f"{PEFT}transformer.h.0.attn.c_attn.lora_B.weight"] == [96, 4]


def test_tied_gpt2_lm_head_copy_has_no_tensor_in_the_base(checkpoints):
    keys = _keys(checkpoints.adapters["gpt2-mts"])
    assert keys[f"{PEFT}lm_head.weight"] == [128, 32]
    index = json.loads((checkpoints.bases["gpt2"] / "model.safetensors.index.json").read_text())
    assert "lm_head.weight" not in index["weight_map"]


def test_trainable_token_indices_write_a_token_adapter_delta(checkpoints):
    keys = _keys(checkpoints.adapters["llama-trainable-tokens"])
    assert keys[f"{PEFT}model.embed_tokens.token_adapter.trainable_tokens_delta"] == [3, 32]


def test_qwen2_lora_bias_is_saved_as_lora_b_bias(checkpoints):
    keys = _keys(checkpoints.adapters["qwen2-qkv"])
    assert keys[f"{PEFT}model.layers.0.self_attn.k_proj.lora_B.bias"] == [16]


def test_keys_without_the_peft_prefix_are_dropped_silently_by_peft(checkpoints):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoints.bases["llama"]).eval()
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        before = model(ids).logits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(model, str(checkpoints.adapters["no-peft-prefix"]))
    with torch.no_grad():
        assert torch.equal(peft_model(ids).logits, before)
    assert any("missing adapter keys" in str(w.message).lower() for w in caught)


def test_keys_without_the_peft_prefix_are_reported(matcher, checkpoints):
    report = matcher.check_adapter(str(checkpoints.adapters["no-peft-prefix"]), str(checkpoints.bases["llama"]))
    assert report["findings"], report
    (finding,) = report["findings"]
    assert finding["code"] == "PK001"
    assert finding["details"]["peft_prefix"]["found"] == ""
    assert finding["details"]["peft_prefix"]["expected"] == PEFT
    assert finding["details"]["coverage"] == 1.0
    assert report["rewrite"] == {"strip": "", "add": "", "coverage": 1.0}


def test_ddp_around_the_peft_model_is_a_prefix_rewrite(matcher, checkpoints):
    # The module paths start after `base_model.model.` and match as they are; the outer `module.` is what PEFT
    # cannot load, so PK001 reports the PEFT prefix (the module-path rewrite is empty).
    report = matcher.check_adapter(str(checkpoints.adapters["ddp-outer"]), str(checkpoints.bases["llama"]))
    assert [f["code"] for f in report["findings"]] == ["PK001"]
    assert report["rewrite"]["strip"] == "" and report["rewrite"]["add"] == ""
    assert report["findings"][0]["details"]["peft_prefix"]["found"] == "module." + PEFT
    assert f"only loads keys under `{PEFT}`" in report["findings"][0]["message"]


@pytest.mark.parametrize("name", ["ddp-outer", "no-peft-prefix"])
def test_wrong_peft_prefix_is_fixed_by_write_remapped(matcher, checkpoints, tmp_path, name):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = str(checkpoints.adapters[name])
    report = matcher.check_adapter(adapter, str(checkpoints.bases["llama"]))
    matcher.write_remapped(adapter, str(tmp_path / "fixed"), report["rewrite"]["strip"], report["rewrite"]["add"])
    model = AutoModelForCausalLM.from_pretrained(checkpoints.bases["llama"]).eval()
    ids = torch.tensor([[1, 5, 6, 7]])
    with torch.no_grad():
        before = model(ids).logits
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            after = PeftModel.from_pretrained(model, str(tmp_path / "fixed"))(ids).logits
    assert not torch.equal(after, before)
