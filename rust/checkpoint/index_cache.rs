//! The base-index cache: a base's shard headers kept on disk under the identity of its
//! files, so that a pipeline running `peftfix keys` again and again against the same
//! base (163 remote shards, say) reads none of them a second time.
//!
//! One entry per identity (see `base_files::identity`), named by two hashes of it, holding
//! the identity itself (a hash collision is a miss, never a wrong base) and each shard's
//! file length and header JSON, which are parsed and validated again on a hit. Entries are
//! written to a temporary file and renamed into place, so readers never see half of one;
//! the oldest are removed beyond [`MAX_ENTRIES`]. The cache is best effort: an unreadable,
//! stale or corrupt entry is a miss, and a failed write changes nothing else.

use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use rustc_hash::FxBuildHasher;

use crate::regular_file::read_regular;
use crate::safetensors::Header;

/// First bytes of an entry; the version changes with the crate so an entry written by
/// another peftfix is a miss.
const MAGIC: &str = concat!("peftfix base-index ", env!("CARGO_PKG_VERSION"), "\n");

/// Entries kept; the least recently used beyond this are removed.
const MAX_ENTRIES: usize = 64;

/// The cache in one directory (created on first store).
#[derive(Debug, Clone)]
pub struct IndexCache {
    dir: PathBuf,
}

impl IndexCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, identity: &str) -> PathBuf {
        let first = FxBuildHasher.hash_one(identity);
        let mut second = FxBuildHasher.build_hasher();
        second.write(MAGIC.as_bytes());
        second.write(identity.as_bytes());
        second.write_u64(first.rotate_left(17));
        self.dir
            .join(format!("{first:016x}{:016x}.idx", second.finish()))
    }

    /// The shard headers stored for `identity`, validated again; `None` on a miss.
    pub fn load(&self, identity: &str) -> Option<Vec<Header>> {
        let path = self.entry(identity);
        let bytes = read_regular(&path).ok()?;
        match decode(&bytes, identity) {
            Some(shards) => {
                // Least recently used goes first: a hit counts as a use.
                if let Ok(file) = std::fs::File::options().append(true).open(&path) {
                    let _ = file.set_modified(std::time::SystemTime::now());
                }
                Some(shards)
            }
            None => None,
        }
    }

    /// Stores `shards` under `identity`; failures are ignored (the next run reads again).
    pub fn store(&self, identity: &str, shards: &[Header]) {
        let _ = self.try_store(identity, shards);
    }

    fn try_store(&self, identity: &str, shards: &[Header]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.entry(identity);
        let mut temp = tempfile_in(&self.dir)?;
        let mut out = std::io::BufWriter::new(&mut temp.1);
        out.write_all(MAGIC.as_bytes())?;
        write_bytes(&mut out, identity.as_bytes())?;
        write_shards(
            &mut out,
            shards.iter().map(|s| (s.file_len(), s.json_text())),
        )?;
        out.flush()?;
        drop(out);
        let result = std::fs::rename(&temp.0, &path);
        if result.is_err() {
            let _ = std::fs::remove_file(&temp.0);
        }
        result?;
        self.evict();
        Ok(())
    }

    /// Removes the least recently used entries beyond [`MAX_ENTRIES`].
    fn evict(&self) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = listing
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().extension().is_some_and(|ext| ext == "idx"))
            .filter_map(|entry| Some((entry.metadata().ok()?.modified().ok()?, entry.path())))
            .collect();
        if entries.len() <= MAX_ENTRIES {
            return;
        }
        entries.sort();
        for (_, path) in entries.iter().take(entries.len() - MAX_ENTRIES) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A new file in `dir` with a name no other writer uses.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, std::fs::File)> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = dir.join(format!(".tmp-{}-{n}", std::process::id()));
        match std::fs::File::options()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
}

/// Each shard as its file length and header JSON, after their count: the form both the
/// cache and [`super::index_bytes`] keep a base's headers in.
pub(crate) fn write_shards<'a>(
    out: &mut impl Write,
    shards: impl ExactSizeIterator<Item = (u64, &'a str)>,
) -> std::io::Result<()> {
    out.write_all(&(shards.len() as u64).to_le_bytes())?;
    for (file_len, json) in shards {
        out.write_all(&file_len.to_le_bytes())?;
        write_bytes(out, json.as_bytes())?;
    }
    Ok(())
}

/// The shards [`write_shards`] wrote, each header parsed and validated again; `None` when
/// anything is missing, malformed or invalid.
pub(crate) fn take_shards(rest: &mut &[u8]) -> Option<Vec<Header>> {
    let count = take_u64(rest)?;
    let mut shards = Vec::with_capacity(usize::try_from(count).ok()?.min(1 << 20));
    for _ in 0..count {
        let file_len = take_u64(rest)?;
        let json = take_bytes(rest)?.to_vec();
        let mut header = Header::default();
        header.fill_from(json, file_len).ok()?;
        shards.push(header);
    }
    Some(shards)
}

pub(crate) fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    out.write_all(&(bytes.len() as u64).to_le_bytes())?;
    out.write_all(bytes)
}

/// Reads an entry: `None` unless it is whole, for `identity`, and every header valid.
fn decode(bytes: &[u8], identity: &str) -> Option<Vec<Header>> {
    let mut rest = bytes.strip_prefix(MAGIC.as_bytes())?;
    let stored = take_bytes(&mut rest)?;
    if stored != identity.as_bytes() {
        return None;
    }
    let shards = take_shards(&mut rest)?;
    rest.is_empty().then_some(shards)
}

pub(crate) fn take_u64(rest: &mut &[u8]) -> Option<u64> {
    let (head, tail) = rest.split_first_chunk::<8>()?;
    *rest = tail;
    Some(u64::from_le_bytes(*head))
}

pub(crate) fn take_bytes<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(take_u64(rest)?).ok()?;
    if rest.len() < len {
        return None;
    }
    let (head, tail) = rest.split_at(len);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::write_tensors;

    fn header(dir: &Path, name: &str, tensors: &[(&str, &[u64])]) -> Header {
        let path = dir.join(name);
        let tensors: Vec<(&str, &str, Vec<u64>)> = tensors
            .iter()
            .map(|(name, shape)| (*name, "F32", shape.to_vec()))
            .collect();
        write_tensors(&path, &tensors);
        Header::read(&path).unwrap()
    }

    #[test]
    fn stores_and_loads_by_identity() {
        let dir = tempfile::tempdir().unwrap();
        let shards = vec![
            header(dir.path(), "a.safetensors", &[("model.a.weight", &[2, 3])]),
            header(dir.path(), "b.safetensors", &[("model.b.weight", &[4])]),
        ];
        let cache = IndexCache::new(dir.path().join("cache"));
        assert!(cache.load("files v1").is_none());
        cache.store("files v1", &shards);
        let loaded = cache.load("files v1").unwrap();
        assert_eq!(loaded.len(), 2);
        assert_eq!(loaded[0].json_text(), shards[0].json_text());
        assert_eq!(loaded[1].file_len(), shards[1].file_len());
        assert!(cache.load("files v2").is_none());
    }

    #[test]
    fn a_corrupt_or_foreign_entry_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let shards = vec![header(dir.path(), "a.safetensors", &[("x.weight", &[2])])];
        let cache = IndexCache::new(dir.path().join("cache"));
        cache.store("id", &shards);
        let entry = cache.entry("id");
        let mut bytes = std::fs::read(&entry).unwrap();
        // Cut short, then with a bad header, then from another version: all misses.
        std::fs::write(&entry, &bytes[..bytes.len() - 3]).unwrap();
        assert!(cache.load("id").is_none());
        let json_at = bytes.len() - shards[0].json_text().len();
        bytes[json_at] = b'[';
        std::fs::write(&entry, &bytes).unwrap();
        assert!(cache.load("id").is_none());
        cache.store("id", &shards);
        let mut foreign = std::fs::read(&entry).unwrap();
        foreign[MAGIC.len() - 2] ^= 1;
        std::fs::write(&entry, &foreign).unwrap();
        assert!(cache.load("id").is_none());
    }

    #[test]
    fn old_entries_are_evicted() {
        let dir = tempfile::tempdir().unwrap();
        let shards = vec![header(dir.path(), "a.safetensors", &[("x.weight", &[2])])];
        let cache = IndexCache::new(dir.path().join("cache"));
        for n in 0..MAX_ENTRIES + 5 {
            cache.store(&format!("id {n}"), &shards);
        }
        let kept = std::fs::read_dir(cache.dir()).unwrap().count();
        assert_eq!(kept, MAX_ENTRIES);
    }
}
