//! Opening files that must be regular files, without ever blocking.
//!
//! Opening a FIFO for reading blocks until a writer appears, and a device may never end:
//! a named pipe given as a checkpoint file, a base index or a config (or reached
//! through a symlink) would hang the run. Files are opened non-blocking and their type is
//! checked on the open descriptor (no window between a check and the open), so anything
//! but a regular file is refused with an error that says what it is.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (following symlinks); anything else
/// is an `io::Error` of kind `InvalidInput` naming its type. Never blocks.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // O_NONBLOCK only changes opening FIFOs and devices; reads of a regular file
        // behave the same with it.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{}, not a regular file", describe_kind(&kind)),
    ))
}

/// Reads the whole of `path` if it is a regular file (see [`open_regular`]).
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut file = open_regular(path)?;
    let len = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// A whole-file read with a size limit: the bytes, or the size that was over the limit.
#[derive(Debug)]
pub enum Limited<T> {
    Within(T),
    TooLarge(u64),
}

/// Reads the whole of `path` if it is a regular file (see [`open_regular`]) of at most
/// `limit` bytes; a larger one is not read. Reads at most `limit + 1` bytes, so a file that
/// grows meanwhile cannot run away either.
pub fn read_limited(path: &Path, limit: u64) -> io::Result<Limited<Vec<u8>>> {
    use std::io::Read;
    let file = open_regular(path)?;
    let len = file.metadata()?.len();
    if len > limit {
        return Ok(Limited::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Ok(Limited::TooLarge(bytes.len() as u64));
    }
    Ok(Limited::Within(bytes))
}

/// Whether `path` exists and is something a blocking read could hang on (a FIFO, a
/// socket, a device), following symlinks; a missing path is not.
pub fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| !meta.is_file() && !meta.is_dir())
}

fn describe_kind(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    "a special file"
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_fifo_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        mkfifo(&fifo);
        let err = open_regular(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("named pipe"), "{err}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(open_regular(&link).is_err());
        assert!(is_special(&link));
    }

    #[test]
    fn regular_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read_regular(&file).unwrap(), b"abc");
        assert!(!is_special(&file) && !is_special(dir.path()));
        assert!(!is_special(&dir.path().join("missing")));
        let err = open_regular(dir.path()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn a_limited_read_reports_the_size_of_a_file_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a");
        std::fs::write(&file, b"abcd").unwrap();
        assert!(matches!(read_limited(&file, 4).unwrap(), Limited::Within(b) if b == b"abcd"));
        assert!(matches!(
            read_limited(&file, 3).unwrap(),
            Limited::TooLarge(4)
        ));
        assert!(read_limited(dir.path(), 10).is_err());
    }
}
