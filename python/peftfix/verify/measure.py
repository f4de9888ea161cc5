"""The measurement: the probe run twice on ONE copy of the weights, with the adapter enabled and inside
``disable_adapter()``, under ``torch.inference_mode()``; forward hooks on every LoRA layer record its branch."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any


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
        active = [
            a for a in getattr(layer, "active_adapters", []) or [] if a not in getattr(layer, "merged_adapters", [])
        ]
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
        for on, off, batch in zip(enabled, disabled, batches, strict=True):
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
