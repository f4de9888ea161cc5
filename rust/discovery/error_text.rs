//! Turns I/O and walker errors into the `(path, reason)` pairs that peftfix reports.
//!
//! Discovery never raises: every problem becomes a line the user can act on, so the
//! reasons are short, human sentences without Rust or errno jargon.

use std::io;
use std::path::PathBuf;

/// `io::Error`'s text without the trailing " (os error N)": the number means nothing to a user.
pub fn describe_io_error(err: &io::Error) -> String {
    let text = err.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Splits a walker error into the path it concerns (the innermost one known) and a reason.
pub fn describe_walk_error(err: &ignore::Error) -> (Option<PathBuf>, String) {
    match err {
        ignore::Error::WithPath { path, err } => {
            let (inner_path, reason) = describe_walk_error(err);
            (inner_path.or_else(|| Some(path.clone())), reason)
        }
        ignore::Error::WithDepth { err, .. } => describe_walk_error(err),
        ignore::Error::WithLineNumber { line, err } => {
            let (path, reason) = describe_walk_error(err);
            (path, format!("line {line}: {reason}"))
        }
        ignore::Error::Loop { ancestor, child } => (
            Some(child.clone()),
            format!(
                "symlink loop: it leads back to its ancestor {}",
                ancestor.display()
            ),
        ),
        ignore::Error::Io(io_err) => (None, describe_io_error(io_err)),
        ignore::Error::Partial(errors) => {
            let mut path = None;
            let mut reasons = Vec::with_capacity(errors.len());
            for error in errors {
                let (error_path, reason) = describe_walk_error(error);
                path = path.or(error_path);
                reasons.push(reason);
            }
            (path, reasons.join("; "))
        }
        other => (None, other.to_string()),
    }
}

/// Whether the error says "this path does not exist" (a dangling symlink, or a file
/// deleted while the walk was running).
pub fn is_not_found(err: &ignore::Error) -> bool {
    err.io_error()
        .is_some_and(|io_err| io_err.kind() == io::ErrorKind::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_error_number_is_dropped() {
        let err = io::Error::from_raw_os_error(2);
        assert_eq!(describe_io_error(&err), "No such file or directory");
    }

    #[test]
    fn innermost_path_and_line_are_kept() {
        let err = ignore::Error::WithPath {
            path: PathBuf::from("outer"),
            err: Box::new(ignore::Error::WithLineNumber {
                line: 3,
                err: Box::new(ignore::Error::Io(io::Error::from_raw_os_error(13))),
            }),
        };
        let (path, reason) = describe_walk_error(&err);
        assert_eq!(path, Some(PathBuf::from("outer")));
        assert_eq!(reason, "line 3: Permission denied");
    }

    #[test]
    fn loop_names_the_child_and_the_ancestor() {
        let err = ignore::Error::WithDepth {
            depth: 2,
            err: Box::new(ignore::Error::Loop {
                ancestor: PathBuf::from("root"),
                child: PathBuf::from("root/sub/link"),
            }),
        };
        let (path, reason) = describe_walk_error(&err);
        assert_eq!(path, Some(PathBuf::from("root/sub/link")));
        assert!(reason.contains("symlink loop"), "{reason}");
        assert!(reason.contains("root"), "{reason}");
    }
}
