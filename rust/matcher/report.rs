//! The result of checking one adapter: findings, counts, the inferred rewrite.
//!
//! Plain data; `lib.rs` turns it into the Python dict that docs/keys.md ("Output")
//! describes.

use serde_json::{json, Value};

use crate::checkpoint::error::CheckpointError;

/// One PK finding. `details` is a JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub adapter_tensors: u64,
    pub adapter_modules: u64,
    pub matched: u64,
    pub matched_after_rewrite: u64,
    pub unmatched: u64,
    pub base_tensors: u64,
    pub base_shards: u64,
    /// Safetensors header bytes read for this report: the adapter's and the base's.
    pub header_bytes: u64,
}

impl Counts {
    /// `(name, value)` in the documented order.
    pub fn fields(&self) -> [(&'static str, u64); 8] {
        [
            ("adapter_tensors", self.adapter_tensors),
            ("adapter_modules", self.adapter_modules),
            ("matched", self.matched),
            ("matched_after_rewrite", self.matched_after_rewrite),
            ("unmatched", self.unmatched),
            ("base_tensors", self.base_tensors),
            ("base_shards", self.base_shards),
            ("header_bytes", self.header_bytes),
        ]
    }
}

/// The inferred prefix rewrite: strip `strip` from the start of each module path, then
/// put `add` in front. Both are "" or end with a dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewrite {
    pub strip: String,
    pub add: String,
    /// Modules matched after the rewrite / all adapter modules.
    pub coverage: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub adapter: String,
    pub base: String,
    pub findings: Vec<Finding>,
    pub counts: Counts,
    pub rewrite: Option<Rewrite>,
    pub seconds: f64,
}

impl Report {
    /// A report whose only finding is PK000 for `error` (used where a batch must not raise).
    pub fn unreadable(
        adapter: String,
        base: String,
        error: &CheckpointError,
        counts: Counts,
        seconds: f64,
    ) -> Self {
        Self {
            adapter,
            base,
            findings: vec![Finding {
                code: "PK000",
                message: error.to_string(),
                details: json!({
                    "path": error.path.to_string_lossy(),
                    "reason": error.reason(),
                }),
            }],
            counts,
            rewrite: None,
            seconds,
        }
    }

    /// The report as JSON (tests, debugging).
    pub fn to_json(&self) -> Value {
        let counts: serde_json::Map<String, Value> = self
            .counts
            .fields()
            .iter()
            .map(|(k, v)| ((*k).to_string(), json!(v)))
            .collect();
        json!({
            "adapter": self.adapter,
            "base": self.base,
            "findings": self.findings.iter().map(|f| json!({
                "code": f.code, "message": f.message, "details": f.details,
            })).collect::<Vec<_>>(),
            "counts": counts,
            "rewrite": self.rewrite.as_ref().map(|r| json!({
                "strip": r.strip, "add": r.add, "coverage": r.coverage,
            })),
            "seconds": self.seconds,
        })
    }

    pub fn codes(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.code).collect()
    }
}
