//! The checkpoints `peftfix keys` compares: the base, indexed once, and each adapter's
//! files, keys and config (docs/keys.md).
//!
//! - `base_index`: a base's compact module index, built from its shard headers;
//! - `base_files`: a base's files (single file, index + shards; local or remote) read
//!   into shard headers, `index_json` its index's weight_map, `index_cache` the headers
//!   kept on disk by the files' identity;
//! - `module_trie`: interned components and the reversed module trie it builds lazily;
//! - `prefix_rewrite`: infer the prefix rewrite that makes unmatched adapter modules
//!   match (what PK001 reports and `remap` applies);
//! - `adapter_path`, `adapter_keys`, `adapter_config`: the adapter's files, keys and config;
//! - `remap`: `--write-remapped`, the adapter with its keys rewritten;
//! - `error`: the typed "path: reason" error of every file read here (PK000).

pub mod adapter_config;
pub mod adapter_keys;
pub mod adapter_path;
pub mod base_files;
pub mod base_index;
pub mod error;
pub mod index_bytes;
pub mod index_cache;
pub mod index_json;
pub mod module_trie;
pub mod prefix_rewrite;
pub mod remap;

pub use base_index::{path_hash, BaseIndex, LoadAs, ParamInfo, INDEX_FILE, SINGLE_FILE};
