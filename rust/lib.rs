//! `peftfix._native`: the Python bindings of peftfix's native core.
//!
//! This file holds the module tree and the bindings only: it converts arguments and
//! results and releases the GIL. The work lives in one folder per product:
//!
//! ```text
//! discovery/     `peftfix check`: which Python files a list of paths stands for
//!                (walk, exclude), which of them mention peft/transformers at all
//!                (prefilter), both in one call (candidates), errors as (path, reason)
//!                pairs a user can read (error_text)
//! safetensors/   a safetensors header read and validated, never the tensor data
//!                (dtype, header, parser + parser/scanner; tests, proptests)
//! checkpoint/    `peftfix keys` (docs/keys.md): the base module index (base_index,
//!                module_trie), the adapter's files, keys and config (adapter_path,
//!                adapter_keys, adapter_config), the prefix rewrite (prefix_rewrite)
//!                and `--write-remapped` (remap), the "path: reason" error (error, PK000)
//! matcher/       every check of one adapter against a base: the grouped modules
//!                (modules), one file per check (pk001 ... pk006), the result (report);
//!                mod.rs runs them in report order
//! storage/      where checkpoint files live: a local path or a URL (s3://, gs://, az://,
//!               http(s)://) read with ranged requests (remote), on one tokio runtime
//!               with a time limit (runtime), bearer tokens per origin (auth)
//! regular_file.rs  opening files that must be regular files, never blocking on a FIFO
//! test_support.rs  the files and fixtures every Rust test shares
//! ```

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict, PyFloat, PyList, PyString};

pub mod checkpoint;
pub mod discovery;
pub mod matcher;
pub mod regular_file;
pub mod safetensors;
pub mod storage;
#[cfg(test)]
mod test_support;

use discovery::prefilter::Needles;
use discovery::{candidates, prefilter, walk};
use matcher::report;

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

create_exception!(
    peftfix._native,
    CheckpointError,
    PyValueError,
    "A checkpoint file that cannot be used (PK000); the message is \"path: reason\"."
);

/// A `CheckpointError` whose message is "path: reason", with `.path` and `.reason`.
fn checkpoint_err(py: Python<'_>, err: checkpoint::error::CheckpointError) -> PyErr {
    let py_err = CheckpointError::new_err(err.to_string());
    let value = py_err.value(py);
    // Setting attributes on a fresh exception instance cannot fail in practice; if it
    // did, the message still carries both parts.
    let _ = value.setattr("path", err.path.as_os_str());
    let _ = value.setattr("reason", err.reason());
    py_err
}

fn parse_load_as(load_as: &str) -> PyResult<checkpoint::LoadAs> {
    checkpoint::LoadAs::parse(load_as).ok_or_else(|| {
        PyValueError::new_err(format!(
            "load_as must be \"causal-lm\" or \"base-model\", not {load_as:?}"
        ))
    })
}

/// A JSON value as the Python object `json.loads` would give.
fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => u.into_pyobject(py)?.into_any(),
            (None, Some(i)) => i.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (key, item) in map {
                dict.set_item(key, json_to_py(py, item)?)?;
            }
            dict.into_any()
        }
    })
}

/// The report dict of docs/keys.md "Output".
fn report_to_py<'py>(py: Python<'py>, report: &report::Report) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("adapter", &report.adapter)?;
    dict.set_item("base", &report.base)?;
    let findings = PyList::empty(py);
    for finding in &report.findings {
        let item = PyDict::new(py);
        item.set_item("code", finding.code)?;
        item.set_item("message", &finding.message)?;
        item.set_item("details", json_to_py(py, &finding.details)?)?;
        findings.append(item)?;
    }
    dict.set_item("findings", findings)?;
    let counts = PyDict::new(py);
    for (key, value) in report.counts.fields() {
        counts.set_item(key, value)?;
    }
    dict.set_item("counts", counts)?;
    match &report.rewrite {
        Some(rewrite) => {
            let item = PyDict::new(py);
            item.set_item("strip", &rewrite.strip)?;
            item.set_item("add", &rewrite.add)?;
            item.set_item("coverage", rewrite.coverage)?;
            dict.set_item("rewrite", item)?;
        }
        None => dict.set_item("rewrite", py.None())?,
    }
    dict.set_item("seconds", report.seconds)?;
    Ok(dict)
}

/// A path or URL from Python as a [`storage::Location`].
fn location(py: Python<'_>, path: &std::path::Path) -> PyResult<storage::Location> {
    storage::Location::parse(path).map_err(|err| checkpoint_err(py, err))
}

fn index_cache(cache_dir: Option<PathBuf>) -> Option<checkpoint::index_cache::IndexCache> {
    cache_dir.map(checkpoint::index_cache::IndexCache::new)
}

/// check_adapter(adapter, base, load_as="causal-lm", cache_dir=None) -> dict
///
/// Opens `base`, checks `adapter` against it; raises CheckpointError on an unreadable file.
/// Either may be a local path or a URL (s3://, gs://, az://, http(s)://).
#[pyfunction]
#[pyo3(name = "check_adapter", signature = (adapter, base, load_as = "causal-lm", cache_dir = None))]
fn check_adapter_py<'py>(
    py: Python<'py>,
    adapter: PathBuf,
    base: PathBuf,
    load_as: &str,
    cache_dir: Option<PathBuf>,
) -> PyResult<Bound<'py, PyDict>> {
    let load_as = parse_load_as(load_as)?;
    let (adapter, base) = (location(py, &adapter)?, location(py, &base)?);
    let cache = index_cache(cache_dir);
    let report = py
        .detach(|| matcher::check_with_base(&adapter, &base, load_as, cache.as_ref()))
        .map_err(|err| checkpoint_err(py, err))?;
    report_to_py(py, &report)
}

/// scan_headers(paths) -> int
///
/// Reads and validates the header of every local file, in parallel, keeping nothing: the
/// total number of tensors. The bare header scan the checks are measured against; raises
/// CheckpointError for the first unreadable file.
#[pyfunction]
#[pyo3(name = "scan_headers")]
fn scan_headers_py(py: Python<'_>, paths: Vec<PathBuf>) -> PyResult<usize> {
    use rayon::prelude::*;
    py.detach(|| {
        paths
            .par_iter()
            .map_init(safetensors::Header::default, |header, path| {
                header.read_from(path).map(|()| header.tensors().len())
            })
            .try_reduce(|| 0, |a, b| Ok(a + b))
    })
    .map_err(|err| checkpoint_err(py, err))
}

/// read_small(path, limit) -> bytes
///
/// A small file (a config) whole, local or remote; CheckpointError when it is missing,
/// unreadable, or over `limit` bytes.
#[pyfunction]
#[pyo3(name = "read_small")]
fn read_small_py(py: Python<'_>, path: PathBuf, limit: u64) -> PyResult<Vec<u8>> {
    let file = location(py, &path)?;
    py.detach(|| storage::read_small(&file, limit))
        .map_err(|err| checkpoint_err(py, err))
}

/// set_http_token(origin, token): send `Authorization: Bearer token` to that origin only
/// (`scheme://host[:port]`); None stops it. The Hugging Face Hub endpoint's token.
#[pyfunction]
#[pyo3(name = "set_http_token")]
fn set_http_token_py(origin: &str, token: Option<&str>) {
    storage::auth::set_token(origin, token);
}

/// BaseIndex(path, load_as="causal-lm"): a base checkpoint indexed once, checked many times.
#[pyclass(name = "BaseIndex", module = "peftfix._native", frozen)]
struct PyBaseIndex {
    inner: Arc<checkpoint::BaseIndex>,
}

#[pymethods]
impl PyBaseIndex {
    #[new]
    #[pyo3(signature = (path, load_as = "causal-lm", cache_dir = None))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        load_as: &str,
        cache_dir: Option<PathBuf>,
    ) -> PyResult<Self> {
        let load_as = parse_load_as(load_as)?;
        let base = location(py, &path)?;
        let cache = index_cache(cache_dir);
        let index = py
            .detach(|| checkpoint::BaseIndex::open_at(&base, load_as, cache.as_ref()))
            .map_err(|err| checkpoint_err(py, err))?;
        Ok(Self {
            inner: Arc::new(index),
        })
    }

    /// check(adapter) -> dict; raises CheckpointError on an unreadable adapter.
    fn check<'py>(&self, py: Python<'py>, adapter: PathBuf) -> PyResult<Bound<'py, PyDict>> {
        let index = Arc::clone(&self.inner);
        let adapter = location(py, &adapter)?;
        let report = py
            .detach(|| matcher::check_at(&index, &adapter))
            .map_err(|err| checkpoint_err(py, err))?;
        report_to_py(py, &report)
    }

    /// check_many(adapters) -> list[dict], in parallel; an unreadable adapter gives a PK000 report.
    fn check_many<'py>(
        &self,
        py: Python<'py>,
        adapters: Vec<PathBuf>,
    ) -> PyResult<Bound<'py, PyList>> {
        let index = Arc::clone(&self.inner);
        // A URL that cannot even be parsed fails the batch, as an unreadable adapter does;
        // the Python layer then checks each on its own.
        let adapters = adapters
            .iter()
            .map(|adapter| location(py, adapter))
            .collect::<PyResult<Vec<_>>>()?;
        let reports: Vec<report::Report> = py.detach(|| matcher::check_many(&index, &adapters));
        let list = PyList::empty(py);
        for report in &reports {
            list.append(report_to_py(py, report)?)?;
        }
        Ok(list)
    }

    #[getter]
    fn tensor_count(&self) -> usize {
        self.inner.tensor_count
    }

    #[getter]
    fn shard_count(&self) -> usize {
        self.inner.shard_count
    }

    #[getter]
    fn header_bytes(&self) -> u64 {
        self.inner.header_bytes
    }

    #[getter]
    fn base_model_prefix(&self) -> &str {
        &self.inner.base_model_prefix
    }

    #[getter]
    fn load_as(&self) -> &'static str {
        self.inner.load_as.name()
    }

    #[getter]
    fn path(&self) -> String {
        self.inner.source.clone()
    }

    /// Whether the shard headers came from the index cache (no shard was read).
    #[getter(from_cache)]
    fn read_from_cache(&self) -> bool {
        self.inner.from_cache
    }

    /// to_bytes() -> bytes: the index in a form `base_index_from_bytes` builds again, in this
    /// or another process (what pickling, and so Ray's object store, uses).
    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let index = Arc::clone(&self.inner);
        let bytes = py.detach(move || index.to_bytes());
        PyBytes::new(py, &bytes)
    }

    /// Pickled as its bytes, rebuilt by the module's `base_index_from_bytes`.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyBytes>,))> {
        let rebuild = py
            .import("peftfix._native")?
            .getattr("base_index_from_bytes")?;
        Ok((rebuild, (self.to_bytes(py),)))
    }

    fn __repr__(&self) -> String {
        format!(
            "BaseIndex({:?}, load_as={:?}: {} tensors in {} shards)",
            self.inner.source,
            self.inner.load_as.name(),
            self.inner.tensor_count,
            self.inner.shard_count
        )
    }
}

/// base_index_from_bytes(data) -> BaseIndex
///
/// The index `BaseIndex.to_bytes()` wrote, every header validated again; ValueError for
/// bytes that are not one (truncated, corrupt, or from another peftfix version).
#[pyfunction]
#[pyo3(name = "base_index_from_bytes")]
fn base_index_from_bytes_py(py: Python<'_>, data: &[u8]) -> PyResult<PyBaseIndex> {
    let data = data.to_vec(); // the validation runs without the GIL, on bytes of its own
    let index = py
        .detach(move || checkpoint::BaseIndex::from_bytes(&data))
        .map_err(PyValueError::new_err)?;
    Ok(PyBaseIndex {
        inner: Arc::new(index),
    })
}

/// write_remapped(adapter, out, strip, add) -> int
///
/// Writes the adapter with its keys rewritten (tensor bytes identical); returns the tensor count.
#[pyfunction]
#[pyo3(name = "write_remapped")]
fn write_remapped_py(
    py: Python<'_>,
    adapter: PathBuf,
    out: PathBuf,
    strip: &str,
    add: &str,
) -> PyResult<u64> {
    let (strip, add) = (strip.to_string(), add.to_string());
    py.detach(|| checkpoint::remap::write_remapped(&adapter, &out, &strip, &add))
        .map_err(|err| checkpoint_err(py, err))
}

type HeaderRow = (String, &'static str, Vec<u64>, u64, u64);

/// read_header(path) -> list[(name, dtype, shape, begin, end)]
///
/// The validated header of one safetensors file, in file order.
#[pyfunction]
#[pyo3(name = "read_header")]
fn read_header_py(py: Python<'_>, path: PathBuf) -> PyResult<Vec<HeaderRow>> {
    let file = location(py, &path)?;
    py.detach(|| {
        let mut header = safetensors::Header::default();
        storage::read_header_into(&file, &mut header)?;
        Ok(header
            .tensors()
            .iter()
            .map(|t| {
                (
                    header.name(t).to_string(),
                    t.dtype.name(),
                    header.shape(t).to_vec(),
                    t.begin,
                    t.end,
                )
            })
            .collect())
    })
    .map_err(|err| checkpoint_err(py, err))
}

#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", env!("CARGO_PKG_VERSION"))?;
    module.add_function(wrap_pyfunction!(walk_py, module)?)?;
    module.add_function(wrap_pyfunction!(mentions_py, module)?)?;
    module.add_function(wrap_pyfunction!(find_candidates_py, module)?)?;
    module.add("CheckpointError", module.py().get_type::<CheckpointError>())?;
    module.add_function(wrap_pyfunction!(check_adapter_py, module)?)?;
    module.add_function(wrap_pyfunction!(write_remapped_py, module)?)?;
    module.add_function(wrap_pyfunction!(read_header_py, module)?)?;
    module.add_function(wrap_pyfunction!(set_http_token_py, module)?)?;
    module.add_function(wrap_pyfunction!(read_small_py, module)?)?;
    module.add_function(wrap_pyfunction!(scan_headers_py, module)?)?;
    module.add_function(wrap_pyfunction!(base_index_from_bytes_py, module)?)?;
    module.add_class::<PyBaseIndex>()?;
    Ok(())
}
