"""vLLM's verdict on each adapter of a manifest, from vLLM's own code on CPU (run in the vLLM virtualenv).

For every case: PEFTHelper.from_local_dir + validate_legal at the default --max-lora-rank, then
LoRAModel.from_local_checkpoint with the LoRA module names the model class accepts (what
WorkerLoRAManager._load_adapter builds: the base's Linear layers plus the class's embedding_modules), its rename
mapper and the base vocabulary. "accept" when all of that passes, "reject" with vLLM's message otherwise.

    python vllm_verdicts.py MANIFEST OUT
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import vllm.lora.lora_model as lora_model
from safetensors import safe_open
from vllm.config.lora import LoRAConfig
from vllm.lora.lora_model import LoRAModel
from vllm.lora.peft_helper import PEFTHelper
from vllm.model_executor.models.interfaces import supports_lora

lora_model.PIN_MEMORY = False  # no CUDA driver here: pin_memory() would fail

# The vLLM module of each architecture the cases use (vllm/model_executor/models/registry.py).
MODULES = {"LlamaForCausalLM": "llama", "Qwen2ForCausalLM": "qwen2", "GPT2LMHeadModel": "gpt2"}
EMBEDDINGS = ("embed_tokens", "wte", "word_embeddings", "embed_in", "tok_embeddings")


def base_linear_names(base: str, files: list[str]) -> set[str]:
    names = set()
    for file in files:
        with safe_open(f"{base}/{file}", "np") as handle:
            for key in handle.keys():  # noqa: SIM118 (a safe_open handle, not a dict)
                if not key.endswith(".weight") or len(handle.get_slice(key).get_shape()) != 2:
                    continue
                last = key[: -len(".weight")].rsplit(".", 1)[-1]
                if last not in (*EMBEDDINGS, "lm_head"):
                    names.add(last)
    return names


def verdict(case: dict) -> tuple[str, str]:
    cls = getattr(
        importlib.import_module(f"vllm.model_executor.models.{MODULES[case['architecture']]}"), case["architecture"]
    )
    if not supports_lora(cls):
        return "reject", f"LoRA is not supported for {case['architecture']}"
    expected = base_linear_names(case["base"], case["base_files"]) | set(getattr(cls, "embedding_modules", {}) or {})
    packed = getattr(cls, "packed_modules_mapping", {}) or {}
    for name, members in packed.items():
        if name in expected:
            expected.discard(name)
            expected.update(members)
    mapper = getattr(cls, "hf_to_vllm_mapper", None)
    try:
        helper = PEFTHelper.from_local_dir(case["adapter"], max_position_embeddings=4096)
        helper.validate_legal(LoRAConfig())
        LoRAModel.from_local_checkpoint(
            case["adapter"],
            expected,
            peft_helper=helper,
            lora_model_id=1,
            device="cpu",
            model_vocab_size=case["vocab_size"],
            weights_mapper=mapper.get_rename_mapper() if mapper is not None else None,
        )
    except Exception as error:  # vLLM raises ValueError, KeyError, TypeError ... for bad adapters
        return "reject", f"{type(error).__name__}: {error}"
    return "accept", ""


def main(manifest: str, out: str) -> None:
    cases = json.loads(Path(manifest).read_text())
    results = {}
    for name, case in cases.items():
        outcome, message = verdict(case)
        results[name] = {"verdict": outcome, "message": message}
        print(f"{outcome:6} {name}: {message[:160]}")
    Path(out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
