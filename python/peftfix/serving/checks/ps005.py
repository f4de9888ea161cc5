"""PS005 unreadable-layout: adapter files or config fields the server does not read.

A sharded adapter where the server reads one file, weights only as `.bin` where it reads safetensors, an adapter
one folder down, a weights file whose header is corrupt, tensor names the server cannot parse,
`adapter_config.json` missing a field the server requires.
"""

from __future__ import annotations

import fnmatch
import os

from peftfix.diagnostics import Diagnostic
from peftfix.serving.checks.ps002 import present_features
from peftfix.serving.context import Context, quoted
from peftfix.serving.facts import CONFIG_FILE, SHARD


def _weights_found(ctx: Context) -> list[str]:
    """The files the server would read as weights, by its own names or globs in order (the first that matches)."""
    for pattern in ctx.profile.files.weights:
        found = sorted(name for name in ctx.adapter.files if fnmatch.fnmatchcase(name, pattern))
        if found:
            return found
    return []


def _unread_keys(ctx: Context) -> list[Diagnostic]:
    """Tensor names the server cannot read and fails on. Reported only when no config feature is refused first."""
    keys = ctx.profile.keys
    if not keys.read or any(feature.effect == "reject" for feature, _ in present_features(ctx)):
        return []
    unread = sorted(
        name for name in ctx.adapter.keys if not any(fnmatch.fnmatchcase(name, pattern) for pattern in keys.read)
    )
    if not unread:
        return []
    return [
        ctx.finding(
            "PS005",
            "reject",
            f"cannot read {len(unread)} of the adapter's tensors (e.g. `{unread[0]}`): "
            f'"{keys.says.format(key=unread[0])}". It reads only LoRA A/B weights' + _explained(unread),
            keys.source,
            keys=unread[:10],
            count=len(unread),
        )
    ]


def _explained(unread: list[str]) -> str:
    if any(name.endswith(("_A.weight", "_B.weight")) and ".lora_" not in name for name in unread):
        return " (these keys lost their `.lora` part: see PK002)"
    return ""


JSON_TYPES = {"int": (int,), "number": (int, float), "str": (str,), "list": (list,)}


def _typed(value: object, kinds: str) -> bool:
    if isinstance(value, bool):  # JSON true is no number
        return False
    return any(isinstance(value, JSON_TYPES[kind]) for kind in kinds.split("|"))


def check(ctx: Context) -> list[Diagnostic]:
    files, adapter = ctx.profile.files, ctx.adapter
    findings = []
    says = files.says.get("missing_weights", "").format(adapter=adapter.path)
    shards = sorted(name for name in adapter.files if SHARD.match(name))
    found = _weights_found(ctx)
    if adapter.subfolders and CONFIG_FILE not in adapter.files and not files.subfolder:
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"reads the adapter folder itself, and the adapter is one level down ({quoted(adapter.subfolders)}): "
                f"point the server at `{adapter.path}/{adapter.subfolders[0]}`",
                files.source,
                subfolders=adapter.subfolders,
            )
        )
        return findings
    if shards and not files.sharded:
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"does not read a sharded adapter ({len(shards)} files like `{shards[0]}`)"
                + (f': "{says}"' if says else "")
                + '. Save it as one file (save_pretrained(..., max_shard_size="100GB")) or merge the shards',
                files.source,
                files=shards,
            )
        )
    elif broken := [name for name in found if name in adapter.unreadable]:
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"fails to load `{broken[0]}`: {adapter.unreadable[broken[0]]} (see PK000)",
                files.source,
                files=broken,
            )
        )
    elif not found:
        present = [name for name in adapter.files if name.endswith((".safetensors", ".bin", ".pt"))]
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"finds no weights it reads (it reads {quoted(files.weights)}; the adapter has "
                f"{quoted(present) if present else 'none'})" + (f': "{says}"' if says else ""),
                files.source,
                files=present,
            )
        )
    findings.extend(_unread_keys(ctx))
    config = adapter.config
    if config is None:
        if not files.required_config:
            return findings
        problem = "cannot read" if os.path.exists(os.path.join(adapter.path, CONFIG_FILE)) else "needs"
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"{problem} `{CONFIG_FILE}` beside the weights"
                + (" (not a regular file holding a JSON object)" if problem == "cannot read" else ""),
                files.source,
                fields=[],
            )
        )
        return findings
    missing = [name for name in files.required_config if name not in config]
    wrong = [name for name, kinds in files.field_types.items() if name in config and not _typed(config[name], kinds)]
    if wrong:
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"fails on {quoted(wrong)} in `{CONFIG_FILE}`: "
                + ", ".join(
                    f"{name} is {config[name]!r}, not {files.field_types[name].replace('|', ' or ')}" for name in wrong
                ),
                files.source,
                fields=wrong,
            )
        )
    if missing:
        said = files.says.get("missing_fields", "").format(fields=set(missing))
        findings.append(
            ctx.finding(
                "PS005",
                "reject",
                f"needs {quoted(missing)} in `{CONFIG_FILE}`" + (f': "{said}"' if said else ""),
                files.source,
                fields=missing,
            )
        )
    return findings
