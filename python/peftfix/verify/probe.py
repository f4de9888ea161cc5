"""The probe inputs: the tokenized prompts when a tokenizer is at hand, else fixed token ids in the vocabulary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional

PROBE_SEQUENCES = 4
PROBE_LENGTH = 16
PROBE_SEED = 0
DEFAULT_PROMPTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! Please write a short poem about the sea.",
    "Question: what is the capital of France? Answer:",
    "def add(a, b):\n    return a + b\n",
)


def vocab_size(model: Any) -> int:
    try:
        embeddings = model.get_input_embeddings()
        if embeddings is not None and hasattr(embeddings, "num_embeddings"):
            return int(embeddings.num_embeddings)
    except (AttributeError, NotImplementedError):
        pass
    config = getattr(model, "config", None)
    size = getattr(config, "vocab_size", None)
    if size is None and config is not None and hasattr(config, "get_text_config"):
        size = getattr(config.get_text_config(), "vocab_size", None)
    return int(size or 2)


def deterministic_inputs(vocab_size: int, sequences: int = PROBE_SEQUENCES, length: int = PROBE_LENGTH) -> list[Any]:
    """``sequences`` fixed rows of ``length`` token ids in ``[0, vocab_size)`` (same on every device and run)."""
    import torch

    generator = torch.Generator().manual_seed(PROBE_SEED)
    ids = torch.randint(0, max(int(vocab_size), 1), (sequences, length), generator=generator)
    return [{"input_ids": ids}]


def tokenized_inputs(tokenizer_dir: str, prompts: Sequence[str], vocab_size: int) -> Optional[list[Any]]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except Exception:  # an unusable tokenizer only means the deterministic probe
        return None
    batches = []
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt")
        ids = encoded["input_ids"]
        if ids.numel() == 0 or int(ids.max()) >= vocab_size:
            return None
        batches.append({"input_ids": ids, "attention_mask": encoded.get("attention_mask")})
    return batches


def normalize_inputs(inputs: Any) -> list[dict[str, Any]]:
    """verify_model's ``inputs``: a tensor of ids, a dict (BatchEncoding), or a list of either."""
    import torch

    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    batches = []
    for item in items:
        if isinstance(item, torch.Tensor):
            batches.append({"input_ids": item if item.dim() == 2 else item.unsqueeze(0)})
        elif isinstance(item, Mapping):
            batches.append(dict(item))
        else:
            raise TypeError(f"inputs must be a tensor of token ids or a dict of tensors, not {type(item).__name__}")
    return batches
