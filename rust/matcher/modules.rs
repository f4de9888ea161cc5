//! The adapter's modules: its keys grouped by module path, and the base module each one
//! stands for, by exact path or else through the inferred prefix rewrite. Every check
//! reads the result; only PK001 reports the rewrite itself.
//!
//! The adapter header is parsed once with borrowed names; keys are grouped into modules
//! (string slices of the keys, one hash lookup per module, none for the second key of a
//! module that follows its first), each module is looked up by exact path in the base,
//! and only the unmatched ones go to the prefix-rewrite inference.

use std::borrow::Cow;

use hashbrown::HashTable;

use super::report::Rewrite;
use crate::checkpoint::adapter_keys::{classify, Role};
use crate::checkpoint::prefix_rewrite::{self, Inferred};
use crate::checkpoint::{path_hash, BaseIndex};
use crate::safetensors::Header;

/// No tensor, module or key: the value of an index field that has none.
pub(super) const NONE: u32 = u32::MAX;

/// A [`Module::kinds`] bit: the module has LoRA tensors.
pub(super) const LORA: u8 = 1;
/// A [`Module::kinds`] bit: the module has another tuner's tensors (IA3, LoHa, ...).
pub(super) const OTHER: u8 = 2;
/// A [`Module::kinds`] bit: the module has a saved copy of a base parameter.
pub(super) const SAVED: u8 = 4;
/// A [`Module::kinds`] bit: at least one of the module's keys has an outer wrapper before
/// `base_model.model.` or lacks that prefix: PEFT drops it.
const BAD_PREFIX: u8 = 8;

/// One adapter module and its tensors (indices into the header). The path is a span of
/// one of its keys, or an entry of [`Scratch::owned`] when it had to be built.
#[derive(Debug, Clone, Copy)]
pub(super) struct Module {
    key: u32,
    start: u32,
    len: u32,
    owned: u32,
    pub(super) kinds: u8,
    pub(super) a: u32,
    pub(super) b: u32,
    pub(super) b_bias: u32,
    pub(super) emb_a: u32,
    pub(super) emb_b: u32,
    pub(super) magnitude: u32,
    pub(super) base: u32,
}

impl Module {
    /// The tensors PEFT initialises to zero: `lora_B` (and its bias) of a Linear or Conv
    /// layer, `lora_embedding_A` of an Embedding (the other way round there: PEFT's
    /// `Embedding.reset_lora_parameters` zeroes A and draws B). While they stay zero the
    /// update B·A is zero.
    pub(super) fn zero_initialised(&self) -> impl Iterator<Item = u32> + '_ {
        [self.b, self.b_bias, self.emb_a]
            .into_iter()
            .filter(|&t| t != NONE)
    }
}

/// Whether `path` matches a `target_modules` list entry as PEFT matches one: the whole
/// path, or a suffix after a dot.
pub(super) fn is_targeted(path: &str, entry: &str) -> bool {
    path == entry
        || (path.len() > entry.len()
            && path.ends_with(entry)
            && path.as_bytes().get(path.len() - entry.len() - 1) == Some(&b'.'))
}

/// A saved copy of a base parameter: the parameter is the key's last component.
#[derive(Debug, Clone, Copy)]
pub(super) struct Saved {
    pub(super) module: u32,
    pub(super) tensor: u32,
}

/// Buffers reused from one check to the next on the same thread, so a fleet of adapters
/// is checked without growing and faulting in fresh memory for each.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) header: Header,
    pub(super) modules: Vec<Module>,
    pub(super) saved: Vec<Saved>,
    pub(super) owned: Vec<String>,
    /// Adapter module index per base module id, valid where `stamps` holds `generation`.
    slots: Vec<u32>,
    stamps: Vec<u32>,
    generation: u32,
    /// Modules the base lacks, by path hash (module indices).
    unmatched_table: HashTable<u32>,
    /// Keys (with a module path) that PEFT drops for their prefix: an outer wrapper before
    /// `base_model.model.`, or no such prefix.
    prefix_keys: u64,
    /// The first of those keys by name (a tensor index), [`NONE`] when there is none.
    prefix_first: u32,
}

/// The adapter keys PEFT drops for their prefix (see [`Scratch::prefix_keys`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct PrefixIssue {
    pub(super) keys: u64,
    /// Tensor index of the first such key by name.
    pub(super) first: u32,
}

/// How the adapter's modules meet the base once the inferred prefix rewrite is applied:
/// what PK001 and PK002 report and the counts say.
pub(super) struct Matching {
    /// The module-path rewrite that matches the most modules the base lacks, if any.
    pub(super) inferred: Option<Inferred>,
    /// Modules (ids) the base lacks by exact path; `inferred.matches` indexes this list.
    pub(super) unmatched: Vec<u32>,
    /// Those the rewrite does not match either.
    pub(super) still_unmatched: Vec<u32>,
    pub(super) prefix_issue: PrefixIssue,
    /// Modules PEFT drops today that match after the fix: those the rewrite matches, and
    /// matched ones with keys outside `base_model.model.`.
    pub(super) fixed: usize,
    /// The first module (id) that only the PEFT prefix fix makes load.
    pub(super) first_prefix_only: Option<usize>,
    /// The fix `--write-remapped` applies: `Some` exactly when `fixed > 0`.
    pub(super) rewrite: Option<Rewrite>,
}

/// Groups the adapter's tensors into modules and finds the base module of each one.
/// A module the rewrite matches gets its base module in `scratch.modules`.
pub(super) fn match_to_base(scratch: &mut Scratch, base: &BaseIndex) -> Matching {
    let unmatched = group(scratch, base);
    let prefix_issue = PrefixIssue {
        keys: scratch.prefix_keys,
        first: scratch.prefix_first,
    };
    let Scratch {
        header,
        modules,
        owned,
        ..
    } = scratch;
    let unmatched_paths: Vec<&str> = unmatched
        .iter()
        .map(|&id| {
            modules
                .get(id as usize)
                .map_or("", |m| module_path(header, owned, m))
        })
        .collect();
    let inferred = prefix_rewrite::infer(base, &unmatched_paths);
    drop(unmatched_paths);
    let mut still_unmatched: Vec<u32> = unmatched.clone();
    // Per module: matched by the module-path rewrite.
    let mut rewritten = Vec::new();
    if let Some(inferred) = &inferred {
        rewritten = vec![false; modules.len()];
        let mut explained = vec![false; unmatched.len()];
        for &(i, base_id) in &inferred.matches {
            if let (Some(&id), Some(flag)) = (unmatched.get(i), explained.get_mut(i)) {
                if let Some(m) = modules.get_mut(id as usize) {
                    m.base = base_id;
                }
                if let Some(r) = rewritten.get_mut(id as usize) {
                    *r = true;
                }
                *flag = true;
            }
        }
        still_unmatched = unmatched
            .iter()
            .zip(&explained)
            .filter(|(_, &e)| !e)
            .map(|(&id, _)| id)
            .collect();
    }
    let (fixed, first_prefix_only) = if inferred.is_some() || prefix_issue.keys > 0 {
        let mut fixed = 0usize;
        let mut first = None;
        for (id, m) in modules.iter().enumerate() {
            if m.base == NONE {
                continue;
            }
            let by_rewrite = rewritten.get(id).copied().unwrap_or(false);
            if by_rewrite || m.kinds & BAD_PREFIX != 0 {
                fixed += 1;
                if !by_rewrite && first.is_none() {
                    first = Some(id);
                }
            }
        }
        (fixed, first)
    } else {
        (0, None)
    };
    let rewrite = (fixed > 0).then(|| {
        let coverage = if modules.is_empty() {
            0.0
        } else {
            fixed as f64 / modules.len() as f64
        };
        let (strip, add) = inferred
            .as_ref()
            .map_or(("", ""), |r| (r.strip.as_str(), r.add.as_str()));
        Rewrite {
            strip: strip.to_string(),
            add: add.to_string(),
            coverage,
        }
    });
    Matching {
        inferred,
        unmatched,
        still_unmatched,
        prefix_issue,
        fixed,
        first_prefix_only,
        rewrite,
    }
}

/// The path of `module`.
pub(super) fn module_path<'a>(header: &'a Header, owned: &'a [String], module: &Module) -> &'a str {
    if module.owned != NONE {
        return owned.get(module.owned as usize).map_or("", String::as_str);
    }
    let start = module.start as usize;
    header
        .tensors()
        .get(module.key as usize)
        .and_then(|t| header.name(t).get(start..start + module.len as usize))
        .unwrap_or("")
}

/// Groups the adapter's tensors into modules and looks each module up in the base once.
/// Returns the indices of the modules the base does not have.
fn group(scratch: &mut Scratch, base: &BaseIndex) -> Vec<u32> {
    let Scratch {
        header,
        modules,
        saved,
        owned,
        slots,
        stamps,
        generation,
        unmatched_table,
        prefix_keys,
        prefix_first,
    } = scratch;
    unmatched_table.clear();
    *prefix_keys = 0;
    *prefix_first = NONE;
    modules.clear();
    saved.clear();
    owned.clear();
    *generation = generation.wrapping_add(1);
    if *generation == 0 || stamps.len() != base.module_count() {
        stamps.clear();
        stamps.resize(base.module_count(), 0);
        slots.resize(base.module_count(), NONE);
        *generation = 1;
    }
    let generation = *generation;
    let header: &Header = header;
    let mut unmatched = Vec::new();
    let mut last = NONE;
    let mut last_path: &str = "";
    let mut cursor = 0usize;
    for (i, tensor) in header.tensors().iter().enumerate() {
        let key = header.name(tensor);
        let parts = classify(key);
        if !parts.role.has_module() {
            continue;
        }
        let path: &str = &parts.module;
        let same_as_last = last != NONE && last_path == path;
        let id = if same_as_last {
            last
        } else {
            let mut hash = None;
            let found = base.find_from_hashed(path, &mut cursor, &mut hash);
            let existing = match found {
                Some(bid) => (stamps.get(bid as usize) == Some(&generation))
                    .then(|| slots.get(bid as usize).copied())
                    .flatten(),
                None => {
                    let hash = *hash.get_or_insert_with(|| path_hash(path));
                    unmatched_table
                        .find(hash, |&m| {
                            modules
                                .get(m as usize)
                                .is_some_and(|m| module_path(header, owned, m) == path)
                        })
                        .copied()
                }
            };
            match existing {
                Some(id) => id,
                None => {
                    let id = modules.len() as u32;
                    let (start, len, owned_index) = match &parts.module {
                        Cow::Borrowed(p) => {
                            // A span of the key: where its bytes start inside the key.
                            let start = (p.as_ptr() as usize).saturating_sub(key.as_ptr() as usize);
                            (start as u32, p.len() as u32, NONE)
                        }
                        Cow::Owned(p) => {
                            owned.push(p.clone());
                            (0, 0, owned.len() as u32 - 1)
                        }
                    };
                    modules.push(Module {
                        key: i as u32,
                        start,
                        len,
                        owned: owned_index,
                        kinds: 0,
                        a: NONE,
                        b: NONE,
                        b_bias: NONE,
                        emb_a: NONE,
                        emb_b: NONE,
                        magnitude: NONE,
                        base: found.unwrap_or(NONE),
                    });
                    match found {
                        Some(bid) => {
                            if let (Some(stamp), Some(slot)) =
                                (stamps.get_mut(bid as usize), slots.get_mut(bid as usize))
                            {
                                *stamp = generation;
                                *slot = id;
                            }
                        }
                        None => {
                            unmatched.push(id);
                            let rehash = |&m: &u32| {
                                modules
                                    .get(m as usize)
                                    .map_or(0, |m| path_hash(module_path(header, owned, m)))
                            };
                            unmatched_table.insert_unique(
                                hash.unwrap_or_else(|| path_hash(path)),
                                id,
                                rehash,
                            );
                        }
                    }
                    id
                }
            }
        };
        last = id;
        last_path = match &parts.module {
            Cow::Borrowed(p) => p,
            Cow::Owned(_) => "",
        };
        if last_path.is_empty() {
            last = NONE;
        }
        let Some(module) = modules.get_mut(id as usize) else {
            continue;
        };
        let i = i as u32;
        if !parts.peft_prefix_ok {
            module.kinds |= BAD_PREFIX;
            *prefix_keys += 1;
            let first_is_later = header
                .tensors()
                .get(*prefix_first as usize)
                .is_none_or(|t| header.name(t) > key);
            if first_is_later {
                *prefix_first = i;
            }
        }
        let slot = |s: &mut u32| {
            if *s == NONE {
                *s = i;
            }
        };
        match parts.role {
            Role::LoraA if !parts.is_bias => slot(&mut module.a),
            Role::LoraA => {}
            Role::LoraB if parts.is_bias => slot(&mut module.b_bias),
            Role::LoraB => slot(&mut module.b),
            Role::LoraEmbeddingA => slot(&mut module.emb_a),
            Role::LoraEmbeddingB => slot(&mut module.emb_b),
            Role::Magnitude => slot(&mut module.magnitude),
            Role::SavedCopy => saved.push(Saved {
                module: id,
                tensor: i,
            }),
            Role::OtherTuner | Role::OriginalModule | Role::Unplaced => {}
        }
        module.kinds |= match parts.role {
            r if r.is_lora() => LORA,
            Role::SavedCopy => SAVED,
            _ => OTHER,
        };
    }
    unmatched
}

/// The text after the last dot.
pub(super) fn last_component(path: &str) -> &str {
    match path.bytes().rposition(|b| b == b'.') {
        Some(dot) => path.get(dot + 1..).unwrap_or(""),
        None => path,
    }
}
