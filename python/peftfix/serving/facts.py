"""What the serving checks read: the adapter's files, config and keys, the base's config and module shapes.

Headers only (``peftfix._native.read_header``): no tensor is loaded.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional

from peftfix.checkpoint.backend import read_header
from peftfix.files import read_regular

PEFT_PREFIX = "base_model.model."
CONFIG_FILE = "adapter_config.json"
# The LoRA parameter names PEFT saves, in the position after the module path.
LORA_PARTS = ("lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B", "lora_magnitude_vector")
EMBEDDING_NAMES = ("embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings")
SHARD = re.compile(r"^adapter_model-\d+-of-\d+\.safetensors$")
LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")


class ServingInputError(ValueError):
    """An adapter or base the serving checks cannot read (they read local files only)."""


@dataclass
class Adapter:
    path: str  # the adapter directory
    files: list[str]  # file names at its top level
    subfolders: list[str]  # subfolders holding an adapter_config.json
    config: Optional[dict[str, Any]]
    keys: dict[str, list[int]] = field(default_factory=dict)  # tensor name -> shape (safetensors files only)
    unreadable: dict[str, str] = field(default_factory=dict)  # safetensors file name -> why its header is bad

    def lora_modules(self) -> dict[str, set[str]]:
        """Module path (below ``base_model.model.``) -> the LoRA parts saved for it."""
        modules: dict[str, set[str]] = {}
        for key in self.keys:
            name = key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else key
            parts = name.split(".")
            for index, part in enumerate(parts):
                if part in LORA_PARTS and index > 0:
                    modules.setdefault(".".join(parts[:index]), set()).add(part)
                    break
        return modules

    def rank(self) -> Optional[int]:
        value = (self.config or {}).get("r")
        return value if type(value) is int else None


@dataclass
class Base:
    path: str
    config: dict[str, Any]
    weights: dict[str, list[int]]  # module path -> shape of its `.weight`

    @property
    def architecture(self) -> Optional[str]:
        names = self.config.get("architectures")
        return names[0] if isinstance(names, list) and names and isinstance(names[0], str) else None

    def vocab_rows(self) -> Optional[int]:
        for path, shape in self.weights.items():
            if path.rsplit(".", 1)[-1] in EMBEDDING_NAMES and shape:
                return shape[0]
        vocab = self.config.get("vocab_size")
        return vocab if type(vocab) is int else None

    def linear_names(self) -> set[str]:
        """Last names of the modules with a 2-D weight that are neither embeddings nor the LM head."""
        return {
            path.rsplit(".", 1)[-1]
            for path, shape in self.weights.items()
            if len(shape) == 2 and path.rsplit(".", 1)[-1] not in (*EMBEDDING_NAMES, "lm_head")
        }


def _local(spec: str, what: str) -> str:
    if "://" in spec or not os.path.exists(spec):
        raise ServingInputError(f"the serving checks read local files: {what} {spec!r} is not a local path")
    return spec


def _json(path: str) -> Optional[dict[str, Any]]:
    # read_regular: a FIFO or device in place of a config is refused at once, never read (it would block).
    try:
        value = json.loads(read_regular(path))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _header_shapes(path: str, unreadable: Optional[dict[str, str]] = None) -> dict[str, list[int]]:
    try:
        return {name: list(shape) for name, _dtype, shape, _begin, _end in read_header(path)}
    except (OSError, ValueError) as error:
        if unreadable is not None:
            unreadable[os.path.basename(path)] = str(error)
        return {}


def read_adapter(spec: str) -> Adapter:
    path = _local(spec, "adapter")
    if os.path.isfile(path):
        folder = os.path.dirname(path) or "."
        files = [os.path.basename(path)]
        if os.path.isfile(os.path.join(folder, CONFIG_FILE)):
            files.append(CONFIG_FILE)
        weights = [path] if path.endswith(".safetensors") else []
    else:
        folder = path
        files = sorted(name for name in os.listdir(folder) if os.path.isfile(os.path.join(folder, name)))
        weights = [os.path.join(folder, name) for name in files if name.endswith(".safetensors")]
    subfolders = sorted(
        name
        for name in (os.listdir(folder) if os.path.isdir(folder) else ())
        if os.path.isfile(os.path.join(folder, name, CONFIG_FILE))
    )
    keys: dict[str, list[int]] = {}
    unreadable: dict[str, str] = {}
    for weight in weights:
        keys.update(_header_shapes(weight, unreadable))
    return Adapter(folder, files, subfolders, _json(os.path.join(folder, CONFIG_FILE)), keys, unreadable)


def read_base(spec: str) -> Base:
    path = _local(spec, "base")
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    config = _json(os.path.join(folder, "config.json")) or {}
    if os.path.isfile(path) and path.endswith(".safetensors"):
        files = [path]
    elif os.path.isfile(path) and path.endswith(".json"):
        files = _shards(path)
    elif os.path.isfile(os.path.join(folder, "model.safetensors.index.json")):
        files = _shards(os.path.join(folder, "model.safetensors.index.json"))
    else:
        files = [os.path.join(folder, "model.safetensors")]
    weights: dict[str, list[int]] = {}
    for file in files:
        for name, shape in _header_shapes(file).items():
            if name.endswith(".weight"):
                weights[name[: -len(".weight")]] = shape
    return Base(folder, config, weights)


def _shards(index: str) -> list[str]:
    data = _json(index) or {}
    weight_map = data.get("weight_map")
    names = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
    folder = os.path.dirname(index)
    return [os.path.join(folder, name) for name in names if isinstance(name, str)]
