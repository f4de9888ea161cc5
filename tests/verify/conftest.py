"""Adapters for the runtime verifier tests (PV001-PV004), built from the session fixtures in tests/conftest.py.

- ``untrained_adapter``: ``get_peft_model`` + ``save_pretrained`` without training (every ``lora_B`` zero).
- ``orig_mod_adapter``: ``tiny_adapter`` with ``_orig_mod.`` (torch.compile) inserted into every key: PEFT drops
  them all while loading (PK001 before loading, PV002 while loading, PV001 after).
- ``remapped_adapter``: ``orig_mod_adapter`` repaired by ``peftfix keys --write-remapped``.
- ``hub_named_adapter``: ``tiny_adapter`` whose config names a hub id as its base.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

PEFT_PREFIX = "base_model.model."
HUB_NAME = "meta-llama/Llama-3.2-1B"


def _rekey(source: str, target: Path, rename, config_edit=None) -> str:
    from safetensors.torch import load_file, save_file

    target.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(Path(source) / "adapter_model.safetensors"))
    save_file({rename(key): value for key, value in tensors.items()}, str(target / "adapter_model.safetensors"))
    config = json.loads((Path(source) / "adapter_config.json").read_text())
    if config_edit:
        config.update(config_edit)
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return str(target)


@pytest.fixture(scope="session")
def untrained_adapter(tiny_base, tmp_path_factory) -> str:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    path = tmp_path_factory.mktemp("verify-untrained")
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_base),
        LoraConfig(task_type="CAUSAL_LM", r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    )
    model.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def orig_mod_adapter(tiny_adapter, tmp_path_factory) -> str:
    def rename(key: str) -> str:
        assert key.startswith(PEFT_PREFIX)
        return PEFT_PREFIX + "_orig_mod." + key[len(PEFT_PREFIX) :]

    return _rekey(tiny_adapter, tmp_path_factory.mktemp("verify-orig-mod"), rename)


@pytest.fixture(scope="session")
def remapped_adapter(orig_mod_adapter, tiny_base, tmp_path_factory) -> str:
    from click.testing import CliRunner

    from peftfix.cli import cli

    out = tmp_path_factory.mktemp("verify-remapped") / "fixed"
    result = CliRunner().invoke(cli, ["keys", orig_mod_adapter, "--base", tiny_base, "--write-remapped", str(out)])
    assert result.exit_code == 1, result.output  # PK001 reported, fixed adapter written
    assert (out / "adapter_model.safetensors").is_file()
    return str(out)


@pytest.fixture(scope="session")
def hub_named_adapter(tiny_adapter, tmp_path_factory) -> str:
    target = tmp_path_factory.mktemp("verify-hub-named")
    shutil.copytree(tiny_adapter, target, dirs_exist_ok=True)
    config = json.loads((target / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = HUB_NAME
    (target / "adapter_config.json").write_text(json.dumps(config, indent=2))
    return str(target)
