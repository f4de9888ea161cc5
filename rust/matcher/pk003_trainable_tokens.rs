//! PK003, `trainable_token_indices` beyond the base vocabulary: the adapter trained rows
//! for tokens the base embedding does not have (they were added with
//! `resize_token_embeddings` before training). The base must be resized the same way
//! before the adapter is loaded.

use serde_json::json;

use super::modules::{is_targeted, last_component, OTHER};
use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_config::ConfigStatus;
use crate::checkpoint::base_index::INPUT_EMBEDDINGS;
use crate::checkpoint::error::{quote, Result};

pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let ConfigStatus::Loaded(config) = ctx.config() else {
        return Ok(Vec::new());
    };
    let mut findings = Vec::new();
    for (entry, indices) in &config.trainable_token_indices {
        let Some(&highest) = indices.iter().max() else {
            continue;
        };
        // The embedding the indices are for: the named one, else the input embedding.
        let module = ctx.modules.iter().find(|m| {
            let path = ctx.path(m);
            m.kinds & OTHER != 0
                && match entry {
                    Some(entry) => is_targeted(path, entry),
                    None => INPUT_EMBEDDINGS.contains(&last_component(path)),
                }
        });
        let Some(module) = module else {
            continue;
        };
        let Some(rows) = ctx
            .base
            .weight(module.base)
            .and_then(|w| w.shape.first().copied())
        else {
            continue;
        };
        if highest < rows {
            continue;
        }
        let path = ctx.path(module);
        let resize_to = highest + 1;
        findings.push(Finding {
            code: "PK003",
            message: format!(
                "{}: trainable_token_indices reach {highest} but the base embedding has {rows} rows: the adapter \
                 trains tokens added to the vocabulary. Call `model.resize_token_embeddings({resize_to})` (or to \
                 the tokenizer's length) before `PeftModel.from_pretrained`; without it PEFT indexes past the \
                 embedding",
                quote(path)
            ),
            details: json!({
                "module": path,
                "field": "trainable_token_indices",
                "max_index": highest,
                "base_rows": rows,
                "resize_to": resize_to,
            }),
        });
    }
    Ok(findings)
}
