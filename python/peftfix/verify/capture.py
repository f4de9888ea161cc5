"""Load the base and the adapter with the real libraries, capturing what they warn (PV002) or raise (PV004)."""

from __future__ import annotations

import ast
import contextlib
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Optional

from peftfix.diagnostics import FIRST_FEW
from peftfix.verify.report import VerifyReport

# Module path components that hold the vocabulary (input embeddings and LM heads across architectures: Llama's
# embed_tokens, GPT-2's wte, BERT's word_embeddings, T5's shared, GPT-NeoX's embed_in/embed_out), so that a size
# mismatch there reads as a resized vocabulary. Whole components, so MoE's `shared_expert` is not one.
VOCABULARY_COMPONENTS = frozenset({"lm_head", "wte", "word_embeddings", "shared"})


def is_vocabulary_module(path: str) -> bool:
    return any("embed" in part or part in VOCABULARY_COMPONENTS for part in path.split("."))


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):  # a broken log call must not break the verifier
            self.messages.append(record.getMessage())


@contextlib.contextmanager
def capture_library_output() -> Iterator[list[str]]:
    """Collect warnings and WARNING+ log records (transformers, peft) emitted in the block; no progress bars."""
    from transformers.utils import logging as hf_logging

    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    messages: list[str] = []
    handler = _Capture()
    loggers = [logging.getLogger(name) for name in ("transformers", "peft", "accelerate")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield messages
    finally:
        if bars:
            hf_logging.enable_progress_bar()
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
        messages.extend(str(item.message) for item in caught)
        messages.extend(handler.messages)


_KEY_LIST = re.compile(r"(missing|unexpected) adapter keys[^\[]*(\[.*?\])", re.IGNORECASE | re.DOTALL)


def key_problems(messages: Sequence[str]) -> dict[str, Any]:
    """Missing/unexpected adapter keys the libraries reported, with counts and the first few examples."""
    found: dict[str, list[str]] = {"missing": [], "unexpected": []}
    relevant: list[str] = []
    for message in messages:
        lowered = message.lower()
        if "adapter keys" not in lowered and not (
            "adapter" in lowered and "keys" in lowered and ("missing" in lowered or "unexpected" in lowered)
        ):
            continue
        relevant.append(message)
        for kind, listing in _KEY_LIST.findall(message):
            try:
                keys = ast.literal_eval(listing)
            except (ValueError, SyntaxError):
                keys = []
            found[kind.lower()].extend(str(key) for key in keys)
    if not relevant:
        return {}
    return {
        "missing_keys": len(found["missing"]),
        "missing_examples": found["missing"][:FIRST_FEW],
        "unexpected_keys": len(found["unexpected"]),
        "unexpected_examples": found["unexpected"][:FIRST_FEW],
        "library_messages": [message[:500] for message in relevant[:3]],
        "_relevant": relevant,
    }


_SIZE_MISMATCH = re.compile(
    r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\(\[(\d+)(?:, (\d+))?\]\) from checkpoint, "
    r"the shape in current model is torch\.Size\(\[(\d+)(?:, (\d+))?\]\)"
)


def resize_target(message: str, checkpoint_report: Any) -> Optional[int]:
    """The vocabulary size the adapter was trained with, from a size-mismatch error or from PK003."""
    for name, rows, _cols, current, _ccols in _SIZE_MISMATCH.findall(message):
        if is_vocabulary_module(name) and rows != current:
            return int(rows)
    for finding in getattr(checkpoint_report, "findings", None) or ():
        details = finding.details
        module = str(details.get("module") or "")
        if finding.code == "PK003" and is_vocabulary_module(module):
            shape = details.get("adapter_shape") or []
            if shape:
                return int(shape[0])
    return None


def load_failure(report: VerifyReport, stage: str, error: BaseException, checkpoint_report: Any) -> None:
    library_message = f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    first_line = lines[0] if lines else type(error).__name__
    if first_line.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for X:" + the first error
        first_line = f"{first_line} {lines[1]}"
    resize = resize_target(str(error), checkpoint_report)
    if resize is not None:
        fix = (
            f"the adapter was trained with a vocabulary of {resize} tokens: load the base, call "
            f"model.resize_token_embeddings({resize}) first (with the adapter's tokenizer), then "
            "PeftModel.from_pretrained"
        )
    else:
        explained = [d.code for d in getattr(checkpoint_report, "findings", None) or ()]
        fix = (
            f"see the key check's findings ({', '.join(explained)}) and the library's message"
            if explained
            else "see the library's message"
        )
    details: dict[str, Any] = {"stage": stage, "error": type(error).__name__, "library_message": library_message[:4000]}
    if resize is not None:
        details["resize_to"] = resize
    report.add(
        "PV004",
        f"loading the {stage} failed: {type(error).__name__}: {first_line[:300]}; fix: {fix}",
        details,
        fix=fix,
    )


def load(report: VerifyReport, adapter: str, base: str, auto_class: str, device: Any, dtype: Any) -> Any:
    import transformers
    from peft import PeftModel

    model_class = getattr(transformers, auto_class)
    try:
        with capture_library_output():
            model = model_class.from_pretrained(base, dtype=dtype, device_map={"": str(device)})
    except Exception as error:  # the library's own message is the finding
        load_failure(report, "base model", error, report.checkpoint)
        return None
    try:
        with capture_library_output() as messages:
            model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except Exception as error:
        load_failure(report, "adapter", error, report.checkpoint)
        return None
    model.eval()
    problems = key_problems(messages)
    relevant = set(problems.pop("_relevant", ()))
    if problems:
        checkpoint = report.checkpoint
        if checkpoint is not None:
            problems["unmatched_adapter_tensors"] = checkpoint.counts.get("unmatched", 0)
        report.add(
            "PV002",
            f"the libraries reported {problems['missing_keys']} missing and {problems['unexpected_keys']} unexpected "
            "adapter keys while loading"
            + (f", e.g. {problems['missing_examples'][0]}" if problems["missing_examples"] else ""),
            problems,
        )
    other = [m[:300] for m in messages if m not in relevant]
    if other:
        report.details["load_warnings"] = other[:FIRST_FEW]
    return model
