"""PS004 silent-no-op-on-server: the adapter loads, and its LoRA lands on no module of the served model.

vLLM accepts a key by its last name but applies it by its full path (after the model's rename map), so a
text-only adapter under a vision-language wrapper, or one saved from the bare `AutoModel`, loads and changes
nothing; SGLang drops keys without `layers.N.`; LoRAX reads only the exact module paths of its adapter layers.
"""

from __future__ import annotations

from peftfix.diagnostics import Diagnostic
from peftfix.serving.context import Context
from peftfix.serving.facts import EMBEDDING_NAMES, LAYER

LISTED = 10


def _rename(path: str, renames: dict[str, str]) -> str:
    # WeightsMapper: each prefix rule in order, on the name as the previous rules left it.
    for old, new in renames.items():
        if path.startswith(old):
            path = new + path[len(old) :]
    return path


def _served(ctx: Context, renames: dict[str, str]) -> set[str]:
    paths = set(ctx.base.weights)
    if "lm_head" not in paths and any(p.rsplit(".", 1)[-1] in EMBEDDING_NAMES for p in paths):
        paths.add("lm_head")  # tied: no lm_head.weight on disk, yet the model has the module
    served = {_rename(path, renames) for path in paths}
    if ctx.profile.paths.text_fallback:
        served |= {path[len("language_model.") :] for path in served if path.startswith("language_model.")}
    return served


def _lands(ctx: Context, module: str, served: set[str], renames: dict[str, str]) -> bool:
    apply = ctx.profile.paths.apply
    if apply == "full-path":
        return _rename(module, renames) in served
    if apply == "layer-index":
        return bool(LAYER.search(module)) or module.rsplit(".", 1)[-1] in (*EMBEDDING_NAMES, "lm_head")
    if apply == "exact-path":
        return module in served
    raise ValueError(f"unknown apply rule {apply!r}")


def _partial_types(ctx: Context, modules: list[str]) -> set[str]:
    """Modules of a type (last name) the adapter covers on fewer decoder layers than the base has it on."""

    def layers(paths, name):
        return {m.group(1) for path in paths if path.rsplit(".", 1)[-1] == name and (m := LAYER.search(path))}

    partial = set()
    for name in {module.rsplit(".", 1)[-1] for module in modules}:
        covered = layers(modules, name)
        if covered and covered < layers(ctx.base.weights, name):
            partial |= {module for module in modules if module.rsplit(".", 1)[-1] == name}
    return partial


def check(ctx: Context) -> list[Diagnostic]:
    modules = sorted(ctx.adapter.lora_modules())
    if not modules or not ctx.base.weights:
        return []
    renames = ctx.profile.paths.rename.get(ctx.base.architecture or "", {})
    served = _served(ctx, renames)
    partial = _partial_types(ctx, modules) if ctx.profile.paths.every_layer else set()
    stray = [module for module in modules if module in partial or not _lands(ctx, module, served, renames)]
    if not stray:
        return []
    how = {
        "full-path": "it applies LoRA by full module path",
        "layer-index": "it keeps only keys with `layers.N.` (and the embedding and LM head)",
        "exact-path": "it reads only the exact paths of its adapter layers",
    }[ctx.profile.paths.apply]
    if partial:
        how += ", and drops a module type the adapter has on some layers only (layers_to_transform) from every layer"
    if len(stray) == len(modules):
        what = (
            f"loads the adapter and applies it to nothing: none of its {len(modules)} LoRA modules (e.g. "
            f"`{stray[0]}`) is a module of the served model, and {how}. The output equals the base model's, with no "
            "error. Save the adapter with the module paths of the base model"
        )
        effect = "no-op"
    else:
        what = (
            f"loads the adapter but {len(stray)} of its {len(modules)} LoRA modules (e.g. `{stray[0]}`) land on no "
            f"module of the served model ({how}): those layers keep the base model's weights"
        )
        effect = "ignore"
    return [
        ctx.finding(
            "PS004",
            effect,
            what,
            ctx.profile.paths.source,
            modules=stray[:LISTED],
            count=len(stray),
            total=len(modules),
        )
    ]
