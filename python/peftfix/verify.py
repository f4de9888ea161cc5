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

torch, transformers and peft (the ``verify`` extra) are imported only when a check runs. The device and dtype
are chosen in one place (:func:`resolve_device`); every other line is the same on CPU and CUDA.
"""

from __future__ import annotations

import ast
import contextlib
import importlib.util
import json
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence

from peftfix.diagnostics import Applicability, Diagnostic, FindingsMixin, Fix

DEFAULT_ATOL = 1e-6
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
FIRST_FEW = 5
PROBE_SEQUENCES = 4
PROBE_LENGTH = 16
PROBE_SEED = 0
DEFAULT_PROMPTS = (
    "The quick brown fox jumps over the lazy dog.",
    "Hello world! Please write a short poem about the sea.",
    "Question: what is the capital of France? Answer:",
    "def add(a, b):\n    return a + b\n",
)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")
REQUIRED_MODULES = ("torch", "transformers", "peft")
INSTALL_HINT = "pip install 'peftfix[verify]'"

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


class VerifyUsageError(ValueError):
    """The verifier cannot start: unknown base, hub name without --base, bad device/dtype, missing extra."""


class AdapterVerificationError(AssertionError):
    """Raised by ``verify_model(..., strict=True)`` when the report has findings; ``.report`` holds it."""

    def __init__(self, report: "VerifyReport") -> None:
        self.report = report
        super().__init__(report.summary())


@dataclass
class VerifyReport(FindingsMixin):
    """What the runtime verifier found for one adapter (or one in-memory model)."""

    adapter: str
    base: Optional[str] = None
    findings: list[Diagnostic] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    checkpoint: Any = None  # the peftfix.checkpoint.Report of the key check, when it ran

    @property
    def load_failed(self) -> bool:
        """Loading raised (PV004) or a checkpoint could not be read (PK000): exit 2 on the command line."""
        return any(code in ("PV004", "PK000") for code in self.codes)

    def summary(self) -> str:
        if not self.findings:
            return f"{self.adapter}: the adapter is live (max |logit delta| {self.details.get('max_abs_delta')})"
        return f"{self.adapter}: " + "; ".join(f"{d.code} {d.message}" for d in self.findings)

    def _add(self, code: str, message: str, details: Mapping[str, Any], fix: Optional[str] = None) -> Diagnostic:
        diagnostic = Diagnostic(
            code=code,
            message=message,
            filename=self.adapter,
            fix=Fix(Applicability.DISPLAY_ONLY, fix, ()) if fix else None,
            details=dict(details),
        )
        self.findings.append(diagnostic)
        return diagnostic


# ------------------------------------------------------------------------------------------------------------
# Environment: the optional extra, the device and dtype (chosen here and nowhere else)


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def _require_extra() -> None:
    missing = missing_modules()
    if missing:
        raise VerifyUsageError(
            f"peftfix verify loads the model for real and needs {', '.join(missing)}: {INSTALL_HINT}"
        )


def resolve_device(device: str = "auto", dtype: str = "auto") -> tuple[Any, Any]:
    """(torch.device, torch.dtype): ``auto`` = CUDA with bf16 when available, else CPU with float32."""
    import torch

    if device not in DEVICES and not str(device).startswith("cuda:"):
        raise VerifyUsageError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
    if dtype not in DTYPES:
        raise VerifyUsageError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise VerifyUsageError("--device cuda was asked for but torch sees no CUDA device")
    torch_device = torch.device(device)
    if dtype == "auto":
        if torch_device.type == "cuda":
            torch_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            torch_dtype = torch.float32
    else:
        torch_dtype = getattr(torch, dtype)
    return torch_device, torch_dtype


def _dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def _model_device(model: Any) -> Any:
    for param in model.parameters():
        return param.device
    import torch

    return torch.device("cpu")


def _model_dtype(model: Any) -> Any:
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    import torch

    return torch.float32


def _reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory(device: Any) -> Optional[int]:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    return None


# ------------------------------------------------------------------------------------------------------------
# Resolving the adapter, the base and the class to load it with


def _read_json(path: str) -> Optional[dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _adapter_dir(adapter: str) -> str:
    return adapter if os.path.isdir(adapter) else os.path.dirname(adapter) or "."


def resolve_base(adapter: str, base: Optional[str]) -> str:
    """The local base directory: ``base`` or the adapter config's ``base_model_name_or_path``."""
    if base is None:
        config = _read_json(os.path.join(_adapter_dir(adapter), "adapter_config.json")) or {}
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
    config = _read_json(os.path.join(base, "config.json")) or {}
    architectures = config.get("architectures") or []
    architecture = str(architectures[0]) if architectures else None
    if architecture:
        for suffix, auto_class in AUTO_CLASSES:
            if architecture.endswith(suffix):
                return auto_class, architecture
    return FALLBACK_CLASS, architecture


# ------------------------------------------------------------------------------------------------------------
# Capturing what the libraries say while loading


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.messages.append(record.getMessage())
        except Exception:  # a broken log call must not break the verifier
            pass


@contextlib.contextmanager
def _capture_library_output() -> Iterator[list[str]]:
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
        for logger, level in zip(loggers, levels):
            logger.removeHandler(handler)
            logger.setLevel(level)
        messages.extend(str(item.message) for item in caught)
        messages.extend(handler.messages)


_KEY_LIST = re.compile(r"(missing|unexpected) adapter keys[^\[]*(\[.*?\])", re.IGNORECASE | re.DOTALL)


def _key_problems(messages: Sequence[str]) -> dict[str, Any]:
    """Missing/unexpected adapter keys the libraries reported, with counts and the first few examples."""
    found: dict[str, list[str]] = {"missing": [], "unexpected": []}
    relevant: list[str] = []
    for message in messages:
        lowered = message.lower()
        if "adapter keys" not in lowered and not ("adapter" in lowered and "keys" in lowered and (
            "missing" in lowered or "unexpected" in lowered
        )):
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


def _resize_target(message: str, checkpoint_report: Any) -> Optional[int]:
    """The vocabulary size the adapter was trained with, from a size-mismatch error or from PK003."""
    for name, rows, _cols, current, _ccols in _SIZE_MISMATCH.findall(message):
        if any(part in name for part in ("embed", "lm_head", "wte", "word_embeddings", "shared")) and rows != current:
            return int(rows)
    for finding in getattr(checkpoint_report, "findings", None) or ():
        details = finding.details
        module = str(details.get("module") or "")
        if finding.code == "PK003" and any(p in module for p in ("embed", "lm_head", "wte", "word_embeddings")):
            shape = details.get("adapter_shape") or []
            if shape:
                return int(shape[0])
    return None


def _load_failure(report: VerifyReport, stage: str, error: BaseException, checkpoint_report: Any) -> None:
    library_message = f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    first_line = lines[0] if lines else type(error).__name__
    if first_line.endswith(":") and len(lines) > 1:  # "Error(s) in loading state_dict for X:" + the first error
        first_line = f"{first_line} {lines[1]}"
    resize = _resize_target(str(error), checkpoint_report)
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
    report._add(
        "PV004",
        f"loading the {stage} failed: {type(error).__name__}: {first_line[:300]}; fix: {fix}",
        details,
        fix=fix,
    )


# ------------------------------------------------------------------------------------------------------------
# Probe inputs


def _find_tokenizer_dir(*folders: Optional[str]) -> Optional[str]:
    for folder in folders:
        if folder and os.path.isdir(folder) and any(os.path.isfile(os.path.join(folder, f)) for f in TOKENIZER_FILES):
            return folder
    return None


def _vocab_size(model: Any) -> int:
    try:
        embeddings = model.get_input_embeddings()
        if embeddings is not None and hasattr(embeddings, "num_embeddings"):
            return int(embeddings.num_embeddings)
    except (AttributeError, NotImplementedError):
        pass
    config = getattr(model, "config", None)
    size = getattr(config, "vocab_size", None)
    if size is None and config is not None and hasattr(config, "get_text_config"):
        size = getattr(config.get_text_config(), "vocab_size", None)
    return int(size or 2)


def deterministic_inputs(vocab_size: int, sequences: int = PROBE_SEQUENCES, length: int = PROBE_LENGTH) -> list[Any]:
    """``sequences`` fixed rows of ``length`` token ids in ``[0, vocab_size)`` (same on every device and run)."""
    import torch

    generator = torch.Generator().manual_seed(PROBE_SEED)
    ids = torch.randint(0, max(int(vocab_size), 1), (sequences, length), generator=generator)
    return [{"input_ids": ids}]


def _tokenized_inputs(tokenizer_dir: str, prompts: Sequence[str], vocab_size: int) -> Optional[list[Any]]:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    except Exception:  # an unusable tokenizer only means the deterministic probe
        return None
    batches = []
    for prompt in prompts:
        encoded = tokenizer(prompt, return_tensors="pt")
        ids = encoded["input_ids"]
        if ids.numel() == 0 or int(ids.max()) >= vocab_size:
            return None
        batches.append({"input_ids": ids, "attention_mask": encoded.get("attention_mask")})
    return batches


def _normalize_inputs(inputs: Any) -> list[dict[str, Any]]:
    """verify_model's ``inputs``: a tensor of ids, a dict (BatchEncoding), or a list of either."""
    import torch

    items = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    batches = []
    for item in items:
        if isinstance(item, torch.Tensor):
            batches.append({"input_ids": item if item.dim() == 2 else item.unsqueeze(0)})
        elif isinstance(item, Mapping):
            batches.append(dict(item))
        else:
            raise TypeError(f"inputs must be a tensor of token ids or a dict of tensors, not {type(item).__name__}")
    return batches


# ------------------------------------------------------------------------------------------------------------
# The measurement


def _lora_layers(model: Any) -> list[tuple[str, Any]]:
    from peft.tuners.lora import LoraLayer

    return [(name, module) for name, module in model.named_modules() if isinstance(module, LoraLayer)]


def _short_name(name: str) -> str:
    for prefix in ("base_model.model.", "base_model."):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@contextlib.contextmanager
def _branch_hooks(layers: Sequence[tuple[str, Any]]) -> Iterator[dict[str, float]]:
    """Forward hooks that record, per LoRA layer, the max |branch output| seen (enabled pass only)."""
    import torch

    seen: dict[str, float] = {}
    handles = []

    def record(name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor) and value.numel():
            current = float(value.detach().abs().max().float())
            seen[name] = max(seen.get(name, 0.0), current)

    for name, layer in layers:
        key = _short_name(name)
        active = [a for a in getattr(layer, "active_adapters", []) or [] if a not in getattr(layer, "merged_adapters", [])]
        hooked = False
        for adapter_name in active:
            lora_b = getattr(layer, "lora_B", {})
            if adapter_name in lora_b and isinstance(lora_b[adapter_name], torch.nn.Module):
                scale = layer.scaling.get(adapter_name, 1.0) if isinstance(layer.scaling, dict) else 1.0

                def hook(_module, _args, output, key=key, scale=scale):
                    record(key, output * scale if scale != 1.0 else output)

                handles.append(lora_b[adapter_name].register_forward_hook(hook))
                hooked = True
        if not hooked and active:
            # Embedding LoRA (ParameterDict) and other variants: branch = layer output - base layer output.
            base_layer = layer.get_base_layer()

            def layer_hook(_module, args, kwargs, output, key=key, base_layer=base_layer):
                if isinstance(output, torch.Tensor):
                    record(key, output - base_layer(*args, **kwargs))

            handles.append(layer.register_forward_hook(layer_hook, with_kwargs=True))
            hooked = True
        if hooked:
            seen.setdefault(key, 0.0)
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def _output_tensor(output: Any) -> Any:
    for name in ("logits", "last_hidden_state"):
        value = getattr(output, name, None)
        if value is not None:
            return value
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def _forward(model: Any, batch: Mapping[str, Any], device: Any) -> Any:
    import torch

    kwargs = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items() if v is not None}
    config = getattr(model, "config", None)
    if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" not in kwargs:
        kwargs["decoder_input_ids"] = kwargs["input_ids"]
    kwargs.setdefault("use_cache", False)
    try:
        return _output_tensor(model(**kwargs))
    except TypeError:
        kwargs.pop("use_cache", None)
        return _output_tensor(model(**kwargs))


@contextlib.contextmanager
def _adapter_disabled(model: Any) -> Iterator[None]:
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            yield
    elif hasattr(model, "disable_adapters") and hasattr(model, "enable_adapters"):
        model.disable_adapters()
        try:
            yield
        finally:
            model.enable_adapters()
    else:
        raise TypeError(
            f"{type(model).__name__} has no disable_adapter(): verify_model needs a peft.PeftModel "
            "(or a transformers model with an adapter attached)"
        )


def measure(model: Any, batches: Sequence[Mapping[str, Any]], device: Any) -> tuple[dict[str, Any], dict[str, float]]:
    """Run every probe batch with the adapter enabled and disabled; logit delta figures and per-layer branches."""
    import torch

    layers = _lora_layers(model)
    max_delta = 0.0
    abs_sum = 0.0
    count = 0
    kl_sum = 0.0
    kl_max = 0.0
    agree = 0
    positions = 0
    with torch.inference_mode():
        with _branch_hooks(layers) as branches:
            enabled = [_forward(model, batch, device) for batch in batches]
        with _adapter_disabled(model):
            disabled = [_forward(model, batch, device) for batch in batches]
        for on, off, batch in zip(enabled, disabled, batches):
            on, off = on.float(), off.float()
            delta = (on - off).abs()
            mask = batch.get("attention_mask")
            if mask is not None and on.dim() == 3:
                keep = mask.to(on.device).bool()
                delta = delta[keep]
                on_rows, off_rows = on[keep], off[keep]
            else:
                on_rows, off_rows = on.reshape(-1, on.shape[-1]), off.reshape(-1, off.shape[-1])
            if delta.numel():
                max_delta = max(max_delta, float(delta.max()))
                abs_sum += float(delta.sum(dtype=torch.float64))
                count += delta.numel()
            if on_rows.numel():
                log_p = torch.log_softmax(on_rows, dim=-1)
                log_q = torch.log_softmax(off_rows, dim=-1)
                kl = (log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp_min(0.0)
                kl_sum += float(kl.sum(dtype=torch.float64))
                kl_max = max(kl_max, float(kl.max()))
                agree += int((on_rows.argmax(-1) == off_rows.argmax(-1)).sum())
                positions += on_rows.shape[0]
    figures = {
        "max_abs_delta": max_delta,
        "mean_abs_delta": abs_sum / count if count else 0.0,
        "kl_divergence": kl_sum / positions if positions else 0.0,
        "kl_divergence_max": kl_max,
        "top1_agreement": agree / positions if positions else 1.0,
        "positions": positions,
        "lora_layers": len(layers),
    }
    return figures, branches


def _judge(
    report: VerifyReport, figures: Mapping[str, Any], branches: Mapping[str, float], atol: float
) -> None:
    """PV001 / PV003 from the measured figures; explain a zero delta with the attached findings."""
    explained = [d for d in report.findings if d.code.startswith("PK") or d.code == "PV002"]
    if figures["max_abs_delta"] <= atol:
        details: dict[str, Any] = {
            "max_abs_delta": figures["max_abs_delta"],
            "mean_abs_delta": figures["mean_abs_delta"],
            "atol": atol,
            "positions": figures["positions"],
            "explained_by": [d.code for d in explained],
        }
        message = (
            f"the adapter does not change the output: max |logit delta| {figures['max_abs_delta']:.3g} <= atol {atol:g} "
            f"over {figures['positions']} positions"
        )
        fix = None
        rewrite = report.checkpoint.rewrite if report.checkpoint is not None else None
        if rewrite:
            details["rewrite"] = {"strip": rewrite.get("strip", ""), "add": rewrite.get("add", "")}
            fix = (
                f"the adapter keys need the prefix rewrite strip {rewrite.get('strip', '')!r} add "
                f"{rewrite.get('add', '')!r} (PK001): peftfix keys {report.adapter} --base {report.base} "
                "--write-remapped OUT, then load OUT"
            )
            message += "; cause: PK001, the adapter keys do not match the model (PEFT dropped them)"
        elif any(d.code == "PK004" for d in explained):
            message += "; cause: PK004, every lora_B is zero (the adapter was never trained or saved before training)"
        elif any(d.code == "PV002" for d in explained):
            message += "; cause: PV002, the libraries dropped adapter keys while loading"
        elif not figures["lora_layers"]:
            message += "; the model has no LoRA layer"
        elif explained:
            message += f"; see {', '.join(d.code for d in explained)}"
        report._add("PV001", message, details, fix=fix)
    inactive = [name for name, value in branches.items() if value == 0.0]
    if inactive:
        report._add(
            "PV003",
            f"{len(inactive)} of {len(branches)} LoRA layers have a zero branch output on the probe: "
            + ", ".join(inactive[:FIRST_FEW])
            + (f" (+{len(inactive) - FIRST_FEW} more)" if len(inactive) > FIRST_FEW else ""),
            {"count": len(inactive), "total": len(branches), "modules": inactive[: FIRST_FEW * 4]},
        )


# ------------------------------------------------------------------------------------------------------------
# Entry points


def verify_adapter(
    adapter: "str | os.PathLike[str]",
    base: "Optional[str | os.PathLike[str]]" = None,
    device: str = "auto",
    dtype: str = "auto",
    prompt: Optional[str] = None,
    atol: float = DEFAULT_ATOL,
) -> VerifyReport:
    """Load ``adapter`` on its base for real and check that it changes the output (PV001-PV004).

    Raises :class:`VerifyUsageError` when it cannot start (no local base, bad device/dtype, missing extra);
    loading errors come back as PV004 findings, never as exceptions.
    """
    started = time.perf_counter()
    _require_extra()
    adapter_path = os.fspath(adapter)
    base_path = resolve_base(adapter_path, os.fspath(base) if base is not None else None)
    torch_device, torch_dtype = resolve_device(device, dtype)
    auto_class, architecture = auto_class_name(base_path)
    report = VerifyReport(adapter=adapter_path, base=base_path)
    report.details.update(
        device=str(torch_device),
        dtype=_dtype_name(torch_dtype),
        model_class=auto_class,
        architecture=architecture,
        atol=atol,
    )

    report.checkpoint = _key_check(adapter_path, base_path, "base-model" if auto_class == FALLBACK_CLASS else "causal-lm")
    if report.checkpoint is not None:
        report.findings.extend(report.checkpoint.findings)
        report.details["key_check"] = report.checkpoint.codes
    elif "key_check" not in report.details:
        report.details["key_check"] = None

    _reset_peak(torch_device)
    model = _load(report, adapter_path, base_path, auto_class, torch_device, torch_dtype)
    if model is not None:
        vocab = _vocab_size(model)
        batches, probe = None, "token-ids"
        tokenizer_dir = _find_tokenizer_dir(_adapter_dir(adapter_path), base_path)
        if tokenizer_dir is not None:
            batches = _tokenized_inputs(tokenizer_dir, [prompt] if prompt else list(DEFAULT_PROMPTS), vocab)
            probe = f"tokenizer:{tokenizer_dir}" if batches else probe
        if batches is None:
            batches = deterministic_inputs(vocab)
        report.details["probe"] = probe
        if prompt and probe == "token-ids":
            report.details["probe_note"] = "--prompt ignored: no usable tokenizer beside the adapter or the base"
        figures, branches = measure(model, batches, torch_device)
        report.details.update(figures)
        _judge(report, figures, branches, atol)
        report.details["peak_memory_bytes"] = _peak_memory(torch_device)
        del model
    report.details["seconds"] = round(time.perf_counter() - started, 4)
    return report


def _key_check(adapter: str, base: str, load_as: str) -> Any:
    try:
        from peftfix.checkpoint import check_adapter

        return check_adapter(adapter, base, load_as)
    except (ImportError, RuntimeError):  # extension without the matcher: the runtime check still runs
        return None


def _load(report: VerifyReport, adapter: str, base: str, auto_class: str, device: Any, dtype: Any) -> Any:
    import transformers
    from peft import PeftModel

    model_class = getattr(transformers, auto_class)
    try:
        with _capture_library_output():
            model = model_class.from_pretrained(base, dtype=dtype, device_map={"": str(device)})
    except Exception as error:  # the library's own message is the finding
        _load_failure(report, "base model", error, report.checkpoint)
        return None
    try:
        with _capture_library_output() as messages:
            model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except Exception as error:
        _load_failure(report, "adapter", error, report.checkpoint)
        return None
    model.eval()
    problems = _key_problems(messages)
    relevant = set(problems.pop("_relevant", ()))
    if problems:
        checkpoint = report.checkpoint
        if checkpoint is not None:
            problems["unmatched_adapter_tensors"] = checkpoint.counts.get("unmatched", 0)
        report._add(
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


def verify_model(
    peft_model: Any, inputs: Any = None, atol: float = DEFAULT_ATOL, strict: bool = False
) -> VerifyReport:
    """Check a model already in memory (a ``peft.PeftModel``): does the adapter change its output?

    ``inputs``: token ids (tensor), a dict of tensors (a tokenizer's output) or a list of either; by default
    deterministic token ids within the vocabulary. The model stays on its device and dtype and is put back in
    the train/eval mode it was in. With ``strict=True`` any finding raises :class:`AdapterVerificationError`.
    """
    started = time.perf_counter()
    _require_extra()
    device = _model_device(peft_model)
    name = getattr(peft_model, "name_or_path", None) or getattr(getattr(peft_model, "config", None), "_name_or_path", None)
    report = VerifyReport(adapter=f"<{type(peft_model).__name__}>", base=str(name) if name else None)
    report.details.update(device=str(device), dtype=_dtype_name(_model_dtype(peft_model)), atol=atol)
    batches = _normalize_inputs(inputs) if inputs is not None else deterministic_inputs(_vocab_size(peft_model))
    report.details["probe"] = "inputs" if inputs is not None else "token-ids"
    _reset_peak(device)
    was_training = bool(getattr(peft_model, "training", False))
    peft_model.eval()
    try:
        figures, branches = measure(peft_model, batches, device)
    finally:
        peft_model.train(was_training)
    report.details.update(figures)
    _judge(report, figures, branches, atol)
    report.details["peak_memory_bytes"] = _peak_memory(device)
    report.details["seconds"] = round(time.perf_counter() - started, 4)
    if strict and report.findings:
        raise AdapterVerificationError(report)
    return report


__all__ = [
    "AdapterVerificationError",
    "DEFAULT_ATOL",
    "VerifyReport",
    "VerifyUsageError",
    "resolve_device",
    "verify_adapter",
    "verify_model",
]
