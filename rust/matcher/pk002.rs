//! PK002: adapter modules that match no module of the base, even after the inferred
//! prefix rewrite. PEFT ignores their weights without an error.

use serde_json::json;

use super::report::Finding;
use super::Context;
use crate::checkpoint::error::{quote, Result};

/// Unmatched module paths listed in PK002's details.
const LISTED: usize = 10;

/// The PK002 finding, when any module stays unmatched.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let still_unmatched = &ctx.matching.still_unmatched;
    if still_unmatched.is_empty() {
        return Ok(Vec::new());
    }
    let mut paths: Vec<&str> = still_unmatched
        .iter()
        .filter_map(|&id| ctx.modules.get(id as usize).map(|m| ctx.path(m)))
        .collect();
    paths.sort_unstable();
    if let Some(name) = adapter_name_cut(ctx, &paths) {
        return Ok(vec![adapter_name_finding(&paths, name)]);
    }
    Ok(vec![finding(
        &paths,
        ctx.modules.len(),
        ctx.matching.inferred.is_some(),
    )])
}

/// Adapter names that are a prefix of `lora_`. PEFT before 0.18 took the adapter name out
/// of a saved key with `key.replace(f".{name}", "")`, which also cut it out of `.lora_A`:
/// under the name `lora`, `q_proj.lora_A.lora.weight` was saved as `q_proj_A.weight`.
const CUTTING_NAMES: [&str; 5] = ["lora", "lora_", "lor", "lo", "l"];

/// The LoRA parameters such a cut leaves a tail of.
const CUT_ROLES: [&str; 4] = ["lora_A", "lora_B", "lora_embedding_A", "lora_embedding_B"];

/// The adapter name whose cut explains every unmatched path: each is a base module
/// followed by what `.{role}.{name}` became.
fn adapter_name_cut(ctx: &Context<'_>, paths: &[&str]) -> Option<&'static str> {
    CUTTING_NAMES.into_iter().find(|name| {
        let dotted = format!(".{name}");
        let tails: Vec<String> = CUT_ROLES
            .iter()
            .map(|role| format!(".{role}{dotted}").replace(&dotted, ""))
            .collect();
        paths.iter().all(|path| {
            tails.iter().any(|tail| {
                !tail.is_empty()
                    && path
                        .strip_suffix(tail.as_str())
                        .is_some_and(|stem| ctx.base.module_id(stem).is_some())
            })
        })
    })
}

fn adapter_name_finding(paths: &[&str], name: &str) -> Finding {
    let count = paths.len();
    let listed: Vec<&str> = paths.iter().take(LISTED).copied().collect();
    let first = listed.first().map_or_else(String::new, |p| quote(p));
    Finding {
        code: "PK002",
        message: format!(
            "{count} adapter modules match no module of the base (first: {first}): the adapter was saved by \
             PEFT before 0.18 under the adapter name {name:?}, and that save removed every `.{name}` from the \
             keys, including the one in `.lora_A`/`.lora_B` (`q_proj.lora_A.{name}.weight` became \
             `q_proj{}.weight`). PeftModel.from_pretrained warns \"Found missing adapter keys\" and loads the \
             adapter as a no-op. Rename the keys back to `<module>.lora_A.weight` / `<module>.lora_B.weight`, \
             and give adapters a name that is no part of \"lora_\" (PEFT warns: \"should not be contained in \
             the prefix\")",
            format!(".lora_A.{name}").replace(&format!(".{name}"), "")
        ),
        details: json!({"count": count, "modules": listed, "adapter_name": name}),
    }
}

/// `paths` sorted: the message names the first, the details list the first [`LISTED`]
/// (a model of another architecture leaves thousands unmatched).
fn finding(paths: &[&str], total: usize, after_rewrite: bool) -> Finding {
    let count = paths.len();
    let listed: Vec<&str> = paths.iter().take(LISTED).copied().collect();
    let first = listed.first().map_or_else(String::new, |p| quote(p));
    let scope = if count == total {
        format!("none of the adapter's {total} modules match a module of the base")
    } else {
        format!("{count} of {total} adapter modules match no module of the base")
    };
    let rewrite = if after_rewrite {
        ", even after the inferred prefix rewrite"
    } else {
        ""
    };
    Finding {
        code: "PK002",
        message: format!(
            "{scope}{rewrite} (first: {first}): PEFT ignores their weights without an error, so those \
             layers keep the base model's behaviour. The adapter was trained for another architecture or \
             base model: check --base (and --load-as)"
        ),
        details: json!({"count": count, "modules": listed}),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::checkpoint::LoadAs;
    use crate::test_support::{finding, fixture, qv_tensors, CONFIG_QV};

    #[test]
    fn partial_coverage_and_unmatched_rest() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("_orig_mod.model.", 3);
        t.push((
            "base_model.model._orig_mod.vision.blocks.0.qkv.lora_A.weight".into(),
            "F32",
            vec![2, 8],
            1,
        ));
        t.push((
            "base_model.model._orig_mod.vision.blocks.0.qkv.lora_B.weight".into(),
            "F32",
            vec![8, 2],
            1,
        ));
        let report = fx.check("partial", &t, Some(CONFIG_QV));
        assert_eq!(
            report.codes(),
            ["PK001", "PK002", "PK005"],
            "{:#?}",
            report.findings
        );
        assert_eq!(finding(&report, "PK001").details["coverage"], json!(0.8));
        let f = finding(&report, "PK002");
        assert_eq!(
            f.details,
            json!({"count": 1, "modules": ["_orig_mod.vision.blocks.0.qkv"]})
        );
        assert!(
            f.message.contains("even after the inferred prefix rewrite"),
            "{}",
            f.message
        );
        assert_eq!(report.counts.unmatched, 1);
        // `qkv` is not in target_modules.
        assert_eq!(
            finding(&report, "PK005").details["unexpected"],
            json!(["qkv"])
        );
    }

    #[test]
    fn other_architecture_is_pk002() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = Vec::new();
        for layer in 0..3 {
            let m = format!("base_model.model.transformer.h.{layer}.attn.c_attn");
            t.push((format!("{m}.lora_A.weight"), "F32", vec![2, 8], 1));
            t.push((format!("{m}.lora_B.weight"), "F32", vec![24, 2], 1));
        }
        let report = fx.check(
            "gpt2",
            &t,
            Some(r#"{"r": 2, "target_modules": ["c_attn"]}"#),
        );
        assert_eq!(report.codes(), ["PK002"], "{:#?}", report.findings);
        let f = finding(&report, "PK002");
        assert_eq!(f.details["count"], json!(3));
        assert_eq!(
            f.details["modules"][0],
            json!("transformer.h.0.attn.c_attn")
        );
        assert!(
            f.message.starts_with("none of the adapter's 3 modules"),
            "{}",
            f.message
        );
        assert!(report.rewrite.is_none());
    }
}
