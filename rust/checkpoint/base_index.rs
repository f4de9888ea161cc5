//! Opens a base checkpoint and builds its compact module index.
//!
//! A base is a directory with `model.safetensors` (preferred, as transformers does), or
//! with `model.safetensors.index.json` and its shards (headers read in parallel), or the
//! path of one `.safetensors` file or index. Only headers are read. The index maps each
//! module path (a tensor key without its last component) to its parameters' dtypes and
//! shapes, as the module tree that
//! `AutoModelForCausalLM` (`causal-lm`) or `AutoModel` (`base-model`: base-model prefix
//! stripped, heads dropped) would build. The reversed-component trie used to infer prefix
//! rewrites is built on first use: adapters whose keys match exactly never pay for it.

use std::fmt;
use std::hash::BuildHasher;
use std::ops::Range;
use std::path::Path;
use std::sync::OnceLock;

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::checkpoint::base_files::read_base;
use crate::checkpoint::error::Result;
use crate::checkpoint::index_cache::IndexCache;
use crate::checkpoint::module_trie::{is_index, Interner, ReverseTrie};
use crate::safetensors::{Dtype, Header};
use crate::storage::Location;

pub const SINGLE_FILE: &str = "model.safetensors";
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Modules `AutoModel` does not build: the task heads.
pub const HEAD_MODULES: [&str; 3] = ["lm_head", "score", "classifier"];

/// Input embeddings an untied-on-disk `lm_head` shares its weight with, by preference.
pub const INPUT_EMBEDDINGS: [&str; 6] = [
    "embed_tokens",
    "wte",
    "word_embeddings",
    "embed_in",
    "tok_embeddings",
    "embeddings.word_embeddings",
];

/// The hash of a module path in the module table.
pub fn path_hash(path: &str) -> u64 {
    FxBuildHasher.hash_one(path)
}

/// Which module tree the adapter is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoadAs {
    CausalLm,
    BaseModel,
}

impl LoadAs {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "causal-lm" => Some(Self::CausalLm),
            "base-model" => Some(Self::BaseModel),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::CausalLm => "causal-lm",
            Self::BaseModel => "base-model",
        }
    }
}

impl fmt::Display for LoadAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parameter of a base module.
#[derive(Debug, Clone)]
struct Param {
    module: u32,
    name: u32,
    dtype: Dtype,
    shape: Range<u32>,
}

/// A parameter as the matcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo<'a> {
    pub dtype: Dtype,
    pub shape: &'a [u64],
}

/// Lazily built rewrite machinery.
#[derive(Debug)]
pub struct SuffixIndex {
    pub components: Interner,
    pub trie: ReverseTrie,
}

/// The base checkpoint, reduced to what matching needs.
#[derive(Debug)]
pub struct BaseIndex {
    /// The path or URL the base was opened from, as given.
    pub source: String,
    /// Whether its shard headers came from the index cache.
    pub from_cache: bool,
    pub load_as: LoadAs,
    /// Tensors in the checkpoint's files (before the `load_as` view).
    pub tensor_count: usize,
    pub shard_count: usize,
    /// Safetensors header bytes read (8 + N per file).
    pub header_bytes: u64,
    /// The first component all non-head keys share (`model`, `transformer`), or "".
    pub base_model_prefix: String,
    /// Whether `lm_head` is absent on disk and stands for the tied input embedding.
    pub tied_lm_head: bool,
    param_names: Interner,
    /// Module paths while the index is built (by first appearance).
    building: PathSet,
    /// Module id = position in path order. All paths in one buffer, in that order, so
    /// that sorted lookups walk memory forward.
    paths: String,
    path_ends: Vec<usize>,
    /// Each module's parameters: a range of `params`.
    module_params: Vec<Range<u32>>,
    /// Path -> module id once built: ids only, compared against `paths`.
    table: HashTable<u32>,
    params: Vec<Param>,
    shapes: Vec<u64>,
    weight_name: Option<u32>,
    suffixes: OnceLock<SuffixIndex>,
    /// Each shard's file length and header JSON, as read: what the index was built from, so
    /// that it can be sent elsewhere and built again there (`index_bytes`).
    pub(crate) shard_headers: Vec<(u64, Box<str>)>,
}

/// Distinct paths in one buffer, numbered by first insertion, with a table of ids.
#[derive(Debug, Default)]
struct PathSet {
    text: String,
    spans: Vec<(usize, usize)>,
    hashes: Vec<u64>,
    table: HashTable<u32>,
}

impl PathSet {
    fn get(&self, id: u32) -> &str {
        self.spans
            .get(id as usize)
            .and_then(|&(start, end)| self.text.get(start..end))
            .unwrap_or("")
    }

    fn find(&self, path: &str) -> Option<u32> {
        self.table
            .find(path_hash(path), |&id| self.get(id) == path)
            .copied()
    }

    fn insert(&mut self, path: &str) -> u32 {
        let hash = path_hash(path);
        if let Some(&id) = self.table.find(hash, |&id| self.get(id) == path) {
            return id;
        }
        let id = self.spans.len() as u32;
        let start = self.text.len();
        self.text.push_str(path);
        self.spans.push((start, self.text.len()));
        self.hashes.push(hash);
        let hashes = &self.hashes;
        self.table.insert_unique(hash, id, |&other| {
            hashes.get(other as usize).copied().unwrap_or(0)
        });
        id
    }

    fn len(&self) -> usize {
        self.spans.len()
    }
}

/// The first component all non-head keys share, or "".
fn detect_prefix(shards: &[Header]) -> String {
    let mut prefix: Option<&str> = None;
    for shard in shards {
        for tensor in shard.tensors() {
            let name = shard.name(tensor);
            let Some((first, _)) = name.split_once('.') else {
                if HEAD_MODULES.contains(&name) {
                    continue;
                }
                return String::new();
            };
            if HEAD_MODULES.contains(&first) {
                continue;
            }
            match prefix {
                None => prefix = Some(first),
                Some(p) if p == first => {}
                Some(_) => return String::new(),
            }
        }
    }
    prefix.unwrap_or("").to_string()
}

impl BaseIndex {
    /// Opens the base at `path`.
    pub fn open(path: &Path, load_as: LoadAs) -> Result<Self> {
        Self::open_at(&Location::parse(path)?, load_as, None)
    }

    /// Opens the base at `location` (local or remote), through `cache` when given.
    pub fn open_at(
        location: &Location,
        load_as: LoadAs,
        cache: Option<&IndexCache>,
    ) -> Result<Self> {
        let files = read_base(location, cache)?;
        let mut index = Self::from_shards(location.display(), load_as, &files.shards);
        index.from_cache = files.from_cache;
        Ok(index)
    }

    pub(crate) fn from_shards(source: String, load_as: LoadAs, shards: &[Header]) -> Self {
        let base_model_prefix = detect_prefix(shards);
        let tensor_count = shards.iter().map(|s| s.tensors().len()).sum();
        let mut index = Self {
            source,
            from_cache: false,
            load_as,
            tensor_count,
            shard_count: shards.len(),
            header_bytes: shards.iter().map(Header::bytes_read).sum(),
            base_model_prefix,
            tied_lm_head: false,
            param_names: Interner::default(),
            building: PathSet::default(),
            paths: String::new(),
            path_ends: Vec::new(),
            module_params: Vec::new(),
            table: HashTable::new(),
            params: Vec::with_capacity(tensor_count),
            shapes: Vec::with_capacity(tensor_count * 2),
            weight_name: None,
            suffixes: OnceLock::new(),
            shard_headers: shards
                .iter()
                .map(|shard| (shard.file_len(), shard.json_text().into()))
                .collect(),
        };
        index.building.table.reserve(tensor_count / 2 + 1, |_| 0);
        let strip = match load_as {
            LoadAs::BaseModel if !index.base_model_prefix.is_empty() => {
                format!("{}.", index.base_model_prefix)
            }
            _ => String::new(),
        };
        for shard in shards {
            for tensor in shard.tensors() {
                let name = shard.name(tensor);
                let name = match load_as {
                    LoadAs::CausalLm => name,
                    LoadAs::BaseModel => {
                        let first = name.split('.').next().unwrap_or(name);
                        if HEAD_MODULES.contains(&first) {
                            continue;
                        }
                        name.strip_prefix(strip.as_str()).unwrap_or(name)
                    }
                };
                // A tensor without a module path (no dot) belongs to no module.
                let Some((module, param)) = name.rsplit_once('.').filter(|(m, _)| !m.is_empty())
                else {
                    continue;
                };
                index.add_param(module, param, tensor.dtype, shard.shape(tensor));
            }
        }
        if load_as == LoadAs::CausalLm {
            index.tie_lm_head();
        }
        index.finish();
        index
    }

    fn add_param(&mut self, module: &str, param: &str, dtype: Dtype, shape: &[u64]) {
        let id = self.building.insert(module);
        let start = self.shapes.len() as u32;
        self.shapes.extend_from_slice(shape);
        let name = self.param_names.intern(param);
        self.params.push(Param {
            module: id,
            name,
            dtype,
            shape: start..self.shapes.len() as u32,
        });
    }

    /// A checkpoint of a model with tied embeddings has no `lm_head.weight` on disk, yet
    /// `AutoModelForCausalLM` builds `lm_head` with the input embedding's weight.
    fn tie_lm_head(&mut self) {
        if self.building.find("lm_head").is_some() {
            return;
        }
        let prefix = &self.base_model_prefix;
        let found = INPUT_EMBEDDINGS.iter().find_map(|name| {
            let path = if prefix.is_empty() {
                (*name).to_string()
            } else {
                format!("{prefix}.{name}")
            };
            let id = self.building.find(&path)?;
            let weight = self.param_names.get("weight")?;
            self.params
                .iter()
                .find(|p| p.module == id && p.name == weight)
                .map(|p| (p.dtype, p.shape.clone()))
        });
        if let Some((dtype, shape)) = found {
            let shape: Vec<u64> = self
                .shapes
                .get(shape.start as usize..shape.end as usize)
                .unwrap_or(&[])
                .to_vec();
            self.add_param("lm_head", "weight", dtype, &shape);
            self.tied_lm_head = true;
        }
    }

    /// Numbers the modules in path order, lays their paths out in that order and groups
    /// the parameters by module.
    fn finish(&mut self) {
        let mut building = std::mem::take(&mut self.building);
        let mut order: Vec<u32> = (0..building.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| building.get(a).cmp(building.get(b)));
        let mut rank = vec![0u32; building.len()];
        self.paths = String::with_capacity(building.text.len());
        self.path_ends = Vec::with_capacity(building.len());
        for (position, &old) in order.iter().enumerate() {
            if let Some(slot) = rank.get_mut(old as usize) {
                *slot = position as u32;
            }
            self.paths.push_str(building.get(old));
            self.path_ends.push(self.paths.len());
        }
        // The build table becomes the final one: same hashes, ids renumbered.
        let count = building.len();
        let mut table = std::mem::take(&mut building.table);
        for id in table.iter_mut() {
            *id = rank.get(*id as usize).copied().unwrap_or(0);
        }
        drop(building);
        self.table = table;
        for param in &mut self.params {
            param.module = rank.get(param.module as usize).copied().unwrap_or(0);
        }
        self.params.sort_by_key(|p| p.module);
        self.module_params = vec![0..0; count];
        let mut start = 0usize;
        while start < self.params.len() {
            let module = self.params.get(start).map_or(0, |p| p.module);
            let mut end = start;
            while self.params.get(end).is_some_and(|p| p.module == module) {
                end += 1;
            }
            if let Some(range) = self.module_params.get_mut(module as usize) {
                *range = start as u32..end as u32;
            }
            start = end;
        }
        self.weight_name = self.param_names.get("weight");
    }

    pub fn module_count(&self) -> usize {
        self.path_ends.len()
    }

    pub fn module_id(&self, path: &str) -> Option<u32> {
        let hash = path_hash(path);
        self.table
            .find(hash, |&id| self.module_path(id) == path)
            .copied()
    }

    /// [`module_id`](Self::module_id) for paths that mostly come in sorted order, as the
    /// keys of a safetensors file do: `cursor` (start at 0) remembers where the last
    /// lookup ended in the sorted module list, and the next path is searched forward from
    /// there by comparing neighbouring paths, which share their long prefixes and sit in
    /// cache, instead of hashing into a table of the whole model. A path behind the
    /// cursor, or far ahead of it, falls back to the hash table.
    pub fn find_from(&self, path: &str, cursor: &mut usize) -> Option<u32> {
        self.find_from_hashed(path, cursor, &mut None)
    }

    /// [`find_from`](Self::find_from) that keeps the path's hash in `hash` when it had to
    /// compute it (for a caller that needs it next, as for a path the base lacks).
    pub fn find_from_hashed(
        &self,
        path: &str,
        cursor: &mut usize,
        hash: &mut Option<u64>,
    ) -> Option<u32> {
        use std::cmp::Ordering;
        let count = self.module_count();
        let path_at = |i: usize| (i < count).then(|| self.module_path(i as u32));
        let start = *cursor;
        match path_at(start).map(|p| p.cmp(path)) {
            Some(Ordering::Equal) => {
                *cursor = start + 1;
                Some(start as u32)
            }
            Some(Ordering::Less) => {
                // Gallop forward for an upper bound, then binary search.
                let mut low = start + 1;
                let mut step = 1usize;
                let high = loop {
                    let probe = start + step;
                    match path_at(probe).map(|p| p.cmp(path)) {
                        None => break count,
                        Some(Ordering::Less) => {
                            low = probe + 1;
                            // Far ahead (keys in numeric rather than text order, or a
                            // sparse adapter): one hash lookup beats a long search.
                            if step >= 8 {
                                return self.hashed(path, cursor, hash);
                            }
                            step *= 2;
                        }
                        Some(_) => break probe + 1,
                    }
                };
                let (mut lo, mut hi) = (low, high.min(count));
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if self.module_path(mid as u32) < path {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                *cursor = lo;
                if lo < count && self.module_path(lo as u32) == path {
                    *cursor = lo + 1;
                    Some(lo as u32)
                } else {
                    None
                }
            }
            // Behind the cursor (or past the end): ask the table.
            _ => self.hashed(path, cursor, hash),
        }
    }

    fn hashed(&self, path: &str, cursor: &mut usize, hash: &mut Option<u64>) -> Option<u32> {
        let hash = *hash.get_or_insert_with(|| path_hash(path));
        let found = self
            .table
            .find(hash, |&id| self.module_path(id) == path)
            .copied();
        if let Some(id) = found {
            *cursor = id as usize + 1;
        }
        found
    }

    pub fn module_path(&self, id: u32) -> &str {
        let id = id as usize;
        let end = self.path_ends.get(id).copied().unwrap_or(0);
        let start = match id.checked_sub(1) {
            Some(prev) => self.path_ends.get(prev).copied().unwrap_or(0),
            None => 0,
        };
        self.paths.get(start..end).unwrap_or("")
    }

    fn param_info(&self, param: &Param) -> ParamInfo<'_> {
        ParamInfo {
            dtype: param.dtype,
            shape: self
                .shapes
                .get(param.shape.start as usize..param.shape.end as usize)
                .unwrap_or(&[]),
        }
    }

    /// The module's parameter `name`.
    pub fn param(&self, module: u32, name: &str) -> Option<ParamInfo<'_>> {
        let name = self.param_names.get(name)?;
        self.param_by_id(module, name)
    }

    fn param_by_id(&self, module: u32, name: u32) -> Option<ParamInfo<'_>> {
        let range = self.module_params.get(module as usize)?.clone();
        self.params
            .get(range.start as usize..range.end as usize)?
            .iter()
            .find(|p| p.name == name)
            .map(|p| self.param_info(p))
    }

    /// The module's `weight`: its shape is the module's shape.
    pub fn weight(&self, module: u32) -> Option<ParamInfo<'_>> {
        self.param_by_id(module, self.weight_name?)
    }

    /// The interned components and the reversed trie of all module paths.
    pub fn suffixes(&self) -> &SuffixIndex {
        self.suffixes.get_or_init(|| {
            let mut components = Interner::default();
            let mut trie = ReverseTrie::default();
            let mut ids = Vec::new();
            for id in 0..self.module_count() as u32 {
                let path = self.module_path(id);
                ids.clear();
                let mut first_index = None;
                for (i, component) in path.split('.').enumerate() {
                    if first_index.is_none() && is_index(component) {
                        first_index = Some(i);
                    }
                    ids.push(components.intern(component));
                }
                trie.insert(&ids, first_index.unwrap_or(ids.len()), id);
            }
            trie.finish();
            SuffixIndex { components, trie }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::error::ErrorKind;
    use crate::checkpoint::INDEX_FILE;
    use crate::test_support::{fixture, llama_tensors, write_tensors};

    /// A sharded Llama-like base in `dir`: two shards and an index.
    fn write_sharded(dir: &Path) {
        let tensors = llama_tensors();
        let (a, b) = tensors.split_at(tensors.len() / 2);
        write_tensors(&dir.join("model-00001-of-00002.safetensors"), a);
        write_tensors(&dir.join("model-00002-of-00002.safetensors"), b);
        let mut map = serde_json::Map::new();
        for (name, _, _) in a {
            map.insert(name.clone(), "model-00001-of-00002.safetensors".into());
        }
        for (name, _, _) in b {
            map.insert(name.clone(), "model-00002-of-00002.safetensors".into());
        }
        let index = serde_json::json!({"metadata": {"total_size": 0}, "weight_map": map});
        std::fs::write(dir.join(INDEX_FILE), index.to_string()).unwrap();
    }

    #[test]
    fn single_file_and_directory() {
        let dir = tempfile::tempdir().unwrap();
        write_tensors(&dir.path().join(SINGLE_FILE), &llama_tensors());
        for path in [dir.path().to_path_buf(), dir.path().join(SINGLE_FILE)] {
            let index = BaseIndex::open(&path, LoadAs::CausalLm).unwrap();
            assert_eq!(index.tensor_count, 19);
            assert_eq!(index.shard_count, 1);
            assert!(index.header_bytes > 8);
            assert_eq!(index.base_model_prefix, "model");
            let q = index.module_id("model.layers.1.self_attn.k_proj").unwrap();
            assert_eq!(index.weight(q).unwrap().shape, &[4, 8]);
            assert_eq!(index.weight(q).unwrap().dtype, Dtype::F32);
            assert!(index.module_id("lm_head").is_some());
            assert!(!index.tied_lm_head);
            assert!(index.param(q, "bias").is_none());
        }
    }

    #[test]
    fn sharded_directory_and_index_path() {
        let dir = tempfile::tempdir().unwrap();
        write_sharded(dir.path());
        for path in [dir.path().to_path_buf(), dir.path().join(INDEX_FILE)] {
            let index = BaseIndex::open(&path, LoadAs::CausalLm).unwrap();
            assert_eq!(index.tensor_count, 19);
            assert_eq!(index.shard_count, 2);
            assert!(index.module_id("model.layers.0.mlp.down_proj").is_some());
        }
    }

    #[test]
    fn base_model_view_strips_prefix_and_drops_heads() {
        let dir = tempfile::tempdir().unwrap();
        write_sharded(dir.path());
        let index = BaseIndex::open(dir.path(), LoadAs::BaseModel).unwrap();
        assert_eq!(index.base_model_prefix, "model");
        assert!(index.module_id("layers.0.mlp.down_proj").is_some());
        assert!(index.module_id("model.layers.0.mlp.down_proj").is_none());
        assert!(index.module_id("lm_head").is_none());
        assert!(index.module_id("embed_tokens").is_some());
    }

    #[test]
    fn tied_lm_head_stands_for_the_embedding() {
        let dir = tempfile::tempdir().unwrap();
        let tensors: Vec<_> = llama_tensors()
            .into_iter()
            .filter(|t| t.0 != "lm_head.weight")
            .collect();
        write_tensors(&dir.path().join(SINGLE_FILE), &tensors);
        let index = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap();
        assert!(index.tied_lm_head);
        let head = index.module_id("lm_head").unwrap();
        assert_eq!(index.weight(head).unwrap().shape, &[32, 8]);
        assert_eq!(index.tensor_count, 18);
    }

    #[test]
    fn prefix_detection() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gpt2.safetensors");
        write_tensors(
            &path,
            &[
                ("h.0.attn.c_attn.weight", "F32", vec![4, 12]),
                ("wte.weight", "F32", vec![10, 4]),
            ],
        );
        assert_eq!(
            BaseIndex::open(&path, LoadAs::CausalLm)
                .unwrap()
                .base_model_prefix,
            ""
        );
        write_tensors(
            &path,
            &[
                ("transformer.h.0.attn.c_attn.weight", "F32", vec![4, 12]),
                ("lm_head.weight", "F32", vec![10, 4]),
            ],
        );
        let index = BaseIndex::open(&path, LoadAs::BaseModel).unwrap();
        assert_eq!(index.base_model_prefix, "transformer");
        assert!(index.module_id("h.0.attn.c_attn").is_some());
    }

    #[test]
    fn missing_things_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::NoCheckpoint(_)), "{err}");
        let err = BaseIndex::open(&dir.path().join("absent"), LoadAs::CausalLm).unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");

        write_sharded(dir.path());
        std::fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::MissingShard { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("model-00002-of-00002.safetensors: shard named by"),
            "{err}"
        );

        // The index places a tensor in a shard that lacks it.
        let dir = tempfile::tempdir().unwrap();
        write_sharded(dir.path());
        let text = std::fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["weight_map"]["model.ghost.weight"] = "model-00001-of-00002.safetensors".into();
        std::fs::write(dir.path().join(INDEX_FILE), value.to_string()).unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(
            matches!(err.kind, ErrorKind::TensorNotInShard { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("model.ghost.weight"), "{err}");

        // Corrupt index and corrupt shard.
        std::fs::write(dir.path().join(INDEX_FILE), "{\"weight_map\": [1]}").unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::BadIndex(_)), "{err}");
        std::fs::write(dir.path().join(INDEX_FILE), "{}").unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(err.to_string().contains("no weight_map"), "{err}");
        write_sharded(dir.path());
        std::fs::write(
            dir.path().join("model-00001-of-00002.safetensors"),
            b"\x05\0\0\0\0\0\0\0{\"a\":",
        )
        .unwrap();
        let err = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Json(_)), "{err}");
        assert!(err.path.ends_with("model-00001-of-00002.safetensors"));
    }

    #[test]
    fn find_from_agrees_with_the_table_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut tensors = llama_tensors();
        for layer in 2..40 {
            tensors.push((
                format!("model.layers.{layer}.self_attn.q_proj.weight"),
                "F32",
                vec![8, 8],
            ));
        }
        write_tensors(&dir.path().join(SINGLE_FILE), &tensors);
        let index = BaseIndex::open(dir.path(), LoadAs::CausalLm).unwrap();
        let mut queries: Vec<String> = tensors
            .iter()
            .map(|t| t.0.rsplit_once('.').unwrap().0.to_string())
            .collect();
        queries.extend(
            [
                "a",
                "model",
                "model.layers.5.self_attn.q_projx",
                "zzz",
                "",
                "model.layers.0",
            ]
            .map(String::from),
        );
        let check = |order: &[String]| {
            let mut cursor = 0;
            for q in order {
                assert_eq!(index.find_from(q, &mut cursor), index.module_id(q), "{q}");
            }
        };
        check(&queries);
        queries.sort();
        check(&queries);
        queries.reverse();
        check(&queries);
        let sparse: Vec<String> = queries.iter().rev().step_by(7).cloned().collect();
        check(&sparse);
    }

    #[test]
    fn suffix_index_is_built_once() {
        let index = fixture(LoadAs::CausalLm).base;
        let a = index.suffixes() as *const SuffixIndex;
        let b = index.suffixes() as *const SuffixIndex;
        assert_eq!(a, b);
        assert!(index.suffixes().trie.node_count() > index.module_count());
    }
}
