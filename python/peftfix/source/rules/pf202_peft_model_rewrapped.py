from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits.decisions import call_statement, can_set_is_trainable, same_block
from peftfix.source.flow.model import Ev, Event, creation, last_wrap
from peftfix.source.flow.names import dotted_name
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext


class PeftModelRewrapped(Rule):
    """## What it does
    Finds `get_peft_model` applied to a model that already is a PeftModel: loaded with
    `PeftModel.from_pretrained` or `AutoPeftModel*.from_pretrained`, or wrapped by an earlier
    `get_peft_model` (both inject LoRA layers into the model in place, whatever name the result gets).

    ## Why is this bad?
    This is multi-stage LoRA done wrong. LoRA is injected into the LoRA layers themselves: target lists
    computed from the wrapped model name `base_layer`/`default`, PEFT fails with "Target module Dropout is not
    supported", or a second adapter nests inside the first. To continue training the adapter you loaded, load it
    trainable; to train a second adapter, add it.

    ## Example
    ```python
    model = PeftModel.from_pretrained(base, "stage1-adapter")
    model = get_peft_model(model, LoraConfig(r=8))
    ```

    Use instead:
    ```python
    model = PeftModel.from_pretrained(base, "stage1-adapter", is_trainable=True)
    ```
    or, for a second adapter, `model.add_adapter("stage2", LoraConfig(r=8))`.

    ## Fix safety
    When the model was loaded with `PeftModel.from_pretrained` in the same scope, the fix loads it with
    `is_trainable=True` and removes the `get_peft_model` call. It is unsafe: the new `LoraConfig` may have been
    meant for a second adapter (`add_adapter`), which only the author can tell.
    """

    code = "PF202"
    name = "peft-model-rewrapped"
    summary = "`get_peft_model` applied to a model that already is a PeftModel."
    fix_availability = "unsafe"
    EVENTS = subscribes(Ev.GET_PEFT_MODEL)

    def on_event(self, history: tuple, event: Event) -> None:
        wrap = last_wrap(history)
        if wrap is None:
            return
        trainer = event.get("by_trainer")
        created = creation(history)
        if trainer and created is not None and created.get("patches_trainers"):
            return  # unsloth patches TRL's trainers to ignore `peft_config=`
        if wrap.node is event.node:
            origin = "by this same call on an earlier loop iteration"
        else:
            how = {
                Ev.LOAD_PEFT: "`PeftModel.from_pretrained`",
                Ev.CREATE_PEFT: "`AutoPeftModel*.from_pretrained`",
                Ev.GET_PEFT_MODEL: "an earlier `get_peft_model`",
            }[wrap.kind]
            origin = f"by {how} at {wrap.where(event.module)}"
        if trainer:
            message = (
                f"`{trainer}(..., peft_config=...)` is given a model that already is a PeftModel (wrapped {origin}): "
                f'TRL 0.27 and later raise "You passed a `PeftModel` instance together with a `peft_config`", '
                f"older TRL silently merges the loaded adapter into the base and trains a new one. To keep training "
                f"the loaded adapter, load it with `is_trainable=True` and drop `peft_config=`; to train a new one on "
                f"top, merge it first (`merge_and_unload()`) and pass the merged model."
            )
        else:
            message = (
                f"`{event.get('callee') or 'get_peft_model'}` is applied to a model that already is a PeftModel "
                f'(wrapped {origin}): PEFT warns "modify a model with PEFT for a second time" and re-initialises the '
                f"`default` adapter, so the loaded weights are replaced by an untrained adapter (older PEFT injected "
                f'LoRA into the LoRA layers: "Target module ... is not supported"). To keep training the loaded '
                f"adapter, load it with `PeftModel.from_pretrained(..., is_trainable=True)`; for a second adapter use "
                f"`model.add_adapter(name, config)`."
            )
        self.report(event.module, event.node, message, None if trainer else self._fix(wrap, event))

    def _fix(self, wrap: Event, event: Event) -> Optional[PlannedFix]:
        module = event.module
        # Only when the load always precedes the call: on a resume branch the call is what the other path needs.
        if wrap.kind is not Ev.LOAD_PEFT or wrap.module is not module or not same_block(module, wrap.node, event.node):
            return None
        load, call = wrap.node, event.node
        statement = call_statement(module, call)
        model = dotted_name(event.get("model_arg"))
        if statement is None or model is None:
            return None
        flip = not wrap.get("trainable") or wrap.get("explicit_false")
        if flip and not can_set_is_trainable(load):
            return None
        target = statement.target

        def build(context: FixContext) -> list[Optional[Edit]]:
            from peftfix.source.edits.recipes import set_is_trainable, statement_line, unused_import_edit

            ctx = context.cst
            edits: list[Optional[Edit]] = []
            if flip:
                edits.append(set_is_trainable(ctx, context.call(load)))
            line = statement_line(context, call)
            if target in (None, model):
                edits.append(ctx.delete_statement(line))
            else:
                edits.append(ctx.replace(line.body[0], f"{target} = {model}"))
            import_edit = unused_import_edit(ctx, context.call(call).func)
            if import_edit is not None:
                edits.append(import_edit)
            return edits

        return self.plan(
            "Load the adapter with `is_trainable=True` instead of wrapping it again", Applicability.UNSAFE, build
        )

    VALID = (
        # Loading trainable and continuing.
        """
from peft import PeftModel
model = PeftModel.from_pretrained(base, "stage1", is_trainable=True)
""",
        # A second adapter the right way.
        """
from peft import LoraConfig, PeftModel
model = PeftModel.from_pretrained(base, "stage1")
model.add_adapter("stage2", LoraConfig(r=8))
""",
        # Resume or start fresh, never both.
        """
from peft import LoraConfig, PeftModel, get_peft_model
if resume:
    model = PeftModel.from_pretrained(base, "ckpt", is_trainable=True)
else:
    model = get_peft_model(base, LoraConfig())
""",
        # Merged first: a plain model again.
        """
from peft import LoraConfig, PeftModel, get_peft_model
model = PeftModel.from_pretrained(base, "stage1")
model = model.merge_and_unload()
model = get_peft_model(model, LoraConfig())
""",
        # Two different base models.
        """
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM
teacher = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("m"), "teacher")
student = get_peft_model(AutoModelForCausalLM.from_pretrained("m"), LoraConfig())
""",
        # A local get_peft_model.
        """
from peft import PeftModel
def get_peft_model(model, config):
    return model
model = PeftModel.from_pretrained(base, "a")
model = get_peft_model(model, config)
""",
        # TRL wraps a plain base model itself when given peft_config.
        """
from peft import LoraConfig
from transformers import AutoModelForCausalLM
from trl import SFTTrainer
model = AutoModelForCausalLM.from_pretrained("m")
SFTTrainer(model=model, train_dataset=data, peft_config=LoraConfig(r=8)).train()
""",
        # Prompt tuning injects nothing into the base: two prompt-tuned models may share it.
        """
from peft import PromptTuningConfig, get_peft_model
config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
first = get_peft_model(base, config)
second = get_peft_model(base, config)
""",
    )
    INVALID = (
        # Multi-stage training done wrong: load stage one, wrap again for stage two.
        Invalid(
            """
from peft import LoraConfig, PeftModel, get_peft_model
model = PeftModel.from_pretrained(base, "stage1")
model = get_peft_model(model, LoraConfig(r=8))
""",
            fixed="""
from peft import LoraConfig, PeftModel
model = PeftModel.from_pretrained(base, "stage1", is_trainable=True)
""",
        ),
        # In place: the base itself counts as wrapped, whatever the result was called.
        Invalid(
            """
from peft import PeftModel, get_peft_model
loaded = PeftModel.from_pretrained(base, "stage1")
model = get_peft_model(base, config)
""",
            fixed="""
from peft import PeftModel
loaded = PeftModel.from_pretrained(base, "stage1", is_trainable=True)
model = base
""",
        ),
        # A resume branch reaches the call.
        Invalid(
            """
from peft import PeftModel, get_peft_model
if args.resume:
    model = PeftModel.from_pretrained(model, args.ckpt)
model = get_peft_model(model, config)
"""
        ),
        # AutoPeftModel, import peft attribute access.
        Invalid(
            """
import peft
model = peft.AutoPeftModelForCausalLM.from_pretrained("adapter")
model = peft.get_peft_model(model, peft.LoraConfig())
"""
        ),
        # Twice get_peft_model, through a function parameter.
        Invalid(
            """
from peft import get_peft_model
def stage2(model, config):
    return get_peft_model(model, config)
model = get_peft_model(base, config)
model = stage2(model, config)
"""
        ),
        # In a loop: the second iteration wraps again; multi-line call.
        Invalid(
            """
from peft import get_peft_model
for config in configs:
    model = get_peft_model(
        model,
        config,
    )
"""
        ),
        # Explicit is_trainable=False is flipped.
        Invalid(
            """
from peft import PeftModel, get_peft_model
model = PeftModel.from_pretrained(base, "stage1", is_trainable=False)
get_peft_model(model, config)
""",
            fixed="""
from peft import PeftModel
model = PeftModel.from_pretrained(base, "stage1", is_trainable=True)
""",
        ),
        # A PeftModel handed to a TRL trainer together with peft_config.
        Invalid(
            """
from peft import LoraConfig, PeftModel
from trl import SFTTrainer
model = PeftModel.from_pretrained(base, "sft-adapter")
trainer = SFTTrainer(model=model, train_dataset=data, peft_config=LoraConfig(r=8))
"""
        ),
    )
