"""Build the cross-check's adapters with real PEFT (tests/checkpoint/ckpt_cases.py), add the public
adapter_config.json files of tests/fixtures/adapter_configs/ beside clean weights, and record peftfix's verdict
for each under its vLLM profile: "reject" when a PS finding says vLLM refuses the adapter, else "accept".

    python make_cases.py DIR      # writes DIR/manifest.json
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from checkpoint import ckpt_cases  # noqa: E402
from peftfix.serving import check_serving, select  # noqa: E402

# The base each adapter was trained on.
BASE_OF_PREFIX = {"qwen2": "qwen2", "gpt2": "gpt2", "tied": "llama-tied"}


def base_of(adapter: str) -> str:
    return next((base for prefix, base in BASE_OF_PREFIX.items() if adapter.startswith(prefix)), "llama")


REAL_CONFIGS = ROOT / "tests" / "fixtures" / "adapter_configs"


def real_config_adapters(built: ckpt_cases.Built, out: Path) -> dict[str, Path]:
    """Each public adapter_config.json of the corpus beside the weights of a clean Llama adapter (q_proj, v_proj):
    vLLM's verdict on them turns on the config alone."""
    weights = Path(built.adapters["llama-qv"]) / "adapter_model.safetensors"
    adapters = {}
    for config in sorted(REAL_CONFIGS.glob("*__*.json")):
        folder = out / "real" / config.stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config, folder / "adapter_config.json")
        shutil.copyfile(weights, folder / "adapter_model.safetensors")
        adapters[f"real:{config.stem}"] = folder
    return adapters


def main(out: str) -> None:
    built = ckpt_cases.build(Path(out) / "checkpoints")
    profile = select("vllm")
    manifest = {}
    adapters = {**built.adapters, **real_config_adapters(built, Path(out))}
    for name, adapter in sorted(adapters.items()):
        if name.startswith("corrupt") or not Path(adapter).is_dir():
            continue
        base = built.bases["llama" if name.startswith("real:") else base_of(name)]
        rejected = [f for f in check_serving(adapter, base, profile) if f.details["effect"] == "reject"]
        config = json.loads((Path(base) / "config.json").read_text())
        index = Path(base) / "model.safetensors.index.json"
        files = (
            sorted(set(json.loads(index.read_text())["weight_map"].values()))
            if index.is_file()
            else ["model.safetensors"]
        )
        manifest[name] = {
            "adapter": str(adapter),
            "base": str(base),
            "base_files": files,
            "architecture": config["architectures"][0],
            "vocab_size": config["vocab_size"],
            "peftfix": "reject" if rejected else "accept",
            "codes": sorted({f.code for f in rejected}),
        }
    Path(out, "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{len(manifest)} adapters for {profile.label}", file=sys.stderr)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main(sys.argv[1])
