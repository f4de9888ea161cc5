"""LoRA fine-tuning of Llama 3.2 1B Instruct.

Pitfall (PF101): the base model is loaded with ``AutoModel``, which builds ``LlamaModel`` -- the bare decoder
without ``lm_head``. A causal-LM LoRA run on it cannot compute a language-modelling loss from ``labels=``.
Fix: load it with ``AutoModelForCausalLM``.
"""

import json
import os

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModel, AutoTokenizer

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")

TRAIN_TEXTS = [
    "please write a short poem about the quick brown fox",
    "the lazy dog jumps over the fox",
]


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    model = AutoModel.from_pretrained(BASE_MODEL, dtype=torch.float32)

    lora_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["q_proj", "v_proj"],
    )
    model = get_peft_model(model, lora_config)
    model.print_trainable_parameters()

    batch = tokenizer(TRAIN_TEXTS, padding=True, return_tensors="pt")
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)

    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-4)
    model.train()
    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels)
    loss = outputs.loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"trainable_params": trainable, "loss": loss.item()}))


if __name__ == "__main__":
    main()
