"""Merge a QLoRA adapter into its base model for deployment.

Pitfall (PF205): the base is loaded in 4-bit (as during QLoRA training) and ``merge_and_unload()`` folds the
LoRA update into the quantized weights. The update is rounded away by the 4-bit quantization (or the merge is
refused / dequantizes lossily, depending on the versions), and the saved "merged" model is not the model
that was evaluated.
Fix: load the base in bf16/fp16 (no quantization_config) for the merge, then quantize the merged model if needed.
"""

import json
import os

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")
ADAPTER_PATH = os.environ.get("PEFTFIX_ADAPTER", "my-org/llama-3.2-1b-qlora")
OUTPUT_DIR = os.environ.get("PEFTFIX_OUTPUT_DIR", "outputs/llama-3.2-1b-merged")


def main():
    bnb_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    base = AutoModelForCausalLM.from_pretrained(BASE_MODEL, quantization_config=bnb_config, device_map="auto")
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)

    model = PeftModel.from_pretrained(base, ADAPTER_PATH)
    merged = model.merge_and_unload()

    merged.save_pretrained(OUTPUT_DIR)
    tokenizer.save_pretrained(OUTPUT_DIR)
    print(json.dumps({"output_dir": OUTPUT_DIR, "params": merged.num_parameters()}))


if __name__ == "__main__":
    main()
