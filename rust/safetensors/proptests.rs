//! Property tests of the header reader: whatever the bytes, it never panics, every header
//! it accepts is consistent, and on well-formed JSON it agrees with serde_json.

use std::fmt;

use proptest::prelude::*;

use super::{Dtype, Header};
use crate::checkpoint::error::ErrorKind;
use crate::test_support::file_bytes;

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

/// The same header read by serde_json: `(name, dtype, shape, begin, end)` in order (a
/// repeated name kept at its last place),
/// or `None` when it is not a well-formed header object.
#[allow(clippy::type_complexity)]
fn oracle(json: &str) -> Option<Vec<(String, String, Vec<u64>, u64, u64)>> {
    // serde_json's Map is sorted; parse pairs in order instead.
    struct Pairs(Vec<(String, serde_json::Value)>);
    impl<'de> serde::Deserialize<'de> for Pairs {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
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
    let mut out: Vec<(String, String, Vec<u64>, u64, u64)> = Vec::new();
    let mut seen_meta = false;
    for (name, value) in pairs {
        if name == "__metadata__" {
            if seen_meta || !value.as_object()?.values().all(|v| v.is_string()) {
                return None;
            }
            seen_meta = true;
            continue;
        }
        // A repeated name: the later entry replaces the earlier one, as a JSON map read
        // by serde does in the safetensors library. Each entry is still read as a tensor
        // first, so a shadowed entry with an unknown dtype fails the file there too.
        if let Some(at) = out.iter().position(|e| e.0 == name) {
            Dtype::parse(&out[at].1)?;
            out.remove(at);
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

/// Found by `mutated_headers_never_panic`: a name listed twice, the first entry empty and
/// the second covering the data. The library keeps the second, and so does the oracle.
#[test]
fn a_shadowed_empty_entry_agrees_with_the_oracle() {
    let json = r#"{"_":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"_":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#;
    agrees_with_oracle(json, 4);
    let header = Header::from_file_bytes(&file_bytes(json, 4)).unwrap();
    assert_eq!(header.tensors().len(), 1);
    assert_eq!((header.tensors()[0].begin, header.tensors()[0].end), (0, 4));
}
