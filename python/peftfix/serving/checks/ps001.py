"""PS001 unsupported-target: LoRA on modules the server does not apply LoRA to for this architecture.

The server reads the adapter's module names its own way (vLLM and SGLang by the last name, LoRAX by the exact
path): a name outside its set fails the load (vLLM, SGLang) or is dropped without a word (LoRAX), and a packed
layer missing the member the server needs fails too (SGLang's q_proj without v_proj).
"""

from __future__ import annotations

from peftfix.diagnostics import Diagnostic
from peftfix.serving.context import Context, quoted
from peftfix.serving.facts import EMBEDDING_NAMES

# Embedding and LM-head names, not judged on an architecture whose profile does not list its embedding modules.
UNJUDGED = frozenset({*EMBEDDING_NAMES, "lm_head"})


def _supported(ctx: Context) -> set[str] | None:
    """The module names the server applies LoRA to on this base; None when the profile cannot say."""
    targets = ctx.profile.targets
    listed = targets.architectures.get(ctx.base.architecture or "", {})
    if targets.names == "linear":
        names = ctx.base.linear_names()
        if not names:
            return None
        embedding = listed.get("embedding")
        return names | (set(embedding) if embedding is not None else set(UNJUDGED))
    return set(listed.get("names", targets.names)) or None


def unsupported_architecture(ctx: Context) -> Diagnostic | None:
    """The finding for a base architecture the server does not serve with adapters at all: the only one that
    matters then."""
    targets, arch = ctx.profile.targets, ctx.base.architecture
    if arch not in targets.unsupported:
        return None
    return ctx.finding(
        "PS001",
        "reject",
        f"does not serve adapters on {arch}: {targets.unsupported[arch]!r}",
        targets.source,
        architecture=arch,
    )


def check(ctx: Context) -> list[Diagnostic]:
    targets, arch = ctx.profile.targets, ctx.base.architecture
    modules = ctx.adapter.lora_modules()
    if not modules:
        return []
    findings = []
    names = {path.rsplit(".", 1)[-1] for path in modules}
    ignored_paths = sorted(p for p in modules if any(part in p.split(".") for part in targets.ignored_parts))
    if ignored_paths and targets.ignored_flag:
        findings.append(
            ctx.finding(
                "PS001",
                "ignore",
                f"loads the adapter and drops its {len(ignored_paths)} vision-tower/connector modules (e.g. "
                f"`{ignored_paths[0]}`): they take LoRA only with {targets.ignored_flag}",
                targets.source,
                modules=ignored_paths[:10],
                flag=targets.ignored_flag,
            )
        )
    supported = _supported(ctx)
    if supported is not None:
        unknown = sorted(names - supported)
        if unknown:
            effect = targets.unknown
            what = (
                f"refuses the adapter: LoRA on {quoted(unknown)} is not applied on {arch or 'this architecture'} "
                f"(it takes {quoted(sorted(supported))})"
                if effect == "reject"
                else f"loads the adapter and silently drops its LoRA on {quoted(unknown)}: on "
                f"{arch or 'this architecture'} it reads only {quoted(sorted(supported))}"
            )
            said = targets.says.format(adapter=ctx.adapter.path, expected=sorted(supported), received=unknown)
            findings.append(
                ctx.finding(
                    "PS001",
                    effect,
                    what + (f'. The server says: "{said}"' if said and effect == "reject" else ""),
                    targets.source,
                    modules=unknown,
                    supported=sorted(supported),
                    architecture=arch,
                )
            )
    for rule in targets.requires:
        if rule.name in names and rule.needs not in names:
            findings.append(
                ctx.finding(
                    "PS001",
                    "reject",
                    f"fails on LoRA for `{rule.name}` without `{rule.needs}` in the same packed layer: "
                    f'"{rule.says}". Train `{rule.needs}` too',
                    targets.source,
                    modules=[rule.name],
                    needs=rule.needs,
                )
            )
    return findings
