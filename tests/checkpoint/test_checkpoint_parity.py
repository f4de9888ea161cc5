"""The native matcher and the plain-Python reference report the same findings on every fixture.

Compared per fixture: whether the check raises CheckpointError (PK000), the set of (code, key details) —
PK001: the rewrite, its coverage and modules, and the PEFT prefix found; PK002: how many modules; PK003: module, adapter shape, base shape;
PK005: which config field; PK004/PK006: the code alone — the inferred rewrite, and the module counts.
"""

from __future__ import annotations

import pytest

from .ckpt_cases import CASE_NAMES, CASES_BY_NAME, CORRUPT, CORRUPT_NAMES

MODULE_COUNTS = ("adapter_tensors", "adapter_modules", "matched", "matched_after_rewrite", "unmatched")
BASE_COUNTS = ("base_tensors", "base_shards")


def finding_key(finding: dict) -> tuple:
    code, details = finding["code"], finding.get("details") or {}
    if code == "PK001":
        rewrite = details.get("rewrite") or {}
        prefix = details.get("peft_prefix") or {}
        return (
            code,
            rewrite.get("strip"),
            rewrite.get("add"),
            round(float(details.get("coverage", -1)), 6),
            details.get("modules"),
            prefix.get("found"),
            prefix.get("keys"),
            prefix.get("first"),
        )
    if code == "PK002":
        return code, details.get("count")
    if code == "PK003":
        return (
            code,
            details.get("module"),
            tuple(details.get("adapter_shape") or ()),
            tuple(details.get("base_shape") or ()),
        )
    if code == "PK005":
        return code, details.get("field")
    return (code,)


def signature(module, adapter: str, base: str, load_as: str = "causal-lm") -> dict:
    try:
        report = module.check_adapter(adapter, base, load_as)
    except module.CheckpointError:
        return {"error": True}
    rewrite = report.get("rewrite")
    return {
        "error": False,
        "findings": sorted(finding_key(f) for f in report["findings"]),
        "rewrite": None if rewrite is None else (rewrite["strip"], rewrite["add"], round(rewrite["coverage"], 6)),
        "counts": {key: report["counts"][key] for key in MODULE_COUNTS + BASE_COUNTS},
    }


@pytest.mark.parametrize("name", CASE_NAMES)
def test_same_findings_on_every_fixture(reference, native, checkpoints, name):
    case = CASES_BY_NAME[name]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    expected = signature(reference, adapter, base, case.load_as)
    assert signature(native, adapter, base, case.load_as) == expected


@pytest.mark.parametrize("name", CORRUPT_NAMES)
def test_same_outcome_on_every_corrupt_input(reference, native, checkpoints, name):
    case = next(c for c in CORRUPT if c.name == name)
    adapter, base, _ = checkpoints.corrupt_paths(case)
    assert signature(native, adapter, base) == signature(reference, adapter, base) == {"error": True}


@pytest.mark.parametrize("load_as", ["causal-lm", "base-model"])
@pytest.mark.parametrize("base", ["llama", "qwen2", "gpt2"])
def test_every_adapter_against_every_base(reference, native, checkpoints, base, load_as):
    """Cross product: adapters checked against bases they were not made for give the same findings too."""
    differ = {}
    for name in sorted(checkpoints.adapters):
        adapter = str(checkpoints.adapters[name])
        expected = signature(reference, adapter, str(checkpoints.bases[base]), load_as)
        got = signature(native, adapter, str(checkpoints.bases[base]), load_as)
        if got != expected:
            differ[name] = {"reference": expected, "native": got}
    assert not differ, differ


def test_base_index_figures_agree(reference, native, checkpoints):
    for name in ("llama", "llama-single", "qwen2", "gpt2"):
        for load_as in ("causal-lm", "base-model"):
            ours = reference.BaseIndex(str(checkpoints.bases[name]), load_as)
            theirs = native.BaseIndex(str(checkpoints.bases[name]), load_as)
            assert (theirs.tensor_count, theirs.shard_count, theirs.header_bytes) == (
                ours.tensor_count,
                ours.shard_count,
                ours.header_bytes,
            ), name
            assert str(theirs.base_model_prefix).rstrip(".") == ours.base_model_prefix, name


def test_write_remapped_writes_identical_files(reference, native, checkpoints, tmp_path):
    for name in ("orig-mod", "automodel", "vlm-t5", "orig-mod-mts"):
        adapter = str(checkpoints.adapters[name])
        rewrite = reference.check_adapter(adapter, str(checkpoints.bases["llama"]))["rewrite"]
        ours, theirs = tmp_path / f"{name}-ref", tmp_path / f"{name}-native"
        n_ours = reference.write_remapped(adapter, str(ours), rewrite["strip"], rewrite["add"])
        n_theirs = native.write_remapped(adapter, str(theirs), rewrite["strip"], rewrite["add"])
        assert n_ours == n_theirs
        a = reference.read_header(str(ours / "adapter_model.safetensors"))
        b = reference.read_header(str(theirs / "adapter_model.safetensors"))
        assert a["tensors"] == b["tensors"] and a["metadata"] == b["metadata"]
        data_a = (ours / "adapter_model.safetensors").read_bytes()[8 + a["header_len"] :]
        data_b = (theirs / "adapter_model.safetensors").read_bytes()[8 + b["header_len"] :]
        assert data_a == data_b
