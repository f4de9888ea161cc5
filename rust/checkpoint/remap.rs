//! `--write-remapped`: the adapter with its keys rewritten by a prefix rewrite.
//!
//! The new file gets a new header (same dtypes, shapes and data offsets, rewritten names,
//! `__metadata__` kept) and the data section copied byte for byte as a stream (the kernel
//! copies it; nothing is loaded). It is written to a temporary file beside the target
//! and renamed over it, so a failure never leaves a half-written adapter behind.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustc_hash::FxHashSet;

use crate::checkpoint::adapter_config::CONFIG_FILE;
use crate::checkpoint::adapter_keys::{peft_wrapper_len, PEFT_PREFIX, UNPLACED};
use crate::checkpoint::adapter_path::{self, WEIGHTS_FILE};
use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::regular_file::{open_regular, read_regular};
use crate::safetensors::Header;
use crate::storage::{self, Location};

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// "" stays ""; anything else ends with exactly one dot.
fn as_prefix(text: &str) -> String {
    let trimmed = text.trim_end_matches('.');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("{trimmed}.")
    }
}

/// `key` rewritten to the form PEFT loads: `base_model.model.` + the module path (which
/// loses `strip` and gains `add` when it starts with `strip`) + the tuner parameter. An
/// outer wrapper before `base_model.model.` (DDP's `module.`) is dropped and a missing
/// `base_model.model.` is added. Prompt-learning keys (no module path) are unchanged.
pub fn rewrite_key(key: &str, strip: &str, add: &str) -> String {
    let wrapper_len = peft_wrapper_len(key);
    let rest = key.get(wrapper_len..).unwrap_or(key);
    let first = rest.split('.').next().unwrap_or(rest);
    if UNPLACED.contains(&first) {
        return key.to_string();
    }
    match rest.strip_prefix(strip) {
        Some(tail) => format!("{PEFT_PREFIX}{add}{tail}"),
        None => format!("{PEFT_PREFIX}{rest}"),
    }
}

fn json_string(out: &mut String, text: &str) {
    // serde_json escapes exactly as JSON requires; a &str always serializes.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string()));
}

/// The header JSON with rewritten names, padded with spaces so the data starts 8-aligned.
fn new_header(header: &Header, path: &Path, strip: &str, add: &str) -> Result<String> {
    let mut json = String::with_capacity(header.tensors().len() * 128 + 64);
    json.push('{');
    let mut first = true;
    if let Some(metadata) = header.metadata() {
        json.push_str("\"__metadata__\":{");
        for (i, (key, value)) in metadata.iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json_string(&mut json, key);
            json.push(':');
            json_string(&mut json, value);
        }
        json.push('}');
        first = false;
    }
    let mut seen: FxHashSet<String> = FxHashSet::default();
    for tensor in header.tensors() {
        let name = rewrite_key(header.name(tensor), strip, add);
        if !first {
            json.push(',');
        }
        first = false;
        json_string(&mut json, &name);
        json.push_str(":{\"dtype\":\"");
        json.push_str(tensor.dtype.name());
        json.push_str("\",\"shape\":[");
        for (i, dim) in header.shape(tensor).iter().enumerate() {
            if i > 0 {
                json.push(',');
            }
            json.push_str(&dim.to_string());
        }
        json.push_str(&format!(
            "],\"data_offsets\":[{},{}]}}",
            tensor.begin, tensor.end
        ));
        if !seen.insert(name.clone()) {
            return Err(CheckpointError::new(
                path,
                ErrorKind::DuplicateAfterRewrite {
                    first: header.name(tensor).to_string(),
                    second: name,
                },
            ));
        }
    }
    json.push('}');
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(' ');
    }
    Ok(json)
}

/// Writes `content` to `target` through a temporary file in the same directory.
fn write_atomically(target: &Path, fill: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let temp = dir.join(format!(
        ".{name}.peftfix-{}-{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        if let Ok(meta) = std::fs::metadata(target) {
            file.set_permissions(meta.permissions())?;
        }
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&temp, target)
    })();
    result.map_err(|err| {
        let _ = std::fs::remove_file(&temp);
        CheckpointError::io(target, &err)
    })
}

/// Where the output goes: `out` itself when it ends in `.safetensors`, else
/// `out/adapter_model.safetensors`; and the directory that gets the config (created).
fn output_file(out: &Path) -> Result<(PathBuf, PathBuf)> {
    let (file, dir) = if out.extension().is_some_and(|ext| ext == "safetensors") {
        let dir = match out.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        (out.to_path_buf(), dir)
    } else {
        (out.join(WEIGHTS_FILE), out.to_path_buf())
    };
    std::fs::create_dir_all(&dir).map_err(|err| CheckpointError::io(&dir, &err))?;
    Ok((file, dir))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The files of a local adapter.
struct LocalPaths {
    weights: PathBuf,
    config: PathBuf,
}

/// Writes `adapter` to `out` with every key rewritten; returns the number of tensors
/// written. `adapter` may be a directory (weights in `adapter_model.safetensors`); `out`
/// is the output file when it ends in `.safetensors`, else a directory that gets
/// `adapter_model.safetensors`. `adapter_config.json` is copied into the output's
/// directory.
pub fn write_remapped(adapter: &Path, out: &Path, strip: &str, add: &str) -> Result<u64> {
    let strip = as_prefix(strip);
    let add = as_prefix(add);
    if storage::is_url(&adapter.to_string_lossy()) {
        return Err(CheckpointError::new(
            adapter,
            ErrorKind::Io(
                "a remote adapter: download it, then write the remapped copy from the local files"
                    .into(),
            ),
        ));
    }
    let resolved = adapter_path::resolve(adapter)?;
    let local = |location: &Location| location.local().map(Path::to_path_buf).unwrap_or_default();
    let paths = LocalPaths {
        weights: local(&resolved.weights),
        config: local(&resolved.config),
    };
    let header = Header::read(&paths.weights)?;
    let json = new_header(&header, &paths.weights, &strip, &add)?;
    let (out_file, out_dir) = output_file(out)?;
    if same_file(&paths.weights, &out_file) {
        return Err(CheckpointError::new(
            &out_file,
            ErrorKind::Io("is the adapter being remapped: write to another path".into()),
        ));
    }

    let mut source =
        open_regular(&paths.weights).map_err(|err| CheckpointError::io(&paths.weights, &err))?;
    let data_len = header.data_len();
    source
        .seek(SeekFrom::Start(header.data_start()))
        .map_err(|err| CheckpointError::io(&paths.weights, &err))?;
    write_atomically(&out_file, |file| {
        file.write_all(&(json.len() as u64).to_le_bytes())?;
        file.write_all(json.as_bytes())?;
        let copied = io::copy(&mut (&mut source).take(data_len), file)?;
        if copied != data_len {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the adapter shrank while it was copied ({copied} of {data_len} data bytes)"
                ),
            ));
        }
        Ok(())
    })?;

    if paths.config.is_file() {
        let target = out_dir.join(CONFIG_FILE);
        if !same_file(&paths.config, &target) {
            let bytes = read_regular(&paths.config)
                .map_err(|err| CheckpointError::io(&paths.config, &err))?;
            write_atomically(&target, |file| file.write_all(&bytes))?;
        }
    }
    Ok(header.tensors().len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::file_bytes;

    fn parse_file_bytes(bytes: &[u8]) -> std::result::Result<Header, ErrorKind> {
        Header::from_file_bytes(bytes)
    }

    #[test]
    fn keys_are_rewritten_after_the_wrapper() {
        let k = "base_model.model._orig_mod.model.layers.0.q.lora_A.weight";
        assert_eq!(
            rewrite_key(k, "_orig_mod.", ""),
            "base_model.model.model.layers.0.q.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("base_model.model.layers.0.q.lora_A.weight", "", "model."),
            "base_model.model.model.layers.0.q.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("module.x.lora_B.weight", "module.", "model."),
            "base_model.model.model.x.lora_B.weight"
        );
        assert_eq!(
            rewrite_key("other.x.lora_B.weight", "module.", ""),
            "base_model.model.other.x.lora_B.weight"
        );
        // An outer wrapper before PEFT's prefix is dropped; a missing prefix is added.
        assert_eq!(
            rewrite_key("module.base_model.model.model.x.lora_A.weight", "", ""),
            "base_model.model.model.x.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("module.base_model.model.x.lora_A.weight", "", "model."),
            "base_model.model.model.x.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("model.x.lora_A.weight", "", ""),
            "base_model.model.model.x.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("base_model.model.model.x.lora_A.weight", "_orig_mod.", ""),
            "base_model.model.model.x.lora_A.weight"
        );
        assert_eq!(
            rewrite_key("prompt_embeddings", "", "model."),
            "prompt_embeddings"
        );
        assert_eq!(
            rewrite_key("base_model.model.lm_head.weight", "", "x."),
            "base_model.model.x.lm_head.weight"
        );
        assert_eq!(as_prefix("model"), "model.");
        assert_eq!(as_prefix("model."), "model.");
        assert_eq!(as_prefix(""), "");
    }

    fn adapter(dir: &Path, with_config: bool) -> PathBuf {
        let json = r#"{"__metadata__":{"format":"pt"},"base_model.model._orig_mod.model.layers.0.q.lora_A.weight":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]},"base_model.model._orig_mod.model.layers.0.q.lora_B.weight":{"dtype":"F32","shape":[4,2],"data_offsets":[32,64]}}"#;
        let mut bytes = file_bytes(json, 0);
        bytes.extend((0u8..64).collect::<Vec<_>>());
        let adapter = dir.join("adapter");
        std::fs::create_dir_all(&adapter).unwrap();
        std::fs::write(adapter.join(WEIGHTS_FILE), bytes).unwrap();
        if with_config {
            std::fs::write(adapter.join(CONFIG_FILE), "{\"r\": 2}").unwrap();
        }
        adapter
    }

    #[test]
    fn directory_to_directory_keeps_bytes_and_config() {
        let dir = tempfile::tempdir().unwrap();
        let src = adapter(dir.path(), true);
        let out = dir.path().join("fixed");
        assert_eq!(write_remapped(&src, &out, "_orig_mod.", "").unwrap(), 2);
        let written = std::fs::read(out.join(WEIGHTS_FILE)).unwrap();
        let header = parse_file_bytes(&written).unwrap();
        let names: Vec<&str> = header.tensors().iter().map(|t| header.name(t)).collect();
        assert_eq!(
            names,
            [
                "base_model.model.model.layers.0.q.lora_A.weight",
                "base_model.model.model.layers.0.q.lora_B.weight"
            ]
        );
        assert_eq!(header.metadata().unwrap()[0].1, "pt");
        let header_len = u64::from_le_bytes(written[..8].try_into().unwrap()) as usize;
        assert_eq!((8 + header_len) % 8, 0);
        assert_eq!(
            &written[8 + header_len..],
            (0u8..64).collect::<Vec<_>>().as_slice()
        );
        assert_eq!(
            std::fs::read_to_string(out.join(CONFIG_FILE)).unwrap(),
            "{\"r\": 2}"
        );
        // No temporary files are left.
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 2);
    }

    #[test]
    fn file_to_file_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let src = adapter(dir.path(), false);
        let out = dir.path().join("out.safetensors");
        assert_eq!(
            write_remapped(&src.join(WEIGHTS_FILE), &out, "_orig_mod", "").unwrap(),
            2
        );
        assert!(parse_file_bytes(&std::fs::read(&out).unwrap()).is_ok());
        let err = write_remapped(&src, &src, "_orig_mod.", "").unwrap_err();
        assert!(err.to_string().contains("another path"), "{err}");
        // Two keys that would collide.
        let json = r#"{"a.x.lora_A.weight":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b.a.x.lora_A.weight":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
        std::fs::write(src.join(WEIGHTS_FILE), file_bytes(json, 2)).unwrap();
        let err = write_remapped(&src, &dir.path().join("o2"), "b.", "").unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::DuplicateAfterRewrite { .. }),
            "{err}"
        );
        // A corrupt adapter is an error, and nothing is written.
        std::fs::write(src.join(WEIGHTS_FILE), b"xx").unwrap();
        assert!(write_remapped(&src, &dir.path().join("o3"), "", "model.").is_err());
        assert!(!dir.path().join("o3").join(WEIGHTS_FILE).exists());
    }
}
