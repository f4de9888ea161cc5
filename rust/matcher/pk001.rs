//! PK001: adapter keys PEFT silently drops for their prefix, and the rewrite that fixes
//! them. Two causes, one finding: module paths that match the base only after a prefix
//! rewrite (a torch.compile, DDP or multimodal wrapper around the model, or the wrong
//! Auto class), and keys outside PEFT's `base_model.model.` (a wrapper around the
//! PeftModel, or no prefix at all). The rewrite itself is found in `modules`.

use serde_json::{json, Value};

use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_keys::{peft_wrapper_len, PEFT_PREFIX};
use crate::checkpoint::error::{quote, Result};
use crate::checkpoint::LoadAs;

/// The PK001 finding, when the rewrite or the prefix fix makes any module load.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let matching = ctx.matching;
    let Some(rewrite) = &matching.rewrite else {
        return Ok(Vec::new());
    };
    let modules = ctx.modules;
    let base = ctx.base;
    let example = match matching.inferred.as_ref().and_then(|r| r.matches.first()) {
        Some(&(i, base_id)) => {
            let adapter_path = matching
                .unmatched
                .get(i)
                .and_then(|&id| modules.get(id as usize))
                .map_or("", |m| ctx.path(m));
            Some((adapter_path, base.module_path(base_id)))
        }
        None => matching
            .first_prefix_only
            .and_then(|id| modules.get(id))
            .map(|m| (ctx.path(m), base.module_path(m.base))),
    };
    let prefix_issue = matching.prefix_issue;
    let prefix = (prefix_issue.keys > 0).then(|| {
        let key = ctx.name(prefix_issue.first);
        let len = peft_wrapper_len(key);
        (key.get(..len).unwrap_or(""), prefix_issue.keys, key)
    });
    Ok(vec![finding(
        ctx,
        &Pk001 {
            strip: &rewrite.strip,
            add: &rewrite.add,
            rewritten: matching.inferred.as_ref().map_or(0, |r| r.matches.len()),
            fixed: matching.fixed,
            coverage: rewrite.coverage,
            total: modules.len(),
            example,
            prefix,
        },
    )])
}

/// What PK001 reports: the module-path rewrite and/or the PEFT prefix fix.
struct Pk001<'a> {
    strip: &'a str,
    add: &'a str,
    /// Modules the module-path rewrite matches.
    rewritten: usize,
    /// Modules that match after the fix and that PEFT drops today.
    fixed: usize,
    coverage: f64,
    total: usize,
    example: Option<(&'a str, &'a str)>,
    /// `(found prefix, affected keys, first affected key)`.
    prefix: Option<(&'a str, u64, &'a str)>,
}

/// The message names each cause with a hint at where it comes from, then the fix
/// (`--write-remapped`); the details carry the rewrite and, for the prefix, what was found.
fn finding(ctx: &Context<'_>, f: &Pk001<'_>) -> Finding {
    let describe = match (f.strip.is_empty(), f.add.is_empty()) {
        (false, true) => format!("strip {}", quote(f.strip)),
        (true, false) => format!("add {}", quote(f.add)),
        _ => format!("strip {}, add {}", quote(f.strip), quote(f.add)),
    };
    let prefix_dot = format!("{}.", ctx.base.base_model_prefix);
    let hint = if f.strip.contains("_orig_mod.") {
        "; these are the keys of a torch.compile'd model (save the original module, `model._orig_mod`)"
    } else if f.strip.starts_with("module.") {
        "; these are the keys of a DDP/DataParallel-wrapped model (save `model.module`)"
    } else if f.strip.contains("language_model.") {
        "; the adapter was trained inside a multimodal wrapper"
    } else if ctx.base.load_as == LoadAs::BaseModel && f.strip == prefix_dot && f.add.is_empty() {
        "; the adapter was trained on AutoModelForCausalLM but is loaded into AutoModel (load the base \
         with AutoModelForCausalLM instead)"
    } else if ctx.base.load_as == LoadAs::CausalLm && f.add == prefix_dot && f.strip.is_empty() {
        "; the adapter was trained on a bare AutoModel and is loaded into AutoModelForCausalLM"
    } else {
        ""
    };
    let total = f.total;
    let (example_text, example) = match f.example {
        Some((adapter, base)) => (
            format!(" (e.g. {} -> {})", quote(adapter), quote(base)),
            json!({"adapter": adapter, "base": base}),
        ),
        None => (String::new(), Value::Null),
    };
    let mut parts = Vec::new();
    if f.rewritten > 0 {
        parts.push(format!(
            "{} of {total} adapter modules match the base only after a prefix rewrite, {describe}\
             {example_text}{hint}",
            f.rewritten
        ));
    }
    let mut details = json!({
        "rewrite": {"strip": f.strip, "add": f.add},
        "coverage": f.coverage,
        "modules": f.fixed,
        "example": example,
    });
    if let Some((found, keys, first)) = f.prefix {
        let what = if found.is_empty() {
            format!("lack PEFT's {} prefix", quote(PEFT_PREFIX))
        } else {
            format!(
                "start with {} instead of PEFT's {}",
                quote(found),
                quote(PEFT_PREFIX)
            )
        };
        let wrapper_hint = if found.starts_with("module.") {
            " (a DDP/DataParallel-wrapped PeftModel: save `model.module`)"
        } else if found.contains("_orig_mod.") {
            " (a torch.compile'd PeftModel: save `model._orig_mod`)"
        } else {
            ""
        };
        parts.push(format!(
            "{keys} adapter keys {what} (e.g. {}){wrapper_hint}: PEFT only loads keys under {}",
            quote(first),
            quote(PEFT_PREFIX)
        ));
        if let Some(map) = details.as_object_mut() {
            map.insert(
                "peft_prefix".into(),
                json!({"found": found, "expected": PEFT_PREFIX, "keys": keys, "first": first}),
            );
        }
    }
    let n = f.fixed;
    Finding {
        code: "PK001",
        message: format!(
            "{}. {n} of {total} adapter modules are affected: PEFT matches adapter keys to the model's \
             modules by exact name and silently drops the ones that do not match, so these weights never \
             load and the model's output equals the base model's. Fix the keys with `peftfix keys ADAPTER \
             --base BASE --write-remapped OUT` (tensor bytes unchanged) and load OUT",
            parts.join("; ")
        ),
        details,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::checkpoint::remap::write_remapped;
    use crate::checkpoint::LoadAs;
    use crate::matcher::check;
    use crate::test_support::{finding, fixture, qv_tensors, Fixture, CONFIG_QV};

    /// Writes the adapter `name` with its keys rewritten by `strip`/`add` and checks it
    /// again: the rewrite PK001 reports must leave nothing to report.
    fn assert_remapping_fixes(fx: &Fixture, name: &str, strip: &str, add: &str) {
        let fixed = fx.dir.path().join(format!("fixed-{name}"));
        write_remapped(&fx.dir.path().join(name), &fixed, strip, add).unwrap();
        let again = check(&fx.base, &fixed).unwrap();
        assert!(again.findings.is_empty(), "{name}: {:#?}", again.findings);
    }

    #[test]
    fn prefixes_give_pk001_and_remapping_fixes_them() {
        let fx = fixture(LoadAs::CausalLm);
        for (prefix, strip, add) in [
            ("_orig_mod.model.", "_orig_mod.", ""),
            ("module.model.", "module.", ""),
            ("", "", "model."),
            ("language_model.model.", "language_model.", ""),
        ] {
            let report = fx.check(prefix, &qv_tensors(prefix, 3), Some(CONFIG_QV));
            assert_eq!(
                report.codes(),
                ["PK001"],
                "{prefix}: {:#?}",
                report.findings
            );
            let f = finding(&report, "PK001");
            assert_eq!(f.details["rewrite"], json!({"strip": strip, "add": add}));
            assert_eq!(f.details["coverage"], json!(1.0));
            assert_eq!(f.details["modules"], json!(4));
            assert!(f.message.contains("silently drops"), "{}", f.message);
            assert_eq!(report.counts.matched, 0);
            assert_eq!(report.counts.matched_after_rewrite, 4);
            let rewrite = report.rewrite.clone().unwrap();
            assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), (strip, add));

            assert_remapping_fixes(&fx, prefix, strip, add);
        }
    }

    #[test]
    fn ddp_outer_wrapper_is_pk001_and_remapping_fixes_it() {
        let fx = fixture(LoadAs::CausalLm);
        let t: Vec<_> = qv_tensors("model.", 3)
            .into_iter()
            .map(|(k, d, s, f)| (format!("module.{k}"), d, s, f))
            .collect();
        let report = fx.check("ddp-outer", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": ""}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["modules"], json!(4));
        assert_eq!(
            f.details["peft_prefix"],
            json!({
                "found": "module.base_model.model.",
                "expected": "base_model.model.",
                "keys": 8,
                "first": "module.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            })
        );
        assert!(
            f.message
                .contains("PEFT only loads keys under `base_model.model.`"),
            "{}",
            f.message
        );
        assert_eq!(report.counts.matched, 4);
        assert_eq!(report.counts.matched_after_rewrite, 0);
        let rewrite = report.rewrite.clone().unwrap();
        assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), ("", ""));
        assert_remapping_fixes(&fx, "ddp-outer", "", "");
    }

    #[test]
    fn missing_peft_prefix_is_pk001_and_remapping_fixes_it() {
        let fx = fixture(LoadAs::CausalLm);
        let strip_peft = |prefix: &str| -> Vec<_> {
            qv_tensors(prefix, 3)
                .into_iter()
                .map(|(k, d, s, f)| (k["base_model.model.".len()..].to_string(), d, s, f))
                .collect()
        };
        // Module paths match as they are: only the PEFT prefix is wrong.
        let report = fx.check("no-prefix", &strip_peft("model."), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": ""}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["peft_prefix"]["found"], json!(""));
        assert_eq!(
            f.details["peft_prefix"]["expected"],
            json!("base_model.model.")
        );
        assert_eq!(f.details["peft_prefix"]["keys"], json!(8));
        assert!(f.message.contains("lack PEFT's"), "{}", f.message);
        let rewrite = report.rewrite.clone().unwrap();
        assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), ("", ""));
        assert_remapping_fixes(&fx, "no-prefix", "", "");

        // Both: a module-path rewrite and a missing prefix, one PK001.
        let report = fx.check("no-prefix-automodel", &strip_peft(""), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": "model."}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["peft_prefix"]["found"], json!(""));
        assert_remapping_fixes(&fx, "no-prefix-automodel", "", "model.");

        // Half the keys without the prefix: coverage counts the affected modules only.
        let mut t = qv_tensors("model.", 3);
        for entry in t.iter_mut().filter(|e| e.0.contains(".layers.1.")) {
            entry.0 = entry.0["base_model.model.".len()..].to_string();
        }
        let report = fx.check("half-no-prefix", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["coverage"], json!(0.5));
        assert_eq!(f.details["modules"], json!(2));
        assert_eq!(f.details["peft_prefix"]["keys"], json!(4));
    }

    #[test]
    fn base_model_view_wants_the_prefix_stripped() {
        let fx = fixture(LoadAs::BaseModel);
        let report = fx.check("causal", &qv_tensors("model.", 3), Some(CONFIG_QV));
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "model.", "add": ""}));
        assert!(f.message.contains("AutoModelForCausalLM"), "{}", f.message);
        let report = fx.check("bare", &qv_tensors("", 3), Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }
}
