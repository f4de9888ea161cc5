"""Evaluate a trained LoRA adapter against its base model.

Pitfall (PF201): ``get_peft_model`` is called first "to set up the LoRA structure", and the trained adapter is
then loaded on top with ``PeftModel.from_pretrained``. No error, no warning that a user notices -- and the
trained weights are never applied: the model answers exactly like the base model.
Fix: drop the ``get_peft_model`` call and load the adapter straight onto the base model.
"""

import json
import os

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")
ADAPTER_PATH = os.environ.get("PEFTFIX_ADAPTER", "my-org/llama-3.2-1b-lora")

PROMPT = "please write a short poem about the quick brown fox"


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    base = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.float32)
    base.eval()

    inputs = tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        base_logits = base(**inputs).logits

    lora_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=8,
        lora_alpha=16,
        lora_dropout=0.05,
        target_modules=["q_proj", "v_proj"],
    )
    model = get_peft_model(base, lora_config)
    model = PeftModel.from_pretrained(model, ADAPTER_PATH)
    model.eval()

    with torch.no_grad():
        logits = model(**inputs).logits
    delta = (logits - base_logits).abs().max().item()
    print(json.dumps({"max_abs_delta": delta}))


if __name__ == "__main__":
    main()
