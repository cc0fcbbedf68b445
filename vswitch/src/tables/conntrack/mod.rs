//! Connection tracking with zones, per-protocol state, timeouts, a size
//! limit with early drop, and NAT in both directions: the table behind the
//! datapath's `ct(...)` action.
//!
//! [`Conntrack::process`] is the per-packet entry point. A packet of no
//! known connection is `+new+trk` and is stored only when the action
//! commits it, with the NAT decided then ([`NatSpec`]); later packets of
//! the connection are `+est+trk` (`+rpl` in the reply direction; from its
//! second packet on, a retransmitted SYN included, as in OVS's userspace
//! datapath, where the kernel's says `+new` until a reply), an ICMP
//! error quoting one of its packets is `+rel+trk`, and a packet its state
//! cannot accept is `+inv+trk` (bits with OVS's values, [`crate::key::ct_state`]).
//! A connection is stored once and indexed under both its original tuple
//! and its reply tuple *after* NAT (OVS's `conn_key` pair), so a reply
//! finds it with one lookup and learns the reverse translation from it.
//! One module per L4 protocol decides what a packet does to the state:
//! `tcp` (handshake, teardown, window checks), `udp`, `icmp` (echo and
//! errors), `other`. IPv4 only for now.
//!
//! Time is the caller's `now` (monotonic nanoseconds); each state runs
//! under a timeout ([`CtTimeouts`], Linux's defaults), after which the
//! connection no longer matches (its next packet is `+new`) and
//! [`Conntrack::gc`] removes it, a bounded amount per call.
//!
//! Limits: at most [`CtConfig::max_entries`] connections (`ct_max`) and,
//! optionally, a limit per zone ([`Conntrack::set_zone_limit`]). A commit
//! beyond a limit first evicts ("early drop", as Linux does) a connection
//! that never completed its handshake or never got a reply (unassured),
//! from the same zone when the zone's limit is the one reached; when there
//! is none, the commit is refused and counted, and the packet stays
//! `+new+trk`, untranslated. Assured connections are never evicted for a
//! newcomer. Expired connections count against the limits until
//! [`Conntrack::gc`] collects them, except that a commit on a full table
//! reclaims an expired connection of its own tuple, and early drop takes
//! expired ones it comes across.
//!
//! Not done here: IPv6, fragments (the pipeline must hand whole L4
//! headers), ALGs and expectations (FTP, SIP), `ct_label`, NAT address or
//! port ranges (a source NAT without a port searches a few other ports
//! when its own collides), TCP SACK/timestamp checks.
//!
//! # Memory
//!
//! Per connection, on x86-64: one `Arc<Conn>` allocation of 168 bytes
//! (176 from the allocator): the `Arc` counts 16, and `Conn` 152: both
//! packed keys 32, expiry, mark, shard, NAT and flags 24, and behind the
//! mutex 96 (the protocol state, 52 bytes for TCP, and packet and byte
//! counters per direction, 32). Plus two 16-byte index entries in shard
//! hash tables, which run between 7/16 and 7/8 full with one control byte
//! per bucket: 37 to 73 bytes for both. About 210 to 250 bytes per
//! connection; the `conntrack` bench's `ct_memory` line measured the
//! process's RSS growing by 234 MiB for 1M connections, 245 bytes each.
//! Fixed cost: the shards (128 bytes each, 2048 for the default `ct_max`
//! of 1M) and two 256 KiB per-zone arrays (counts and limits), 2.8 MiB in
//! all for the default table.
//!
//! # Thread-safety
//!
//! Workers call [`Conntrack::process`] concurrently; a housekeeping thread
//! calls [`Conntrack::gc`]; the control thread dumps, flushes, reads
//! statistics and sets limits. There is no global lock.
//!
//! - Layout. The index is split into a power-of-two number of shards
//!   ([`MIN_SHARDS`] to [`MAX_SHARDS`], about 1024 entries each at the
//!   configured maximum) by a keyed hash (random seed per table) of the
//!   packed key. A shard is a `parking_lot::RwLock` around a hash table of
//!   16-byte entries, plus its counters, on its own cache lines. Each
//!   connection is one `Arc<Conn>`, pointed to by two entries (its original
//!   key's shard and its reply key's shard). Its keys and NAT are
//!   immutable; its expiry, mark and "assured" flag are atomics (read
//!   without a lock); its protocol state and counters sit behind a
//!   `parking_lot::Mutex` held for a few dozen instructions.
//! - A packet of a known connection takes its shard's *read* lock, finds
//!   the entry, takes the connection's mutex, updates the state and expiry,
//!   releases both: no allocation, no other lock. Readers never wait for
//!   each other, only for a writer of the same shard: an O(1) insert or
//!   unlink, a growth of that shard's table, or a gc/flush sweep of that
//!   one shard (about a thousand entries).
//! - A new connection (commit after a miss) first reserves a unit of the
//!   global count and of its zone's count by compare-and-swap (never above
//!   a limit), allocates the `Arc`, then takes the *write* locks of the
//!   shards of both its keys, **in ascending shard index** (one lock when
//!   both keys fall in the same shard), and under them checks that neither
//!   key is live before inserting both entries. Two workers committing the
//!   same connection, or its two directions at once (the Kubernetes
//!   UDP/DNS race), need the same pair of locks: the second finds the
//!   first's entry, gives its reservation back, and processes its packet
//!   against that connection (`+est`, same NAT). Hence exactly one entry
//!   and one NAT mapping per connection.
//! - Removal has two steps. *Retiring* (expiry set to 0, counts
//!   decremented) happens exactly once per connection, under its mutex,
//!   whoever does it (gc, flush, early drop, a reopening SYN, an insert
//!   replacing an expired entry). *Unlinking* an index entry happens under
//!   that entry's shard write lock, by whoever holds it next. A retired or
//!   expired connection never matches a lookup, so an entry awaiting
//!   unlinking is harmless; the memory comes back when both are gone.
//! - Lock order: the gc cursor, then shard locks, then a connection's
//!   mutex. Two shard locks are taken only in ascending index order (insert
//!   and unlink); no shard lock is taken while a connection's mutex is
//!   held; no two connection mutexes are ever held together; nothing is
//!   held across calls.
//! - Counters: per-shard atomics next to the shard's lock (a line the
//!   lock already writes), summed on read. The global count, the unassured
//!   count and the per-zone counts are atomics touched only on commit,
//!   removal and assurance, never per packet of a known connection.

mod conn;
mod icmp;
mod key;
mod nat;
mod other;
mod tcp;
mod udp;

#[cfg(test)]
mod tests;

use std::fmt;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use crossbeam::utils::CachePadded;
use hashbrown::{DefaultHashBuilder, HashTable};
use parking_lot::{Mutex, RwLock, RwLockWriteGuard};

use crate::key::ct_state;
use crate::packet::ip_proto;

use conn::{Conn, ConnMut, L4State, Slot, Timeouts, Update};
use key::CtKey;
pub use key::{CtPacket, CtTuple, L4Info, TcpSeg};
use nat::{translate, NAT_DST, NAT_SRC};
pub use nat::{NatSpec, Rewrite};

/// Fewest shards: enough that a few dozen workers rarely meet on one lock.
pub const MIN_SHARDS: usize = 64;
/// Most shards (2 MiB of shard headers).
pub const MAX_SHARDS: usize = 16384;
/// Index entries per shard the shard count is sized for at the maximum:
/// small enough that a gc sweep or a table growth holds one shard's write
/// lock for microseconds, large enough that the shard headers stay a
/// small fraction of the table.
const ENTRIES_PER_SHARD: usize = 1024;
/// Buckets allocated per shard up front; shards grow as they fill.
const PREALLOC: usize = 32;
/// Other source ports tried when a port-less source NAT collides.
const SNAT_PORT_TRIES: u32 = 8;
/// Index entries an early drop looks through, in shards that hold
/// unassured connections, before giving up: bounds the work a commit does
/// on a full table to a few shards (tens of microseconds).
const EARLY_DROP_SCAN: usize = 4096;
/// Lookup/commit rounds per packet: a lost insert race or a reopen each
/// cost one more.
const ROUNDS: usize = 4;
/// `zone_limit` value of a zone without a limit.
const NO_LIMIT: u32 = u32::MAX;
/// Number of zones.
const ZONES: usize = 1 << 16;

/// Timeouts per protocol state. Defaults are Linux's
/// (`nf_conntrack_*_timeout_*`), with its single `CLOSE_WAIT`-like
/// `FIN_WAIT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtTimeouts {
    /// TCP after the SYN (120 s).
    pub tcp_syn_sent: Duration,
    /// TCP after the SYN-ACK (60 s).
    pub tcp_syn_recv: Duration,
    /// TCP established (5 days, Linux's; OVS uses 24 h).
    pub tcp_established: Duration,
    /// TCP after the first FIN (120 s).
    pub tcp_fin_wait: Duration,
    /// TCP after the first FIN was acknowledged (60 s).
    pub tcp_close_wait: Duration,
    /// TCP after both FINs, until both are acknowledged (30 s).
    pub tcp_last_ack: Duration,
    /// TCP after both FINs were acknowledged (120 s).
    pub tcp_time_wait: Duration,
    /// TCP after an RST (10 s).
    pub tcp_close: Duration,
    /// UDP until a reply (30 s).
    pub udp_first: Duration,
    /// UDP once replied (120 s).
    pub udp_stream: Duration,
    /// ICMP echo (30 s).
    pub icmp: Duration,
    /// Other protocols (600 s).
    pub other: Duration,
}

impl Default for CtTimeouts {
    fn default() -> Self {
        let s = Duration::from_secs;
        CtTimeouts {
            tcp_syn_sent: s(120),
            tcp_syn_recv: s(60),
            tcp_established: s(432_000),
            tcp_fin_wait: s(120),
            tcp_close_wait: s(60),
            tcp_last_ack: s(30),
            tcp_time_wait: s(120),
            tcp_close: s(10),
            udp_first: s(30),
            udp_stream: s(120),
            icmp: s(30),
            other: s(600),
        }
    }
}

/// Sizing and timeouts of a [`Conntrack`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtConfig {
    /// Most connections (`ct_max`, default 1,048,576 as in DESIGN.md).
    pub max_entries: usize,
    /// Timeouts per state.
    pub timeouts: CtTimeouts,
}

impl Default for CtConfig {
    fn default() -> Self {
        CtConfig {
            max_entries: 1 << 20,
            timeouts: CtTimeouts::default(),
        }
    }
}

/// What conntrack says about one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CtVerdict {
    /// `ct_state` bits ([`crate::key::ct_state`]); always includes `TRK`.
    pub state: u16,
    /// `ct_mark` of the connection (0 for an uncommitted one).
    pub mark: u32,
    /// `ct_zone`.
    pub zone: u16,
    /// NAT to apply to the packet, when the action asked for `nat` and
    /// the connection has a mapping that changes this packet: the forward
    /// translation for an original-direction packet, the reverse one for a
    /// reply. For an ICMP error (`+rel`), the addresses to set in its outer
    /// header (ports 0).
    pub rewrite: Option<Rewrite>,
    /// For an ICMP error (`+rel`) with NAT: the rewrite of the quoted
    /// header (addresses and ports), so the receiver recognises its packet.
    pub inner_rewrite: Option<Rewrite>,
}

impl CtVerdict {
    fn new(state: u16, mark: u32, zone: u16) -> CtVerdict {
        CtVerdict {
            state: state | ct_state::TRK,
            mark,
            zone,
            rewrite: None,
            inner_rewrite: None,
        }
    }

    /// True when every bit of `bits` is set in `state`.
    pub fn is(&self, bits: u16) -> bool {
        self.state & bits == bits
    }
}

/// One connection, as `ofctl dump-conntrack` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CtEntry {
    /// `ct_zone`.
    pub zone: u16,
    /// The original direction's tuple.
    pub orig: CtTuple,
    /// The reply direction's tuple, after NAT.
    pub reply: CtTuple,
    /// The source is translated.
    pub snat: bool,
    /// The destination is translated.
    pub dnat: bool,
    /// Protocol state: TCP's (`SYN_SENT` ... `CLOSE`), else `UNREPLIED` or
    /// `REPLIED`.
    pub state: &'static str,
    /// Handshake completed or reply seen: not evicted for newcomers.
    pub assured: bool,
    /// Time left before it expires.
    pub timeout: Duration,
    /// `ct_mark`.
    pub mark: u32,
    /// Packets per direction (original, reply).
    pub packets: [u64; 2],
    /// Bytes per direction (original, reply).
    pub bytes: [u64; 2],
}

fn proto_name(p: u8) -> Option<&'static str> {
    match p {
        ip_proto::TCP => Some("tcp"),
        ip_proto::UDP => Some("udp"),
        ip_proto::ICMP => Some("icmp"),
        _ => None,
    }
}

impl fmt::Display for CtEntry {
    /// OVS's `dump-conntrack` line, e.g. `tcp,orig=(src=...,dst=...,sport=...,dport=...),
    /// reply=(...),zone=1,mark=2,protoinfo=(state=ESTABLISHED)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match proto_name(self.orig.proto) {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "proto={}", self.orig.proto)?,
        }
        write!(f, ",orig=({}),reply=({})", self.orig, self.reply)?;
        if self.zone != 0 {
            write!(f, ",zone={}", self.zone)?;
        }
        if self.mark != 0 {
            write!(f, ",mark={}", self.mark)?;
        }
        if self.orig.proto == ip_proto::TCP {
            write!(f, ",protoinfo=(state={})", self.state)?;
        }
        Ok(())
    }
}

/// Counters since creation, and the current size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CtStats {
    /// Connections now (expired ones not yet collected included).
    pub entries: usize,
    /// `ct_max`.
    pub limit: usize,
    /// New connections committed.
    pub committed: u64,
    /// Commits refused: a limit reached with nothing to evict, or a NAT
    /// mapping that collides with another connection.
    pub refused: u64,
    /// Unassured connections evicted to make room.
    pub early_dropped: u64,
    /// Packets found `+inv`.
    pub invalid: u64,
    /// Connections removed because they expired.
    pub expired: u64,
}

#[derive(Debug, Default)]
struct Counters {
    committed: AtomicU64,
    refused: AtomicU64,
    early_dropped: AtomicU64,
    invalid: AtomicU64,
    expired: AtomicU64,
    /// Commits that found another worker's entry under the locks (not
    /// in [`CtStats`]: tests use it to see the race path was taken).
    lost_races: AtomicU64,
}

type Table = HashTable<Slot>;

#[derive(Debug)]
struct Shard {
    table: RwLock<Table>,
    /// Unassured connections whose original key is in this shard.
    unassured: AtomicUsize,
    counters: Counters,
}

/// Which limit a reservation hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Full {
    Zone,
    Global,
}

/// Outcome of a lookup in [`Conntrack::known`].
enum Known {
    Verdict(CtVerdict),
    /// A SYN on a finished connection: it is retired; unlink it and
    /// start over.
    Reopen(Arc<Conn>),
    Miss,
}

/// Outcome of [`Conntrack::insert`].
enum Insert {
    Done,
    /// The original key is live: another worker committed it first.
    Exists,
    /// The reply key is live: the NAT mapping collides.
    Clash,
}

/// The write locks of a connection's one or two shards, in lock order.
enum Pair<'a> {
    One(RwLockWriteGuard<'a, Table>),
    /// Indexed by direction.
    Two(RwLockWriteGuard<'a, Table>, RwLockWriteGuard<'a, Table>),
}

impl Pair<'_> {
    fn get(&mut self, dir: usize) -> &mut Table {
        match self {
            Pair::One(g) => g,
            Pair::Two(a, _) if dir == 0 => a,
            Pair::Two(_, b) => b,
        }
    }
}

#[inline]
fn find_live<'a>(t: &'a Table, hash: u64, key: &CtKey, now: u64) -> Option<&'a Slot> {
    t.find(hash, |s| s.key() == key && s.conn.live(now))
}

#[inline]
fn nat_bits(nat: u8) -> u16 {
    let mut b = 0;
    if nat & NAT_SRC != 0 {
        b |= ct_state::SNAT;
    }
    if nat & NAT_DST != 0 {
        b |= ct_state::DNAT;
    }
    b
}

#[inline]
fn rpl_bit(dir: usize) -> u16 {
    if dir == 1 {
        ct_state::RPL
    } else {
        0
    }
}

/// The rewrite for a packet of `conn` travelling in `dir`: make it look
/// like the reverse of the other direction's tuple.
#[inline]
fn dir_rewrite(conn: &Conn, dir: usize) -> Option<Rewrite> {
    Rewrite::between(
        &conn.keys[dir].tuple(),
        &conn.keys[1 - dir].tuple().reverse(),
    )
}

/// The connection-tracking table: `Send + Sync`, shared by reference by
/// all workers (see the module's thread-safety notes).
pub struct Conntrack {
    shards: Box<[CachePadded<Shard>]>,
    /// `shards.len() - 1`.
    mask: usize,
    hasher: DefaultHashBuilder,
    timeouts: Timeouts,
    max_entries: usize,
    /// Connections not yet retired.
    len: AtomicUsize,
    /// Of those, the unassured ones.
    unassured: AtomicUsize,
    /// Connections per zone.
    zone_count: Box<[AtomicU32]>,
    /// Limit per zone, `NO_LIMIT` for none.
    zone_limit: Box<[AtomicU32]>,
    /// Next shard [`Conntrack::gc`] sweeps.
    gc_cursor: Mutex<usize>,
}

impl fmt::Debug for Conntrack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conntrack")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

impl Default for Conntrack {
    fn default() -> Self {
        Conntrack::new(CtConfig::default())
    }
}

impl Conntrack {
    /// An empty table with `config`'s limit and timeouts.
    pub fn new(config: CtConfig) -> Conntrack {
        let n = (config.max_entries.saturating_mul(2) / ENTRIES_PER_SHARD)
            .clamp(MIN_SHARDS, MAX_SHARDS)
            .next_power_of_two();
        Conntrack {
            shards: (0..n)
                .map(|_| {
                    CachePadded::new(Shard {
                        table: RwLock::new(HashTable::with_capacity(PREALLOC)),
                        unassured: AtomicUsize::new(0),
                        counters: Counters::default(),
                    })
                })
                .collect(),
            mask: n - 1,
            hasher: DefaultHashBuilder::default(),
            timeouts: Timeouts::new(&config.timeouts),
            max_entries: config.max_entries,
            len: AtomicUsize::new(0),
            unassured: AtomicUsize::new(0),
            zone_count: (0..ZONES).map(|_| AtomicU32::new(0)).collect(),
            zone_limit: (0..ZONES).map(|_| AtomicU32::new(NO_LIMIT)).collect(),
            gc_cursor: Mutex::new(0),
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> CtConfig {
        CtConfig {
            max_entries: self.max_entries,
            timeouts: self.timeouts.to_config(),
        }
    }

    /// Connections now, expired ones not yet collected included.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections now in `zone`.
    pub fn zone_len(&self, zone: u16) -> usize {
        self.zone_count[usize::from(zone)].load(Relaxed) as usize
    }

    /// Sets (or with `None` removes) the most connections `zone` may hold.
    /// Lowering it below the current count evicts nothing: commits are
    /// refused until the zone drains below it.
    pub fn set_zone_limit(&self, zone: u16, limit: Option<u32>) {
        self.zone_limit[usize::from(zone)].store(limit.unwrap_or(NO_LIMIT), Relaxed);
    }

    /// The limit of `zone`, if any.
    pub fn zone_limit(&self, zone: u16) -> Option<u32> {
        let l = self.zone_limit[usize::from(zone)].load(Relaxed);
        (l != NO_LIMIT).then_some(l)
    }

    /// Counters and the current size.
    pub fn stats(&self) -> CtStats {
        let mut s = CtStats {
            entries: self.len(),
            limit: self.max_entries,
            ..CtStats::default()
        };
        for sh in self.shards.iter() {
            let c = &sh.counters;
            s.committed += c.committed.load(Relaxed);
            s.refused += c.refused.load(Relaxed);
            s.early_dropped += c.early_dropped.load(Relaxed);
            s.invalid += c.invalid.load(Relaxed);
            s.expired += c.expired.load(Relaxed);
        }
        s
    }

    #[inline]
    fn hash(&self, key: &CtKey) -> u64 {
        let [a, b] = key.words();
        self.hasher.hash_one((u128::from(a) << 64) | u128::from(b))
    }

    /// Bits 32.. pick the shard: hashbrown uses the low bits for the
    /// bucket and the top 7 for tags, so those stay varied in a shard.
    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// Tracks one packet in `zone` at `now` and says what it is.
    ///
    /// `commit` stores a new connection (with the NAT `nat` asks for, and
    /// `ct_mark` set to `mark`), or sets `mark` on a known one; without it a
    /// new connection is reported `+new` and forgotten. `nat` (any form)
    /// asks for the packet's translation in [`CtVerdict::rewrite`]; the
    /// `Src`/`Dst` forms only matter when a new connection is committed.
    /// Allocates only when it stores a new connection.
    pub fn process(
        &self,
        pkt: &CtPacket,
        zone: u16,
        commit: bool,
        nat: Option<&NatSpec>,
        mark: Option<u32>,
        now: u64,
    ) -> CtVerdict {
        let key = CtKey::new(&pkt.tuple, zone);
        let hash = self.hash(&key);
        if !pkt.consistent() {
            return self.invalid(hash, zone);
        }
        if let L4Info::IcmpError {
            icmp_type, inner, ..
        } = pkt.l4
        {
            return self.related(icmp_type, &inner, zone, nat.is_some(), now);
        }
        for _ in 0..ROUNDS {
            match self.known(&key, hash, pkt, commit, nat.is_some(), mark, now) {
                Known::Verdict(v) => return v,
                Known::Reopen(old) => {
                    self.unlink(&old);
                    continue;
                }
                Known::Miss => {}
            }
            let Some(l4) = L4State::new(pkt) else {
                return self.invalid(hash, zone);
            };
            if !commit {
                return CtVerdict::new(ct_state::NEW, 0, zone);
            }
            if let Some(v) = self.commit(key, hash, pkt, l4, nat, mark, now) {
                return v;
            }
        }
        // Only reachable if connections on this tuple keep appearing and
        // dying between our lookups.
        self.invalid(hash, zone)
    }

    fn invalid(&self, hash: u64, zone: u16) -> CtVerdict {
        self.shards[self.shard_of(hash)]
            .counters
            .invalid
            .fetch_add(1, Relaxed);
        CtVerdict::new(ct_state::INV, 0, zone)
    }

    /// A packet of a known connection: update it under its shard's read
    /// lock and its own mutex.
    #[inline]
    #[allow(clippy::too_many_arguments)] // the hot path, spelled out
    fn known(
        &self,
        key: &CtKey,
        hash: u64,
        pkt: &CtPacket,
        commit: bool,
        nat: bool,
        mark: Option<u32>,
        now: u64,
    ) -> Known {
        let shard = &self.shards[self.shard_of(hash)];
        let table = shard.table.read();
        let Some(slot) = find_live(&table, hash, key, now) else {
            return Known::Miss;
        };
        let conn = &slot.conn;
        let dir = usize::from(slot.dir);
        let zone = key.zone();
        let mut m = conn.m.lock();
        if !conn.live(now) {
            return Known::Miss;
        }
        match m.l4.update(dir, pkt) {
            Update::Invalid => {
                drop(m);
                shard.counters.invalid.fetch_add(1, Relaxed);
                Known::Verdict(CtVerdict::new(ct_state::INV, conn.mark.load(Relaxed), zone))
            }
            Update::Reopen => {
                self.retire(conn, &m);
                drop(m);
                Known::Reopen(Arc::clone(conn))
            }
            Update::Valid => {
                m.packets[dir] += 1;
                m.bytes[dir] += u64::from(pkt.len);
                if !conn.assured.load(Relaxed) && m.l4.assured() {
                    conn.assured.store(true, Relaxed);
                    self.unassured.fetch_sub(1, Relaxed);
                    self.shards[conn.shard as usize]
                        .unassured
                        .fetch_sub(1, Relaxed);
                }
                let timeout = self.timeouts.get(m.l4.timeout());
                conn.expires.store(now.saturating_add(timeout), Relaxed);
                drop(m);
                if commit {
                    if let Some(mark) = mark {
                        conn.mark.store(mark, Relaxed);
                    }
                }
                let mut v =
                    CtVerdict::new(ct_state::EST | rpl_bit(dir), conn.mark.load(Relaxed), zone);
                if nat && conn.nat != 0 {
                    v.state |= nat_bits(conn.nat);
                    v.rewrite = dir_rewrite(conn, dir);
                }
                Known::Verdict(v)
            }
        }
    }

    /// An ICMP error: `+rel` if it quotes a packet of a known connection.
    fn related(&self, icmp_type: u8, inner: &CtTuple, zone: u16, nat: bool, now: u64) -> CtVerdict {
        // The quoted packet travelled the other way: its reverse is this
        // error's own direction of the connection.
        let key = CtKey::new(&inner.reverse(), zone);
        let hash = self.hash(&key);
        if !icmp::is_error(icmp_type) {
            return self.invalid(hash, zone);
        }
        let table = self.shards[self.shard_of(hash)].table.read();
        let Some(slot) = find_live(&table, hash, &key, now) else {
            drop(table);
            return self.invalid(hash, zone);
        };
        let conn = &slot.conn;
        let dir = usize::from(slot.dir);
        let mut v = CtVerdict::new(ct_state::REL | rpl_bit(dir), conn.mark.load(Relaxed), zone);
        if nat && conn.nat != 0 {
            v.state |= nat_bits(conn.nat);
            if let Some(r) = dir_rewrite(conn, dir) {
                v.rewrite = r.addresses();
                v.inner_rewrite = Some(r.swapped());
            }
        }
        v
    }

    /// Stores a new connection; `None` when another worker stored it
    /// first (look it up again).
    #[allow(clippy::too_many_arguments)]
    fn commit(
        &self,
        key: CtKey,
        hash: u64,
        pkt: &CtPacket,
        l4: L4State,
        nat: Option<&NatSpec>,
        mark: Option<u32>,
        now: u64,
    ) -> Option<CtVerdict> {
        let zone = key.zone();
        let home = self.shard_of(hash);
        let refused = || {
            self.shards[home].counters.refused.fetch_add(1, Relaxed);
            Some(CtVerdict::new(ct_state::NEW, 0, zone))
        };
        if let Err(full) = self.reserve(zone) {
            let room = self.purge_key(&key, hash, now) || self.early_drop(full, zone, home, now);
            if !(room && self.reserve(zone).is_ok()) {
                return refused();
            }
        }
        let spec = nat.copied().unwrap_or(NatSpec::Reverse);
        let tries = match spec {
            NatSpec::Src { port: None, .. } if pkt.tuple.has_ports() => SNAT_PORT_TRIES,
            _ => 0,
        };
        let expires = now.saturating_add(self.timeouts.get(l4.timeout()));
        for attempt in 0..=tries {
            let alt = (attempt > 0).then(|| alt_port(hash, attempt));
            let (xlated, nat_kind) = translate(&pkt.tuple, &spec, alt);
            let rkey = CtKey::new(&xlated.reverse(), zone);
            let rhash = self.hash(&rkey);
            let conn = Arc::new(Conn {
                keys: [key, rkey],
                expires: AtomicU64::new(expires),
                mark: AtomicU32::new(mark.unwrap_or(0)),
                shard: home as u32,
                nat: nat_kind,
                assured: false.into(),
                m: Mutex::new(ConnMut {
                    l4,
                    packets: [1, 0],
                    bytes: [u64::from(pkt.len), 0],
                }),
            });
            match self.insert(conn, [hash, rhash], now) {
                Insert::Done => {
                    self.shards[home].counters.committed.fetch_add(1, Relaxed);
                    let mut v = CtVerdict::new(ct_state::NEW, mark.unwrap_or(0), zone);
                    if nat.is_some() && nat_kind != 0 {
                        v.state |= nat_bits(nat_kind);
                        v.rewrite = Rewrite::between(&pkt.tuple, &xlated);
                    }
                    return Some(v);
                }
                Insert::Exists => {
                    self.shards[home].counters.lost_races.fetch_add(1, Relaxed);
                    self.unreserve(zone);
                    return None;
                }
                Insert::Clash => {}
            }
        }
        self.unreserve(zone);
        refused()
    }

    /// Takes one unit of the zone's and the global count, if below their
    /// limits.
    fn reserve(&self, zone: u16) -> Result<(), Full> {
        let z = usize::from(zone);
        let limit = self.zone_limit[z].load(Relaxed);
        if limit == NO_LIMIT {
            self.zone_count[z].fetch_add(1, Relaxed);
        } else if self.zone_count[z]
            .fetch_update(Relaxed, Relaxed, |n| (n < limit).then_some(n + 1))
            .is_err()
        {
            return Err(Full::Zone);
        }
        if self
            .len
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < self.max_entries).then_some(n + 1)
            })
            .is_err()
        {
            self.zone_count[z].fetch_sub(1, Relaxed);
            return Err(Full::Global);
        }
        Ok(())
    }

    fn unreserve(&self, zone: u16) {
        self.len.fetch_sub(1, Relaxed);
        self.zone_count[usize::from(zone)].fetch_sub(1, Relaxed);
    }

    /// Removes `conn` from the counts, exactly once per connection: false
    /// if it already was. `_held` proves its mutex is held.
    fn retire(&self, conn: &Conn, _held: &ConnMut) -> bool {
        if conn.expires.load(Relaxed) == 0 {
            return false;
        }
        conn.expires.store(0, Relaxed);
        self.len.fetch_sub(1, Relaxed);
        self.zone_count[usize::from(conn.zone())].fetch_sub(1, Relaxed);
        if !conn.assured.load(Relaxed) {
            self.unassured.fetch_sub(1, Relaxed);
            self.shards[conn.shard as usize]
                .unassured
                .fetch_sub(1, Relaxed);
        }
        true
    }

    /// Retires `conn` if it has expired at `now`; true if this call did.
    fn retire_expired(&self, conn: &Conn, now: u64) -> bool {
        let m = conn.m.lock();
        let e = conn.expires.load(Relaxed);
        e != 0 && now >= e && self.retire(conn, &m)
    }

    /// Write-locks the shards `a` and `b` in ascending order.
    fn lock_pair(&self, a: usize, b: usize) -> Pair<'_> {
        use std::cmp::Ordering;
        match a.cmp(&b) {
            Ordering::Equal => Pair::One(self.shards[a].table.write()),
            Ordering::Less => {
                let ga = self.shards[a].table.write();
                let gb = self.shards[b].table.write();
                Pair::Two(ga, gb)
            }
            Ordering::Greater => {
                let gb = self.shards[b].table.write();
                let ga = self.shards[a].table.write();
                Pair::Two(ga, gb)
            }
        }
    }

    /// Indexes a new connection under both its keys, unless one of them
    /// is live (see the thread-safety notes).
    fn insert(&self, conn: Arc<Conn>, hash: [u64; 2], now: u64) -> Insert {
        let idx = [self.shard_of(hash[0]), self.shard_of(hash[1])];
        let keys = conn.keys;
        let mut locked = self.lock_pair(idx[0], idx[1]);
        for d in 0..2 {
            self.purge(locked.get(d), hash[d], &keys[d], now, idx[d]);
        }
        if find_live(locked.get(0), hash[0], &keys[0], now).is_some() {
            return Insert::Exists;
        }
        if find_live(locked.get(1), hash[1], &keys[1], now).is_some() {
            return Insert::Clash;
        }
        let rehash = |s: &Slot| self.hash(s.key());
        if keys[0] != keys[1] {
            let slot = Slot {
                conn: Arc::clone(&conn),
                dir: 1,
            };
            locked.get(1).insert_unique(hash[1], slot, rehash);
        }
        locked
            .get(0)
            .insert_unique(hash[0], Slot { conn, dir: 0 }, rehash);
        drop(locked);
        self.unassured.fetch_add(1, Relaxed);
        self.shards[idx[0]].unassured.fetch_add(1, Relaxed);
        Insert::Done
    }

    /// Unlinks the dead entries filed under `key` (an expired connection
    /// about to be replaced), retiring them if need be; returns how many
    /// it retired.
    fn purge(&self, table: &mut Table, hash: u64, key: &CtKey, now: u64, shard: usize) -> usize {
        let mut retired = 0;
        while let Ok(e) = table.find_entry(hash, |s| s.key() == key && !s.conn.live(now)) {
            let (slot, _) = e.remove();
            if self.retire_expired(&slot.conn, now) {
                retired += 1;
            }
        }
        self.shards[shard]
            .counters
            .expired
            .fetch_add(retired as u64, Relaxed);
        retired
    }

    /// On a full table: retires an expired connection filed under the new
    /// one's own key, if there is one (its count is what the new one needs).
    fn purge_key(&self, key: &CtKey, hash: u64, now: u64) -> bool {
        let i = self.shard_of(hash);
        let lock = &self.shards[i].table;
        let expired =
            |s: &Slot| s.key() == key && s.conn.expires.load(Relaxed) != 0 && !s.conn.live(now);
        if lock.read().find(hash, expired).is_none() {
            return false;
        }
        self.purge(&mut lock.write(), hash, key, now, i) > 0
    }

    /// Removes both index entries of a retired connection.
    fn unlink(&self, conn: &Arc<Conn>) {
        let hash = [self.hash(&conn.keys[0]), self.hash(&conn.keys[1])];
        let mut locked = self.lock_pair(self.shard_of(hash[0]), self.shard_of(hash[1]));
        for (d, &h) in hash.iter().enumerate() {
            let t = locked.get(d);
            if let Ok(e) =
                t.find_entry(h, |s| Arc::ptr_eq(&s.conn, conn) && usize::from(s.dir) == d)
            {
                e.remove();
            }
        }
    }

    /// Frees one unit of a full count by evicting an unassured (or an
    /// expired) connection, from `zone` if the zone's limit is the one
    /// reached. Looks from the new connection's shard onwards, in shards
    /// that hold unassured connections, through at most
    /// [`EARLY_DROP_SCAN`] entries.
    fn early_drop(&self, full: Full, zone: u16, home: usize, now: u64) -> bool {
        if self.unassured.load(Relaxed) == 0 {
            return false;
        }
        let mut looked = 0;
        for i in 0..self.shards.len() {
            let shard = &self.shards[(home + i) & self.mask];
            if shard.unassured.load(Relaxed) == 0 {
                continue;
            }
            let victim = {
                let table = shard.table.read();
                looked += table.len();
                table
                    .iter()
                    .find(|s| {
                        let c = &s.conn;
                        s.dir == 0
                            && (full == Full::Global || c.zone() == zone)
                            && c.expires.load(Relaxed) != 0
                            && (!c.live(now) || !c.assured.load(Relaxed))
                    })
                    .map(|s| Arc::clone(&s.conn))
            };
            if let Some(c) = victim {
                let (retired, expired) = {
                    let m = c.m.lock();
                    let expired = !c.live(now);
                    let ok = (expired || !c.assured.load(Relaxed)) && self.retire(&c, &m);
                    (ok, expired)
                };
                if retired {
                    self.unlink(&c);
                    let counters = &shard.counters;
                    if expired {
                        counters.expired.fetch_add(1, Relaxed);
                    } else {
                        counters.early_dropped.fetch_add(1, Relaxed);
                    }
                    return true;
                }
            }
            if looked >= EARLY_DROP_SCAN {
                break;
            }
        }
        false
    }

    /// Removes connections expired at `now`, sweeping shard after shard
    /// from where the previous call stopped until about `budget` index
    /// entries were looked at (a shard is swept whole, so a call may look
    /// at up to one shard, about a thousand entries, more; an empty shard
    /// counts one). At most one full round per call. Returns the number of
    /// connections it removed. Meant for a housekeeping thread, every
    /// second or so: workers wait only for the one shard being swept.
    pub fn gc(&self, now: u64, budget: usize) -> usize {
        let mut cursor = self.gc_cursor.lock();
        let mut looked = 0;
        let mut removed = 0;
        for _ in 0..self.shards.len() {
            if looked >= budget {
                break;
            }
            let i = *cursor;
            *cursor = (i + 1) & self.mask;
            let shard = &self.shards[i];
            let (n, dirty) = {
                let t = shard.table.read();
                (t.len(), t.iter().any(|s| !s.conn.live(now)))
            };
            looked += n.max(1);
            if dirty {
                removed += self.sweep(i, now);
            }
        }
        removed
    }

    /// Unlinks the dead entries of shard `i`; returns how many
    /// connections it retired as expired.
    fn sweep(&self, i: usize, now: u64) -> usize {
        let shard = &self.shards[i];
        let mut expired = 0;
        shard.table.write().retain(|s| {
            if s.conn.live(now) {
                return true;
            }
            let m = s.conn.m.lock();
            // A packet may have refreshed it since the check above.
            if s.conn.live(now) {
                return true;
            }
            if self.retire(&s.conn, &m) {
                expired += 1;
            }
            false
        });
        shard.counters.expired.fetch_add(expired as u64, Relaxed);
        expired
    }

    /// Removes every connection of `zone`, or all of them; returns how
    /// many (expired ones not yet collected included).
    pub fn flush(&self, zone: Option<u16>) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            shard.table.write().retain(|s| {
                if zone.is_some_and(|z| s.conn.zone() != z) {
                    return true;
                }
                let m = s.conn.m.lock();
                if self.retire(&s.conn, &m) {
                    removed += 1;
                }
                false
            });
        }
        removed
    }

    fn entry(conn: &Conn, now: u64) -> CtEntry {
        let m = conn.m.lock();
        CtEntry {
            zone: conn.zone(),
            orig: conn.keys[0].tuple(),
            reply: conn.keys[1].tuple(),
            snat: conn.nat & NAT_SRC != 0,
            dnat: conn.nat & NAT_DST != 0,
            state: m.l4.name(),
            assured: conn.assured.load(Relaxed),
            timeout: Duration::from_nanos(conn.expires.load(Relaxed).saturating_sub(now)),
            mark: conn.mark.load(Relaxed),
            packets: m.packets,
            bytes: m.bytes,
        }
    }

    /// The live connection `tuple` belongs to (in either direction) in
    /// `zone`, if any.
    pub fn get(&self, tuple: &CtTuple, zone: u16, now: u64) -> Option<CtEntry> {
        let key = CtKey::new(tuple, zone);
        let hash = self.hash(&key);
        let table = self.shards[self.shard_of(hash)].table.read();
        find_live(&table, hash, &key, now).map(|s| Self::entry(&s.conn, now))
    }

    /// Every live connection of `zone` (or of all zones), sorted by zone
    /// and original tuple. Shards are read one after another, so
    /// connections committed meanwhile may or may not show.
    pub fn dump(&self, zone: Option<u16>, now: u64) -> Vec<CtEntry> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let table = shard.table.read();
            for s in table.iter() {
                if s.dir != 0 || zone.is_some_and(|z| s.conn.zone() != z) || !s.conn.live(now) {
                    continue;
                }
                out.push(Self::entry(&s.conn, now));
            }
        }
        out.sort_by_key(|e| (e.zone, e.orig));
        out
    }
}

/// The `attempt`-th other source port for a colliding source NAT: spread
/// over 1024..=65535 by the tuple's hash.
fn alt_port(hash: u64, attempt: u32) -> u16 {
    let x = hash
        .rotate_left(17)
        .wrapping_add(u64::from(attempt).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    1024 + ((x >> 32) % (65536 - 1024)) as u16
}
