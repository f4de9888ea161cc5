"""The runtime checks' entries in the catalog (`peftfix rules`, `peftfix explain PV001`, SARIF)."""

from __future__ import annotations

from peftfix.diagnostics import CodeInfo


def _check(code: str, name: str, summary: str, documentation: str, fix: str = "none") -> CodeInfo:
    return CodeInfo.documented("verify", code, name, summary, documentation, fix)


CODES: tuple[CodeInfo, ...] = (
    _check(
        "PV001",
        "no-output-delta",
        "The adapter does not change the model's output: logits are equal with it enabled and disabled.",
        """
## What it does
Loads the base and the adapter with the real transformers and peft, runs the same probe inputs with the
adapter enabled and inside `disable_adapter()` (one copy of the weights), and reports an adapter whose largest
logit difference is at most `--atol`. The finding names the cause when the key check found one (PK001 with
the rewrite that fixes it, PK004, keys dropped while loading).

## Why is this bad?
This is the silent failure every other check is about: training ran, the adapter was saved and loaded without
an error, and the model answers exactly like its base.

## Example
```console
$ peftfix verify out/adapter --base models/llama
out/adapter: PV001 the adapter does not change the output: max |logit delta| 0 <= atol 1e-06 over 64
positions; cause: PK001, the adapter keys do not match the model (PEFT dropped them)
```
In a training script: `peftfix.verify_model(model, strict=True)` raises instead.

## Fix safety
Display only: the message gives the fix when the cause is known, such as the `peftfix keys ... --write-remapped`
command for PK001.
""",
        fix="display-only",
    ),
    _check(
        "PV002",
        "missing-keys-at-load",
        "The libraries reported adapter keys missing or unexpected while loading.",
        """
## What it does
Captures what transformers and peft warn while `PeftModel.from_pretrained` loads the adapter and reports the
missing and unexpected adapter keys, with counts and the first few names.

## Why is this bad?
A warning in a long training log is easy to miss, and every key it lists is a LoRA weight that was not loaded:
those layers keep their initial values.

## Example
An adapter whose keys carry a `_orig_mod.` prefix: the library warns that every `lora_A`/`lora_B` key is
missing.

## Fix safety
No automatic fix: the attached key check (PK001, PK002) usually names the cause and, for a prefix, the rewrite.
""",
    ),
    _check(
        "PV003",
        "inactive-lora-layer",
        "LoRA layers whose branch output is zero on the probe inputs.",
        """
## What it does
Hooks every LoRA layer while the probe runs and reports the layers whose LoRA branch (`lora_B(lora_A(x))` times
the scaling, or the difference to the base layer for embedding LoRA) is zero for every probe input.

## Why is this bad?
A layer with a zero branch contributes nothing: it was never trained, its weights were not loaded, or its
scaling is zero. When every layer is inactive the whole adapter is a no-op (PV001).

## Example
An adapter saved before training: every `lora_B` is zero, so every layer is reported.

## Fix safety
No automatic fix.
""",
    ),
    _check(
        "PV004",
        "load-failure",
        "Loading the base model or the adapter raised; the library's error and the fix.",
        """
## What it does
Reports an exception raised while loading the base model or the adapter, with the library's own message and,
when the cause is known, the fix.

## Why is this bad?
The adapter cannot be used as saved. The most common cause is a vocabulary extended during training: the
adapter's embedding or LM head has more rows than the base (`size mismatch for ...embed_tokens...`).

## Example
```console
$ peftfix verify out/adapter --base models/llama
out/adapter: PV004 loading the adapter failed: RuntimeError: Error(s) in loading state_dict ...; fix: the
adapter was trained with a vocabulary of 33004 tokens: load the base, call model.resize_token_embeddings(33004)
first (with the adapter's tokenizer), then PeftModel.from_pretrained
```

## Fix safety
Display only. `peftfix verify` exits with status 2 when loading fails.
""",
        fix="display-only",
    ),
)
