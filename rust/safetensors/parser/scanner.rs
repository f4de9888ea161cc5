//! The lexical layer of the header reader: whitespace, strings (escapes validated,
//! decoded only when present), integers, and any JSON value skipped and validated.

use super::{too_large, Parser, Scanned};
use crate::checkpoint::error::ErrorKind;
use crate::safetensors::header::Name;

/// Deepest JSON nesting accepted inside ignored values (serde_json's limit).
const MAX_DEPTH: usize = 128;

impl Parser<'_, '_> {
    pub(super) fn error<T>(&self, what: &str) -> std::result::Result<T, ErrorKind> {
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

    pub(super) fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    pub(super) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    /// Skips whitespace and consumes `byte`.
    pub(super) fn expect(&mut self, byte: u8, what: &str) -> std::result::Result<(), ErrorKind> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            self.error(what)
        }
    }

    /// After an element: `,` (true, more follow) or the closing byte (false).
    pub(super) fn next_or_close(
        &mut self,
        close: u8,
        what: &str,
    ) -> std::result::Result<bool, ErrorKind> {
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
    pub(super) fn scan_string(&mut self) -> std::result::Result<Scanned, ErrorKind> {
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
    pub(super) fn raw(&self, s: Scanned) -> &str {
        self.text
            .get(s.start..s.end)
            .and_then(|bytes| std::str::from_utf8(bytes).ok())
            .unwrap_or("")
    }

    /// Decodes a scanned string with escapes (already validated).
    pub(super) fn decode(&self, s: Scanned) -> String {
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
    pub(super) fn name(&mut self, s: Scanned) -> std::result::Result<Name, ErrorKind> {
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
    pub(super) fn equals(&self, s: Scanned, literal: &str) -> bool {
        if s.escaped {
            self.decode(s) == literal
        } else {
            self.text.get(s.start..s.end) == Some(literal.as_bytes())
        }
    }
    /// A non-negative JSON integer (no sign, fraction or exponent) that fits in u64. (`-0`
    /// is no integer either: serde_json reads it as the float -0.0.)
    pub(super) fn integer(&mut self) -> std::result::Result<u64, ErrorKind> {
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
    pub(super) fn skip_value(&mut self, depth: usize) -> std::result::Result<(), ErrorKind> {
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
pub(in crate::safetensors) fn special_from(text: &[u8], from: usize) -> usize {
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
