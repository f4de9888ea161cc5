"""LoRA fine-tuning with a hand-written target list.

Pitfall (PF301): ``target_modules`` names ``dropout``, which is never a Linear layer. Depending on the model it
matches nothing (dead config that hides the real targets) or it matches ``nn.Dropout`` modules and PEFT fails
with "Target module Dropout(p=0.1, inplace=False) is not supported".
Fix: list only Linear (or Embedding/Conv) layers: ``["q_proj", "v_proj"]``.
"""

import json
import os

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")


def main():
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.bfloat16)

    lora_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["q_proj", "v_proj", "dropout"],
    )
    model = get_peft_model(model, lora_config)
    model.print_trainable_parameters()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"trainable_params": trainable}))


if __name__ == "__main__":
    main()
