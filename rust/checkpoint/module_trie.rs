//! Interned dotted-path components and a trie of module paths read from the right.
//!
//! The trie answers the question the prefix rewrite needs: "which base modules end with
//! the same components as this adapter module, and what comes before them?". Each path
//! is inserted last component first. A node lists the modules ending with its suffix
//! whose remaining prefix holds no numeric component (`model.`, not `model.layers.3.`):
//! only such prefixes can be a wrapper that keys gained or lost, and they are few per
//! node, so the lists stay small however many layers the model has.

use rustc_hash::FxHashMap;

const NONE: u32 = u32::MAX;

/// Strings <-> dense `u32` ids.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    pub fn intern(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(NONE);
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |name| name)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Whether a path component is a number (a layer or expert index).
pub fn is_index(component: &str) -> bool {
    !component.is_empty() && component.bytes().all(|b| b.is_ascii_digit())
}

/// A node reached by [`ReverseTrie::walk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reached {
    node: u32,
    /// Components matched from the right.
    pub depth: usize,
}

/// Module paths, component by component from the last.
#[derive(Debug, Clone)]
pub struct ReverseTrie {
    /// Per node: the module whose whole path ends there.
    terminal: Vec<u32>,
    edges: FxHashMap<(u32, u32), u32>,
    /// `(node, module)` while building; then `lists`/`list_ends` (grouped by node).
    pending: Vec<(u32, u32)>,
    lists: Vec<u32>,
    list_ends: Vec<u32>,
}

impl Default for ReverseTrie {
    fn default() -> Self {
        Self {
            terminal: vec![NONE],
            edges: FxHashMap::default(),
            pending: Vec::new(),
            lists: Vec::new(),
            list_ends: Vec::new(),
        }
    }
}

impl ReverseTrie {
    /// Adds `module` whose path has the interned `components` (left to right), the first
    /// numeric one at position `first_index` (`components.len()` when none).
    pub fn insert(&mut self, components: &[u32], first_index: usize, module: u32) {
        let n = components.len();
        let mut node = 0u32;
        for (i, &component) in components.iter().rev().enumerate() {
            let next = match self.edges.get(&(node, component)) {
                Some(&next) => next,
                None => {
                    let next = u32::try_from(self.terminal.len()).unwrap_or(NONE);
                    self.terminal.push(NONE);
                    self.edges.insert((node, component), next);
                    next
                }
            };
            node = next;
            // Depth i + 1: the prefix left is components[..n - i - 1].
            if n - i - 1 <= first_index {
                self.pending.push((node, module));
            }
        }
        if let Some(slot) = self.terminal.get_mut(node as usize) {
            *slot = module;
        }
    }

    /// Groups the per-node lists; call once after the last insert.
    pub fn finish(&mut self) {
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable();
        self.lists = pending.iter().map(|&(_, module)| module).collect();
        self.list_ends = vec![0; self.terminal.len()];
        let mut at = 0usize;
        for node in 0..self.terminal.len() {
            while pending.get(at).is_some_and(|&(n, _)| n as usize == node) {
                at += 1;
            }
            if let Some(end) = self.list_ends.get_mut(node) {
                *end = at as u32;
            }
        }
    }

    /// Follows `components` from the right as far as the trie goes. `lookup` interns a
    /// component without adding it (unknown component: the walk stops).
    pub fn walk<'s>(
        &self,
        components: impl DoubleEndedIterator<Item = &'s str>,
        lookup: impl Fn(&str) -> Option<u32>,
    ) -> Reached {
        let mut node = 0u32;
        let mut depth = 0;
        for component in components.rev() {
            let Some(id) = lookup(component) else { break };
            let Some(&next) = self.edges.get(&(node, id)) else {
                break;
            };
            node = next;
            depth += 1;
        }
        Reached { node, depth }
    }

    /// The module whose whole path is the walked suffix.
    pub fn terminal(&self, reached: Reached) -> Option<u32> {
        self.terminal
            .get(reached.node as usize)
            .copied()
            .filter(|&t| t != NONE)
    }

    /// The modules ending with the walked suffix whose prefix before it has no numeric
    /// component (the terminal module, if any, among them).
    pub fn free_below(&self, reached: Reached) -> &[u32] {
        let node = reached.node as usize;
        let end = self.list_ends.get(node).copied().unwrap_or(0) as usize;
        let start = match node.checked_sub(1) {
            Some(prev) => self.list_ends.get(prev).copied().unwrap_or(0) as usize,
            None => 0,
        };
        self.lists.get(start..end).unwrap_or(&[])
    }

    pub fn node_count(&self) -> usize {
        self.terminal.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(paths: &[&str]) -> (Interner, ReverseTrie) {
        let mut interner = Interner::default();
        let mut trie = ReverseTrie::default();
        for (i, path) in paths.iter().enumerate() {
            let parts: Vec<&str> = path.split('.').collect();
            let ids: Vec<u32> = parts.iter().map(|c| interner.intern(c)).collect();
            let first_index = parts
                .iter()
                .position(|c| is_index(c))
                .unwrap_or(parts.len());
            trie.insert(&ids, first_index, i as u32);
        }
        trie.finish();
        (interner, trie)
    }

    #[test]
    fn interner_round_trips() {
        let mut interner = Interner::default();
        let a = interner.intern("layers");
        let b = interner.intern("q_proj");
        assert_eq!(interner.intern("layers"), a);
        assert_ne!(a, b);
        assert_eq!(interner.name(b), "q_proj");
        assert_eq!(interner.get("nope"), None);
        assert_eq!(interner.len(), 2);
        assert!(is_index("12") && !is_index("1a") && !is_index(""));
    }

    #[test]
    fn walk_finds_the_longest_suffix() {
        let (interner, trie) = build(&["model.layers.0.q", "model.layers.1.q", "lm_head"]);
        let reached = trie.walk("_orig_mod.model.layers.0.q".split('.'), |c| interner.get(c));
        assert_eq!(reached.depth, 4);
        assert_eq!(trie.terminal(reached), Some(0));
        assert_eq!(trie.free_below(reached), &[0]);

        let reached = trie.walk("layers.1.q".split('.'), |c| interner.get(c));
        assert_eq!(reached.depth, 3);
        assert_eq!(trie.terminal(reached), None);
        assert_eq!(trie.free_below(reached), &[1], "prefix `model.` is free");

        let reached = trie.walk("x.y".split('.'), |c| interner.get(c));
        assert_eq!(reached.depth, 0);
    }

    #[test]
    fn prefixes_with_indices_are_not_listed() {
        let paths: Vec<String> = (0..10).map(|i| format!("model.layers.{i}.q")).collect();
        let refs: Vec<&str> = paths.iter().map(String::as_str).collect();
        let (interner, trie) = build(&refs);
        let reached = trie.walk("q".split('.'), |c| interner.get(c));
        assert_eq!(reached.depth, 1);
        assert!(trie.free_below(reached).is_empty());
        let reached = trie.walk("3.q".split('.'), |c| interner.get(c));
        assert_eq!(
            trie.free_below(reached),
            &[3],
            "prefix `model.layers.` is free"
        );
    }
}
