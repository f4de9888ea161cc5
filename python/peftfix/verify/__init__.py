"""Runtime checks (PV001-PV004): load the adapter for real and prove that it changes the model.

    >>> report = verify_adapter("out/adapter", base="models/llama-local")     # doctest: +SKIP
    >>> report.codes, report.details["max_abs_delta"]                          # doctest: +SKIP
    ([], 0.83)
    >>> verify_model(peft_model, strict=True)   # in a training script: raises if the adapter is not live  # doctest: +SKIP

``verify_adapter`` first runs the key matcher (:func:`peftfix.checkpoint.check_adapter`) and attaches its
findings, so a zero delta comes with its cause (PV001 with PK001 and the rewrite that fixes it). It then loads
the base with the Auto class its ``config.json`` names, applies ``PeftModel.from_pretrained`` while capturing what
the libraries warn (PV002) or raise (PV004), and runs the probe inputs twice on ONE copy of the weights: with the
adapter enabled and inside ``disable_adapter()``, under ``torch.inference_mode()``. Forward hooks on every LoRA
layer measure its branch output (PV003 for layers whose branch is zero).

The runtime wing, one module per job: ``environment`` (the extra, device, dtype), ``resolve`` (which files and
class), ``capture`` (loading, PV002/PV004), ``probe`` (inputs), ``measure`` (the two passes), ``judge``
(PV001/PV003), ``report``, and ``codes`` (the PV catalog entries). torch, transformers and peft (the ``verify``
extra) are imported only when a check runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, Optional

from peftfix.verify.environment import (
    INSTALL_HINT,
    dtype_name,
    missing_modules,
    model_device,
    model_dtype,
    peak_memory,
    require_extra,
    reset_peak,
    resolve_device,
)
from peftfix.verify.report import DEFAULT_ATOL, AdapterVerificationError, VerifyReport, VerifyUsageError


def verify_adapter(
    adapter: str | os.PathLike[str],
    base: Optional[str | os.PathLike[str]] = None,
    device: str = "auto",
    dtype: str = "auto",
    prompt: Optional[str] = None,
    atol: float = DEFAULT_ATOL,
) -> VerifyReport:
    """Load ``adapter`` on its base for real and check that it changes the output (PV001-PV004).

    Raises :class:`VerifyUsageError` when it cannot start (no local base, bad device/dtype, missing extra);
    loading errors come back as PV004 findings, never as exceptions.
    """
    from peftfix.checkpoint.report import adapter_file
    from peftfix.verify import capture, probe, resolve

    started = time.perf_counter()
    require_extra()
    adapter_path = os.fspath(adapter)
    base_path = resolve.resolve_base(adapter_path, os.fspath(base) if base is not None else None)
    torch_device, torch_dtype = resolve_device(device, dtype)
    auto_class, architecture = resolve.auto_class_name(base_path)
    report = VerifyReport(adapter=adapter_path, base=base_path, artifact=adapter_file(adapter_path))
    report.details.update(
        device=str(torch_device),
        dtype=dtype_name(torch_dtype),
        model_class=auto_class,
        architecture=architecture,
        atol=atol,
    )

    load_as = "base-model" if auto_class == resolve.FALLBACK_CLASS else "causal-lm"
    report.checkpoint = _key_check(adapter_path, base_path, load_as)
    if report.checkpoint is not None:
        report.findings.extend(report.checkpoint.findings)
        report.details["key_check"] = report.checkpoint.codes
    elif "key_check" not in report.details:
        report.details["key_check"] = None

    reset_peak(torch_device)
    model = capture.load(report, adapter_path, base_path, auto_class, torch_device, torch_dtype)
    if model is not None:
        vocab = probe.vocab_size(model)
        batches, probe_name = None, "token-ids"
        tokenizer_dir = resolve.find_tokenizer_dir(resolve.adapter_dir(adapter_path), base_path)
        if tokenizer_dir is not None:
            batches = probe.tokenized_inputs(tokenizer_dir, [prompt] if prompt else list(probe.DEFAULT_PROMPTS), vocab)
            probe_name = f"tokenizer:{tokenizer_dir}" if batches else probe_name
        if batches is None:
            batches = probe.deterministic_inputs(vocab)
        report.details["probe"] = probe_name
        if prompt and probe_name == "token-ids":
            report.details["probe_note"] = "--prompt ignored: no usable tokenizer beside the adapter or the base"
        _measure_and_judge(report, model, batches, torch_device, atol)
        del model
    report.details["seconds"] = round(time.perf_counter() - started, 4)
    return report


def _key_check(adapter: str, base: str, load_as: str) -> Any:
    try:
        from peftfix.checkpoint import check_adapter

        return check_adapter(adapter, base, load_as)
    except (ImportError, RuntimeError):  # extension without the matcher: the runtime check still runs
        return None


def _measure_and_judge(report: VerifyReport, model: Any, batches: Sequence[Any], device: Any, atol: float) -> None:
    """Both passes, their figures in ``report.details``, then PV001/PV003."""
    from peftfix.verify.judge import judge
    from peftfix.verify.measure import measure

    figures, branches = measure(model, batches, device)
    report.details.update(figures)
    judge(report, figures, branches, atol)
    report.details["peak_memory_bytes"] = peak_memory(device)


def verify_model(peft_model: Any, inputs: Any = None, atol: float = DEFAULT_ATOL, strict: bool = False) -> VerifyReport:
    """Check a model already in memory (a ``peft.PeftModel``): does the adapter change its output?

    ``inputs``: token ids (tensor), a dict of tensors (a tokenizer's output) or a list of either; by default
    deterministic token ids within the vocabulary. The model stays on its device and dtype and is put back in
    the train/eval mode it was in. With ``strict=True`` any finding raises :class:`AdapterVerificationError`.
    """
    from peftfix.verify import probe

    started = time.perf_counter()
    require_extra()
    device = model_device(peft_model)
    name = getattr(peft_model, "name_or_path", None) or getattr(
        getattr(peft_model, "config", None), "_name_or_path", None
    )
    report = VerifyReport(adapter=f"<{type(peft_model).__name__}>", base=str(name) if name else None)
    report.details.update(device=str(device), dtype=dtype_name(model_dtype(peft_model)), atol=atol)
    if inputs is not None:
        batches = probe.normalize_inputs(inputs)
    else:
        batches = probe.deterministic_inputs(probe.vocab_size(peft_model))
    report.details["probe"] = "inputs" if inputs is not None else "token-ids"
    reset_peak(device)
    was_training = bool(getattr(peft_model, "training", False))
    peft_model.eval()
    try:
        _measure_and_judge(report, peft_model, batches, device, atol)
    finally:
        peft_model.train(was_training)
    report.details["seconds"] = round(time.perf_counter() - started, 4)
    if strict and report.findings:
        raise AdapterVerificationError(report)
    return report


__all__ = [
    "DEFAULT_ATOL",
    "INSTALL_HINT",
    "AdapterVerificationError",
    "VerifyReport",
    "VerifyUsageError",
    "missing_modules",
    "resolve_device",
    "verify_adapter",
    "verify_model",
]
