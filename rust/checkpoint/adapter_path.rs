//! Where an adapter's weights and config are: a directory holding
//! `adapter_model.safetensors` and `adapter_config.json`, or the path of a `.safetensors`
//! file whose `adapter_config.json` is looked up beside it.

use std::path::{Path, PathBuf};

use crate::checkpoint::adapter_config::CONFIG_FILE;
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};

pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterPaths {
    pub weights: PathBuf,
    pub config: PathBuf,
    /// Whether the adapter was given as a directory.
    pub is_dir: bool,
}

pub fn resolve(adapter: &Path) -> Result<AdapterPaths> {
    let meta = std::fs::metadata(adapter).map_err(|err| CheckpointError::io(adapter, &err))?;
    if meta.is_dir() {
        let weights = adapter.join(WEIGHTS_FILE);
        // Whatever exists under the name is taken: reading refuses a FIFO or a directory
        // with an error that names it.
        if !weights.exists() {
            let reason = if adapter.join("adapter_model.bin").is_file() {
                format!(
                    "holds adapter_model.bin but no {WEIGHTS_FILE}: peftfix reads safetensors only \
                     (re-save with `save_pretrained(..., safe_serialization=True)`)"
                )
            } else {
                format!("directory holds no {WEIGHTS_FILE}: not a PEFT adapter directory")
            };
            return Err(CheckpointError::new(
                adapter,
                ErrorKind::NoCheckpoint(reason),
            ));
        }
        return Ok(AdapterPaths {
            weights,
            config: adapter.join(CONFIG_FILE),
            is_dir: true,
        });
    }
    let dir = adapter.parent().unwrap_or(Path::new(""));
    Ok(AdapterPaths {
        weights: adapter.to_path_buf(),
        config: dir.join(CONFIG_FILE),
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
        assert_eq!(paths.config, dir.path().join(CONFIG_FILE));
        let paths = resolve(&dir.path().join(WEIGHTS_FILE)).unwrap();
        assert!(!paths.is_dir);
        assert_eq!(paths.config, dir.path().join(CONFIG_FILE));
        assert!(resolve(&dir.path().join("absent")).is_err());
    }
}
