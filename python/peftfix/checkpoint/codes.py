"""The checkpoint checks' entries in the catalog (`peftfix rules`, `peftfix explain PK001`, SARIF).

The checks themselves run in the Rust matcher, one file per check in ``rust/matcher/``; the matching contract is
``docs/keys.md``. Adding a check is a file there plus its entry here.
"""

from __future__ import annotations

from peftfix.diagnostics import CodeInfo


def _check(code: str, name: str, summary: str, documentation: str, fix: str = "none") -> CodeInfo:
    return CodeInfo.documented("keys", code, name, summary, documentation, fix)


CODES: tuple[CodeInfo, ...] = (
    _check(
        "PK000",
        "unreadable-checkpoint",
        "An adapter or base checkpoint that cannot be read: missing, truncated or corrupt.",
        """
## What it does
Reports a checkpoint file that cannot be used, naming the file and the reason: a missing file or directory, a
truncated file, a safetensors header whose length runs past the end of the file or over 100 MB, a header that is
not valid UTF-8 JSON, an unknown dtype, tensor offsets that are out of range, overlap, leave gaps or trailing
bytes or disagree with the shape (what the safetensors library also refuses), or a shard that
`model.safetensors.index.json` names but that does not exist or lies outside the base directory.

## Why is this bad?
A checkpoint like this fails to load, or worse, loads partially. A pipeline that copies, converts or serves it
should stop at the first broken file with a message that names it, not at a traceback deep inside a loader.

## Example
```console
$ peftfix keys out/adapter --base models/llama
out/adapter: PK000 models/llama/model-00002-of-00003.safetensors: file not found
```

## Fix safety
Nothing to fix automatically: re-download or re-save the file the message names. `peftfix keys` exits with
status 2 when a checkpoint cannot be read.
""",
    ),
    _check(
        "PK001",
        "prefix-mismatch",
        "Adapter keys match the base only after a prefix rewrite: PEFT drops them silently.",
        """
## What it does
Finds adapter modules whose paths match base modules only after one consistent rewrite of their prefix — strip
`_orig_mod.` (saved from a `torch.compile`d model), strip `module.` (DDP), add `model.` (trained on `AutoModel`),
strip `language_model.` (a vision-language wrapper) — and keys outside the `base_model.model.` prefix that PEFT
loads (a DDP wrapper around the whole PeftModel, or a prefix stripped by a conversion script). The finding
gives the rewrite and its coverage (the share of adapter modules it explains).

## Why is this bad?
`PeftModel.from_pretrained` loads adapter weights by key. Keys that name no module of the model are dropped
with at most a warning about missing keys, so the adapter loads "successfully", its LoRA layers keep their
initial zero `lora_B`, and the output equals the base model's.

## Example
An adapter saved from a compiled model has keys such as
`base_model.model._orig_mod.model.layers.0.self_attn.q_proj.lora_A.weight`; the model built from the base has
`model.layers.0.self_attn.q_proj`.

```console
$ peftfix keys out/adapter --base models/llama
out/adapter: PK001 28 of 28 adapter modules match the base only after a prefix rewrite (strip `_orig_mod.`) ...
```

## Fix safety
No fix is applied in place. `peftfix keys ADAPTER --base BASE --write-remapped OUT` writes a fixed copy of the adapter: every key rewritten
into the form PEFT loads, tensor bytes identical, `adapter_config.json` copied. The original adapter is never
modified.
""",
    ),
    _check(
        "PK002",
        "unmatched-module",
        "Adapter modules that match nothing in the base, even after the inferred rewrite.",
        """
## What it does
Lists the adapter modules that have no counterpart in the base checkpoint, even after the prefix rewrite of
PK001: the number of such modules and the first few paths.

When every unmatched path is a base module followed by what is left of `.lora_A`/`.lora_B` after an adapter name
that is part of `lora_` was cut out (`q_proj_A`, `q_projra_A`), the finding says so and names the adapter name
(`details.adapter_name`): PEFT before 0.18 removed the adapter name from saved keys with `key.replace(".lora", "")`
for an adapter called `lora`, cutting `.lora_A` down to `_A`.

## Why is this bad?
The adapter was trained on another architecture, another model size or another checkpoint layout, or its keys
were mangled when it was saved. PEFT skips these modules (or fails to build them), so part or all of the adapter
never takes effect: PEFT warns "Found missing adapter keys" and the model keeps the base's behaviour.

## Example
A LoRA adapter trained on GPT-2 (`transformer.h.0.attn.c_attn`) checked against a Llama base
(`model.layers.0.self_attn.q_proj`) is PK002 for every module.

## Fix safety
No automatic fix: check that `--base` (or the adapter's `base_model_name_or_path`) is the model the adapter was
trained on, and that `--load-as` names the class it is loaded with.
""",
    ),
    _check(
        "PK003",
        "shape-mismatch",
        "An adapter tensor's shape does not fit its base module (e.g. a resized vocabulary).",
        """
## What it does
Compares every LoRA factor with the shape of its base module: `lora_A`'s input features, `lora_B`'s output
features, the rank shared by both, DoRA magnitudes, embedding LoRA against the vocabulary, and full copies saved
by `modules_to_save` against the base parameter (the embedding saved beside trainable tokens too). One finding
per module, with `adapter_shape` and `base_shape`. Also checks `trainable_token_indices` against the rows of the
base embedding they index (`max_index`, `base_rows`, `resize_to`).

## Why is this bad?
Loading fails with `size mismatch for ...`. The usual cause is a vocabulary extended during training
(`tokenizer.add_tokens`, `add_special_tokens`) and a base loaded without the matching
`model.resize_token_embeddings(...)`: the saved embedding and LM head have more rows than the fresh base.

## Example
```console
$ peftfix keys out/adapter --base models/llama
out/adapter: PK003 model.embed_tokens: base has 32000 rows, adapter 33004: call
`model.resize_token_embeddings(33004)` before `PeftModel.from_pretrained`
```

## Fix safety
No automatic fix. For a vocabulary, load the tokenizer saved with the adapter, call
`model.resize_token_embeddings(len(tokenizer))` on the base, then `PeftModel.from_pretrained`. Other shapes mean
the wrong base.
""",
    ),
    _check(
        "PK004",
        "zero-lora-b",
        "The zero-initialised LoRA factor (`lora_B`; `lora_embedding_A` on embeddings) is all zeros: a no-op.",
        """
## What it does
Reads the bytes of each LoRA module's zero-initialised factor (only those tensors): `lora_B` (and its bias) of
Linear and Conv layers, `lora_embedding_A` of embeddings. Reports an adapter in which every one is all zeros.

## Why is this bad?
PEFT initialises one factor of each LoRA layer to zero so that a new adapter starts as the identity: `lora_B` on
Linear and Conv layers, but `lora_embedding_A` on embeddings (the other way round: `lora_embedding_B` is drawn at
random, so checking B alone passes an untrained embedding LoRA). While that factor is zero the update B·A is zero.
An adapter saved that way never took a training step (a save callback before training, a frozen adapter, a
learning rate of zero, a failed ZeRO gather): it loads without a warning and changes nothing.

## Example
```python
model = get_peft_model(base, LoraConfig(target_modules=["q_proj", "v_proj"]))
model.save_pretrained("out/adapter")  # before trainer.train()
```

## Fix safety
No automatic fix: train the adapter, or save it after training. `peftfix verify` confirms the adapter changes
the output.
""",
    ),
    _check(
        "PK005",
        "config-mismatch",
        "`adapter_config.json` disagrees with the tensors (rank, target modules, DoRA) or is missing.",
        """
## What it does
Checks `adapter_config.json` against the saved tensors: the rank `r` (or the matching `rank_pattern` entry)
against the rows of `lora_A`, every `target_modules` entry against the modules present (and every LoRA module
against the entries, matched as PEFT matches them), `use_dora` against the presence of magnitude vectors, and
reports a config that is missing or unreadable. Two settings that PEFT accepts and gets wrong are reported too:
a module in both `target_modules` and `modules_to_save` (`field: modules_to_save`), and a `modules_to_save`
copy of `lm_head` or the input embedding of a base that ties them, without `ensure_weight_tying`
(`field: ensure_weight_tying`).

## Why is this bad?
PEFT builds the LoRA layers from the config and then loads the tensors into them. A rank that differs gives a
size mismatch; a module outside `target_modules` gets no LoRA layer, so its weights are dropped silently; a
config edited by hand or copied from another run no longer describes the adapter. A module listed in both lists
becomes a full trainable copy with no LoRA on it, so the LoRA asked for there was never trained. A separate copy
of a tied embedding unties the pair: a merged model then holds two different matrices where the base had one, and
anything that loads it under the base's `tie_word_embeddings` serves the embedding in place of the trained head.

## Example
A config that says `"r": 16` next to `lora_A` tensors with 8 rows.

## Fix safety
No automatic fix: restore the config saved with the adapter, or correct the field the message names.
""",
    ),
    _check(
        "PK006",
        "empty-adapter",
        "The adapter file holds no adapter tensors at all.",
        """
## What it does
Reports an adapter whose weight file contains no tensors (for example a file of a few bytes).

## Why is this bad?
With DeepSpeed ZeRO-3 the parameters are partitioned across ranks; saving without gathering them writes an
empty state dict. PEFT loads the empty adapter without complaint and the model behaves exactly like its base.

## Example
A 48-byte `adapter_model.safetensors` written by `model.save_pretrained(...)` inside a ZeRO-3 run.

## Fix safety
No automatic fix: save with the parameters gathered (`trainer.save_model()`, or
`deepspeed.zero.GatheredParameters`), or use `zero_to_fp32.py` on the checkpoint.
""",
    ),
)
