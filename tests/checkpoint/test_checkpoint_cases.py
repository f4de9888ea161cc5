"""`peftfix.checkpoint` on real checkpoints: clean adapters, planted problems, corrupted files.

Every test runs twice through the ``layer`` fixture: over the plain-Python reference matcher and over
``peftfix._native`` (skipped while the extension has no checkpoint matcher).
"""

from __future__ import annotations

import json
import os

import pytest

from peftfix.diagnostics import Diagnostic

from . import ckpt_cases
from .ckpt_cases import CASE_NAMES, CASES_BY_NAME, CORRUPT, CORRUPT_NAMES, RESIZED, VOCAB

COUNT_KEYS = (
    "adapter_tensors",
    "adapter_modules",
    "matched",
    "matched_after_rewrite",
    "unmatched",
    "base_tensors",
    "base_shards",
    "header_bytes",
)


def _subset(expected, actual) -> bool:
    """Every key of ``expected`` is in ``actual`` with an equal value (recursing into dicts; floats approx)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and _subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, float):
        return isinstance(actual, (int, float)) and actual == pytest.approx(expected)
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and list(actual) == list(expected)
    return expected == actual


def _run(layer, checkpoints, name):
    case = CASES_BY_NAME[name]
    adapter, base = checkpoints.adapter_path(case), checkpoints.base_path(case)
    return case, adapter, layer.check_adapter(adapter, base, load_as=case.load_as)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_reports_exactly_the_expected_findings(layer, checkpoints, name):
    case, adapter, report = _run(layer, checkpoints, name)
    assert isinstance(report, layer.Report)
    assert sorted(report.codes) == sorted(code for code, items in case.expect.items() for _ in items), [
        (f.code, f.message) for f in report.findings
    ]
    for code, wanted in case.expect.items():
        found = [f.details for f in report.findings if f.code == code]
        unmatched = list(found)
        for details in wanted:
            hit = next((d for d in unmatched if _subset(details, d)), None)
            assert hit is not None, f"{code}: no finding with {details} in {found}"
            unmatched.remove(hit)
    for finding in report.findings:
        assert isinstance(finding, Diagnostic)
        assert finding.filename == adapter
        assert finding.location is None and finding.end_location is None and finding.fix is None
        assert finding.message and finding.code.startswith("PK")
    assert report.adapter == adapter
    assert set(COUNT_KEYS) <= set(report.counts)
    assert report.seconds >= 0


@pytest.mark.parametrize("name", CASE_NAMES)
def test_report_to_json_has_the_json_output_shape(layer, checkpoints, name):
    _, adapter, report = _run(layer, checkpoints, name)
    items = report.to_json()
    json.dumps(items)  # serialisable as is
    assert len(items) == len(report.findings)
    for item in items:
        assert set(item) == {"code", "message", "filename", "severity", "location", "end_location", "fix", "details"}
        assert item["filename"] == adapter and item["location"] is None and item["fix"] is None
        assert isinstance(item["details"], dict)


@pytest.mark.parametrize(
    "name, strip, add, coverage",
    [
        ("orig-mod", "_orig_mod.", "", 1.0),
        ("ddp-module", "module.", "", 1.0),
        ("automodel", "", "model.", 1.0),
        ("language-model", "language_model.", "", 1.0),
        ("vlm-model-language-model", "model.language_model.", "model.", 1.0),
        ("orig-mod-half", "_orig_mod.", "", 0.5),
        ("qv-as-base-model", "model.", "", 1.0),
    ],
)
def test_prefix_rewrite_is_reported_with_its_coverage(layer, checkpoints, name, strip, add, coverage):
    _, _, report = _run(layer, checkpoints, name)
    assert report.rewrite is not None
    assert report.rewrite["strip"] == strip and report.rewrite["add"] == add
    assert report.rewrite["coverage"] == pytest.approx(coverage)
    (finding,) = [f for f in report.findings if f.code == "PK001"]
    assert finding.details["rewrite"] == {"strip": strip, "add": add}
    assert finding.details["coverage"] == pytest.approx(coverage)
    for text in (strip, add):
        if text:
            assert text in finding.message


def test_counts_on_a_half_prefixed_adapter(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "orig-mod-half")
    counts = report.counts
    assert counts["adapter_tensors"] == 8 and counts["adapter_modules"] == 4
    assert (counts["matched"], counts["matched_after_rewrite"], counts["unmatched"]) == (2, 2, 0)
    assert counts["base_shards"] == 3 and counts["base_tensors"] == 21
    assert counts["header_bytes"] > 0


def test_counts_on_a_clean_adapter(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "llama-all-linear")
    counts = report.counts
    assert counts["adapter_tensors"] == 28 and counts["adapter_modules"] == 14
    assert (counts["matched"], counts["matched_after_rewrite"], counts["unmatched"]) == (14, 0, 0)
    assert report.rewrite is None


def test_unmatched_modules_are_counted_and_named(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "gpt2-adapter-on-llama")
    assert report.counts["unmatched"] == 2 and report.counts["matched"] == 0
    (finding,) = report.findings
    assert finding.code == "PK002"
    assert "transformer.h.0.attn.c_attn" in finding.message


def test_resized_vocabulary_names_the_row_counts_and_the_fix(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "resized-vocab")
    messages = {f.details["module"]: f.message for f in report.findings}
    assert set(messages) == {"lm_head", "model.embed_tokens"}
    for message in messages.values():
        assert f"base has {VOCAB} rows, adapter {RESIZED}" in message
        assert f"model.resize_token_embeddings({RESIZED})" in message
        assert "PeftModel.from_pretrained" in message


def test_shape_mismatch_names_module_and_shapes(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "llama-adapter-on-qwen2")
    for finding in report.findings:
        assert finding.details["module"] in finding.message


def test_untrained_adapter_counts_zero_modules(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "untrained")
    (finding,) = report.findings
    assert finding.code == "PK004"
    numbers = [v for v in finding.details.values() if isinstance(v, int)]
    assert 4 in numbers, finding.details  # the four q/v modules, all zero


def test_rank_edit_names_both_ranks(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "r-edited")
    (finding,) = report.findings
    assert "16" in finding.message and "8" in finding.message


def test_empty_adapter_is_pk006_alone(layer, checkpoints):
    _, _, report = _run(layer, checkpoints, "zero3-empty")
    assert report.codes == ["PK006"]
    assert report.counts["adapter_tensors"] == 0


@pytest.mark.parametrize("name", CORRUPT_NAMES)
def test_corrupt_input_gives_one_pk000_naming_the_file(layer, checkpoints, name):
    case = next(c for c in CORRUPT if c.name == name)
    adapter, base, broken = checkpoints.corrupt_paths(case)
    report = layer.check_adapter(adapter, base)
    assert report.codes == ["PK000"], report.to_json()
    (finding,) = report.findings
    assert finding.filename == adapter
    assert os.path.basename(broken) in finding.message, (broken, finding.message)
    assert case.reason.lower() in finding.message.lower()
    assert finding.details.get("reason")
    assert report.unreadable and not report.ok


def test_invalid_load_as_is_a_usage_error(layer, checkpoints):
    case = CASES_BY_NAME["llama-qv"]
    with pytest.raises(ValueError, match="load_as"):
        layer.check_adapter(checkpoints.adapter_path(case), checkpoints.base_path(case), load_as="seq2seq")


# --- BaseIndex: the base read once, many adapters ---------------------------------------------------------------


def test_base_index_reports_its_size(layer, checkpoints):
    index = layer.BaseIndex(str(checkpoints.bases["llama"]))
    assert index.error is None
    assert index.tensor_count == 21 and index.shard_count == 3 and index.header_bytes > 0
    assert index.base_model_prefix.rstrip(".") == "model"
    gpt2 = layer.BaseIndex(str(checkpoints.bases["gpt2"]))
    assert gpt2.base_model_prefix.rstrip(".") == "transformer"


def test_check_many_matches_single_checks_in_order(layer, checkpoints):
    names = ["llama-qv", "orig-mod", "untrained", "resized-vocab", "zero3-empty", "config-missing"]
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[n]) for n in names]
    index = layer.BaseIndex(str(checkpoints.bases["llama"]))
    many = index.check_many(adapters)
    assert [r.adapter for r in many] == adapters
    for adapter, report in zip(adapters, many, strict=True):
        single = index.check(adapter)
        assert report.codes == single.codes
        assert [f.details for f in report.findings] == [f.details for f in single.findings]
        assert report.counts == single.counts


def test_check_many_isolates_a_corrupt_adapter(layer, checkpoints):
    good = checkpoints.adapter_path(CASES_BY_NAME["orig-mod"])
    bad = str(checkpoints.adapters["truncated"])
    reports = layer.BaseIndex(str(checkpoints.bases["llama"])).check_many([good, bad, good])
    assert [r.codes for r in reports] == [["PK001"], ["PK000"], ["PK001"]]


def test_unreadable_base_gives_pk000_for_every_adapter(layer, checkpoints):
    base = checkpoints.bases["missing-shard"]
    index = layer.BaseIndex(str(base))
    assert index.error is not None and index.tensor_count == 0
    adapters = [checkpoints.adapter_path(CASES_BY_NAME[n]) for n in ("llama-qv", "orig-mod")]
    for report in [index.check(adapters[0]), *index.check_many(adapters)]:
        assert report.codes == ["PK000"]
        assert "model-00002-of-00003.safetensors" in report.findings[0].message


# --- write_remapped ------------------------------------------------------------------------------------------


REWRITE_CASES = [case.name for case in ckpt_cases.CASES if case.roundtrip] + ["orig-mod-with-lm-head"]


@pytest.mark.parametrize("name", REWRITE_CASES)
def test_write_remapped_keeps_bytes_and_fixes_keys(layer, checkpoints, tmp_path, name):
    from safetensors import safe_open

    case, adapter, report = _run(layer, checkpoints, name)
    out = tmp_path / "fixed"
    written = layer.write_remapped(adapter, out, report)
    assert written == report.counts["adapter_tensors"]  # every key of these adapters needed the rewrite
    assert (out / "adapter_config.json").read_bytes() == (
        checkpoints.adapters[case.adapter] / "adapter_config.json"
    ).read_bytes()

    source = checkpoints.adapters[case.adapter] / "adapter_model.safetensors"
    with safe_open(source, "pt") as old, safe_open(out / "adapter_model.safetensors", "pt") as new:
        strip, add = report.rewrite["strip"], report.rewrite["add"]
        expected = {}
        for key in old.keys():  # noqa: SIM118 (safe_open has no __iter__)
            rest = key[len(ckpt_cases.PEFT) :]
            assert rest.startswith(strip)
            expected[ckpt_cases.PEFT + add + rest[len(strip) :]] = key
        assert sorted(new.keys()) == sorted(expected)
        for key, old_key in expected.items():
            a, b = new.get_tensor(key), old.get_tensor(old_key)
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.numpy().tobytes() == b.numpy().tobytes()
        assert new.metadata() == old.metadata()

    again = layer.check_adapter(str(out), checkpoints.base_path(case), load_as=case.load_as)
    assert again.findings == [], again.to_json()
    assert again.counts["matched"] == again.counts["adapter_modules"]


def test_write_remapped_to_a_file_path(layer, checkpoints, tmp_path):
    _, adapter, report = _run(layer, checkpoints, "orig-mod")
    out = tmp_path / "nested" / "fixed.safetensors"
    out.parent.mkdir()
    assert layer.write_remapped(adapter, out, report.rewrite) == 8
    assert out.is_file() and (out.parent / "adapter_config.json").is_file()
    again = layer.check_adapter(str(out), str(checkpoints.bases["llama"]))
    assert again.findings == []


def test_write_remapped_accepts_a_rewrite_pair_and_leaves_no_temporary_files(layer, checkpoints, tmp_path):
    _, adapter, _ = _run(layer, checkpoints, "ddp-module")
    out = tmp_path / "fixed"
    assert layer.write_remapped(adapter, out, ("module.", "")) == 8
    assert sorted(os.listdir(out)) == ["adapter_config.json", "adapter_model.safetensors"]


def test_write_remapped_without_a_rewrite_is_refused(layer, checkpoints, tmp_path):
    _, adapter, report = _run(layer, checkpoints, "llama-qv")
    assert report.rewrite is None
    with pytest.raises(ValueError):
        layer.write_remapped(adapter, tmp_path / "out", report)
    assert not (tmp_path / "out" / "adapter_model.safetensors").exists()


def test_write_remapped_of_a_corrupt_adapter_raises_checkpoint_error(layer, checkpoints, tmp_path):
    with pytest.raises(layer.CheckpointError) as error:
        layer.write_remapped(str(checkpoints.adapters["truncated"]), tmp_path / "out", ("_orig_mod.", ""))
    assert isinstance(error.value, ValueError)
    assert "adapter_model.safetensors" in str(error.value)
