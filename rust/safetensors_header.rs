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
//! Everything docs/keys.md lists is checked and reported as a typed [`ErrorKind`]; the
//! reader never panics, whatever the bytes (see the property tests at the bottom, which
//! also compare it with serde_json).

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use crate::ckpt_error::{quote, CheckpointError, ErrorKind, Result};

/// Largest header accepted, as in the safetensors reference implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// Deepest JSON nesting accepted inside ignored values (serde_json's limit).
const MAX_DEPTH: usize = 128;

/// The element types of the safetensors format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dtype {
    Bool,
    F4,
    F6E2M3,
    F6E3M2,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    F8E8M0,
    F8E4M3Fnuz,
    F8E5M2Fnuz,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    C64,
    F64,
    I64,
    U64,
}

impl Dtype {
    pub fn parse(name: &str) -> Option<Self> {
        Self::parse_bytes(name.as_bytes())
    }

    pub fn parse_bytes(name: &[u8]) -> Option<Self> {
        Some(match name {
            b"BOOL" => Self::Bool,
            b"F4" => Self::F4,
            b"F6_E2M3" => Self::F6E2M3,
            b"F6_E3M2" => Self::F6E3M2,
            b"U8" => Self::U8,
            b"I8" => Self::I8,
            b"F8_E5M2" => Self::F8E5M2,
            b"F8_E4M3" => Self::F8E4M3,
            b"F8_E8M0" => Self::F8E8M0,
            b"F8_E4M3FNUZ" => Self::F8E4M3Fnuz,
            b"F8_E5M2FNUZ" => Self::F8E5M2Fnuz,
            b"I16" => Self::I16,
            b"U16" => Self::U16,
            b"F16" => Self::F16,
            b"BF16" => Self::BF16,
            b"I32" => Self::I32,
            b"U32" => Self::U32,
            b"F32" => Self::F32,
            b"C64" => Self::C64,
            b"F64" => Self::F64,
            b"I64" => Self::I64,
            b"U64" => Self::U64,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bool => "BOOL",
            Self::F4 => "F4",
            Self::F6E2M3 => "F6_E2M3",
            Self::F6E3M2 => "F6_E3M2",
            Self::U8 => "U8",
            Self::I8 => "I8",
            Self::F8E5M2 => "F8_E5M2",
            Self::F8E4M3 => "F8_E4M3",
            Self::F8E8M0 => "F8_E8M0",
            Self::F8E4M3Fnuz => "F8_E4M3FNUZ",
            Self::F8E5M2Fnuz => "F8_E5M2FNUZ",
            Self::I16 => "I16",
            Self::U16 => "U16",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::I32 => "I32",
            Self::U32 => "U32",
            Self::F32 => "F32",
            Self::C64 => "C64",
            Self::F64 => "F64",
            Self::I64 => "I64",
            Self::U64 => "U64",
        }
    }

    /// Bits per element.
    pub fn bits(self) -> u64 {
        match self {
            Self::F4 => 4,
            Self::F6E2M3 | Self::F6E3M2 => 6,
            Self::Bool
            | Self::U8
            | Self::I8
            | Self::F8E5M2
            | Self::F8E4M3
            | Self::F8E8M0
            | Self::F8E4M3Fnuz
            | Self::F8E5M2Fnuz => 8,
            Self::I16 | Self::U16 | Self::F16 | Self::BF16 => 16,
            Self::I32 | Self::U32 | Self::F32 => 32,
            Self::C64 | Self::F64 | Self::I64 | Self::U64 => 64,
        }
    }

    /// Bytes that `numel` elements occupy (sub-byte types rounded up); `None` on overflow.
    pub fn byte_len(self, numel: u64) -> Option<u64> {
        let bits = numel.checked_mul(self.bits())?;
        Some(bits.div_ceil(8))
    }
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string of the header: a span of the JSON text, or a decoded string (it had escapes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Name {
    Span { start: u32, len: u32 },
    Decoded(u32),
}

/// One tensor of a header. Its name and shape are read through [`Header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorEntry {
    name: Name,
    pub dtype: Dtype,
    shape_start: u32,
    shape_len: u32,
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
        let mut file = File::open(path).map_err(io)?;
        let meta = file.metadata().map_err(io)?;
        if meta.is_dir() {
            return Err(CheckpointError::new(
                path,
                ErrorKind::Io("is a directory, not a safetensors file".into()),
            ));
        }
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
        let result = self.parse().and_then(|()| self.validate());
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
        let mut parser = Parser {
            text: json.as_bytes(),
            pos: 0,
            decoded,
            shapes,
        };
        parser.header(tensors, metadata)
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

    /// Offsets, sizes and overlaps.
    fn validate(&self) -> std::result::Result<(), ErrorKind> {
        let data_len = self.data_len();
        let mut sorted = true;
        let mut last_begin = 0u64;
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
            let expected = self
                .shape(tensor)
                .iter()
                .try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
                .and_then(|numel| tensor.dtype.byte_len(numel))
                .ok_or_else(|| ErrorKind::ShapeOverflow { tensor: name() })?;
            let actual = tensor.end - tensor.begin;
            if expected != actual {
                return Err(ErrorKind::SizeMismatch {
                    tensor: name(),
                    expected,
                    actual,
                });
            }
            if tensor.begin < last_begin {
                sorted = false;
            }
            last_begin = tensor.begin;
        }
        self.check_unique_names()?;
        // Files written by safetensors list tensors in offset order: one linear pass.
        // Otherwise sort an index. Empty tensors occupy no bytes and overlap nothing.
        let check = |order: &mut dyn Iterator<Item = &TensorEntry>| {
            let mut previous: Option<&TensorEntry> = None;
            for tensor in order {
                if tensor.begin == tensor.end {
                    continue;
                }
                if let Some(prev) = previous {
                    if prev.end > tensor.begin {
                        return Err(ErrorKind::Overlap {
                            first: self.name(prev).to_string(),
                            second: self.name(tensor).to_string(),
                        });
                    }
                }
                previous = Some(tensor);
            }
            Ok(())
        };
        if sorted {
            check(&mut self.tensors.iter())
        } else {
            let mut order: Vec<&TensorEntry> = self.tensors.iter().collect();
            order.sort_unstable_by_key(|t| (t.begin, t.end));
            check(&mut order.into_iter())
        }
    }
}

impl Header {
    /// No tensor name twice (a reader could not tell which entry is meant). Files written
    /// by safetensors list names in sorted order, checked by comparing neighbours; other
    /// orders fall back to a hash set.
    fn check_unique_names(&self) -> std::result::Result<(), ErrorKind> {
        let duplicate = |name: &str| {
            Err(ErrorKind::DuplicateTensor {
                tensor: name.to_string(),
            })
        };
        let mut previous: Option<&str> = None;
        for tensor in &self.tensors {
            let name = self.name(tensor);
            match previous {
                Some(prev) if prev == name => return duplicate(name),
                Some(prev) if prev > name => return self.check_unique_names_unsorted(),
                _ => previous = Some(name),
            }
        }
        Ok(())
    }

    fn check_unique_names_unsorted(&self) -> std::result::Result<(), ErrorKind> {
        let mut seen: rustc_hash::FxHashSet<&str> = rustc_hash::FxHashSet::default();
        seen.reserve(self.tensors.len());
        for tensor in &self.tensors {
            let name = self.name(tensor);
            if !seen.insert(name) {
                return Err(ErrorKind::DuplicateTensor {
                    tensor: name.to_string(),
                });
            }
        }
        Ok(())
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

/// The strict JSON scanner. Positions are byte offsets into the (UTF-8) header text.
struct Parser<'a, 'b> {
    text: &'a [u8],
    pos: usize,
    decoded: &'b mut Vec<String>,
    shapes: &'b mut Vec<u64>,
}

/// A string just scanned: its raw span (between the quotes) and whether it had escapes.
#[derive(Clone, Copy)]
struct Scanned {
    start: usize,
    end: usize,
    escaped: bool,
}

/// A field of a tensor entry.
enum Field {
    Dtype,
    Shape,
    Offsets,
    Other,
}

impl Parser<'_, '_> {
    fn error<T>(&self, what: &str) -> std::result::Result<T, ErrorKind> {
        let at = self.pos.min(self.text.len());
        let found = match self.text.get(at) {
            None => "the end of the header".to_string(),
            Some(&b) if b.is_ascii_graphic() => format!("`{}`", b as char),
            Some(&b) => format!("byte 0x{b:02x}"),
        };
        Err(ErrorKind::Json(format!(
            "expected {what} at byte {at}, found {found}"
        )))
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace and consumes `byte`.
    fn expect(&mut self, byte: u8, what: &str) -> std::result::Result<(), ErrorKind> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    /// After an element: `,` (true, more follow) or the closing byte (false).
    fn next_or_close(&mut self, close: u8, what: &str) -> std::result::Result<bool, ErrorKind> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(b) if b == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => self.error(what),
        }
    }

    /// Scans a string starting at its opening quote (after whitespace).
    fn scan_string(&mut self) -> std::result::Result<Scanned, ErrorKind> {
        self.skip_ws();
        if self.peek() != Some(b'"') {
            return self.error("a string");
        }
        self.pos += 1;
        let start = self.pos;
        let mut escaped = false;
        loop {
            self.pos = special_from(self.text, self.pos);
            match self.peek() {
                None => return self.error("the end of a string (`\"`)"),
                Some(b) if b < 0x20 => {
                    return self.error("a printable character (control characters must be escaped)")
                }
                _ => {}
            }
            if self.peek() == Some(b'"') {
                let end = self.pos;
                self.pos += 1;
                return Ok(Scanned {
                    start,
                    end,
                    escaped,
                });
            }
            // A backslash: validate the escape.
            escaped = true;
            self.pos += 1;
            match self.peek() {
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.pos += 1,
                Some(b'u') => {
                    self.pos += 1;
                    let unit = self.hex4()?;
                    if (0xD800..0xDC00).contains(&unit) {
                        if self.text.get(self.pos..self.pos + 2) != Some(b"\\u") {
                            return self.error("the low surrogate of a surrogate pair");
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..0xE000).contains(&low) {
                            return self.error("a low surrogate");
                        }
                    } else if (0xDC00..0xE000).contains(&unit) {
                        return self.error("a leading surrogate before this trailing one");
                    }
                }
                _ => return self.error("a valid escape"),
            }
        }
    }

    fn hex4(&mut self) -> std::result::Result<u32, ErrorKind> {
        let mut value = 0u32;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(b @ b'0'..=b'9') => b - b'0',
                Some(b @ b'a'..=b'f') => b - b'a' + 10,
                Some(b @ b'A'..=b'F') => b - b'A' + 10,
                _ => return self.error("four hex digits"),
            };
            value = value * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(value)
    }

    /// The raw text of a scanned string (valid UTF-8: the whole header was checked, and
    /// quotes and backslashes are ASCII, so the span is on character boundaries).
    fn raw(&self, s: Scanned) -> &str {
        self.text
            .get(s.start..s.end)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// Decodes a scanned string with escapes (already validated).
    fn decode(&self, s: Scanned) -> String {
        let raw = self.raw(s);
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => {
                    let hex = |chars: &mut std::str::Chars<'_>| {
                        let digits: String = chars.by_ref().take(4).collect();
                        u32::from_str_radix(&digits, 16).unwrap_or(0xFFFD)
                    };
                    let mut unit = hex(&mut chars);
                    if (0xD800..0xDC00).contains(&unit) {
                        chars.next();
                        chars.next();
                        let low = hex(&mut chars);
                        unit =
                            0x10000 + ((unit - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF);
                    }
                    out.push(char::from_u32(unit).unwrap_or('\u{FFFD}'));
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }

    /// A scanned string as a [`Name`], decoding it when it has escapes.
    fn name(&mut self, s: Scanned) -> std::result::Result<Name, ErrorKind> {
        if s.escaped {
            let text = self.decode(s);
            let index = u32::try_from(self.decoded.len()).map_err(|_| too_large())?;
            self.decoded.push(text);
            Ok(Name::Decoded(index))
        } else {
            let start = u32::try_from(s.start).map_err(|_| too_large())?;
            let len = u32::try_from(s.end - s.start).map_err(|_| too_large())?;
            Ok(Name::Span { start, len })
        }
    }

    /// Whether a scanned string equals `literal` (decoding only when it has escapes).
    fn equals(&self, s: Scanned, literal: &str) -> bool {
        if s.escaped {
            self.decode(s) == literal
        } else {
            self.text.get(s.start..s.end) == Some(literal.as_bytes())
        }
    }

    fn header(
        &mut self,
        tensors: &mut Vec<TensorEntry>,
        metadata: &mut Option<Vec<(Name, Name)>>,
    ) -> std::result::Result<(), ErrorKind> {
        self.expect(b'{', "`{` opening the header object")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                let key = self.scan_string()?;
                self.expect(b':', "`:` after a tensor name")?;
                if self.equals(key, "__metadata__") {
                    if metadata.is_some() {
                        return Err(ErrorKind::Json("__metadata__ appears twice".into()));
                    }
                    *metadata = Some(self.metadata()?);
                } else {
                    let name = self.name(key)?;
                    let entry = match self.canonical_entry(name) {
                        Some(entry) => entry,
                        None => self.entry(name, key)?,
                    };
                    tensors.push(entry);
                }
                if !self.next_or_close(b'}', "`,` or `}` after a tensor entry")? {
                    break;
                }
            }
        }
        self.skip_ws();
        if self.pos < self.text.len() {
            return self.error("the end of the header after the top-level object");
        }
        Ok(())
    }

    fn metadata(&mut self) -> std::result::Result<Vec<(Name, Name)>, ErrorKind> {
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return Err(ErrorKind::BadMetadata(
                "must be an object of strings".into(),
            ));
        }
        self.pos += 1;
        let mut entries = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(entries);
        }
        loop {
            let key = self.scan_string()?;
            self.expect(b':', "`:` after a metadata key")?;
            self.skip_ws();
            if self.peek() != Some(b'"') {
                let key_text = if key.escaped {
                    self.decode(key)
                } else {
                    self.raw(key).to_string()
                };
                return Err(ErrorKind::BadMetadata(format!(
                    "must map strings to strings, but the value of {} is not a string",
                    quote(&key_text)
                )));
            }
            let value = self.scan_string()?;
            let key = self.name(key)?;
            let value = self.name(value)?;
            entries.push((key, value));
            if !self.next_or_close(b'}', "`,` or `}` in __metadata__")? {
                return Ok(entries);
            }
        }
    }

    fn field(&self, key: Scanned) -> Field {
        let text = if key.escaped {
            self.decode(key)
        } else {
            self.raw(key).to_string()
        };
        match text.as_str() {
            "dtype" => Field::Dtype,
            "shape" => Field::Shape,
            "data_offsets" => Field::Offsets,
            _ => Field::Other,
        }
    }

    fn fast_field(&self, key: Scanned) -> Field {
        if key.escaped {
            return self.field(key);
        }
        match self.text.get(key.start..key.end) {
            Some(b"dtype") => Field::Dtype,
            Some(b"shape") => Field::Shape,
            Some(b"data_offsets") => Field::Offsets,
            _ => Field::Other,
        }
    }

    /// The entry as safetensors writes it, `{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}`
    /// with no whitespace, read by direct byte matching. `None` (nothing consumed) for
    /// anything else, which [`entry`](Self::entry) then reads or reports.
    fn canonical_entry(&mut self, name: Name) -> Option<TensorEntry> {
        let shapes_before = self.shapes.len();
        let entry = self.canonical_entry_inner(name);
        if entry.is_none() {
            self.shapes.truncate(shapes_before);
        }
        entry
    }

    fn canonical_entry_inner(&mut self, name: Name) -> Option<TensorEntry> {
        let text = self.text;
        let mut p = self.pos;
        let literal = |p: &mut usize, lit: &[u8]| {
            let matched = text.get(*p..*p + lit.len()) == Some(lit);
            if matched {
                *p += lit.len();
            }
            matched
        };
        // A plain integer: digits, no leading zero, fits in u64.
        let integer = |p: &mut usize| -> Option<u64> {
            let start = *p;
            let mut value = 0u64;
            while let Some(&b @ b'0'..=b'9') = text.get(*p) {
                value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
                *p += 1;
            }
            let digits = *p - start;
            (digits == 1 || (digits > 1 && text.get(start) != Some(&b'0'))).then_some(value)
        };
        if !literal(&mut p, b"{\"dtype\":\"") {
            return None;
        }
        let dtype_start = p;
        while let Some(&b) = text.get(p) {
            if b == b'"' {
                break;
            }
            if !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') || p - dtype_start > 12
            {
                return None;
            }
            p += 1;
        }
        let dtype = Dtype::parse_bytes(text.get(dtype_start..p)?)?;
        if !literal(&mut p, b"\",\"shape\":[") {
            return None;
        }
        let shape_start = self.shapes.len();
        if !literal(&mut p, b"]") {
            loop {
                self.shapes.push(integer(&mut p)?);
                if literal(&mut p, b",") {
                    continue;
                }
                if literal(&mut p, b"]") {
                    break;
                }
                return None;
            }
        }
        if !literal(&mut p, b",\"data_offsets\":[") {
            return None;
        }
        let begin = integer(&mut p)?;
        if !literal(&mut p, b",") {
            return None;
        }
        let end = integer(&mut p)?;
        if !literal(&mut p, b"]}") {
            return None;
        }
        let shape_len = self.shapes.len() - shape_start;
        let shape_start = u32::try_from(shape_start).ok()?;
        let shape_len = u32::try_from(shape_len).ok()?;
        self.pos = p;
        Some(TensorEntry {
            name,
            dtype,
            shape_start,
            shape_len,
            begin,
            end,
        })
    }

    fn entry(&mut self, name: Name, key: Scanned) -> std::result::Result<TensorEntry, ErrorKind> {
        let tensor_name = |p: &Self| {
            if key.escaped {
                p.decode(key)
            } else {
                p.raw(key).to_string()
            }
        };
        self.skip_ws();
        if self.peek() != Some(b'{') {
            return Err(ErrorKind::Json(format!(
                "tensor {} is not an object with dtype, shape and data_offsets (at byte {})",
                quote(&tensor_name(self)),
                self.pos
            )));
        }
        self.pos += 1;
        let mut dtype = None;
        let mut shape: Option<(u32, u32)> = None;
        let mut offsets: Option<[u64; 2]> = None;
        self.skip_ws();
        let empty = self.peek() == Some(b'}');
        if empty {
            self.pos += 1;
        }
        // An empty object has no fields: skip the loop (its `break` ends a non-empty one).
        let mut more = !empty;
        while more {
            let field_key = self.scan_string()?;
            self.expect(b':', "`:` after a field name")?;
            let duplicate = |p: &Self, field: &str| {
                Err(ErrorKind::Json(format!(
                    "tensor {} has {field} twice",
                    quote(&tensor_name(p))
                )))
            };
            match self.fast_field(field_key) {
                Field::Dtype => {
                    if dtype.is_some() {
                        return duplicate(self, "dtype");
                    }
                    let value = self.scan_string()?;
                    let text = if value.escaped {
                        self.decode(value)
                    } else {
                        self.raw(value).to_string()
                    };
                    match Dtype::parse(&text) {
                        Some(parsed) => dtype = Some(parsed),
                        None => {
                            return Err(ErrorKind::UnknownDtype {
                                tensor: tensor_name(self),
                                dtype: text,
                            })
                        }
                    }
                }
                Field::Shape => {
                    if shape.is_some() {
                        return duplicate(self, "shape");
                    }
                    let start = self.shapes.len();
                    self.expect(b'[', "`[` opening a shape")?;
                    self.skip_ws();
                    if self.peek() == Some(b']') {
                        self.pos += 1;
                    } else {
                        loop {
                            let dim = self.integer()?;
                            self.shapes.push(dim);
                            if !self.next_or_close(b']', "`,` or `]` in a shape")? {
                                break;
                            }
                        }
                    }
                    let len = self.shapes.len() - start;
                    let start = u32::try_from(start).map_err(|_| too_large())?;
                    let len = u32::try_from(len).map_err(|_| too_large())?;
                    shape = Some((start, len));
                }
                Field::Offsets => {
                    if offsets.is_some() {
                        return duplicate(self, "data_offsets");
                    }
                    self.expect(b'[', "`[` opening data_offsets")?;
                    let begin = self.integer()?;
                    self.expect(b',', "`,` between the two data_offsets")?;
                    let end = self.integer()?;
                    self.expect(b']', "`]` closing data_offsets (exactly two numbers)")?;
                    offsets = Some([begin, end]);
                }
                Field::Other => self.skip_value(0)?,
            }
            more = self.next_or_close(b'}', "`,` or `}` in a tensor entry")?;
        }
        let missing = |p: &Self, field: &str| {
            ErrorKind::Json(format!("tensor {} has no {field}", quote(&tensor_name(p))))
        };
        let dtype = dtype.ok_or_else(|| missing(self, "dtype"))?;
        let (shape_start, shape_len) = shape.ok_or_else(|| missing(self, "shape"))?;
        let [begin, end] = offsets.ok_or_else(|| missing(self, "data_offsets"))?;
        Ok(TensorEntry {
            name,
            dtype,
            shape_start,
            shape_len,
            begin,
            end,
        })
    }

    /// A non-negative JSON integer (no sign, fraction or exponent) that fits in u64. (`-0`
    /// is no integer either: serde_json reads it as the float -0.0.)
    fn integer(&mut self) -> std::result::Result<u64, ErrorKind> {
        self.skip_ws();
        let start = self.pos;
        let mut value = 0u64;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            value = match value
                .checked_mul(10)
                .and_then(|v| v.checked_add(u64::from(b - b'0')))
            {
                Some(v) => v,
                None => return self.error("an integer that fits in 64 bits"),
            };
            self.pos += 1;
        }
        let digits = self.pos - start;
        if digits == 0 {
            return self.error("a non-negative integer");
        }
        if digits > 1 && self.text.get(start) == Some(&b'0') {
            self.pos = start;
            return self.error("an integer without leading zeros");
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return self.error("an integer (no fraction or exponent)");
        }
        Ok(value)
    }

    /// Skips (and validates) any JSON value.
    fn skip_value(&mut self, depth: usize) -> std::result::Result<(), ErrorKind> {
        if depth >= MAX_DEPTH {
            return self.error("less deeply nested JSON (recursion limit)");
        }
        self.skip_ws();
        match self.peek() {
            Some(b'"') => self.scan_string().map(|_| ()),
            Some(b'{') => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.scan_string()?;
                    self.expect(b':', "`:` after an object key")?;
                    self.skip_value(depth + 1)?;
                    if !self.next_or_close(b'}', "`,` or `}` in an object")? {
                        return Ok(());
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                self.skip_ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.next_or_close(b']', "`,` or `]` in an array")? {
                        return Ok(());
                    }
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.error("a JSON value"),
        }
    }

    fn literal(&mut self, word: &[u8]) -> std::result::Result<(), ErrorKind> {
        if self.text.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.error("true, false or null")
        }
    }

    /// Any JSON number.
    fn number(&mut self) -> std::result::Result<(), ErrorKind> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.error("a digit"),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.error("a digit after the decimal point");
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return self.error("a digit in the exponent");
            }
            self.digits();
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The position of the first byte at or after `from` that ends a run of plain string
/// characters: `"`, `\`, or a control character (`text.len()` when there is none).
/// Eight bytes at a time: the classic zero-byte and less-than tricks flag the lowest
/// matching byte of a word exactly.
fn special_from(text: &[u8], from: usize) -> usize {
    let mut pos = from;
    while let Some(chunk) = text.get(pos..pos + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let control = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
        let mask = zero(quote) | zero(backslash) | control;
        if mask != 0 {
            return pos + (mask.trailing_zeros() / 8) as usize;
        }
        pos += 8;
    }
    while let Some(&b) = text.get(pos) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return pos;
        }
        pos += 1;
    }
    pos
}

fn too_large() -> ErrorKind {
    ErrorKind::Json("header too large to index".into())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A safetensors file from a header JSON text and a data section of `data_len` zeros.
    pub fn file_bytes(json: &str, data_len: usize) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out.resize(out.len() + data_len, 0);
        out
    }

    pub fn parse(
        json: &str,
        data_len: usize,
    ) -> std::result::Result<Vec<(String, Vec<u64>)>, ErrorKind> {
        let header = Header::from_file_bytes(&file_bytes(json, data_len))?;
        Ok(header
            .tensors()
            .iter()
            .map(|t| (header.name(t).to_string(), header.shape(t).to_vec()))
            .collect())
    }

    const VALID: &str = r#"{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b\u002eweight":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"F4","shape":[3],"data_offsets":[32,34]},"empty":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]}}"#;

    #[test]
    fn valid_header_parses_with_shapes_metadata_and_escapes() {
        let header = Header::from_file_bytes(&file_bytes(VALID, 34)).unwrap();
        let t = header.tensors();
        assert_eq!(t.len(), 4);
        assert_eq!(header.name(&t[0]), "a.weight");
        assert!(matches!(t[0].name, Name::Span { .. }));
        assert_eq!(header.name(&t[1]), "b.weight");
        assert!(matches!(t[1].name, Name::Decoded(0)));
        assert_eq!(header.shape(&t[0]), &[2, 3]);
        assert_eq!(t[1].dtype, Dtype::BF16);
        assert_eq!(t[2].dtype, Dtype::F4);
        assert_eq!(header.metadata().unwrap(), vec![("format", "pt")]);
        assert_eq!(header.json_len(), VALID.len() as u64);
        assert_eq!(header.data_len(), 34);
    }

    #[test]
    fn whitespace_unknown_fields_and_escapes() {
        let json = " {\n \"x\\u00e9\\ud83d\\ude00\\n\" : { \"shape\" : [ 2 , 1 ] , \"extra\" : [ {\"a\": -1.5e3, \"b\": [true, false, null]} ], \"data_offsets\" : [ 0 , 2 ] , \"dtype\" : \"U8\" } } ";
        let parsed = parse(json, 2).unwrap();
        assert_eq!(parsed, vec![("xé😀\n".to_string(), vec![2, 1])]);
        let padded = format!("{VALID}      ");
        assert!(parse(&padded, 34).is_ok());
        assert_eq!(parse("{}", 0).unwrap(), vec![]);
        assert_eq!(
            parse(
                r#"{"s":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
                4
            )
            .unwrap()[0]
                .1,
            Vec::<u64>::new()
        );
    }

    #[test]
    fn short_file() {
        assert_eq!(
            Header::from_file_bytes(b"abc").unwrap_err(),
            ErrorKind::TooSmall { len: 3 }
        );
        assert_eq!(
            Header::from_file_bytes(b"").unwrap_err(),
            ErrorKind::TooSmall { len: 0 }
        );
    }

    #[test]
    fn header_beyond_file_and_too_large() {
        let mut bytes = 100u64.to_le_bytes().to_vec();
        bytes.extend_from_slice(b"{}");
        assert!(matches!(
            Header::from_file_bytes(&bytes),
            Err(ErrorKind::HeaderBeyondFile {
                header_len: 100,
                ..
            })
        ));
        let bytes = (MAX_HEADER_LEN + 1).to_le_bytes().to_vec();
        assert!(matches!(
            Header::from_file_bytes(&bytes),
            Err(ErrorKind::HeaderTooLarge { .. })
        ));
        let bytes = u64::MAX.to_le_bytes().to_vec();
        assert!(matches!(
            Header::from_file_bytes(&bytes),
            Err(ErrorKind::HeaderTooLarge { .. })
        ));
    }

    #[test]
    fn not_utf8() {
        let mut bytes = file_bytes("{\"ab\":1}", 0);
        bytes[10] = 0xff;
        assert!(matches!(
            Header::from_file_bytes(&bytes),
            Err(ErrorKind::NotUtf8 { offset: 2 })
        ));
    }

    #[test]
    fn invalid_json() {
        for json in [
            "",
            "{",
            "[]",
            "{\"a\":1}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[-0],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,5]}}",
            "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":tru}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":-}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1.}}",
            "{\"a\\x\":{}}",
            "{\"a\\ud800\":{}}",
            "{\"a\\udc00\":{}}",
            "{\"a\tb\":{}}",
            "{\"a\":{}",
            "{} x",
            "{}}",
            "{\"__metadata__\":{},\"__metadata__\":{}}",
        ] {
            let result = parse(json, 16);
            assert!(
                matches!(result, Err(ErrorKind::Json(_))),
                "{json}: {result:?}"
            );
        }
        let deep = format!("{{\"a\":{{\"x\":{}{}}}}}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(parse(&deep, 0), Err(ErrorKind::Json(_))));
    }

    #[test]
    fn special_bytes_are_found_exactly() {
        for len in 0..20 {
            for at in 0..=len {
                for special in [b'"', b'\\', 0x00, 0x1f, b'\n'] {
                    let mut text = vec![b'a'; len];
                    text.extend_from_slice(&[0xc3, 0xa9, 0x7f, b' ']);
                    if at < len {
                        text[at] = special;
                        assert_eq!(special_from(&text, 0), at, "{len} {at} {special}");
                    } else {
                        assert_eq!(special_from(&text, 0), text.len());
                    }
                }
            }
        }
        assert_eq!(special_from(b"ab\"c", 2), 2);
        assert_eq!(special_from(b"ab\"c", 3), 4);
        assert_eq!(special_from(b"ab", 5), 5);
    }

    #[test]
    fn json_errors_say_where() {
        let Err(ErrorKind::Json(reason)) = parse("{\"a\" 1}", 0) else {
            panic!()
        };
        assert_eq!(
            reason,
            "expected `:` after a tensor name at byte 5, found `1`"
        );
    }

    #[test]
    fn duplicate_names_are_errors_in_any_order() {
        let sorted = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert_eq!(
            parse(sorted, 2),
            Err(ErrorKind::DuplicateTensor { tensor: "a".into() })
        );
        let shuffled = r#"{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#;
        assert_eq!(
            parse(shuffled, 2),
            Err(ErrorKind::DuplicateTensor { tensor: "b".into() })
        );
        let escaped = r#"{"a.b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a.b":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        assert!(matches!(
            parse(escaped, 2),
            Err(ErrorKind::DuplicateTensor { .. })
        ));
    }

    #[test]
    fn unknown_dtype_is_typed() {
        let json = r#"{"x":{"dtype":"F99","shape":[1],"data_offsets":[0,1]}}"#;
        assert_eq!(
            parse(json, 1),
            Err(ErrorKind::UnknownDtype {
                tensor: "x".into(),
                dtype: "F99".into()
            })
        );
    }

    #[test]
    fn bad_metadata_is_typed() {
        for json in [
            r#"{"__metadata__":{"a":1}}"#,
            r#"{"__metadata__":[]}"#,
            r#"{"__metadata__":null}"#,
            r#"{"__metadata__":"x"}"#,
        ] {
            assert!(
                matches!(parse(json, 0), Err(ErrorKind::BadMetadata(_))),
                "{json}"
            );
        }
    }

    #[test]
    fn offsets_and_sizes() {
        let reversed = r#"{"x":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}"#;
        assert!(matches!(
            parse(reversed, 8),
            Err(ErrorKind::OffsetsReversed { .. })
        ));
        let beyond = r#"{"x":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}}"#;
        assert!(matches!(
            parse(beyond, 8),
            Err(ErrorKind::OffsetsBeyondData {
                end: 12,
                data_len: 8,
                ..
            })
        ));
        let size = r#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        assert_eq!(
            parse(size, 8),
            Err(ErrorKind::SizeMismatch {
                tensor: "x".into(),
                expected: 12,
                actual: 8
            })
        );
        let overflow =
            r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
        assert!(matches!(
            parse(overflow, 8),
            Err(ErrorKind::ShapeOverflow { .. })
        ));
        let overflow_bytes =
            r#"{"x":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}"#;
        assert!(matches!(
            parse(overflow_bytes, 8),
            Err(ErrorKind::ShapeOverflow { .. })
        ));
        let f6 = r#"{"x":{"dtype":"F6_E2M3","shape":[5],"data_offsets":[0,4]}}"#;
        assert!(parse(f6, 4).is_ok());
    }

    #[test]
    fn overlap_in_order_and_out_of_order() {
        let in_order = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
        assert!(matches!(parse(in_order, 8), Err(ErrorKind::Overlap { .. })));
        let shuffled = r#"{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"c":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#;
        assert!(matches!(parse(shuffled, 8), Err(ErrorKind::Overlap { .. })));
        let fine = r#"{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#;
        assert!(parse(fine, 8).is_ok());
    }

    #[test]
    fn read_from_disk_and_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        std::fs::write(&path, file_bytes(VALID, 34)).unwrap();
        let mut header = Header::read(&path).unwrap();
        assert_eq!(header.json_len(), VALID.len() as u64);
        assert_eq!(header.bytes_read(), 8 + VALID.len() as u64);
        assert_eq!(header.tensors().len(), 4);

        let mut json = String::from("{");
        for i in 0..20_000 {
            json.push_str(&format!(
                "\"t{i:05}\":{{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[{i},{}]}},",
                i + 1
            ));
        }
        json.pop();
        json.push('}');
        let big = dir.path().join("big.safetensors");
        std::fs::write(&big, file_bytes(&json, 20_000)).unwrap();
        header.read_from(&big).unwrap();
        assert_eq!(header.tensors().len(), 20_000);
        assert_eq!(header.name(&header.tensors()[19_999]), "t19999");
        header.read_from(&path).unwrap();
        assert_eq!(header.tensors().len(), 4);
        assert_eq!(header.name(&header.tensors()[1]), "b.weight");

        std::fs::write(&path, b"1234").unwrap();
        let err = header.read_from(&path).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooSmall { len: 4 });
        assert!(err.to_string().contains("m.safetensors: "), "{err}");
        assert!(header.tensors().is_empty());

        let mut bad = file_bytes("{\"\u{e9}\":1}", 0);
        bad[9] = 0xff;
        std::fs::write(&path, bad).unwrap();
        assert!(matches!(
            header.read_from(&path).unwrap_err().kind,
            ErrorKind::NotUtf8 { .. }
        ));
        header.read_from(&big).unwrap();
        assert_eq!(header.tensors().len(), 20_000);

        let err = Header::read(&dir.path().join("absent.safetensors")).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Io(_)));
        let err = Header::read(dir.path()).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Io(_)));
    }
}

#[cfg(test)]
mod properties {
    use super::tests::file_bytes;
    use super::*;
    use proptest::prelude::*;

    /// Invariants of every header the parser accepts.
    fn check_invariants(bytes: &[u8]) {
        let Ok(header) = Header::from_file_bytes(bytes) else {
            return;
        };
        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        let data_len = bytes.len() as u64 - 8 - header_len;
        assert_eq!(header.data_len(), data_len);
        let mut spans: Vec<(u64, u64)> = Vec::new();
        for tensor in header.tensors() {
            assert!(tensor.begin <= tensor.end);
            assert!(tensor.end <= data_len);
            let numel: u64 = header.shape(tensor).iter().product();
            assert_eq!(
                tensor.dtype.byte_len(numel),
                Some(tensor.end - tensor.begin)
            );
            if tensor.begin < tensor.end {
                spans.push((tensor.begin, tensor.end));
            }
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "overlap accepted: {pair:?}");
        }
    }

    /// The same header read by serde_json: `(name, dtype, shape, begin, end)` in order,
    /// or `None` when it is not a well-formed header object.
    #[allow(clippy::type_complexity)]
    fn oracle(json: &str) -> Option<Vec<(String, String, Vec<u64>, u64, u64)>> {
        // serde_json's Map is sorted; parse pairs in order instead.
        struct Pairs(Vec<(String, serde_json::Value)>);
        impl<'de> serde::Deserialize<'de> for Pairs {
            fn deserialize<D: serde::Deserializer<'de>>(
                d: D,
            ) -> std::result::Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = Pairs;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("object")
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut m: A,
                    ) -> std::result::Result<Pairs, A::Error> {
                        let mut out = Vec::new();
                        while let Some(e) = m.next_entry()? {
                            out.push(e);
                        }
                        Ok(Pairs(out))
                    }
                }
                d.deserialize_map(V)
            }
        }
        let Pairs(pairs) = serde_json::from_str(json).ok()?;
        let mut out = Vec::new();
        let mut seen_meta = false;
        for (name, value) in pairs {
            if name == "__metadata__" {
                if seen_meta || !value.as_object()?.values().all(|v| v.is_string()) {
                    return None;
                }
                seen_meta = true;
                continue;
            }
            if out
                .iter()
                .any(|e: &(String, String, Vec<u64>, u64, u64)| e.0 == name)
            {
                return None;
            }
            let obj = value.as_object()?;
            let dtype = obj.get("dtype")?.as_str()?.to_string();
            let shape = obj
                .get("shape")?
                .as_array()?
                .iter()
                .map(|v| v.as_u64())
                .collect::<Option<Vec<_>>>()?;
            let offsets = obj.get("data_offsets")?.as_array()?;
            if offsets.len() != 2 {
                return None;
            }
            out.push((
                name,
                dtype,
                shape,
                offsets[0].as_u64()?,
                offsets[1].as_u64()?,
            ));
        }
        Some(out)
    }

    fn entry() -> impl Strategy<Value = (String, String, Vec<u64>, u64)> {
        (
            "[a-z_.]{1,12}|[a-z\u{e9}\"\\\\/\n]{1,6}",
            prop_oneof![
                Just("F32"),
                Just("BF16"),
                Just("F4"),
                Just("F6_E3M2"),
                Just("U8"),
                Just("X")
            ],
            proptest::collection::vec(0u64..6, 0..4),
            0u64..4,
        )
            .prop_map(|(n, d, s, gap)| (n, d.to_string(), s, gap))
    }

    /// Plausible headers: mostly valid, sometimes with a wrong dtype, overlaps, escapes,
    /// extra fields, odd whitespace or duplicate names.
    fn header_json() -> impl Strategy<Value = (String, usize)> {
        (proptest::collection::vec(entry(), 0..6), any::<bool>(), any::<bool>()).prop_map(|(entries, spaced, extra)| {
            let ws = if spaced { " \n" } else { "" };
            let mut offset = 0u64;
            let mut parts = Vec::new();
            for (name, dtype, shape, gap) in entries {
                let numel: u64 = shape.iter().product();
                let bytes = Dtype::parse(&dtype).map_or(numel, |d| d.byte_len(numel).unwrap());
                let begin = offset.saturating_sub(gap % 2);
                let end = begin + bytes;
                offset = end + gap / 2;
                let extra = if extra { format!(",{ws}\"x\":{ws}[1.5e-3,{ws}{{\"k\":null}}]") } else { String::new() };
                parts.push(format!(
                    "{}{ws}:{ws}{{\"dtype\":{ws}\"{dtype}\",\"shape\":{shape:?}{extra},\"data_offsets\":[{begin},{ws}{end}]}}",
                    serde_json::to_string(&name).unwrap()
                ));
            }
            (format!("{ws}{{{ws}{}{ws}}}{ws}", parts.join(",")), offset as usize)
        })
    }

    /// Our parser and the serde_json oracle agree on well-formed input.
    fn agrees_with_oracle(json: &str, data: usize) {
        let ours = Header::from_file_bytes(&file_bytes(json, data));
        let Some(expected) = oracle(json) else {
            assert!(ours.is_err(), "accepted what serde_json rejects: {json:?}");
            return;
        };
        if let Ok(header) = ours {
            let got: Vec<_> = header
                .tensors()
                .iter()
                .map(|t| {
                    (
                        header.name(t).to_string(),
                        t.dtype.name().to_string(),
                        header.shape(t).to_vec(),
                        t.begin,
                        t.end,
                    )
                })
                .collect();
            assert_eq!(got, expected, "{json:?}");
        } else if expected.iter().all(|(_, d, ..)| Dtype::parse(d).is_some()) {
            // Rejected a well-formed header: only for offsets/sizes, never for syntax.
            assert!(
                !matches!(
                    ours,
                    Err(ErrorKind::Json(_)
                        | ErrorKind::UnknownDtype { .. }
                        | ErrorKind::BadMetadata(_))
                ),
                "{json:?}: {ours:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            check_invariants(&bytes);
        }

        #[test]
        fn random_json_after_a_valid_length_never_panics(json in ".{0,120}", data in 0usize..64) {
            check_invariants(&file_bytes(&json, data));
            agrees_with_oracle(&json, data);
        }

        #[test]
        fn generated_headers_match_serde_json((json, data) in header_json()) {
            check_invariants(&file_bytes(&json, data));
            agrees_with_oracle(&json, data);
        }

        #[test]
        fn mutated_headers_never_panic(
            (json, data) in header_json(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cut in any::<prop::sample::Index>(),
            truncate in any::<bool>(),
        ) {
            let mut bytes = file_bytes(&json, data);
            check_invariants(&bytes);
            for (index, value) in flips {
                if !bytes.is_empty() {
                    let i = index.index(bytes.len());
                    bytes[i] = value;
                }
            }
            check_invariants(&bytes);
            if let Some(text) = bytes.get(8..8 + json.len()).and_then(|b| std::str::from_utf8(b).ok()) {
                agrees_with_oracle(text, data);
            }
            if truncate && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
                check_invariants(&bytes);
            }
        }
    }
}
