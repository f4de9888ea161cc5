from __future__ import annotations

from typing import Optional

import libcst as cst

from peftfix.diagnostics import Applicability, Fix
from peftfix.source.edits.recipes import call_statement, same_block, set_is_trainable, unused_import_edit
from peftfix.source.flow.model import Ev, Event, last_wrap
from peftfix.source.rule import Invalid, Rule, subscribes
from peftfix.source.syntax import dotted_name


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
        if wrap.node is event.node:
            origin = "by this same call on an earlier loop iteration"
        else:
            how = {
                Ev.LOAD_PEFT: "`PeftModel.from_pretrained`",
                Ev.CREATE_PEFT: "`AutoPeftModel*.from_pretrained`",
                Ev.GET_PEFT_MODEL: "an earlier `get_peft_model`",
            }[wrap.kind]
            origin = f"by {how} at line {self.line(wrap.node)}"
        message = (
            f"`get_peft_model` is applied to a model that already is a PeftModel (wrapped {origin}): older PEFT "
            f'injects LoRA into the LoRA layers ("Target module Dropout is not supported", targets like '
            f"`base_layer`/`default`), newer PEFT stacks a second `default` adapter and saves keys no later load "
            f"matches. To keep training the loaded adapter, load it with "
            f"`PeftModel.from_pretrained(..., is_trainable=True)`; for a second adapter use "
            f"`model.add_adapter(name, config)`."
        )
        self.report(event.node, message, self._fix(wrap, event))

    def _fix(self, wrap: Event, event: Event) -> Optional[Fix]:
        ctx = self.ctx
        # Only when the load always precedes the call: on a resume branch the call is what the other path needs.
        if wrap.kind is not Ev.LOAD_PEFT or not same_block(ctx, wrap.node, event.node):
            return None
        load, call = wrap.node, event.node
        if not isinstance(load, cst.Call) or not isinstance(call, cst.Call):  # both events are always calls
            return None
        statement = call_statement(ctx, call)
        model = dotted_name(event.get("model_arg")) if event.get("model_arg") is not None else None
        if statement is None or model is None:
            return None
        edits = []
        if not wrap.get("trainable") or wrap.get("explicit_false"):
            edits.append(set_is_trainable(ctx, load))
        if statement.target in (None, model):
            edits.append(ctx.delete_statement(statement.statement))
        else:
            edits.append(ctx.replace(statement.statement.body[0], f"{statement.target} = {model}"))
        import_edit = unused_import_edit(ctx, call.func)
        if import_edit is not None:
            edits.append(import_edit)
        return self.make_fix(
            "Load the adapter with `is_trainable=True` instead of wrapping it again", Applicability.UNSAFE, edits
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
    )
