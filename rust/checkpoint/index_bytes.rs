//! A base index as bytes, to be built again in another process: Ray workers get a base
//! indexed once, through the object store, instead of reading its shards again.
//!
//! The bytes hold what the index was built from — where the base was read, the `load_as`
//! view and each shard's file length and header JSON (as the index cache keeps them) —
//! not the built tables: rebuilding from validated headers is fast (the native matcher
//! indexes a 92k-tensor base in well under a second) and cannot be fooled by a forged
//! table. Every header is parsed and validated again, so corrupt bytes are an error,
//! never a wrong index.

use super::base_index::{BaseIndex, LoadAs};
use super::index_cache::{take_bytes, take_shards, take_u64, write_bytes, write_shards};

/// First bytes of the form; the crate version is part of it, as the parser may change.
const MAGIC: &str = concat!("peftfix base-index bytes ", env!("CARGO_PKG_VERSION"), "\n");

impl BaseIndex {
    /// The index in its byte form (see the module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let json_len: usize = self.shard_headers.iter().map(|(_, json)| json.len()).sum();
        let mut out = Vec::with_capacity(MAGIC.len() + self.source.len() + json_len + 64);
        out.extend_from_slice(MAGIC.as_bytes());
        // Writing into a Vec cannot fail.
        let _ = write_bytes(&mut out, self.source.as_bytes());
        let _ = write_bytes(&mut out, self.load_as.name().as_bytes());
        out.extend_from_slice(&u64::from(self.from_cache).to_le_bytes());
        let shards = self.shard_headers.iter().map(|(len, json)| (*len, &**json));
        let _ = write_shards(&mut out, shards);
        out
    }

    /// The index [`BaseIndex::to_bytes`] wrote; an error saying so for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let rest = bytes.strip_prefix(MAGIC.as_bytes()).ok_or_else(|| {
            "not a base index written by this peftfix version (the bytes start otherwise)"
                .to_string()
        })?;
        decode(rest).ok_or_else(|| {
            "corrupt base index bytes: truncated, or a header that is not valid".to_string()
        })
    }
}

fn decode(mut rest: &[u8]) -> Option<BaseIndex> {
    let source = String::from_utf8(take_bytes(&mut rest)?.to_vec()).ok()?;
    let load_as = LoadAs::parse(std::str::from_utf8(take_bytes(&mut rest)?).ok()?)?;
    let from_cache = match take_u64(&mut rest)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let shards = take_shards(&mut rest)?;
    if !rest.is_empty() {
        return None;
    }
    let mut index = BaseIndex::from_shards(source, load_as, &shards);
    index.from_cache = from_cache;
    Some(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write_tensors;

    fn base(dir: &std::path::Path) -> BaseIndex {
        write_tensors(
            &dir.join("model.safetensors"),
            &[
                ("model.embed_tokens.weight", "F32", vec![8, 4]),
                ("model.layers.0.self_attn.q_proj.weight", "F32", vec![4, 4]),
                ("lm_head.weight", "F32", vec![8, 4]),
            ],
        );
        BaseIndex::open(dir, LoadAs::CausalLm).unwrap()
    }

    #[test]
    fn an_index_built_again_from_its_bytes_is_the_same_index() {
        let dir = tempfile::tempdir().unwrap();
        let index = base(dir.path());
        let again = BaseIndex::from_bytes(&index.to_bytes()).unwrap();
        assert_eq!(again.source, index.source);
        assert_eq!(again.load_as, index.load_as);
        assert_eq!(
            (again.tensor_count, again.shard_count, again.header_bytes),
            (index.tensor_count, index.shard_count, index.header_bytes)
        );
        assert_eq!(again.base_model_prefix, index.base_model_prefix);
        assert_eq!(again.to_bytes(), index.to_bytes());
    }

    #[test]
    fn anything_but_whole_bytes_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = base(dir.path()).to_bytes();
        assert!(BaseIndex::from_bytes(b"").is_err());
        assert!(BaseIndex::from_bytes(b"pickle").is_err());
        for cut in [
            MAGIC.len(),
            MAGIC.len() + 3,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            assert!(
                BaseIndex::from_bytes(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(BaseIndex::from_bytes(&longer).is_err());
        // A byte flipped inside a header's JSON: parsed again, refused.
        let mut flipped = bytes.clone();
        let at = bytes.len() - 10;
        flipped[at] = b'\xff';
        assert!(BaseIndex::from_bytes(&flipped).is_err());
    }
}
