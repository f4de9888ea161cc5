//! Where checkpoint files live: a local path, or an object behind a URL (`s3://`, `gs://`,
//! `az://`, `http(s)://`) read with ranged requests.
//!
//! A [`Location`] names a file or a directory either way; `join` and `parent` work on both,
//! so the checkpoint code finds an adapter's config or a base's shards the same way. Local
//! files are read as before (see `regular_file`); remote ones through `remote`, which
//! fetches only what it is asked for: a small file whole (a config, an index), the first
//! bytes plus the header of a safetensors file, the byte ranges of given tensors.
//!
//! - `remote`: the object stores (one per bucket or host, built from the standard
//!   environment variables), the reads, the error text;
//! - `runtime`: the tokio runtime the reads run on, and the time limit of every operation;
//! - `auth`: bearer tokens for HTTP origins (the Hugging Face Hub).

pub mod auth;
pub mod remote;
pub mod runtime;

use std::path::{Path, PathBuf};

use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::regular_file::{read_limited, Limited};
use crate::safetensors::Header;
pub use remote::RemoteFile;

/// A checkpoint file or directory.
#[derive(Debug, Clone)]
pub enum Location {
    Local(PathBuf),
    Remote(RemoteFile),
}

/// Whether `text` is a URL of a store peftfix reads remotely (and not a local path).
pub fn is_url(text: &str) -> bool {
    remote::scheme_of(text).is_some()
}

impl Location {
    /// A URL of a supported scheme is remote; anything else is a local path. A malformed
    /// URL, or a store that cannot be configured (missing account name...), is an error
    /// naming the URL.
    pub fn parse(text: &Path) -> Result<Self> {
        match text.to_str() {
            Some(url) if is_url(url) => Ok(Self::Remote(RemoteFile::open(url)?)),
            _ => Ok(Self::Local(text.to_path_buf())),
        }
    }

    pub fn local(&self) -> Option<&Path> {
        match self {
            Self::Local(path) => Some(path),
            Self::Remote(_) => None,
        }
    }

    /// `name` (which may hold `/`) inside this directory.
    pub fn join(&self, name: &str) -> Self {
        match self {
            Self::Local(path) => Self::Local(path.join(name)),
            Self::Remote(file) => Self::Remote(file.join(name)),
        }
    }

    /// The directory holding this file.
    pub fn parent(&self) -> Self {
        match self {
            Self::Local(path) => Self::Local(path.parent().unwrap_or(Path::new("")).to_path_buf()),
            Self::Remote(file) => Self::Remote(file.parent()),
        }
    }

    /// The last component of the name.
    pub fn file_name(&self) -> String {
        match self {
            Self::Local(path) => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default(),
            Self::Remote(file) => file.file_name().to_string(),
        }
    }

    /// Whether the name ends in `.{extension}`.
    pub fn has_extension(&self, extension: &str) -> bool {
        let name = self.file_name();
        name.len() > extension.len() + 1
            && name.ends_with(extension)
            && name.as_bytes()[name.len() - extension.len() - 1] == b'.'
    }

    /// The path errors name: the local path, or the URL.
    pub fn error_path(&self) -> PathBuf {
        match self {
            Self::Local(path) => path.clone(),
            Self::Remote(file) => PathBuf::from(file.url()),
        }
    }

    /// As shown to the user.
    pub fn display(&self) -> String {
        match self {
            Self::Local(path) => path.display().to_string(),
            Self::Remote(file) => file.url().to_string(),
        }
    }
}

/// Runs the remote operation `future` on `file` within the time limit; running out of
/// time is an error naming the file.
pub fn wait<T>(
    file: &RemoteFile,
    future: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    runtime::block_on(future)
        .map_err(|reason| CheckpointError::new(file.url(), ErrorKind::Io(reason)))?
}

/// Reads the header of the safetensors file at `location` into `header` (reusing its
/// buffers). For a remote file, also every byte fetched from its start, which the
/// checks reading tensor bytes use before asking for more.
pub fn read_header_into(location: &Location, header: &mut Header) -> Result<Option<bytes::Bytes>> {
    match location {
        Location::Local(path) => header.read_from(path).map(|()| None),
        Location::Remote(file) => {
            let fetched = wait(file, file.fetch_header())?.ok_or_else(|| {
                CheckpointError::new(file.url(), ErrorKind::Io(remote::NOT_FOUND.into()))
            })?;
            header
                .fill_from(fetched.json, fetched.file_len)
                .map_err(|kind| CheckpointError::new(file.url(), kind))?;
            Ok(Some(fetched.prefix))
        }
    }
}

/// The whole of a small file at `location` (at most `limit` bytes), local or remote.
pub fn read_small(location: &Location, limit: u64) -> Result<Vec<u8>> {
    let over = |len: u64| {
        CheckpointError::new(
            location.error_path(),
            ErrorKind::Io(format!(
                "{len} bytes is over the {limit}-byte limit for this file"
            )),
        )
    };
    match location {
        Location::Local(path) => match read_limited(path, limit) {
            Ok(Limited::Within(bytes)) => Ok(bytes),
            Ok(Limited::TooLarge(len)) => Err(over(len)),
            Err(err) => Err(CheckpointError::io(path, &err)),
        },
        Location::Remote(file) => match wait(file, file.fetch_small(limit))? {
            Some(Limited::Within((bytes, _))) => Ok(bytes.to_vec()),
            Some(Limited::TooLarge(len)) => Err(over(len)),
            None => Err(CheckpointError::new(
                file.url(),
                ErrorKind::Io(remote::NOT_FOUND.into()),
            )),
        },
    }
}
