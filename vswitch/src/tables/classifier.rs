//! Tuple-space-search classifier: prioritized wildcard rules over [`FlowKey`]s.
//!
//! A rule is a (value, mask, priority) triple plus caller data; a key matches
//! when it equals `value` on every bit of `mask`. Rules are grouped by mask
//! into *subtables*, each one hash table keyed by the masked value, so a
//! lookup costs one hash probe per distinct mask rather than one comparison
//! per rule (Srinivasan's tuple space search, as in OVS's `lib/classifier.c`).
//!
//! Design decisions:
//! - **Subtable order and early exit.** Subtables are kept sorted by the best
//!   rule they hold (highest priority, then earliest inserted). A lookup
//!   walks them in that order and stops as soon as the next subtable cannot
//!   beat the best match found so far, so high-priority specific rules are
//!   found without probing every mask.
//! - **Ties.** OpenFlow leaves the winner among overlapping rules of equal
//!   priority undefined; here the **earliest inserted** rule (smallest
//!   [`RuleId`]) wins, always. Replacing an identical (mask, value,
//!   priority) keeps the rule's id and so its place in that order. Ties cost
//!   a little: a subtable whose best rule has the same priority as the match
//!   but an earlier id must still be probed.
//! - **Hashing.** Each subtable hashes only the key words its mask touches,
//!   with a folded multiply per word; keys are never copied or masked into a
//!   temporary. The tables are `hashbrown::HashTable`s driven by these
//!   explicit hashes (no `Hash`/`BuildHasher` round trip over 96 bytes).
//! - Rules with the same mask and masked value but different priorities
//!   share one hash entry, highest priority first, so a probe returns the
//!   subtable's best rule for the key directly.
//!
//! Not here: the per-worker exact-match cache ([`super::Emc`]), publication
//! to workers, and wildcard tracking for megaflows. Control-path operations
//! cost O(masks + log rules).
//!
//! # Thread-safety
//!
//! No interior mutability and no locks. The control thread alone writes,
//! on its master copy (`&mut self`); the pipeline publishes a clone of it
//! whole through `ArcSwap` (RCU style). Workers only call [`Classifier::lookup`]
//! on a published copy through `&self`, so readers never block and never
//! see a half-applied change; `Classifier<T>` is `Send + Sync` when `T` is.
//! Lookups allocate nothing.

use std::cmp::{Ordering, Reverse};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use hashbrown::HashTable;

use crate::key::{FlowKey, KEY_WORDS};

#[cfg(test)]
mod tests;

/// Identity of a rule, unique within one classifier and increasing in
/// insertion order (it doubles as the tie-break: smaller wins).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(pub u64);

/// One installed rule.
#[derive(Clone, Debug)]
pub struct Rule<T> {
    /// The match value, pre-masked (bits outside the mask are zero).
    pub value: FlowKey,
    /// The rule's mask, shared with every rule of its subtable.
    pub mask: Arc<FlowKey>,
    /// Higher wins.
    pub priority: u16,
    /// Identity and tie-break order.
    pub id: RuleId,
    /// What the caller attached (the pipeline: an index into its flows).
    pub data: T,
}

impl<T> Rule<T> {
    /// True when `self` beats `other`: higher priority, then earlier insertion.
    #[inline]
    fn beats(&self, other: &Rule<T>) -> bool {
        rank(self.priority, self.id) > rank(other.priority, other.id)
    }
}

/// Ordering key of a rule or of a subtable's best rule; greater is better.
type Rank = (u16, Reverse<RuleId>);

#[inline]
fn rank(priority: u16, id: RuleId) -> Rank {
    (priority, Reverse(id))
}

/// The rules that share a mask and a masked value, best first. Almost
/// always just `head`; `rest` holds other priorities of the same match.
#[derive(Clone, Debug)]
struct Bucket<T> {
    head: Rule<T>,
    /// Sorted by priority, highest first; all below `head.priority`.
    rest: Vec<Rule<T>>,
}

/// All rules with one mask.
#[derive(Clone, Debug)]
struct Subtable<T> {
    mask: FlowKey,
    /// Indices of the mask's non-zero words (the only ones hashed).
    words: [u8; KEY_WORDS],
    n_words: u8,
    /// Cached `ranks.last()`: the best rule this subtable holds.
    best: Rank,
    shared_mask: Arc<FlowKey>,
    /// Every rule's rank, to keep `best` exact across removals.
    ranks: BTreeSet<Rank>,
    table: HashTable<Bucket<T>>,
}

/// Multiplier of the per-word folded multiply (a 64-bit odd constant from
/// the golden ratio, as in many multiplicative hashes).
const HASH_MUL: u64 = 0x9e37_79b9_7f4a_7c15;
/// Initial state, so that the all-zero key does not hash to zero.
const HASH_SEED: u64 = 0x243f_6a88_85a3_08d3;

/// 64x64 -> 128 multiply with the halves xored: mixes every input bit into
/// both the low bits (hashbrown's bucket index) and the high bits (its tag).
#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

impl<T> Subtable<T> {
    fn new(mask: FlowKey) -> Subtable<T> {
        let mut words = [0u8; KEY_WORDS];
        let mut n = 0;
        for (i, w) in mask.w.iter().enumerate() {
            if *w != 0 {
                words[n] = i as u8;
                n += 1;
            }
        }
        Subtable {
            mask,
            words,
            n_words: n as u8,
            best: rank(0, RuleId(u64::MAX)),
            shared_mask: Arc::new(mask),
            ranks: BTreeSet::new(),
            table: HashTable::new(),
        }
    }

    /// Hash of `key` under this subtable's mask; equal for keys that are
    /// equal under the mask.
    #[inline(always)]
    fn hash(&self, key: &FlowKey) -> u64 {
        let mut h = HASH_SEED;
        for &i in &self.words[..self.n_words as usize] {
            let i = i as usize;
            h = fold_mul(h ^ (key.w[i] & self.mask.w[i]), HASH_MUL);
        }
        h
    }

    /// The best rule of this subtable that matches `key`.
    #[inline(always)]
    fn lookup(&self, key: &FlowKey) -> Option<&Rule<T>> {
        let h = self.hash(key);
        self.table
            .find(h, |b| key.matches(&b.head.value, &self.mask))
            .map(|b| &b.head)
    }

    fn refresh_best(&mut self) {
        if let Some(r) = self.ranks.last() {
            self.best = *r;
        }
    }
}

/// Prioritized wildcard rules over [`FlowKey`]s, searched by tuple space
/// search (see the module documentation for order and tie rules).
#[derive(Clone)]
pub struct Classifier<T> {
    /// Sorted by `best`, greatest first.
    subtables: Vec<Subtable<T>>,
    len: usize,
    next_id: u64,
}

impl<T> Default for Classifier<T> {
    fn default() -> Self {
        Classifier::new()
    }
}

impl<T> fmt::Debug for Classifier<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("rules", &self.len)
            .field("subtables", &self.subtables.len())
            .finish()
    }
}

impl<T> Classifier<T> {
    /// An empty classifier.
    pub fn new() -> Classifier<T> {
        Classifier {
            subtables: Vec::new(),
            len: 0,
            next_id: 0,
        }
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of distinct masks (subtables), i.e. the worst-case number of
    /// hash probes per lookup.
    pub fn n_subtables(&self) -> usize {
        self.subtables.len()
    }

    /// Removes every rule. Ids keep increasing.
    pub fn clear(&mut self) {
        self.subtables.clear();
        self.len = 0;
    }

    /// The highest-priority rule matching `key`; among equal priorities the
    /// earliest inserted. Never allocates or locks.
    #[inline]
    pub fn lookup(&self, key: &FlowKey) -> Option<&Rule<T>> {
        let mut best: Option<&Rule<T>> = None;
        for st in &self.subtables {
            if let Some(b) = best {
                // Subtables are sorted by `best`: none from here on can win.
                if st.best < rank(b.priority, b.id) {
                    break;
                }
            }
            if let Some(r) = st.lookup(key) {
                if best.is_none_or(|b| r.beats(b)) {
                    best = Some(r);
                }
            }
        }
        best
    }

    /// Adds a rule; `value` is masked with `mask` first. A rule with the same
    /// mask, masked value and priority is replaced (OpenFlow `add-flow`
    /// semantics): it keeps its id, takes `data`, and the old data is
    /// returned.
    pub fn insert(
        &mut self,
        value: FlowKey,
        mask: FlowKey,
        priority: u16,
        data: T,
    ) -> (RuleId, Option<T>) {
        let value = value.masked(&mask);
        let pos = match self.position(&mask) {
            Some(p) => p,
            None => {
                self.subtables.push(Subtable::new(mask));
                self.subtables.len() - 1
            }
        };
        let st = &mut self.subtables[pos];
        let h = st.hash(&value);
        let m = st.mask;
        let bucket = st.table.find_mut(h, |b| value.matches(&b.head.value, &m));
        let id;
        match bucket {
            Some(b) => {
                if let Some(r) = std::iter::once(&mut b.head)
                    .chain(b.rest.iter_mut())
                    .find(|r| r.priority == priority)
                {
                    let old = std::mem::replace(&mut r.data, data);
                    return (r.id, Some(old));
                }
                id = RuleId(self.next_id);
                let rule = Rule {
                    value,
                    mask: Arc::clone(&st.shared_mask),
                    priority,
                    id,
                    data,
                };
                if priority > b.head.priority {
                    let old_head = std::mem::replace(&mut b.head, rule);
                    b.rest.insert(0, old_head);
                } else {
                    let at = b.rest.partition_point(|r| r.priority > priority);
                    b.rest.insert(at, rule);
                }
            }
            None => {
                id = RuleId(self.next_id);
                let rule = Rule {
                    value,
                    mask: Arc::clone(&st.shared_mask),
                    priority,
                    id,
                    data,
                };
                let bucket = Bucket {
                    head: rule,
                    rest: Vec::new(),
                };
                let words = st.words;
                let n = st.n_words as usize;
                st.table
                    .insert_unique(h, bucket, |b| rehash(&words[..n], &b.head.value));
            }
        }
        self.next_id += 1;
        self.len += 1;
        st.ranks.insert(rank(priority, id));
        st.refresh_best();
        self.reposition(pos);
        (id, None)
    }

    /// Removes the rule with exactly this mask, (masked) value and priority,
    /// returning its data.
    pub fn remove(&mut self, mask: &FlowKey, value: &FlowKey, priority: u16) -> Option<T> {
        let value = value.masked(mask);
        let pos = self.position(mask)?;
        let st = &mut self.subtables[pos];
        let h = st.hash(&value);
        let m = st.mask;
        let mut entry = st
            .table
            .find_entry(h, |b| value.matches(&b.head.value, &m))
            .ok()?;
        let b = entry.get_mut();
        let removed = if b.head.priority == priority {
            if b.rest.is_empty() {
                entry.remove().0.head
            } else {
                let next = b.rest.remove(0);
                std::mem::replace(&mut b.head, next)
            }
        } else {
            let at = b.rest.iter().position(|r| r.priority == priority)?;
            b.rest.remove(at)
        };
        self.len -= 1;
        st.ranks.remove(&rank(removed.priority, removed.id));
        if st.ranks.is_empty() {
            self.subtables.remove(pos);
        } else {
            st.refresh_best();
            self.reposition(pos);
        }
        Some(removed.data)
    }

    /// The rule with exactly this mask, (masked) value and priority.
    pub fn get(&self, mask: &FlowKey, value: &FlowKey, priority: u16) -> Option<&Rule<T>> {
        let value = value.masked(mask);
        let st = &self.subtables[self.position(mask)?];
        let b = st
            .table
            .find(st.hash(&value), |b| value.matches(&b.head.value, &st.mask))?;
        std::iter::once(&b.head)
            .chain(b.rest.iter())
            .find(|r| r.priority == priority)
    }

    /// Every rule, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule<T>> + '_ {
        self.subtables
            .iter()
            .flat_map(|st| st.table.iter())
            .flat_map(|b| std::iter::once(&b.head).chain(b.rest.iter()))
    }

    /// Index of the subtable for `mask` (a linear scan: masks are few, and
    /// this is the control path).
    fn position(&self, mask: &FlowKey) -> Option<usize> {
        self.subtables.iter().position(|st| st.mask == *mask)
    }

    /// Moves subtable `pos`, whose `best` changed, back into sorted order.
    fn reposition(&mut self, pos: usize) {
        let key = self.subtables[pos].best;
        let cmp = |st: &Subtable<T>| key.cmp(&st.best);
        let ok_left = pos == 0 || cmp(&self.subtables[pos - 1]) != Ordering::Greater;
        let ok_right =
            pos + 1 == self.subtables.len() || cmp(&self.subtables[pos + 1]) != Ordering::Less;
        if ok_left && ok_right {
            return;
        }
        let st = self.subtables.remove(pos);
        let at = self.subtables.partition_point(|s| s.best > key);
        self.subtables.insert(at, st);
    }
}

/// The subtable hash of a stored value, for hashbrown's rehash callback (the
/// stored value is already masked, so no mask is needed).
fn rehash(words: &[u8], value: &FlowKey) -> u64 {
    let mut h = HASH_SEED;
    for &i in words {
        h = fold_mul(h ^ value.w[i as usize], HASH_MUL);
    }
    h
}
