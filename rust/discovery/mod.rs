//! Which Python files a list of command-line paths stands for, and which of them are
//! worth parsing (`peftfix check`).
//!
//! - `walk`: the files under the paths (parallel, gitignore-aware);
//! - `exclude`: default excluded directories and the user's `exclude` globs;
//! - `prefilter`: whether a file mentions peft/transformers at all;
//! - `candidates`: walk + pre-filter in one call;
//! - `error_text`: errors as `(path, reason)` pairs a user can read (the checkpoint
//!   checks word their I/O errors with it too, so both commands say the same thing).

pub mod candidates;
pub mod error_text;
pub mod exclude;
pub mod prefilter;
pub mod walk;
