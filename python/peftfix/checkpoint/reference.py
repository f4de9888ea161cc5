"""Plain-Python reference implementation of docs/keys.md: match a LoRA adapter to its base checkpoint.

This is what a careful pipeline author would write without the Rust matcher: ``json`` + ``struct`` + dicts and
string operations, no numpy or torch. safetensors headers are read with ``open``/``read`` (never the tensor
data), and the PK004 zero check reads only the bytes of ``lora_B``/``lora_embedding_A`` tensors with
``seek``/``read``. It is the oracle of the test suite (``tests/checkpoint``) and the baseline of the key-matching
benchmarks, so it favours being obviously correct over being fast.

API (the same as ``peftfix._native``):

- ``check_adapter(adapter, base, load_as="causal-lm") -> dict``: one report (shape below).
- ``BaseIndex(base, load_as="causal-lm")``: the base's headers read once; ``.check(adapter)``,
  ``.check_many(adapters)``, ``tensor_count``, ``shard_count``, ``header_bytes``, ``base_model_prefix``.
- ``write_remapped(adapter, out, strip, add) -> int``: the adapter with its keys rewritten (tensor bytes copied
  verbatim), plus a copy of ``adapter_config.json``; returns how many keys were rewritten.
- ``read_header(path) -> dict``: ``{"tensors": {name: {"dtype", "shape", "data_offsets"}}, "metadata",
  "header_len", "file_size"}``.
- ``CheckpointError(ValueError)``: unreadable checkpoint (PK000); ``.path`` names the file, ``.reason`` says why.

Report::

    {"adapter": str, "base": str,
     "findings": [{"code": "PK001", "message": str, "details": {...}}, ...],
     "counts": {"adapter_tensors", "adapter_modules", "matched", "matched_after_rewrite", "unmatched",
                "base_tensors", "base_shards", "header_bytes"},
     "rewrite": {"strip": str, "add": str, "coverage": float} | None,
     "seconds": float}

Where docs/keys.md leaves a choice open, the choice made here is written next to the code (search "Choice:").

    python -m peftfix.checkpoint.reference ADAPTER... --base BASE [--load-as causal-lm|base-model]

prints one JSON report per adapter.
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import time
from typing import Any

MAX_HEADER = 100_000_000
U64_MAX = 2**64 - 1
PEFT_PREFIX = "base_model.model."
ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
BASE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
HEAD_MODULES = ("lm_head", "score", "classifier")
LOAD_AS = ("causal-lm", "base-model")

# Bits per element. The list of the installed safetensors (0.8) Rust crate: the 20 names docs/keys.md lists plus
# the two FNUZ float8 variants it accepts.
DTYPE_BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

# Tuner parameter names (one key component each). LoRA ones are shape-checked; the others only matched.
LORA_A, LORA_B = "lora_A", "lora_B"
EMB_A, EMB_B = "lora_embedding_A", "lora_embedding_B"
MAGNITUDE = "lora_magnitude_vector"
LORA_PARAMS = (LORA_A, LORA_B, EMB_A, EMB_B, MAGNITUDE)
OTHER_TUNER_PARAMS = (
    "ia3_l",
    "hada_w1_a",
    "hada_w1_b",
    "hada_w2_a",
    "hada_w2_b",
    "hada_t1",
    "hada_t2",
    "lokr_w1",
    "lokr_w1_a",
    "lokr_w1_b",
    "lokr_w2",
    "lokr_w2_a",
    "lokr_w2_b",
    "lokr_t2",
    "lora_E",
    "vera_lambda_b",
    "vera_lambda_d",
    "oft_r",
    "oft_s",
    "boft_R",
    "boft_s",
    "fourierft_spectrum",
    "ln_tuning_layers",
    # Choice (not in docs/keys.md): PEFT 0.21 writes `<embedding>.token_adapter.trainable_tokens_delta` for
    # `LoraConfig(trainable_token_indices=...)`; recognised like the other tuners, `token_adapter` dropped.
    "trainable_tokens_delta",
    "trainable_tokens_original",
)
TUNER_PARAMS = frozenset(LORA_PARAMS + OTHER_TUNER_PARAMS)
FINAL_PARAMS = ("weight", "bias")
# Names of vocabulary-sized modules: a row-count mismatch on these names `resize_token_embeddings`.
VOCAB_MODULES = frozenset(
    (
        "embed_tokens",
        "lm_head",
        "wte",
        "word_embeddings",
        "embed_in",
        "embed_out",
        "tok_embeddings",
        "output",
        "shared",
        "embeddings",
    )
)
# Per byte of one element, the bits that must be zero for the value to be zero: the sign bit of a float may be
# set (-0.0 is zero). Integer, bool, unsigned-exponent and FNUZ types (no negative zero) need every bit zero.
ZERO_MASKS = {
    "F16": (0xFF, 0x7F),
    "BF16": (0xFF, 0x7F),
    "F32": (0xFF, 0xFF, 0xFF, 0x7F),
    "C64": (0xFF, 0xFF, 0xFF, 0x7F),
    "F64": (0xFF,) * 7 + (0x7F,),
    "F8_E4M3": (0x7F,),
    "F8_E5M2": (0x7F,),
    "F4": (0x77,),  # two E2M1 values per byte, each with its sign bit on top
}
SHOWN = 5  # paths a PK002 finding lists
# Input embeddings a tied `lm_head` shares its weight with, by preference (below the base-model prefix).
TIED_EMBEDDINGS = ("embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings", "embeddings.word_embeddings")
# Keys whose first component is one of these have no module path (prompt learning, VeRA's shared projections).
UNPLACED = frozenset(("prompt_embeddings", "prompt_encoder", "vera_A", "vera_B"))


class CheckpointError(ValueError):
    """A checkpoint file cannot be read (PK000). ``path`` is the file, ``reason`` what is wrong with it."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# --------------------------------------------------------------------------------------------------------------
# safetensors headers


def _reject_constant(name):
    raise ValueError(f"invalid JSON constant {name}")


class _Pairs(list):
    """A JSON object as its (key, value) pairs in file order, duplicates kept."""


def _parse_int(text):
    # Choice: `-0` is read as the float -0.0 (serde_json does the same), so it is no valid dimension or offset.
    return -0.0 if text == "-0" else int(text)


def _strict_json(text):
    """json.loads without the NaN/Infinity extensions; objects come back as _Pairs."""
    return json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int, object_pairs_hook=_Pairs)


def _plain(value):
    """_Pairs -> dict (last duplicate wins), recursively: for files where duplicates do not matter."""
    if isinstance(value, _Pairs):
        return {key: _plain(item) for key, item in value}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _is_u64(value):
    return type(value) is int and 0 <= value <= U64_MAX


def _utf8(text):
    """An escaped lone surrogate decodes fine in Python but is not UTF-8 (serde_json rejects it too)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _parse_header(path, header_bytes, data_len):
    try:
        text = header_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CheckpointError(path, f"header is not valid UTF-8 (byte {error.start})") from None
    try:
        header = _strict_json(text)
    except RecursionError:
        raise CheckpointError(path, "header is not valid JSON (nested too deeply)") from None
    except ValueError as error:
        raise CheckpointError(path, f"header is not valid JSON ({error})") from None
    if type(header) is not _Pairs:
        raise CheckpointError(path, f"header is a JSON {type(header).__name__}, not an object")

    metadata = None
    seen_metadata = False
    entries = []
    for name, info in header:
        if not _utf8(name):
            raise CheckpointError(path, f"tensor name {name!r} is not valid UTF-8")
        if name != "__metadata__":
            entries.append((name, info))
            continue
        if seen_metadata:
            raise CheckpointError(path, "__metadata__ appears twice")
        seen_metadata = True
        # As the safetensors library reads it: `null` is no metadata; duplicate keys inside it are tolerated,
        # the last one wins.
        if info is None:
            continue
        if type(info) is not _Pairs:
            raise CheckpointError(path, "__metadata__ is not an object of strings")
        for key, value in info:
            if type(value) is not str or not _utf8(key) or not _utf8(value):
                raise CheckpointError(path, f"__metadata__ entry {key!r} is not a string")
        metadata = dict(info)

    parsed: dict[str, tuple[str, list, list]] = {}
    for name, info in entries:
        if type(info) is not _Pairs:
            raise CheckpointError(path, f"tensor {name!r}: entry is not an object")
        fields = {}
        for key, value in info:
            if key in ("dtype", "shape", "data_offsets") and key in fields:
                raise CheckpointError(path, f"tensor {name!r} has {key} twice")
            fields[key] = value
        dtype = fields.get("dtype")
        shape = fields.get("shape")
        offsets = fields.get("data_offsets")
        if type(dtype) is not str:
            raise CheckpointError(path, f"tensor {name!r}: missing or non-string dtype")
        if dtype not in DTYPE_BITS:
            raise CheckpointError(path, f"tensor {name!r}: unknown dtype {dtype!r}")
        if type(shape) is not list or not all(_is_u64(dim) for dim in shape):
            raise CheckpointError(path, f"tensor {name!r}: shape is not a list of non-negative integers")
        if type(offsets) is not list or len(offsets) != 2 or not all(_is_u64(o) for o in offsets):
            raise CheckpointError(path, f"tensor {name!r}: data_offsets is not a pair of non-negative integers")
        # A name listed twice: the last entry wins (the library reads the header as a map), and it is the one
        # whose offsets are checked; every entry must still be well-formed.
        parsed.pop(name, None)
        parsed[name] = (dtype, shape, offsets)

    tensors = {}
    spans = []
    for name, (dtype, shape, offsets) in parsed.items():
        begin, end = offsets
        if begin > end:
            raise CheckpointError(path, f"tensor {name!r}: data_offsets begin {begin} > end {end}")
        if end > data_len:
            raise CheckpointError(
                path, f"tensor {name!r}: data_offsets end {end} is beyond the data ({data_len} bytes)"
            )
        # Choice: the element count is folded left to right and must stay within u64 at every step, as a
        # checked multiplication in Rust would (so [2**40, 2**40, 0] is an overflow, not 0 elements).
        count = 1
        for dim in shape:
            count *= dim
            if count > U64_MAX:
                raise CheckpointError(path, f"tensor {name!r}: shape {shape} overflows")
        bits = count * DTYPE_BITS[dtype]
        if bits > U64_MAX:
            raise CheckpointError(path, f"tensor {name!r}: shape {shape} overflows")
        if bits % 8:
            raise CheckpointError(path, f"tensor {name!r}: does not end on a byte boundary (a sub-byte dtype)")
        expected = bits // 8
        if end - begin != expected:
            raise CheckpointError(
                path,
                f"tensor {name!r}: {end - begin} bytes for {dtype} {shape} (expected {expected})",
            )
        tensors[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
        spans.append((begin, end, name))

    # In offset order the tensors tile the data section: no gap, no overlap, no trailing byte.
    spans.sort()
    covered = 0
    for begin, end, name in spans:
        if begin != covered:
            what = "overlaps the tensor before it" if begin < covered else "leaves a gap before it"
            raise CheckpointError(path, f"tensor {name!r} [{begin}, {end}) {what} (covered up to {covered})")
        covered = end
    if covered != data_len:
        raise CheckpointError(path, f"the tensors cover {covered} of the {data_len} data bytes: trailing bytes")
    return tensors, metadata


def read_header(path):
    """Read and validate one safetensors header (docs/keys.md); raise CheckpointError."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 8:
                raise CheckpointError(path, f"file is {size} bytes, too short for a safetensors header")
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > MAX_HEADER:
                raise CheckpointError(path, f"header length {length} is over the 100 MB limit")
            if 8 + length > size:
                raise CheckpointError(path, f"header length {length} is beyond the file ({size} bytes)")
            header_bytes = handle.read(length)
    except CheckpointError:
        raise
    except IsADirectoryError:
        raise CheckpointError(path, "is a directory, not a safetensors file") from None
    except FileNotFoundError:
        raise CheckpointError(path, "file not found") from None
    except OSError as error:
        raise CheckpointError(path, f"cannot read file ({error.strerror or error})") from None
    if len(header_bytes) != length:
        raise CheckpointError(path, "file changed while reading")
    tensors, metadata = _parse_header(path, header_bytes, size - 8 - length)
    return {"tensors": tensors, "metadata": metadata, "header_len": length, "file_size": size}


# --------------------------------------------------------------------------------------------------------------
# base checkpoints


def _resolve_base(base):
    """Return (index_path or None, [shard paths]) for a base directory, single file, or index file."""
    base = os.fspath(base)
    if os.path.isdir(base):
        # Choice: `model.safetensors` wins when a directory has both (transformers looks for it first).
        single = os.path.join(base, BASE_FILE)
        if os.path.isfile(single):
            return None, [single]
        index = os.path.join(base, INDEX_FILE)
        if os.path.isfile(index):
            return index, None
        raise CheckpointError(base, f"directory has neither {BASE_FILE} nor {INDEX_FILE}")
    if not os.path.exists(base):
        raise CheckpointError(base, "base checkpoint not found")
    if base.endswith(".json"):
        return base, None
    return None, [base]


def _read_index(index):
    try:
        with open(index, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise CheckpointError(index, f"cannot read index ({error.strerror or error})") from None
    try:
        data = _plain(_strict_json(raw.decode("utf-8")))
    except UnicodeDecodeError:
        raise CheckpointError(index, "index is not valid UTF-8") from None
    except RecursionError:
        raise CheckpointError(index, "index is not valid JSON (nested too deeply)") from None
    except ValueError as error:
        raise CheckpointError(index, f"index is not valid JSON ({error})") from None
    weight_map = data.get("weight_map") if type(data) is dict else None
    if type(weight_map) is not dict or not all(type(v) is str for v in weight_map.values()):
        raise CheckpointError(index, "index has no weight_map object of tensor name -> shard file")
    for shard in weight_map.values():
        parts = shard.replace("\\", "/").split("/") if os.sep == "\\" else shard.split("/")
        if not shard or os.path.isabs(shard) or ".." in parts:
            raise CheckpointError(index, f"weight_map names {shard!r}, outside the base directory")
    return weight_map


def _module_of(key):
    cut = key.rfind(".")
    return key[:cut] if cut > 0 else None


class BaseIndex:
    """The base checkpoint's tensors and module tree, read once and checked against many adapters."""

    def __init__(self, base, load_as="causal-lm", cache_dir=None):
        # ``cache_dir`` is accepted for the native API's shape; the reference reads every header, every time.
        if load_as not in LOAD_AS:
            raise ValueError(f"load_as must be one of {', '.join(LOAD_AS)}, not {load_as!r}")
        self.path = os.fspath(base)
        self.load_as = load_as
        index, shards = _resolve_base(self.path)
        weight_map = None
        if index is not None:
            weight_map = _read_index(index)
            folder = os.path.dirname(index)
            shards = []
            for shard in weight_map.values():
                if shard not in shards:
                    shards.append(shard)
            shards = [os.path.join(folder, shard) for shard in shards]
            for shard in shards:
                if not os.path.isfile(shard):
                    raise CheckpointError(shard, f"shard named by {os.path.basename(index)} does not exist")

        self.tensors = {}  # name -> shape (list)
        self.header_bytes = 0
        headers = {}
        for shard in shards:
            header = read_header(shard)
            headers[shard] = header["tensors"]
            self.header_bytes += 8 + header["header_len"]
            for name, info in header["tensors"].items():
                self.tensors[name] = info["shape"]
        if weight_map is not None:
            folder = os.path.dirname(index)
            for name, shard in weight_map.items():
                if name not in headers[os.path.join(folder, shard)]:
                    raise CheckpointError(
                        index, f"weight_map names tensor {name!r} in {shard}, which does not contain it"
                    )
        self.shard_count = len(shards)
        self.tensor_count = len(self.tensors)

        # The base-model prefix: the first component that all non-head keys share.
        non_head = [key for key in self.tensors if key.split(".", 1)[0] not in HEAD_MODULES]
        firsts = {key.split(".", 1)[0] for key in non_head}
        prefix = ""
        if len(firsts) == 1 and all("." in key for key in non_head):
            prefix = firsts.pop()
        self.base_model_prefix = prefix  # `model`, `transformer`, or "" (no dot)

        # The module tree the chosen class builds: module path -> weight shape (None: module without weight).
        self.tied_lm_head = False
        if load_as == "causal-lm":
            visible = {key: key for key in self.tensors}
            # Choice (not in docs/keys.md): a model with tied embeddings has no `lm_head.weight` on disk, yet
            # AutoModelForCausalLM builds `lm_head` (PEFT's modules_to_save=["lm_head"] saves it): it stands
            # for the input embedding.
            if not any(key.startswith("lm_head.") for key in self.tensors):
                for name in TIED_EMBEDDINGS:
                    key = f"{prefix}.{name}.weight" if prefix else f"{name}.weight"
                    if key in self.tensors:
                        visible["lm_head.weight"] = key
                        self.tied_lm_head = True
                        break
        else:
            cut = len(prefix) + 1 if prefix else 0
            visible = {key[cut:]: key for key in non_head}
        self.visible = visible  # name in the built tree -> checkpoint key
        self.modules = {}
        for name, key in visible.items():
            module = _module_of(name)
            if module is None:
                continue
            if name.endswith(".weight"):
                self.modules[module] = self.tensors[key]
            else:
                self.modules.setdefault(module, None)
        self._suffixes = None

    # ----------------------------------------------------------------------------------------------------------

    def suffix_index(self):
        """Every component suffix of every module path -> the module paths that end with it (built on demand)."""
        if self._suffixes is None:
            suffixes: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
            for module in self.modules:
                parts = tuple(module.split("."))
                for start in range(len(parts)):
                    suffixes.setdefault(parts[start:], []).append(parts)
            self._suffixes = suffixes
        return self._suffixes

    def param_shape(self, module, param):
        key = self.visible.get(f"{module}.{param}")
        return None if key is None else self.tensors[key]

    def check(self, adapter):
        return _check(self, adapter)

    def check_many(self, adapters):
        """One report per adapter; an unreadable adapter gives a report with one PK000 finding."""
        reports = []
        for adapter in adapters:
            try:
                reports.append(self.check(adapter))
            except CheckpointError as error:
                reports.append(self.unreadable(adapter, error))
        return reports

    def unreadable(self, adapter, error):
        counts = dict.fromkeys(
            ("adapter_tensors", "adapter_modules", "matched", "matched_after_rewrite", "unmatched"), 0
        )
        counts.update(base_tensors=self.tensor_count, base_shards=self.shard_count, header_bytes=self.header_bytes)
        return {
            "adapter": os.fspath(adapter),
            "base": self.path,
            "findings": [_finding("PK000", str(error), {"path": error.path, "reason": error.reason})],
            "counts": counts,
            "rewrite": None,
            "seconds": 0.0,
        }


# --------------------------------------------------------------------------------------------------------------
# adapters


def _adapter_files(adapter):
    adapter = os.fspath(adapter)
    if os.path.isdir(adapter):
        path = os.path.join(adapter, ADAPTER_FILE)
        if not os.path.isfile(path):
            raise CheckpointError(adapter, f"directory has no {ADAPTER_FILE}")
        return path, os.path.join(adapter, CONFIG_FILE)
    if not os.path.exists(adapter):
        raise CheckpointError(adapter, "adapter not found")
    return adapter, os.path.join(os.path.dirname(adapter), CONFIG_FILE)


def _read_config(path):
    """(config dict or None, problem or None)."""
    if not os.path.isfile(path):
        return None, "adapter_config.json is missing"
    try:
        with open(path, "rb") as handle:
            config = json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as error:
        return None, f"adapter_config.json is unreadable ({error})"
    if type(config) is not dict:
        return None, "adapter_config.json is not a JSON object"
    return config, None


def _peft_wrapper_len(key):
    """Length of the key before its module path: through the first `base_model.model` component pair (with any
    outer wrapper before it, such as DDP's `module.`), or 0 when the key has no such pair (missing prefix)."""
    if key.startswith(PEFT_PREFIX):
        return len(PEFT_PREFIX)
    parts = key.split(".")
    for i in range(len(parts) - 2):
        if parts[i] == "base_model" and parts[i + 1] == "model":
            return len(".".join(parts[: i + 2])) + 1
    return 0


def _classify(key):
    """(module path, kind, param) for an adapter key; module None when the key names no module.

    kind: a tuner parameter name (``lora_A``, ``ia3_l``, ...), ``copy`` (a saved module parameter: param names
    it) or ``ignored`` (``original_module``, prompt embeddings).
    """
    path = key[_peft_wrapper_len(key) :]
    parts = path.split(".")
    count = len(parts)
    if parts[0] in UNPLACED:
        return None, "ignored", None
    # The tuner parameter is one of the last three components, followed by an optional adapter name and an
    # optional final weight/bias.
    for position in range(count - 1, max(count - 4, -1), -1):
        name = parts[position]
        if name not in TUNER_PARAMS:
            continue
        tail = parts[position + 1 :]
        if len(tail) == 2 and tail[1] not in FINAL_PARAMS:
            continue
        module = parts[:position]
        if name.startswith("trainable_tokens_") and module and module[-1] == "token_adapter":
            module = module[:-1]
        param = tail[-1] if tail and tail[-1] in FINAL_PARAMS else "weight"
        return (".".join(module) or None), name, param
    if "original_module" in parts:
        return None, "ignored", None
    if "modules_to_save" in parts:
        position = parts.index("modules_to_save")
        rest = parts[position + 1 :]
        if len(rest) >= 2:
            rest = rest[1:]  # the adapter name (`.default.`)
        # `score.modules_to_save.default.dense.bias` is the copy of `score.dense`'s `bias`.
        module = parts[:position] + rest[:-1]
        return (".".join(module) or None), "copy", (rest[-1] if rest else "weight")
    if count >= 3 and parts[-2] == "base_layer":
        # Choice (not in docs/keys.md): PEFT 0.21 saves an embedding LoRA's base embedding as
        # `<module>.base_layer.weight` (with trainable tokens `<module>.token_adapter.base_layer.weight`); it is a
        # copy of `<module>.weight`.
        module = parts[:-2]
        if len(module) >= 2 and module[-1] == "token_adapter":
            module = module[:-1]
        return ".".join(module), "copy", parts[-1]
    if count >= 2:
        # A full module saved by modules_to_save (`lm_head.weight`, what PEFT 0.21 writes). Choice: a key that
        # names no base tensor is a module copy too, so it takes part in the rewrite (`_orig_mod.lm_head.weight`)
        # and is unmatched (PK002) when nothing explains it.
        return ".".join(parts[:-1]), "copy", parts[-1]
    return None, "ignored", None


class _Module:
    __slots__ = ("bad_prefix", "copies", "path", "tensors")

    def __init__(self, path):
        self.path = path
        self.bad_prefix = False  # a key with an outer wrapper before `base_model.model.`, or without it
        self.tensors = {}  # (kind, param) -> (key, shape)
        self.copies = []  # (param, key, shape)

    def is_lora(self):
        return any(kind in LORA_PARAMS for kind, _ in self.tensors)

    def get(self, kind, param="weight"):
        return self.tensors.get((kind, param))


def _pattern_key(patterns, module):
    """The rank_pattern key for a module path (docs/keys.md): the first key equal to the path or matching it
    as a full regex, else the first matching its end after a dot (PEFT's `(.*\\.)?(key)$`)."""
    for pattern in patterns:
        if pattern == module:
            return pattern
        try:
            if re.fullmatch(f"(?:{pattern})", module):
                return pattern
        except re.error:
            pass
    for pattern in patterns:
        try:
            if re.fullmatch(rf"(?:.*\.)?(?:{pattern})", module):
                return pattern
        except re.error:
            if module.endswith("." + pattern):
                return pattern
    return None


def _targets(module, entries):
    """PEFT's list matching: a module is targeted when its path equals an entry or ends with `.entry`.

    Choice: docs/keys.md says "an adapter LoRA module whose last component is not in the list"; PEFT 0.21 saves
    `target_modules="all-linear"` as a list of full module paths, which that rule would flag on every module.
    For one-component entries both rules agree.
    """
    return any(module == entry or module.endswith("." + entry) for entry in entries)


def _numel(shape):
    count = 1
    for dim in shape:
        count *= dim
    return count


def _shape_problem(module, base_shape, fan_in_fan_out):
    """(adapter key, adapter shape, note) for the first incompatible tensor of a LoRA module, else None."""
    if base_shape is None or len(base_shape) < 2:
        return None
    embedding_a = module.get(EMB_A)
    embedding_b = module.get(EMB_B)
    if embedding_a or embedding_b:
        # Choice: an embedding's DoRA magnitude has one element per embedding dimension (its output), which is
        # what PEFT 0.21 writes ([dim], not [vocab]).
        vocab, dim = base_shape[0], base_shape[1]
        if embedding_a:
            key, shape = embedding_a
            if len(shape) != 2 or shape[1] != vocab:
                return key, shape, ("vocab", shape[1] if len(shape) == 2 else None)
        if embedding_b:
            key, shape = embedding_b
            if not shape or shape[0] != dim:
                return key, shape, None
        if embedding_a and embedding_b and embedding_a[1][0] != embedding_b[1][1]:
            key, shape = embedding_b
            return key, shape, "rank"
        magnitude = module.get(MAGNITUDE)
        if magnitude and _numel(magnitude[1]) != dim:
            return magnitude[0], magnitude[1], None
        return None
    if len(base_shape) == 2 and fan_in_fan_out:
        fan_in, fan_out = base_shape[0], base_shape[1]
    else:
        fan_out, fan_in = base_shape[0], base_shape[1]
    lora_a = module.get(LORA_A)
    lora_b = module.get(LORA_B)
    if lora_a:
        key, shape = lora_a
        if len(shape) < 2 or shape[1] != fan_in:
            return key, shape, None
    if lora_b:
        key, shape = lora_b
        if len(shape) < 1 or shape[0] != fan_out:
            return key, shape, None
    if lora_a and lora_b and lora_a[1] and len(lora_b[1]) >= 2 and lora_a[1][0] != lora_b[1][1]:
        return lora_b[0], lora_b[1], "rank"
    bias = module.get(LORA_B, "bias")
    if bias and list(bias[1]) != [fan_out]:
        return bias[0], bias[1], None
    magnitude = module.get(MAGNITUDE)
    if magnitude and _numel(magnitude[1]) != fan_out:
        return magnitude[0], magnitude[1], None
    return None


_MASK_TABLES: dict[int, bytes] = {}


def _mask_table(mask):
    table = _MASK_TABLES.get(mask)
    if table is None:
        table = _MASK_TABLES[mask] = bytes(value & mask for value in range(256))
    return table


def _all_zero(handle, start, length, dtype):
    """Whether the `length` bytes at `start` (whole elements of `dtype`) are all zero values."""
    masks = ZERO_MASKS.get(dtype, (0xFF,))
    width = len(masks)
    chunk = 1 << 20  # a multiple of every element width
    handle.seek(start)
    while length > 0:
        data = handle.read(min(chunk, length))
        if not data:
            return True  # cannot happen: the header check keeps every tensor inside the file
        for position, mask in enumerate(masks):
            part = data[position::width] if width > 1 else data
            if mask != 0xFF:
                part = part.translate(_mask_table(mask))
            if part.count(0) != len(part):
                return False
        length -= len(data)
    return True


def _finding(code, message, details):
    return {"code": code, "message": message, "details": details}


def _fmt_rewrite(strip, add):
    parts = []
    if strip:
        parts.append(f"strip `{strip}`")
    if add:
        parts.append(f"add `{add}`")
    return " and ".join(parts)


def _has_index(components):
    return any(part.isdigit() and part.isascii() for part in components)


def _infer_rewrite(base, unmatched):
    """The (strip, add) component tuples that make the most unmatched paths match, or None.

    Candidates: for each unmatched path, its longest suffix that ends some base module ("up to the first
    matching suffix"); what the path has before it is the strip, what each such base module has before it is the
    add. Choice: a strip or add holding a numeric component (`layers.0.`) is a short suffix aligned with one
    arbitrary layer, not a wrapper prefix, and is no candidate. Every candidate is then counted exactly over all
    unmatched paths; the most matches win, ties: fewest components, fewest characters, alphabetical.
    """
    suffixes = base.suffix_index()
    candidates = set()
    for path in unmatched:
        parts = tuple(path.split("."))
        for start in range(len(parts)):
            ends = suffixes.get(parts[start:])
            if ends:
                strip = parts[:start]
                if not _has_index(strip):
                    tail = len(parts) - start
                    for module in ends:
                        add = module[: len(module) - tail]
                        if not _has_index(add):
                            candidates.add((strip, add))
                break
    if not candidates:
        return None

    def text(components):
        return "".join(part + "." for part in components)

    best, best_key = None, None
    for strip, add in candidates:
        strip_text, add_text = text(strip), text(add)
        matched = 0
        for path in unmatched:
            if path.startswith(strip_text) and add_text + path[len(strip_text) :] in base.modules:
                matched += 1
        key = (-matched, len(strip) + len(add), len(strip_text) + len(add_text), strip_text, add_text)
        if best_key is None or key < best_key:
            best, best_key = (strip, add), key
    return best if best_key is not None and best_key[0] < 0 else None


def _check(base, adapter):
    started = time.perf_counter()
    adapter = os.fspath(adapter)
    tensor_path, config_path = _adapter_files(adapter)
    header = read_header(tensor_path)
    tensors = header["tensors"]
    data_start = 8 + header["header_len"]
    findings: list[dict[str, Any]] = []
    counts = {
        "adapter_tensors": len(tensors),
        "adapter_modules": 0,
        "matched": 0,
        "matched_after_rewrite": 0,
        "unmatched": 0,
        "base_tensors": base.tensor_count,
        "base_shards": base.shard_count,
        "header_bytes": base.header_bytes + 8 + header["header_len"],
    }
    report = {
        "adapter": adapter,
        "base": base.path,
        "findings": findings,
        "counts": counts,
        "rewrite": None,
        "seconds": 0.0,
    }
    if not tensors:
        # Choice: an empty adapter reports PK006 alone (every other check would only repeat it).
        findings.append(
            _finding(
                "PK006",
                f"{tensor_path} holds no tensors at all ({header['file_size']} bytes): the adapter is empty, "
                "as a ZeRO-3 save without gathering the parameters leaves it; save again with "
                "`zero3_save_16bit_model` or gather the parameters first",
                {"tensors": 0, "bytes": header["file_size"]},
            )
        )
        report["seconds"] = time.perf_counter() - started
        return report

    # Group the tensors by module.
    modules: dict[str, _Module] = {}
    prefix_keys = []  # keys PEFT drops for their prefix (outer wrapper or no `base_model.model.`)
    for key, info in tensors.items():
        path, kind, param = _classify(key)
        if path is None:
            continue
        module = modules.get(path)
        if module is None:
            module = modules[path] = _Module(path)
        if _peft_wrapper_len(key) != len(PEFT_PREFIX):
            module.bad_prefix = True
            prefix_keys.append(key)
        if kind == "copy":
            module.copies.append((param, key, info["shape"]))
        else:
            module.tensors[(kind, param)] = (key, info["shape"])
    counts["adapter_modules"] = len(modules)

    config, config_problem = _read_config(config_path)
    config = config or {}
    fan_in_fan_out = config.get("fan_in_fan_out") is True

    # Matching and the prefix rewrite (PK001, PK002).
    target = {}  # adapter module path -> base module path
    unmatched = []
    for path in modules:
        if path in base.modules:
            target[path] = path
        else:
            unmatched.append(path)
    counts["matched"] = len(target)
    explained = []
    strip_text = add_text = ""
    if unmatched:
        best = _infer_rewrite(base, unmatched)
        if best is not None:
            strip, add = best
            still = []
            for path in unmatched:
                components = tuple(path.split("."))
                if components[: len(strip)] == strip:
                    rewritten = ".".join(add + components[len(strip) :])
                    if rewritten in base.modules:
                        target[path] = rewritten
                        explained.append(path)
                        continue
                still.append(path)
            unmatched = still
            strip_text = "".join(part + "." for part in strip)
            add_text = "".join(part + "." for part in add)
    # PK001 covers the modules PEFT drops today that match after the fix: those the rewrite explains, and the
    # matched ones with keys outside `base_model.model.` (PEFT only loads keys under that prefix). Choice: no
    # PK001 when the fix would make no module load (all of them are PK002).
    explained_set = set(explained)
    prefix_only = [path for path in target if modules[path].bad_prefix and path not in explained_set]
    fixed = len(explained) + len(prefix_only)
    if fixed:
        coverage = fixed / len(modules)
        report["rewrite"] = {"strip": strip_text, "add": add_text, "coverage": coverage}
        example = explained[0] if explained else prefix_only[0]
        parts = []
        if explained:
            parts.append(
                f"{len(explained)} of {len(modules)} adapter modules match the base only after a prefix "
                f"rewrite ({_fmt_rewrite(strip_text, add_text)})"
            )
        details = {
            "rewrite": {"strip": strip_text, "add": add_text},
            "coverage": coverage,
            "modules": fixed,
            "example": {"adapter": example, "base": target[example]},
        }
        if prefix_keys:
            first = min(prefix_keys)
            found = first[: _peft_wrapper_len(first)]
            how = f"start with `{found}` instead of `{PEFT_PREFIX}`" if found else f"lack `{PEFT_PREFIX}`"
            parts.append(
                f"{len(prefix_keys)} adapter keys {how} (e.g. `{first}`) and PEFT only loads keys under `{PEFT_PREFIX}`"
            )
            details["peft_prefix"] = {"found": found, "expected": PEFT_PREFIX, "keys": len(prefix_keys), "first": first}
        findings.append(
            _finding(
                "PK001",
                f"{'; '.join(parts)}: PEFT drops them silently and the model stays the base model (e.g. "
                f"`{example}` -> `{target[example]}`); fix the keys with `peftfix keys --write-remapped OUT`",
                details,
            )
        )
    counts["matched_after_rewrite"] = len(explained)
    counts["unmatched"] = len(unmatched)
    cut_by = _adapter_name_cut(base, unmatched)
    if unmatched and cut_by is not None:
        unmatched.sort()
        findings.append(
            _finding(
                "PK002",
                f"{len(unmatched)} adapter modules match nothing in the base (e.g. `{unmatched[0]}`): the adapter was "
                f"saved by PEFT before 0.18 under the adapter name {cut_by!r}, whose save removed every `.{cut_by}` "
                "from the keys, `.lora_A`/`.lora_B` included; PEFT loads none of them. Rename the keys back to "
                "`<module>.lora_A.weight` and use an adapter name that is no part of 'lora_'",
                {"count": len(unmatched), "modules": unmatched[:SHOWN], "adapter_name": cut_by},
            )
        )
    elif unmatched:
        unmatched.sort()
        shown = unmatched[:SHOWN]
        more = f" and {len(unmatched) - SHOWN} more" if len(unmatched) > SHOWN else ""
        findings.append(
            _finding(
                "PK002",
                f"{len(unmatched)} of {len(modules)} adapter modules match nothing in the base, even after a "
                f"prefix rewrite: {', '.join(shown)}{more}; the adapter was trained on another model or "
                "architecture",
                {"count": len(unmatched), "modules": shown},
            )
        )

    # Shapes (PK003): one finding per module.
    for path in sorted(target):
        module = modules[path]
        base_path = target[path]
        base_shape = base.modules.get(base_path)
        problem = None
        if module.is_lora():
            found = _shape_problem(module, base_shape, fan_in_fan_out)
            if found is not None:
                key, shape, note = found
                problem = (key, shape, base_shape, note)
        if problem is None:
            for param, key, shape in sorted(module.copies, key=lambda copy: copy[1]):
                wanted = base.param_shape(base_path, param)
                if wanted is not None and list(shape) != list(wanted):
                    note = None
                    if len(shape) == len(wanted) and shape[0] != wanted[0] and list(shape[1:]) == list(wanted[1:]):
                        note = ("rows", shape[0])
                    problem = (key, shape, wanted, note)
                    break
        if problem is None:
            continue
        key, shape, wanted, note = problem
        last = base_path.rsplit(".", 1)[-1]
        details = {
            "module": path,
            "base_module": base_path,
            "tensor": key,
            "adapter_shape": list(shape),
            "base_shape": list(wanted),
        }
        if note and note[0] in ("rows", "vocab") and last in VOCAB_MODULES and note[1] is not None:
            rows = note[1]
            details["resize_to"] = rows
            message = (
                f"`{path}`: base has {wanted[0]} rows, adapter {rows}: call "
                f"`model.resize_token_embeddings({rows})` before `PeftModel.from_pretrained`"
            )
        elif note == "rank":
            message = (
                f"`{path}`: `{key}` has shape {list(shape)}, whose rank does not match the module's lora_A: "
                "the adapter file is inconsistent"
            )
        else:
            message = (
                f"`{path}`: adapter tensor `{key}` has shape {list(shape)}, incompatible with the base "
                f"module's {list(wanted)}: loading fails with a size mismatch (wrong base model or size)"
            )
        findings.append(_finding("PK003", message, details))

    # No-op adapter (PK004): read only the zero-initialised factors, lora_B and lora_embedding_A (PEFT zeroes A,
    # not B, on embeddings).
    b_modules = []
    factors = set()
    for module in modules.values():
        keys = [key for (kind, _), (key, _) in module.tensors.items() if kind in (LORA_B, EMB_A)]
        if keys:
            b_modules.append(keys)
            factors.add(EMB_A if any(kind == EMB_A for kind, _ in module.tensors) else LORA_B)
    if b_modules:
        all_zero = True
        with open(tensor_path, "rb") as handle:
            for keys in b_modules:
                for key in keys:
                    begin, end = tensors[key]["data_offsets"]
                    if not _all_zero(handle, data_start + begin, end - begin, tensors[key]["dtype"]):
                        all_zero = False
                        break
                if not all_zero:
                    break
        if all_zero:
            findings.append(
                _finding(
                    "PK004",
                    f"the zero-initialised factor of the adapter's {len(b_modules)} LoRA modules is all zeros: the "
                    "adapter is a no-op (never trained, or the weights were lost when saving)",
                    {
                        "modules": len(b_modules),
                        "zero_modules": len(b_modules),
                        "factor": " / ".join(sorted(factors, key=len)),
                    },
                )
            )

    # Trainable tokens beyond the base vocabulary (PK003).
    token_indices = config.get("trainable_token_indices")
    if type(token_indices) is list:
        token_indices = {None: token_indices}
    if type(token_indices) is not dict:
        token_indices = {}
    for entry, indices in token_indices.items():
        numbers = [i for i in indices if type(i) is int and i >= 0] if type(indices) is list else []
        path = next(
            (
                p
                for p in sorted(target)
                if any(kind in TUNER_PARAMS for kind, _ in modules[p].tensors)
                and (_targets(p, [entry]) if entry is not None else p.rsplit(".", 1)[-1] in TIED_EMBEDDINGS)
            ),
            None,
        )
        base_shape = base.modules.get(target[path]) if path is not None else None
        if numbers and base_shape and max(numbers) >= base_shape[0]:
            highest = max(numbers)
            findings.append(
                _finding(
                    "PK003",
                    f"`{path}`: trainable_token_indices reach {highest} but the base embedding has {base_shape[0]} "
                    f"rows: call `model.resize_token_embeddings({highest + 1})` before `PeftModel.from_pretrained`",
                    {
                        "module": path,
                        "field": "trainable_token_indices",
                        "max_index": highest,
                        "base_rows": base_shape[0],
                        "resize_to": highest + 1,
                    },
                )
            )

    # Config (PK005).
    if config_problem is not None:
        findings.append(
            _finding(
                "PK005",
                f"{config_problem}: PEFT cannot load the adapter without it ({config_path})",
                {"field": "adapter_config.json", "reason": config_problem, "file": config_path},
            )
        )
    else:
        lora_modules = sorted(path for path, module in modules.items() if module.is_lora())
        tuner_modules = sorted(
            path for path, module in modules.items() if any(kind in TUNER_PARAMS for kind, _ in module.tensors)
        )
        peft_type = config.get("peft_type")
        is_lora = peft_type is None or (type(peft_type) is str and peft_type.upper() == "LORA")
        rank = config.get("r") if is_lora else None
        rank_pattern = (config.get("rank_pattern") or {}) if is_lora else {}
        if type(rank_pattern) is not dict:
            rank_pattern = {}
        wrong = []
        for path in lora_modules:
            module = modules[path]
            lora_a = module.get(LORA_A) or module.get(EMB_A)
            if lora_a is None or not lora_a[1]:
                continue
            pattern = _pattern_key(rank_pattern, path)
            expected = rank_pattern[pattern] if pattern is not None else rank
            if type(expected) is not int:
                continue
            if lora_a[1][0] != expected:
                wrong.append((path, expected, lora_a[1][0], "r" if pattern is None else "rank_pattern"))
        if wrong:
            path, expected, rows, field = wrong[0]
            findings.append(
                _finding(
                    "PK005",
                    f"adapter_config.json says {field}={expected} but {len(wrong)} LoRA modules have lora_A with "
                    f"{rows} rows (e.g. `{path}`): PEFT builds rank-{expected} layers and loading fails with a "
                    "size mismatch; correct `r`/`rank_pattern` in adapter_config.json",
                    {
                        "field": field,
                        "module": path,
                        "config_r": expected,
                        "lora_A_rows": rows,
                        "count": len(wrong),
                    },
                )
            )
        targets = config.get("target_modules")
        saved_instead = _targeted_and_saved(modules, config)
        if type(targets) is list and all(type(entry) is str for entry in targets) and tuner_modules:
            missing = sorted(
                entry
                for entry in targets
                if not any(_targets(path, [entry]) for path in tuner_modules)
                and not any(_targets(path, [entry]) for path in saved_instead)
            )
            unlisted = [path for path in lora_modules if not _targets(path, targets)]
            if missing or unlisted:
                parts = []
                if missing:
                    parts.append(f"target_modules lists {', '.join(missing[:SHOWN])} but no adapter module has it")
                if unlisted:
                    parts.append(f"{len(unlisted)} LoRA modules are not in target_modules (e.g. `{unlisted[0]}`)")
                findings.append(
                    _finding(
                        "PK005",
                        "; ".join(parts) + ": adapter_config.json does not describe these tensors, so PEFT "
                        "builds other layers than the file holds",
                        {
                            "field": "target_modules",
                            "missing": missing,
                            "unlisted": unlisted[:SHOWN],
                            "unlisted_count": len(unlisted),
                        },
                    )
                )
        if saved_instead:
            findings.append(
                _finding(
                    "PK005",
                    f"`{saved_instead[0]}` is in both target_modules and modules_to_save: PEFT makes it a full "
                    "trainable copy with no LoRA on it; keep each module in one list",
                    {"field": "modules_to_save", "modules": saved_instead, "count": len(saved_instead)},
                )
            )
        tied_copies = sorted(
            path
            for path, module in modules.items()
            if module.copies and path.rsplit(".", 1)[-1] in ("lm_head", *TIED_EMBEDDINGS)
        )
        if base.tied_lm_head and tied_copies and config.get("ensure_weight_tying") is not True:
            findings.append(
                _finding(
                    "PK005",
                    f"modules_to_save copies {', '.join(tied_copies)} of a base with tied embeddings: the copy "
                    "unties them, and a merged model reloaded with the base's config drops the trained matrix; "
                    "pass ensure_weight_tying=True to LoraConfig",
                    {"field": "ensure_weight_tying", "config": False, "modules": tied_copies},
                )
            )
        magnitudes = sum(1 for module in modules.values() if any(k == MAGNITUDE for k, _ in module.tensors))
        use_dora = config.get("use_dora") is True
        if lora_modules and use_dora != (magnitudes > 0):
            findings.append(
                _finding(
                    "PK005",
                    (
                        "use_dora is true but the adapter has no lora_magnitude_vector: PEFT builds DoRA layers "
                        "that are missing their magnitudes"
                        if use_dora
                        else f"use_dora is false but {magnitudes} modules carry lora_magnitude_vector: PEFT "
                        "ignores the DoRA magnitudes"
                    ),
                    {"field": "use_dora", "use_dora": use_dora, "magnitude_modules": magnitudes},
                )
            )

    report["seconds"] = time.perf_counter() - started
    return report


def _adapter_name_cut(base, unmatched):
    """The adapter name (a prefix of ``lora_``) whose removal by PEFT before 0.18 explains every unmatched path:
    saved as ``key.replace(f".{name}", "")``, ``q_proj.lora_A.lora.weight`` became ``q_proj_A.weight``."""
    if not unmatched:
        return None
    for name in ("lora", "lora_", "lor", "lo", "l"):
        tails = [f".{role}.{name}".replace(f".{name}", "") for role in (LORA_A, LORA_B, EMB_A, EMB_B)]
        if all(
            any(tail and path.endswith(tail) and path[: -len(tail)] in base.modules for tail in tails)
            for path in unmatched
        ):
            return name
    return None


def _targeted_and_saved(modules, config):
    """Saved-copy modules that a ``target_modules`` entry also names; with none on disk, the shared entries."""
    targets, saved = config.get("target_modules"), config.get("modules_to_save")
    if type(targets) is not list or type(saved) is not list or not saved:
        return []
    targets = [entry for entry in targets if type(entry) is str]
    saved = [entry for entry in saved if type(entry) is str]
    both = sorted(
        path
        for path, module in modules.items()
        if module.copies and any(path.endswith(entry) for entry in saved) and _targets(path, targets)
    )
    return both or sorted(set(targets) & set(saved))


def check_adapter(adapter, base, load_as="causal-lm", cache_dir=None):
    """Check one adapter against a base checkpoint (docs/keys.md); CheckpointError for unreadable files. Local files
    only; ``cache_dir`` is ignored (see :class:`BaseIndex`)."""
    return BaseIndex(base, load_as).check(adapter)


# --------------------------------------------------------------------------------------------------------------
# remapping


def _rewrite_key(key, strip, add):
    """`base_model.model.` + the module path (rewritten when it starts with `strip`) + the tuner parameter: an
    outer wrapper before PEFT's prefix is dropped, a missing prefix added (PEFT only loads keys under it)."""
    rest = key[_peft_wrapper_len(key) :]
    if rest.split(".", 1)[0] in UNPLACED:
        return key  # no module path (prompt learning): nothing to rewrite
    if strip and not rest.startswith(strip):
        return PEFT_PREFIX + rest
    return PEFT_PREFIX + add + rest[len(strip) :]


def _as_prefix(text):
    """ "" stays ""; anything else ends with exactly one dot (`_orig_mod` -> `_orig_mod.`)."""
    text = (text or "").rstrip(".")
    return text + "." if text else ""


def write_remapped(adapter, out, strip, add):
    """Write the adapter with every key rewritten: `base_model.model.` + the module path (strip `strip`, then add
    `add`) + the tuner parameter, any outer wrapper dropped and a missing PEFT prefix added.

    ``out`` is a directory (created; ``adapter_model.safetensors`` and ``adapter_config.json`` go in it) or a
    ``.safetensors`` path (the config is copied beside it). Tensor bytes are copied verbatim; the file is
    written to a temporary name and renamed. Returns the number of tensors written.
    """
    strip, add = _as_prefix(strip), _as_prefix(add)
    tensor_path, config_path = _adapter_files(adapter)
    header = read_header(tensor_path)
    out = os.fspath(out)
    if out.endswith(".safetensors"):
        out_file = out
        folder = os.path.dirname(out) or "."
    else:
        folder = out
        out_file = os.path.join(out, ADAPTER_FILE)
    os.makedirs(folder, exist_ok=True)

    renamed = {}
    for key, info in header["tensors"].items():
        new = _rewrite_key(key, strip, add)
        if new in renamed:
            raise CheckpointError(tensor_path, f"the rewrite maps two tensors to {new!r}")
        renamed[new] = info
    payload = {}
    if header["metadata"] is not None:
        payload["__metadata__"] = header["metadata"]
    payload.update(renamed)
    encoded = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    encoded += b" " * ((8 - len(encoded) % 8) % 8)

    temporary = out_file + f".tmp{os.getpid()}"
    try:
        with open(tensor_path, "rb") as source, open(temporary, "wb") as target:
            target.write(struct.pack("<Q", len(encoded)))
            target.write(encoded)
            source.seek(8 + header["header_len"])
            while True:
                block = source.read(1 << 22)
                if not block:
                    break
                target.write(block)
        os.replace(temporary, out_file)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    if os.path.isfile(config_path):
        config_out = os.path.join(folder, CONFIG_FILE)
        if os.path.abspath(config_out) != os.path.abspath(config_path):
            with open(config_path, "rb") as handle:
                data = handle.read()
            with open(config_out + ".tmp", "wb") as handle:
                handle.write(data)
            os.replace(config_out + ".tmp", config_out)
    return len(renamed)


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="+")
    parser.add_argument("--base", required=True)
    parser.add_argument("--load-as", default="causal-lm", choices=LOAD_AS)
    args = parser.parse_args(argv)
    try:
        index = BaseIndex(args.base, args.load_as)
    except CheckpointError as error:
        print(json.dumps({"code": "PK000", "message": str(error)}))
        return 2
    status = 0
    for adapter in args.adapters:
        try:
            report = index.check(adapter)
        except CheckpointError as error:
            print(json.dumps({"adapter": adapter, "code": "PK000", "message": str(error)}))
            status = 2
            continue
        print(json.dumps(report))
        if report["findings"] and status == 0:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
