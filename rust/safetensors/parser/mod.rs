//! The strict, single-pass reader of the header JSON: the grammar of the header object,
//! its `__metadata__` and its tensor entries, with a fast path for entries written the
//! way safetensors writes them. The lexical layer (strings, numbers, skipped values) is
//! in `scanner`.

pub(super) mod scanner;

use super::header::{Name, TensorEntry};
use super::Dtype;
use crate::checkpoint::error::{quote, ErrorKind};

/// Parses the header JSON `text` into `tensors` and `metadata`. Names are spans of
/// `text`, or entries of `decoded` when they had escapes; shapes go into `shapes`.
pub(super) fn parse(
    text: &[u8],
    decoded: &mut Vec<String>,
    shapes: &mut Vec<u64>,
    tensors: &mut Vec<TensorEntry>,
    metadata: &mut Option<Vec<(Name, Name)>>,
) -> std::result::Result<(), ErrorKind> {
    let mut parser = Parser {
        text,
        pos: 0,
        decoded,
        shapes,
    };
    parser.header(tensors, metadata)
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
            let mut seen_metadata = false;
            loop {
                let key = self.scan_string()?;
                self.expect(b':', "`:` after a tensor name")?;
                if self.equals(key, "__metadata__") {
                    if seen_metadata {
                        return Err(ErrorKind::Json("__metadata__ appears twice".into()));
                    }
                    seen_metadata = true;
                    *metadata = self.metadata()?;
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

    /// `__metadata__`: an object of strings, or `null` (no metadata, as the safetensors
    /// library reads it).
    fn metadata(&mut self) -> std::result::Result<Option<Vec<(Name, Name)>>, ErrorKind> {
        self.skip_ws();
        if self.text.get(self.pos..self.pos + 4) == Some(b"null".as_slice()) {
            self.pos += 4;
            return Ok(None);
        }
        self.metadata_object().map(Some)
    }

    fn metadata_object(&mut self) -> std::result::Result<Vec<(Name, Name)>, ErrorKind> {
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
}

/// A header whose positions or counts overflow the `u32` fields that keep [`Name`] and
/// [`TensorEntry`] small.
fn too_large() -> ErrorKind {
    ErrorKind::Json("header too large to index".into())
}
