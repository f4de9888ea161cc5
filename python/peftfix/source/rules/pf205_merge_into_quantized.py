from __future__ import annotations

from peftfix.source.flow.model import Ev, Event, creation
from peftfix.source.rule import Invalid, Rule, subscribes


class MergeIntoQuantized(Rule):
    """## What it does
    Finds `merge_and_unload()` on a model whose base was loaded in 4-bit or 8-bit (`load_in_4bit=True`,
    `load_in_8bit=True`, or a `quantization_config`).

    ## Why is this bad?
    Merging adds the LoRA delta into the base weights. Quantized weights cannot hold it: depending on the
    versions, the merge fails on dtypes or silently rounds the delta away, and the saved "merged" model has
    lost the fine-tuning.

    ## Example
    ```python
    base = AutoModelForCausalLM.from_pretrained(path, quantization_config=BitsAndBytesConfig(load_in_4bit=True))
    model = PeftModel.from_pretrained(base, adapter)
    merged = model.merge_and_unload()
    ```

    Use instead: reload the base in bf16/fp16 without quantization, load the adapter, then merge.

    ## Fix safety
    Display-only: the fix is to reload the model differently, which depends on memory and hardware.
    """

    code = "PF205"
    name = "merge-into-quantized"
    summary = "`merge_and_unload()` on a model loaded in 4/8-bit: the LoRA delta is lost."
    fix_availability = "display-only"
    EVENTS = subscribes(Ev.MERGE)

    def on_event(self, history: tuple, event: Event) -> None:
        created = creation(history)
        if created is None or not created.get("quantized"):
            return
        message = (
            f"`merge_and_unload()` on a model loaded in 4/8-bit ({created.where(event.module)}): the LoRA delta is "
            f'merged into quantized weights and quantized again, so it is rounded away (PEFT only warns "Merge lora '
            f'module to 4-bit linear may get different generations"). Reload the base in bf16/fp16 without '
            f"quantization, load the adapter, then merge."
        )
        self.report(
            event.module, event.node, message, self.display_only("Merge into a base loaded without quantization")
        )

    VALID = (
        """
from transformers import AutoModelForCausalLM
from peft import PeftModel
base = AutoModelForCausalLM.from_pretrained("m", torch_dtype="bfloat16")
merged = PeftModel.from_pretrained(base, "a").merge_and_unload()
""",
        """
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from peft import PeftModel
bnb = BitsAndBytesConfig(load_in_4bit=False)
base = AutoModelForCausalLM.from_pretrained("m", quantization_config=bnb)
merged = PeftModel.from_pretrained(base, "a").merge_and_unload()
""",
        """
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained("m", load_in_8bit=False)
base.merge_and_unload()
""",
        """
from transformers import AutoModelForCausalLM
from peft import PeftModel
quantized = AutoModelForCausalLM.from_pretrained("m", load_in_4bit=True)
full = AutoModelForCausalLM.from_pretrained("m")
merged = PeftModel.from_pretrained(full, "a").merge_and_unload()
""",
        """
from transformers import AutoModelForCausalLM
base = AutoModelForCausalLM.from_pretrained("m", quantization_config=None)
base.merge_and_unload()
""",
        """
class AutoModelForCausalLM:
    @staticmethod
    def from_pretrained(path, **kw):
        return None
base = AutoModelForCausalLM.from_pretrained("m", load_in_4bit=True)
base.merge_and_unload()
""",
        # unsloth: a 16-bit base merges exactly.
        """
from unsloth import FastLanguageModel
model, tokenizer = FastLanguageModel.from_pretrained("unsloth/llama-3-8b", load_in_4bit=False)
model = FastLanguageModel.get_peft_model(model, r=16)
model = model.merge_and_unload()
""",
    )
    INVALID = (
        Invalid(
            """
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
from peft import PeftModel
bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")
base = AutoModelForCausalLM.from_pretrained("m", quantization_config=bnb)
model = PeftModel.from_pretrained(base, "adapter")
merged = model.merge_and_unload()
"""
        ),
        Invalid(
            """
import peft
import transformers as tf
base = tf.AutoModelForCausalLM.from_pretrained("m", load_in_8bit=True)
model = peft.PeftModel.from_pretrained(base, "adapter")
model.merge_and_unload()
"""
        ),
        Invalid(
            """
from peft import AutoPeftModelForCausalLM
model = AutoPeftModelForCausalLM.from_pretrained("adapter", load_in_4bit=True)
model = model.merge_and_unload()
"""
        ),
        Invalid(
            """
from transformers import AutoModelForCausalLM
def load(path, config):
    return AutoModelForCausalLM.from_pretrained(path, quantization_config=config)
model = load("m", bnb_config)
model.merge_and_unload()
"""
        ),
        Invalid(
            """
from transformers import AutoModelForCausalLM as LM
from peft import get_peft_model
model = get_peft_model(LM.from_pretrained("m", load_in_4bit=True), config)
if export:
    model.merge_and_unload(
        progressbar=True,
    )
"""
        ),
        Invalid(
            """
from transformers import AutoModelForCausalLM, BitsAndBytesConfig
class Exporter:
    def run(self):
        self.model = AutoModelForCausalLM.from_pretrained("m", quantization_config=BitsAndBytesConfig(load_in_8bit=True))
        return self.model.merge_and_unload()
"""
        ),
        # unsloth loads 4-bit by default: the merge rounds into 4-bit weights.
        Invalid(
            """
from unsloth import FastLanguageModel
model, tokenizer = FastLanguageModel.from_pretrained("unsloth/llama-3-8b-bnb-4bit", max_seq_length=2048)
model = FastLanguageModel.get_peft_model(model, r=16, target_modules=["q_proj", "v_proj"])
model = model.merge_and_unload()
"""
        ),
        # A checkpoint published already quantized loads in 4-bit with no quantization argument.
        Invalid(
            """
from peft import PeftModel
from transformers import AutoModelForCausalLM
model_id, out = "unsloth/qwen3-14b-unsloth-bnb-4bit", "merged"
base = AutoModelForCausalLM.from_pretrained(model_id, dtype="float32")
merged = PeftModel.from_pretrained(base, "adapter").merge_and_unload()
"""
        ),
    )
