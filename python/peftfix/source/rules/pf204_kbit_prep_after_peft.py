from __future__ import annotations

from peftfix.source.flow.model import Ev, Event, last_wrap
from peftfix.source.rule import Invalid, Rule, subscribes


class KbitPrepAfterPeft(Rule):
    """## What it does
    Finds `prepare_model_for_kbit_training(model)` called on a model that already has LoRA layers (after
    `get_peft_model` or `PeftModel.from_pretrained`).

    ## Why is this bad?
    `prepare_model_for_kbit_training` freezes *every* parameter of the model it is given (and casts layer norms
    to fp32). Run after the adapter was added, it freezes the adapter too: training runs, nothing learns.

    ## Example
    ```python
    model = get_peft_model(model, config)
    model = prepare_model_for_kbit_training(model)
    ```

    Use instead:
    ```python
    model = prepare_model_for_kbit_training(model)
    model = get_peft_model(model, config)
    ```

    ## Fix safety
    Display-only: moving the call means moving code between statements that may depend on each other.
    """

    code = "PF204"
    name = "kbit-prep-after-peft"
    summary = "`prepare_model_for_kbit_training` after the adapter was added: it freezes the adapter."
    fix_availability = "display-only"
    EVENTS = subscribes(Ev.KBIT_PREP)

    def on_event(self, history: tuple, event: Event) -> None:
        wrap = last_wrap(history)
        if wrap is None:
            return
        message = (
            f"`prepare_model_for_kbit_training` runs on a model that already has LoRA layers (added at "
            f"{wrap.where(event.module)}): it freezes every parameter, the adapter included, so nothing trains. Call "
            f"it on the base model before `get_peft_model`."
        )
        self.report(
            event.module,
            event.node,
            message,
            self.display_only("Call `prepare_model_for_kbit_training` before `get_peft_model`"),
        )

    VALID = (
        """
from peft import get_peft_model, prepare_model_for_kbit_training
model = prepare_model_for_kbit_training(model)
model = get_peft_model(model, config)
""",
        """
import peft
model = peft.prepare_model_for_kbit_training(base)
model = peft.get_peft_model(model, config)
""",
        """
from peft import PeftModel, prepare_model_for_kbit_training
base = prepare_model_for_kbit_training(base)
model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
""",
        """
from peft import get_peft_model, prepare_model_for_kbit_training
if use_4bit:
    model = prepare_model_for_kbit_training(model)
model = get_peft_model(model, config)
""",
        """
from peft import get_peft_model
def prepare_model_for_kbit_training(model):
    return model
model = get_peft_model(model, config)
model = prepare_model_for_kbit_training(model)
""",
        """
from peft import get_peft_model, prepare_model_for_kbit_training
merged = get_peft_model(model, config).merge_and_unload()
merged = prepare_model_for_kbit_training(merged)
""",
    )
    INVALID = (
        Invalid(
            """
from peft import get_peft_model, prepare_model_for_kbit_training
model = get_peft_model(model, config)
model = prepare_model_for_kbit_training(model)
"""
        ),
        Invalid(
            """
import peft as p
model = p.get_peft_model(model, config)
p.prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
"""
        ),
        Invalid(
            """
from peft import PeftModel, prepare_model_for_kbit_training as prep
model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
model = prep(model)
"""
        ),
        Invalid(
            """
from peft import get_peft_model, prepare_model_for_kbit_training
def prepare(model):
    return prepare_model_for_kbit_training(model)
peft_model = get_peft_model(base, config)
peft_model = prepare(peft_model)
"""
        ),
        Invalid(
            """
from peft import get_peft_model, prepare_model_for_kbit_training
get_peft_model(base, config)
if quantized:
    prepare_model_for_kbit_training(
        base,
    )
"""
        ),
        Invalid(
            """
from peft import AutoPeftModelForCausalLM, prepare_model_for_kbit_training
class Stage:
    def __init__(self):
        self.model = AutoPeftModelForCausalLM.from_pretrained("adapter", is_trainable=True)
        self.model = prepare_model_for_kbit_training(self.model)
"""
        ),
    )
