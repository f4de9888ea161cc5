from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from peftfix.diagnostics import Applicability, Edit
from peftfix.source.edits import FixUnavailable
from peftfix.source.flow.model import Ev, Event, creation
from peftfix.source.flow.names import dotted_name
from peftfix.source.rule import Invalid, PlannedFix, Rule, subscribes

if TYPE_CHECKING:
    from peftfix.source.edits.bridge import FixContext


class ResizeBeforeAdapterLoad(Rule):
    """## What it does
    Finds `PeftModel.from_pretrained(model, path)` where the tokenizer was extended (`add_tokens`,
    `add_special_tokens`) or is loaded from the adapter's directory, and `model.resize_token_embeddings(...)`
    was not called on the model first.

    ## Why is this bad?
    An adapter trained after growing the vocabulary saves `embed_tokens`/`lm_head` (via `modules_to_save`) with
    the larger row count. The base model still has the original vocabulary, so loading fails with
    `size mismatch for base_model.model.model.embed_tokens...: copying a param with shape [33004, 4096] ...
    the shape in current model is [32000, 4096]`.

    ## Example
    ```python
    tokenizer = AutoTokenizer.from_pretrained(adapter_path)
    model = AutoModelForCausalLM.from_pretrained(base_path)
    model = PeftModel.from_pretrained(model, adapter_path)
    ```

    Use instead:
    ```python
    tokenizer = AutoTokenizer.from_pretrained(adapter_path)
    model = AutoModelForCausalLM.from_pretrained(base_path)
    model.resize_token_embeddings(len(tokenizer))
    model = PeftModel.from_pretrained(model, adapter_path)
    ```

    ## Fix safety
    Inserting `model.resize_token_embeddings(len(tokenizer))` before the load is safe when a tokenizer variable
    is in scope: the adapter can only load at the tokenizer's size. Otherwise the finding has no fix.
    """

    code = "PF401"
    name = "resize-before-adapter-load"
    summary = "Adapter of a resized vocabulary loaded without `resize_token_embeddings` first."
    fix_availability = "safe"
    EVENTS = subscribes(Ev.LOAD_PEFT)

    def on_event(self, history: tuple, event: Event) -> None:
        if any(earlier.kind is Ev.RESIZE for earlier in history):
            return
        created = creation(history)
        base_key = created.get("path_key") if created is not None else None
        evidence = self._tokenizer_evidence(event, event.get("tokenizers", ()), base_key)
        in_scope = evidence is not None
        if evidence is None:
            evidence = self._tokenizer_evidence(event, event.get("caller_tokenizers", ()), base_key)
        if evidence is None:
            return
        tokenizer, why = evidence
        message = (
            f"The tokenizer {why}, but `PeftModel.from_pretrained` runs before `model.resize_token_embeddings(...)`: "
            f'loading fails with "size mismatch for ...embed_tokens" (the adapter was saved with the larger '
            f"vocabulary). Call `model.resize_token_embeddings(len({tokenizer}))` first."
        )
        fix = self._fix(event, tokenizer) if in_scope else self._caller_fix(tokenizer)
        self.report(event.module, event.node, message, fix)

    def _caller_fix(self, tokenizer: str) -> PlannedFix:
        return self.display_only(
            f"Resize the model to the caller's tokenizer (`model.resize_token_embeddings(len({tokenizer}))`) "
            "before this load"
        )

    def _tokenizer_evidence(
        self, event: Event, tokenizers: tuple, base_key: Optional[str]
    ) -> Optional[tuple[str, str]]:
        path_key = event.get("path_key")
        for name, _tokenizer, histories in tokenizers:
            for history in histories:
                added = next((e for e in history if e.kind is Ev.TOKENS_ADDED), None)
                if added is not None:
                    return name, f"was extended with `{added.get('method')}` ({added.where(event.module)})"
                created = history[0] if history and history[0].kind is Ev.CREATE_TOKENIZER else None
                # A tokenizer saved with the adapter has its vocabulary, unless the base model comes from there too.
                from_adapter = path_key is not None and created is not None and created.get("path_key") == path_key
                if from_adapter and base_key != path_key:
                    return name, "is loaded from the adapter's directory (its vocabulary was saved with the adapter)"
        return None

    def _fix(self, event: Event, tokenizer: str) -> PlannedFix:
        module, load = event.module, event.node
        model = dotted_name(event.get("model_arg"))
        statement = module.statement_of(load)
        fallback = self.display_only("Call `model.resize_token_embeddings(len(tokenizer))` before loading the adapter")
        if model is None or statement is None or "." in tokenizer or not module.is_alone_on_its_lines(statement):
            return fallback
        line = f"{model}.resize_token_embeddings(len({tokenizer}))"

        def build(context: FixContext) -> list[Optional[Edit]]:
            from peftfix.source.edits.recipes import statement_line

            edit = context.cst.insert_before_statement(statement_line(context, load), line)
            if edit is None:
                raise FixUnavailable("the load does not start its line")
            return [edit]

        return self.plan(f"Insert `{line}`", Applicability.SAFE, build)

    VALID = (
        """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoModelForCausalLM.from_pretrained(BASE)
model.resize_token_embeddings(len(tokenizer))
model = PeftModel.from_pretrained(model, ADAPTER)
""",
        # The tokenizer is the base's, not extended.
        """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(BASE)
model = AutoModelForCausalLM.from_pretrained(BASE)
model = PeftModel.from_pretrained(model, ADAPTER)
""",
        # AutoPeftModel resizes by itself from the adapter's tokenizer.
        """
from transformers import AutoTokenizer
from peft import AutoPeftModelForCausalLM
tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoPeftModelForCausalLM.from_pretrained(ADAPTER)
""",
        # Extended and resized, through `import transformers`.
        """
import transformers
from peft import PeftModel
tok = transformers.AutoTokenizer.from_pretrained(BASE)
tok.add_special_tokens({"pad_token": "<pad>"})
model = transformers.AutoModelForCausalLM.from_pretrained(BASE)
model.resize_token_embeddings(len(tok))
model = PeftModel.from_pretrained(model, "adapter")
""",
        # A local tokenizer class is not transformers'.
        """
from transformers import AutoModelForCausalLM
from peft import PeftModel
class AutoTokenizer:
    @staticmethod
    def from_pretrained(path):
        return None
tok = AutoTokenizer.from_pretrained(ADAPTER)
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), ADAPTER)
""",
        # Different directories.
        """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained("base-dir")
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("base-dir"), "adapter-dir")
""",
    )
    INVALID = (
        # The common pattern: tokenizer from the adapter directory.
        Invalid(
            """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoModelForCausalLM.from_pretrained(BASE)
model = PeftModel.from_pretrained(model, ADAPTER)
""",
            fixed="""
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoModelForCausalLM.from_pretrained(BASE)
model.resize_token_embeddings(len(tokenizer))
model = PeftModel.from_pretrained(model, ADAPTER)
""",
        ),
        # Extended with add_tokens; aliases.
        Invalid(
            """
from transformers import AutoTokenizer as AT
from peft import PeftModel as PM
tok = AT.from_pretrained("base")
tok.add_tokens(["<tool>", "</tool>"])
model = PM.from_pretrained(base_model, "adapter")
""",
            fixed="""
from transformers import AutoTokenizer as AT
from peft import PeftModel as PM
tok = AT.from_pretrained("base")
tok.add_tokens(["<tool>", "</tool>"])
base_model.resize_token_embeddings(len(tok))
model = PM.from_pretrained(base_model, "adapter")
""",
        ),
        # Same path through an environment variable, inside a function.
        Invalid(
            """
import os
import transformers
import peft
def main():
    tokenizer = transformers.LlamaTokenizer.from_pretrained(os.environ.get("ADAPTER", "org/lora"))
    model = transformers.AutoModelForCausalLM.from_pretrained("base")
    model = peft.PeftModel.from_pretrained(model, os.environ.get("ADAPTER", "org/lora"))
""",
            fixed="""
import os
import transformers
import peft
def main():
    tokenizer = transformers.LlamaTokenizer.from_pretrained(os.environ.get("ADAPTER", "org/lora"))
    model = transformers.AutoModelForCausalLM.from_pretrained("base")
    model.resize_token_embeddings(len(tokenizer))
    model = peft.PeftModel.from_pretrained(model, os.environ.get("ADAPTER", "org/lora"))
""",
        ),
        # Resize happened on another model object.
        Invalid(
            """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(path)
other = AutoModelForCausalLM.from_pretrained(BASE)
other.resize_token_embeddings(len(tokenizer))
model = AutoModelForCausalLM.from_pretrained(BASE)
model = PeftModel.from_pretrained(
    model,
    path,
)
"""
        ),
        # Resize only on one branch: the other path still fails.
        Invalid(
            """
from transformers import AutoModelForCausalLM, AutoTokenizer
from peft import PeftModel
tokenizer = AutoTokenizer.from_pretrained(ADAPTER)
model = AutoModelForCausalLM.from_pretrained(BASE)
if grow:
    model.resize_token_embeddings(len(tokenizer))
model = PeftModel.from_pretrained(model, ADAPTER)
"""
        ),
        # Special tokens added inside a method.
        Invalid(
            """
from transformers import AutoTokenizer
from peft import PeftModel
class Loader:
    def load(self, base):
        self.tokenizer = AutoTokenizer.from_pretrained("base")
        self.tokenizer.add_special_tokens({"additional_special_tokens": ["<x>"]})
        return PeftModel.from_pretrained(base, "adapter")
"""
        ),
    )
