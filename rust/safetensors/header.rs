//! A validated safetensors header and the checks on its length prefix, offsets, sizes
//! and names. The JSON itself is read by [`super::parser`].

use std::io::Read;
use std::path::Path;

use super::parser;
use super::{numel, Dtype};
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::regular_file::open_regular;

/// Largest header accepted, as in the safetensors reference implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// A string of the header: a span of the JSON text, or a decoded string (it had escapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    Span { start: u32, len: u32 },
    Decoded(u32),
}

/// One tensor of a header. Its name and shape are read through [`Header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorEntry {
    pub(super) name: Name,
    pub dtype: Dtype,
    pub(super) shape_start: u32,
    pub(super) shape_len: u32,
    /// Offsets relative to the start of the data section.
    pub begin: u64,
    pub end: u64,
}

/// A parsed, validated header, owning its buffers. Tensors are in the file's order.
#[derive(Debug, Clone, Default)]
pub struct Header {
    json: String,
    file_len: u64,
    tensors: Vec<TensorEntry>,
    shapes: Vec<u64>,
    decoded: Vec<String>,
    metadata: Option<Vec<(Name, Name)>>,
}

impl Header {
    /// Reads and validates the header of `path`.
    pub fn read(path: &Path) -> Result<Self> {
        let mut header = Self::default();
        header.read_from(path)?;
        Ok(header)
    }

    /// Reads and validates the header of `path` into `self`, reusing its buffers. On
    /// error `self` holds no tensors.
    pub fn read_from(&mut self, path: &Path) -> Result<()> {
        self.clear();
        let io = |err: std::io::Error| CheckpointError::io(path, &err);
        let mut file = open_regular(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        let file_len = meta.len();
        if file_len < 8 {
            return Err(CheckpointError::new(
                path,
                ErrorKind::TooSmall { len: file_len },
            ));
        }
        let mut len_bytes = [0u8; 8];
        file.read_exact(&mut len_bytes).map_err(io)?;
        let header_len = u64::from_le_bytes(len_bytes);
        if let Some(kind) = check_sizes(header_len, file_len) {
            return Err(CheckpointError::new(path, kind));
        }
        // One read of the N JSON bytes into the reused buffer (no zero-filling).
        let mut bytes = std::mem::take(&mut self.json).into_bytes();
        bytes.clear();
        bytes.reserve(header_len as usize);
        let got = (&mut file)
            .take(header_len)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if got as u64 != header_len {
            return Err(CheckpointError::new(
                path,
                ErrorKind::HeaderBeyondFile {
                    header_len,
                    file_len: 8 + got as u64,
                },
            ));
        }
        self.fill(bytes, file_len)
            .map_err(|kind| CheckpointError::new(path, kind))
    }

    /// Validates the header JSON `json` of a file of `file_len` bytes fetched by other means
    /// (a ranged read of a remote file, a cache), into `self`.
    pub fn fill_from(
        &mut self,
        json: Vec<u8>,
        file_len: u64,
    ) -> std::result::Result<(), ErrorKind> {
        self.clear();
        self.fill(json, file_len)
    }

    /// The header JSON as read (the N bytes after the length).
    pub fn json_text(&self) -> &str {
        &self.json
    }

    /// Parses a whole safetensors file held in memory (tests, property tests).
    pub fn from_file_bytes(bytes: &[u8]) -> std::result::Result<Self, ErrorKind> {
        let file_len = bytes.len() as u64;
        let Some(len_bytes) = bytes.get(..8) else {
            return Err(ErrorKind::TooSmall { len: file_len });
        };
        let mut arr = [0u8; 8];
        arr.copy_from_slice(len_bytes);
        let header_len = u64::from_le_bytes(arr);
        if let Some(kind) = check_sizes(header_len, file_len) {
            return Err(kind);
        }
        let json = bytes
            .get(8..8 + header_len as usize)
            .unwrap_or(&[])
            .to_vec();
        let mut header = Self::default();
        header.fill(json, file_len)?;
        Ok(header)
    }

    fn clear(&mut self) {
        self.json.clear();
        self.file_len = 0;
        self.tensors.clear();
        self.shapes.clear();
        self.decoded.clear();
        self.metadata = None;
    }

    /// Validates `json` (the N header bytes) and parses it into `self`.
    fn fill(&mut self, json: Vec<u8>, file_len: u64) -> std::result::Result<(), ErrorKind> {
        self.json = match String::from_utf8(json) {
            Ok(text) => text,
            Err(err) => {
                let offset = err.utf8_error().valid_up_to();
                // Keep the allocation for the next file.
                let mut bytes = err.into_bytes();
                bytes.clear();
                self.json = String::from_utf8(bytes).unwrap_or_default();
                return Err(ErrorKind::NotUtf8 { offset });
            }
        };
        self.file_len = file_len;
        let result = self
            .parse()
            .map(|()| self.drop_shadowed_duplicates())
            .and_then(|()| self.validate());
        if result.is_err() {
            self.tensors.clear();
            self.metadata = None;
        }
        result
    }

    fn parse(&mut self) -> std::result::Result<(), ErrorKind> {
        let Self {
            json,
            tensors,
            shapes,
            decoded,
            metadata,
            ..
        } = self;
        parser::parse(json.as_bytes(), decoded, shapes, tensors, metadata)
    }

    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }

    fn resolve(&self, name: Name) -> &str {
        match name {
            Name::Span { start, len } => {
                let start = start as usize;
                self.json.get(start..start + len as usize).unwrap_or("")
            }
            Name::Decoded(i) => self.decoded.get(i as usize).map_or("", String::as_str),
        }
    }

    pub fn name(&self, tensor: &TensorEntry) -> &str {
        self.resolve(tensor.name)
    }

    pub fn shape(&self, tensor: &TensorEntry) -> &[u64] {
        let start = tensor.shape_start as usize;
        self.shapes
            .get(start..start + tensor.shape_len as usize)
            .unwrap_or(&[])
    }

    /// `__metadata__` entries in file order, if the header has the object.
    pub fn metadata(&self) -> Option<Vec<(&str, &str)>> {
        self.metadata.as_ref().map(|entries| {
            entries
                .iter()
                .map(|&(k, v)| (self.resolve(k), self.resolve(v)))
                .collect()
        })
    }

    /// N, the JSON length.
    pub fn json_len(&self) -> u64 {
        self.json.len() as u64
    }

    /// Bytes read from the file: 8 + N.
    pub fn bytes_read(&self) -> u64 {
        8 + self.json_len()
    }

    /// Where the data section starts in the file.
    pub fn data_start(&self) -> u64 {
        self.bytes_read()
    }

    /// Length of the data section.
    pub fn data_len(&self) -> u64 {
        self.file_len.saturating_sub(self.bytes_read())
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Offsets and sizes, exactly as the safetensors library checks them: every tensor
    /// spans `numel * bits / 8` bytes (a sub-byte dtype must end on a byte), and the
    /// tensors, in offset order, tile the data section from its first byte to its last:
    /// no gap, no overlap, no trailing bytes.
    fn validate(&self) -> std::result::Result<(), ErrorKind> {
        let data_len = self.data_len();
        for tensor in &self.tensors {
            let name = || self.name(tensor).to_string();
            if tensor.begin > tensor.end {
                return Err(ErrorKind::OffsetsReversed {
                    tensor: name(),
                    begin: tensor.begin,
                    end: tensor.end,
                });
            }
            if tensor.end > data_len {
                return Err(ErrorKind::OffsetsBeyondData {
                    tensor: name(),
                    end: tensor.end,
                    data_len,
                });
            }
            let bits = numel(self.shape(tensor))
                .and_then(|n| n.checked_mul(tensor.dtype.bits()))
                .ok_or_else(|| ErrorKind::ShapeOverflow { tensor: name() })?;
            if bits % 8 != 0 {
                return Err(ErrorKind::SubByteSlice { tensor: name() });
            }
            let expected = bits / 8;
            let actual = tensor.end - tensor.begin;
            if expected != actual {
                return Err(ErrorKind::SizeMismatch {
                    tensor: name(),
                    expected,
                    actual,
                });
            }
        }
        // Files written by safetensors list tensors in offset order: checked as they come.
        // Otherwise through a sorted index.
        let sorted = self
            .tensors
            .windows(2)
            .all(|pair| (pair[0].begin, pair[0].end) <= (pair[1].begin, pair[1].end));
        let mut order: Vec<&TensorEntry> = self.tensors.iter().collect();
        if !sorted {
            order.sort_unstable_by_key(|t| (t.begin, t.end));
        }
        let mut covered = 0u64;
        let mut previous: Option<&TensorEntry> = None;
        for tensor in order {
            if tensor.begin != covered {
                return Err(match previous {
                    Some(prev) if tensor.begin < covered => ErrorKind::Overlap {
                        first: self.name(prev).to_string(),
                        second: self.name(tensor).to_string(),
                    },
                    _ => ErrorKind::Gap {
                        tensor: self.name(tensor).to_string(),
                        begin: tensor.begin,
                        covered,
                    },
                });
            }
            covered = tensor.end;
            previous = Some(tensor);
        }
        if covered != data_len {
            return Err(ErrorKind::TrailingData { covered, data_len });
        }
        Ok(())
    }
}

impl Header {
    /// A tensor name listed twice: the last entry wins, as in the safetensors library (its
    /// header is a JSON map read with serde, where a later key replaces an earlier one).
    /// Files written by safetensors list names in sorted order, checked by comparing
    /// neighbours; in other orders the sorted hashes of the names tell whether any repeats,
    /// and only then a hash map finds the last entry of each.
    fn drop_shadowed_duplicates(&mut self) {
        let sorted_unique = self
            .tensors
            .windows(2)
            .all(|pair| self.name(&pair[0]) < self.name(&pair[1]));
        if sorted_unique {
            return;
        }
        if !self.has_duplicate_names() {
            return;
        }
        let mut last: rustc_hash::FxHashMap<&str, usize> =
            rustc_hash::FxHashMap::with_capacity_and_hasher(self.tensors.len(), Default::default());
        for (index, tensor) in self.tensors.iter().enumerate() {
            last.insert(self.name(tensor), index);
        }
        let keep: Vec<bool> = self
            .tensors
            .iter()
            .enumerate()
            .map(|(index, tensor)| last.get(self.name(tensor)) == Some(&index))
            .collect();
        drop(last);
        let mut index = 0;
        self.tensors.retain(|_| {
            index += 1;
            keep[index - 1]
        });
    }
}

impl Header {
    /// Whether a name may be listed twice: the names' 64-bit hashes go into a flat
    /// open-addressing table (no growth, no strings stored), and any repeated hash says
    /// yes. A false yes (two names, one hash: about one file in 10^9) only costs the exact
    /// check that follows.
    fn has_duplicate_names(&self) -> bool {
        use std::hash::BuildHasher;
        let slots = (self.tensors.len() * 2).next_power_of_two().max(16);
        let mask = slots - 1;
        // 0 marks an empty slot; a hash of 0 is stored as 1.
        let mut table = vec![0u64; slots];
        for tensor in &self.tensors {
            let hash = rustc_hash::FxBuildHasher.hash_one(self.name(tensor)).max(1);
            // The high bits pick the slot: FxHash mixes them best.
            let mut slot = (hash >> 32) as usize & mask;
            loop {
                match table[slot] {
                    0 => {
                        table[slot] = hash;
                        break;
                    }
                    seen if seen == hash => return true,
                    _ => slot = (slot + 1) & mask,
                }
            }
        }
        false
    }
}

/// The size checks on the length prefix; `None` when they pass.
pub fn check_sizes(header_len: u64, file_len: u64) -> Option<ErrorKind> {
    if header_len > MAX_HEADER_LEN {
        return Some(ErrorKind::HeaderTooLarge { header_len });
    }
    if header_len
        .checked_add(8)
        .is_none_or(|total| total > file_len)
    {
        return Some(ErrorKind::HeaderBeyondFile {
            header_len,
            file_len,
        });
    }
    None
}
