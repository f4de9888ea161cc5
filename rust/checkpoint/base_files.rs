//! A base checkpoint's files, read: which files it has (one `model.safetensors`, or an
//! index and its shards), the index checked against the shards, and every shard header,
//! from a local directory or a remote one. Headers only, never tensor data.
//!
//! Local shards are read in parallel on rayon's threads; remote ones are fetched all at
//! once ([`CONCURRENT_FETCHES`] in flight), each a ranged read of its first bytes. With an
//! [`IndexCache`], the files' identity (local: path, size, mtime; remote: URL, size, ETag)
//! is looked up first and a hit reads no shard at all.

use std::borrow::Cow;
use std::path::Path;

use futures::StreamExt;
use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::checkpoint::error::{CheckpointError, ErrorKind, Result};
use crate::checkpoint::index_cache::IndexCache;
use crate::checkpoint::index_json::parse_index;
use crate::checkpoint::{INDEX_FILE, SINGLE_FILE};
use crate::regular_file::{read_limited, Limited};
use crate::safetensors::Header;
use crate::storage::{self, remote, runtime, Location, RemoteFile};

/// Largest index file read (a 100k-tensor index is about 10 MB).
const MAX_INDEX_LEN: u64 = 1_000_000_000;

/// Remote requests in flight at once for one base (shard headers, identity checks).
pub const CONCURRENT_FETCHES: usize = 64;

/// Every shard header of a base, in shard-name order.
pub struct BaseFiles {
    pub shards: Vec<Header>,
    /// Whether the headers came from the index cache (no shard was read).
    pub from_cache: bool,
}

/// The files of a base: one safetensors file, or an index (its bytes read) and shards.
enum Layout {
    /// One file, and its header when finding the file meant reading it (a remote directory).
    Single(Location, Option<Header>),
    Sharded {
        index: Location,
        bytes: Vec<u8>,
    },
}

/// The shards an index names, and the tensors it places in each.
struct ShardPlan<'a> {
    files: Vec<Location>,
    expected: Vec<Vec<Cow<'a, str>>>,
    index_name: String,
}

/// Reads the base at `location`: its shard headers, from `cache` when the files are
/// unchanged since they were last read, and stored there otherwise.
pub fn read_base(location: &Location, cache: Option<&IndexCache>) -> Result<BaseFiles> {
    let layout = layout(location)?;
    let (index, plan) = match &layout {
        Layout::Single(file, _) => (
            None,
            ShardPlan {
                files: vec![file.clone()],
                expected: vec![Vec::new()],
                index_name: String::new(),
            },
        ),
        Layout::Sharded { index, bytes } => (Some(index), plan_shards(index, bytes)?),
    };
    // A local single file is as cheap to read as a cache entry: not worth one.
    let worth_caching = index.is_some() || matches!(location, Location::Remote(_));
    let identity = match cache {
        Some(_) if worth_caching => identity(index, &plan.files),
        _ => None,
    };
    if let (Some(cache), Some(identity)) = (cache, &identity) {
        if let Some(shards) = cache.load(identity) {
            return Ok(BaseFiles {
                shards,
                from_cache: true,
            });
        }
    }
    let shards = match layout {
        Layout::Single(_, Some(header)) => vec![header],
        _ => read_shards(&plan)?,
    };
    if let (Some(cache), Some(identity)) = (cache, &identity) {
        cache.store(identity, &shards);
    }
    Ok(BaseFiles {
        shards,
        from_cache: false,
    })
}

fn no_checkpoint(location: &Location) -> CheckpointError {
    let reason = match location {
        Location::Local(_) => format!(
            "directory holds neither {SINGLE_FILE} nor {INDEX_FILE}: not a safetensors checkpoint"
        ),
        Location::Remote(_) => format!(
            "neither {SINGLE_FILE} nor {INDEX_FILE} found under this URL ({}): not a safetensors checkpoint",
            remote::NOT_FOUND
        ),
    };
    CheckpointError::new(location.error_path(), ErrorKind::NoCheckpoint(reason))
}

fn layout(location: &Location) -> Result<Layout> {
    match location {
        Location::Local(path) => local_layout(path),
        Location::Remote(file) => remote_layout(file),
    }
}

fn local_layout(path: &Path) -> Result<Layout> {
    let meta = std::fs::metadata(path).map_err(|err| CheckpointError::io(path, &err))?;
    let sharded = |index: &Path| -> Result<Layout> {
        Ok(Layout::Sharded {
            bytes: read_local_index(index)?,
            index: Location::Local(index.to_path_buf()),
        })
    };
    if meta.is_dir() {
        // transformers looks for the single file first. Whatever exists under the name is
        // taken (and refused when opened if it is no regular file, a FIFO say), so the error
        // names it instead of saying the checkpoint is missing.
        let single = path.join(SINGLE_FILE);
        if single.exists() {
            return Ok(Layout::Single(Location::Local(single), None));
        }
        let index = path.join(INDEX_FILE);
        if index.exists() {
            return sharded(&index);
        }
        return Err(no_checkpoint(&Location::Local(path.to_path_buf())));
    }
    if path.extension().is_some_and(|ext| ext == "json") {
        return sharded(path);
    }
    Ok(Layout::Single(Location::Local(path.to_path_buf()), None))
}

fn read_local_index(index: &Path) -> Result<Vec<u8>> {
    match read_limited(index, MAX_INDEX_LEN) {
        Ok(Limited::Within(bytes)) => Ok(bytes),
        Ok(Limited::TooLarge(len)) => Err(index_too_large(index, len)),
        Err(err) => Err(CheckpointError::io(index, &err)),
    }
}

fn index_too_large(index: impl AsRef<Path>, len: u64) -> CheckpointError {
    CheckpointError::new(
        index.as_ref(),
        ErrorKind::BadIndex(format!("{len} bytes is over the 1 GB limit")),
    )
}

/// A URL ending in `.json` is an index, in `.safetensors` a file; anything else is a
/// directory, where the single file is looked for first, as transformers does.
fn remote_layout(file: &RemoteFile) -> Result<Layout> {
    let location = Location::Remote(file.clone());
    if location.has_extension("json") {
        return Ok(Layout::Sharded {
            bytes: fetch_index(file)?.ok_or_else(|| not_found(file))?,
            index: location,
        });
    }
    if location.has_extension("safetensors") {
        return Ok(Layout::Single(location, None));
    }
    // The single file's header is read at once (no HEAD first: one round trip, and some
    // stores answer HEAD poorly); absent, the index is next.
    let single = file.join(SINGLE_FILE);
    if let Some(fetched) = storage::wait(&single, single.fetch_header())? {
        let mut header = Header::default();
        header
            .fill_from(fetched.json, fetched.file_len)
            .map_err(|kind| CheckpointError::new(single.url(), kind))?;
        return Ok(Layout::Single(Location::Remote(single), Some(header)));
    }
    let index = file.join(INDEX_FILE);
    match fetch_index(&index)? {
        Some(bytes) => Ok(Layout::Sharded {
            index: Location::Remote(index),
            bytes,
        }),
        None => Err(no_checkpoint(&location)),
    }
}

fn fetch_index(index: &RemoteFile) -> Result<Option<Vec<u8>>> {
    match storage::wait(index, index.fetch_small(MAX_INDEX_LEN))? {
        Some(Limited::Within((bytes, _))) => Ok(Some(bytes.to_vec())),
        Some(Limited::TooLarge(len)) => Err(index_too_large(index.url(), len)),
        None => Ok(None),
    }
}

fn not_found(file: &RemoteFile) -> CheckpointError {
    CheckpointError::new(file.url(), ErrorKind::Io(remote::NOT_FOUND.into()))
}

/// Whether a shard name from an index stays inside the index's directory: a relative path
/// without `..`, by its text. A symlink inside the directory may still point elsewhere (the
/// HF cache links every file to its blob store), as transformers allows.
fn inside_directory(name: &str) -> bool {
    use std::path::Component;
    !name.is_empty()
        && Path::new(name)
            .components()
            .all(|part| matches!(part, Component::Normal(_) | Component::CurDir))
}

/// The shards the index names (sorted, each once) and the tensors it places in each.
fn plan_shards<'a>(index: &Location, bytes: &'a [u8]) -> Result<ShardPlan<'a>> {
    let bad =
        |reason: String| CheckpointError::new(index.error_path(), ErrorKind::BadIndex(reason));
    let text = std::str::from_utf8(bytes)
        .map_err(|err| bad(format!("not UTF-8 (at byte {})", err.valid_up_to())))?;
    let weight_map = parse_index(text).map_err(bad)?;
    let mut shard_names: Vec<String> = weight_map
        .iter()
        .map(|(_, shard)| shard.to_string())
        .collect();
    shard_names.sort_unstable();
    shard_names.dedup();
    if let Some(outside) = shard_names.iter().find(|name| !inside_directory(name)) {
        return Err(bad(format!(
            "weight_map names {outside:?}, outside the base directory (shards are files beside the index)"
        )));
    }
    // The tensors the index places in each shard (entries come in runs of one shard).
    let mut expected: Vec<Vec<Cow<'a, str>>> = vec![Vec::new(); shard_names.len()];
    let mut last: Option<usize> = None;
    for (tensor, shard) in weight_map {
        let id = match last {
            Some(id) if shard_names[id] == shard.as_ref() => id,
            _ => match shard_names.binary_search_by(|name| name.as_str().cmp(shard.as_ref())) {
                Ok(id) => id,
                Err(_) => continue,
            },
        };
        last = Some(id);
        if let Some(list) = expected.get_mut(id) {
            list.push(tensor);
        }
    }
    let dir = index.parent();
    Ok(ShardPlan {
        files: shard_names.iter().map(|name| dir.join(name)).collect(),
        expected,
        index_name: index.file_name(),
    })
}

/// Every shard's header, checked against what the index places in it; the first error
/// in shard order.
fn read_shards(plan: &ShardPlan<'_>) -> Result<Vec<Header>> {
    let headers: Vec<Result<Header>> = match plan.files.first() {
        Some(Location::Remote(_)) => fetch_headers(plan),
        _ => plan
            .files
            .par_iter()
            .map(|file| read_local_shard(file, &plan.index_name))
            .collect(),
    };
    headers
        .into_iter()
        .zip(plan.files.iter().zip(&plan.expected))
        .map(|(header, (file, expected))| {
            let header = header?;
            check_expected(&header, expected, file, &plan.index_name)?;
            Ok(header)
        })
        .collect()
}

fn read_local_shard(file: &Location, index_name: &str) -> Result<Header> {
    let Location::Local(path) = file else {
        return Err(CheckpointError::new(
            file.error_path(),
            ErrorKind::Io("a remote shard of a local base".into()),
        ));
    };
    if !index_name.is_empty() && !path.is_file() {
        if path.exists() {
            return Err(CheckpointError::new(
                path,
                ErrorKind::Io(format!("named by {index_name} but not a regular file")),
            ));
        }
        return Err(CheckpointError::new(
            path,
            ErrorKind::MissingShard {
                index: index_name.to_string(),
            },
        ));
    }
    Header::read(path)
}

/// Every remote shard's header, all fetches in flight together within one time limit.
fn fetch_headers(plan: &ShardPlan<'_>) -> Vec<Result<Header>> {
    let remotes: Vec<&RemoteFile> = plan
        .files
        .iter()
        .filter_map(|file| match file {
            Location::Remote(remote) => Some(remote),
            Location::Local(_) => None,
        })
        .collect();
    let Some(first) = remotes.first() else {
        return Vec::new();
    };
    let fetches = futures::stream::iter(remotes.iter().map(|file| file.fetch_header()))
        .buffered(CONCURRENT_FETCHES)
        .collect::<Vec<_>>();
    let fetched = match runtime::block_on(fetches) {
        Ok(fetched) => fetched,
        Err(reason) => {
            let base = first.parent();
            return vec![Err(CheckpointError::new(
                base.url(),
                ErrorKind::Io(format!("reading the shard headers {reason}")),
            ))];
        }
    };
    fetched
        .into_iter()
        .zip(&remotes)
        .map(|(result, file)| {
            let fetched = result?.ok_or_else(|| {
                if plan.index_name.is_empty() {
                    not_found(file)
                } else {
                    CheckpointError::new(
                        file.url(),
                        ErrorKind::MissingShard {
                            index: plan.index_name.clone(),
                        },
                    )
                }
            })?;
            let mut header = Header::default();
            header
                .fill_from(fetched.json, fetched.file_len)
                .map_err(|kind| CheckpointError::new(file.url(), kind))?;
            Ok(header)
        })
        .collect()
}

/// Every tensor the index places in this shard must be in its header.
fn check_expected(
    header: &Header,
    expected: &[Cow<'_, str>],
    file: &Location,
    index_name: &str,
) -> Result<()> {
    if expected.is_empty() {
        return Ok(());
    }
    let present: FxHashSet<&str> = header.tensors().iter().map(|t| header.name(t)).collect();
    match expected
        .iter()
        .find(|name| !present.contains(name.as_ref()))
    {
        Some(absent) => Err(CheckpointError::new(
            file.error_path(),
            ErrorKind::TensorNotInShard {
                tensor: absent.to_string(),
                index: index_name.to_string(),
            },
        )),
        None => Ok(()),
    }
}

/// What identifies the base's files as they are now: local path, size and modification
/// time; remote URL, size and ETag (or date). `None` when a file cannot be looked at (the
/// read that follows reports why).
fn identity(index: Option<&Location>, files: &[Location]) -> Option<String> {
    let all: Vec<&Location> = index.into_iter().chain(files).collect();
    let mut text = String::new();
    match all.first()? {
        Location::Local(_) => {
            for file in all {
                let path = file.local()?;
                let meta = std::fs::metadata(path).ok()?;
                let mtime = meta
                    .modified()
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()?
                    .as_nanos();
                let absolute = std::path::absolute(path).ok()?;
                text.push_str(&format!("{} {} {mtime}\n", absolute.display(), meta.len()));
            }
        }
        Location::Remote(_) => {
            let remotes: Vec<&RemoteFile> = all
                .iter()
                .filter_map(|file| match file {
                    Location::Remote(remote) => Some(remote),
                    Location::Local(_) => None,
                })
                .collect();
            let heads = futures::stream::iter(remotes.iter().map(|file| file.head()))
                .buffered(CONCURRENT_FETCHES)
                .collect::<Vec<_>>();
            for (meta, file) in runtime::block_on(heads).ok()?.into_iter().zip(&remotes) {
                let meta = meta.ok()??;
                let tag = meta
                    .e_tag
                    .clone()
                    .unwrap_or_else(|| meta.last_modified.to_rfc3339());
                text.push_str(&format!("{} {} {tag}\n", file.url(), meta.size));
            }
        }
    }
    Some(text)
}
