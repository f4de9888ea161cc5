//! The element types of the safetensors format: names, widths and byte lengths.

use std::fmt;

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

/// Elements of a tensor of `shape` (1 for a scalar); `None` when the product overflows,
/// as a hostile header can make it.
pub fn numel(shape: &[u64]) -> Option<u64> {
    shape
        .iter()
        .try_fold(1u64, |acc, &dim| acc.checked_mul(dim))
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
