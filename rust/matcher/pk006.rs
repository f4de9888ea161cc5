//! PK006: an adapter file that holds no tensors at all, such as the placeholder a
//! DeepSpeed ZeRO-3 run saves when the sharded weights are not gathered first. It loads
//! without an error and changes nothing.

use serde_json::json;

use super::report::Finding;
use super::Context;
use crate::checkpoint::error::Result;

/// The PK006 finding, when the adapter's weights file lists no tensor.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    if !ctx.header.tensors().is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![Finding {
        code: "PK006",
        message: format!(
            "{} holds no tensors at all: PeftModel.from_pretrained loads nothing, so the model's output \
             equals the base model's. A DeepSpeed ZeRO-3 run saves such empty placeholders when the \
             sharded weights are not gathered first: save with `trainer.save_model()` (or under \
             `deepspeed.zero.GatheredParameters`) and check the file size",
            ctx.paths.weights.display()
        ),
        details: json!({}),
    }])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::checkpoint::LoadAs;
    use crate::test_support::{fixture, CONFIG_QV};

    #[test]
    fn empty_adapter_is_pk006() {
        let fx = fixture(LoadAs::CausalLm);
        let report = fx.check("empty", &[], Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK006"]);
        assert_eq!(report.findings[0].details, json!({}));
        // A ZeRO-3 placeholder: `{}` header, no data.
        let report = fx.check("empty-meta", &[], None);
        assert_eq!(report.codes(), ["PK006"]);
    }
}
