//! Infers the one prefix rewrite that makes the most unmatched adapter modules match.
//!
//! A rewrite strips a leading run of components from an adapter module path and/or puts
//! a leading run in front (`strip "_orig_mod."`, `add "model."`, both). Candidates come
//! from aligning each unmatched path's longest suffix with the base's reversed-component
//! trie: what is left of the adapter path is the strip, what the base path has before the
//! shared suffix is the add. Candidates are then counted exactly over all unmatched
//! modules (all of them, or the most frequent ones when there are very many); the best
//! wins (ties: fewest components, then fewest characters, then alphabetical). A strip or add holding a numeric component
//! (`layers.0.`) is no wrapper prefix but a short suffix aligned with one arbitrary layer,
//! and is never a candidate.

use rustc_hash::FxHashMap;

use crate::checkpoint::BaseIndex;

/// Candidate generation looks at most this many unmatched paths (evenly spread); the
/// exact count always covers all of them.
const SAMPLE: usize = 2048;

/// Every candidate is counted exactly while candidates × unmatched paths stay under this
/// budget; beyond it, the candidates found most often in the sample (at least
/// `MIN_FINALISTS`).
const EXACT_BUDGET: usize = 4_000_000;
const MIN_FINALISTS: usize = 8;

/// The chosen rewrite and the modules it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inferred {
    /// "" or a prefix ending in a dot.
    pub strip: String,
    /// "" or a prefix ending in a dot.
    pub add: String,
    /// `(index into the unmatched list, base module id)` for each module it matches.
    pub matches: Vec<(usize, u32)>,
}

/// Applies `strip`/`add` to `path` into `buf`; `None` when `path` does not start with `strip`.
pub fn rewrite_into<'b>(
    path: &str,
    strip: &str,
    add: &str,
    buf: &'b mut String,
) -> Option<&'b str> {
    let rest = path.strip_prefix(strip)?;
    buf.clear();
    buf.push_str(add);
    buf.push_str(rest);
    Some(buf.as_str())
}

/// Whether a prefix names a position in a repeated block (`layers.3.`): such a prefix
/// aligns a short suffix with one arbitrary layer, never a wrapper the keys gained or lost.
fn has_index(prefix: &str) -> bool {
    prefix
        .split('.')
        .any(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
}

fn components(text: &str) -> usize {
    text.bytes().filter(|&b| b == b'.').count()
}

/// The best rewrite for `unmatched` module paths, if any makes at least one match.
pub fn infer(base: &BaseIndex, unmatched: &[&str]) -> Option<Inferred> {
    if unmatched.is_empty() {
        return None;
    }
    let suffixes = base.suffixes();
    let lookup = |c: &str| suffixes.components.get(c);
    let step = unmatched.len().div_ceil(SAMPLE).max(1);
    let mut counts: FxHashMap<(&str, &str), u32> = FxHashMap::default();
    for path in unmatched.iter().step_by(step) {
        let reached = suffixes.trie.walk(path.split('.'), lookup);
        if reached.depth == 0 {
            continue;
        }
        // The strip is everything before the matched suffix of `depth` components.
        let total = components(path) + 1;
        let strip_len = if reached.depth >= total {
            0
        } else {
            path.bytes()
                .enumerate()
                .rev()
                .filter(|&(_, b)| b == b'.')
                .nth(reached.depth - 1)
                .map_or(0, |(dot, _)| dot + 1)
        };
        let Some((strip, suffix)) = path.split_at_checked(strip_len) else {
            continue;
        };
        if has_index(strip) {
            continue;
        }
        // Each base module ending with the suffix, its prefix free of indices (the
        // terminal module, if any, with the empty prefix), gives a candidate add.
        for &module in suffixes.trie.free_below(reached) {
            let base_path = base.module_path(module);
            let Some(add) = base_path.strip_suffix(suffix) else {
                continue;
            };
            if !(add.is_empty() || add.ends_with('.')) || (strip.is_empty() && add.is_empty()) {
                continue;
            }
            *counts.entry((strip, add)).or_insert(0) += 1;
        }
    }
    let mut candidates: Vec<((&str, &str), u32)> = counts.into_iter().collect();
    candidates.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| shorter(a.0, b.0)));
    let mut best: Option<Inferred> = None;
    let mut buf = String::new();
    let finalists = (EXACT_BUDGET / unmatched.len()).max(MIN_FINALISTS);
    for ((strip, add), _) in candidates.into_iter().take(finalists) {
        let mut matches = Vec::new();
        let mut cursor = 0usize;
        for (i, path) in unmatched.iter().enumerate() {
            if let Some(new_path) = rewrite_into(path, strip, add, &mut buf) {
                if let Some(id) = base.find_from(new_path, &mut cursor) {
                    matches.push((i, id));
                }
            }
        }
        let better = match &best {
            None => !matches.is_empty(),
            Some(current) => {
                matches.len() > current.matches.len()
                    || (matches.len() == current.matches.len()
                        && shorter((strip, add), (&current.strip, &current.add)).is_lt())
            }
        };
        if better {
            best = Some(Inferred {
                strip: strip.to_string(),
                add: add.to_string(),
                matches,
            });
        }
    }
    best
}

/// Orders rewrites shortest first: components, then characters, then text.
fn shorter(a: (&str, &str), b: (&str, &str)) -> std::cmp::Ordering {
    let key = |r: (&str, &str)| (components(r.0) + components(r.1), r.0.len() + r.1.len());
    key(a).cmp(&key(b)).then_with(|| a.cmp(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::LoadAs;
    use crate::test_support::fixture;

    fn modules(prefix: &str) -> Vec<String> {
        let mut out = Vec::new();
        for layer in 0..2 {
            for proj in ["q_proj", "v_proj"] {
                out.push(format!("{prefix}layers.{layer}.self_attn.{proj}"));
            }
        }
        out
    }

    fn run(base: &BaseIndex, paths: &[String]) -> Option<(String, String, usize)> {
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        infer(base, &refs).map(|r| (r.strip, r.add, r.matches.len()))
    }

    #[test]
    fn strip_orig_mod_and_module() {
        let base = fixture(LoadAs::CausalLm).base;
        assert_eq!(
            run(&base, &modules("_orig_mod.model.")),
            Some(("_orig_mod.".into(), "".into(), 4))
        );
        assert_eq!(
            run(&base, &modules("module.model.")),
            Some(("module.".into(), "".into(), 4))
        );
    }

    #[test]
    fn add_model() {
        let base = fixture(LoadAs::CausalLm).base;
        assert_eq!(
            run(&base, &modules("")),
            Some(("".into(), "model.".into(), 4))
        );
    }

    #[test]
    fn strip_language_model_and_strip_plus_add() {
        let base = fixture(LoadAs::CausalLm).base;
        assert_eq!(
            run(&base, &modules("language_model.model.")),
            Some(("language_model.".into(), "".into(), 4))
        );
        assert_eq!(
            run(&base, &modules("module.")),
            Some(("module.".into(), "model.".into(), 4))
        );
    }

    #[test]
    fn base_model_view_strips_model() {
        let base = fixture(LoadAs::BaseModel).base;
        assert_eq!(
            run(&base, &modules("model.")),
            Some(("model.".into(), "".into(), 4))
        );
    }

    #[test]
    fn partial_coverage() {
        let base = fixture(LoadAs::CausalLm).base;
        let mut paths = modules("_orig_mod.model.");
        paths.push("_orig_mod.vision_tower.blocks.0.attn.qkv".into());
        paths.push("something.else".into());
        assert_eq!(
            run(&base, &paths),
            Some(("_orig_mod.".into(), "".into(), 4))
        );
    }

    #[test]
    fn the_most_frequent_rewrite_wins() {
        let base = fixture(LoadAs::CausalLm).base;
        let mut paths = modules("module.model.");
        paths.extend(modules("x.y.model.").into_iter().take(3));
        assert_eq!(run(&base, &paths), Some(("module.".into(), "".into(), 4)));
    }

    #[test]
    fn no_rewrite_possible() {
        let base = fixture(LoadAs::CausalLm).base;
        let paths: Vec<String> = (0..3)
            .map(|i| format!("transformer.h.{i}.attn.c_attn"))
            .collect();
        assert_eq!(run(&base, &paths), None);
        assert_eq!(run(&base, &[]), None);
        // A bare last component shared by many modules gives no candidate.
        assert_eq!(run(&base, &["q_proj".to_string()]), None);
    }

    #[test]
    fn rewrite_into_applies_strip_then_add() {
        let mut buf = String::new();
        assert_eq!(rewrite_into("a.b.c", "a.", "x.", &mut buf), Some("x.b.c"));
        assert_eq!(rewrite_into("a.b.c", "z.", "", &mut buf), None);
        assert_eq!(rewrite_into("a.b.c", "", "m.", &mut buf), Some("m.a.b.c"));
    }
}
