"""Second-stage training of an existing LoRA adapter.

Pitfall (PF203): the stage-one adapter is loaded with ``PeftModel.from_pretrained(base, path)`` and trained
further. Without ``is_trainable=True`` PEFT loads the adapter in inference mode: every parameter is frozen, the
loop runs (``enable_input_require_grads`` keeps ``backward()`` from complaining), the loss is logged -- and not
a single weight changes.
Fix: ``PeftModel.from_pretrained(base, path, is_trainable=True)``.
"""

import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")
ADAPTER_PATH = os.environ.get("PEFTFIX_ADAPTER", "my-org/llama-3.2-1b-lora")

TRAIN_TEXTS = [
    "please write a short poem about the quick brown fox",
    "the lazy dog jumps over the fox",
    "hello world this is a question about lora",
]


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    base = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.float32)
    base.gradient_checkpointing_enable()
    base.enable_input_require_grads()

    model = PeftModel.from_pretrained(base, ADAPTER_PATH)
    model.print_trainable_parameters()

    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}

    model.train()
    losses = []
    for epoch in range(2):
        for text in TRAIN_TEXTS:
            batch = tokenizer(text, return_tensors="pt")
            outputs = model(**batch, labels=batch["input_ids"])
            outputs.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(outputs.loss.item())

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    update = max(
        (p.detach() - before[name]).abs().max().item() for name, p in model.named_parameters() if name in before
    )
    print(json.dumps({"trainable_params": trainable, "max_weight_update": update, "loss": losses[-1]}))


if __name__ == "__main__":
    main()
