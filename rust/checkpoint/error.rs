//! The one error type of the checkpoint checks: a file and a typed reason (PK000).
//!
//! `Display` gives "path: reason", the message peftfix shows the user. Reasons are
//! sentences without Rust jargon; tensor names coming from a file are shortened so that
//! a hostile header cannot make a message megabytes long.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::discovery::error_text::describe_io_error;

/// Longest tensor name or JSON excerpt quoted in a message.
const QUOTE_LIMIT: usize = 120;

/// Why a checkpoint file could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// Opening, reading or writing failed (missing file, permission, ...).
    Io(String),
    /// Neither a safetensors file, nor an index, nor a directory holding one.
    NoCheckpoint(String),
    /// Fewer than the 8 bytes of the header length.
    TooSmall { len: u64 },
    /// The header length is over the 100 MB limit.
    HeaderTooLarge { header_len: u64 },
    /// 8 + header length is beyond the end of the file.
    HeaderBeyondFile { header_len: u64, file_len: u64 },
    /// The header bytes are not UTF-8.
    NotUtf8 { offset: usize },
    /// The header is not JSON, or not the JSON shape safetensors prescribes.
    Json(String),
    /// A dtype this reader does not know.
    UnknownDtype { tensor: String, dtype: String },
    /// `data_offsets` end before they begin.
    OffsetsReversed {
        tensor: String,
        begin: u64,
        end: u64,
    },
    /// `data_offsets` end beyond the data section.
    OffsetsBeyondData {
        tensor: String,
        end: u64,
        data_len: u64,
    },
    /// The product of the shape overflows.
    ShapeOverflow { tensor: String },
    /// `end - begin` is not `numel * dtype size`.
    SizeMismatch {
        tensor: String,
        expected: u64,
        actual: u64,
    },
    /// A sub-byte dtype (F4, F6) whose elements do not end on a byte boundary.
    SubByteSlice { tensor: String },
    /// Two tensors share bytes.
    Overlap { first: String, second: String },
    /// Bytes between tensors that no tensor covers.
    Gap {
        tensor: String,
        begin: u64,
        covered: u64,
    },
    /// Bytes after the last tensor.
    TrailingData { covered: u64, data_len: u64 },
    /// `__metadata__` is not an object of string -> string.
    BadMetadata(String),
    /// The index file is not a JSON object with a `weight_map` of tensor -> shard file.
    BadIndex(String),
    /// The index names a shard file that does not exist.
    MissingShard { index: String },
    /// The index places a tensor in a shard whose header does not list it.
    TensorNotInShard { tensor: String, index: String },
    /// Rewriting keys would give two tensors the same name.
    DuplicateAfterRewrite { first: String, second: String },
}

/// A file and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointError {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

pub type Result<T> = std::result::Result<T, CheckpointError>;

impl CheckpointError {
    pub fn new(path: impl Into<PathBuf>, kind: ErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
        }
    }

    pub fn io(path: &Path, err: &std::io::Error) -> Self {
        Self::new(path, ErrorKind::Io(describe_io_error(err)))
    }

    /// The reason alone, without the path.
    pub fn reason(&self) -> String {
        self.kind.to_string()
    }
}

/// `text` in backquotes, cut to a readable length.
pub fn quote(text: &str) -> String {
    if text.len() <= QUOTE_LIMIT {
        return format!("`{text}`");
    }
    let mut cut = QUOTE_LIMIT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "`{}...` ({} bytes)",
        text.get(..cut).unwrap_or(""),
        text.len()
    )
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(reason) | Self::NoCheckpoint(reason) => f.write_str(reason),
            Self::TooSmall { len } => write!(
                f,
                "file is {len} bytes, too short for a safetensors file (it starts with an 8-byte header length)"
            ),
            Self::HeaderTooLarge { header_len } => write!(
                f,
                "header length {header_len} is over the 100,000,000-byte limit (corrupt or not a safetensors file)"
            ),
            Self::HeaderBeyondFile {
                header_len,
                file_len,
            } => write!(
                f,
                "header length {header_len} reaches beyond the end of the file ({file_len} bytes): truncated or not a safetensors file"
            ),
            Self::NotUtf8 { offset } => {
                write!(f, "header is not valid UTF-8 (at byte {offset} of the JSON)")
            }
            Self::Json(reason) => write!(f, "header is not valid safetensors JSON: {reason}"),
            Self::UnknownDtype { tensor, dtype } => write!(
                f,
                "tensor {} has unknown dtype {}",
                quote(tensor),
                quote(dtype)
            ),
            Self::OffsetsReversed { tensor, begin, end } => write!(
                f,
                "tensor {} has data_offsets [{begin}, {end}] that end before they begin",
                quote(tensor)
            ),
            Self::OffsetsBeyondData {
                tensor,
                end,
                data_len,
            } => write!(
                f,
                "tensor {} ends at data offset {end}, beyond the {data_len}-byte data section: truncated file",
                quote(tensor)
            ),
            Self::ShapeOverflow { tensor } => {
                write!(f, "tensor {} has a shape whose size overflows", quote(tensor))
            }
            Self::SizeMismatch {
                tensor,
                expected,
                actual,
            } => write!(
                f,
                "tensor {} spans {actual} bytes but its shape and dtype need {expected}",
                quote(tensor)
            ),
            Self::SubByteSlice { tensor } => write!(
                f,
                "tensor {} does not end on a byte boundary (a sub-byte dtype)",
                quote(tensor)
            ),
            Self::Gap {
                tensor,
                begin,
                covered,
            } => write!(
                f,
                "tensor {} starts at byte {begin} of the data, but the tensors before it end at {covered}: \
                 a gap no tensor covers",
                quote(tensor)
            ),
            Self::TrailingData { covered, data_len } => write!(
                f,
                "the tensors cover {covered} of the {data_len} data bytes: trailing bytes after the last tensor"
            ),
            Self::Overlap { first, second } => write!(
                f,
                "tensors {} and {} overlap in the data section",
                quote(first),
                quote(second)
            ),
            Self::BadMetadata(reason) => write!(f, "__metadata__ {reason}"),
            Self::BadIndex(reason) => write!(f, "not a usable safetensors index: {reason}"),
            Self::MissingShard { index } => write!(
                f,
                "shard named by {} does not exist",
                quote(index)
            ),
            Self::TensorNotInShard { tensor, index } => write!(
                f,
                "does not contain tensor {}, which {} places in it",
                quote(tensor),
                quote(index)
            ),
            Self::DuplicateAfterRewrite { first, second } => write!(
                f,
                "rewriting keys would give {} and {} the same name",
                quote(first),
                quote(second)
            ),
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.kind)
    }
}

impl std::error::Error for CheckpointError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_path_colon_reason() {
        let err = CheckpointError::new("a/b.safetensors", ErrorKind::TooSmall { len: 3 });
        let text = err.to_string();
        assert!(
            text.starts_with("a/b.safetensors: file is 3 bytes"),
            "{text}"
        );
    }

    #[test]
    fn long_names_are_cut_on_a_char_boundary() {
        let name = "é".repeat(200);
        let quoted = quote(&name);
        assert!(quoted.len() < 200, "{quoted}");
        assert!(quoted.ends_with("(400 bytes)"), "{quoted}");
    }
}
