//! Reads and validates the header of a `.safetensors` file, never its tensor data.
//!
//! Layout: an 8-byte little-endian length N, then N bytes of UTF-8 JSON mapping tensor
//! names to `{"dtype", "shape", "data_offsets": [begin, end]}` (plus an optional
//! `__metadata__` object of strings), then the data section.
//!
//! The JSON is read by a strict, single-pass scanner made for this one shape: names are
//! kept as offsets into the header text (only names with escapes are decoded and stored),
//! shapes go into one shared arena, and a [`Header`] can be refilled from another file
//! reusing all of its buffers. A fleet of adapters is parsed without allocating per
//! tensor, or per file once the buffers have grown.
//!
//! Everything docs/keys.md lists is checked and reported as a typed
//! [`ErrorKind`](crate::checkpoint::error::ErrorKind); the reader never panics, whatever the
//! bytes (see `proptests`, which also compare it with serde_json).
//!
//! - `dtype`: the element types;
//! - `header`: the [`Header`] (reading a file, the offset, size and name checks);
//! - `parser`: the header JSON's grammar, and its lexical layer in `parser::scanner`.

mod dtype;
mod header;
mod parser;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use dtype::{numel, Dtype};
pub use header::{check_sizes, Header, TensorEntry, MAX_HEADER_LEN};
