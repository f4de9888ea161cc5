"""The serving checks read the checkpoints the matcher tests build (real PEFT adapters on tiny real models), plus
a tiny LLaVA (a vision-language wrapper around a Llama) with adapters saved three ways."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from checkpoint.ckpt_cases import LLAMA
from checkpoint.conftest import checkpoints, worker_id  # noqa: F401


@pytest.fixture(scope="session")
def llava(tmp_path_factory) -> dict[str, Path]:
    """``base``: LlavaForConditionalGeneration saved by transformers; ``full``: LoRA on q/v of the whole model
    (vision tower included); ``text``: LoRA trained on the Llama alone (``model.layers...``); ``automodel``: on
    the bare LlamaModel (``layers...``)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlamaForCausalLM,
        LlamaModel,
        LlavaConfig,
        LlavaForConditionalGeneration,
    )

    root = tmp_path_factory.mktemp("llava")
    torch.manual_seed(0)
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        ),
        text_config=LlamaConfig(**LLAMA),
        image_token_index=5,
    )
    paths = {"base": root / "base"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        LlavaForConditionalGeneration(config).save_pretrained(paths["base"])
        for name, model in (
            ("full", LlavaForConditionalGeneration(config)),
            ("text", LlamaForCausalLM(LlamaConfig(**LLAMA))),
            ("automodel", LlamaModel(LlamaConfig(**LLAMA))),
        ):
            paths[name] = root / name
            get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"])).save_pretrained(
                paths[name]
            )
    return paths
