"""Synthetic checkpoints shaped like real ones, written as valid safetensors files with tiny tensors.

``deepseek_v3_base`` writes a base with DeepSeek-V3's real key names (61 layers, the first 3 dense, 256 routed
experts + a shared expert per MoE layer, FP8 ``weight`` + ``weight_scale_inv``, layer norms, the router ``gate``
with ``e_score_correction_bias``) in 163 shards with an index; ``per_expert_lora`` writes a LoRA adapter on the
gate/up/down projections of every routed expert, as PEFT saves it. Dimensions are tiny so the files stay small;
the key structure and counts are what the matcher works on.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

LAYERS, DENSE_LAYERS, ROUTED_EXPERTS, SHARDS = 61, 3, 256, 163
HIDDEN, INTERMEDIATE, VOCAB = 8, 4, 16  # tiny on purpose
DTYPE_SIZE = {"F8_E4M3": 1, "F32": 4, "BF16": 2}


def write_safetensors(path: Path, tensors: Iterable[tuple[str, str, list[int], bytes]]) -> int:
    """Write (name, dtype, shape, fill byte pattern) tensors; returns the number written."""
    header: dict = {"__metadata__": {"format": "pt"}}
    chunks = []
    offset = 0
    for name, dtype, shape, fill in tensors:
        size = DTYPE_SIZE[dtype]
        for dim in shape:
            size *= dim
        data = (fill * size)[:size]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        chunks.append(data)
        offset += size
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # safetensors pads the header to 8 bytes
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(encoded)))
        handle.write(encoded)
        for chunk in chunks:
            handle.write(chunk)
    return len(header) - 1


def _linear(name: str, out: int, inp: int) -> Iterator[tuple[str, str, list[int], bytes]]:
    yield f"{name}.weight", "F8_E4M3", [out, inp], b"\x01"
    yield f"{name}.weight_scale_inv", "F32", [1, 1], b"\x00\x00\x80\x3f"


def deepseek_v3_tensors(layers: int = LAYERS) -> list[tuple[str, str, list[int], bytes]]:
    tensors = [("model.embed_tokens.weight", "BF16", [VOCAB, HIDDEN], b"\x01\x00")]
    for layer in range(layers):
        prefix = f"model.layers.{layer}"
        tensors.append((f"{prefix}.input_layernorm.weight", "BF16", [HIDDEN], b"\x80\x3f"))
        tensors.append((f"{prefix}.post_attention_layernorm.weight", "BF16", [HIDDEN], b"\x80\x3f"))
        attention = f"{prefix}.self_attn"
        for name, out, inp in (
            ("q_a_proj", 4, HIDDEN),
            ("q_b_proj", HIDDEN, 4),
            ("kv_a_proj_with_mqa", 6, HIDDEN),
            ("kv_b_proj", HIDDEN, 4),
            ("o_proj", HIDDEN, HIDDEN),
        ):
            tensors.extend(_linear(f"{attention}.{name}", out, inp))
        tensors.append((f"{attention}.q_a_layernorm.weight", "BF16", [4], b"\x80\x3f"))
        tensors.append((f"{attention}.kv_a_layernorm.weight", "BF16", [4], b"\x80\x3f"))
        mlp = f"{prefix}.mlp"
        experts = [f"{mlp}.shared_experts"] if layer >= DENSE_LAYERS else [mlp]
        if layer >= DENSE_LAYERS:
            experts += [f"{mlp}.experts.{expert}" for expert in range(ROUTED_EXPERTS)]
            tensors.append((f"{mlp}.gate.weight", "BF16", [ROUTED_EXPERTS, HIDDEN], b"\x01\x00"))
            tensors.append((f"{mlp}.gate.e_score_correction_bias", "F32", [ROUTED_EXPERTS], b"\x00\x00\x00\x00"))
        for expert in experts:
            tensors.extend(_linear(f"{expert}.gate_proj", INTERMEDIATE, HIDDEN))
            tensors.extend(_linear(f"{expert}.up_proj", INTERMEDIATE, HIDDEN))
            tensors.extend(_linear(f"{expert}.down_proj", HIDDEN, INTERMEDIATE))
    tensors.append(("model.norm.weight", "BF16", [HIDDEN], b"\x80\x3f"))
    tensors.append(("lm_head.weight", "BF16", [VOCAB, HIDDEN], b"\x01\x00"))
    return tensors


def deepseek_v3_base(root: Path, shards: int = SHARDS, layers: int = LAYERS) -> Path:
    """``layers`` < 61 gives a smaller base with the same key structure (the quick benchmarks use 8)."""
    root.mkdir(parents=True, exist_ok=True)
    tensors = deepseek_v3_tensors(layers)
    per_shard = -(-len(tensors) // shards)
    weight_map = {}
    for index in range(shards):
        name = f"model-{index + 1:05d}-of-{shards:06d}.safetensors"
        chunk = tensors[index * per_shard : (index + 1) * per_shard]
        write_safetensors(root / name, chunk)
        weight_map.update({tensor[0]: name for tensor in chunk})
    index_file = {"metadata": {"total_size": 0}, "weight_map": weight_map}
    (root / "model.safetensors.index.json").write_text(json.dumps(index_file))
    (root / "config.json").write_text(
        json.dumps({"model_type": "deepseek_v3", "architectures": ["DeepseekV3ForCausalLM"]})
    )
    return root


def per_expert_lora(
    root: Path,
    rank: int = 2,
    key_prefix: str = "base_model.model.",
    zero_b: bool = False,
    layers: int = LAYERS,
    wrong_rank_at: tuple[int, int, str] | None = None,
) -> Path:
    """A LoRA adapter on gate/up/down of every routed expert (about 89k keys), saved the way PEFT saves it.

    ``wrong_rank_at=(layer, expert, proj)`` plants a shape bug: that module's ``lora_A`` has ``rank + 1`` rows
    while its ``lora_B`` and the config say ``rank``.
    """
    root.mkdir(parents=True, exist_ok=True)
    tensors = []
    for layer in range(DENSE_LAYERS, layers):
        for expert in range(ROUTED_EXPERTS):
            for name, out, inp in (
                ("gate_proj", INTERMEDIATE, HIDDEN),
                ("up_proj", INTERMEDIATE, HIDDEN),
                ("down_proj", HIDDEN, INTERMEDIATE),
            ):
                module = f"{key_prefix}model.layers.{layer}.mlp.experts.{expert}.{name}"
                a_rank = rank + 1 if wrong_rank_at == (layer, expert, name) else rank
                tensors.append((f"{module}.lora_A.weight", "F32", [a_rank, inp], b"\x00\x00\x80\x3f"))
                tensors.append(
                    (
                        f"{module}.lora_B.weight",
                        "F32",
                        [out, rank],
                        b"\x00\x00\x00\x00" if zero_b else b"\x00\x00\x80\x3f",
                    )
                )
    write_safetensors(root / "adapter_model.safetensors", tensors)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": ["gate_proj", "up_proj", "down_proj"],
        "fan_in_fan_out": False,
        "use_dora": False,
    }
    (root / "adapter_config.json").write_text(json.dumps(config))
    return root
