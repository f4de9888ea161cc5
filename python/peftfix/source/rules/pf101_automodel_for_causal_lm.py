from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits import FixUnavailable
from peftfix.source.edits.decisions import import_binding_count
from peftfix.source.flow.model import Ev, Event, creation
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext

CAUSAL_CLASS = "AutoModelForCausalLM"


class AutoModelForCausalLm(Rule):
    """## What it does
    Finds a base model loaded with `AutoModel` (or a bare `*Model` class such as `LlamaModel`) that is then
    used as a causal language model: LoRA with `task_type="CAUSAL_LM"`, `labels=` in a forward call,
    `.generate()`, a `Trainer`/`SFTTrainer`, or `PeftModel.from_pretrained` of an adapter whose
    `adapter_config.json` (a local directory named in the script) says `"task_type": "CAUSAL_LM"`.

    ## Why is this bad?
    `AutoModel` builds the transformer *without* its language-model head. Training with `labels=` fails
    (`TypeError: LlamaModel.forward() got an unexpected keyword argument 'labels'` in transformers 4; in
    transformers 5 the labels are ignored and no loss comes back), `get_peft_model` with
    `task_type="CAUSAL_LM"` fails for lack of `prepare_inputs_for_generation`, it cannot generate, and a LoRA
    adapter trained on the causal-LM class has keys prefixed `model.model.` that do not match the bare model's
    `model.`: PEFT drops them and `lora_B` stays zero.
    Custom-code models (`trust_remote_code=True`, e.g. ChatGLM) map `AutoModel` to a model with an LM head
    and are not reported; neither is embedding use (`task_type="FEATURE_EXTRACTION"`).

    ## Example
    ```python
    from transformers import AutoModel
    from peft import LoraConfig, get_peft_model

    model = AutoModel.from_pretrained("meta-llama/Llama-3.2-1B-Instruct")
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
    ```

    Use instead:
    ```python
    from transformers import AutoModelForCausalLM
    from peft import LoraConfig, get_peft_model

    model = AutoModelForCausalLM.from_pretrained("meta-llama/Llama-3.2-1B-Instruct")
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
    ```

    ## Fix safety
    The fix loads the model with `AutoModelForCausalLM` and updates the imports (an `AutoModel` import left
    unused is removed). It is safe when the causal-LM use is explicit (`task_type="CAUSAL_LM"`, `labels=`,
    `.generate()`, `SFTTrainer`), and unsafe when the only evidence is a generic `Trainer`. A model built
    directly from a config (`LlamaModel(config)`) is reported without a fix.
    """

    code = "PF101"
    name = "automodel-for-causal-lm"
    summary = "Base model loaded without an LM head (`AutoModel`) but used as a causal LM."
    fix_availability = "sometimes"
    EVENTS = subscribes(Ev.GET_PEFT_MODEL, Ev.CAUSAL_USE, Ev.LOAD_PEFT)

    def on_event(self, history: tuple, event: Event) -> None:
        created = creation(history)
        if created is None or created.kind is not Ev.CREATE_MODEL:
            return
        if created.get("family") not in ("auto-base", "bare") or created.get("trust_remote_code"):
            return
        if event.kind is Ev.GET_PEFT_MODEL:
            tasks = {config.info.get("task_type") for config in event.get("configs", ())}
            if tasks != {"CAUSAL_LM"}:
                return
            reason, explicit = '`task_type="CAUSAL_LM"` LoRA', True
        elif event.kind is Ev.LOAD_PEFT:
            if event.get("adapter_task") != "CAUSAL_LM":
                return
            reason, explicit = "`PeftModel.from_pretrained` of a causal-LM adapter", True
        else:
            reason, explicit = event.get("reason"), event.get("explicit")
        class_name = created.get("class_name")
        message = (
            f"`{class_name}` loads the model without a language-model head, but it is used as a causal LM "
            f"({reason}, {event.where(created.module)}): a causal-LM `get_peft_model` fails (no "
            f"`prepare_inputs_for_generation`), `labels=` is rejected or ignored (no loss), `.generate()` fails, and "
            f"a causal-LM adapter's keys do not match it (`lora_B` loads as zeros). Load it with `{CAUSAL_CLASS}`."
        )
        self.report(created.module, created.get("ref"), message, self._fix(created, explicit))

    def _fix(self, created: Event, explicit: bool) -> Optional[PlannedFix]:
        message = f"Load the model with `{CAUSAL_CLASS}`"
        if created.get("construct") == "init":
            return self.display_only(f"Build the model with `{CAUSAL_CLASS}.from_config(config)`")
        applicability = Applicability.SAFE if explicit else Applicability.UNSAFE
        reference = created.get("ref")
        if isinstance(reference, ast.Attribute):  # transformers.AutoModel / tf.AutoModel

            def replace_attribute(context: FixContext) -> list[Optional[Edit]]:
                node = context.node(reference)
                if not hasattr(node, "attr"):
                    raise FixUnavailable("not an attribute")
                return [context.cst.replace(node.attr, CAUSAL_CLASS)]

            return self.plan(message, applicability, replace_attribute)
        if not isinstance(reference, ast.Name) or import_binding_count(created.module, reference.id) != 1:
            return None

        def replace_name(context: FixContext) -> list[Optional[Edit]]:
            from peftfix.source.edits.imports import binding_of, ensure_imported, is_unused_after

            ctx = context.cst
            node = context.node(reference)
            binding = binding_of(ctx, reference.id)
            if binding is None:
                raise FixUnavailable("no import to rewrite")
            replacing = binding if is_unused_after(ctx, reference.id, [node]) else None
            local_name, import_edits = ensure_imported(ctx, "transformers", CAUSAL_CLASS, replacing)
            return [ctx.replace(node, local_name), *import_edits]

        return self.plan(message, applicability, replace_name)

    VALID = (
        # The right class already.
        """
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
model = AutoModelForCausalLM.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
""",
        # Embedding use of AutoModel is fine.
        """
from transformers import AutoModel
from peft import LoraConfig, get_peft_model
model = AutoModel.from_pretrained("BAAI/bge-base-en")
model = get_peft_model(model, LoraConfig(task_type="FEATURE_EXTRACTION"))
""",
        # Custom code maps AutoModel to a model with an LM head (ChatGLM).
        """
from transformers import AutoModel
from peft import LoraConfig, get_peft_model
model = AutoModel.from_pretrained("THUDM/chatglm3-6b", trust_remote_code=True)
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
""",
        # A local class that shares the name is not transformers'.
        """
from peft import LoraConfig, get_peft_model
class AutoModel:
    @staticmethod
    def from_pretrained(path):
        return object()
model = AutoModel.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
""",
        # No causal evidence: a forward pass without labels.
        """
from transformers import AutoModel
model = AutoModel.from_pretrained("m")
hidden = model(input_ids=ids).last_hidden_state
""",
        # The AutoModel variable is rebound to a causal LM before the causal use.
        """
from transformers import AutoModel, AutoModelForCausalLM
model = AutoModel.from_pretrained("m")
model = AutoModelForCausalLM.from_pretrained("m")
out = model(input_ids=ids, labels=ids)
""",
        # A task head model is fine.
        """
import transformers
model = transformers.LlamaForCausalLM.from_pretrained("m")
model.generate(ids)
""",
    )
    INVALID = (
        Invalid(
            """
from transformers import AutoModel
from peft import LoraConfig, get_peft_model
model = AutoModel.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
""",
            fixed="""
from transformers import AutoModelForCausalLM
from peft import LoraConfig, get_peft_model
model = AutoModelForCausalLM.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM"))
""",
        ),
        # Alias, and TaskType enum.
        Invalid(
            """
from transformers import AutoModel as AM, AutoTokenizer
from peft import LoraConfig, TaskType, get_peft_model
model = AM.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM))
""",
            fixed="""
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import LoraConfig, TaskType, get_peft_model
model = AutoModelForCausalLM.from_pretrained("m")
model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM))
""",
        ),
        # Module attribute access.
        Invalid(
            """
import transformers as tf
model = tf.AutoModel.from_pretrained("m")
out = model(input_ids=ids, labels=ids)
""",
            fixed="""
import transformers as tf
model = tf.AutoModelForCausalLM.from_pretrained("m")
out = model(input_ids=ids, labels=ids)
""",
        ),
        # A bare *Model class, through a function and its return value; the import stays used elsewhere.
        Invalid(
            """
from transformers import LlamaModel
def load(path):
    return LlamaModel.from_pretrained(path)
def other():
    return LlamaModel
model = load("m")
model.generate(ids)
""",
            fixed="""
from transformers import LlamaModel, AutoModelForCausalLM
def load(path):
    return AutoModelForCausalLM.from_pretrained(path)
def other():
    return LlamaModel
model = load("m")
model.generate(ids)
""",
        ),
        # Inside a method, through an attribute of self; multi-line call.
        Invalid(
            """
from transformers import AutoModel, Trainer
class Finetuner:
    def __init__(self, path, data):
        self.model = AutoModel.from_pretrained(
            path,
            torch_dtype="auto",
        )
        self.trainer = Trainer(model=self.model, train_dataset=data)
"""
        ),
        # The evidence is on one branch only: still reachable.
        Invalid(
            """
from transformers import AutoModel
model = AutoModel.from_pretrained("m")
if generate:
    print(model.generate(ids))
"""
        ),
        # SFTTrainer is explicit causal-LM training.
        Invalid(
            """
from transformers import AutoModel
from trl import SFTTrainer
model = AutoModel.from_pretrained("m")
SFTTrainer(model=model, train_dataset=data).train()
""",
            fixed="""
from transformers import AutoModelForCausalLM
from trl import SFTTrainer
model = AutoModelForCausalLM.from_pretrained("m")
SFTTrainer(model=model, train_dataset=data).train()
""",
        ),
    )
