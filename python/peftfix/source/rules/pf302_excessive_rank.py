from __future__ import annotations

from peftfix.source.flow.model import Ev, Event
from peftfix.source.rule import Invalid, Rule, subscribes


class ExcessiveRank(Rule):
    """## What it does
    Finds `LoraConfig(r=N)` with N at or above `max-rank` (256 unless configured).

    ## Why is this bad?
    The number of trainable parameters grows linearly with the rank. At r=1024 a 7B model trains about a fifth
    of its weights — close to full fine-tuning in memory and time, without its quality, and the saved adapter is
    huge. Ranks of 8–16 are the usual, well-tested start.

    ## Example
    ```python
    config = LoraConfig(r=1024, lora_alpha=2048)
    ```

    Use instead:
    ```python
    config = LoraConfig(r=16, lora_alpha=32)
    ```

    ## Fix safety
    Display-only: the right rank is an experimental choice.
    """

    code = "PF302"
    name = "excessive-rank"
    summary = "LoRA rank at or above `max-rank`: a large share of the model becomes trainable."
    fix_availability = "display-only"
    EVENTS = subscribes(Ev.PEFT_CONFIG)

    def on_event(self, history: tuple, event: Event) -> None:
        config = event.get("config")
        rank = config.info.get("rank")
        limit = self.settings.max_rank
        if rank is None or rank < limit:
            return
        message = (
            f"LoRA rank r={rank} is at or above {limit} (max-rank): a large share of the model becomes trainable "
            f"(close to full fine-tuning in memory and time) and such ranks rarely help. Start with r=8–16 and "
            f"raise it only if evaluation says so."
        )
        self.report(
            event.module, event.node, message, self.display_only("Use a rank of 8–16"), rank=rank, max_rank=limit
        )

    VALID = (
        "from peft import LoraConfig\nconfig = LoraConfig(r=16)\n",
        "from peft import LoraConfig\nconfig = LoraConfig(r=255)\n",
        "from peft import LoraConfig\nconfig = LoraConfig(lora_alpha=1024)\n",
        "from peft import LoraConfig\nrank = args.rank\nconfig = LoraConfig(r=rank)\n",
        "class LoraConfig:\n    pass\nconfig = LoraConfig(r=1024)\n",
        "import peft\nrank = 8\nconfig = peft.LoraConfig(r=rank)\n",
    )
    INVALID = (
        Invalid("from peft import LoraConfig\nconfig = LoraConfig(r=1024, lora_alpha=2048)\n"),
        Invalid("from peft import LoraConfig\nconfig = LoraConfig(r=256)\n"),
        Invalid("import peft\nconfig = peft.LoraConfig(\n    r=512,\n    lora_alpha=16,\n)\n"),
        Invalid("from peft import LoraConfig as LC\nRANK = 1024\nconfig = LC(r=RANK)\n"),
        Invalid("from peft import LoraConfig\ndef make():\n    return LoraConfig(r=2048)\n"),
        Invalid("from peft import LoraConfig\nclass Cfg:\n    def build(self):\n        self.c = LoraConfig(r=300)\n"),
    )
