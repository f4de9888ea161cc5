"""LoRA fine-tuning of Llama 2 7B chat with a very large rank.

Pitfall (PF302): ``r=1024`` makes LoRA train about a fifth of the model -- close to full fine-tuning in memory
and compute, and without LoRA's regularising effect. Start with r=8 or 16 and raise it only if evaluation
says so.
"""

import json
import os

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-2-7b-chat-hf")


def main():
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.bfloat16, device_map="auto")

    lora_config = LoraConfig(
        r=1024,
        lora_alpha=2048,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora_config)
    model.print_trainable_parameters()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    print(json.dumps({"trainable_params": trainable, "trainable_share": trainable / total}))


if __name__ == "__main__":
    main()
