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
