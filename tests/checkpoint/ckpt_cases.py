"""Test checkpoints for the key matcher, written by the real libraries (CPU, seconds).

Bases are tiny Llama, Qwen2 and GPT-2 models built from configs and saved sharded (``max_shard_size="50KB"``:
three shards and a ``model.safetensors.index.json`` each), plus an unsharded Llama. Adapters come from real
``get_peft_model`` + ``save_pretrained``, with every ``lora_B``/``lora_embedding_A`` set non-zero to stand in for
training. Planted problems rewrite real adapter files with ``safetensors`` (keys, config) and corrupted files
are byte-level edits of real files.

Everything is described statically (``CASES``, ``CORRUPT``) so tests can be parametrized at collection time;
:func:`build` writes the files under one directory and returns the paths.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[2]

SEED = 0
SHARD = "50KB"
VOCAB = 128
RESIZED = VOCAB + 8
PEFT = "base_model.model."

LLAMA = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=4,
    max_position_embeddings=64,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
)
QWEN2 = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
)
GPT2 = dict(n_embd=32, n_layer=2, n_head=4, vocab_size=VOCAB, n_positions=64, bos_token_id=1, eos_token_id=2)


def load_reference():
    """The plain-Python reference matcher."""
    from peftfix.checkpoint import reference

    return reference


def native_matcher():
    """``peftfix._native`` when it has the checkpoint matcher, else None."""
    try:
        from peftfix import _native
    except ImportError:
        return None
    return _native if hasattr(_native, "check_adapter") else None


NATIVE_MISSING = "peftfix._native has no checkpoint matcher yet (check_adapter); rebuild with `pip install -e .`"


# ------------------------------------------------------------------------------------------------------------
# The catalogue


@dataclass(frozen=True)
class Case:
    """An adapter checked against a base, and what the check must find.

    ``expect`` maps each code that must be reported to a list of detail checks (one per finding of that code,
    in any order), each a dict of detail key -> expected value; no other code may be reported.
    """

    name: str
    adapter: str  # key into the built adapters
    base: str  # key into the built bases
    expect: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    load_as: str = "causal-lm"
    adapter_file: bool = False  # pass the .safetensors file instead of the directory
    base_form: str = "dir"  # dir | file (model.safetensors) | index (model.safetensors.index.json)
    roundtrip: bool = False  # PK001 fix that real PEFT must load afterwards


def _pk001(strip: str, add: str, coverage: float = 1.0) -> dict[str, list[dict[str, Any]]]:
    return {"PK001": [{"rewrite": {"strip": strip, "add": add}, "coverage": coverage}]}


def _pk003(*modules: tuple[str, list[int], list[int]]) -> dict[str, list[dict[str, Any]]]:
    return {"PK003": [{"module": m, "adapter_shape": a, "base_shape": b} for m, a, b in modules]}


CASES: list[Case] = [
    # --- clean: no finding -----------------------------------------------------------------------------------
    Case("llama-qv", "llama-qv", "llama"),
    Case("llama-qv-unsharded-dir", "llama-qv", "llama-single"),
    Case("llama-qv-base-file", "llama-qv", "llama-single", base_form="file"),
    Case("llama-qv-base-index", "llama-qv", "llama", base_form="index"),
    Case("llama-qv-adapter-file", "llama-qv", "llama", adapter_file=True),
    Case("llama-all-linear", "llama-all-linear", "llama"),
    Case("llama-dora", "llama-dora", "llama"),
    Case("llama-embedding", "llama-embedding", "llama"),
    Case("llama-embedding-dora", "llama-embedding-dora", "llama"),
    Case("llama-layers-to-transform", "llama-layers0", "llama"),
    Case("llama-modules-to-save", "llama-mts", "llama"),
    Case("llama-rank-pattern", "llama-rank-pattern", "llama"),
    Case("qwen2-qkv-bias", "qwen2-qkv", "qwen2"),
    Case("gpt2-c-attn-fan-in-fan-out", "gpt2-c-attn", "gpt2"),
    Case("automodel-as-base-model", "automodel", "llama", load_as="base-model"),
    # A base with tied embeddings and ensure_weight_tying=True: PEFT keeps the pair tied.
    Case("tied-modules-to-save-ensured", "tied-mts-ensured", "llama-tied"),
    # Beyond docs/keys.md: PEFT 0.21 writes `embed_tokens.token_adapter.trainable_tokens_delta`.
    Case("llama-trainable-token-indices", "llama-trainable-tokens", "llama"),
    # --- planted: prefix rewrites (PK001), fixed by write_remapped ---------------------------------------------
    Case("orig-mod", "orig-mod", "llama", _pk001("_orig_mod.", ""), roundtrip=True),
    Case("ddp-module", "ddp-module", "llama", _pk001("module.", ""), roundtrip=True),
    Case("automodel", "automodel", "llama", _pk001("", "model."), roundtrip=True),
    Case("language-model", "language-model", "llama", _pk001("language_model.", ""), roundtrip=True),
    Case("vlm-model-language-model", "vlm-t5", "llama", _pk001("model.language_model.", "model."), roundtrip=True),
    Case("orig-mod-with-lm-head", "orig-mod-mts", "llama", _pk001("_orig_mod.", "")),
    Case("orig-mod-half", "orig-mod-half", "llama", _pk001("_orig_mod.", "", 0.5)),
    Case("qv-as-base-model", "llama-qv", "llama", _pk001("model.", ""), load_as="base-model"),
    # --- planted: other problems ---------------------------------------------------------------------------------
    Case(
        "resized-vocab",
        "resized",
        "llama",
        _pk003(
            ("lm_head", [RESIZED, 32], [VOCAB, 32]),
            ("model.embed_tokens", [RESIZED, 32], [VOCAB, 32]),
        ),
    ),
    Case("untrained", "untrained", "llama", {"PK004": [{}]}),
    # PEFT zeroes lora_embedding_A (not B) on embeddings: untrained, B is random and the adapter still a no-op.
    Case("untrained-embedding", "llama-embedding-untrained", "llama", {"PK004": [{"factor": "lora_embedding_A"}]}),
    Case("gpt2-adapter-on-llama", "gpt2-c-attn", "llama", {"PK002": [{"count": 2}]}),
    Case(
        "llama-adapter-on-qwen2",
        "llama-qv",
        "qwen2",
        _pk003(
            ("model.layers.0.self_attn.v_proj", [32, 8], [16, 32]),
            ("model.layers.1.self_attn.v_proj", [32, 8], [16, 32]),
        ),
    ),
    Case(
        "narrow-mlp-adapter",
        "narrow-mlp",
        "llama",
        _pk003(
            *[
                (f"model.layers.{layer}.mlp.{name}", shape, base)
                for layer in (0, 1)
                for name, shape, base in (
                    ("down_proj", [4, 48], [32, 64]),
                    ("gate_proj", [48, 4], [64, 32]),
                    ("up_proj", [48, 4], [64, 32]),
                )
            ]
        ),
    ),
    # GPT-2 ties lm_head to wte: the checkpoint has no lm_head.weight, yet modules_to_save=["lm_head"] saves a
    # separate copy, which unties them.
    Case("gpt2-modules-to-save-tied-lm-head", "gpt2-mts", "gpt2", {"PK005": [{"field": "ensure_weight_tying"}]}),
    Case("tied-modules-to-save", "tied-mts", "llama-tied", {"PK005": [{"field": "ensure_weight_tying"}]}),
    Case("targeted-and-saved", "targeted-and-saved", "llama", {"PK005": [{"field": "modules_to_save"}]}),
    Case("adapter-named-lora", "adapter-named-lora", "llama", {"PK002": [{"adapter_name": "lora", "count": 8}]}),
    Case(
        "trainable-tokens-on-new-rows",
        "trainable-tokens-new-rows",
        "llama",
        {
            "PK003": [
                {"module": "lm_head", "adapter_shape": [RESIZED, 32], "base_shape": [VOCAB, 32]},
                {"module": "model.embed_tokens", "adapter_shape": [RESIZED, 32], "base_shape": [VOCAB, 32]},
                {"module": "model.embed_tokens", "max_index": RESIZED - 1, "base_rows": VOCAB},
            ]
        },
    ),
    Case("r-edited", "r-edited", "llama", {"PK005": [{"field": "r"}]}),
    Case("target-modules-edited", "target-edited", "llama", {"PK005": [{"field": "target_modules"}]}),
    Case("use-dora-edited", "dora-flag-edited", "llama", {"PK005": [{"field": "use_dora"}]}),
    Case("config-missing", "config-missing", "llama", {"PK005": [{"field": "adapter_config.json"}]}),
    Case("zero3-empty", "zero3-empty", "llama", {"PK006": [{}]}),
]
CASE_NAMES = [case.name for case in CASES]
CASES_BY_NAME = {case.name: case for case in CASES}


@dataclass(frozen=True)
class Corrupt:
    """A corrupted input: checking ``adapter`` against ``base`` must give PK000 naming ``broken``."""

    name: str
    adapter: str  # built adapter key or a corrupt file key
    base: str  # built base key or a corrupt base key
    broken: str  # which path must be named: "adapter" | "base" | a file name inside the base
    reason: str  # a word the reason must contain (case-insensitive)


CORRUPT: list[Corrupt] = [
    Corrupt("truncated", "truncated", "llama", "adapter", "beyond"),
    Corrupt("header-length-beyond-file", "header-beyond-file", "llama", "adapter", "beyond"),
    Corrupt("header-over-100mb", "header-over-100mb", "llama", "adapter", "100"),
    Corrupt("header-length-u64-max", "header-u64-max", "llama", "adapter", ""),
    Corrupt("invalid-json", "invalid-json", "llama", "adapter", "json"),
    Corrupt("non-utf8-name", "non-utf8", "llama", "adapter", "utf"),
    Corrupt("overlapping-offsets", "overlap", "llama", "adapter", "overlap"),
    Corrupt("out-of-range-offsets", "out-of-range", "llama", "adapter", ""),
    Corrupt("begin-after-end", "begin-after-end", "llama", "adapter", ""),
    Corrupt("wrong-size-for-dtype-shape", "wrong-size", "llama", "adapter", ""),
    Corrupt("unknown-dtype", "unknown-dtype", "llama", "adapter", "dtype"),
    Corrupt("header-not-an-object", "not-object", "llama", "adapter", ""),
    Corrupt("metadata-not-strings", "bad-metadata", "llama", "adapter", ""),
    Corrupt("empty-file", "empty-file", "llama", "adapter", ""),
    Corrupt("five-byte-file", "short-file", "llama", "adapter", ""),
    Corrupt("adapter-dir-without-checkpoint", "empty-dir", "llama", "adapter", ""),
    Corrupt("adapter-path-missing", "missing-path", "llama", "adapter", ""),
    Corrupt("base-dir-without-checkpoint", "llama-qv", "empty-base", "base", ""),
    Corrupt("base-missing-shard", "llama-qv", "missing-shard", "model-00002-of-00003.safetensors", ""),
    Corrupt("base-index-names-absent-key", "llama-qv", "absent-key", "model.safetensors.index.json", ""),
    Corrupt("base-index-invalid-json", "llama-qv", "bad-index", "model.safetensors.index.json", "json"),
    Corrupt("base-truncated-shard", "llama-qv", "truncated-shard", "model-00003-of-00003.safetensors", ""),
    Corrupt("base-shard-header-over-100mb", "llama-qv", "huge-shard-header", "model-00001-of-00003.safetensors", "100"),
]
CORRUPT_NAMES = [case.name for case in CORRUPT]


@dataclass
class Built:
    root: Path
    bases: dict[str, Path]
    adapters: dict[str, Path]

    def base_path(self, case: Case) -> str:
        base = self.bases[case.base]
        if case.base_form == "file":
            return str(base / "model.safetensors")
        if case.base_form == "index":
            return str(base / "model.safetensors.index.json")
        return str(base)

    def adapter_path(self, case: Case) -> str:
        adapter = self.adapters[case.adapter]
        return str(adapter / "adapter_model.safetensors") if case.adapter_file else str(adapter)

    def corrupt_paths(self, case: Corrupt) -> tuple[str, str, str]:
        """(adapter, base, path that the PK000 finding must name)."""
        adapter = self.adapters[case.adapter]
        base = self.bases[case.base]
        if case.broken == "adapter":
            broken = adapter / "adapter_model.safetensors" if adapter.is_dir() else adapter
            if adapter.is_dir() and not broken.exists():
                broken = adapter
        elif case.broken == "base":
            broken = base
        else:
            broken = base / case.broken
        return str(adapter), str(base), str(broken)


# ------------------------------------------------------------------------------------------------------------
# Building


def _train(model) -> None:
    """Stand in for training: every zero-initialised factor non-zero (lora_B; lora_embedding_A on embeddings)."""
    import torch

    generator = torch.Generator().manual_seed(SEED)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name or "lora_embedding_A" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)


def _llama(**overrides):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(SEED)
    return LlamaForCausalLM(LlamaConfig(**{**LLAMA, **overrides})).eval()


def _save_base(model, path: Path, sharded: bool = True) -> Path:
    if sharded:
        model.save_pretrained(path, max_shard_size=SHARD)
        assert (path / "model.safetensors.index.json").is_file(), sorted(os.listdir(path))
    else:
        model.save_pretrained(path)
        assert (path / "model.safetensors").is_file(), sorted(os.listdir(path))
    return path


def _adapter(
    model, path: Path, train: bool = True, adapter_name: str = "default", safe_serialization: bool = True, **lora
) -> Path:
    import warnings

    from peft import LoraConfig, get_peft_model

    lora.setdefault("r", 8)
    lora.setdefault("lora_alpha", 16)
    peft_model = get_peft_model(model, LoraConfig(**lora), adapter_name=adapter_name)
    if train:
        _train(peft_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        peft_model.save_pretrained(path, safe_serialization=safe_serialization)
    return path


def _rekey(source: Path, target: Path, rename: Callable[[str], Optional[str]], config: Optional[dict] = None) -> Path:
    """Copy an adapter with its keys renamed (None drops the key) and its config updated."""
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(source / "adapter_model.safetensors")
    renamed = {}
    for key, value in tensors.items():
        new = rename(key)
        if new is not None:
            renamed[new] = value
    save_file(renamed, target / "adapter_model.safetensors", metadata={"format": "pt"})
    settings = json.loads((source / "adapter_config.json").read_text())
    settings.update(config or {})
    (target / "adapter_config.json").write_text(json.dumps(settings, indent=2))
    return target


def _insert(prefix: str, only: Optional[Callable[[str], bool]] = None) -> Callable[[str], str]:
    def rename(key: str) -> str:
        assert key.startswith(PEFT), key
        if only is not None and not only(key):
            return key
        return PEFT + prefix + key[len(PEFT) :]

    return rename


def _shard(source: Path, target: Path) -> Path:
    """The adapter as two safetensors shards and an index, the layout transformers' sharded save writes."""
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(source / "adapter_model.safetensors")
    names = sorted(tensors)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for number, half in enumerate(halves, start=1):
        shard = f"adapter_model-{number:05d}-of-00002.safetensors"
        save_file({name: tensors[name] for name in half}, target / shard, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(half, shard))
    (target / "adapter_model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (target / "adapter_config.json").write_text((source / "adapter_config.json").read_text())
    return target


def _saved_under_adapter_name(name: str) -> Callable[[str], str]:
    """The key PEFT before 0.18 saved for an adapter called ``name``: the name put after ``lora_A``/``lora_B``
    as in the module's parameter name, then every ``.{name}`` removed (``get_peft_model_state_dict``)."""

    def rename(key: str) -> str:
        stem, _, param = key.rpartition(".")
        return f"{stem}.{name}.{param}".replace(f".{name}", "")

    return rename


def build_bases(root: Path) -> dict[str, Path]:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

    bases = {
        "llama": _save_base(_llama(), root / "base-llama"),
        "llama-single": _save_base(_llama(), root / "base-llama-single", sharded=False),
        "llama-tied": _save_base(_llama(tie_word_embeddings=True), root / "base-llama-tied"),
    }
    torch.manual_seed(SEED)
    bases["qwen2"] = _save_base(Qwen2ForCausalLM(Qwen2Config(**QWEN2)).eval(), root / "base-qwen2")
    torch.manual_seed(SEED)
    bases["gpt2"] = _save_base(GPT2LMHeadModel(GPT2Config(**GPT2)).eval(), root / "base-gpt2")
    return bases


def build_adapters(root: Path, bases: dict[str, Path]) -> dict[str, Path]:
    from transformers import AutoModel, AutoModelForCausalLM

    def causal(name: str):
        return AutoModelForCausalLM.from_pretrained(bases[name]).eval()

    qv = ["q_proj", "v_proj"]
    a: dict[str, Path] = {}
    a["llama-qv"] = _adapter(causal("llama"), root / "llama-qv", task_type="CAUSAL_LM", target_modules=qv)
    a["llama-all-linear"] = _adapter(
        causal("llama"), root / "llama-all-linear", task_type="CAUSAL_LM", r=4, target_modules="all-linear"
    )
    a["llama-dora"] = _adapter(
        causal("llama"), root / "llama-dora", task_type="CAUSAL_LM", target_modules=qv, use_dora=True
    )
    a["llama-embedding"] = _adapter(
        causal("llama"), root / "llama-embedding", task_type="CAUSAL_LM", target_modules=["embed_tokens"]
    )
    a["llama-embedding-untrained"] = _adapter(
        causal("llama"),
        root / "llama-embedding-untrained",
        train=False,
        task_type="CAUSAL_LM",
        target_modules=["embed_tokens"],
    )
    a["llama-embedding-dora"] = _adapter(
        causal("llama"),
        root / "llama-embedding-dora",
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["embed_tokens", "q_proj"],
        use_dora=True,
    )
    a["llama-layers0"] = _adapter(
        causal("llama"), root / "llama-layers0", task_type="CAUSAL_LM", target_modules=qv, layers_to_transform=[0]
    )
    a["llama-mts"] = _adapter(
        causal("llama"), root / "llama-mts", task_type="CAUSAL_LM", target_modules=qv, modules_to_save=["lm_head"]
    )
    a["llama-rank-pattern"] = _adapter(
        causal("llama"),
        root / "llama-rank-pattern",
        task_type="CAUSAL_LM",
        target_modules=qv,
        rank_pattern={"layers.1.self_attn.v_proj": 4},
    )
    a["qwen2-qkv"] = _adapter(
        causal("qwen2"),
        root / "qwen2-qkv",
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["q_proj", "k_proj", "v_proj"],
        lora_bias=True,
    )
    a["gpt2-c-attn"] = _adapter(
        causal("gpt2"),
        root / "gpt2-c-attn",
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["c_attn"],
        fan_in_fan_out=True,
    )
    # A missing `model.`: trained for real on AutoModel (LlamaModel), whose module paths have no `model.`.
    a["gpt2-mts"] = _adapter(
        causal("gpt2"),
        root / "gpt2-mts",
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["c_attn"],
        fan_in_fan_out=True,
        modules_to_save=["lm_head"],
    )
    a["llama-trainable-tokens"] = _adapter(
        causal("llama"),
        root / "llama-trainable-tokens",
        task_type="CAUSAL_LM",
        target_modules=qv,
        trainable_token_indices=[4, 5, 6],
    )
    # Trained on a resized vocabulary: the new tokens' rows, indices VOCAB.. RESIZED-1.
    grown = causal("llama")
    grown.resize_token_embeddings(RESIZED, mean_resizing=False)
    a["trainable-tokens-new-rows"] = _adapter(
        grown,
        root / "trainable-tokens-new-rows",
        task_type="CAUSAL_LM",
        target_modules=qv,
        trainable_token_indices=[VOCAB, VOCAB + 1, RESIZED - 1],
    )
    # q_proj in both lists: PEFT makes it a full trainable copy and gives it no LoRA.
    a["targeted-and-saved"] = _adapter(
        causal("llama"),
        root / "targeted-and-saved",
        task_type="CAUSAL_LM",
        target_modules=qv,
        modules_to_save=["q_proj"],
    )
    # A base with tied embeddings (no lm_head.weight on disk), lm_head trained as a modules_to_save copy.
    a["tied-mts"] = _adapter(
        causal("llama-tied"), root / "tied-mts", task_type="CAUSAL_LM", target_modules=qv, modules_to_save=["lm_head"]
    )
    # LoRA on the tied lm_head itself (SGLang's test_lora_tied_lm_head serves this).
    a["tied-lm-head-lora"] = _adapter(
        causal("llama-tied"), root / "tied-lm-head-lora", task_type="CAUSAL_LM", target_modules=[*qv, "lm_head"]
    )
    a["tied-mts-ensured"] = _adapter(
        causal("llama-tied"),
        root / "tied-mts-ensured",
        task_type="CAUSAL_LM",
        target_modules=qv,
        modules_to_save=["lm_head"],
        ensure_weight_tying=True,
    )
    # For the serving profiles (tests/serving).
    a["llama-r32"] = _adapter(causal("llama"), root / "llama-r32", task_type="CAUSAL_LM", r=32, target_modules=qv)
    a["llama-rslora"] = _adapter(
        causal("llama"), root / "llama-rslora", task_type="CAUSAL_LM", target_modules=qv, use_rslora=True
    )
    a["llama-q-only"] = _adapter(
        causal("llama"), root / "llama-q-only", task_type="CAUSAL_LM", target_modules=["q_proj"]
    )
    a["llama-bin"] = _adapter(
        causal("llama"), root / "llama-bin", task_type="CAUSAL_LM", target_modules=qv, safe_serialization=False
    )
    # A non-default adapter name: PEFT saves it one folder down, in `<dir>/chat/`.
    a["llama-named"] = _adapter(
        causal("llama"), root / "llama-named", task_type="CAUSAL_LM", target_modules=qv, adapter_name="chat"
    )
    a["llama-pissa"] = _adapter(
        causal("llama"), root / "llama-pissa", task_type="CAUSAL_LM", target_modules=qv, init_lora_weights="pissa"
    )
    a["llama-bias-all"] = _adapter(
        causal("llama"), root / "llama-bias-all", task_type="CAUSAL_LM", target_modules=qv, bias="all"
    )
    a["qwen2-embedding"] = _adapter(
        causal("qwen2"), root / "qwen2-embedding", task_type="CAUSAL_LM", target_modules=["embed_tokens", "q_proj"]
    )
    a["automodel"] = _adapter(AutoModel.from_pretrained(bases["llama"]).eval(), root / "automodel", target_modules=qv)
    # Resized vocabulary with modules_to_save.
    resized = causal("llama")
    resized.resize_token_embeddings(RESIZED, mean_resizing=False)
    a["resized"] = _adapter(
        resized, root / "resized", task_type="CAUSAL_LM", target_modules=qv, modules_to_save=["lm_head", "embed_tokens"]
    )
    a["untrained"] = _adapter(
        causal("llama"), root / "untrained", train=False, task_type="CAUSAL_LM", target_modules=qv
    )
    a["narrow-mlp"] = _adapter(
        _llama(intermediate_size=48),
        root / "narrow-mlp",
        task_type="CAUSAL_LM",
        r=4,
        target_modules=["gate_proj", "up_proj", "down_proj"],
    )

    # Planted by rewriting real files.
    qv_dir = a["llama-qv"]
    a["orig-mod"] = _rekey(qv_dir, root / "orig-mod", _insert("_orig_mod."))
    a["ddp-module"] = _rekey(qv_dir, root / "ddp-module", _insert("module."))
    a["language-model"] = _rekey(qv_dir, root / "language-model", _insert("language_model."))
    a["vlm-t5"] = _rekey(
        qv_dir, root / "vlm-t5", lambda key: key.replace(PEFT + "model.", PEFT + "model.language_model.", 1)
    )
    a["orig-mod-mts"] = _rekey(a["llama-mts"], root / "orig-mod-mts", _insert("_orig_mod."))
    a["orig-mod-half"] = _rekey(qv_dir, root / "orig-mod-half", _insert("_orig_mod.", only=lambda k: ".layers.1." in k))
    # Keys without PEFT's `base_model.model.` (a hand-made export): PEFT 0.21 drops them silently.
    a["no-peft-prefix"] = _rekey(qv_dir, root / "no-peft-prefix", lambda key: key[len(PEFT) :])
    # DDP around the whole PeftModel: `module.base_model.model.<path>`.
    a["ddp-outer"] = _rekey(qv_dir, root / "ddp-outer", lambda key: "module." + key)
    a["r-edited"] = _rekey(qv_dir, root / "r-edited", lambda key: key, {"r": 16})
    a["target-edited"] = _rekey(
        qv_dir, root / "target-edited", lambda key: key, {"target_modules": ["q_proj", "k_proj", "v_proj"]}
    )
    a["dora-flag-edited"] = _rekey(a["llama-dora"], root / "dora-flag-edited", lambda key: key, {"use_dora": False})
    # Saved under the adapter name "lora" by PEFT before 0.18, whose get_peft_model_state_dict removed the name
    # with `key.replace(".lora", "")`: that also cut `.lora` out of `.lora_A`, leaving `q_proj_A.weight`.
    a["adapter-named-lora"] = _rekey(qv_dir, root / "adapter-named-lora", _saved_under_adapter_name("lora"))
    a["llama-sharded"] = _shard(qv_dir, root / "llama-sharded")
    no_alpha = _rekey(qv_dir, root / "no-lora-alpha", lambda key: key)
    settings = json.loads((no_alpha / "adapter_config.json").read_text())
    del settings["lora_alpha"]
    (no_alpha / "adapter_config.json").write_text(json.dumps(settings, indent=2))
    a["no-lora-alpha"] = no_alpha
    a["lora-alpha-null"] = _rekey(qv_dir, root / "lora-alpha-null", lambda key: key, {"lora_alpha": None})
    a["r-string"] = _rekey(qv_dir, root / "r-string", lambda key: key, {"r": "8"})
    missing = _rekey(qv_dir, root / "config-missing", lambda key: key)
    (missing / "adapter_config.json").unlink()
    a["config-missing"] = missing
    a["zero3-empty"] = _rekey(qv_dir, root / "zero3-empty", lambda key: None)
    return a


# --- corrupted files ------------------------------------------------------------------------------------------


def _split(data: bytes) -> tuple[dict, bytes]:
    (length,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + length]), data[8 + length :]


def _join(header: dict, body: bytes) -> bytes:
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * ((8 - len(encoded) % 8) % 8)
    return struct.pack("<Q", len(encoded)) + encoded + body


def _edit_header(data: bytes, edit: Callable[[dict], None]) -> bytes:
    header, body = _split(data)
    edit(header)
    return _join(header, body)


def _tensor_names(header: dict) -> list[str]:
    return sorted(name for name in header if name != "__metadata__")


def _overlap(header: dict) -> None:
    names = [n for n in _tensor_names(header) if n.endswith("lora_A.weight")]
    header[names[1]]["data_offsets"] = list(header[names[0]]["data_offsets"])


def _out_of_range(header: dict) -> None:
    name = _tensor_names(header)[0]
    begin, end = header[name]["data_offsets"]
    size = end - begin
    top = max(info["data_offsets"][1] for n, info in header.items() if n != "__metadata__")
    header[name]["data_offsets"] = [top + 64, top + 64 + size]


def _begin_after_end(header: dict) -> None:
    name = _tensor_names(header)[0]
    begin, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [end, begin]


def _wrong_size(header: dict) -> None:
    name = _tensor_names(header)[0]
    header[name]["shape"] = [header[name]["shape"][0], header[name]["shape"][1] - 1]


def _unknown_dtype(header: dict) -> None:
    header[_tensor_names(header)[0]]["dtype"] = "F12"


def _bad_metadata(header: dict) -> None:
    header["__metadata__"] = {"format": ["pt"]}


def _non_utf8(data: bytes) -> bytes:
    at = data.index(b"lora_A", 8)
    return data[:at] + b"\xff\xfe" + data[at + 2 :]


def _invalid_json(data: bytes) -> bytes:
    (length,) = struct.unpack("<Q", data[:8])
    broken = b'{"oops": ' + b" " * (length - 9)
    return data[:8] + broken + data[8 + length :]


def _length(value: int) -> Callable[[bytes], bytes]:
    return lambda data: struct.pack("<Q", value) + data[8:]


def build_corrupt(root: Path, bases: dict[str, Path], adapters: dict[str, Path]) -> None:
    source = (adapters["llama-qv"] / "adapter_model.safetensors").read_bytes()
    config = adapters["llama-qv"] / "adapter_config.json"

    def adapter(name: str, data: Optional[bytes]) -> None:
        folder = root / f"corrupt-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(config, folder / "adapter_config.json")
        if data is not None:
            (folder / "adapter_model.safetensors").write_bytes(data)
        adapters[name] = folder

    adapter("truncated", source[: len(source) * 2 // 3])
    adapter("header-beyond-file", _length(len(source) * 2)(source))
    adapter("header-over-100mb", _length(100_000_001)(source))
    adapter("header-u64-max", _length(2**64 - 1)(source))
    adapter("invalid-json", _invalid_json(source))
    adapter("non-utf8", _non_utf8(source))
    adapter("overlap", _edit_header(source, _overlap))
    adapter("out-of-range", _edit_header(source, _out_of_range))
    adapter("begin-after-end", _edit_header(source, _begin_after_end))
    adapter("wrong-size", _edit_header(source, _wrong_size))
    adapter("unknown-dtype", _edit_header(source, _unknown_dtype))
    adapter("not-object", _join([], b""))  # type: ignore[arg-type]
    adapter("bad-metadata", _edit_header(source, _bad_metadata))
    adapter("empty-file", b"")
    adapter("short-file", b"\x10\x00\x00\x00\x00")
    adapter("empty-dir", None)
    adapters["missing-path"] = root / "corrupt-does-not-exist"

    llama = bases["llama"]

    def base(name: str, edit: Callable[[Path], None]) -> None:
        folder = root / f"corrupt-base-{name}"
        shutil.copytree(llama, folder)
        edit(folder)
        bases[name] = folder

    empty = root / "corrupt-base-empty"
    empty.mkdir(exist_ok=True)
    (empty / "config.json").write_text("{}")
    bases["empty-base"] = empty
    base("missing-shard", lambda f: (f / "model-00002-of-00003.safetensors").unlink())

    def absent_key(folder: Path) -> None:
        index = json.loads((folder / "model.safetensors.index.json").read_text())
        index["weight_map"]["model.layers.7.self_attn.q_proj.weight"] = "model-00001-of-00003.safetensors"
        (folder / "model.safetensors.index.json").write_text(json.dumps(index))

    base("absent-key", absent_key)
    base("bad-index", lambda f: (f / "model.safetensors.index.json").write_text('{"weight_map": {"a": '))

    def truncate(folder: Path) -> None:
        shard = folder / "model-00003-of-00003.safetensors"
        data = shard.read_bytes()
        shard.write_bytes(data[: len(data) - 100])

    base("truncated-shard", truncate)

    def huge(folder: Path) -> None:
        shard = folder / "model-00001-of-00003.safetensors"
        shard.write_bytes(_length(200_000_000)(shard.read_bytes()))

    base("huge-shard-header", huge)


def build(root: Path) -> Built:
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    logging.getLogger("peft").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.mkdir(parents=True, exist_ok=True)
        bases = build_bases(root)
        adapters = build_adapters(root, bases)
        build_corrupt(root, bases, adapters)
    return Built(root, bases, adapters)


def describe(built: Built) -> dict[str, Any]:
    """JSON-able form of a build (written next to it so other xdist workers can reuse it)."""
    return {
        "root": str(built.root),
        "bases": {k: str(v) for k, v in built.bases.items()},
        "adapters": {k: str(v) for k, v in built.adapters.items()},
    }


def from_description(data: dict[str, Any]) -> Built:
    return Built(
        Path(data["root"]),
        {k: Path(v) for k, v in data["bases"].items()},
        {k: Path(v) for k, v in data["adapters"].items()},
    )
