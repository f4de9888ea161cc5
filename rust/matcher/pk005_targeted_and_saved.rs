//! PK005, one module in both `target_modules` and `modules_to_save`: PEFT wraps it as a
//! full trainable copy (`ModulesToSaveWrapper`) and puts no LoRA layer on it, so the
//! LoRA the config asks for there was never trained, and the adapter carries the whole
//! weight instead.

use serde_json::json;

use super::modules::is_targeted;
use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_config::{AdapterConfig, ConfigStatus, TargetModules};
use crate::checkpoint::error::{quote, Result};

pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let ConfigStatus::Loaded(config) = ctx.config() else {
        return Ok(Vec::new());
    };
    let both = targeted_and_saved(ctx, config);
    if both.is_empty() {
        return Ok(Vec::new());
    }
    let count = both.len();
    let first = quote(both[0]);
    Ok(vec![Finding {
        code: "PK005",
        message: format!(
            "{first}{} is in both target_modules and modules_to_save: PEFT makes it a full trainable copy and \
             puts no LoRA on it, so the adapter stores the whole weight and no LoRA was trained there. Keep each \
             module in one list: target_modules to train it with LoRA, modules_to_save to train all of it",
            if count > 1 {
                format!(" (and {} more)", count - 1)
            } else {
                String::new()
            }
        ),
        details: json!({"field": "modules_to_save", "modules": both, "count": count}),
    }])
}

/// The saved copies whose module a `target_modules` entry also names, by path; with no
/// such copy on disk, the entries the two lists share.
pub(super) fn targeted_and_saved<'a>(
    ctx: &'a Context<'_>,
    config: &'a AdapterConfig,
) -> Vec<&'a str> {
    let TargetModules::List(entries) = &config.target_modules else {
        return Vec::new();
    };
    if config.modules_to_save.is_empty() {
        return Vec::new();
    }
    let mut both: Vec<&str> = ctx
        .saved_copy_paths()
        .filter(|path| {
            config
                .modules_to_save
                .iter()
                .any(|s| path.ends_with(s.as_str()))
                && entries.iter().any(|e| is_targeted(path, e))
        })
        .collect();
    if both.is_empty() {
        both = entries
            .iter()
            .filter(|e| config.modules_to_save.contains(e))
            .map(String::as_str)
            .collect();
    }
    both.sort_unstable();
    both.dedup();
    both
}
