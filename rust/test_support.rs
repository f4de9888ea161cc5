//! What the Rust tests share: safetensors files, a small Llama-shaped base and LoRA
//! adapters written to temporary directories, and a fixture that checks adapters against
//! that base. One writer serves every test, so the files they build differ only where a
//! test says so.

use std::path::{Path, PathBuf};

use crate::checkpoint::{BaseIndex, LoadAs, SINGLE_FILE};
use crate::matcher::check;
use crate::matcher::report::{Finding, Report};
use crate::safetensors::Dtype;

/// A safetensors file from a header JSON text and a data section of `data_len` zeros.
pub fn file_bytes(json: &str, data_len: usize) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + data_len, 0);
    out
}

/// A safetensors file holding `(name, dtype, shape, fill byte)` tensors in order, each
/// one's bytes all set to its fill byte. The header is not padded: nothing requires it.
fn safetensors_bytes<'t>(
    tensors: impl IntoIterator<Item = (&'t str, &'t str, &'t [u64], u8)>,
) -> Vec<u8> {
    let mut offset = 0u64;
    let mut parts = Vec::new();
    let mut data = Vec::new();
    for (name, dtype, shape, fill) in tensors {
        let numel: u64 = shape.iter().product();
        let size = Dtype::parse(dtype).unwrap().byte_len(numel).unwrap();
        parts.push(format!(
            "\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}",
            offset + size
        ));
        data.extend(std::iter::repeat_n(fill, size as usize));
        offset += size;
    }
    let mut bytes = file_bytes(&format!("{{{}}}", parts.join(",")), 0);
    bytes.extend(data);
    bytes
}

/// Writes a safetensors file of `(name, dtype, shape)` tensors of zero bytes.
pub fn write_tensors<N: AsRef<str>>(path: &Path, tensors: &[(N, &str, Vec<u64>)]) {
    let bytes = safetensors_bytes(
        tensors
            .iter()
            .map(|(name, dtype, shape)| (name.as_ref(), *dtype, shape.as_slice(), 0)),
    );
    std::fs::write(path, bytes).unwrap();
}

/// Writes an adapter directory: `adapter_model.safetensors` with `(name, dtype, shape,
/// fill byte)` tensors, and `adapter_config.json` when `config` is given.
pub fn write_adapter<N: AsRef<str>>(
    dir: &Path,
    tensors: &[(N, &str, Vec<u64>, u8)],
    config: Option<&str>,
) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let bytes = safetensors_bytes(
        tensors
            .iter()
            .map(|(name, dtype, shape, fill)| (name.as_ref(), *dtype, shape.as_slice(), *fill)),
    );
    std::fs::write(dir.join("adapter_model.safetensors"), bytes).unwrap();
    if let Some(config) = config {
        std::fs::write(dir.join("adapter_config.json"), config).unwrap();
    }
    dir.to_path_buf()
}

/// A two-layer Llama's tensors, `(name, dtype, shape)`: q/o are [8, 8], k/v [4, 8], the
/// MLP 16 wide, a vocabulary of 32, and an untied `lm_head`.
pub fn llama_tensors() -> Vec<(String, &'static str, Vec<u64>)> {
    let mut t = vec![
        ("model.embed_tokens.weight".to_string(), "F32", vec![32, 8]),
        ("model.norm.weight".to_string(), "F32", vec![8]),
        ("lm_head.weight".to_string(), "F32", vec![32, 8]),
    ];
    for layer in 0..2 {
        for (proj, shape) in [
            ("q_proj", [8, 8]),
            ("k_proj", [4, 8]),
            ("v_proj", [4, 8]),
            ("o_proj", [8, 8]),
        ] {
            t.push((
                format!("model.layers.{layer}.self_attn.{proj}.weight"),
                "F32",
                shape.to_vec(),
            ));
        }
        for (proj, shape) in [
            ("gate_proj", [16, 8]),
            ("up_proj", [16, 8]),
            ("down_proj", [8, 16]),
        ] {
            t.push((
                format!("model.layers.{layer}.mlp.{proj}.weight"),
                "F32",
                shape.to_vec(),
            ));
        }
        t.push((
            format!("model.layers.{layer}.input_layernorm.weight"),
            "F32",
            vec![8],
        ));
    }
    t
}

/// A config for LoRA on q_proj and v_proj with rank 2, as [`qv_tensors`] has it.
pub const CONFIG_QV: &str =
    r#"{"peft_type": "LORA", "r": 2, "target_modules": ["q_proj", "v_proj"]}"#;

/// LoRA on q/v of both layers: q is [8, 8], v is [4, 8]. Module paths start with
/// `prefix` after PEFT's `base_model.model.`; lora_A bytes are 1, lora_B bytes `b_fill`.
pub fn qv_tensors(prefix: &str, b_fill: u8) -> Vec<(String, &'static str, Vec<u64>, u8)> {
    let mut t = Vec::new();
    for layer in 0..2 {
        for (proj, out) in [("q_proj", 8u64), ("v_proj", 4)] {
            let m = format!("base_model.model.{prefix}layers.{layer}.self_attn.{proj}");
            t.push((format!("{m}.lora_A.weight"), "F32", vec![2, 8], 1));
            t.push((format!("{m}.lora_B.weight"), "F32", vec![out, 2], b_fill));
        }
    }
    t
}

/// A temporary directory with the [`llama_tensors`] base in `base/`, opened as `load_as`;
/// adapters are written beside it.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub base: BaseIndex,
}

pub fn fixture(load_as: LoadAs) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let base_dir = dir.path().join("base");
    std::fs::create_dir_all(&base_dir).unwrap();
    write_tensors(&base_dir.join(SINGLE_FILE), &llama_tensors());
    let base = BaseIndex::open(&base_dir, load_as).unwrap();
    Fixture { dir, base }
}

impl Fixture {
    /// Writes the adapter `name` beside the base and checks it.
    pub fn check(
        &self,
        name: &str,
        tensors: &[(String, &str, Vec<u64>, u8)],
        config: Option<&str>,
    ) -> Report {
        let path = write_adapter(&self.dir.path().join(name), tensors, config);
        check(&self.base, &path).unwrap()
    }
}

/// The report's finding with `code`; panics, showing all findings, when there is none.
pub fn finding<'r>(report: &'r Report, code: &str) -> &'r Finding {
    report
        .findings
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:#?}", report.findings))
}
