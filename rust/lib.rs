//! `peftfix._native`: the Python bindings of peftfix's native core.
//!
//! This file only converts arguments and results and releases the GIL; the work lives
//! in one module per job:
//! - `walk`: which files a list of paths stands for (parallel, gitignore-aware);
//! - `exclude`: default excluded directories and the user's `exclude` globs;
//! - `prefilter`: whether a file mentions peft/transformers at all;
//! - `candidates`: walk + pre-filter in one call;
//! - `error_text`: errors as `(path, reason)` pairs a user can read.

use std::ffi::OsString;
use std::path::PathBuf;

use pyo3::prelude::*;

pub mod candidates;
pub mod error_text;
pub mod exclude;
pub mod prefilter;
pub mod walk;

use prefilter::Needles;

/// Paths go back to Python as `str` (not `pathlib.Path`, PyO3's default for `PathBuf`);
/// undecodable bytes survive as surrogate escapes, like `os.fsdecode`.
type PyPathErrors = Vec<(OsString, String)>;

fn into_os_strings(paths: Vec<PathBuf>) -> Vec<OsString> {
    paths.into_iter().map(PathBuf::into_os_string).collect()
}

fn into_py_errors(errors: Vec<walk::PathError>) -> PyPathErrors {
    errors
        .into_iter()
        .map(|(path, reason)| (path.into_os_string(), reason))
        .collect()
}

/// walk(paths, exclude=(), respect_gitignore=True) -> (files, errors)
///
/// Python files under `paths`, sorted and deduplicated, and `(path, reason)` errors.
#[pyfunction]
#[pyo3(name = "walk", signature = (paths, exclude = Vec::new(), respect_gitignore = true))]
fn walk_py(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    exclude: Vec<String>,
    respect_gitignore: bool,
) -> (Vec<OsString>, PyPathErrors) {
    let found = py.detach(|| walk::walk(&paths, &exclude, respect_gitignore));
    (into_os_strings(found.files), into_py_errors(found.errors))
}

/// mentions(paths, needles) -> list[bool]
///
/// For each file, whether its bytes contain any needle; unreadable files yield True.
#[pyfunction]
#[pyo3(name = "mentions")]
fn mentions_py(py: Python<'_>, paths: Vec<PathBuf>, needles: Vec<Vec<u8>>) -> Vec<bool> {
    py.detach(|| prefilter::mentions(&paths, &Needles::new(&needles)))
}

/// find_candidates(paths, exclude=(), respect_gitignore=True, *, needles) -> (files, skipped, errors)
///
/// `walk` then `mentions` in one call: the files worth parsing.
#[pyfunction]
#[pyo3(
    name = "find_candidates",
    signature = (paths, exclude = Vec::new(), respect_gitignore = true, *, needles)
)]
fn find_candidates_py(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    exclude: Vec<String>,
    respect_gitignore: bool,
    needles: Vec<Vec<u8>>,
) -> (Vec<OsString>, usize, PyPathErrors) {
    let found = py.detach(|| {
        candidates::find_candidates(&paths, &exclude, respect_gitignore, &Needles::new(&needles))
    });
    (
        into_os_strings(found.files),
        found.skipped,
        into_py_errors(found.errors),
    )
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(walk_py, module)?)?;
    module.add_function(wrap_pyfunction!(mentions_py, module)?)?;
    module.add_function(wrap_pyfunction!(find_candidates_py, module)?)?;
    Ok(())
}
