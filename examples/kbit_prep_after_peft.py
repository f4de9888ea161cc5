"""QLoRA fine-tuning of Llama 3.2 1B Instruct in 4-bit.

Pitfall (PF204): ``prepare_model_for_kbit_training`` is called *after* ``get_peft_model``. It freezes every
parameter of the model it is given (then upcasts norms and enables input gradients) -- including the LoRA
weights that were just created: "trainable params: 0", and the Trainer either stops at the first step with
"element 0 of tensors does not require grad and does not have a grad_fn" or (with input gradients enabled for
gradient checkpointing) runs and updates nothing.
Fix: call ``prepare_model_for_kbit_training(model)`` on the quantized base, before ``get_peft_model``.
"""

import json
import os

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BitsAndBytesConfig,
    DataCollatorForLanguageModeling,
    Trainer,
    TrainingArguments,
)

BASE_MODEL = os.environ.get("PEFTFIX_BASE_MODEL", "meta-llama/Llama-3.2-1B-Instruct")
OUTPUT_DIR = os.environ.get("PEFTFIX_OUTPUT_DIR", "outputs/llama-3.2-1b-qlora")

TRAIN_TEXTS = [
    "please write a short poem about the quick brown fox",
    "the lazy dog jumps over the fox",
]


def main():
    tokenizer = AutoTokenizer.from_pretrained(BASE_MODEL)
    tokenizer.pad_token = tokenizer.eos_token

    bnb_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        BASE_MODEL,
        quantization_config=bnb_config,
        dtype=torch.bfloat16,
        device_map="auto",
    )

    lora_config = LoraConfig(
        task_type="CAUSAL_LM",
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    model = get_peft_model(model, lora_config)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model.print_trainable_parameters()

    dataset = [tokenizer(text) for text in TRAIN_TEXTS]
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=OUTPUT_DIR,
            per_device_train_batch_size=2,
            max_steps=10,
            learning_rate=2e-4,
            logging_steps=1,
            report_to=[],
        ),
        train_dataset=dataset,
        data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
    )
    result = trainer.train()

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(json.dumps({"trainable_params": trainable, "loss": result.training_loss}))


if __name__ == "__main__":
    main()
