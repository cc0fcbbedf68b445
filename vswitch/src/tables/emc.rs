//! Per-worker exact-match cache (EMC) in front of the classifier.
//!
//! As in OVS's `lib/dpif-netdev-dfc.h`, each worker keeps a small
//! fixed-size cache from a packet's full [`FlowKey`] (plus table id) to the
//! classifier's answer, here a `u32` index into the published table's flows.
//! A hit costs one hash-indexed probe of two slots and a 96-byte compare,
//! instead of one probe per classifier subtable. The cache is 2-way set
//! associative; on a miss the caller classifies and inserts the result.
//!
//! **Why it can never forward with a stale answer.** Every entry records the
//! generation of the flow-table snapshot it was computed from, and a lookup
//! hits only when the entry's generation equals the caller's current one.
//! The pipeline publishes tables whole (RCU style) with a strictly greater
//! generation on every change, and reads generation and tables from the same
//! immutable snapshot, so a hit means: same tables (the same snapshot), same
//! table id and the same key on *every* bit. Classification is a pure
//! function of those, so the cached index is exactly what the classifier
//! would return now. A table change needs no flush: bumping the generation
//! makes every older entry dead at once (a 64-bit counter never wraps). What
//! the cache must not hold is anything outside the snapshot — FDB answers,
//! conntrack state — and it does not: actions run on every packet.
//!
//! Not shared: each worker owns one, so there are no locks and no atomics,
//! and nothing allocates after [`Emc::with_capacity`].

use std::fmt;

use crate::key::FlowKey;

/// Default number of entries. 8192 as in OVS: 8192 × 128-byte slots is 1 MiB
/// per worker, within a core's L2 on current servers, and enough for the
/// active flows of a node's pods at a few thousand flows per worker.
pub const EMC_ENTRIES: usize = 8192;

/// Ways per set: two adjacent slots, so a second hot key that lands in the
/// same set does not evict the first.
const WAYS: usize = 2;

/// Multiplier that spreads the caller's hash before taking the set index
/// from its top bits (Fibonacci hashing), so a weak low half cannot cluster.
const INDEX_MUL: u64 = 0x9e37_79b9_7f4a_7c15;

#[derive(Clone, Copy, Default)]
struct Slot {
    key: FlowKey,
    hash: u64,
    generation: u64,
    value: u32,
    table: u8,
    live: bool,
}

impl Slot {
    #[inline(always)]
    fn holds(&self, key: &FlowKey, hash: u64, table: u8) -> bool {
        self.live && self.hash == hash && self.table == table && self.key == *key
    }
}

/// A worker's exact-match cache (see the module documentation).
pub struct Emc {
    slots: Box<[Slot]>,
    /// `64 - log2(sets)`: the set index is the top bits of the mixed hash.
    shift: u32,
    /// Alternates the way evicted when both are live and current.
    victim: usize,
}

impl fmt::Debug for Emc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emc")
            .field("capacity", &self.slots.len())
            .finish_non_exhaustive()
    }
}

impl Default for Emc {
    fn default() -> Self {
        Emc::new()
    }
}

impl Emc {
    /// A cache of [`EMC_ENTRIES`] entries.
    pub fn new() -> Emc {
        Emc::with_capacity(EMC_ENTRIES)
    }

    /// A cache of `entries` entries, rounded up to a power of two (at least 2).
    pub fn with_capacity(entries: usize) -> Emc {
        let entries = entries.max(WAYS).next_power_of_two();
        let sets = entries / WAYS;
        Emc {
            slots: vec![Slot::default(); entries].into_boxed_slice(),
            shift: 64 - sets.trailing_zeros(),
            victim: 0,
        }
    }

    /// Number of entries.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    #[inline(always)]
    fn set(&self, hash: u64) -> usize {
        // `shift` is 64 with one set: `checked_shr` gives set 0.
        let set = hash
            .wrapping_mul(INDEX_MUL)
            .checked_shr(self.shift)
            .unwrap_or(0);
        set as usize * WAYS
    }

    /// The cached value for `key` in table `table`, if it was inserted under
    /// this same `generation`. `hash` is any hash of `key` the caller uses
    /// consistently (the pipeline: `key.hash64()` mixed with the table id).
    #[inline]
    pub fn lookup(&self, key: &FlowKey, hash: u64, table: u8, generation: u64) -> Option<u32> {
        let base = self.set(hash);
        self.slots[base..base + WAYS]
            .iter()
            .find(|s| s.generation == generation && s.holds(key, hash, table))
            .map(|s| s.value)
    }

    /// Caches `value` for (`key`, `table`) under `generation`. Prefers, in
    /// order: the slot already holding this key, a dead or stale slot, then
    /// the ways in turn.
    #[inline]
    pub fn insert(&mut self, key: &FlowKey, hash: u64, table: u8, generation: u64, value: u32) {
        let base = self.set(hash);
        let ways = &self.slots[base..base + WAYS];
        let way = ways
            .iter()
            .position(|s| s.holds(key, hash, table))
            .or_else(|| {
                ways.iter()
                    .position(|s| !s.live || s.generation != generation)
            })
            .unwrap_or_else(|| {
                self.victim = (self.victim + 1) % WAYS;
                self.victim
            });
        self.slots[base + way] = Slot {
            key: *key,
            hash,
            generation,
            value,
            table,
            live: true,
        };
    }

    /// Forgets every entry (not needed for correctness: a generation bump
    /// already retires them).
    pub fn clear(&mut self) {
        self.slots.fill(Slot::default());
    }

    /// Number of live entries of `generation` (a linear scan, for statistics
    /// and tests).
    pub fn count(&self, generation: u64) -> usize {
        self.slots
            .iter()
            .filter(|s| s.live && s.generation == generation)
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::field;

    fn key(n: u64) -> FlowKey {
        let mut k = FlowKey::default();
        k.set(field::IN_PORT, 1);
        k.set(field::NW_DST, n);
        k
    }

    #[test]
    fn hit_needs_same_generation_table_and_key() {
        let mut emc = Emc::new();
        let k = key(1);
        let h = k.hash64();
        assert_eq!(emc.lookup(&k, h, 0, 1), None);
        emc.insert(&k, h, 0, 1, 42);
        assert_eq!(emc.lookup(&k, h, 0, 1), Some(42));
        // A table change bumps the generation: the old entry is dead.
        assert_eq!(emc.lookup(&k, h, 0, 2), None);
        assert_eq!(emc.count(2), 0);
        // Another table, or another key with the same hash, is not a hit.
        assert_eq!(emc.lookup(&k, h, 1, 1), None);
        assert_eq!(emc.lookup(&key(2), h, 0, 1), None);
        // Re-inserting under the new generation takes over the stale slot.
        emc.insert(&k, h, 0, 2, 7);
        assert_eq!(emc.lookup(&k, h, 0, 2), Some(7));
        assert_eq!(emc.lookup(&k, h, 0, 1), None);
        assert_eq!(emc.count(1) + emc.count(2), 1);
    }

    #[test]
    fn a_fresh_cache_misses_even_the_zero_key() {
        let emc = Emc::with_capacity(4);
        let k = FlowKey::default();
        assert_eq!(emc.lookup(&k, 0, 0, 0), None);
    }

    #[test]
    fn colliding_keys_use_both_ways_then_evict_in_turn() {
        let mut emc = Emc::with_capacity(2); // one set: everything collides
        let (a, b, c) = (key(1), key(2), key(3));
        emc.insert(&a, 5, 0, 1, 1);
        emc.insert(&b, 5, 0, 1, 2);
        assert_eq!(emc.lookup(&a, 5, 0, 1), Some(1));
        assert_eq!(emc.lookup(&b, 5, 0, 1), Some(2));
        // Updating a cached key does not take the other way.
        emc.insert(&a, 5, 0, 1, 10);
        assert_eq!(emc.lookup(&a, 5, 0, 1), Some(10));
        assert_eq!(emc.lookup(&b, 5, 0, 1), Some(2));
        // A third key evicts one of them; the survivor and the newcomer hit.
        emc.insert(&c, 5, 0, 1, 3);
        assert_eq!(emc.lookup(&c, 5, 0, 1), Some(3));
        let survivors = [emc.lookup(&a, 5, 0, 1), emc.lookup(&b, 5, 0, 1)];
        assert_eq!(survivors.iter().flatten().count(), 1);
        assert_eq!(emc.count(1), 2);
    }

    #[test]
    fn many_keys_with_real_hashes() {
        let mut emc = Emc::new();
        for n in 0..4096u64 {
            let k = key(n);
            emc.insert(&k, k.hash64(), 0, 9, n as u32);
        }
        let mut hits = 0;
        for n in 0..4096u64 {
            let k = key(n);
            if let Some(v) = emc.lookup(&k, k.hash64(), 0, 9) {
                assert_eq!(v, n as u32);
                hits += 1;
            }
        }
        // Half full: random hashing into 4096 two-way sets keeps about
        // 4096 * (2 - 3/e) = 3670 keys (direct-mapped would keep about 3220).
        assert!(hits > 3550, "only {hits} of 4096 cached");
        emc.clear();
        assert_eq!(emc.count(9), 0);
    }
}
