//! MAC learning table (forwarding database) of the `normal` action.
//!
//! Maps (MAC, VLAN) to the port the MAC was last seen on, as a learning
//! bridge does (OVS `lib/mac-learning.c`, VPP `l2_learn.c`). Entries age out
//! [`FdbConfig::aging`] after they were last seen (300 s by default, the IEEE
//! 802.1D value); an aged entry stops matching at once and is removed by the
//! next [`Fdb::expire`], or earlier when its shard needs room. Time is the caller's
//! `now` (monotonic nanoseconds), so aging is testable with a fake clock.
//!
//! Size limit and fairness: at most [`FdbConfig::max_entries`] entries
//! (8192 by default). When a new MAC arrives at the limit, the table first
//! drops aged entries of the shard it lands in, and otherwise evicts, within
//! that shard, the least recently seen entry of the port holding the most
//! entries there. Shards get a hash-random sample of MACs, so "most entries
//! in the shard" tracks "most entries overall": a port flooding random
//! source MACs evicts its own entries and cannot push out other ports'
//! (the per-port fairness of OVS's mac-learning). Multicast and broadcast
//! source MACs, and the all-zero MAC, are never learned.
//!
//! # Thread-safety
//!
//! Workers learn and look up concurrently; the control thread reads
//! ([`Fdb::entries`]), expires and flushes. The table is split into up to
//! [`MAX_SHARDS`] shards by a keyed hash of (MAC, VLAN); each shard is a
//! `parking_lot::RwLock` around a hash table and its per-port entry counts.
//! - Lookups and refreshes (the same MAC seen again on the same port: the
//!   per-packet common case) take the shard's *read* lock only; the refresh
//!   is an atomic `fetch_max` of the entry's `last_seen`, and is skipped
//!   when the stored time is less than [`FdbConfig::refresh_granularity`]
//!   old, so a busy MAC does not bounce a cache line between cores.
//! - New entries, moves, removals take the shard's *write* lock, for O(1)
//!   work, or O(shard) for an eviction or an aging pass (a shard holds
//!   about `max_entries / shards` entries).
//! - Lock order: at most one shard lock is held at a time, never nested, so
//!   there is no order to get wrong. The global entry count and statistics
//!   are atomics, updated under the shard's write lock. The count is
//!   reserved with a compare-and-swap before inserting, so `len()` never
//!   exceeds `max_entries`.
//!
//! Readers never wait for one another; they wait for a writer only on their
//! own shard, for the duration of a single insert or a shard scan.

use std::cmp::Reverse;
use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use hashbrown::{DefaultHashBuilder, HashMap, HashTable};
use parking_lot::RwLock;

#[cfg(test)]
mod tests;

/// Most shards. 64 makes it unlikely (about 1 in 64 per pair) that two of
/// a few dozen workers learning at once contend for the same lock.
pub const MAX_SHARDS: usize = 64;

/// Fewest entries a shard is sized for: a shard's own port mix must be a
/// fair sample of the whole table's for per-shard eviction to be fair, so
/// small tables use fewer shards.
const MIN_PER_SHARD: usize = 64;

/// Most entries allocated per shard up front (the default table's share is
/// 128); beyond it a shard grows as it learns.
const PREALLOC_CAP: usize = 1024;

/// Sizing and aging of an [`Fdb`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbConfig {
    /// Most entries held; learning beyond it evicts fairly (default 8192,
    /// OVS's default `mac-table-size`).
    pub max_entries: usize,
    /// An entry not seen for this long no longer matches (default 300 s).
    pub aging: Duration,
    /// A refresh younger than this is not written back (default 1 s), which
    /// may age an entry out up to this much early.
    pub refresh_granularity: Duration,
}

impl Default for FdbConfig {
    fn default() -> Self {
        FdbConfig {
            max_entries: 8192,
            aging: Duration::from_secs(300),
            refresh_granularity: Duration::from_secs(1),
        }
    }
}

/// What [`Fdb::learn`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Learn {
    /// The MAC was not known (or had aged out) and is now.
    New,
    /// The MAC was known on another port and now points at this one.
    Moved {
        /// The port it was on before.
        from: u32,
    },
    /// The MAC was known on this port; its last-seen time is refreshed.
    Refreshed,
    /// Not learnable: a multicast, broadcast or all-zero source MAC, or a
    /// table with `max_entries == 0`.
    Refused,
}

/// One entry, as shown by `ofctl fdb-show`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdbEntry {
    /// The learned MAC address.
    pub mac: [u8; 6],
    /// The VLAN it was learned on (0: untagged).
    pub vlan: u16,
    /// The OpenFlow port it was last seen on.
    pub port: u32,
    /// Time since it was last seen.
    pub age: Duration,
}

/// Counters since creation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FdbStats {
    /// Entries now.
    pub entries: usize,
    /// MACs learned as new.
    pub learned: u64,
    /// MACs that moved to another port.
    pub moved: u64,
    /// Entries removed because they aged out.
    pub expired: u64,
    /// Entries evicted to make room.
    pub evicted: u64,
}

#[derive(Debug)]
struct Slot {
    /// `mac | vlan << 48`.
    key: u64,
    hash: u64,
    /// Written only under the shard's write lock.
    port: u32,
    /// Monotonic nanoseconds; raised under the read lock.
    last_seen: AtomicU64,
}

#[derive(Debug, Default)]
struct Shard {
    table: HashTable<Slot>,
    /// Entries per port in this shard (ports with none are absent).
    ports: HashMap<u32, u32>,
}

impl Shard {
    fn find(&self, hash: u64, key: u64) -> Option<&Slot> {
        self.table.find(hash, |s| s.key == key)
    }

    fn add_port(&mut self, port: u32) {
        *self.ports.entry(port).or_insert(0) += 1;
    }

    fn sub_port(&mut self, port: u32) {
        if let Some(c) = self.ports.get_mut(&port) {
            *c -= 1;
            if *c == 0 {
                self.ports.remove(&port);
            }
        }
    }

    /// Removes the entries for which `gone` holds; returns how many.
    fn remove_where(&mut self, mut gone: impl FnMut(&Slot) -> bool) -> usize {
        let mut removed = 0;
        let ports = &mut self.ports;
        self.table.retain(|s| {
            if gone(s) {
                removed += 1;
                if let Some(c) = ports.get_mut(&s.port) {
                    *c -= 1;
                }
                false
            } else {
                true
            }
        });
        if removed > 0 {
            ports.retain(|_, c| *c > 0);
        }
        removed
    }

    /// Removes the least recently seen entry of the port with the most
    /// entries in this shard (ties: the lower port number, then the lower
    /// key, so the choice is deterministic).
    fn evict_fairly(&mut self) -> bool {
        let Some(port) = self
            .ports
            .iter()
            .max_by_key(|(p, c)| (**c, Reverse(**p)))
            .map(|(p, _)| *p)
        else {
            return false;
        };
        let victim = self
            .table
            .iter()
            .filter(|s| s.port == port)
            .min_by_key(|s| (s.last_seen.load(Relaxed), s.key))
            .map(|s| (s.hash, s.key));
        let Some((hash, key)) = victim else {
            return false;
        };
        if let Ok(e) = self.table.find_entry(hash, |s| s.key == key) {
            e.remove();
            self.sub_port(port);
            return true;
        }
        false
    }
}

/// The MAC learning table: `Send + Sync`, shared by reference (see the
/// module's thread-safety notes).
pub struct Fdb {
    shards: Box<[RwLock<Shard>]>,
    /// `shards.len() - 1`.
    shard_mask: usize,
    hasher: DefaultHashBuilder,
    max_entries: usize,
    aging: u64,
    granularity: u64,
    len: AtomicUsize,
    learned: AtomicU64,
    moved: AtomicU64,
    expired: AtomicU64,
    evicted: AtomicU64,
}

impl fmt::Debug for Fdb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fdb")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("aging_ns", &self.aging)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for Fdb {
    fn default() -> Self {
        Fdb::new(FdbConfig::default())
    }
}

/// Packs a table key; the VLAN takes the 16 bits above the MAC.
#[inline]
fn pack(mac: [u8; 6], vlan: u16) -> u64 {
    let [a, b, c, d, e, f] = mac;
    u64::from_be_bytes([0, 0, a, b, c, d, e, f]) | (u64::from(vlan) << 48)
}

#[inline]
fn unpack(key: u64) -> ([u8; 6], u16) {
    let b = key.to_be_bytes();
    ([b[2], b[3], b[4], b[5], b[6], b[7]], (key >> 48) as u16)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// True for a MAC that must not be learned as a source: group bit set
/// (multicast, broadcast) or all zeros.
#[inline]
pub fn unlearnable(mac: [u8; 6]) -> bool {
    mac[0] & 1 != 0 || mac == [0; 6]
}

impl Fdb {
    /// An empty table with `config`'s limits.
    pub fn new(config: FdbConfig) -> Fdb {
        let n = (config.max_entries / MIN_PER_SHARD).clamp(1, MAX_SHARDS);
        let n = 1usize << n.ilog2();
        // A fair share plus room for hash imbalance, so the learning path
        // rarely reallocates; capped so a huge limit is not paid up front.
        let prealloc = (config.max_entries.div_ceil(n) * 5 / 4).min(PREALLOC_CAP);
        Fdb {
            shards: (0..n)
                .map(|_| {
                    RwLock::new(Shard {
                        table: HashTable::with_capacity(prealloc),
                        ports: HashMap::new(),
                    })
                })
                .collect(),
            shard_mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            max_entries: config.max_entries,
            aging: nanos(config.aging),
            granularity: nanos(config.refresh_granularity),
            len: AtomicUsize::new(0),
            learned: AtomicU64::new(0),
            moved: AtomicU64::new(0),
            expired: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> FdbConfig {
        FdbConfig {
            max_entries: self.max_entries,
            aging: Duration::from_nanos(self.aging),
            refresh_granularity: Duration::from_nanos(self.granularity),
        }
    }

    /// Number of entries, aged ones not yet removed included.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters and the current size.
    pub fn stats(&self) -> FdbStats {
        FdbStats {
            entries: self.len(),
            learned: self.learned.load(Relaxed),
            moved: self.moved.load(Relaxed),
            expired: self.expired.load(Relaxed),
            evicted: self.evicted.load(Relaxed),
        }
    }

    #[inline]
    fn locate(&self, mac: [u8; 6], vlan: u16) -> (u64, u64, &RwLock<Shard>) {
        let key = pack(mac, vlan);
        let hash = self.hasher.hash_one(key);
        // Bits 32.. pick the shard: hashbrown uses the low bits for the
        // bucket and the top 7 for tags, so those stay varied in a shard.
        let shard = &self.shards[(hash >> 32) as usize & self.shard_mask];
        (key, hash, shard)
    }

    #[inline]
    fn aged(&self, last_seen: u64, now: u64) -> bool {
        now.saturating_sub(last_seen) >= self.aging
    }

    /// Records that `mac` on `vlan` was seen as a source on `port` at `now`.
    pub fn learn(&self, mac: [u8; 6], vlan: u16, port: u32, now: u64) -> Learn {
        if unlearnable(mac) {
            return Learn::Refused;
        }
        let (key, hash, lock) = self.locate(mac, vlan);
        {
            let shard = lock.read();
            if let Some(s) = shard.find(hash, key) {
                if s.port == port {
                    return self.refresh(s, now);
                }
            }
        }
        let mut shard = lock.write();
        if let Some(s) = shard.table.find_mut(hash, |s| s.key == key) {
            if s.port == port {
                return self.refresh(s, now);
            }
            let from = s.port;
            let was_aged = self.aged(*s.last_seen.get_mut(), now);
            s.port = port;
            *s.last_seen.get_mut() = now;
            shard.sub_port(from);
            shard.add_port(port);
            return if was_aged {
                self.learned.fetch_add(1, Relaxed);
                Learn::New
            } else {
                self.moved.fetch_add(1, Relaxed);
                Learn::Moved { from }
            };
        }
        if !self.reserve() && !self.make_room(&mut shard, now) {
            return Learn::Refused;
        }
        shard.table.insert_unique(
            hash,
            Slot {
                key,
                hash,
                port,
                last_seen: AtomicU64::new(now),
            },
            |s| s.hash,
        );
        shard.add_port(port);
        self.learned.fetch_add(1, Relaxed);
        Learn::New
    }

    /// Same MAC, same port: raise `last_seen` unless it is fresh enough.
    #[inline]
    fn refresh(&self, s: &Slot, now: u64) -> Learn {
        let last = s.last_seen.load(Relaxed);
        if self.aged(last, now) {
            s.last_seen.fetch_max(now, Relaxed);
            self.learned.fetch_add(1, Relaxed);
            return Learn::New;
        }
        if now.saturating_sub(last) >= self.granularity {
            s.last_seen.fetch_max(now, Relaxed);
        }
        Learn::Refreshed
    }

    /// Takes one unit of the global count if below the limit.
    fn reserve(&self) -> bool {
        self.len
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < self.max_entries).then_some(n + 1)
            })
            .is_ok()
    }

    /// The table is full: frees a slot in `shard` (aged entries first, else
    /// a fair eviction) and keeps it for the caller. False when the shard
    /// has nothing to give.
    fn make_room(&self, shard: &mut Shard, now: u64) -> bool {
        let aged = shard.remove_where(|s| self.aged(s.last_seen.load(Relaxed), now));
        if aged > 0 {
            self.expired.fetch_add(aged as u64, Relaxed);
            // Keep one of the freed units for the new entry.
            self.len.fetch_sub(aged - 1, Relaxed);
            return true;
        }
        if shard.evict_fairly() {
            self.evicted.fetch_add(1, Relaxed);
            return true;
        }
        false
    }

    /// The port `mac` on `vlan` was last seen on, unless it aged out.
    #[inline]
    pub fn lookup(&self, mac: [u8; 6], vlan: u16, now: u64) -> Option<u32> {
        let (key, hash, lock) = self.locate(mac, vlan);
        let shard = lock.read();
        let s = shard.find(hash, key)?;
        (!self.aged(s.last_seen.load(Relaxed), now)).then_some(s.port)
    }

    /// Removes every entry aged out at `now`; returns how many.
    pub fn expire(&self, now: u64) -> usize {
        let aged = |s: &Slot| self.aged(s.last_seen.load(Relaxed), now);
        let n = self.remove_all(|sh| sh.table.iter().any(aged), aged);
        self.expired.fetch_add(n as u64, Relaxed);
        n
    }

    /// Removes every entry on `port` (the port went away or changed);
    /// returns how many.
    pub fn flush_port(&self, port: u32) -> usize {
        self.remove_all(|sh| sh.ports.contains_key(&port), |s| s.port == port)
    }

    /// Removes every entry.
    pub fn flush(&self) {
        for lock in self.shards.iter() {
            let mut shard = lock.write();
            let n = shard.table.len();
            shard.table.clear();
            shard.ports.clear();
            self.len.fetch_sub(n, Relaxed);
        }
    }

    /// Shard by shard: checks `any` under the read lock, and only if it
    /// holds removes the `gone` entries under the write lock.
    fn remove_all(&self, any: impl Fn(&Shard) -> bool, gone: impl Fn(&Slot) -> bool) -> usize {
        let mut total = 0;
        for lock in self.shards.iter() {
            if !any(&lock.read()) {
                continue;
            }
            let n = lock.write().remove_where(&gone);
            self.len.fetch_sub(n, Relaxed);
            total += n;
        }
        total
    }

    /// Every entry that has not aged out, sorted by (port, VLAN, MAC), for
    /// `fdb-show`. Shards are read one after another, so concurrent learning
    /// may or may not show.
    pub fn entries(&self, now: u64) -> Vec<FdbEntry> {
        let mut out = Vec::with_capacity(self.len());
        for lock in self.shards.iter() {
            let shard = lock.read();
            for s in shard.table.iter() {
                let last = s.last_seen.load(Relaxed);
                if self.aged(last, now) {
                    continue;
                }
                let (mac, vlan) = unpack(s.key);
                out.push(FdbEntry {
                    mac,
                    vlan,
                    port: s.port,
                    age: Duration::from_nanos(now.saturating_sub(last)),
                });
            }
        }
        out.sort_by_key(|e| (e.port, e.vlan, e.mac));
        out
    }
}
