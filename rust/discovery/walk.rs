//! File discovery: the Python files that a list of command-line paths stands for.
//!
//! Semantics follow Ruff: a path naming a file is always checked, whatever its name; a
//! directory is walked recursively (in parallel), honouring `.gitignore` / `.ignore`
//! even outside a git repository, skipping hidden entries, the default excluded
//! directories and the user's `exclude` patterns, and keeping `*.py` files and Jupyter
//! notebooks (`*.ipynb`, checked as the program their code cells make).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use ignore::{DirEntry, ParallelVisitor, ParallelVisitorBuilder, WalkBuilder, WalkState};

use super::error_text::{describe_io_error, describe_walk_error, is_not_found};
use super::exclude::{EntryPaths, ExcludeMatcher};
use crate::regular_file::is_special;

/// A `(path, reason)` pair: something that could not be looked at, and why.
pub type PathError = (PathBuf, String);

/// What discovery found: files sorted and deduplicated, errors sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub files: Vec<PathBuf>,
    pub errors: Vec<PathError>,
}

/// Finds the Python files under `paths`. Never panics on bad input: missing paths,
/// unreadable directories, symlink loops and invalid patterns come back as errors.
pub fn walk(paths: &[PathBuf], exclude: &[String], respect_gitignore: bool) -> Discovered {
    let (matcher, mut errors) = ExcludeMatcher::new(exclude);
    let matcher = Arc::new(matcher);
    let mut files = Vec::new();
    for path in paths {
        // `metadata` follows symlinks: a link to a directory is walked, a link to a
        // file is checked, and a link loop fails here with ELOOP.
        match std::fs::metadata(path) {
            Err(err) => errors.push((path.clone(), describe_io_error(&err))),
            Ok(meta) if meta.is_dir() => {
                let found = walk_directory(path, &matcher, respect_gitignore);
                files.extend(found.files);
                errors.extend(found.errors);
            }
            Ok(meta) if meta.is_file() => files.push(path.clone()),
            // A FIFO or device would block or never end when read.
            Ok(_) => errors.push((path.clone(), "not a regular file or directory".to_string())),
        }
    }
    let mut files: Vec<PathBuf> = files
        .iter()
        .map(|file| without_dot_components(file))
        .collect();
    sort_paths(&mut files);
    files.dedup();
    let mut errors: Vec<PathError> = errors
        .into_iter()
        .map(|(path, reason)| (without_dot_components(&path), reason))
        .collect();
    errors.sort_by(|a, b| {
        path_bytes(&a.0)
            .cmp(path_bytes(&b.0))
            .then_with(|| a.1.cmp(&b.1))
    });
    errors.dedup();
    Discovered { files, errors }
}

/// The ignore files the walker reads in a directory it enters (and in the root's
/// ancestors). It reads them with a blocking open, so one that is a FIFO would hang the
/// walk: such a directory is reported and not walked.
const IGNORE_FILES: [&str; 3] = [".gitignore", ".ignore", ".git/info/exclude"];

fn special_ignore_file(dir: &Path) -> Option<PathBuf> {
    IGNORE_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| is_special(path))
}

fn blocked_by(ignore_file: PathBuf) -> PathError {
    let reason = "not a regular file (a named pipe or device): its directory was not checked, \
                  since reading it as an ignore file would block"
        .to_string();
    (ignore_file, reason)
}

fn walk_directory(
    root: &Path,
    matcher: &Arc<ExcludeMatcher>,
    respect_gitignore: bool,
) -> Discovered {
    if respect_gitignore {
        let absolute = lexically_absolute(root);
        if let Some(special) = absolute.ancestors().find_map(special_ignore_file) {
            return Discovered {
                files: Vec::new(),
                errors: vec![blocked_by(special)],
            };
        }
    }
    let blocked: Arc<Mutex<Vec<PathError>>> = Arc::default();
    let mut builder = WalkBuilder::new(root);
    builder
        // `.gitignore`, `.ignore`, `.git/info/exclude`, the global gitignore and those of
        // parent directories, all together on or off.
        .standard_filters(respect_gitignore)
        // Without this, the ignore crate only reads `.gitignore` inside a git repository;
        // Ruff honours it in any directory, so a fresh checkout or an unpacked sdist
        // behaves the same.
        .require_git(false)
        .hidden(true)
        // Following links lets the walker notice a link back to an ancestor and report
        // it as a loop, instead of skipping linked directories silently.
        .follow_links(true);

    let filter_root = root.to_path_buf();
    let absolute_root = lexically_absolute(root);
    let filter_matcher = Arc::clone(matcher);
    let filter_blocked = Arc::clone(&blocked);
    // Filtering here (rather than in the visitor) keeps excluded directories from being
    // descended into at all. The root itself is never excluded: it was asked for.
    builder.filter_entry(move |entry| {
        if entry.depth() == 0 {
            return true;
        }
        if respect_gitignore && entry.file_type().is_some_and(|kind| kind.is_dir()) {
            if let Some(special) = special_ignore_file(entry.path()) {
                let mut blocked = filter_blocked
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                blocked.push(blocked_by(special));
                return false;
            }
        }
        let relative = entry
            .path()
            .strip_prefix(&filter_root)
            .unwrap_or(entry.path());
        let walked = lexically_normal(entry.path());
        let absolute = absolute_root.join(relative);
        !filter_matcher.is_excluded(&EntryPaths {
            relative,
            walked: &walked,
            absolute: &absolute,
        })
    });

    let shared = Arc::new(Mutex::new(Discovered::default()));
    builder.build_parallel().visit(&mut CollectorBuilder {
        shared: Arc::clone(&shared),
    });
    // Every collector has been dropped (and merged) by the time `visit` returns.
    let mut found = std::mem::take(&mut *shared.lock().unwrap_or_else(PoisonError::into_inner));
    found
        .errors
        .append(&mut blocked.lock().unwrap_or_else(PoisonError::into_inner));
    found
}

/// Gives each walker thread its own [`Collector`], so threads only synchronise once,
/// when they finish.
struct CollectorBuilder {
    shared: Arc<Mutex<Discovered>>,
}

impl<'s> ParallelVisitorBuilder<'s> for CollectorBuilder {
    fn build(&mut self) -> Box<dyn ParallelVisitor + 's> {
        Box::new(Collector {
            found: Discovered::default(),
            shared: Arc::clone(&self.shared),
        })
    }
}

struct Collector {
    found: Discovered,
    shared: Arc<Mutex<Discovered>>,
}

impl ParallelVisitor for Collector {
    fn visit(&mut self, entry: Result<DirEntry, ignore::Error>) -> WalkState {
        match entry {
            Ok(entry) => {
                // `entry.error()` carries problems with an ignore file (say an invalid
                // glob line in a .gitignore). git itself skips such lines silently, so
                // they are not worth failing a lint run over.
                let is_file = entry.file_type().is_some_and(|kind| kind.is_file());
                if is_file && is_python_source(entry.path()) {
                    self.found.files.push(entry.into_path());
                }
            }
            Err(err) => {
                let (path, reason) = describe_walk_error(&err);
                let path = path.unwrap_or_default();
                // A dangling symlink (or a file deleted mid-walk) only matters if it
                // would have been checked; elsewhere it is noise.
                if is_python_source(&path) || !is_not_found(&err) {
                    self.found.errors.push((path, reason));
                }
            }
        }
        WalkState::Continue
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        shared.files.append(&mut self.found.files);
        shared.errors.append(&mut self.found.errors);
    }
}

fn is_python_source(path: &Path) -> bool {
    path.extension()
        .is_some_and(|extension| extension == "py" || extension == "ipynb")
}

/// `./src/./a.py` -> `src/a.py`, so `peftfix .` and `peftfix a.py` name a file the same
/// way. `..` is kept: removing it lexically would be wrong across symlinks.
fn without_dot_components(path: &Path) -> PathBuf {
    let cleaned: PathBuf = path
        .components()
        .filter(|component| !matches!(component, Component::CurDir))
        .collect();
    if cleaned.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        cleaned
    }
}

/// The absolute path the way Python's `os.path.abspath` spells it (`..` resolved by text,
/// symlinks left alone), so a pattern the config layer anchored there matches.
fn lexically_absolute(path: &Path) -> PathBuf {
    match std::path::absolute(path) {
        Ok(absolute) => lexically_normal(&absolute),
        Err(_) => lexically_normal(path),
    }
}

/// `a/./b/../c` -> `a/c`, by text only (like `os.path.normpath`); a leading `..` stays.
/// Used for matching only: `*` may cross `/`, so `legacy/*` would otherwise match
/// `legacy/../new.py`.
fn lexically_normal(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match normal.components().next_back() {
                Some(Component::Normal(_)) => {
                    normal.pop();
                }
                // `/..` is `/`; `..` or `../..` at the start of a relative path stays.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => normal.push(".."),
            },
            other => normal.push(other),
        }
    }
    if normal.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        normal
    }
}

fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_encoded_bytes()
}

/// Byte order, which is the order Python's `sorted()` gives the same paths as `str`.
fn sort_paths(paths: &mut [PathBuf]) {
    paths.sort_by(|a, b| path_bytes(a).cmp(path_bytes(b)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(&path, b"import peft\n").unwrap();
        }
        dir
    }

    /// Walks `root` and returns the files relative to it, as strings.
    fn found(
        root: &Path,
        exclude: &[&str],
        respect_gitignore: bool,
    ) -> (Vec<String>, Vec<PathError>) {
        let exclude: Vec<String> = exclude.iter().map(|p| p.to_string()).collect();
        let result = walk(&[root.to_path_buf()], &exclude, respect_gitignore);
        let files = result
            .files
            .iter()
            .map(|file| {
                file.strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        (files, result.errors)
    }

    #[test]
    fn nested_python_files_are_found_sorted() {
        let dir = tree(&[
            "b.py",
            "a/x.py",
            "a/deep/er/y.py",
            "a/notes.txt",
            "a/stub.pyi",
            "nb/tutorial.ipynb",
            "nb/data.json",
        ]);
        let (files, errors) = found(dir.path(), &[], true);
        assert_eq!(
            files,
            ["a/deep/er/y.py", "a/x.py", "b.py", "nb/tutorial.ipynb"]
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_ignore_file_skips_its_directory_instead_of_blocking() {
        let dir = tree(&["ok/a.py", "blocked/b.py"]);
        let fifo = dir.path().join("blocked/.gitignore");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let (files, errors) = found(dir.path(), &[], true);
        assert_eq!(files, ["ok/a.py"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.ends_with("blocked/.gitignore"));
        assert!(errors[0].1.contains("named pipe"), "{errors:?}");
        // Without ignore files nothing reads it: the walk goes on.
        let (files, errors) = found(dir.path(), &[], false);
        assert_eq!(files, ["blocked/b.py", "ok/a.py"]);
        assert!(errors.is_empty());
    }

    #[test]
    fn gitignore_is_honoured_outside_git() {
        let dir = tree(&[
            "keep.py",
            "ignored.py",
            "gen/a.py",
            "sub/local.py",
            "sub/kept.py",
        ]);
        fs::write(dir.path().join(".gitignore"), "ignored.py\ngen/\n").unwrap();
        fs::write(dir.path().join("sub/.ignore"), "local.py\n").unwrap();
        assert!(!dir.path().join(".git").exists());
        let (files, _) = found(dir.path(), &[], true);
        assert_eq!(files, ["keep.py", "sub/kept.py"]);
        let (all, _) = found(dir.path(), &[], false);
        assert_eq!(
            all,
            [
                "gen/a.py",
                "ignored.py",
                "keep.py",
                "sub/kept.py",
                "sub/local.py"
            ]
        );
    }

    #[test]
    fn hidden_and_default_excluded_dirs_are_skipped() {
        let dir = tree(&[
            "ok.py",
            ".hidden/a.py",
            ".hidden.py",
            ".venv/lib/x.py",
            "venv/x.py",
            "node_modules/x.py",
            "pkg/__pycache__/x.py",
            "build/x.py",
            "pkg/site-packages/x.py",
        ]);
        let (files, _) = found(dir.path(), &[], false);
        assert_eq!(files, ["ok.py"]);
    }

    #[test]
    fn walking_an_excluded_or_hidden_directory_by_name_still_works() {
        let dir = tree(&["build/x.py", ".hidden/y.py"]);
        let (files, _) = found(&dir.path().join("build"), &["build"], true);
        assert_eq!(files, ["x.py"]);
        let (files, _) = found(&dir.path().join(".hidden"), &[], true);
        assert_eq!(files, ["y.py"]);
    }

    #[test]
    fn exclude_patterns_prune_files_and_directories() {
        let dir = tree(&[
            "train.py",
            "api_pb2.py",
            "tests/fixtures/bad.py",
            "tests/test_ok.py",
            "third_party/lib/x.py",
        ]);
        let (files, errors) = found(
            dir.path(),
            &["*_pb2.py", "tests/fixtures/*", "third_party"],
            true,
        );
        assert_eq!(files, ["tests/test_ok.py", "train.py"]);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn explicit_file_is_returned_as_given_whatever_its_name() {
        let dir = tree(&["script", "ignored.py", "api_pb2.py"]);
        fs::write(dir.path().join(".gitignore"), "ignored.py\n").unwrap();
        let paths = vec![
            dir.path().join("script"),
            dir.path().join("ignored.py"),
            dir.path().join("api_pb2.py"),
        ];
        let result = walk(&paths, &["*_pb2.py".to_string()], true);
        let mut expected = paths.clone();
        sort_paths(&mut expected);
        assert_eq!(result.files, expected);
        assert!(result.errors.is_empty());
    }

    #[test]
    fn duplicates_collapse_and_dot_components_are_removed() {
        let dir = tree(&["a.py"]);
        let file = dir.path().join("a.py");
        let dotted = dir.path().join(".").join("a.py");
        let result = walk(&[file.clone(), dotted, dir.path().to_path_buf()], &[], true);
        assert_eq!(result.files, [file]);
    }

    #[test]
    fn absolute_patterns_match_under_a_root_spelled_with_dot_dot() {
        let dir = tree(&["proj/legacy/old.py", "proj/new.py"]);
        let detour = dir.path().join("proj/legacy/../legacy/..");
        let pattern = format!(
            "{}/legacy/*",
            lexically_absolute(&dir.path().join("proj")).display()
        );
        let (files, errors) = found(&detour, &[&pattern], true);
        assert_eq!(files, ["new.py"]);
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn lexical_normalisation_resolves_dot_dot_by_text() {
        assert_eq!(
            lexically_normal(Path::new("a/./b/../c")),
            PathBuf::from("a/c")
        );
        assert_eq!(
            lexically_normal(Path::new("../x/../y")),
            PathBuf::from("../y")
        );
        assert_eq!(lexically_normal(Path::new("/../a")), PathBuf::from("/a"));
        assert_eq!(lexically_normal(Path::new("a/..")), PathBuf::from("."));
    }

    #[test]
    fn missing_path_is_an_error_not_a_panic() {
        let dir = tree(&["a.py"]);
        let missing = dir.path().join("nope");
        let result = walk(&[missing.clone(), dir.path().join("a.py")], &[], true);
        assert_eq!(result.files.len(), 1);
        assert_eq!(
            result.errors,
            [(missing, "No such file or directory".to_string())]
        );
    }

    #[test]
    fn invalid_exclude_pattern_is_an_error() {
        let dir = tree(&["a.py"]);
        let (files, errors) = found(dir.path(), &["[oops"], true);
        assert_eq!(files, ["a.py"]);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].1.contains("invalid exclude pattern"),
            "{errors:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loop_is_reported_not_followed_forever() {
        let dir = tree(&["pkg/a.py"]);
        std::os::unix::fs::symlink(dir.path(), dir.path().join("pkg/back")).unwrap();
        let (files, errors) = found(dir.path(), &[], true);
        assert_eq!(files, ["pkg/a.py"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.ends_with("pkg/back"), "{errors:?}");
        assert!(errors[0].1.contains("symlink loop"), "{errors:?}");
    }

    #[cfg(unix)]
    #[test]
    fn self_referencing_link_given_explicitly_is_an_error() {
        let dir = tree(&[]);
        let link = dir.path().join("self.py");
        std::os::unix::fs::symlink(&link, &link).unwrap();
        let result = walk(std::slice::from_ref(&link), &[], true);
        assert!(result.files.is_empty());
        assert_eq!(result.errors.len(), 1);
        assert_eq!(result.errors[0].0, link);
    }

    #[cfg(unix)]
    #[test]
    fn dangling_links_are_reported_only_for_python_files() {
        let dir = tree(&["ok.py"]);
        std::os::unix::fs::symlink(dir.path().join("gone.py"), dir.path().join("dangling.py"))
            .unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone"), dir.path().join("README")).unwrap();
        let (files, errors) = found(dir.path(), &[], true);
        assert_eq!(files, ["ok.py"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].0.ends_with("dangling.py"), "{errors:?}");
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_directory_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tree(&["ok.py", "locked/x.py"]);
        let locked = dir.path().join("locked");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
        let privileged = fs::read_dir(&locked).is_ok(); // root reads anything
        let (files, errors) = found(dir.path(), &[], true);
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        if privileged {
            return;
        }
        assert_eq!(files, ["ok.py"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].1, "Permission denied");
    }
}
