"""The serving checks' entries in the catalog (`peftfix rules`, `peftfix explain PS001`, SARIF).

The checks are one file each in ``peftfix.serving.checks``; what each server does is data in
``peftfix/serving/profiles/``. Adding a check is a file there plus its entry here.
"""

from __future__ import annotations

from peftfix.diagnostics import CodeInfo


def _check(code: str, name: str, summary: str, documentation: str) -> CodeInfo:
    return CodeInfo.documented("keys", code, name, summary, documentation, "none")


CODES: tuple[CodeInfo, ...] = (
    _check(
        "PS001",
        "unsupported-target",
        "LoRA on modules the server does not apply LoRA to for this architecture, or ignores.",
        """
## What it does
With `peftfix keys --server vllm|sglang|lorax`, compares the adapter's LoRA modules with the modules that server
applies LoRA to on the base's architecture (`architectures` in the base's `config.json`): vLLM takes every Linear
layer plus the model's embedding modules, SGLang a fixed list of names (and needs `v_proj` beside `q_proj`, the
packed layer it fills), LoRAX a list per architecture. Vision-tower modules that vLLM wraps only with
`--enable-tower-connector-lora` are reported too.

## Why is this bad?
vLLM and SGLang refuse such an adapter at load (or at start-up); LoRAX loads it and drops those modules without a
word, so the served model is not the trained one.

## Example
```console
$ peftfix keys out/adapter --base models/qwen2 --server vllm
out/adapter: PS001 vllm 0.34.0: refuses the adapter: LoRA on `embed_tokens` is not applied on Qwen2ForCausalLM
```

## Fix safety
No automatic fix: train LoRA on the modules the server supports, or serve with a server that supports them.
""",
    ),
    _check(
        "PS002",
        "unsupported-feature",
        "An adapter feature the server rejects or drops: DoRA, modules_to_save, trainable tokens, bias, ...",
        """
## What it does
Reads `adapter_config.json` (and the key shapes for an added vocabulary) and reports each feature the server's
profile rejects or drops: DoRA, `modules_to_save`, trainable tokens, `bias`/`lora_bias`, rsLoRA, rank and alpha
patterns, PiSSA-style initialisations, an added vocabulary. The message quotes what the server says.

## Why is this bad?
A rejected feature fails the load. A dropped one is worse: the server loads the adapter and serves something
other than what was trained (DoRA run as plain LoRA, rsLoRA at the wrong scale, `modules_to_save` weights
missing).

## Example
```console
$ peftfix keys out/adapter --base models/llama --server vllm
out/adapter: PS002 vllm 0.34.0: refuses an adapter with DoRA: "vLLM does not yet support DoRA."
```

## Fix safety
No automatic fix: retrain without the feature, or merge the adapter into the base and serve the merged model.
""",
    ),
    _check(
        "PS003",
        "rank-limit",
        "The adapter's rank is above the server's default maximum (the flag to pass) or its hard maximum.",
        """
## What it does
Compares `r` (and the largest `rank_pattern` value, where the server counts it) with the server's default maximum
rank and names the flag value to start it with (vLLM: `--max-lora-rank N`, the smallest allowed value not below
the rank); above the hard maximum the adapter cannot be served.

## Why is this bad?
The server refuses the adapter at load time ("LoRA rank 32 is greater than max_lora_rank 16.").

## Example
```console
$ peftfix keys out/adapter --base models/llama --server vllm
out/adapter: PS003 vllm 0.34.0: refuses rank 32 at its default --max-lora-rank 16: start it with `--max-lora-rank 32`
```

## Fix safety
No automatic fix: start the server with the flag the message names.
""",
    ),
    _check(
        "PS004",
        "silent-no-op-on-server",
        "The server loads the adapter and its LoRA lands on no module of the served model.",
        """
## What it does
Maps the adapter's module paths the way the server does (vLLM: its rename map for the architecture, then the full
path; SGLang: the `layers.N.` in the key; LoRAX: the exact path) and reports modules that land on no module of
the model the server builds from the base.

## Why is this bad?
The server accepts the adapter (its load check looks at the last name only) and then applies it to nothing: the
output equals the base model's, with no error. A text-only adapter under a vision-language wrapper, or one saved
from `AutoModel` without the `model.` prefix, is the usual case.

## Example
```console
$ peftfix keys out/adapter --base models/llama --server lorax
out/adapter: PS004 lorax 0.12.1: loads the adapter and applies it to nothing: none of its 4 LoRA modules ...
```

## Fix safety
No automatic fix here; `peftfix keys --write-remapped OUT` fixes a prefix that PK001 reports.
""",
    ),
    _check(
        "PS005",
        "unreadable-layout",
        "Adapter files or config fields the server does not read: shards, .bin only, a subfolder, missing fields.",
        """
## What it does
Checks the adapter folder against the files the server reads: vLLM reads one `adapter_model.safetensors` (or
`.bin`/`.pt`), not shards; no server looks into subfolders; each needs some `adapter_config.json` fields (vLLM:
`r`, `lora_alpha`, `target_modules`; SGLang also `peft_type`).

## Why is this bad?
The load fails ("<dir> doesn't contain tensors", "Missing required configuration fields"), often only when the
first request for the adapter arrives.

## Example
```console
$ peftfix keys out/checkpoint-500 --base models/llama --server vllm
out/checkpoint-500: PS005 vllm 0.34.0: reads the adapter folder itself, and the adapter is one level down
```

## Fix safety
No automatic fix: point the server at the adapter's own folder, save unsharded, or restore the config fields.
""",
    ),
)
