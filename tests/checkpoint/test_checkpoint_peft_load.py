"""What the findings mean to real PEFT 0.21: the planted adapters load silently as no-ops (or fail), and the
adapters fixed by ``write_remapped`` load and change the output.

The "output delta" is the largest absolute difference between the logits of the base model with the adapter
loaded and without it, on one fixed prompt (CPU, float32).
"""

from __future__ import annotations

import warnings

import pytest

from . import ckpt_cases
from .ckpt_cases import CASES_BY_NAME

ROUNDTRIP = [case.name for case in ckpt_cases.CASES if case.roundtrip]
PROMPT = [[1, 5, 6, 7, 8, 9, 10]]


def _load(base_dir: str, adapter: str):
    """(max abs logit delta, warning messages) of loading ``adapter`` onto a fresh causal LM from ``base_dir``."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir).eval()
    ids = torch.tensor(PROMPT)
    with torch.no_grad():
        before = model(ids).logits
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(model, adapter).eval()
    with torch.no_grad():
        after = peft_model(ids).logits
    return (after - before).abs().max().item(), [str(w.message) for w in caught]


def _missing_keys(messages: list[str]) -> list[str]:
    return [m for m in messages if "missing adapter keys" in m.lower()]


@pytest.mark.parametrize("name", ROUNDTRIP)
def test_planted_prefix_loads_as_a_silent_no_op(checkpoints, name):
    case = CASES_BY_NAME[name]
    delta, messages = _load(str(checkpoints.bases[case.base]), checkpoints.adapter_path(case))
    assert delta == 0.0
    assert _missing_keys(messages), messages


@pytest.mark.parametrize("name", ROUNDTRIP)
def test_write_remapped_adapter_loads_and_changes_the_output(layer, checkpoints, tmp_path, name):
    case = CASES_BY_NAME[name]
    adapter = checkpoints.adapter_path(case)
    report = layer.check_adapter(adapter, checkpoints.base_path(case), load_as=case.load_as)
    assert report.codes == ["PK001"]
    layer.write_remapped(adapter, tmp_path / "fixed", report)
    delta, messages = _load(str(checkpoints.bases[case.base]), str(tmp_path / "fixed"))
    assert delta > 1e-4
    assert not _missing_keys(messages), messages


def test_clean_adapter_changes_the_output(checkpoints):
    delta, messages = _load(str(checkpoints.bases["llama"]), str(checkpoints.adapters["llama-qv"]))
    assert delta > 1e-4 and not _missing_keys(messages)


def test_untrained_adapter_is_a_no_op(checkpoints):
    delta, _ = _load(str(checkpoints.bases["llama"]), str(checkpoints.adapters["untrained"]))
    assert delta == 0.0


def test_resized_adapter_fails_to_load_without_resizing(checkpoints):
    with pytest.raises(RuntimeError, match="size mismatch"):
        _load(str(checkpoints.bases["llama"]), str(checkpoints.adapters["resized"]))


def test_resized_adapter_loads_after_the_resize_the_finding_names(checkpoints):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoints.bases["llama"]).eval()
    model.resize_token_embeddings(ckpt_cases.RESIZED, mean_resizing=False)
    peft_model = PeftModel.from_pretrained(model, str(checkpoints.adapters["resized"]))
    with torch.no_grad():
        assert peft_model(torch.tensor(PROMPT)).logits.shape[-1] == ckpt_cases.RESIZED


def test_untrained_embedding_lora_is_a_no_op_though_its_b_is_random(checkpoints):
    # PEFT zeroes lora_embedding_A and draws lora_embedding_B: checking B alone would call this adapter trained.
    from safetensors import safe_open

    adapter = checkpoints.adapters["llama-embedding-untrained"]
    with safe_open(str(adapter / "adapter_model.safetensors"), "pt") as tensors:
        b = tensors.get_tensor(f"{ckpt_cases.PEFT}model.embed_tokens.lora_embedding_B")
    assert b.abs().max().item() > 0
    delta, _ = _load(str(checkpoints.bases["llama"]), str(adapter))
    assert delta == 0.0


def test_keys_cut_by_the_adapter_name_lora_load_as_a_no_op(checkpoints):
    delta, messages = _load(str(checkpoints.bases["llama"]), str(checkpoints.adapters["adapter-named-lora"]))
    assert delta == 0.0
    assert _missing_keys(messages), messages


def test_a_module_in_both_lists_gets_no_lora(checkpoints):
    from peft import PeftModel
    from peft.utils.other import ModulesToSaveWrapper
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(checkpoints.bases["llama"]).eval()
    peft_model = PeftModel.from_pretrained(model, str(checkpoints.adapters["targeted-and-saved"]))
    attention = peft_model.base_model.model.model.layers[0].self_attn
    assert isinstance(attention.q_proj, ModulesToSaveWrapper)
    assert not any("lora_A" in name for name, _ in attention.q_proj.named_parameters())
    assert any("lora_A" in name for name, _ in attention.v_proj.named_parameters())


def test_a_tied_lm_head_copy_unties_the_merged_model(checkpoints):
    # PEFT warns, and the merge leaves a trained head apart from the embedding: the merged model no longer has the
    # base's shape (tie_word_embeddings flips), so anything reading the base's config would drop that head.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir = checkpoints.bases["llama-tied"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        peft_model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base_dir), str(checkpoints.adapters["tied-mts"])
        ).eval()
    assert any("ensure_weight_tying" in str(w.message) for w in caught)
    with torch.no_grad():  # stand in for training the copy
        peft_model.base_model.model.lm_head.modules_to_save["default"].weight.add_(0.5)
    merged = peft_model.merge_and_unload()
    assert AutoModelForCausalLM.from_pretrained(base_dir).config.tie_word_embeddings
    assert not merged.config.tie_word_embeddings
    assert not torch.equal(merged.lm_head.weight, merged.model.embed_tokens.weight)


def test_trainable_tokens_on_new_rows_need_the_resize(checkpoints):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    adapter = str(checkpoints.adapters["trainable-tokens-new-rows"])
    with pytest.raises(IndexError, match="out of bounds"):
        _load(str(checkpoints.bases["llama"]), adapter)
    model = AutoModelForCausalLM.from_pretrained(checkpoints.bases["llama"]).eval()
    model.resize_token_embeddings(ckpt_cases.RESIZED, mean_resizing=False)
    peft_model = PeftModel.from_pretrained(model, adapter)
    with torch.no_grad():
        assert peft_model(torch.tensor(PROMPT)).logits.shape[-1] == ckpt_cases.RESIZED
