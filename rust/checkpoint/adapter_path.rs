//! Where an adapter's weights and config are: a directory holding
//! `adapter_model.safetensors` and `adapter_config.json`, or the path of a `.safetensors`
//! file whose `adapter_config.json` is looked up beside it. Local or remote alike; a remote
//! directory is not listed, so a missing weights file shows when it is read
//! ([`absent_weights`] then says what the directory holds instead).

use std::path::Path;

use crate::checkpoint::adapter_config::CONFIG_FILE;
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::storage::{self, Location, RemoteFile};

pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
const BIN_FILE: &str = "adapter_model.bin";

#[derive(Debug, Clone)]
pub struct AdapterPaths {
    pub weights: Location,
    pub config: Location,
    /// Whether the adapter was given as a directory.
    pub is_dir: bool,
}

/// The files of the adapter at `adapter`, local or remote.
pub fn resolve_at(adapter: &Location) -> Result<AdapterPaths> {
    match adapter {
        Location::Local(path) => resolve(path),
        Location::Remote(file) => Ok(if adapter.has_extension("safetensors") {
            AdapterPaths {
                weights: adapter.clone(),
                config: Location::Remote(file.parent().join(CONFIG_FILE)),
                is_dir: false,
            }
        } else {
            AdapterPaths {
                weights: Location::Remote(file.join(WEIGHTS_FILE)),
                config: Location::Remote(file.join(CONFIG_FILE)),
                is_dir: true,
            }
        }),
    }
}

/// The error for a remote adapter directory without weights: it names the directory,
/// and says when the weights are there only as `adapter_model.bin`.
pub fn absent_weights(dir: &RemoteFile) -> CheckpointError {
    let bin = dir.join(BIN_FILE);
    let has_bin = matches!(storage::wait(&bin, bin.head()), Ok(Some(_)));
    CheckpointError::new(dir.url(), ErrorKind::NoCheckpoint(missing_reason(has_bin)))
}

fn missing_reason(has_bin: bool) -> String {
    if has_bin {
        format!(
            "holds {BIN_FILE} but no {WEIGHTS_FILE}: peftfix reads safetensors only \
             (re-save with `save_pretrained(..., safe_serialization=True)`)"
        )
    } else {
        format!("directory holds no {WEIGHTS_FILE}: not a PEFT adapter directory")
    }
}

/// The files of the local adapter at `adapter`.
pub fn resolve(adapter: &Path) -> Result<AdapterPaths> {
    let meta = std::fs::metadata(adapter).map_err(|err| CheckpointError::io(adapter, &err))?;
    if meta.is_dir() {
        let weights = adapter.join(WEIGHTS_FILE);
        // Whatever exists under the name is taken: reading refuses a FIFO or a directory
        // with an error that names it.
        if !weights.exists() {
            let reason = missing_reason(adapter.join(BIN_FILE).is_file());
            return Err(CheckpointError::new(
                adapter,
                ErrorKind::NoCheckpoint(reason),
            ));
        }
        return Ok(AdapterPaths {
            weights: Location::Local(weights),
            config: Location::Local(adapter.join(CONFIG_FILE)),
            is_dir: true,
        });
    }
    let dir = adapter.parent().unwrap_or(Path::new(""));
    Ok(AdapterPaths {
        weights: Location::Local(adapter.to_path_buf()),
        config: Location::Local(dir.join(CONFIG_FILE)),
        is_dir: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_file_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = resolve(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("no adapter_model.safetensors"),
            "{err}"
        );
        std::fs::write(dir.path().join("adapter_model.bin"), b"x").unwrap();
        let err = resolve(dir.path()).unwrap_err();
        assert!(err.to_string().contains("safe_serialization=True"), "{err}");
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"x").unwrap();
        let paths = resolve(dir.path()).unwrap();
        assert!(paths.is_dir);
        let config = dir.path().join(CONFIG_FILE);
        assert_eq!(paths.config.local(), Some(config.as_path()));
        let paths = resolve(&dir.path().join(WEIGHTS_FILE)).unwrap();
        assert!(!paths.is_dir);
        assert_eq!(paths.config.local(), Some(config.as_path()));
        assert!(resolve(&dir.path().join("absent")).is_err());
    }
}
