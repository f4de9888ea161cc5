//! PK003: tensors whose shape does not fit the base module they load into: LoRA A/B,
//! embedding LoRA, DoRA magnitudes, and `modules_to_save` copies (with the
//! `resize_token_embeddings` call a resized vocabulary needs). PeftModel.from_pretrained
//! fails on them with "size mismatch".

use serde_json::{json, Value};

use super::modules::{last_component, Module, Saved, LORA, NONE};
use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_config::ConfigStatus;
use crate::checkpoint::error::{quote, Result};
use crate::safetensors::numel;

/// Last components of modules that hold a vocabulary: embeddings and LM heads.
const VOCAB_MODULES: [&str; 10] = [
    "embed_tokens",
    "lm_head",
    "wte",
    "word_embeddings",
    "embed_in",
    "embed_out",
    "tok_embeddings",
    "output",
    "shared",
    "embeddings",
];

/// The end of most PK003 messages: what loading does, and the likely cause.
const SIZE_MISMATCH_TAIL: &str =
    ": PeftModel.from_pretrained fails with \"size mismatch\". The adapter was trained on another model \
     (or model size) than this base";

/// At most one finding per module (its LoRA tensors first, else its first mismatched
/// saved copy in key order), sorted by module path.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let modules = ctx.modules;
    let fan_in_fan_out = matches!(ctx.config(), ConfigStatus::Loaded(c) if c.fan_in_fan_out);
    let mut shape_findings: Vec<(String, Finding)> = Vec::new();
    let mut has_shape_finding = vec![false; modules.len()];
    for (id, module) in modules.iter().enumerate() {
        if module.base == NONE || module.kinds & LORA == 0 {
            continue;
        }
        if let Some(finding) = lora_shapes(ctx, module, fan_in_fan_out) {
            shape_findings.push((ctx.path(module).to_string(), finding));
            if let Some(flag) = has_shape_finding.get_mut(id) {
                *flag = true;
            }
        }
    }
    // Copies in key order: the first mismatched copy of a module is the one reported.
    let mut copies: Vec<&Saved> = ctx.saved.iter().collect();
    copies.sort_by(|a, b| ctx.name(a.tensor).cmp(ctx.name(b.tensor)));
    for copy in copies {
        let Some(module) = modules.get(copy.module as usize) else {
            continue;
        };
        if module.base == NONE
            || has_shape_finding
                .get(copy.module as usize)
                .copied()
                .unwrap_or(true)
        {
            continue;
        }
        if let Some(finding) = saved_shape(ctx, module, copy) {
            shape_findings.push((ctx.path(module).to_string(), finding));
            if let Some(flag) = has_shape_finding.get_mut(copy.module as usize) {
                *flag = true;
            }
        }
    }
    shape_findings.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(shape_findings.into_iter().map(|(_, f)| f).collect())
}

/// The finding for `tensor` of `module`: the message is the module path, then `what`;
/// `extra` adds one field to the details (`resize_to`).
fn shape_finding(
    ctx: &Context<'_>,
    module: &Module,
    tensor: u32,
    base_shape: &[u64],
    what: String,
    extra: Option<(&str, Value)>,
) -> Finding {
    let adapter_shape = ctx.shape(tensor);
    let mut details = json!({
        "module": ctx.path(module),
        "adapter_shape": adapter_shape,
        "base_shape": base_shape,
        "tensor": ctx.name(tensor),
    });
    if let (Some((key, value)), Some(map)) = (extra, details.as_object_mut()) {
        map.insert(key.to_string(), value);
    }
    Finding {
        code: "PK003",
        message: format!("{}: {what}", quote(ctx.path(module))),
        details,
    }
}

/// LoRA A/B, embedding A/B and DoRA magnitude against the base weight.
fn lora_shapes(ctx: &Context<'_>, module: &Module, fan_in_fan_out: bool) -> Option<Finding> {
    let weight = ctx.base.weight(module.base)?;
    let w = weight.shape;
    let tail = SIZE_MISMATCH_TAIL;
    // Embedding LoRA (checked alone: an embedding has no Linear layout).
    if w.len() >= 2 && (module.emb_a != NONE || module.emb_b != NONE) {
        let vocab = *w.first()?;
        let dim = *w.get(1)?;
        if module.emb_a != NONE {
            let a = ctx.shape(module.emb_a);
            if a.len() != 2 || a.get(1) != Some(&vocab) {
                if let Some(&rows) = a.get(1).filter(|_| a.len() == 2) {
                    return Some(shape_finding(
                        ctx,
                        module,
                        module.emb_a,
                        w,
                        format!(
                            "lora_embedding_A is {a:?}: base has {vocab} rows, adapter {rows}: call \
                             `model.resize_token_embeddings({rows})` before `PeftModel.from_pretrained` \
                             (without it loading fails with \"size mismatch\")"
                        ),
                        Some(("resize_to", json!(rows))),
                    ));
                }
                return Some(shape_finding(
                    ctx,
                    module,
                    module.emb_a,
                    w,
                    format!("lora_embedding_A is {a:?} but the base embedding {w:?} has {vocab} rows{tail}"),
                    None,
                ));
            }
        }
        if module.emb_b != NONE {
            let b = ctx.shape(module.emb_b);
            if b.first() != Some(&dim) {
                return Some(shape_finding(
                    ctx,
                    module,
                    module.emb_b,
                    w,
                    format!("lora_embedding_B is {b:?} but the base embedding {w:?} has dimension {dim}{tail}"),
                    None,
                ));
            }
            if module.emb_a != NONE {
                let a = ctx.shape(module.emb_a);
                if let (Some(rank_a), Some(rank_b)) = (a.first(), b.get(1)) {
                    if rank_a != rank_b {
                        return Some(shape_finding(
                            ctx,
                            module,
                            module.emb_b,
                            w,
                            format!(
                                "lora_embedding_A has rank {rank_a} but lora_embedding_B has rank {rank_b}: the file \
                                 is inconsistent and PeftModel.from_pretrained fails with \"size mismatch\""
                            ),
                            None,
                        ));
                    }
                }
            }
        }
        if module.magnitude != NONE {
            // An embedding's DoRA magnitude has one element per embedding dimension.
            let m = ctx.shape(module.magnitude);
            if numel(m) != Some(dim) {
                return Some(shape_finding(
                    ctx,
                    module,
                    module.magnitude,
                    w,
                    format!("the DoRA magnitude vector is {m:?} but the base embedding {w:?} has dimension {dim}{tail}"),
                    None,
                ));
            }
        }
        return None;
    }
    if w.len() >= 2 && (module.a != NONE || module.b != NONE || module.magnitude != NONE) {
        let w0 = *w.first()?;
        let w1 = *w.get(1)?;
        let swap = fan_in_fan_out && w.len() == 2;
        let (out, inp) = if swap { (w1, w0) } else { (w0, w1) };
        let layout = if swap {
            " (Conv1D, fan_in_fan_out: stored [in, out])"
        } else {
            ""
        };
        if module.a != NONE {
            let a = ctx.shape(module.a);
            if a.get(1) != Some(&inp) {
                let hint = if a.len() == 2 && a.get(1) == Some(&out) && out != inp {
                    " (the transposed layout fits: is fan_in_fan_out in adapter_config.json right?)"
                } else {
                    ""
                };
                return Some(shape_finding(
                    ctx,
                    module,
                    module.a,
                    w,
                    format!("lora_A is {a:?} but the base weight {w:?}{layout} has {inp} input features{hint}{tail}"),
                    None,
                ));
            }
        }
        if module.b != NONE {
            let b = ctx.shape(module.b);
            if b.first() != Some(&out) {
                return Some(shape_finding(
                    ctx,
                    module,
                    module.b,
                    w,
                    format!("lora_B is {b:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                    None,
                ));
            }
            if module.a != NONE {
                let a = ctx.shape(module.a);
                if let (Some(rank_a), Some(rank_b)) = (a.first(), b.get(1)) {
                    if rank_a != rank_b {
                        return Some(shape_finding(
                            ctx,
                            module,
                            module.b,
                            w,
                            format!(
                                "lora_A has rank {rank_a} but lora_B has rank {rank_b} (lora_A {a:?}, lora_B {b:?}): \
                                 the file is inconsistent and PeftModel.from_pretrained fails with \"size mismatch\""
                            ),
                            None,
                        ));
                    }
                }
            }
        }
        if module.b_bias != NONE {
            let bias = ctx.shape(module.b_bias);
            if bias.first() != Some(&out) || bias.len() != 1 {
                return Some(shape_finding(
                    ctx,
                    module,
                    module.b_bias,
                    w,
                    format!("lora_B bias is {bias:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                    None,
                ));
            }
        }
        if module.magnitude != NONE {
            let m = ctx.shape(module.magnitude);
            if numel(m) != Some(out) {
                return Some(shape_finding(
                    ctx,
                    module,
                    module.magnitude,
                    w,
                    format!("the DoRA magnitude vector is {m:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                    None,
                ));
            }
        }
    }
    None
}

/// A `modules_to_save` copy against the base parameter it replaces.
fn saved_shape(ctx: &Context<'_>, module: &Module, copy: &Saved) -> Option<Finding> {
    let key = ctx.name(copy.tensor);
    let param_name = last_component(key);
    let param = ctx.base.param(module.base, param_name)?;
    let base_shape = param.shape;
    let adapter_shape = ctx.shape(copy.tensor);
    if adapter_shape == base_shape {
        return None;
    }
    let path = ctx.path(module);
    let last = last_component(path);
    let rows_only = adapter_shape.len() == base_shape.len()
        && !adapter_shape.is_empty()
        && adapter_shape.get(1..) == base_shape.get(1..);
    if rows_only && VOCAB_MODULES.contains(&last) {
        let rows = adapter_shape.first().copied().unwrap_or(0);
        let base_rows = base_shape.first().copied().unwrap_or(0);
        return Some(shape_finding(
            ctx,
            module,
            copy.tensor,
            base_shape,
            format!(
                "base has {base_rows} rows, adapter {rows}: call `model.resize_token_embeddings({rows})` before \
                 `PeftModel.from_pretrained` (the adapter was trained with an extended tokenizer; without the \
                 resize loading fails with \"size mismatch\")"
            ),
            Some(("resize_to", json!(rows))),
        ));
    }
    Some(shape_finding(
        ctx,
        module,
        copy.tensor,
        base_shape,
        format!(
            "the saved copy of `{}` is {adapter_shape:?} but the base parameter is {base_shape:?}{}",
            param_name,
            SIZE_MISMATCH_TAIL
        ),
        None,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::checkpoint::{BaseIndex, LoadAs};
    use crate::matcher::check;
    use crate::test_support::{fixture, qv_tensors, write_adapter, write_tensors, CONFIG_QV};

    #[test]
    fn lora_shape_mismatch_is_pk003() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("model.", 3);
        t[0].2 = vec![2, 16]; // layer 0 q_proj lora_A with 16 input features
        t[3].2 = vec![5, 2]; // layer 0 v_proj lora_B with 5 output features
        let report = fx.check("shapes", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003", "PK003"], "{:#?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(
            f.details,
            json!({
                "module": "model.layers.0.self_attn.q_proj",
                "adapter_shape": [2, 16],
                "base_shape": [8, 8],
                "tensor": "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            })
        );
        assert!(f.message.contains("size mismatch"), "{}", f.message);
        assert_eq!(
            report.findings[1].details["tensor"],
            json!("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")
        );
    }

    #[test]
    fn resized_vocabulary_names_the_row_count() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        t.push((
            "base_model.model.model.embed_tokens.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        let report = fx.check("resized", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003", "PK003"], "{:#?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(f.details["module"], json!("lm_head"));
        assert_eq!(f.details["resize_to"], json!(36));
        assert!(f.message.contains("base has 32 rows, adapter 36: call `model.resize_token_embeddings(36)` before `PeftModel.from_pretrained`"), "{}", f.message);
        assert_eq!(
            report.findings[1].details["module"],
            json!("model.embed_tokens")
        );
        // In-memory modules_to_save naming, same verdict.
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.modules_to_save.default.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        t.push((
            "base_model.model.lm_head.original_module.weight".into(),
            "F32",
            vec![32, 8],
            1,
        ));
        let report = fx.check("resized2", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        // Matching copies are fine.
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.weight".into(),
            "F32",
            vec![32, 8],
            1,
        ));
        let report = fx.check("saved", &t, Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn embedding_lora_and_dora() {
        let fx = fixture(LoadAs::CausalLm);
        let config = r#"{"r": 2, "target_modules": ["embed_tokens", "q_proj"], "use_dora": true}"#;
        let t: Vec<(String, &'static str, Vec<u64>, u8)> = vec![
            (
                "base_model.model.model.embed_tokens.lora_embedding_A".into(),
                "F32",
                vec![2, 32],
                1,
            ),
            (
                "base_model.model.model.embed_tokens.lora_embedding_B".into(),
                "F32",
                vec![8, 2],
                1,
            ),
            (
                "base_model.model.model.embed_tokens.lora_magnitude_vector".into(),
                "F32",
                vec![8],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".into(),
                "F32",
                vec![2, 8],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight".into(),
                "F32",
                vec![8, 2],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector".into(),
                "F32",
                vec![8],
                1,
            ),
        ];
        let report = fx.check("emb", &t, Some(config));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);

        let mut resized = t.clone();
        resized[0].2 = vec![2, 40];
        let report = fx.check("emb-resized", &resized, Some(config));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        assert!(report.findings[0]
            .message
            .contains("resize_token_embeddings(40)"));

        let mut bad_mag = t.clone();
        bad_mag[5].2 = vec![4];
        let report = fx.check("bad-mag", &bad_mag, Some(config));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);

        let report = fx.check(
            "no-dora-flag",
            &t,
            Some(r#"{"r": 2, "target_modules": ["embed_tokens", "q_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(report.findings[0].details["field"], json!("use_dora"));
    }

    #[test]
    fn conv1d_fan_in_fan_out() {
        let dir = tempfile::tempdir().unwrap();
        let base_path = dir.path().join("gpt2.safetensors");
        write_tensors(
            &base_path,
            &[
                ("transformer.h.0.attn.c_attn.weight", "F32", vec![8, 24]),
                ("transformer.wte.weight", "F32", vec![50, 8]),
            ],
        );
        let base = BaseIndex::open(&base_path, LoadAs::CausalLm).unwrap();
        assert!(base.tied_lm_head);
        let t = vec![
            (
                "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                "F32",
                vec![2, 8],
                1,
            ),
            (
                "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                "F32",
                vec![24, 2],
                1,
            ),
            ("base_model.model.lm_head.weight", "F32", vec![50, 8], 1),
        ];
        let adapter = write_adapter(
            &dir.path().join("a"),
            &t,
            Some(
                r#"{"r": 2, "target_modules": ["c_attn"], "fan_in_fan_out": true, "modules_to_save": ["lm_head"],
                    "ensure_weight_tying": true}"#,
            ),
        );
        let report = check(&base, &adapter).unwrap();
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        std::fs::write(
            adapter.join("adapter_config.json"),
            r#"{"r": 2, "target_modules": ["c_attn"], "ensure_weight_tying": true}"#,
        )
        .unwrap();
        let report = check(&base, &adapter).unwrap();
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        assert!(
            report.findings[0].message.contains("fan_in_fan_out"),
            "{}",
            report.findings[0].message
        );
    }
}
