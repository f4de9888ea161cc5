"""The optional extra, the device and the dtype: chosen here and nowhere else, so every other line of the
verifier is the same on CPU and CUDA."""

from __future__ import annotations

import importlib.util
from typing import Any, Optional

from peftfix.verify.report import VerifyUsageError

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "bfloat16", "float16")
REQUIRED_MODULES = ("torch", "transformers", "peft")
INSTALL_HINT = "pip install 'peftfix[verify]'"


def missing_modules() -> list[str]:
    return [name for name in REQUIRED_MODULES if importlib.util.find_spec(name) is None]


def missing_extra_message(missing: list[str]) -> str:
    return f"peftfix verify loads the model for real and needs {', '.join(missing)}: {INSTALL_HINT}"


def require_extra() -> None:
    missing = missing_modules()
    if missing:
        raise VerifyUsageError(missing_extra_message(missing))


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


def dtype_name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def model_device(model: Any) -> Any:
    for param in model.parameters():
        return param.device
    import torch

    return torch.device("cpu")


def model_dtype(model: Any) -> Any:
    for param in model.parameters():
        if param.is_floating_point():
            return param.dtype
    import torch

    return torch.float32


def reset_peak(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: Any) -> Optional[int]:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device))
    return None
