"""Public adapter_config.json files (tests/fixtures/adapter_configs/, SOURCES.md says where each comes from), each
beside the weights of a clean Llama adapter, under every profile.

``vllm-0.34.0-verdicts.json`` holds vLLM 0.34.0's own verdict on each (written by `.ci/vllm-crosscheck/run
--record`, and checked against vLLM again on every CI run): the vLLM profile must agree with it here too, where
vLLM is not installed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from peftfix.serving import check_serving

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "adapter_configs"
CONFIGS = sorted(CORPUS.glob("*__*.json"))
VERDICTS = json.loads((CORPUS / "vllm-0.34.0-verdicts.json").read_text())


def _adapter(checkpoints, tmp_path: Path, config: Path) -> Path:
    folder = tmp_path / config.stem
    folder.mkdir(parents=True)
    shutil.copyfile(config, folder / "adapter_config.json")
    shutil.copyfile(
        Path(checkpoints.adapters["llama-qv"]) / "adapter_model.safetensors", folder / "adapter_model.safetensors"
    )
    return folder


def test_the_corpus_is_large_and_every_file_has_a_recorded_vllm_verdict():
    assert len(CONFIGS) >= 20
    assert sorted(VERDICTS) == sorted(config.stem for config in CONFIGS)
    assert {"accept", "reject"} == set(VERDICTS.values())


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.stem[:60])
def test_the_vllm_profile_agrees_with_vllm_on_public_configs(checkpoints, tmp_path, config):
    findings = check_serving(_adapter(checkpoints, tmp_path, config), checkpoints.bases["llama"], "vllm==0.34.0")
    ours = "reject" if any(f.details["effect"] == "reject" for f in findings) else "accept"
    assert ours == VERDICTS[config.stem], [f.message for f in findings]


@pytest.mark.parametrize("server", ["sglang", "lorax", "vllm==0.32.0"])
def test_every_profile_reads_every_public_config(checkpoints, tmp_path, server):
    for config in CONFIGS:
        for finding in check_serving(
            _adapter(checkpoints, tmp_path / server, config), checkpoints.bases["llama"], server
        ):
            assert finding.code.startswith("PS") and finding.details["effect"] in ("reject", "ignore", "no-op")
