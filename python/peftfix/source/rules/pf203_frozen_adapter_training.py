from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits.decisions import can_set_is_trainable
from peftfix.source.flow.model import Ev, Event, last_wrap
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext

# After the load, these make the adapter trainable again (or train something else on purpose).
THAWING = (Ev.UNFREEZE, Ev.ADD_ADAPTER)


class FrozenAdapterTraining(Rule):
    """## What it does
    Finds an adapter loaded with `PeftModel.from_pretrained(...)` (or `AutoPeftModel*.from_pretrained(...)`)
    without `is_trainable=True` whose model is then trained: `Trainer(...).train()`, an optimizer over its
    parameters stepping, or `loss.backward()` on its output.

    ## Why is this bad?
    `from_pretrained` loads adapters for inference: every LoRA parameter gets `requires_grad=False`. Training
    then runs without error but updates nothing — the model has 0 trainable parameters and the saved adapter
    is the one you loaded.

    ## Example
    ```python
    model = PeftModel.from_pretrained(base, "adapter")
    Trainer(model=model, args=args, train_dataset=data).train()
    ```

    Use instead:
    ```python
    model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
    Trainer(model=model, args=args, train_dataset=data).train()
    ```

    ## Fix safety
    Adding `is_trainable=True` is safe: the script trains the model, which is only possible with it. Turning an
    explicit `is_trainable=False` into `True` is unsafe (the author wrote it on purpose).
    """

    code = "PF203"
    name = "frozen-adapter-training"
    summary = "Adapter loaded without `is_trainable=True` and then trained: nothing trains."
    fix_availability = "sometimes"
    EVENTS = subscribes(Ev.TRAIN, *THAWING)

    def __init__(self, *args):
        super().__init__(*args)
        # Loads whose adapter was unfrozen on *some* path: unfreezing is usually conditional per parameter
        # (``if "lora" in name: p.requires_grad = True``), so the path that skips it is not a real one.
        self._thawed: set = set()

    def on_event(self, history: tuple, event: Event) -> None:
        wrap = last_wrap(history)
        if event.kind in THAWING:
            self._thawed.add(wrap)
            return
        if wrap is None or wrap.kind not in (Ev.LOAD_PEFT, Ev.CREATE_PEFT) or wrap.get("trainable"):
            return
        if wrap in self._thawed:
            return
        message = (
            f"The adapter is loaded without `is_trainable=True` and then trained ({event.get('via')}, "
            f"{event.where(wrap.module)}): `from_pretrained` loads it frozen for inference, so no parameter requires "
            f"grad and training changes nothing. Pass `is_trainable=True`."
        )
        self.report(wrap.module, wrap.node, message, self._fix(wrap))

    def _fix(self, wrap: Event) -> Optional[PlannedFix]:
        load = wrap.node
        if not can_set_is_trainable(load):
            return None
        applicability = Applicability.UNSAFE if wrap.get("explicit_false") else Applicability.SAFE

        def build(context: FixContext) -> list[Optional[Edit]]:
            from peftfix.source.edits.recipes import set_is_trainable

            return [set_is_trainable(context.cst, context.call(load))]

        return self.plan("Add `is_trainable=True`", applicability, build)

    VALID = (
        """
from peft import PeftModel
model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
trainer = Trainer(model=model, train_dataset=data)
trainer.train()
""",
        # Inference only.
        """
from peft import PeftModel
model = PeftModel.from_pretrained(base, "adapter")
print(model.generate(ids))
""",
        # Unfrozen by hand.
        """
from peft import PeftModel
import torch
model = PeftModel.from_pretrained(base, "adapter")
for name, param in model.named_parameters():
    if "lora" in name:
        param.requires_grad = True
optimizer = torch.optim.AdamW(model.parameters())
model(**batch).loss.backward()
""",
        # A computed flag may well be True.
        """
from peft import PeftModel
from transformers import Trainer
model = PeftModel.from_pretrained(base, "adapter", is_trainable=args.train)
Trainer(model=model).train()
""",
        # A fresh adapter from get_peft_model is trainable.
        """
from peft import get_peft_model
from transformers import Trainer
model = get_peft_model(base, config)
Trainer(model=model).train()
""",
        # A local PeftModel class is not peft's.
        """
from transformers import Trainer
class PeftModel:
    @classmethod
    def from_pretrained(cls, model, path):
        return model
model = PeftModel.from_pretrained(base, "adapter")
Trainer(model=model).train()
""",
        # Model's .train() only switches mode.
        """
from peft import PeftModel
model = PeftModel.from_pretrained(base, "adapter")
model.train()
""",
    )
    INVALID = (
        Invalid(
            """
from peft import PeftModel
from transformers import Trainer
model = PeftModel.from_pretrained(base, "adapter")
trainer = Trainer(model=model, train_dataset=data)
trainer.train()
""",
            fixed="""
from peft import PeftModel
from transformers import Trainer
model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
trainer = Trainer(model=model, train_dataset=data)
trainer.train()
""",
        ),
        # A plain torch loop, aliased imports, multi-line call with trailing comma.
        Invalid(
            """
import torch
from peft import PeftModel as PM
model = PM.from_pretrained(
    base,
    "adapter",
)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
loss = model(**batch).loss
loss.backward()
optimizer.step()
""",
            fixed="""
import torch
from peft import PeftModel as PM
model = PM.from_pretrained(
    base,
    "adapter",
    is_trainable=True,
)
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
loss = model(**batch).loss
loss.backward()
optimizer.step()
""",
        ),
        # AutoPeftModel through `import peft`.
        Invalid(
            """
import peft
from trl import SFTTrainer
model = peft.AutoPeftModelForCausalLM.from_pretrained("adapter")
SFTTrainer(model=model, train_dataset=data).train()
""",
            fixed="""
import peft
from trl import SFTTrainer
model = peft.AutoPeftModelForCausalLM.from_pretrained("adapter", is_trainable=True)
SFTTrainer(model=model, train_dataset=data).train()
""",
        ),
        # Trained inside a function that receives the trainer.
        Invalid(
            """
from peft import PeftModel
from transformers import Trainer
def fit(trainer):
    trainer.train()
model = PeftModel.from_pretrained(base, "adapter")
fit(Trainer(model=model))
"""
        ),
        # Loaded in a function, trained by the caller.
        Invalid(
            """
from peft import PeftModel
from transformers import Trainer
def load(base, path):
    model = PeftModel.from_pretrained(base, path)
    return model
model = load(base, "adapter")
Trainer(model=model).train()
"""
        ),
        # Explicit False is flipped, unsafely.
        Invalid(
            """
from peft import PeftModel
from transformers import Trainer
model = PeftModel.from_pretrained(base, "adapter", is_trainable=False)
Trainer(model=model).train()
""",
            fixed="""
from peft import PeftModel
from transformers import Trainer
model = PeftModel.from_pretrained(base, "adapter", is_trainable=True)
Trainer(model=model).train()
""",
        ),
    )
