//! Unit tests of the header reader: valid headers, each typed error, reuse of buffers.

use super::header::Name;
use super::parser::scanner::special_from;
use super::{Dtype, Header, MAX_HEADER_LEN};
use crate::checkpoint::error::ErrorKind;
use crate::test_support::file_bytes;

fn parse(json: &str, data_len: usize) -> std::result::Result<Vec<(String, Vec<u64>)>, ErrorKind> {
    let header = Header::from_file_bytes(&file_bytes(json, data_len))?;
    Ok(header
        .tensors()
        .iter()
        .map(|t| (header.name(t).to_string(), header.shape(t).to_vec()))
        .collect())
}

const VALID: &str = r#"{"__metadata__":{"format":"pt"},"a.weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b\u002eweight":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]},"c":{"dtype":"F4","shape":[4],"data_offsets":[32,34]},"empty":{"dtype":"F16","shape":[0,5],"data_offsets":[0,0]}}"#;

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
fn a_duplicate_name_keeps_its_last_entry_as_the_library_does() {
    let sorted = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    assert_eq!(parse(sorted, 2).unwrap(), [("a".to_string(), vec![2])]);
    // The first entry's bytes are then covered by nothing: a gap, as the library finds.
    let shadowed = r#"{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]},"b":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#;
    assert!(matches!(parse(shadowed, 2), Err(ErrorKind::Gap { .. })));
}

#[test]
fn unsorted_names_keep_every_unique_one_and_the_last_of_a_repeat() {
    // Many names out of order (the duplicate check's table path), unique: all kept.
    let names: Vec<String> = (0..300).rev().map(|n| format!("layers.{n}.w")).collect();
    let entries: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            format!(
                r#""{name}":{{"dtype":"U8","shape":[1],"data_offsets":[{i},{}]}}"#,
                i + 1
            )
        })
        .collect();
    let json = format!("{{{}}}", entries.join(","));
    let parsed = parse(&json, 300).unwrap();
    assert_eq!(parsed.len(), 300);
    assert_eq!(parsed[0].0, "layers.299.w");
    // The same with one name repeated at the end (zero bytes): its first entry leaves a gap.
    let repeated = format!(
        "{{{},\"layers.5.w\":{{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[300,300]}}}}",
        entries.join(",")
    );
    assert!(matches!(parse(&repeated, 300), Err(ErrorKind::Gap { .. })));
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
fn null_metadata_means_none() {
    let header = Header::from_file_bytes(&file_bytes(r#"{"__metadata__":null}"#, 0)).unwrap();
    assert!(header.metadata().is_none() && header.tensors().is_empty());
    assert!(parse(r#"{"__metadata__":null,"__metadata__":{}}"#, 0).is_err());
}

#[test]
fn bad_metadata_is_typed() {
    for json in [
        r#"{"__metadata__":{"a":1}}"#,
        r#"{"__metadata__":[]}"#,
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
    let overflow = r#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
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
    let f6 = r#"{"x":{"dtype":"F6_E2M3","shape":[4],"data_offsets":[0,3]}}"#;
    assert!(parse(f6, 3).is_ok());
}

#[test]
fn overlap_in_order_and_out_of_order() {
    let in_order = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
    assert!(matches!(parse(in_order, 8), Err(ErrorKind::Overlap { .. })));
    let shuffled = r#"{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"c":{"dtype":"U8","shape":[2],"data_offsets":[3,5]}}"#;
    assert!(matches!(parse(shuffled, 8), Err(ErrorKind::Overlap { .. })));
    let fine = r#"{"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]},"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[4,4]}}"#;
    assert!(parse(fine, 8).is_ok());
    // An empty tensor inside another's bytes breaks the tiling for the library too.
    let inside = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"z":{"dtype":"U8","shape":[0],"data_offsets":[2,2]}}"#;
    assert!(parse(inside, 4).is_err());
}

#[test]
fn gaps_trailing_bytes_and_sub_byte_slices_are_rejected() {
    let gap = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    assert!(matches!(
        parse(gap, 6),
        Err(ErrorKind::Gap {
            begin: 4,
            covered: 2,
            ..
        })
    ));
    let trailing = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    assert_eq!(
        parse(trailing, 3),
        Err(ErrorKind::TrailingData {
            covered: 2,
            data_len: 3
        })
    );
    assert!(matches!(
        parse("{}", 1),
        Err(ErrorKind::TrailingData { .. })
    ));
    let odd_f4 = r#"{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
    assert!(matches!(
        parse(odd_f4, 2),
        Err(ErrorKind::SubByteSlice { .. })
    ));
    let even_f4 = r#"{"x":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}}"#;
    assert!(parse(even_f4, 2).is_ok());
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
