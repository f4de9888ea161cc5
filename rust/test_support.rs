//! What the Rust tests share: safetensors files and checkpoints written to a temporary
//! directory.

/// A safetensors file from a header JSON text and a data section of `data_len` zeros.
pub fn file_bytes(json: &str, data_len: usize) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + data_len, 0);
    out
}
