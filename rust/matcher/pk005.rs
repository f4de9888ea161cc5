//! PK005: an adapter_config.json that does not describe the tensors: missing or
//! unreadable, a rank (`r`, `rank_pattern`) other than lora_A's, `target_modules` that
//! list modules the adapter lacks or omit ones it has, `use_dora` against the magnitude
//! vectors. PEFT builds the layers from the config, so each one breaks loading or
//! silently changes what loads.

use serde_json::json;

use super::modules::is_targeted;
use super::modules::{last_component, Module, LORA, NONE, OTHER};
use super::pk005_targeted_and_saved::targeted_and_saved;
use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_config::{
    AdapterConfig, ConfigStatus, RankRules, RankSource, TargetModules,
};
use crate::checkpoint::error::{quote, Result};

/// The config's findings, in the order: the file itself, rank, target_modules, use_dora.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    Ok(match ctx.config() {
        ConfigStatus::Missing(path) => vec![Finding {
            code: "PK005",
            message: format!(
                "{}: adapter_config.json is missing: PeftModel.from_pretrained cannot load the adapter without \
                 it (it fails looking for the config). Save the adapter with `save_pretrained`, which writes \
                 both files, or copy the training run's adapter_config.json beside the weights",
                path.display()
            ),
            details: json!({"field": "adapter_config.json", "config": null, "tensors": null, "reason": "missing"}),
        }],
        ConfigStatus::Unreadable(path, reason) => vec![Finding {
            code: "PK005",
            message: format!(
                "{}: adapter_config.json is unreadable ({reason}): PeftModel.from_pretrained fails on it. \
                 Restore the config written by `save_pretrained`",
                path.display()
            ),
            details: json!({"field": "adapter_config.json", "config": null, "tensors": null, "reason": reason}),
        }],
        ConfigStatus::Loaded(config) => config_findings(ctx, config),
    })
}

/// The findings of a config that parsed: rank, target_modules, use_dora.
fn config_findings(ctx: &Context<'_>, config: &AdapterConfig) -> Vec<Finding> {
    let modules = ctx.modules;
    let mut findings = Vec::new();
    let lora: Vec<&Module> = modules.iter().filter(|m| m.kinds & LORA != 0).collect();

    // r / rank_pattern against lora_A rows.
    if config.is_lora() && (config.r.is_some() || !config.rank_pattern.is_empty()) {
        let rules = RankRules::new(config);
        let mut count = 0u64;
        let mut first: Option<(&str, u64, u64, String)> = None;
        for module in &lora {
            let a = if module.a != NONE {
                module.a
            } else {
                module.emb_a
            };
            if a == NONE {
                continue;
            }
            let Some(&rows) = ctx.shape(a).first() else {
                continue;
            };
            // The path matters only to rank_pattern.
            let rank = if rules.has_patterns() {
                rules.rank_for(ctx.path(module))
            } else {
                rules.default_rank()
            };
            let Some((expected, source)) = rank else {
                continue;
            };
            if rows != expected {
                count += 1;
                let path: &str = ctx.path(module);
                if first.as_ref().is_none_or(|f| path < f.0) {
                    let source = match source {
                        RankSource::R => "r".to_string(),
                        RankSource::Pattern(key) => format!("rank_pattern[{}]", quote(key)),
                    };
                    first = Some((path, expected, rows, source));
                }
            }
        }
        if let Some((path, expected, rows, source)) = first {
            let field = if source == "r" { "r" } else { "rank_pattern" };
            findings.push(Finding {
                code: "PK005",
                message: format!(
                    "adapter_config.json gives {source} = {expected} but lora_A of {} has {rows} rows ({count} \
                     modules disagree): PEFT builds the LoRA layers from the config, so \
                     PeftModel.from_pretrained fails with \"size mismatch\". Put the rank the adapter was \
                     trained with back into the config",
                    quote(path)
                ),
                details: json!({"field": field, "config": expected, "tensors": rows, "module": path, "count": count}),
            });
        }
    }

    // target_modules against the modules present.
    if let TargetModules::List(entries) = &config.target_modules {
        let matches = is_targeted;
        // Entries whose module modules_to_save took over: reported on their own.
        let saved_instead = targeted_and_saved(ctx, config);
        let simple: Vec<&str> = entries
            .iter()
            .map(String::as_str)
            .filter(|e| !e.contains('.'))
            .collect();
        let dotted: Vec<&str> = entries
            .iter()
            .map(String::as_str)
            .filter(|e| e.contains('.'))
            .collect();
        // One pass: the distinct last components of tuner modules (a handful: a small
        // vector searched by a cheap fingerprint beats hashing), whether LoRA modules
        // end in them, and the LoRA modules the list does not cover.
        struct Last<'s> {
            print: u64,
            text: &'s str,
            lora: bool,
        }
        let mut lasts: Vec<Last<'_>> = Vec::new();
        let mut unexpected: Vec<&str> = Vec::new();
        let mut any_tuner = false;
        for module in modules.iter().filter(|m| m.kinds & (LORA | OTHER) != 0) {
            any_tuner = true;
            let path = ctx.path(module);
            let last = last_component(path);
            let print = fingerprint(last);
            let is_lora = module.kinds & LORA != 0;
            match lasts
                .iter_mut()
                .find(|l| l.print == print && l.text == last)
            {
                Some(seen) => seen.lora |= is_lora,
                None => lasts.push(Last {
                    print,
                    text: last,
                    lora: is_lora,
                }),
            }
            if is_lora
                && !dotted.is_empty()
                && !simple.contains(&last)
                && !dotted.iter().any(|e| matches(path, e))
                && !unexpected.contains(&last)
            {
                unexpected.push(last);
            }
        }
        if dotted.is_empty() {
            unexpected = lasts
                .iter()
                .filter(|l| l.lora && !simple.contains(&l.text))
                .map(|l| l.text)
                .collect();
        }
        let lasts: Vec<&str> = lasts.iter().map(|l| l.text).collect();
        if any_tuner {
            let missing: Vec<&str> = entries
                .iter()
                .map(String::as_str)
                .filter(|entry| !saved_instead.iter().any(|path| matches(path, entry)))
                .filter(|entry| {
                    if entry.contains('.') {
                        !modules
                            .iter()
                            .filter(|m| m.kinds & (LORA | OTHER) != 0)
                            .any(|m| matches(ctx.path(m), entry))
                    } else {
                        !lasts.contains(entry)
                    }
                })
                .collect();
            unexpected.sort_unstable();
            let mut present = lasts;
            present.sort_unstable();
            if !missing.is_empty() || !unexpected.is_empty() {
                let mut parts = Vec::new();
                if !missing.is_empty() {
                    parts.push(format!(
                        "lists {} that no adapter module ends with (PEFT gives those layers fresh LoRA weights with \
                         lora_B = 0: no effect)",
                        missing.iter().map(|m| quote(m)).collect::<Vec<_>>().join(", ")
                    ));
                }
                if !unexpected.is_empty() {
                    parts.push(format!(
                        "omits {} that the adapter has LoRA weights for (PEFT creates no LoRA layer there and \
                         silently drops those weights)",
                        unexpected.iter().map(|m| quote(m)).collect::<Vec<_>>().join(", ")
                    ));
                }
                findings.push(Finding {
                    code: "PK005",
                    message: format!(
                        "adapter_config.json target_modules {}: the config does not describe these tensors; \
                         restore the config the adapter was trained with",
                        parts.join(" and ")
                    ),
                    details: json!({
                        "field": "target_modules",
                        "config": entries,
                        "tensors": present,
                        "missing": missing,
                        "unexpected": unexpected,
                    }),
                });
            }
        }
    }

    // use_dora against magnitude vectors.
    if !lora.is_empty() {
        let magnitudes = lora.iter().filter(|m| m.magnitude != NONE).count();
        let use_dora = config.use_dora.unwrap_or(false);
        if use_dora && magnitudes == 0 {
            findings.push(Finding {
                code: "PK005",
                message: "adapter_config.json sets use_dora = true but the adapter has no lora_magnitude_vector \
                          tensors: PEFT initialises the magnitudes from the base weights instead of the trained \
                          ones and reports them as missing keys. Set use_dora to false, or re-save the DoRA \
                          adapter"
                    .to_string(),
                details: json!({"field": "use_dora", "config": true, "tensors": false}),
            });
        } else if !use_dora && magnitudes > 0 {
            findings.push(Finding {
                code: "PK005",
                message: format!(
                    "adapter_config.json sets use_dora = false but the adapter has {magnitudes} DoRA \
                     lora_magnitude_vector tensors: PEFT builds plain LoRA layers and silently drops the \
                     magnitudes, so the output is not what was trained. Set use_dora to true"
                ),
                details: json!({"field": "use_dora", "config": false, "tensors": true, "count": magnitudes}),
            });
        }
    }
    findings
}

/// Length and first and last bytes of a short name, to tell names apart without a compare.
fn fingerprint(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    let last = bytes.last().copied().unwrap_or(0);
    let middle = bytes.get(bytes.len() / 2).copied().unwrap_or(0);
    (bytes.len() as u64) << 24 | u64::from(first) << 16 | u64::from(middle) << 8 | u64::from(last)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::checkpoint::LoadAs;
    use crate::test_support::{fixture, qv_tensors};

    #[test]
    fn config_checks() {
        let fx = fixture(LoadAs::CausalLm);
        let t = qv_tensors("model.", 3);
        let report = fx.check(
            "r",
            &t,
            Some(r#"{"r": 4, "target_modules": ["q_proj", "v_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        let d = &report.findings[0].details;
        assert_eq!(
            (
                d["field"].clone(),
                d["config"].clone(),
                d["tensors"].clone()
            ),
            (json!("r"), json!(4), json!(2))
        );
        assert_eq!(d["count"], json!(4));

        let report = fx.check("pattern", &t, Some(r#"{"r": 2, "rank_pattern": {"v_proj": 8}, "target_modules": ["q_proj", "v_proj"]}"#));
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(report.findings[0].details["field"], json!("rank_pattern"));
        assert_eq!(report.findings[0].details["count"], json!(2));

        let report = fx.check(
            "targets",
            &t,
            Some(r#"{"r": 2, "target_modules": ["q_proj", "k_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        let d = &report.findings[0].details;
        assert_eq!(d["missing"], json!(["k_proj"]));
        assert_eq!(d["unexpected"], json!(["v_proj"]));
        assert_eq!(d["tensors"], json!(["q_proj", "v_proj"]));

        let report = fx.check(
            "dotted",
            &t,
            Some(r#"{"r": 2, "target_modules": ["self_attn.q_proj", "v_proj"]}"#),
        );
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        let report = fx.check(
            "regex",
            &t,
            Some(r#"{"r": 2, "target_modules": "all-linear"}"#),
        );
        assert!(report.findings.is_empty(), "{:#?}", report.findings);

        let report = fx.check("missing", &t, None);
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(
            report.findings[0].details["field"],
            json!("adapter_config.json")
        );
        let report = fx.check("broken", &t, Some("{"));
        assert_eq!(report.codes(), ["PK005"]);
        assert!(report.findings[0].message.contains("unreadable"));
    }
}
