from __future__ import annotations

import ast
import re
from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits import FixUnavailable
from peftfix.source.flow.model import Ev, Event, last_wrap
from peftfix.source.module import SourceModule
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext

# Module names that are never Linear layers in transformers models (or that live inside a LoRA layer).
NON_LINEAR_NAMES = frozenset(
    {
        "dropout",
        "lora_dropout",
        "attn_dropout",
        "resid_dropout",
        "embd_pdrop",
        "attention_dropout",
        "hidden_dropout",
        "base_layer",
        "default",
        "act_fn",
        "act",
        "activation_fn",
        "activation",
        "rotary_emb",
        "norm",
        "layernorm",
        "layer_norm",
        "ln_f",
        "ln_1",
        "ln_2",
        "input_layernorm",
        "post_attention_layernorm",
        "final_layernorm",
        "post_layernorm",
        "pre_layernorm",
        "rms_norm",
        "embed_positions",
        "lora_A",
        "lora_B",
        "lora_embedding_A",
        "lora_embedding_B",
        "lora_magnitude_vector",
        "modules_to_save",
        "original_module",
        "gelu",
        "relu",
        "silu",
        "softmax",
    }
)
NON_LINEAR_SUFFIX = re.compile(r"(dropout|_norm|layernorm|rmsnorm)$", re.IGNORECASE)
LORA_INTERNALS = ("base_layer", "default", "lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B")


def is_non_linear(name: str) -> bool:
    return name in NON_LINEAR_NAMES or bool(NON_LINEAR_SUFFIX.search(name))


class NonLinearTargetModule(Rule):
    """## What it does
    Finds `target_modules` entries that are never Linear layers — `dropout`, `lora_dropout`, norms, `act_fn`,
    `rotary_emb` — or LoRA's own internals (`base_layer`, `default`, `lora_A`), and Linear-name helpers (such as
    `find_all_linear_names(model)`) run over a model that already has LoRA layers.

    ## Why is this bad?
    LoRA adapts Linear (and Embedding/Conv1D) layers. A dropout, norm or activation has no weight to adapt:
    PEFT raises "Target module Dropout is not supported" (or silently matches nothing). Names like
    `base_layer`/`default` come from scanning an already-wrapped PeftModel, a common multi-stage training
    mistake: the second adapter would be injected into the first one.

    ## Example
    ```python
    config = LoraConfig(target_modules=["q_proj", "v_proj", "dropout"])
    ```

    Use instead:
    ```python
    config = LoraConfig(target_modules=["q_proj", "v_proj"])
    ```

    ## Fix safety
    Removing the offending names from a literal list is safe: they could only fail or match nothing. When
    every name is offending, or the names come from a helper, there is no fix.
    """

    code = "PF301"
    name = "non-linear-target-module"
    summary = "`target_modules` names a layer that is not Linear (dropout, norm, LoRA internals)."
    fix_availability = "safe"
    EVENTS = subscribes(Ev.PEFT_CONFIG, Ev.LINEAR_HELPER)

    def on_event(self, history: tuple, event: Event) -> None:
        if event.kind is Ev.LINEAR_HELPER:
            self._helper(history, event)
            return
        config = event.get("config")
        targets, module = config.info.get("targets"), config.info.get("targets_module")
        if targets is None or module is None:
            return
        elements = list(targets.elts)
        names = [
            element.value if isinstance(element, ast.Constant) and isinstance(element.value, str) else None
            for element in elements
        ]
        offending = [index for index, name in enumerate(names) if name is not None and is_non_linear(name)]
        for index in offending:
            name = names[index]
            if name in LORA_INTERNALS:
                why = "is part of an existing LoRA layer (the model was already wrapped when the names were listed)"
            else:
                why = 'is not a Linear layer: PEFT raises "Target module ... is not supported" or matches nothing'
            message = (
                f"`target_modules` names `{name}`, which {why}. Target Linear layers such as `q_proj`/`v_proj`, "
                f'or `"all-linear"`.'
            )
            fix = self._fix(module, targets, index, len(offending) == len(elements))
            self.report(module, elements[index], message, fix)

    def _fix(self, module: SourceModule, targets: ast.AST, index: int, all_offending: bool) -> PlannedFix:
        if all_offending:
            return self.display_only("Replace the list with the model's Linear layer names")

        def build(context: FixContext) -> list[Optional[Edit]]:
            import libcst as cst

            from peftfix.source.edits.sequences import remove_from_literal

            literal = context.node(targets)
            if not isinstance(literal, (cst.List, cst.Tuple, cst.Set)):
                raise FixUnavailable("not a literal")
            return [context.cst.replace(literal, remove_from_literal(literal, index))]

        return self.plan("Remove the entry", Applicability.SAFE, build)

    def _helper(self, history: tuple, event: Event) -> None:
        wrap = last_wrap(history)
        if wrap is None:
            return
        message = (
            f"`{event.get('helper')}` scans a model that already has LoRA layers (added at "
            f"{wrap.where(event.module)}): it returns LoRA's internals (`base_layer`, `default`), which LoRA cannot "
            f"target. Compute the names on the base model before wrapping it."
        )
        self.report(event.module, event.node, message)

    VALID = (
        """
from peft import LoraConfig
config = LoraConfig(target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
""",
        """
from peft import LoraConfig
config = LoraConfig(target_modules="all-linear", modules_to_save=["lm_head", "embed_tokens"])
""",
        # lora_dropout is an argument, not a target.
        """
from peft import LoraConfig
config = LoraConfig(r=8, lora_dropout=0.05, target_modules=["c_attn"])
""",
        # A helper over the base model, before wrapping.
        """
from peft import LoraConfig, get_peft_model
def find_all_linear_names(model):
    return [name for name, module in model.named_modules()]
config = LoraConfig(target_modules=find_all_linear_names(base))
model = get_peft_model(base, config)
""",
        # Not peft's LoraConfig.
        """
class LoraConfig:
    def __init__(self, **kw):
        pass
config = LoraConfig(target_modules=["dropout"])
""",
        # Embedding and lm_head are valid LoRA targets.
        """
import peft
config = peft.LoraConfig(target_modules=("embed_tokens", "lm_head", "gate_proj"))
""",
    )
    INVALID = (
        Invalid(
            """
from peft import LoraConfig
config = LoraConfig(target_modules=["q_proj", "v_proj", "dropout"])
""",
            fixed="""
from peft import LoraConfig
config = LoraConfig(target_modules=["q_proj", "v_proj"])
""",
        ),
        # The list sits in a variable; multi-line with trailing comma.
        Invalid(
            """
from peft import LoraConfig as LC
targets = [
    "q_proj",
    "lora_dropout",
    "v_proj",
]
config = LC(r=16, target_modules=targets)
""",
            fixed="""
from peft import LoraConfig as LC
targets = [
    "q_proj",
    "v_proj",
]
config = LC(r=16, target_modules=targets)
""",
        ),
        # LoRA internals from scanning a wrapped model, listed literally.
        Invalid(
            """
import peft
config = peft.LoraConfig(target_modules=("q_proj", "base_layer", "default"))
""",
            fixed="""
import peft
config = peft.LoraConfig(target_modules=("q_proj",))
""",
        ),
        # A helper over the already-wrapped PeftModel.
        Invalid(
            """
from peft import LoraConfig, PeftModel, get_peft_model
model = PeftModel.from_pretrained(base, "stage1")
config = LoraConfig(target_modules=find_all_linear_names(model))
"""
        ),
        # Every entry is wrong: reported, no automatic fix.
        Invalid(
            """
from peft import LoraConfig
config = LoraConfig(target_modules=["input_layernorm", "act_fn"])
"""
        ),
        # Inside a function.
        Invalid(
            """
from peft import LoraConfig
def make_config(rank):
    return LoraConfig(r=rank, target_modules=["q_proj", "rotary_emb"])
""",
            fixed="""
from peft import LoraConfig
def make_config(rank):
    return LoraConfig(r=rank, target_modules=["q_proj"])
""",
        ),
    )
