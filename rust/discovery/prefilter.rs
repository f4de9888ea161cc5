//! The cheap content pre-filter: does a file mention any of a few byte strings?
//!
//! Most Python files in a repository never touch peft or transformers; finding that out
//! with a substring search costs microseconds, parsing them with libcst costs
//! milliseconds. The Python side only parses the files this filter lets through.

use std::path::PathBuf;

use memchr::memmem::Finder;
use rayon::prelude::*;

use crate::regular_file::read_regular;

/// Compiled needles, searched with SIMD-accelerated substring search.
pub struct Needles {
    finders: Vec<Finder<'static>>,
}

impl Needles {
    pub fn new<N: AsRef<[u8]>>(needles: &[N]) -> Self {
        let finders = needles
            .iter()
            .map(|needle| Finder::new(needle.as_ref()).into_owned())
            .collect();
        Needles { finders }
    }

    /// Whether `haystack` contains any needle (false when there are no needles).
    pub fn found_in(&self, haystack: &[u8]) -> bool {
        self.finders
            .iter()
            .any(|finder| finder.find(haystack).is_some())
    }
}

/// For each path, in parallel, whether the file mentions a needle.
///
/// A file that cannot be read counts as a mention: the Python side then opens it itself
/// and reports the error under the file's name, instead of the filter hiding it.
pub fn mentions(paths: &[PathBuf], needles: &Needles) -> Vec<bool> {
    paths
        .par_iter()
        .map(|path| match read_regular(path) {
            Ok(bytes) => needles.found_in(&bytes) || needs_decoding(&bytes),
            Err(_) => true,
        })
        .collect()
}

/// Whether the needles could be hidden by the file's encoding: a UTF-16/UTF-32 byte-order
/// mark, or a PEP 263 coding cookie in the first two lines (the needles are ASCII, which
/// such files may not store as ASCII bytes). Those files go to the Python side, which
/// decodes them as CPython would, or reports why it cannot.
fn needs_decoding(bytes: &[u8]) -> bool {
    const WIDE_BOMS: [&[u8]; 4] = [
        b"\xff\xfe",
        b"\xfe\xff",
        b"\x00\x00\xfe\xff",
        b"\xff\xfe\x00\x00",
    ];
    if WIDE_BOMS.iter().any(|bom| bytes.starts_with(bom)) {
        return true;
    }
    bytes
        .split(|&byte| byte == b'\n')
        .take(2)
        .any(|line| memchr::memmem::find(line, b"coding").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn peft_needles() -> Needles {
        Needles::new(&[b"peft".as_slice(), b"transformers".as_slice()])
    }

    #[test]
    fn mentions_true_false_and_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let uses_peft = dir.path().join("train.py");
        let unrelated = dir.path().join("util.py");
        let uses_transformers = dir.path().join("model.py");
        fs::write(&uses_peft, "from peft import LoraConfig\n").unwrap();
        fs::write(&unrelated, "import os\nprint(os.getcwd())\n").unwrap();
        fs::write(&uses_transformers, "x = 1\nimport transformers").unwrap();
        let missing = dir.path().join("missing.py");
        let directory = dir.path().to_path_buf();
        let paths = vec![uses_peft, unrelated, uses_transformers, missing, directory];
        assert_eq!(
            mentions(&paths, &peft_needles()),
            [true, false, true, true, true]
        );
    }

    #[test]
    fn empty_file_and_no_needles() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.py");
        fs::write(&empty, "").unwrap();
        assert_eq!(
            mentions(std::slice::from_ref(&empty), &peft_needles()),
            [false]
        );
        let none: [&[u8]; 0] = [];
        let peft = dir.path().join("p.py");
        fs::write(&peft, "peft").unwrap();
        assert_eq!(mentions(&[peft], &Needles::new(&none)), [false]);
    }

    #[test]
    fn wide_encodings_and_coding_cookies_go_to_python() {
        let dir = tempfile::tempdir().unwrap();
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain("import peft\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let cases: [(&str, &[u8], bool); 4] = [
            ("u16.py", &utf16, true),
            ("cookie.py", b"# -*- coding: utf-7 -*-\nx = 1\n", true),
            ("late.py", b"x = 1\ny = 2\n# coding: latin-1\n", false),
            ("plain.py", b"x = 1\n", false),
        ];
        for (name, bytes, expected) in cases {
            let path = dir.path().join(name);
            fs::write(&path, bytes).unwrap();
            assert_eq!(mentions(&[path], &peft_needles()), [expected], "{name}");
        }
    }

    #[test]
    fn needle_across_any_position_in_a_large_file() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.py");
        let mut content = vec![b'#'; 3 * 1024 * 1024];
        content.extend_from_slice(b"\nimport peft\n");
        fs::write(&big, &content).unwrap();
        assert_eq!(mentions(&[big], &peft_needles()), [true]);
    }

    #[test]
    fn order_of_results_matches_order_of_paths() {
        let dir = tempfile::tempdir().unwrap();
        let paths: Vec<PathBuf> = (0..200)
            .map(|i| {
                let path = dir.path().join(format!("f{i}.py"));
                let body = if i % 3 == 0 {
                    "import peft"
                } else {
                    "import os"
                };
                fs::write(&path, body).unwrap();
                path
            })
            .collect();
        let expected: Vec<bool> = (0..200).map(|i| i % 3 == 0).collect();
        assert_eq!(mentions(&paths, &peft_needles()), expected);
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file_counts_as_a_mention() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked.py");
        fs::write(&locked, "import os").unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let privileged = fs::read(&locked).is_ok(); // root reads anything
        let result = mentions(std::slice::from_ref(&locked), &peft_needles());
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o644)).unwrap();
        // Unprivileged: unreadable, so a mention. As root the read succeeds and the
        // content ("import os") decides.
        assert_eq!(result, [!privileged]);
    }
}
