"""Second-stage LoRA fine-tuning on top of a stage-one adapter.

Pitfall (PF202): the stage-one adapter is loaded with ``PeftModel.from_pretrained`` and the result is wrapped
*again* with ``get_peft_model``. The Linear-name helper then runs over an already-wrapped model and returns the
LoRA internals (``base_layer``, ``default``) as targets (PF301). Older PEFT releases fail with
"Target module Dropout(p=0.05, inplace=False) is not supported"; current ones skip the LoRA internals, nest a
PeftModel inside a PeftModel and save keys under a doubled ``base_model.model.base_model.model.`` prefix that no
later ``PeftModel.from_pretrained`` matches.
Fix: ``PeftModel.from_pretrained(base, path, is_trainable=True)`` to keep training the adapter, or
``model.add_adapter(name, config)`` for a second one.
"""

import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")
ADAPTER_PATH = os.environ.get("PEFTFIX_ADAPTER", "my-org/llama-3.2-1b-lora-stage1")

TRAIN_TEXTS = [
    "please write a short poem about the quick brown fox",
    "the lazy dog jumps over the fox",
]


def find_all_linear_names(model):
    """Names of the Linear layers to target with LoRA (the usual QLoRA-script helper)."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear):
            names.add(name.split(".")[-1])
    names.discard("lm_head")
    return sorted(names)


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.float32)

    # stage 2: continue from the stage-one adapter
    model = PeftModel.from_pretrained(model, ADAPTER_PATH)
    target_modules = find_all_linear_names(model)
    print("target modules:", target_modules)

    lora_config = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=target_modules,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora_config)
    model.print_trainable_parameters()

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model.train()
    for text in TRAIN_TEXTS:
        batch = tokenizer(text, return_tensors="pt")
        loss = model(**batch, labels=batch["input_ids"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"trainable_params": trainable, "loss": loss.item()}))


if __name__ == "__main__":
    main()
