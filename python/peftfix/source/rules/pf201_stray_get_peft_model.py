from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits.decisions import (
    assigned_between,
    call_statement,
    next_rebinding,
    references_between,
    same_block,
)
from peftfix.source.flow.model import Ev, Event, last_since_unwrap
from peftfix.source.flow.names import dotted_name
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext


class StrayGetPeftModel(Rule):
    """## What it does
    Finds `get_peft_model(model, config)` on a model that is later handed to `PeftModel.from_pretrained(...)`
    (or `load_adapter(...)`) to load a trained adapter.

    ## Why is this bad?
    `get_peft_model` injects a *new*, untrained LoRA adapter (its `lora_B` is zero) into the model, in place.
    Loading the trained adapter on top of that wrapped model does not apply it: there is no error and no
    warning, and the output is exactly the base model's. The fine-tuning silently does nothing.

    ## Example
    ```python
    model = AutoModelForCausalLM.from_pretrained(base_path)
    model = get_peft_model(model, lora_config)
    model = PeftModel.from_pretrained(model, adapter_path)
    ```

    Use instead:
    ```python
    model = AutoModelForCausalLM.from_pretrained(base_path)
    model = PeftModel.from_pretrained(model, adapter_path)
    ```

    ## Fix safety
    The fix removes the `get_peft_model` statement and passes the base model to `PeftModel.from_pretrained`.
    It is safe when nothing else uses what the removed statement bound (or the wrapped model before the load);
    otherwise it is unsafe. With `load_adapter` there is no fix.
    """

    code = "PF201"
    name = "stray-get-peft-model"
    summary = "`get_peft_model` before loading a trained adapter: the adapter is silently not applied."
    fix_availability = "sometimes"
    EVENTS = subscribes(Ev.LOAD_PEFT)

    def on_event(self, history: tuple, event: Event) -> None:
        wrap = last_since_unwrap(history, (Ev.GET_PEFT_MODEL,))
        if wrap is None or wrap.get("by_trainer"):
            return
        if self._loads_into_the_original_name(wrap, event):
            effect = (
                "the model already holds an untrained adapter in place, and whether the trained one replaces it "
                "depends on the PEFT version (older versions silently keep the untrained one: output equals the "
                "base model's)"
            )
        else:
            effect = "the trained weights are silently not applied and the output equals the base model's"
        message = (
            f"`get_peft_model` wraps the model in a new, untrained LoRA adapter before `PeftModel.from_pretrained` "
            f"({event.where(wrap.module)}) loads the trained one: {effect}. Pass the base model straight to "
            f"`PeftModel.from_pretrained` and drop this call."
        )
        self.report(wrap.module, wrap.node, message, self._fix(wrap, event))

    @staticmethod
    def _loads_into_the_original_name(wrap: Event, load: Event) -> bool:
        """``get_peft_model(base, cfg)`` then ``PeftModel.from_pretrained(base, ...)``: the in-place variant."""
        wrapped, loaded = wrap.get("model_arg"), load.get("model_arg")
        return wrapped is not None and loaded is not None and dotted_name(wrapped) == dotted_name(loaded)

    def on_final(self, history: tuple) -> None:
        for index, event in enumerate(history):
            # Loading under the active name ("default") replaces the untrained weights: that one is applied.
            if event.kind is not Ev.LOAD_ADAPTER or event.get("adapter_name") in (None, "default"):
                continue
            wrap = last_since_unwrap(history[:index], (Ev.GET_PEFT_MODEL,))
            if (
                wrap is None
                or wrap.get("by_trainer")
                or any(later.kind is Ev.SET_ADAPTER for later in history[index + 1 :])
            ):
                continue
            message = (
                f"`get_peft_model` adds a new, untrained adapter that stays active after `load_adapter` "
                f"({event.where(wrap.module)}) loads the trained one next to it: the output equals the base "
                f"model's. Load the trained adapter with `PeftModel.from_pretrained` on the base model instead "
                f"(or activate it with `set_adapter`)."
            )
            self.report(wrap.module, wrap.node, message)

    def _fix(self, wrap: Event, load: Event) -> Optional[PlannedFix]:
        module, call = wrap.module, wrap.node
        if load.module is not module:  # the load is in another file: the fix spans two files
            return None
        statement = call_statement(module, call)
        base = dotted_name(wrap.get("model_arg"))
        load_arg = load.get("model_arg")
        # Only when the load always follows the call: removing a call that another path needs would break it.
        if statement is None or base is None or load_arg is None or not same_block(module, call, load.node):
            return None
        start = module.span(statement.statement)[1]
        load_statement = module.statement_of(load.node)
        load_start = module.span(load_statement if load_statement is not None else load.node)[0]
        if start > load_start or assigned_between(module, base, start, load_start):
            return None
        loaded = dotted_name(load_arg)
        replace_load_arg = loaded != base
        if replace_load_arg and (loaded is None or loaded != statement.target):
            return None
        # Who else would notice the removal: readers of the removed name, or of the wrapped model before the load.
        watched = statement.target if statement.target not in (None, base) else base
        end = load_start
        if watched == statement.target:
            rebound = next_rebinding(module, watched, statement.statement)
            end = len(module.source) if rebound is None else rebound
        safe = not references_between(module, watched, start, end, ignore=[load_arg])
        delete = safe or watched == base
        target = statement.target

        def build(context: FixContext) -> list[Optional[Edit]]:
            from peftfix.source.edits.recipes import statement_line, unused_import_edit

            ctx = context.cst
            line = statement_line(context, call)
            edits: list[Optional[Edit]] = []
            if replace_load_arg:
                edits.append(ctx.replace(context.node(load_arg), base))
            if delete:
                edits.append(ctx.delete_statement(line))
            else:  # keep the name bound so later code still runs: it now holds the base model
                edits.append(ctx.replace(line.body[0], f"{target} = {base}"))
            import_edit = unused_import_edit(ctx, context.call(call).func)
            if import_edit is not None:
                edits.append(import_edit)
            return edits

        applicability = Applicability.SAFE if safe else Applicability.UNSAFE
        return self.plan("Remove the stray `get_peft_model` call", applicability, build)

    VALID = (
        # Training from scratch: get_peft_model alone.
        """
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("m")
model = get_peft_model(model, LoraConfig())
""",
        # Loading a trained adapter on the base model.
        """
from peft import PeftModel
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("m")
model = PeftModel.from_pretrained(model, "adapter")
""",
        # Either branch, never both: resume or start fresh.
        """
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("m")
if resume:
    model = PeftModel.from_pretrained(model, "adapter", is_trainable=True)
else:
    model = get_peft_model(model, LoraConfig())
""",
        # A fresh base model for the load.
        """
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM
model = get_peft_model(AutoModelForCausalLM.from_pretrained("m"), LoraConfig())
model.save_pretrained("out")
base = AutoModelForCausalLM.from_pretrained("m")
model = PeftModel.from_pretrained(base, "out")
""",
        # merge_and_unload() gives a plain model back before the next load.
        """
from peft import LoraConfig, PeftModel, get_peft_model
model = get_peft_model(base, LoraConfig())
model = model.merge_and_unload()
model = PeftModel.from_pretrained(model, "adapter")
""",
        # A local function named get_peft_model is not peft's.
        """
from peft import PeftModel
def get_peft_model(model, config):
    return model
model = get_peft_model(base, config)
model = PeftModel.from_pretrained(model, "adapter")
""",
        # load_adapter followed by set_adapter activates the loaded adapter.
        """
from peft import LoraConfig, get_peft_model
model = get_peft_model(base, LoraConfig())
model.load_adapter("adapter", adapter_name="trained")
model.set_adapter("trained")
""",
        # Loading under the active adapter's name replaces the untrained weights.
        """
from peft import LoraConfig, get_peft_model
model = get_peft_model(base, LoraConfig())
model.load_adapter("adapter", adapter_name="default")
""",
        # unsloth's get_peft_model for a new adapter, no adapter loaded.
        """
from unsloth import FastLanguageModel
model, tokenizer = FastLanguageModel.from_pretrained("unsloth/llama-3-8b-bnb-4bit")
model = FastLanguageModel.get_peft_model(model, r=16, lora_alpha=16)
""",
        # Prompt tuning injects nothing into the base: loading a trained prompt onto it is unaffected.
        """
from peft import PeftModel, PromptTuningConfig, get_peft_model
fresh = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4))
trained = PeftModel.from_pretrained(base, "prompt-adapter")
""",
    )
    INVALID = (
        # The common pattern: wrap "to set up the LoRA structure", then load.
        Invalid(
            """
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("m")
config = LoraConfig(r=8)
model = get_peft_model(model, config)
model = PeftModel.from_pretrained(model, "adapter")
""",
            fixed="""
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM
model = AutoModelForCausalLM.from_pretrained("m")
config = LoraConfig(r=8)
model = PeftModel.from_pretrained(model, "adapter")
""",
        ),
        # Bare call mutates in place; `import peft` attribute access.
        Invalid(
            """
import peft
peft.get_peft_model(base, peft.LoraConfig())
model = peft.PeftModel.from_pretrained(base, "adapter")
""",
            fixed="""
import peft
model = peft.PeftModel.from_pretrained(base, "adapter")
""",
        ),
        # A second name for the wrapped model; aliases.
        Invalid(
            """
from peft import PeftModel as PM, get_peft_model as gpm
peft_model = gpm(base, config)
model = PM.from_pretrained(peft_model, "adapter")
""",
            fixed="""
from peft import PeftModel as PM
model = PM.from_pretrained(base, "adapter")
""",
        ),
        # The wrapped model is used before the load: the fix is unsafe.
        Invalid(
            """
from peft import PeftModel, get_peft_model
model = get_peft_model(model, config)
model.print_trainable_parameters()
model = PeftModel.from_pretrained(model, "adapter")
""",
            fixed="""
from peft import PeftModel
model.print_trainable_parameters()
model = PeftModel.from_pretrained(model, "adapter")
""",
        ),
        # Through a helper function; multi-line call.
        Invalid(
            """
from peft import PeftModel, get_peft_model
def wrap(model, config):
    return get_peft_model(
        model,
        config,
    )
model = wrap(base, config)
model = PeftModel.from_pretrained(model, "adapter")
"""
        ),
        # Inside a method, with load_adapter and no set_adapter.
        Invalid(
            """
from peft import get_peft_model
class Loader:
    def load(self, base, config):
        model = get_peft_model(base, config)
        model.load_adapter("adapter", adapter_name="trained")
        return model
"""
        ),
        # unsloth's get_peft_model is a get_peft_model too.
        Invalid(
            """
from peft import PeftModel
from unsloth import FastLanguageModel
model, tokenizer = FastLanguageModel.from_pretrained("unsloth/llama-3-8b-bnb-4bit")
model = FastLanguageModel.get_peft_model(model, r=16)
model = PeftModel.from_pretrained(model, "outputs/checkpoint-500")
"""
        ),
    )
