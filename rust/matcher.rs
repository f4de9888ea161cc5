//! Checks one adapter against a base index: PK001-PK006 (docs/keys.md).
//!
//! The adapter header is parsed once with borrowed names; keys are grouped into modules
//! (string slices of the keys, one hash lookup per module, none for the second key of a
//! module that follows its first), each module is looked up by exact path in the base,
//! and only the unmatched ones go to the prefix-rewrite inference.

use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::time::Instant;

use hashbrown::HashTable;
use serde_json::{json, Value};

use crate::checkpoint::adapter_config::{
    self, AdapterConfig, ConfigStatus, RankRules, RankSource, TargetModules,
};
use crate::checkpoint::adapter_keys::{classify, Role, PEFT_PREFIX};
use crate::checkpoint::adapter_path::{self, AdapterPaths};
use crate::checkpoint::error::{quote, Result};
use crate::checkpoint::prefix_rewrite;
use crate::checkpoint::{path_hash, BaseIndex, LoadAs};
use crate::report::{Counts, Finding, Report, Rewrite};
use crate::safetensors::Header;
use crate::zero_scan::{is_all_zero, MappedFile};

const NONE: u32 = u32::MAX;

/// Unmatched module paths listed in PK002's details.
const LISTED: usize = 10;

/// Last components of modules that hold a vocabulary: embeddings and LM heads.
const VOCAB_MODULES: [&str; 10] = [
    "embed_tokens",
    "lm_head",
    "wte",
    "word_embeddings",
    "embed_in",
    "embed_out",
    "tok_embeddings",
    "output",
    "shared",
    "embeddings",
];

const LORA: u8 = 1;
const OTHER: u8 = 2;
const SAVED: u8 = 4;
/// At least one of the module's keys has an outer wrapper before `base_model.model.` or
/// lacks that prefix: PEFT drops it.
const BAD_PREFIX: u8 = 8;

/// One adapter module and its tensors (indices into the header). The path is a span of
/// one of its keys, or an entry of [`Scratch::owned`] when it had to be built.
#[derive(Debug, Clone, Copy)]
struct Module {
    key: u32,
    start: u32,
    len: u32,
    owned: u32,
    kinds: u8,
    a: u32,
    b: u32,
    b_bias: u32,
    emb_a: u32,
    emb_b: u32,
    magnitude: u32,
    base: u32,
}

impl Module {
    fn b_tensors(&self) -> impl Iterator<Item = u32> + '_ {
        [self.b, self.b_bias, self.emb_b]
            .into_iter()
            .filter(|&t| t != NONE)
    }
}

/// A saved copy of a base parameter: the parameter is the key's last component.
#[derive(Debug, Clone, Copy)]
struct Saved {
    module: u32,
    tensor: u32,
}

/// Buffers reused from one check to the next on the same thread, so a fleet of adapters
/// is checked without growing and faulting in fresh memory for each.
#[derive(Default)]
struct Scratch {
    header: Header,
    modules: Vec<Module>,
    saved: Vec<Saved>,
    owned: Vec<String>,
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

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The path of `module`.
fn module_path<'a>(header: &'a Header, owned: &'a [String], module: &Module) -> &'a str {
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

/// Length and first and last bytes of a short name, to tell names apart without a compare.
fn fingerprint(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    let last = bytes.last().copied().unwrap_or(0);
    let middle = bytes.get(bytes.len() / 2).copied().unwrap_or(0);
    (bytes.len() as u64) << 24 | u64::from(first) << 16 | u64::from(middle) << 8 | u64::from(last)
}

/// The text after the last dot.
fn last_component(path: &str) -> &str {
    match path.bytes().rposition(|b| b == b'.') {
        Some(dot) => path.get(dot + 1..).unwrap_or(""),
        None => path,
    }
}

/// Checks the adapter at `adapter` against `base`. Errors are the adapter's PK000.
pub fn check(base: &BaseIndex, adapter: &Path) -> Result<Report> {
    let started = Instant::now();
    let paths = adapter_path::resolve(adapter)?;
    let mut report = SCRATCH.with(|cell| {
        let mut scratch = cell.take();
        let result = run_check(base, &paths, &mut scratch);
        cell.replace(scratch);
        result
    })?;
    report.adapter = adapter.display().to_string();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

fn run_check(base: &BaseIndex, paths: &AdapterPaths, scratch: &mut Scratch) -> Result<Report> {
    scratch.header.read_from(&paths.weights)?;
    let unmatched = group(scratch, base);
    Checker {
        base,
        paths,
        header: &scratch.header,
        owned: &scratch.owned,
    }
    .run(
        &mut scratch.modules,
        &scratch.saved,
        unmatched,
        PrefixIssue {
            keys: scratch.prefix_keys,
            first: scratch.prefix_first,
        },
    )
}

/// Like [`check`], but an unreadable adapter gives a report with one PK000 finding.
pub fn check_or_pk000(base: &BaseIndex, adapter: &Path) -> Report {
    let started = Instant::now();
    match check(base, adapter) {
        Ok(report) => report,
        Err(error) => Report::unreadable(
            adapter.display().to_string(),
            base.source.display().to_string(),
            &error,
            Counts {
                base_tensors: base.tensor_count as u64,
                base_shards: base.shard_count as u64,
                header_bytes: base.header_bytes,
                ..Counts::default()
            },
            started.elapsed().as_secs_f64(),
        ),
    }
}

/// Opens `base` and checks one adapter against it; `seconds` covers both.
pub fn check_with_base_path(adapter: &Path, base: &Path, load_as: LoadAs) -> Result<Report> {
    let started = Instant::now();
    let index = BaseIndex::open(base, load_as)?;
    let mut report = check(&index, adapter)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The adapter keys PEFT drops for their prefix (see [`Scratch::prefix_keys`]).
#[derive(Debug, Clone, Copy)]
struct PrefixIssue {
    keys: u64,
    /// Tensor index of the first such key by name.
    first: u32,
}

/// What PK001 reports: the module-path rewrite and/or the PEFT prefix fix.
struct Pk001<'a> {
    strip: &'a str,
    add: &'a str,
    /// Modules the module-path rewrite matches.
    rewritten: usize,
    /// Modules that match after the fix and that PEFT drops today.
    fixed: usize,
    coverage: f64,
    total: usize,
    example: Option<(&'a str, &'a str)>,
    /// `(found prefix, affected keys, first affected key)`.
    prefix: Option<(&'a str, u64, &'a str)>,
}

struct Checker<'a> {
    base: &'a BaseIndex,
    paths: &'a AdapterPaths,
    header: &'a Header,
    owned: &'a [String],
}

impl Checker<'_> {
    fn shape(&self, tensor: u32) -> &[u64] {
        self.header
            .tensors()
            .get(tensor as usize)
            .map_or(&[], |t| self.header.shape(t))
    }

    fn name(&self, tensor: u32) -> &str {
        self.header
            .tensors()
            .get(tensor as usize)
            .map_or("", |t| self.header.name(t))
    }

    fn path(&self, module: &Module) -> &str {
        module_path(self.header, self.owned, module)
    }

    fn run(
        &self,
        modules: &mut [Module],
        saved: &[Saved],
        unmatched_ids: Vec<u32>,
        prefix_issue: PrefixIssue,
    ) -> Result<Report> {
        let base = self.base;
        let mut counts = Counts {
            adapter_tensors: self.header.tensors().len() as u64,
            base_tensors: base.tensor_count as u64,
            base_shards: base.shard_count as u64,
            header_bytes: self.header.bytes_read() + base.header_bytes,
            ..Counts::default()
        };
        let mut report = Report {
            adapter: String::new(),
            base: base.source.display().to_string(),
            findings: Vec::new(),
            counts,
            rewrite: None,
            seconds: 0.0,
        };
        if self.header.tensors().is_empty() {
            report.findings.push(Finding {
                code: "PK006",
                message: format!(
                    "{} holds no tensors at all: PeftModel.from_pretrained loads nothing, so the model's output \
                     equals the base model's. A DeepSpeed ZeRO-3 run saves such empty placeholders when the \
                     sharded weights are not gathered first: save with `trainer.save_model()` (or under \
                     `deepspeed.zero.GatheredParameters`) and check the file size",
                    self.paths.weights.display()
                ),
                details: json!({}),
            });
            return Ok(report);
        }

        let config = adapter_config::load(&self.paths.config);
        let loaded = match &config {
            ConfigStatus::Loaded(c) => Some(c),
            _ => None,
        };
        let fan_in_fan_out = loaded.is_some_and(|c| c.fan_in_fan_out);

        counts.adapter_modules = modules.len() as u64;
        counts.matched = (modules.len() - unmatched_ids.len()) as u64;

        // PK001: one rewrite for the unmatched modules.
        let unmatched_paths: Vec<&str> = unmatched_ids
            .iter()
            .map(|&id| modules.get(id as usize).map_or("", |m| self.path(m)))
            .collect();
        let inferred = prefix_rewrite::infer(base, &unmatched_paths);
        drop(unmatched_paths);
        let mut still_unmatched: Vec<u32> = unmatched_ids.clone();
        // Per module: matched by the module-path rewrite.
        let mut rewritten = Vec::new();
        if let Some(inferred) = &inferred {
            rewritten = vec![false; modules.len()];
            let mut explained = vec![false; unmatched_ids.len()];
            for &(i, base_id) in &inferred.matches {
                if let (Some(&id), Some(flag)) = (unmatched_ids.get(i), explained.get_mut(i)) {
                    if let Some(m) = modules.get_mut(id as usize) {
                        m.base = base_id;
                    }
                    if let Some(r) = rewritten.get_mut(id as usize) {
                        *r = true;
                    }
                    *flag = true;
                }
            }
            still_unmatched = unmatched_ids
                .iter()
                .zip(&explained)
                .filter(|(_, &e)| !e)
                .map(|(&id, _)| id)
                .collect();
            counts.matched_after_rewrite = inferred.matches.len() as u64;
        }
        // Modules PEFT drops today that match after the fix: those the rewrite explains,
        // and matched ones with keys outside `base_model.model.`.
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
        if fixed > 0 {
            let coverage = if modules.is_empty() {
                0.0
            } else {
                fixed as f64 / modules.len() as f64
            };
            let (strip, add) = inferred
                .as_ref()
                .map_or(("", ""), |r| (r.strip.as_str(), r.add.as_str()));
            let example = match inferred.as_ref().and_then(|r| r.matches.first()) {
                Some(&(i, base_id)) => {
                    let adapter_path = unmatched_ids
                        .get(i)
                        .and_then(|&id| modules.get(id as usize))
                        .map_or("", |m| self.path(m));
                    Some((adapter_path, base.module_path(base_id)))
                }
                None => first_prefix_only
                    .and_then(|id| modules.get(id))
                    .map(|m| (self.path(m), base.module_path(m.base))),
            };
            let prefix = (prefix_issue.keys > 0).then(|| {
                let key = self.name(prefix_issue.first);
                let len = crate::checkpoint::adapter_keys::peft_wrapper_len(key);
                (key.get(..len).unwrap_or(""), prefix_issue.keys, key)
            });
            report.findings.push(self.pk001(&Pk001 {
                strip,
                add,
                rewritten: inferred.as_ref().map_or(0, |r| r.matches.len()),
                fixed,
                coverage,
                total: modules.len(),
                example,
                prefix,
            }));
            report.rewrite = Some(Rewrite {
                strip: strip.to_string(),
                add: add.to_string(),
                coverage,
            });
        }
        counts.unmatched = still_unmatched.len() as u64;
        let modules: &[Module] = modules;

        // PK002.
        if !still_unmatched.is_empty() {
            let mut paths: Vec<&str> = still_unmatched
                .iter()
                .filter_map(|&id| modules.get(id as usize).map(|m| self.path(m)))
                .collect();
            paths.sort_unstable();
            report
                .findings
                .push(self.pk002(&paths, modules.len(), inferred.is_some()));
        }

        // PK003.
        let mut shape_findings: Vec<(String, Finding)> = Vec::new();
        let mut has_shape_finding = vec![false; modules.len()];
        for (id, module) in modules.iter().enumerate() {
            if module.base == NONE || module.kinds & LORA == 0 {
                continue;
            }
            if let Some(finding) = self.lora_shapes(module, fan_in_fan_out) {
                shape_findings.push((self.path(module).to_string(), finding));
                if let Some(flag) = has_shape_finding.get_mut(id) {
                    *flag = true;
                }
            }
        }
        // Copies in key order: the first mismatched copy of a module is the one reported.
        let mut copies: Vec<&Saved> = saved.iter().collect();
        copies.sort_by(|a, b| self.name(a.tensor).cmp(self.name(b.tensor)));
        for copy in copies {
            let Some(module) = modules.get(copy.module as usize) else {
                continue;
            };
            if module.base == NONE
                || has_shape_finding
                    .get(copy.module as usize)
                    .copied()
                    .unwrap_or(true)
            {
                continue;
            }
            if let Some(finding) = self.saved_shape(module, copy) {
                shape_findings.push((self.path(module).to_string(), finding));
                if let Some(flag) = has_shape_finding.get_mut(copy.module as usize) {
                    *flag = true;
                }
            }
        }
        shape_findings.sort_by(|a, b| a.0.cmp(&b.0));
        report
            .findings
            .extend(shape_findings.into_iter().map(|(_, f)| f));

        // PK004.
        if let Some(finding) = self.zero_b(modules)? {
            report.findings.push(finding);
        }

        // PK005.
        match &config {
            ConfigStatus::Missing(path) => report.findings.push(Finding {
                code: "PK005",
                message: format!(
                    "{}: adapter_config.json is missing: PeftModel.from_pretrained cannot load the adapter without \
                     it (it fails looking for the config). Save the adapter with `save_pretrained`, which writes \
                     both files, or copy the training run's adapter_config.json beside the weights",
                    path.display()
                ),
                details: json!({"field": "adapter_config.json", "config": null, "tensors": null, "reason": "missing"}),
            }),
            ConfigStatus::Unreadable(path, reason) => report.findings.push(Finding {
                code: "PK005",
                message: format!(
                    "{}: adapter_config.json is unreadable ({reason}): PeftModel.from_pretrained fails on it. \
                     Restore the config written by `save_pretrained`",
                    path.display()
                ),
                details: json!({"field": "adapter_config.json", "config": null, "tensors": null, "reason": reason}),
            }),
            ConfigStatus::Loaded(config) => {
                report.findings.extend(self.config_findings(config, modules));
            }
        }

        report.counts = counts;
        Ok(report)
    }

    fn pk001(&self, f: &Pk001<'_>) -> Finding {
        let describe = match (f.strip.is_empty(), f.add.is_empty()) {
            (false, true) => format!("strip {}", quote(f.strip)),
            (true, false) => format!("add {}", quote(f.add)),
            _ => format!("strip {}, add {}", quote(f.strip), quote(f.add)),
        };
        let prefix_dot = format!("{}.", self.base.base_model_prefix);
        let hint = if f.strip.contains("_orig_mod.") {
            "; these are the keys of a torch.compile'd model (save the original module, `model._orig_mod`)"
        } else if f.strip.starts_with("module.") {
            "; these are the keys of a DDP/DataParallel-wrapped model (save `model.module`)"
        } else if f.strip.contains("language_model.") {
            "; the adapter was trained inside a multimodal wrapper"
        } else if self.base.load_as == LoadAs::BaseModel
            && f.strip == prefix_dot
            && f.add.is_empty()
        {
            "; the adapter was trained on AutoModelForCausalLM but is loaded into AutoModel (load the base \
             with AutoModelForCausalLM instead)"
        } else if self.base.load_as == LoadAs::CausalLm && f.add == prefix_dot && f.strip.is_empty()
        {
            "; the adapter was trained on a bare AutoModel and is loaded into AutoModelForCausalLM"
        } else {
            ""
        };
        let total = f.total;
        let (example_text, example) = match f.example {
            Some((adapter, base)) => (
                format!(" (e.g. {} -> {})", quote(adapter), quote(base)),
                json!({"adapter": adapter, "base": base}),
            ),
            None => (String::new(), Value::Null),
        };
        let mut parts = Vec::new();
        if f.rewritten > 0 {
            parts.push(format!(
                "{} of {total} adapter modules match the base only after a prefix rewrite, {describe}\
                 {example_text}{hint}",
                f.rewritten
            ));
        }
        let mut details = json!({
            "rewrite": {"strip": f.strip, "add": f.add},
            "coverage": f.coverage,
            "modules": f.fixed,
            "example": example,
        });
        if let Some((found, keys, first)) = f.prefix {
            let what = if found.is_empty() {
                format!("lack PEFT's {} prefix", quote(PEFT_PREFIX))
            } else {
                format!(
                    "start with {} instead of PEFT's {}",
                    quote(found),
                    quote(PEFT_PREFIX)
                )
            };
            let wrapper_hint = if found.starts_with("module.") {
                " (a DDP/DataParallel-wrapped PeftModel: save `model.module`)"
            } else if found.contains("_orig_mod.") {
                " (a torch.compile'd PeftModel: save `model._orig_mod`)"
            } else {
                ""
            };
            parts.push(format!(
                "{keys} adapter keys {what} (e.g. {}){wrapper_hint}: PEFT only loads keys under {}",
                quote(first),
                quote(PEFT_PREFIX)
            ));
            if let Some(map) = details.as_object_mut() {
                map.insert(
                    "peft_prefix".into(),
                    json!({"found": found, "expected": PEFT_PREFIX, "keys": keys, "first": first}),
                );
            }
        }
        let n = f.fixed;
        Finding {
            code: "PK001",
            message: format!(
                "{}. {n} of {total} adapter modules are affected: PEFT matches adapter keys to the model's \
                 modules by exact name and silently drops the ones that do not match, so these weights never \
                 load and the model's output equals the base model's. Fix the keys with `peftfix keys ADAPTER \
                 --base BASE --write-remapped OUT` (tensor bytes unchanged) and load OUT",
                parts.join("; ")
            ),
            details,
        }
    }

    fn pk002(&self, paths: &[&str], total: usize, after_rewrite: bool) -> Finding {
        let count = paths.len();
        let listed: Vec<&str> = paths.iter().take(LISTED).copied().collect();
        let first = listed.first().map_or_else(String::new, |p| quote(p));
        let scope = if count == total {
            format!("none of the adapter's {total} modules match a module of the base")
        } else {
            format!("{count} of {total} adapter modules match no module of the base")
        };
        let rewrite = if after_rewrite {
            ", even after the inferred prefix rewrite"
        } else {
            ""
        };
        Finding {
            code: "PK002",
            message: format!(
                "{scope}{rewrite} (first: {first}): PEFT ignores their weights without an error, so those \
                 layers keep the base model's behaviour. The adapter was trained for another architecture or \
                 base model: check --base (and --load-as)"
            ),
            details: json!({"count": count, "modules": listed}),
        }
    }

    fn shape_finding(
        &self,
        module: &Module,
        tensor: u32,
        base_shape: &[u64],
        what: String,
        extra: Option<(&str, Value)>,
    ) -> Finding {
        let adapter_shape = self.shape(tensor);
        let mut details = json!({
            "module": self.path(module),
            "adapter_shape": adapter_shape,
            "base_shape": base_shape,
            "tensor": self.name(tensor),
        });
        if let (Some((key, value)), Some(map)) = (extra, details.as_object_mut()) {
            map.insert(key.to_string(), value);
        }
        Finding {
            code: "PK003",
            message: format!("{}: {what}", quote(self.path(module))),
            details,
        }
    }

    fn size_mismatch_tail(&self) -> &'static str {
        ": PeftModel.from_pretrained fails with \"size mismatch\". The adapter was trained on another model \
         (or model size) than this base"
    }

    /// LoRA A/B, embedding A/B and DoRA magnitude against the base weight.
    fn lora_shapes(&self, module: &Module, fan_in_fan_out: bool) -> Option<Finding> {
        let weight = self.base.weight(module.base)?;
        let w = weight.shape;
        let tail = self.size_mismatch_tail();
        // Embedding LoRA (checked alone: an embedding has no Linear layout).
        if w.len() >= 2 && (module.emb_a != NONE || module.emb_b != NONE) {
            let vocab = *w.first()?;
            let dim = *w.get(1)?;
            if module.emb_a != NONE {
                let a = self.shape(module.emb_a);
                if a.len() != 2 || a.get(1) != Some(&vocab) {
                    if let Some(&rows) = a.get(1).filter(|_| a.len() == 2) {
                        return Some(self.shape_finding(
                            module,
                            module.emb_a,
                            w,
                            format!(
                                "lora_embedding_A is {a:?}: base has {vocab} rows, adapter {rows}: call \
                                 `model.resize_token_embeddings({rows})` before `PeftModel.from_pretrained` \
                                 (without it loading fails with \"size mismatch\")"
                            ),
                            Some(("resize_to", json!(rows))),
                        ));
                    }
                    return Some(self.shape_finding(
                        module,
                        module.emb_a,
                        w,
                        format!("lora_embedding_A is {a:?} but the base embedding {w:?} has {vocab} rows{tail}"),
                        None,
                    ));
                }
            }
            if module.emb_b != NONE {
                let b = self.shape(module.emb_b);
                if b.first() != Some(&dim) {
                    return Some(self.shape_finding(
                        module,
                        module.emb_b,
                        w,
                        format!("lora_embedding_B is {b:?} but the base embedding {w:?} has dimension {dim}{tail}"),
                        None,
                    ));
                }
                if module.emb_a != NONE {
                    let a = self.shape(module.emb_a);
                    if let (Some(rank_a), Some(rank_b)) = (a.first(), b.get(1)) {
                        if rank_a != rank_b {
                            return Some(self.shape_finding(
                                module,
                                module.emb_b,
                                w,
                                format!(
                                    "lora_embedding_A has rank {rank_a} but lora_embedding_B has rank {rank_b}: the file \
                                     is inconsistent and PeftModel.from_pretrained fails with \"size mismatch\""
                                ),
                                None,
                            ));
                        }
                    }
                }
            }
            if module.magnitude != NONE {
                // An embedding's DoRA magnitude has one element per embedding dimension.
                let m = self.shape(module.magnitude);
                let numel = m.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
                if numel != Some(dim) {
                    return Some(self.shape_finding(
                        module,
                        module.magnitude,
                        w,
                        format!("the DoRA magnitude vector is {m:?} but the base embedding {w:?} has dimension {dim}{tail}"),
                        None,
                    ));
                }
            }
            return None;
        }
        if w.len() >= 2 && (module.a != NONE || module.b != NONE || module.magnitude != NONE) {
            let w0 = *w.first()?;
            let w1 = *w.get(1)?;
            let swap = fan_in_fan_out && w.len() == 2;
            let (out, inp) = if swap { (w1, w0) } else { (w0, w1) };
            let layout = if swap {
                " (Conv1D, fan_in_fan_out: stored [in, out])"
            } else {
                ""
            };
            if module.a != NONE {
                let a = self.shape(module.a);
                if a.get(1) != Some(&inp) {
                    let hint = if a.len() == 2 && a.get(1) == Some(&out) && out != inp {
                        " (the transposed layout fits: is fan_in_fan_out in adapter_config.json right?)"
                    } else {
                        ""
                    };
                    return Some(self.shape_finding(
                        module,
                        module.a,
                        w,
                        format!("lora_A is {a:?} but the base weight {w:?}{layout} has {inp} input features{hint}{tail}"),
                        None,
                    ));
                }
            }
            if module.b != NONE {
                let b = self.shape(module.b);
                if b.first() != Some(&out) {
                    return Some(self.shape_finding(
                        module,
                        module.b,
                        w,
                        format!("lora_B is {b:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                        None,
                    ));
                }
                if module.a != NONE {
                    let a = self.shape(module.a);
                    if let (Some(rank_a), Some(rank_b)) = (a.first(), b.get(1)) {
                        if rank_a != rank_b {
                            return Some(self.shape_finding(
                                module,
                                module.b,
                                w,
                                format!(
                                    "lora_A has rank {rank_a} but lora_B has rank {rank_b} (lora_A {a:?}, lora_B {b:?}): \
                                     the file is inconsistent and PeftModel.from_pretrained fails with \"size mismatch\""
                                ),
                                None,
                            ));
                        }
                    }
                }
            }
            if module.b_bias != NONE {
                let bias = self.shape(module.b_bias);
                if bias.first() != Some(&out) || bias.len() != 1 {
                    return Some(self.shape_finding(
                        module,
                        module.b_bias,
                        w,
                        format!("lora_B bias is {bias:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                        None,
                    ));
                }
            }
            if module.magnitude != NONE {
                let m = self.shape(module.magnitude);
                let numel = m.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
                if numel != Some(out) {
                    return Some(self.shape_finding(
                        module,
                        module.magnitude,
                        w,
                        format!("the DoRA magnitude vector is {m:?} but the base weight {w:?}{layout} has {out} output features{tail}"),
                        None,
                    ));
                }
            }
        }
        None
    }

    /// A `modules_to_save` copy against the base parameter it replaces.
    fn saved_shape(&self, module: &Module, copy: &Saved) -> Option<Finding> {
        let key = self.name(copy.tensor);
        let param_name = last_component(key);
        let param = self.base.param(module.base, param_name)?;
        let base_shape = param.shape;
        let adapter_shape = self.shape(copy.tensor);
        if adapter_shape == base_shape {
            return None;
        }
        let path = self.path(module);
        let last = last_component(path);
        let rows_only = adapter_shape.len() == base_shape.len()
            && !adapter_shape.is_empty()
            && adapter_shape.get(1..) == base_shape.get(1..);
        if rows_only && VOCAB_MODULES.contains(&last) {
            let rows = adapter_shape.first().copied().unwrap_or(0);
            let base_rows = base_shape.first().copied().unwrap_or(0);
            return Some(self.shape_finding(
                module,
                copy.tensor,
                base_shape,
                format!(
                    "base has {base_rows} rows, adapter {rows}: call `model.resize_token_embeddings({rows})` before \
                     `PeftModel.from_pretrained` (the adapter was trained with an extended tokenizer; without the \
                     resize loading fails with \"size mismatch\")"
                ),
                Some(("resize_to", json!(rows))),
            ));
        }
        Some(self.shape_finding(
            module,
            copy.tensor,
            base_shape,
            format!(
                "the saved copy of `{}` is {adapter_shape:?} but the base parameter is {base_shape:?}{}",
                param_name,
                self.size_mismatch_tail()
            ),
            None,
        ))
    }

    /// PK004: every lora_B / lora_embedding_B tensor all zeros. Stops at the first
    /// non-zero module, so a trained adapter costs a few bytes of reading.
    fn zero_b(&self, modules: &[Module]) -> Result<Option<Finding>> {
        let with_b: Vec<&Module> = modules
            .iter()
            .filter(|m| m.b_tensors().next().is_some())
            .collect();
        if with_b.is_empty() {
            return Ok(None);
        }
        let path = &self.paths.weights;
        let mapped = MappedFile::open(path)?;
        let data_start = self.header.data_start();
        for module in &with_b {
            for tensor in module.b_tensors() {
                let Some(entry) = self.header.tensors().get(tensor as usize) else {
                    continue;
                };
                let start = data_start.saturating_add(entry.begin);
                let end = data_start.saturating_add(entry.end);
                let bytes = mapped.bytes(path, start, end)?;
                if !is_all_zero(bytes, entry.dtype) {
                    return Ok(None);
                }
            }
        }
        let n = with_b.len();
        Ok(Some(Finding {
            code: "PK004",
            message: format!(
                "every lora_B tensor of the adapter is all zeros ({n} modules): the LoRA update B·A is zero, so the \
                 adapter is a no-op and the model's output equals the base model's. It was never trained, or the \
                 save went wrong (e.g. saved before training, or from a ZeRO-3 shard without gathering): re-save \
                 from the trained model"
            ),
            details: json!({"modules": n, "zero_modules": n}),
        }))
    }

    fn config_findings(&self, config: &AdapterConfig, modules: &[Module]) -> Vec<Finding> {
        let mut findings = Vec::new();
        let lora: Vec<&Module> = modules.iter().filter(|m| m.kinds & LORA != 0).collect();

        // r / rank_pattern against lora_A rows.
        if config.is_lora() && (config.r.is_some() || !config.rank_pattern.is_empty()) {
            let rules = RankRules::new(config);
            let mut count = 0u64;
            let mut first: Option<(&str, u64, u64, String)> = None;
            for module in &lora {
                let a = if module.a != NONE {
                    module.a
                } else {
                    module.emb_a
                };
                if a == NONE {
                    continue;
                }
                let Some(&rows) = self.shape(a).first() else {
                    continue;
                };
                // The path matters only to rank_pattern.
                let rank = if rules.has_patterns() {
                    rules.rank_for(self.path(module))
                } else {
                    rules.default_rank()
                };
                let Some((expected, source)) = rank else {
                    continue;
                };
                if rows != expected {
                    count += 1;
                    let path: &str = self.path(module);
                    if first.as_ref().is_none_or(|f| path < f.0) {
                        let source = match source {
                            RankSource::R => "r".to_string(),
                            RankSource::Pattern(key) => format!("rank_pattern[{}]", quote(key)),
                        };
                        first = Some((path, expected, rows, source));
                    }
                }
            }
            if let Some((path, expected, rows, source)) = first {
                let field = if source == "r" { "r" } else { "rank_pattern" };
                findings.push(Finding {
                    code: "PK005",
                    message: format!(
                        "adapter_config.json gives {source} = {expected} but lora_A of {} has {rows} rows ({count} \
                         modules disagree): PEFT builds the LoRA layers from the config, so \
                         PeftModel.from_pretrained fails with \"size mismatch\". Put the rank the adapter was \
                         trained with back into the config",
                        quote(path)
                    ),
                    details: json!({"field": field, "config": expected, "tensors": rows, "module": path, "count": count}),
                });
            }
        }

        // target_modules against the modules present.
        if let TargetModules::List(entries) = &config.target_modules {
            let matches = |path: &str, entry: &str| {
                path == entry
                    || (path.len() > entry.len()
                        && path.ends_with(entry)
                        && path.as_bytes().get(path.len() - entry.len() - 1) == Some(&b'.'))
            };
            let simple: Vec<&str> = entries
                .iter()
                .map(String::as_str)
                .filter(|e| !e.contains('.'))
                .collect();
            let dotted: Vec<&str> = entries
                .iter()
                .map(String::as_str)
                .filter(|e| e.contains('.'))
                .collect();
            // One pass: the distinct last components of tuner modules (a handful: a small
            // vector searched by a cheap fingerprint beats hashing), whether LoRA modules
            // end in them, and the LoRA modules the list does not cover.
            struct Last<'s> {
                print: u64,
                text: &'s str,
                lora: bool,
            }
            let mut lasts: Vec<Last<'_>> = Vec::new();
            let mut unexpected: Vec<&str> = Vec::new();
            let mut any_tuner = false;
            for module in modules.iter().filter(|m| m.kinds & (LORA | OTHER) != 0) {
                any_tuner = true;
                let path = self.path(module);
                let last = last_component(path);
                let print = fingerprint(last);
                let is_lora = module.kinds & LORA != 0;
                match lasts
                    .iter_mut()
                    .find(|l| l.print == print && l.text == last)
                {
                    Some(seen) => seen.lora |= is_lora,
                    None => lasts.push(Last {
                        print,
                        text: last,
                        lora: is_lora,
                    }),
                }
                if is_lora
                    && !dotted.is_empty()
                    && !simple.contains(&last)
                    && !dotted.iter().any(|e| matches(path, e))
                    && !unexpected.contains(&last)
                {
                    unexpected.push(last);
                }
            }
            if dotted.is_empty() {
                unexpected = lasts
                    .iter()
                    .filter(|l| l.lora && !simple.contains(&l.text))
                    .map(|l| l.text)
                    .collect();
            }
            let lasts: Vec<&str> = lasts.iter().map(|l| l.text).collect();
            if any_tuner {
                let missing: Vec<&str> = entries
                    .iter()
                    .map(String::as_str)
                    .filter(|entry| {
                        if entry.contains('.') {
                            !modules
                                .iter()
                                .filter(|m| m.kinds & (LORA | OTHER) != 0)
                                .any(|m| matches(self.path(m), entry))
                        } else {
                            !lasts.contains(entry)
                        }
                    })
                    .collect();
                unexpected.sort_unstable();
                let mut present = lasts;
                present.sort_unstable();
                if !missing.is_empty() || !unexpected.is_empty() {
                    let mut parts = Vec::new();
                    if !missing.is_empty() {
                        parts.push(format!(
                            "lists {} that no adapter module ends with (PEFT gives those layers fresh LoRA weights with \
                             lora_B = 0: no effect)",
                            missing.iter().map(|m| quote(m)).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    if !unexpected.is_empty() {
                        parts.push(format!(
                            "omits {} that the adapter has LoRA weights for (PEFT creates no LoRA layer there and \
                             silently drops those weights)",
                            unexpected.iter().map(|m| quote(m)).collect::<Vec<_>>().join(", ")
                        ));
                    }
                    findings.push(Finding {
                        code: "PK005",
                        message: format!(
                            "adapter_config.json target_modules {}: the config does not describe these tensors; \
                             restore the config the adapter was trained with",
                            parts.join(" and ")
                        ),
                        details: json!({
                            "field": "target_modules",
                            "config": entries,
                            "tensors": present,
                            "missing": missing,
                            "unexpected": unexpected,
                        }),
                    });
                }
            }
        }

        // use_dora against magnitude vectors.
        if !lora.is_empty() {
            let magnitudes = lora.iter().filter(|m| m.magnitude != NONE).count();
            let use_dora = config.use_dora.unwrap_or(false);
            if use_dora && magnitudes == 0 {
                findings.push(Finding {
                    code: "PK005",
                    message: "adapter_config.json sets use_dora = true but the adapter has no lora_magnitude_vector \
                              tensors: PEFT initialises the magnitudes from the base weights instead of the trained \
                              ones and reports them as missing keys. Set use_dora to false, or re-save the DoRA \
                              adapter"
                        .to_string(),
                    details: json!({"field": "use_dora", "config": true, "tensors": false}),
                });
            } else if !use_dora && magnitudes > 0 {
                findings.push(Finding {
                    code: "PK005",
                    message: format!(
                        "adapter_config.json sets use_dora = false but the adapter has {magnitudes} DoRA \
                         lora_magnitude_vector tensors: PEFT builds plain LoRA layers and silently drops the \
                         magnitudes, so the output is not what was trained. Set use_dora to true"
                    ),
                    details: json!({"field": "use_dora", "config": false, "tensors": true, "count": magnitudes}),
                });
            }
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{
        finding, fixture, qv_tensors, write_adapter, write_tensors, CONFIG_QV,
    };

    #[test]
    fn clean_adapter_has_no_finding() {
        let fx = fixture(LoadAs::CausalLm);
        let report = fx.check("clean", &qv_tensors("model.", 3), Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        assert_eq!(report.counts.adapter_tensors, 8);
        assert_eq!(report.counts.adapter_modules, 4);
        assert_eq!(report.counts.matched, 4);
        assert_eq!(report.counts.unmatched, 0);
        assert_eq!(report.counts.base_tensors, 19);
        assert_eq!(report.counts.base_shards, 1);
        assert!(report.counts.header_bytes > fx.base.header_bytes);
        assert!(report.rewrite.is_none());
    }

    #[test]
    fn prefixes_give_pk001_and_remapping_fixes_them() {
        let fx = fixture(LoadAs::CausalLm);
        for (prefix, strip, add) in [
            ("_orig_mod.model.", "_orig_mod.", ""),
            ("module.model.", "module.", ""),
            ("", "", "model."),
            ("language_model.model.", "language_model.", ""),
        ] {
            let report = fx.check(prefix, &qv_tensors(prefix, 3), Some(CONFIG_QV));
            assert_eq!(
                report.codes(),
                ["PK001"],
                "{prefix}: {:#?}",
                report.findings
            );
            let f = finding(&report, "PK001");
            assert_eq!(f.details["rewrite"], json!({"strip": strip, "add": add}));
            assert_eq!(f.details["coverage"], json!(1.0));
            assert_eq!(f.details["modules"], json!(4));
            assert!(f.message.contains("silently drops"), "{}", f.message);
            assert_eq!(report.counts.matched, 0);
            assert_eq!(report.counts.matched_after_rewrite, 4);
            let rewrite = report.rewrite.clone().unwrap();
            assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), (strip, add));

            let fixed = fx.dir.path().join(format!("fixed-{prefix}"));
            crate::checkpoint::remap::write_remapped(
                &fx.dir.path().join(prefix),
                &fixed,
                strip,
                add,
            )
            .unwrap();
            let again = check(&fx.base, &fixed).unwrap();
            assert!(again.findings.is_empty(), "{prefix}: {:#?}", again.findings);
        }
    }

    #[test]
    fn ddp_outer_wrapper_is_pk001_and_remapping_fixes_it() {
        let fx = fixture(LoadAs::CausalLm);
        let t: Vec<_> = qv_tensors("model.", 3)
            .into_iter()
            .map(|(k, d, s, f)| (format!("module.{k}"), d, s, f))
            .collect();
        let report = fx.check("ddp-outer", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": ""}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["modules"], json!(4));
        assert_eq!(
            f.details["peft_prefix"],
            json!({
                "found": "module.base_model.model.",
                "expected": "base_model.model.",
                "keys": 8,
                "first": "module.base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            })
        );
        assert!(
            f.message
                .contains("PEFT only loads keys under `base_model.model.`"),
            "{}",
            f.message
        );
        assert_eq!(report.counts.matched, 4);
        assert_eq!(report.counts.matched_after_rewrite, 0);
        let rewrite = report.rewrite.clone().unwrap();
        assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), ("", ""));
        let fixed = fx.dir.path().join("fixed-ddp-outer");
        crate::checkpoint::remap::write_remapped(&fx.dir.path().join("ddp-outer"), &fixed, "", "")
            .unwrap();
        let again = check(&fx.base, &fixed).unwrap();
        assert!(again.findings.is_empty(), "{:#?}", again.findings);
    }

    #[test]
    fn missing_peft_prefix_is_pk001_and_remapping_fixes_it() {
        let fx = fixture(LoadAs::CausalLm);
        let strip_peft = |prefix: &str| -> Vec<_> {
            qv_tensors(prefix, 3)
                .into_iter()
                .map(|(k, d, s, f)| (k["base_model.model.".len()..].to_string(), d, s, f))
                .collect()
        };
        // Module paths match as they are: only the PEFT prefix is wrong.
        let report = fx.check("no-prefix", &strip_peft("model."), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": ""}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["peft_prefix"]["found"], json!(""));
        assert_eq!(
            f.details["peft_prefix"]["expected"],
            json!("base_model.model.")
        );
        assert_eq!(f.details["peft_prefix"]["keys"], json!(8));
        assert!(f.message.contains("lack PEFT's"), "{}", f.message);
        let rewrite = report.rewrite.clone().unwrap();
        assert_eq!((rewrite.strip.as_str(), rewrite.add.as_str()), ("", ""));
        let fixed = fx.dir.path().join("fixed-no-prefix");
        crate::checkpoint::remap::write_remapped(&fx.dir.path().join("no-prefix"), &fixed, "", "")
            .unwrap();
        let again = check(&fx.base, &fixed).unwrap();
        assert!(again.findings.is_empty(), "{:#?}", again.findings);

        // Both: a module-path rewrite and a missing prefix, one PK001.
        let report = fx.check("no-prefix-automodel", &strip_peft(""), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "", "add": "model."}));
        assert_eq!(f.details["coverage"], json!(1.0));
        assert_eq!(f.details["peft_prefix"]["found"], json!(""));
        let fixed = fx.dir.path().join("fixed-no-prefix-automodel");
        crate::checkpoint::remap::write_remapped(
            &fx.dir.path().join("no-prefix-automodel"),
            &fixed,
            "",
            "model.",
        )
        .unwrap();
        let again = check(&fx.base, &fixed).unwrap();
        assert!(again.findings.is_empty(), "{:#?}", again.findings);

        // Half the keys without the prefix: coverage counts the affected modules only.
        let mut t = qv_tensors("model.", 3);
        for entry in t.iter_mut().filter(|e| e.0.contains(".layers.1.")) {
            entry.0 = entry.0["base_model.model.".len()..].to_string();
        }
        let report = fx.check("half-no-prefix", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK001"], "{:#?}", report.findings);
        let f = finding(&report, "PK001");
        assert_eq!(f.details["coverage"], json!(0.5));
        assert_eq!(f.details["modules"], json!(2));
        assert_eq!(f.details["peft_prefix"]["keys"], json!(4));
    }

    #[test]
    fn base_model_view_wants_the_prefix_stripped() {
        let fx = fixture(LoadAs::BaseModel);
        let report = fx.check("causal", &qv_tensors("model.", 3), Some(CONFIG_QV));
        let f = finding(&report, "PK001");
        assert_eq!(f.details["rewrite"], json!({"strip": "model.", "add": ""}));
        assert!(f.message.contains("AutoModelForCausalLM"), "{}", f.message);
        let report = fx.check("bare", &qv_tensors("", 3), Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn partial_coverage_and_unmatched_rest() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("_orig_mod.model.", 3);
        t.push((
            "base_model.model._orig_mod.vision.blocks.0.qkv.lora_A.weight".into(),
            "F32",
            vec![2, 8],
            1,
        ));
        t.push((
            "base_model.model._orig_mod.vision.blocks.0.qkv.lora_B.weight".into(),
            "F32",
            vec![8, 2],
            1,
        ));
        let report = fx.check("partial", &t, Some(CONFIG_QV));
        assert_eq!(
            report.codes(),
            ["PK001", "PK002", "PK005"],
            "{:#?}",
            report.findings
        );
        assert_eq!(finding(&report, "PK001").details["coverage"], json!(0.8));
        let f = finding(&report, "PK002");
        assert_eq!(
            f.details,
            json!({"count": 1, "modules": ["_orig_mod.vision.blocks.0.qkv"]})
        );
        assert!(
            f.message.contains("even after the inferred prefix rewrite"),
            "{}",
            f.message
        );
        assert_eq!(report.counts.unmatched, 1);
        // `qkv` is not in target_modules.
        assert_eq!(
            finding(&report, "PK005").details["unexpected"],
            json!(["qkv"])
        );
    }

    #[test]
    fn other_architecture_is_pk002() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = Vec::new();
        for layer in 0..3 {
            let m = format!("base_model.model.transformer.h.{layer}.attn.c_attn");
            t.push((format!("{m}.lora_A.weight"), "F32", vec![2, 8], 1));
            t.push((format!("{m}.lora_B.weight"), "F32", vec![24, 2], 1));
        }
        let report = fx.check(
            "gpt2",
            &t,
            Some(r#"{"r": 2, "target_modules": ["c_attn"]}"#),
        );
        assert_eq!(report.codes(), ["PK002"], "{:#?}", report.findings);
        let f = finding(&report, "PK002");
        assert_eq!(f.details["count"], json!(3));
        assert_eq!(
            f.details["modules"][0],
            json!("transformer.h.0.attn.c_attn")
        );
        assert!(
            f.message.starts_with("none of the adapter's 3 modules"),
            "{}",
            f.message
        );
        assert!(report.rewrite.is_none());
    }

    #[test]
    fn lora_shape_mismatch_is_pk003() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("model.", 3);
        t[0].2 = vec![2, 16]; // layer 0 q_proj lora_A with 16 input features
        t[3].2 = vec![5, 2]; // layer 0 v_proj lora_B with 5 output features
        let report = fx.check("shapes", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003", "PK003"], "{:#?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(
            f.details,
            json!({
                "module": "model.layers.0.self_attn.q_proj",
                "adapter_shape": [2, 16],
                "base_shape": [8, 8],
                "tensor": "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
            })
        );
        assert!(f.message.contains("size mismatch"), "{}", f.message);
        assert_eq!(
            report.findings[1].details["tensor"],
            json!("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight")
        );
    }

    #[test]
    fn resized_vocabulary_names_the_row_count() {
        let fx = fixture(LoadAs::CausalLm);
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        t.push((
            "base_model.model.model.embed_tokens.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        let report = fx.check("resized", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003", "PK003"], "{:#?}", report.findings);
        let f = &report.findings[0];
        assert_eq!(f.details["module"], json!("lm_head"));
        assert_eq!(f.details["resize_to"], json!(36));
        assert!(f.message.contains("base has 32 rows, adapter 36: call `model.resize_token_embeddings(36)` before `PeftModel.from_pretrained`"), "{}", f.message);
        assert_eq!(
            report.findings[1].details["module"],
            json!("model.embed_tokens")
        );
        // In-memory modules_to_save naming, same verdict.
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.modules_to_save.default.weight".into(),
            "F32",
            vec![36, 8],
            1,
        ));
        t.push((
            "base_model.model.lm_head.original_module.weight".into(),
            "F32",
            vec![32, 8],
            1,
        ));
        let report = fx.check("resized2", &t, Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        // Matching copies are fine.
        let mut t = qv_tensors("model.", 3);
        t.push((
            "base_model.model.lm_head.weight".into(),
            "F32",
            vec![32, 8],
            1,
        ));
        let report = fx.check("saved", &t, Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn embedding_lora_and_dora() {
        let fx = fixture(LoadAs::CausalLm);
        let config = r#"{"r": 2, "target_modules": ["embed_tokens", "q_proj"], "use_dora": true}"#;
        let t: Vec<(String, &'static str, Vec<u64>, u8)> = vec![
            (
                "base_model.model.model.embed_tokens.lora_embedding_A".into(),
                "F32",
                vec![2, 32],
                1,
            ),
            (
                "base_model.model.model.embed_tokens.lora_embedding_B".into(),
                "F32",
                vec![8, 2],
                1,
            ),
            (
                "base_model.model.model.embed_tokens.lora_magnitude_vector".into(),
                "F32",
                vec![8],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".into(),
                "F32",
                vec![2, 8],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight".into(),
                "F32",
                vec![8, 2],
                1,
            ),
            (
                "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector".into(),
                "F32",
                vec![8],
                1,
            ),
        ];
        let report = fx.check("emb", &t, Some(config));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);

        let mut resized = t.clone();
        resized[0].2 = vec![2, 40];
        let report = fx.check("emb-resized", &resized, Some(config));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        assert!(report.findings[0]
            .message
            .contains("resize_token_embeddings(40)"));

        let mut bad_mag = t.clone();
        bad_mag[5].2 = vec![4];
        let report = fx.check("bad-mag", &bad_mag, Some(config));
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);

        let report = fx.check(
            "no-dora-flag",
            &t,
            Some(r#"{"r": 2, "target_modules": ["embed_tokens", "q_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(report.findings[0].details["field"], json!("use_dora"));
    }

    #[test]
    fn conv1d_fan_in_fan_out() {
        let dir = tempfile::tempdir().unwrap();
        let base_path = dir.path().join("gpt2.safetensors");
        write_tensors(
            &base_path,
            &[
                ("transformer.h.0.attn.c_attn.weight", "F32", vec![8, 24]),
                ("transformer.wte.weight", "F32", vec![50, 8]),
            ],
        );
        let base = BaseIndex::open(&base_path, LoadAs::CausalLm).unwrap();
        assert!(base.tied_lm_head);
        let t = vec![
            (
                "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight",
                "F32",
                vec![2, 8],
                1,
            ),
            (
                "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                "F32",
                vec![24, 2],
                1,
            ),
            ("base_model.model.lm_head.weight", "F32", vec![50, 8], 1),
        ];
        let adapter = write_adapter(
            &dir.path().join("a"),
            &t,
            Some(
                r#"{"r": 2, "target_modules": ["c_attn"], "fan_in_fan_out": true, "modules_to_save": ["lm_head"]}"#,
            ),
        );
        let report = check(&base, &adapter).unwrap();
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        std::fs::write(
            adapter.join("adapter_config.json"),
            r#"{"r": 2, "target_modules": ["c_attn"]}"#,
        )
        .unwrap();
        let report = check(&base, &adapter).unwrap();
        assert_eq!(report.codes(), ["PK003"], "{:#?}", report.findings);
        assert!(
            report.findings[0].message.contains("fan_in_fan_out"),
            "{}",
            report.findings[0].message
        );
    }

    #[test]
    fn zero_lora_b_is_pk004() {
        let fx = fixture(LoadAs::CausalLm);
        let report = fx.check("zero", &qv_tensors("model.", 0), Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK004"]);
        assert_eq!(
            report.findings[0].details,
            json!({"modules": 4, "zero_modules": 4})
        );
        // Negative zeros are zeros; one non-zero B anywhere means a live adapter.
        let mut t = qv_tensors("model.", 0);
        t[1].3 = 0x80; // f32 bytes 80 80 80 80 are not -0.0...
        let report = fx.check("nonzero", &t, Some(CONFIG_QV));
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
    }

    #[test]
    fn config_checks() {
        let fx = fixture(LoadAs::CausalLm);
        let t = qv_tensors("model.", 3);
        let report = fx.check(
            "r",
            &t,
            Some(r#"{"r": 4, "target_modules": ["q_proj", "v_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        let d = &report.findings[0].details;
        assert_eq!(
            (
                d["field"].clone(),
                d["config"].clone(),
                d["tensors"].clone()
            ),
            (json!("r"), json!(4), json!(2))
        );
        assert_eq!(d["count"], json!(4));

        let report = fx.check("pattern", &t, Some(r#"{"r": 2, "rank_pattern": {"v_proj": 8}, "target_modules": ["q_proj", "v_proj"]}"#));
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(report.findings[0].details["field"], json!("rank_pattern"));
        assert_eq!(report.findings[0].details["count"], json!(2));

        let report = fx.check(
            "targets",
            &t,
            Some(r#"{"r": 2, "target_modules": ["q_proj", "k_proj"]}"#),
        );
        assert_eq!(report.codes(), ["PK005"]);
        let d = &report.findings[0].details;
        assert_eq!(d["missing"], json!(["k_proj"]));
        assert_eq!(d["unexpected"], json!(["v_proj"]));
        assert_eq!(d["tensors"], json!(["q_proj", "v_proj"]));

        let report = fx.check(
            "dotted",
            &t,
            Some(r#"{"r": 2, "target_modules": ["self_attn.q_proj", "v_proj"]}"#),
        );
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        let report = fx.check(
            "regex",
            &t,
            Some(r#"{"r": 2, "target_modules": "all-linear"}"#),
        );
        assert!(report.findings.is_empty(), "{:#?}", report.findings);

        let report = fx.check("missing", &t, None);
        assert_eq!(report.codes(), ["PK005"]);
        assert_eq!(
            report.findings[0].details["field"],
            json!("adapter_config.json")
        );
        let report = fx.check("broken", &t, Some("{"));
        assert_eq!(report.codes(), ["PK005"]);
        assert!(report.findings[0].message.contains("unreadable"));
    }

    #[test]
    fn empty_adapter_is_pk006() {
        let fx = fixture(LoadAs::CausalLm);
        let report = fx.check("empty", &[], Some(CONFIG_QV));
        assert_eq!(report.codes(), ["PK006"]);
        assert_eq!(report.findings[0].details, json!({}));
        // A ZeRO-3 placeholder: `{}` header, no data.
        let report = fx.check("empty-meta", &[], None);
        assert_eq!(report.codes(), ["PK006"]);
    }

    #[test]
    fn other_tuners_are_matched_by_module_only() {
        let fx = fixture(LoadAs::CausalLm);
        let t = vec![
            (
                "base_model.model.model.layers.0.mlp.down_proj.ia3_l".to_string(),
                "F32",
                vec![1, 16],
                1,
            ),
            (
                "base_model.model.model.layers.1.mlp.down_proj.ia3_l".to_string(),
                "F32",
                vec![1, 99],
                1,
            ),
            ("prompt_embeddings".to_string(), "F32", vec![4, 8], 1),
        ];
        let report = fx.check(
            "ia3",
            &t,
            Some(r#"{"peft_type": "IA3", "target_modules": ["down_proj"]}"#),
        );
        assert!(report.findings.is_empty(), "{:#?}", report.findings);
        assert_eq!(report.counts.adapter_modules, 2);
        assert_eq!(report.counts.adapter_tensors, 3);
    }

    #[test]
    fn unreadable_adapters() {
        let fx = fixture(LoadAs::CausalLm);
        let bad = fx.dir.path().join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::fs::write(
            bad.join("adapter_model.safetensors"),
            b"\xff\xff\xff\xff\xff\xff\xff\xff",
        )
        .unwrap();
        let err = check(&fx.base, &bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("adapter_model.safetensors: header length"),
            "{err}"
        );
        let report = check_or_pk000(&fx.base, &bad);
        assert_eq!(report.codes(), ["PK000"]);
        assert_eq!(report.counts.base_tensors, 19);
        assert!(report.findings[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("100,000,000"));
        let report = check_or_pk000(&fx.base, &fx.dir.path().join("nope"));
        assert_eq!(report.codes(), ["PK000"]);
    }

    #[test]
    fn check_with_base_path_times_both() {
        let fx = fixture(LoadAs::CausalLm);
        let adapter = write_adapter(
            &fx.dir.path().join("a"),
            &qv_tensors("model.", 3),
            Some(CONFIG_QV),
        );
        let report =
            check_with_base_path(&adapter, &fx.dir.path().join("base"), LoadAs::CausalLm).unwrap();
        assert!(report.findings.is_empty());
        assert!(report.seconds > 0.0);
        assert!(report.base.ends_with("base"));
        assert!(report.adapter.ends_with("a"));
    }
}
