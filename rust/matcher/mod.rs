//! Checks one adapter against a base index: PK001-PK006 (docs/keys.md).
//!
//! `modules` reads the adapter header once, groups its keys into modules and finds the
//! base module each one stands for. Every check then reads the same `Context` and
//! returns its findings: one file per check (`pk001` ... `pk006`, and `pk003_*`/`pk005_*` for
//! the further cases of a code), run in report order
//! from `CHECKS`. A new check is a new file with a `check` function of the `Check`
//! shape, and a line in `CHECKS`.

mod modules;
mod pk001;
mod pk002;
mod pk003;
mod pk003_trainable_tokens;
mod pk004;
mod pk005;
mod pk005_targeted_and_saved;
mod pk005_tied_copy;
mod pk006;
pub mod report;

use std::cell::{OnceCell, RefCell};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use bytes::Bytes;

use crate::checkpoint::adapter_config::{self, ConfigStatus};
use crate::checkpoint::adapter_path::{self, AdapterPaths};
use crate::checkpoint::error::{ErrorKind, Result};
use crate::checkpoint::index_cache::IndexCache;
use crate::checkpoint::{BaseIndex, LoadAs};
use crate::safetensors::Header;
use crate::storage::{self, remote, Location};
use modules::{module_path, Matching, Module, Saved, Scratch};
use report::{Counts, Finding, Report};

/// A check: the findings of one PK code for the adapter, in report order. Only PK004
/// reads tensor bytes, and so can fail (PK000).
type Check = fn(&Context<'_>) -> Result<Vec<Finding>>;

/// The checks run after PK006, in the order their findings appear in a report.
const CHECKS: [Check; 8] = [
    pk001::check,
    pk002::check,
    pk003::check,
    pk003_trainable_tokens::check,
    pk004::check,
    pk005::check,
    pk005_targeted_and_saved::check,
    pk005_tied_copy::check,
];

/// What every check reads: the adapter's header, its modules and the base module each
/// one stands for, its config, and where its files are.
struct Context<'a> {
    base: &'a BaseIndex,
    paths: &'a AdapterPaths,
    header: &'a Header,
    /// Module paths that are no span of a key (see [`Module`]).
    owned: &'a [String],
    modules: &'a [Module],
    saved: &'a [Saved],
    matching: &'a Matching,
    /// adapter_config.json, read by the first check that asks: PK006 needs no config.
    config: OnceCell<ConfigStatus>,
    /// For a remote adapter, the bytes fetched from the start of its weights file.
    prefix: Option<Bytes>,
}

impl Context<'_> {
    /// The shape of header tensor `tensor` (an index the grouping took from this header).
    fn shape(&self, tensor: u32) -> &[u64] {
        self.header
            .tensors()
            .get(tensor as usize)
            .map_or(&[], |t| self.header.shape(t))
    }

    /// The name of header tensor `tensor`.
    fn name(&self, tensor: u32) -> &str {
        self.header
            .tensors()
            .get(tensor as usize)
            .map_or("", |t| self.header.name(t))
    }

    /// The module path of `module`: a span of one of its keys, or a built one.
    fn path(&self, module: &Module) -> &str {
        module_path(self.header, self.owned, module)
    }

    /// The paths of the modules the adapter saved full copies of (`modules_to_save`).
    fn saved_copy_paths(&self) -> impl Iterator<Item = &str> + '_ {
        self.modules
            .iter()
            .filter(|m| m.kinds & modules::SAVED != 0)
            .map(|m| self.path(m))
    }

    fn config(&self) -> &ConfigStatus {
        self.config
            .get_or_init(|| adapter_config::load_at(&self.paths.config))
    }

    /// Every finding: PK006 alone when the adapter holds no tensors (the other checks
    /// would have nothing to compare), else those of [`CHECKS`].
    fn findings(&self) -> Result<Vec<Finding>> {
        let empty = pk006::check(self)?;
        if !empty.is_empty() {
            return Ok(empty);
        }
        let mut findings = Vec::new();
        for check in CHECKS {
            findings.extend(check(self)?);
        }
        Ok(findings)
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Checks the local adapter at `adapter` against `base`. Errors are the adapter's PK000.
pub fn check(base: &BaseIndex, adapter: &Path) -> Result<Report> {
    check_at(base, &Location::Local(adapter.to_path_buf()))
}

/// Checks the adapter at `adapter` (local or remote) against `base`.
pub fn check_at(base: &BaseIndex, adapter: &Location) -> Result<Report> {
    let started = Instant::now();
    let paths = adapter_path::resolve_at(adapter)?;
    let mut report = SCRATCH.with(|cell| {
        let mut scratch = cell.take();
        let result = run_check(base, &paths, &mut scratch);
        cell.replace(scratch);
        result
    })?;
    report.adapter = adapter.display();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Reads the adapter's header into `scratch`; for a remote adapter, the bytes fetched.
fn read_weights_header(paths: &AdapterPaths, scratch: &mut Scratch) -> Result<Option<Bytes>> {
    let result = storage::read_header_into(&paths.weights, &mut scratch.header);
    match (&result, &paths.weights) {
        (Err(err), Location::Remote(file))
            if paths.is_dir && err.kind == ErrorKind::Io(remote::NOT_FOUND.into()) =>
        {
            Err(adapter_path::absent_weights(&file.parent()))
        }
        _ => result,
    }
}

fn run_check(base: &BaseIndex, paths: &AdapterPaths, scratch: &mut Scratch) -> Result<Report> {
    let prefix = read_weights_header(paths, scratch)?;
    let matching = modules::match_to_base(scratch, base);
    let ctx = Context {
        base,
        paths,
        header: &scratch.header,
        owned: &scratch.owned,
        modules: &scratch.modules,
        saved: &scratch.saved,
        matching: &matching,
        config: OnceCell::new(),
        prefix,
    };
    let findings = ctx.findings()?;
    let modules = ctx.modules.len();
    Ok(Report {
        adapter: String::new(),
        base: base.source.clone(),
        findings,
        counts: Counts {
            adapter_tensors: ctx.header.tensors().len() as u64,
            adapter_modules: modules as u64,
            matched: (modules - matching.unmatched.len()) as u64,
            matched_after_rewrite: matching.inferred.as_ref().map_or(0, |r| r.matches.len()) as u64,
            unmatched: matching.still_unmatched.len() as u64,
            base_tensors: base.tensor_count as u64,
            base_shards: base.shard_count as u64,
            header_bytes: ctx.header.bytes_read() + base.header_bytes,
        },
        rewrite: matching.rewrite.clone(),
        seconds: 0.0,
    })
}

/// Like [`check_at`], but an unreadable adapter gives a report with one PK000 finding.
pub fn check_or_pk000(base: &BaseIndex, adapter: &Location) -> Report {
    let started = Instant::now();
    match check_at(base, adapter) {
        Ok(report) => report,
        Err(error) => Report::unreadable(
            adapter.display(),
            base.source.clone(),
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

/// Threads checking remote adapters: each mostly waits on the network, so many more than
/// there are cores keep the requests flowing.
const REMOTE_CHECK_THREADS: usize = 32;

/// Checks every adapter against `base` in parallel, in order; an unreadable adapter gives
/// a PK000 report. Remote adapters are checked on a wider pool of threads.
pub fn check_many(base: &BaseIndex, adapters: &[Location]) -> Vec<Report> {
    use rayon::prelude::*;
    static REMOTE_POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    let run = || -> Vec<Report> {
        adapters
            .par_iter()
            .map(|adapter| check_or_pk000(base, adapter))
            .collect()
    };
    let any_remote = adapters.iter().any(|adapter| adapter.local().is_none());
    let pool = REMOTE_POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(REMOTE_CHECK_THREADS)
            .thread_name(|n| format!("peftfix-remote-{n}"))
            .build()
            .ok()
    });
    match pool {
        Some(pool) if any_remote => pool.install(run),
        _ => run(),
    }
}

/// Opens `base` and checks one adapter against it; `seconds` covers both.
pub fn check_with_base(
    adapter: &Location,
    base: &Location,
    load_as: LoadAs,
    cache: Option<&IndexCache>,
) -> Result<Report> {
    let started = Instant::now();
    let index = BaseIndex::open_at(base, load_as, cache)?;
    let mut report = check_at(&index, adapter)?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{fixture, qv_tensors, write_adapter, CONFIG_QV};

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
        let report = check_or_pk000(&fx.base, &Location::Local(bad.clone()));
        assert_eq!(report.codes(), ["PK000"]);
        assert_eq!(report.counts.base_tensors, 19);
        assert!(report.findings[0].details["reason"]
            .as_str()
            .unwrap()
            .contains("100,000,000"));
        let report = check_or_pk000(&fx.base, &Location::Local(fx.dir.path().join("nope")));
        assert_eq!(report.codes(), ["PK000"]);
    }

    #[test]
    fn check_with_base_times_both() {
        let fx = fixture(LoadAs::CausalLm);
        let adapter = write_adapter(
            &fx.dir.path().join("a"),
            &qv_tensors("model.", 3),
            Some(CONFIG_QV),
        );
        let (adapter, base) = (
            Location::Local(adapter),
            Location::Local(fx.dir.path().join("base")),
        );
        let report = check_with_base(&adapter, &base, LoadAs::CausalLm, None).unwrap();
        assert!(report.findings.is_empty());
        assert!(report.seconds > 0.0);
        assert!(report.base.ends_with("base"));
        assert!(report.adapter.ends_with("a"));
    }
}
