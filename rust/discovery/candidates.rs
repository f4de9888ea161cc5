//! Discovery and pre-filter in one pass: the files worth parsing.

use std::path::PathBuf;

use super::prefilter::{mentions, Needles};
use super::walk::{walk, PathError};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Candidates {
    /// Files that mention a needle (or could not be read), sorted.
    pub files: Vec<PathBuf>,
    /// Files found but skipped because they mention no needle.
    pub skipped: usize,
    pub errors: Vec<PathError>,
}

/// Walks `paths` like [`walk`], then keeps the files that mention a needle. Explicitly
/// named files go through the filter too: a file that cannot contain a finding needs
/// no parse, however it was named.
pub fn find_candidates(
    paths: &[PathBuf],
    exclude: &[String],
    respect_gitignore: bool,
    needles: &Needles,
) -> Candidates {
    let discovered = walk(paths, exclude, respect_gitignore);
    let relevant = mentions(&discovered.files, needles);
    let total = discovered.files.len();
    let files: Vec<PathBuf> = discovered
        .files
        .into_iter()
        .zip(relevant)
        .filter_map(|(file, mentioned)| mentioned.then_some(file))
        .collect();
    Candidates {
        skipped: total - files.len(),
        files,
        errors: discovered.errors,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn keeps_mentions_counts_skips_and_passes_errors_through() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("train.py"),
            "from peft import get_peft_model",
        )
        .unwrap();
        fs::write(dir.path().join("util.py"), "import os").unwrap();
        fs::write(dir.path().join("other.py"), "def f(): pass").unwrap();
        let named = dir.path().join("named_script");
        fs::write(&named, "print('no match')").unwrap();
        let missing = dir.path().join("missing.py");
        let needles = Needles::new(&[b"peft".as_slice()]);
        let found = find_candidates(
            &[dir.path().to_path_buf(), named, missing.clone()],
            &[],
            true,
            &needles,
        );
        assert_eq!(found.files, [dir.path().join("train.py")]);
        assert_eq!(found.skipped, 3);
        assert_eq!(found.errors.len(), 1);
        assert_eq!(found.errors[0].0, missing);
    }
}
