//! PK004: the zero-initialised factor of every LoRA module is still all zeros, so each
//! update B·A is zero and the adapter is a no-op: it was never trained, or was saved wrong.
//! The factor is `lora_B` for Linear and Conv layers and `lora_embedding_A` for embeddings
//! (PEFT initialises those the other way round). Reads only those tensors' bytes, through
//! a memory map of the adapter file, and stops at the first non-zero one.
//!
//! For floating-point dtypes -0.0 counts as zero (only the sign bits may be set); for
//! integer, boolean and unsigned-exponent types zero means every byte zero. The FNUZ
//! fp8 formats have no negative zero (0x80 is their NaN), so they count bytes too.

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use futures::StreamExt;
use memmap2::Mmap;
use serde_json::json;

use super::modules::{Module, NONE};
use super::report::Finding;
use super::Context;
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::regular_file::open_regular;
use crate::safetensors::Dtype;
use crate::storage::{self, Location, RemoteFile};

/// The PK004 finding, when every zero-initialised factor is all zeros. Stops at the first
/// non-zero tensor, so a trained adapter costs a few bytes of reading.
pub(super) fn check(ctx: &Context<'_>) -> Result<Vec<Finding>> {
    let modules = ctx.modules;
    let with_factor: Vec<&Module> = modules
        .iter()
        .filter(|m| m.zero_initialised().next().is_some())
        .collect();
    if with_factor.is_empty() {
        return Ok(Vec::new());
    }
    let data_start = ctx.header.data_start();
    let tensors = with_factor
        .iter()
        .flat_map(|module| module.zero_initialised())
        .filter_map(|tensor| {
            let entry = ctx.header.tensors().get(tensor as usize)?;
            let start = data_start.saturating_add(entry.begin);
            Some((start..data_start.saturating_add(entry.end), entry.dtype))
        });
    let any_non_zero = match &ctx.paths.weights {
        Location::Local(path) => {
            let mapped = MappedFile::open(path)?;
            let mut found = false;
            for (range, dtype) in tensors {
                if !is_all_zero(mapped.bytes(path, range.start, range.end)?, dtype) {
                    found = true;
                    break;
                }
            }
            found
        }
        Location::Remote(file) => {
            let tensors: Vec<(Range<u64>, Dtype)> = tensors.collect();
            storage::wait(
                file,
                any_non_zero_remote(file, ctx.prefix.as_ref(), &tensors),
            )?
        }
    };
    if any_non_zero {
        return Ok(Vec::new());
    }
    let n = with_factor.len();
    let embeddings = with_factor.iter().filter(|m| m.emb_a != NONE).count();
    let factor = match (embeddings, n - embeddings) {
        (0, _) => "lora_B",
        (_, 0) => "lora_embedding_A",
        _ => "lora_B / lora_embedding_A",
    };
    Ok(vec![Finding {
        code: "PK004",
        message: format!(
            "every {factor} tensor of the adapter is all zeros ({n} modules): PEFT initialises that factor to \
             zero ({}), so the LoRA update B·A is zero, the adapter is a no-op and the model's output equals the \
             base model's. It was never trained, or the save went wrong (e.g. saved before training, or from a \
             ZeRO-3 shard without gathering): re-save from the trained model",
            match factor {
                "lora_B" => "lora_B of Linear and Conv layers",
                "lora_embedding_A" => "lora_embedding_A of embeddings, the other way round from Linear layers",
                _ => "lora_B of Linear layers, lora_embedding_A of embeddings",
            }
        ),
        details: json!({"modules": n, "zero_modules": n, "factor": factor}),
    }])
}

/// Tensors closer than this in a remote file are read in one request (the bytes between
/// them, usually the small lora_A of the same module, are read and ignored).
const MERGE_GAP: u64 = 4096;
/// The largest such shared request.
const MAX_SPAN: u64 = 8 << 20;
/// Requests of one adapter's zero check in flight at once.
const IN_FLIGHT: usize = 8;

/// Whether any of `tensors` of a remote file has a non-zero value. The bytes already
/// fetched with the header are used first; then the first remaining tensor alone (a
/// trained adapter stops there, after one small request); then the rest, neighbours
/// merged into shared requests ([`MERGE_GAP`], [`MAX_SPAN`]), [`IN_FLIGHT`] at a time in
/// file order, stopping at the first non-zero tensor.
async fn any_non_zero_remote(
    file: &RemoteFile,
    prefix: Option<&Bytes>,
    tensors: &[TensorBytes],
) -> Result<bool> {
    let fetched = prefix.map_or(0, |bytes| bytes.len() as u64);
    let mut remaining: Vec<&TensorBytes> = Vec::new();
    for tensor in tensors {
        let (range, dtype) = tensor;
        match prefix {
            Some(bytes) if range.end <= fetched => {
                let slice = bytes
                    .get(range.start as usize..range.end as usize)
                    .unwrap_or(&[]);
                if !is_all_zero(slice, *dtype) {
                    return Ok(true);
                }
            }
            _ => remaining.push(tensor),
        }
    }
    remaining.sort_by_key(|(range, _)| (range.start, range.end));
    let Some(((first_range, first_dtype), rest)) = remaining.split_first() else {
        return Ok(false);
    };
    if !is_all_zero(&file.fetch_range(first_range.clone()).await?, *first_dtype) {
        return Ok(true);
    }
    let spans = merge_spans(rest);
    let mut reads = futures::stream::iter(spans.iter().map(|(span, members)| async move {
        file.fetch_range(span.clone())
            .await
            .map(|bytes| (span.start, members, bytes))
    }))
    .buffered(IN_FLIGHT);
    while let Some(read) = reads.next().await {
        let (span_start, members, bytes) = read?;
        for (range, dtype) in members.iter() {
            let at = (range.start - span_start) as usize..(range.end - span_start) as usize;
            if !is_all_zero(bytes.get(at).unwrap_or(&[]), *dtype) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// A tensor's bytes in the file and its dtype.
type TensorBytes = (Range<u64>, Dtype);
/// One request: a span of the file and the tensors inside it.
type Span<'a> = (Range<u64>, Vec<&'a TensorBytes>);

/// Tensors (sorted by offset) grouped into requests.
fn merge_spans<'a>(tensors: &[&'a TensorBytes]) -> Vec<Span<'a>> {
    let mut spans: Vec<Span<'a>> = Vec::new();
    for &tensor in tensors {
        let range = &tensor.0;
        match spans.last_mut() {
            Some((span, members))
                if range.start <= span.end.saturating_add(MERGE_GAP)
                    && range.end.max(span.end) - span.start <= MAX_SPAN =>
            {
                span.end = span.end.max(range.end);
                members.push(tensor);
            }
            _ => spans.push((range.clone(), vec![tensor])),
        }
    }
    spans
}

/// Bytes OR-ed together before each early-exit test.
const BLOCK: usize = 4096;

/// A read-only map of a whole file.
struct MappedFile {
    map: Mmap,
}

impl MappedFile {
    fn open(path: &Path) -> Result<Self> {
        let file = open_regular(path).map_err(|err| CheckpointError::io(path, &err))?;
        // SAFETY: the map is read-only and private to this call; peftfix never writes the
        // adapter it checks. Another process truncating the file while it is scanned could
        // fault the read, as with any mmap-based reader (safetensors itself maps files).
        let map = unsafe { Mmap::map(&file) }.map_err(|err| CheckpointError::io(path, &err))?;
        Ok(Self { map })
    }

    /// The file bytes `[start, end)`; an error when the file is now shorter than that.
    fn bytes(&self, path: &Path, start: u64, end: u64) -> Result<&[u8]> {
        let range = usize::try_from(start).ok().zip(usize::try_from(end).ok());
        range
            .and_then(|(start, end)| self.map.get(start..end))
            .ok_or_else(|| {
                CheckpointError::new(
                    path,
                    ErrorKind::Io(format!(
                        "file shrank while it was read: bytes {start}..{end} are gone"
                    )),
                )
            })
    }
}

/// A little-endian 8-byte mask of the bits that must be zero for the value to be zero.
fn mask(dtype: Dtype) -> u64 {
    match dtype {
        Dtype::F16 | Dtype::BF16 => 0x7FFF_7FFF_7FFF_7FFF,
        Dtype::F32 | Dtype::C64 => 0x7FFF_FFFF_7FFF_FFFF,
        Dtype::F64 => 0x7FFF_FFFF_FFFF_FFFF,
        Dtype::F8E4M3 | Dtype::F8E5M2 => 0x7F7F_7F7F_7F7F_7F7F,
        // Two E2M1 values per byte, a sign bit on top of each nibble.
        Dtype::F4 => 0x7777_7777_7777_7777,
        Dtype::Bool
        | Dtype::U8
        | Dtype::I8
        | Dtype::U16
        | Dtype::I16
        | Dtype::U32
        | Dtype::I32
        | Dtype::U64
        | Dtype::I64
        | Dtype::F8E8M0
        | Dtype::F8E4M3Fnuz
        | Dtype::F8E5M2Fnuz
        | Dtype::F6E2M3
        | Dtype::F6E3M2 => u64::MAX,
    }
}

/// Whether `bytes` (whole elements of `dtype`, starting on an element boundary) are all zero.
fn is_all_zero(bytes: &[u8], dtype: Dtype) -> bool {
    let mask = mask(dtype);
    let mask_bytes = mask.to_le_bytes();
    for block in bytes.chunks(BLOCK) {
        let mut acc = 0u64;
        let words = block.chunks_exact(8);
        let tail = words.remainder();
        for word in words {
            let mut arr = [0u8; 8];
            arr.copy_from_slice(word);
            acc |= u64::from_le_bytes(arr);
        }
        if acc & mask != 0 {
            return false;
        }
        // Block starts are multiples of 8 bytes, so a tail byte's position in the mask
        // is its position in the word.
        for (byte, m) in tail.iter().zip(mask_bytes.iter()) {
            if byte & m != 0 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checkpoint::LoadAs;
    use crate::test_support::{fixture, qv_tensors, CONFIG_QV};

    #[test]
    fn neighbouring_tensors_share_a_request_and_distant_ones_do_not() {
        let tensors: Vec<(Range<u64>, Dtype)> = vec![
            (0..64, Dtype::F32),
            (128..192, Dtype::F32), // 64 bytes after the first: merged
            (192 + 5000..192 + 5064, Dtype::F32), // 5000 bytes after: a new request
            (MAX_SPAN..MAX_SPAN + 8, Dtype::F32), // would make the span too long: a new request
        ];
        let refs: Vec<&(Range<u64>, Dtype)> = tensors.iter().collect();
        let spans = merge_spans(&refs);
        let shapes: Vec<(Range<u64>, usize)> = spans
            .iter()
            .map(|(span, members)| (span.clone(), members.len()))
            .collect();
        assert_eq!(
            shapes,
            [(0..192, 2), (5192..5256, 1), (MAX_SPAN..MAX_SPAN + 8, 1)]
        );
    }

    #[test]
    fn zero_lora_b_is_pk004() {
        let fx = fixture(LoadAs::CausalLm);
        let report = fx.check("zero", &qv_tensors("model.", 0), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK004"]);
        assert_eq!(
            report.findings[0].details,
            json!({"modules": 4, "zero_modules": 4, "factor": "lora_B"})
        );
        // Negative zeros are zeros; one non-zero B anywhere means a live adapter.
        let mut t = qv_tensors("model.", 0);
        t[1].3 = 0x80; // f32 bytes 80 80 80 80 are not -0.0...
        let report = fx.check("nonzero", &t, Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn zeros_and_negative_zeros() {
        assert!(is_all_zero(&[0; 4099], Dtype::U8));
        assert!(is_all_zero(&[], Dtype::F32));
        let neg_zero_bf16: Vec<u8> = (0..1001).flat_map(|_| [0x00, 0x80]).collect();
        assert!(is_all_zero(&neg_zero_bf16, Dtype::BF16));
        assert!(is_all_zero(&neg_zero_bf16, Dtype::F16));
        assert!(!is_all_zero(&neg_zero_bf16, Dtype::I16));
        let neg_zero_f32: Vec<u8> = (0..7).flat_map(|_| (-0.0f32).to_le_bytes()).collect();
        assert!(is_all_zero(&neg_zero_f32, Dtype::F32));
        let neg_zero_f64: Vec<u8> = (0..3).flat_map(|_| (-0.0f64).to_le_bytes()).collect();
        assert!(is_all_zero(&neg_zero_f64, Dtype::F64));
        assert!(is_all_zero(&[0x80, 0x00, 0x80], Dtype::F8E4M3));
        assert!(
            !is_all_zero(&[0x80], Dtype::F8E4M3Fnuz),
            "0x80 is NaN in FNUZ"
        );
        assert!(is_all_zero(&[0x88, 0x08], Dtype::F4));
    }

    #[test]
    fn any_non_zero_value_is_found_wherever_it_is() {
        for len in [1usize, 7, 8, 9, 4095, 4096, 4097, 10_000] {
            for at in [0, len / 2, len - 1] {
                let mut bytes = vec![0u8; len];
                bytes[at] = 1;
                assert!(!is_all_zero(&bytes, Dtype::U8), "len {len} at {at}");
            }
        }
        let mut f32s: Vec<u8> = vec![0; 4 * 2000];
        f32s[4 * 1500..4 * 1501].copy_from_slice(&1e-30f32.to_le_bytes());
        assert!(!is_all_zero(&f32s, Dtype::F32));
        let mut bf16 = vec![0u8; 2 * 3];
        bf16[5] = 0x3f;
        assert!(!is_all_zero(&bf16, Dtype::BF16));
    }

    #[test]
    fn mapped_file_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, [1u8, 2, 3, 4]).unwrap();
        let mapped = MappedFile::open(&path).unwrap();
        assert_eq!(mapped.bytes(&path, 1, 3).unwrap(), &[2, 3]);
        assert!(mapped.bytes(&path, 2, 9).is_err());
        assert!(mapped.bytes(&path, 3, 2).is_err());
    }
}
