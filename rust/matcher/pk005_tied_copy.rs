//! PK005, a `modules_to_save` copy of a tied embedding: the base ties `lm_head` to its
//! input embedding (no `lm_head.weight` on disk), and the adapter trains a separate copy
//! of one of them without PEFT's `ensure_weight_tying`. The copy unties the pair: merged,
//! the model holds two different matrices where the base had one, and whatever loads
//! them under the base's `tie_word_embeddings` (a server or converter reading the base's
//! config.json skips `lm_head.weight`) throws the trained one away.

use serde_json::json;

use super::modules::last_component;
use super::report::Finding;
use super::Context;
use crate::checkpoint::adapter_config::ConfigStatus;
use crate::checkpoint::base_index::INPUT_EMBEDDINGS;
use crate::checkpoint::error::{quote, Result};

pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    if !ctx.base.tied_lm_head {
        return Ok(Vec::new());
    }
    let ConfigStatus::Loaded(config) = ctx.config() else {
        return Ok(Vec::new());
    };
    if config.ensure_weight_tying {
        return Ok(Vec::new());
    }
    let mut copies: Vec<&str> = ctx
        .saved_copy_paths()
        .filter(|path| {
            let last = last_component(path);
            last == "lm_head" || INPUT_EMBEDDINGS.contains(&last)
        })
        .collect();
    if copies.is_empty() {
        return Ok(Vec::new());
    }
    copies.sort_unstable();
    let named = copies
        .iter()
        .map(|p| quote(p))
        .collect::<Vec<_>>()
        .join(" and ");
    Ok(vec![Finding {
        code: "PK005",
        message: format!(
            "modules_to_save trains a separate copy of {named}, but the base ties lm_head to its input \
             embedding (tie_word_embeddings; no lm_head.weight on disk): the copy unties them, and PEFT warns \
             that merging gets complicated. A merged model holds two different matrices where the base had one; \
             whatever loads it under the base's config.json (tie_word_embeddings = true), as servers and \
             converters do, skips lm_head.weight and serves the embedding in place of the trained head. Pass \
             ensure_weight_tying=True to LoraConfig (PEFT 0.18+) to train one shared copy, or save a merged model \
             with tie_word_embeddings = False in its config"
        ),
        details: json!({"field": "ensure_weight_tying", "config": false, "modules": copies}),
    }])
}
