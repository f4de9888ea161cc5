//! Which directory entries discovery never looks at: Ruff's default excludes plus the
//! user's `exclude` globs.

use std::path::{Path, PathBuf};

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

/// Directory names Ruff excludes by default: tool caches, virtual environments, build
/// output and vendored packages. Nobody wants a linter to report on these, and walking
/// a `.venv` full of site-packages would dwarf the project itself.
pub const DEFAULT_EXCLUDED_NAMES: &[&str] = &[
    ".bzr",
    ".direnv",
    ".eggs",
    ".git",
    ".git-rewrite",
    ".hg",
    ".ipynb_checkpoints",
    ".mypy_cache",
    ".nox",
    ".pants.d",
    ".pyenv",
    ".pytype",
    ".ruff_cache",
    ".pytest_cache",
    ".svn",
    ".tox",
    ".venv",
    ".vscode",
    "__pycache__",
    "__pypackages__",
    "_build",
    "buck-out",
    "build",
    "dist",
    "node_modules",
    "site-packages",
    "venv",
];

/// Matches an entry found under a walked root against the default names and the
/// user's patterns.
pub struct ExcludeMatcher {
    user_patterns: GlobSet,
}

/// The spellings of one entry's path that a pattern may be written against.
pub struct EntryPaths<'a> {
    /// Relative to the walked root: `tests/fixtures/a.py` when walking `.`.
    pub relative: &'a Path,
    /// As the walk reached it, `.` and `..` resolved by text: `src/gen/a.py` when walking `src`.
    pub walked: &'a Path,
    /// Absolute, spelled like `os.path.abspath` (symlinks not resolved), for patterns the
    /// config layer anchored at its directory.
    pub absolute: &'a Path,
}

impl ExcludeMatcher {
    /// Compiles the user's gitignore-style patterns. A pattern that does not compile is
    /// returned as an error and left out, so the other patterns still apply.
    pub fn new(patterns: &[String]) -> (Self, Vec<(PathBuf, String)>) {
        let mut builder = GlobSetBuilder::new();
        let mut errors = Vec::new();
        for pattern in patterns {
            // `build/` in a gitignore means "the directory build"; globset has no such
            // notion, and the directory is the only thing we would descend into anyway.
            let trimmed = pattern.trim_end_matches('/');
            if trimmed.is_empty() {
                continue;
            }
            match GlobBuilder::new(trimmed).backslash_escape(true).build() {
                Ok(glob) => {
                    builder.add(glob);
                }
                Err(err) => errors.push((
                    PathBuf::from(pattern),
                    format!("invalid exclude pattern: {}", err.kind()),
                )),
            }
        }
        let user_patterns = builder.build().unwrap_or_else(|err| {
            errors.push((
                PathBuf::from(patterns.join(",")),
                format!("invalid exclude patterns: {err}"),
            ));
            GlobSet::empty()
        });
        (ExcludeMatcher { user_patterns }, errors)
    }

    pub fn is_excluded(&self, entry: &EntryPaths<'_>) -> bool {
        let Some(name) = entry.walked.file_name() else {
            return false;
        };
        if DEFAULT_EXCLUDED_NAMES
            .iter()
            .any(|default| name == *default)
        {
            return true;
        }
        if self.user_patterns.is_empty() {
            return false;
        }
        [
            Path::new(name),
            entry.relative,
            entry.walked,
            entry.absolute,
        ]
        .into_iter()
        .any(|spelling| {
            self.user_patterns
                .is_match_candidate(&Candidate::new(spelling))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> ExcludeMatcher {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let (matcher, errors) = ExcludeMatcher::new(&patterns);
        assert!(errors.is_empty(), "{errors:?}");
        matcher
    }

    fn excluded(matcher: &ExcludeMatcher, relative: &str, walked: &str) -> bool {
        let absolute = Path::new("/project").join(walked);
        matcher.is_excluded(&EntryPaths {
            relative: Path::new(relative),
            walked: Path::new(walked),
            absolute: &absolute,
        })
    }

    #[test]
    fn default_names_match_anywhere() {
        let none = matcher(&[]);
        assert!(excluded(&none, "a/node_modules", "a/node_modules"));
        assert!(excluded(&none, "build", "build"));
        assert!(!excluded(&none, "builder", "builder"));
        assert!(!excluded(&none, "a/train.py", "a/train.py"));
    }

    #[test]
    fn user_patterns_match_basename_and_paths() {
        let patterns = matcher(&["*_pb2.py", "tests/fixtures/*", "src/gen", "generated/"]);
        assert!(excluded(&patterns, "pkg/api_pb2.py", "pkg/api_pb2.py"));
        assert!(excluded(
            &patterns,
            "tests/fixtures/x.py",
            "tests/fixtures/x.py"
        ));
        // Walking `src`: the relative path is `gen`, the walked one `src/gen`.
        assert!(excluded(&patterns, "gen", "src/gen"));
        assert!(excluded(&patterns, "a/generated", "a/generated"));
        assert!(!excluded(&patterns, "tests/test_a.py", "tests/test_a.py"));
    }

    #[test]
    fn absolute_patterns_match_absolute_paths() {
        let patterns = matcher(&["/project/vendor/*"]);
        assert!(excluded(&patterns, "vendor/x.py", "vendor/x.py"));
        assert!(!excluded(&patterns, "src/x.py", "src/x.py"));
    }

    #[test]
    fn invalid_pattern_is_reported_and_others_still_apply() {
        let patterns = vec!["a[".to_string(), "*.gen.py".to_string()];
        let (matcher, errors) = ExcludeMatcher::new(&patterns);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, PathBuf::from("a["));
        assert!(
            errors[0].1.starts_with("invalid exclude pattern"),
            "{errors:?}"
        );
        assert!(excluded(&matcher, "x.gen.py", "x.gen.py"));
    }
}
