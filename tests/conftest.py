"""Shared test fixtures: a tiny Llama causal LM and LoRA adapters built locally (CPU, no hub, seconds).

Everything heavy (torch, transformers, peft) is imported lazily inside the fixtures, so test modules that need
none of it (source rules, checkpoint headers) collect and run without the ``verify`` extra installed.

Fixtures (session scoped, paths to directories written with ``save_pretrained``):

- ``tiny_base``: ``LlamaForCausalLM`` (2 layers, hidden 32, 4 heads, intermediate 64, vocab 128) and a
  128-token ``PreTrainedTokenizerFast`` beside it.
- ``tiny_adapter``: a "trained" LoRA adapter for ``tiny_base`` on ``q_proj``/``v_proj``
  (``task_type="CAUSAL_LM"``, ``lora_B`` non-zero, so the adapter changes the output).
- ``resized_adapter``: an adapter trained after the tokenizer was extended with ``add_tokens`` and the model
  resized with ``resize_token_embeddings`` (vocab ``RESIZED_VOCAB``), ``modules_to_save=["lm_head",
  "embed_tokens"]``, saved together with the extended tokenizer.
- ``example_env``: an ``os.environ`` copy that points the example scripts at the tiny model and adapter.
"""

from __future__ import annotations

import os
import tempfile

import pytest

# The servers of the remote-storage tests (HTTP with Range, moto's S3, a stand-in Hub), for every test directory.
from remote.fixtures import hub_server, range_server, s3_env, s3_server  # noqa: F401

# The real-world corpus is other people's code (some of it named test_*.py): input to the corpus test, not tests.
collect_ignore = ["corpus/files"]

# Never reach the hub from tests, including from subprocesses that inherit this environment.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# The base-index cache of `peftfix keys` goes to a directory of this run, never the user's cache.
os.environ.setdefault("PEFTFIX_CACHE_DIR", tempfile.mkdtemp(prefix="peftfix-index-cache-"))

TINY_VOCAB = 128
ADDED_TOKENS = ["<tool_call>", "</tool_call>", "<think>", "</think>", "<img>", "</img>", "<sep>", "<cls>"]
RESIZED_VOCAB = TINY_VOCAB + len(ADDED_TOKENS)
LORA_TARGETS = ["q_proj", "v_proj"]
SEED = 0

_SPECIAL = ["<unk>", "<s>", "</s>", "<pad>"]
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "a",
    "an",
    "of",
    "to",
    "in",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "as",
    "was",
    "be",
    "by",
    "this",
    "are",
    "hello",
    "world",
    "model",
    "adapter",
    "lora",
    "peft",
    "train",
    "loss",
    "token",
    "answer",
    "question",
    "please",
    "write",
    "short",
    "poem",
    "about",
]


def _tokenizer():
    """A word-level fast tokenizer with exactly TINY_VOCAB entries, built without the hub."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = _SPECIAL + _WORDS
    words += [f"w{i}" for i in range(TINY_VOCAB - len(words))]
    assert len(words) == TINY_VOCAB == len(set(words))
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )


def _tiny_model(vocab_size: int = TINY_VOCAB):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=3,
    )
    torch.manual_seed(SEED)
    return LlamaForCausalLM(config).eval()


def _train_lora(peft_model) -> None:
    """Stand in for training: make every zero-initialised factor non-zero (lora_B; lora_embedding_A on embeddings)."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name or "lora_embedding_A" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """Directory with a tiny LlamaForCausalLM (model.safetensors + config) and its 128-token tokenizer."""
    path = tmp_path_factory.mktemp("tiny-llama")
    _tiny_model().save_pretrained(path)
    _tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_adapter(tiny_base, tmp_path_factory) -> str:
    """Directory with a trained-looking LoRA adapter (q_proj/v_proj, lora_B != 0) for ``tiny_base``."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("tiny-lora")
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    config = LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, lora_dropout=0.05, target_modules=LORA_TARGETS)
    model = get_peft_model(base, config)
    _train_lora(model)
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def resized_adapter(tiny_base, tmp_path_factory) -> str:
    """Adapter trained with an extended vocabulary (RESIZED_VOCAB rows), saved with its tokenizer."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-lora-resized")
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.add_tokens(ADDED_TOKENS)
    assert len(tokenizer) == RESIZED_VOCAB
    torch.manual_seed(SEED)
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    base.resize_token_embeddings(len(tokenizer))
    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=8,
        lora_alpha=16,
        target_modules=LORA_TARGETS,
        modules_to_save=["lm_head", "embed_tokens"],
    )
    model = get_peft_model(base, config)
    _train_lora(model)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def example_env(tiny_base, tiny_adapter) -> dict[str, str]:
    """Environment for running ``examples/*.py`` against the tiny model and adapter."""
    env = dict(os.environ)
    env.update(
        PEFTFIX_BASE_MODEL=tiny_base,
        PEFTFIX_ADAPTER=tiny_adapter,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        PYTHONHASHSEED="0",
    )
    return env
