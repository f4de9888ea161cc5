"""PS002 unsupported-feature: adapter features the server rejects, or accepts and drops.

DoRA, `modules_to_save`, trainable tokens, `bias`, rsLoRA and rank/alpha patterns, an added vocabulary: each
profile lists what its server does with them (``features``), quoting the server's own message.
"""

from __future__ import annotations

from typing import Any

from peftfix.diagnostics import Diagnostic
from peftfix.serving.context import Context
from peftfix.serving.facts import EMBEDDING_NAMES
from peftfix.serving.profile import Feature


def _is_set(value: Any) -> bool:
    """Not null, false, "none", empty: what PEFT writes for a feature left off."""
    if value is None or value is False or value == "none":
        return False
    return not (isinstance(value, (str, list, dict)) and not value)


def _extra_vocab(ctx: Context) -> tuple[int, int] | None:
    """(adapter rows, base rows) when the adapter carries a vocabulary larger than the base's."""
    base_rows = ctx.base.vocab_rows()
    if base_rows is None:
        return None
    for key, shape in ctx.adapter.keys.items():
        parts = key.split(".")
        if "lora_embedding_A" in parts and len(shape) == 2 and shape[1] > base_rows:
            return shape[1], base_rows
        module = [p for p in parts[:-1] if p not in ("base_layer", "token_adapter", "modules_to_save", "default")]
        if module and module[-1] in (*EMBEDDING_NAMES, "lm_head") and len(shape) == 2 and shape[0] > base_rows:
            return shape[0], base_rows
    return None


def _value(ctx: Context, feature: Feature) -> Any:
    if feature.field == "@extra_vocab":
        return _extra_vocab(ctx)
    return (ctx.adapter.config or {}).get(feature.field)


def _allowed(feature: Feature, value: Any) -> bool:
    # Types compared too: `True == 1` in Python. Names compare without case, as the servers compare them.
    if isinstance(value, str):
        value = value.lower()
    return any(value == allowed and type(value) is type(allowed) for allowed in feature.allowed)


def _present(feature: Feature, value: Any) -> bool:
    if feature.test == "true":
        return value is True or (value is not None and feature.field.startswith("@"))
    if feature.test == "set":
        return _is_set(value)
    if feature.test == "outside":
        values = value if isinstance(value, list) else [value]
        return _is_set(value) and any(not _allowed(feature, item) for item in values)
    raise ValueError(f"unknown feature test {feature.test!r}")


def present_features(ctx: Context) -> list[tuple[Feature, Any]]:
    """The profile's features this adapter has, with the value found."""
    found = []
    for feature in ctx.profile.features:
        value = _value(ctx, feature)
        if value is not None and _present(feature, value):
            found.append((feature, value))
    return found


def check(ctx: Context) -> list[Diagnostic]:
    findings = []
    for feature, value in present_features(ctx):
        shown = value
        says = feature.says
        if feature.field == "@extra_vocab":
            adapter_rows, base_rows = value
            shown = {"adapter_rows": adapter_rows, "base_rows": base_rows}
            says = says.format(adapter_rows=adapter_rows, base_rows=base_rows, name=ctx.adapter.path)
        else:
            says = says.format(value=value, name=ctx.adapter.path)
        if feature.effect == "reject":
            message = f'refuses an adapter with {feature.name}: "{says}"'
            if feature.why:
                message += f" ({feature.why})"
        else:
            message = f"loads the adapter but drops its {feature.name}: {feature.why}"
        findings.append(
            ctx.finding("PS002", feature.effect, message, feature.source, feature=feature.name, value=shown)
        )
    return findings
