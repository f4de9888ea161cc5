"""Which files to load: the adapter's directory, the local base, the transformers Auto class, the tokenizer."""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from peftfix.verify.report import VerifyUsageError

# config.json `architectures` suffix -> transformers Auto class (first match wins).
AUTO_CLASSES: tuple[tuple[str, str], ...] = (
    ("ForCausalLM", "AutoModelForCausalLM"),
    ("LMHeadModel", "AutoModelForCausalLM"),
    ("ForSequenceClassification", "AutoModelForSequenceClassification"),
    ("ForTokenClassification", "AutoModelForTokenClassification"),
    ("ForQuestionAnswering", "AutoModelForQuestionAnswering"),
    ("ForMaskedLM", "AutoModelForMaskedLM"),
    ("ForSeq2SeqLM", "AutoModelForSeq2SeqLM"),
    ("ForImageTextToText", "AutoModelForImageTextToText"),
    ("ForMultipleChoice", "AutoModelForMultipleChoice"),
)
FALLBACK_CLASS = "AutoModel"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


def read_json(path: str) -> Optional[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def adapter_dir(adapter: str) -> str:
    return adapter if os.path.isdir(adapter) else os.path.dirname(adapter) or "."


def resolve_base(adapter: str, base: Optional[str]) -> str:
    """The local base directory: ``base`` or the adapter config's ``base_model_name_or_path``."""
    if base is None:
        config = read_json(os.path.join(adapter_dir(adapter), "adapter_config.json")) or {}
        named = config.get("base_model_name_or_path")
        if not named:
            raise VerifyUsageError(
                f"{adapter}: adapter_config.json names no base_model_name_or_path; pass --base /path/to/base"
            )
        if not os.path.isdir(named):
            raise VerifyUsageError(
                f"{adapter}: the base model {named!r} (adapter_config.json base_model_name_or_path) is not a local "
                "directory, and peftfix verify never downloads from the hub: pass --base /path/to/local/base"
            )
        return str(named)
    if not os.path.isdir(base):
        raise VerifyUsageError(
            f"--base {base!r} is not a local directory (a saved model: config.json + weights); peftfix verify never "
            "downloads from the hub"
        )
    return str(base)


def auto_class_name(base: str) -> tuple[str, Optional[str]]:
    """(transformers Auto class name, architecture) for the base directory's config.json."""
    config = read_json(os.path.join(base, "config.json")) or {}
    architectures = config.get("architectures") or []
    architecture = str(architectures[0]) if architectures else None
    if architecture:
        for suffix, auto_class in AUTO_CLASSES:
            if architecture.endswith(suffix):
                return auto_class, architecture
    return FALLBACK_CLASS, architecture


def find_tokenizer_dir(*folders: Optional[str]) -> Optional[str]:
    """The first folder holding a tokenizer, if any."""
    for folder in folders:
        if folder and os.path.isdir(folder) and any(os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_FILES):
            return folder
    return None
