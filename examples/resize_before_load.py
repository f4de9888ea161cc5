"""Inference with a LoRA adapter trained on an extended vocabulary.

Pitfall (PF401): during training the tokenizer got new tokens and the model was resized with
``resize_token_embeddings(len(tokenizer))``; the adapter saved ``embed_tokens``/``lm_head`` in full
(``modules_to_save``). Loading it onto a freshly loaded base without resizing first fails:
``size mismatch for ...embed_tokens...: copying a param with shape [33004, 4096] ... current model is [32000, 4096]``.
Fix: call ``model.resize_token_embeddings(len(tokenizer))`` before ``PeftModel.from_pretrained``.
"""

import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-2-7b-chat-hf")
ADAPTER_PATH = os.environ.get("PEFTFIX_ADAPTER", "my-org/llama-2-7b-chat-tools-lora")

PROMPT = "<tool_call> please write a short poem about the quick brown fox </tool_call>"


def main():
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(ADAPTER_PATH)
    model = AutoModelForCausalLM.from_pretrained(BASE_MODEL, dtype=torch.float32)

    model = PeftModel.from_pretrained(model, ADAPTER_PATH)
    model.eval()

    inputs = tokenizer(PROMPT, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
        with model.disable_adapter():
            base_logits = model(**inputs).logits
    delta = (logits - base_logits).abs().max().item()
    print(json.dumps({"vocab_size": logits.shape[-1], "max_abs_delta": delta}))


if __name__ == "__main__":
    main()
